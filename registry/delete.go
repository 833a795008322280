package registry

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imaged/imaged"
)

// DeleteManifest implements imaged.RegistryClient with
// DELETE /v2/<repo>/manifests/<digest> (Harbor serves it too). Only
// digests are accepted: distribution refuses deletes by tag, and deleting
// by digest removes every tag that points at it. A manifest already gone
// is success; a registry that refuses deletes (405, UNSUPPORTED — e.g.
// distribution without storage.delete.enabled) is EREFUSED.
func (c *Client) DeleteManifest(ctx context.Context, reg *imaged.Registry, repo, digest string) error {
	cn, err := c.conn(reg)
	if err != nil {
		return err
	}
	r, err := cn.repository(repo)
	if err != nil {
		return err
	}
	d, err := name.NewDigest(r.Name() + "@" + digest)
	if err != nil {
		return invalidf("invalid manifest digest %q", digest)
	}
	// A Pusher per call: deletes are rare and need a token with the
	// delete scope, which the pull transports cached for scans lack.
	opts := append(append([]remote.Option(nil), cn.remoteOpts...), remote.WithContext(ctx))
	err = failure(reg, repo+"@"+digest, remote.Delete(d, opts...))
	switch imaged.ErrorCode(err) {
	case "":
		return nil
	case imaged.ENOTFOUND:
		return nil
	case imaged.EREFUSED:
		return imaged.Errorf(imaged.EREFUSED, "registry %s does not allow deleting manifests (405)", reg.Name)
	}
	return err
}
