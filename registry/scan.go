package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imaged/imaged"
)

// Index entries with this annotation are BuildKit attestations (SBOM,
// provenance), not images.
const (
	annotationRefType   = "vnd.docker.reference.type"
	refTypeAttestation  = "attestation-manifest"
	maxPlatformsPerScan = 64 // an index with more is not an image we catalog
)

// Scan implements imaged.RegistryClient. Requests: one manifest GET for
// the tag, plus per image one manifest GET (index children only) and one
// config blob GET; the first request to a repository also pays the /v2/
// ping (and the token exchange on token-auth registries).
//
// For an index, one ScannedImage per architecture: attestation entries,
// nested indexes, non-image entries, unknown/unknown platforms and
// non-Linux platforms (Backend.AI runs Linux containers) are skipped, and
// when several entries share a normalised architecture (variants such as
// arm/v6 and arm/v7) the first one listed wins, as a container runtime
// resolving the platform would also pick the first match. MediaType is the
// media type of the per-architecture manifest (the one Digest names).
func (c *Client) Scan(ctx context.Context, reg *imaged.Registry, repo, tagOrDigest string) ([]imaged.ScannedImage, error) {
	cn, err := c.conn(reg)
	if err != nil {
		return nil, err
	}
	r, err := cn.repository(repo)
	if err != nil {
		return nil, err
	}
	var ref name.Reference
	tag := ""
	if strings.Contains(tagOrDigest, ":") {
		d, err := name.NewDigest(r.Name() + "@" + tagOrDigest)
		if err != nil {
			return nil, invalidf("invalid digest %q", tagOrDigest)
		}
		ref = d
	} else {
		t, err := name.NewTag(r.Name()+":"+tagOrDigest, cn.nameOpts...)
		if err != nil || tagOrDigest == "" {
			return nil, invalidf("invalid tag %q", tagOrDigest)
		}
		ref, tag = t, tagOrDigest
	}
	what := repo + ":" + tagOrDigest
	if tag == "" {
		what = repo + "@" + tagOrDigest
	}
	desc, err := cn.puller.Get(ctx, ref)
	if err != nil {
		return nil, failure(reg, what, err)
	}
	mt := desc.MediaType
	switch {
	case mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed:
		return nil, invalidf("%s is a Docker schema 1 manifest, which is not supported", what)
	case mt.IsIndex():
		return c.scanIndex(ctx, cn, r, repo, what, tag, desc)
	case mt.IsImage():
		img, err := c.scanImage(ctx, cn, r, what, tag, desc)
		if err != nil {
			return nil, err
		}
		img.Repository = repo
		return []imaged.ScannedImage{*img}, nil
	}
	return nil, invalidf("%s has media type %q, which is neither an image nor an index", what, mt)
}

func (c *Client) scanIndex(ctx context.Context, cn *conn, r name.Repository, repo, what, tag string, desc *remote.Descriptor) ([]imaged.ScannedImage, error) {
	children, err := c.selectChildren(what, desc.Manifest)
	if err != nil {
		return nil, err
	}
	if len(children) == 0 {
		return nil, invalidf("%s: the index lists no image for a Linux platform", what)
	}
	out := make([]imaged.ScannedImage, len(children))
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, m := range children {
		wg.Go(func() {
			cwhat := repo + "@" + m.Digest.String()
			cd, err := cn.puller.Get(ctx, r.Digest(m.Digest.String()))
			if err != nil {
				errs[i] = failure(cn.reg, cwhat, err)
				if imaged.ErrorCode(errs[i]) == imaged.ENOTFOUND {
					// The tag exists; the index is broken.
					errs[i] = fmt.Errorf("%w (%v)", invalidf("%s: index entry %s is missing", what, m.Digest), err)
				}
				return
			}
			if !cd.MediaType.IsImage() {
				errs[i] = invalidf("%s: index entry %s has media type %q, not an image", what, m.Digest, cd.MediaType)
				return
			}
			img, err := c.scanImage(ctx, cn, r, cwhat, tag, cd)
			if err != nil {
				errs[i] = err
				return
			}
			// The index is the authority on the platform it lists the
			// image under (the config may omit or misstate it).
			img.Architecture = imaged.NormalizeArch(m.Platform.Architecture)
			img.IndexDigest = desc.Digest.String()
			out[i] = *img
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Repository = repo
	}
	return out, nil
}

// indexEntryArch returns the normalised architecture of an index entry
// and whether the entry is an image to scan.
// selectChildren parses an index and returns the entries to scan, one per
// normalised architecture, in index order.
func (c *Client) selectChildren(what string, index []byte) ([]v1.Descriptor, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(index))
	if err != nil {
		return nil, invalidf("%s: unreadable index manifest", what)
	}
	var children []v1.Descriptor
	seen := map[string]bool{}
	for _, m := range idx.Manifests {
		arch, ok := c.indexEntryArch(what, m)
		if !ok {
			continue
		}
		if seen[arch] {
			c.opts.Logger.Debug("registry: duplicate architecture in index, keeping the first", "ref", what, "digest", m.Digest.String(), "arch", arch)
			continue
		}
		seen[arch] = true
		children = append(children, m)
		if len(children) >= maxPlatformsPerScan {
			break
		}
	}
	return children, nil
}

func (c *Client) indexEntryArch(what string, m v1.Descriptor) (string, bool) {
	skip := func(why string) (string, bool) {
		c.opts.Logger.Debug("registry: skipping index entry", "ref", what, "digest", m.Digest.String(), "why", why)
		return "", false
	}
	if m.Annotations[annotationRefType] == refTypeAttestation {
		return skip("attestation")
	}
	if m.MediaType.IsIndex() {
		return skip("nested index")
	}
	if !m.MediaType.IsImage() {
		return skip("not an image")
	}
	if m.Platform == nil || m.Platform.Architecture == "" || m.Platform.Architecture == "unknown" {
		return skip("unknown platform")
	}
	if m.Platform.OS != "" && m.Platform.OS != "linux" {
		return skip("not linux")
	}
	return imaged.NormalizeArch(m.Platform.Architecture), true
}

// scanImage reads one image manifest and its config blob.
func (c *Client) scanImage(ctx context.Context, cn *conn, r name.Repository, what, tag string, desc *remote.Descriptor) (*imaged.ScannedImage, error) {
	return imageFacts(what, tag, desc.Manifest, desc.Digest.String(), string(desc.MediaType), func(cfg v1.Descriptor) ([]byte, error) {
		// Configs are content-addressed, so one seen before (another tag
		// of the same image) needs no request.
		if b, ok := c.configs.get(cfg.Digest.String()); ok {
			return b, nil
		}
		b, err := c.fetchConfig(ctx, cn, r, what, cfg)
		if err == nil {
			c.configs.put(cfg.Digest.String(), b)
		}
		return b, err
	})
}

// fetchConfig reads a config blob with one GET; the reader checks its
// digest.
func (c *Client) fetchConfig(ctx context.Context, cn *conn, r name.Repository, what string, cfg v1.Descriptor) ([]byte, error) {
	l, err := cn.puller.Layer(ctx, r.Digest(cfg.Digest.String()))
	if err != nil {
		return nil, failure(cn.reg, what+" config", err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, failure(cn.reg, what+" config", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, failure(cn.reg, what+" config", err)
	}
	if len(b) > maxConfigSize {
		return nil, invalidf("%s: config blob larger than %d bytes", what, maxConfigSize)
	}
	return b, nil
}

// configCache keeps recently read config blobs by digest (immutable
// content), bounded by total bytes; when full, arbitrary entries go.
type configCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	bytes int
}

const configCacheBytes = 8 << 20

func (cc *configCache) get(digest string) ([]byte, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	b, ok := cc.m[digest]
	return b, ok
}

func (cc *configCache) put(digest string, b []byte) {
	if len(b) > configCacheBytes/8 {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = map[string][]byte{}
	}
	if _, ok := cc.m[digest]; ok {
		return
	}
	for k, v := range cc.m {
		if cc.bytes+len(b) <= configCacheBytes {
			break
		}
		delete(cc.m, k)
		cc.bytes -= len(v)
	}
	cc.m[digest] = b
	cc.bytes += len(b)
}

// maxConfigSize bounds the config blobs read (real ones are kilobytes).
const maxConfigSize = 16 << 20

// imageFacts builds a ScannedImage (Repository left empty) from an image
// manifest and its config, fetched by fetchConfig. It does no I/O itself.
func imageFacts(what, tag string, manifest []byte, digest, mediaType string, fetchConfig func(v1.Descriptor) ([]byte, error)) (*imaged.ScannedImage, error) {
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil || m.Config.Digest.Hex == "" {
		return nil, invalidf("%s: unreadable image manifest", what)
	}
	if m.Config.Size < 0 {
		return nil, invalidf("%s: negative config size", what)
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		if l.Size < 0 {
			return nil, invalidf("%s: negative layer size", what)
		}
		size += l.Size
	}
	raw, err := fetchConfig(m.Config)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			// The manifest exists but its config blob does not: the
			// image is broken, not absent.
			return nil, fmt.Errorf("%w (%v)", invalidf("%s: config blob %s is missing", what, m.Config.Digest), err)
		}
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil || cfg == nil {
		return nil, invalidf("%s: unreadable image config", what)
	}
	labels := map[string]string{}
	for k, v := range cfg.Config.Labels {
		labels[k] = v
	}
	arch := imaged.NormalizeArch(cfg.Architecture)
	if arch == "" || arch == "unknown" {
		arch = imaged.ArchFromTag(tag)
	}
	return &imaged.ScannedImage{
		Tag:          tag,
		Architecture: arch,
		Digest:       digest,
		ConfigDigest: m.Config.Digest.String(),
		Size:         size,
		Labels:       labels,
		MediaType:    mediaType,
	}, nil
}
