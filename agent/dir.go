package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imaged/imaged"
)

// Annotations of the index.json entries of the dir runtime: the canonical
// reference and the normalised architecture the entry was pulled as.
const (
	annotationRef  = "org.opencontainers.image.ref.name"
	annotationArch = "io.imaged.architecture"
)

// DirRuntime is the built-in cache: one OCI image layout directory holding
// one single-platform image per (reference, architecture), blobs shared
// between images. Operations are serialised by a mutex: a removal's
// garbage collection must never see the blobs of a pull whose index entry
// is not written yet. It also holds VM images from imaged's Glance API,
// referenced glance://<image id> (WithGlance, vmimage.go).
type DirRuntime struct {
	path     layout.Path
	nodeArch string
	keychain authn.Keychain
	glance   *GlanceSource // nil: glance:// references are refused

	mu sync.Mutex
}

// NewDirRuntime opens (creating if needed) an OCI layout in dir.
func NewDirRuntime(dir string) (*DirRuntime, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: dir runtime: %w", err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("agent: dir runtime: create layout: %w", err)
		}
	}
	return &DirRuntime{path: p, nodeArch: runtime.GOARCH, keychain: authn.DefaultKeychain}, nil
}

// Name implements Runtime.
func (d *DirRuntime) Name() string { return imaged.AgentRuntimeDir }

func (d *DirRuntime) manifests() ([]v1.Descriptor, error) {
	idx, err := d.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("agent: dir runtime: read index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("agent: dir runtime: read index: %w", err)
	}
	return im.Manifests, nil
}

// List implements Runtime. The size of an image is what its blobs take
// (manifest, config, compressed layers), shared blobs counted in each.
func (d *DirRuntime) List(ctx context.Context) ([]imaged.AgentImage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	descs, err := d.manifests()
	if err != nil {
		return nil, err
	}
	out, err := d.listVM()
	if err != nil {
		return nil, err
	}
	for _, desc := range descs {
		ref, arch := desc.Annotations[annotationRef], desc.Annotations[annotationArch]
		if ref == "" {
			continue // an entry this runtime did not write
		}
		size, err := d.imageSize(desc)
		if err != nil {
			return nil, err
		}
		out = append(out, imaged.AgentImage{Reference: ref, Architecture: arch, Digest: desc.Digest.String(), Size: size})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Reference != out[j].Reference {
			return out[i].Reference < out[j].Reference
		}
		return out[i].Architecture < out[j].Architecture
	})
	return out, nil
}

// blobsOf returns the blobs an image entry references.
func (d *DirRuntime) blobsOf(desc v1.Descriptor) ([]v1.Descriptor, error) {
	raw, err := os.ReadFile(filepath.Join(string(d.path), "blobs", desc.Digest.Algorithm, desc.Digest.Hex))
	if err != nil {
		return nil, fmt.Errorf("agent: dir runtime: read manifest %s: %w", desc.Digest, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("agent: dir runtime: parse manifest %s: %w", desc.Digest, err)
	}
	out := append([]v1.Descriptor{desc, m.Config}, m.Layers...)
	return out, nil
}

func (d *DirRuntime) imageSize(desc v1.Descriptor) (int64, error) {
	blobs, err := d.blobsOf(desc)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range blobs {
		n += b.Size
	}
	return n, nil
}

func matchEntry(ref, arch string) func(v1.Descriptor) bool {
	return func(desc v1.Descriptor) bool {
		return desc.Annotations[annotationRef] == ref && desc.Annotations[annotationArch] == arch
	}
}

// Pull implements Runtime: it resolves the reference for linux/arch (an
// index picks its child; a single manifest must be of that architecture)
// and writes the image into the layout, replacing an older pull of the
// same (reference, architecture).
func (d *DirRuntime) Pull(ctx context.Context, ref, arch string) (imaged.AgentImage, error) {
	if IsGlanceRef(ref) {
		return d.pullVM(ctx, ref, arch) // "" stays any architecture
	}
	arch = archOrDefault(arch, d.nodeArch)
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EINVALID, "bad image reference %q: %v", ref, err)
	}
	plat := v1.Platform{OS: "linux", Architecture: imaged.DockerArch(arch)}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(plat), remote.WithAuthFromKeychain(d.keychain))
	if err != nil {
		return imaged.AgentImage{}, registryError(ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return imaged.AgentImage{}, registryError(ref, err)
	}
	if cfg.Architecture != "" && imaged.NormalizeArch(cfg.Architecture) != arch {
		return imaged.AgentImage{}, imaged.Errorf(imaged.ENOTFOUND, "image %s has no %s variant (it is %s)", ref, arch, imaged.NormalizeArch(cfg.Architecture))
	}
	dg, err := img.Digest()
	if err != nil {
		return imaged.AgentImage{}, registryError(ref, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.path.ReplaceImage(img, matchEntry(ref, arch),
		layout.WithAnnotations(map[string]string{annotationRef: ref, annotationArch: arch}),
		layout.WithPlatform(plat)); err != nil {
		if ctx.Err() != nil {
			return imaged.AgentImage{}, ctx.Err()
		}
		return imaged.AgentImage{}, registryError(ref, err)
	}
	descs, err := d.manifests()
	if err != nil {
		return imaged.AgentImage{}, err
	}
	for _, desc := range descs {
		if matchEntry(ref, arch)(desc) {
			size, err := d.imageSize(desc)
			if err != nil {
				return imaged.AgentImage{}, err
			}
			return imaged.AgentImage{Reference: ref, Architecture: arch, Digest: dg.String(), Size: size}, nil
		}
	}
	return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: %s vanished after its pull", ref)
}

// registryError classifies a pull failure.
func registryError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case 404:
			return imaged.Errorf(imaged.ENOTFOUND, "image %s is not in its registry", ref)
		case 401, 403:
			return imaged.Errorf(imaged.EUNAUTHORIZED, "registry refused access to %s", ref)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return imaged.Errorf(imaged.EUNAVAILABLE, "cannot pull %s: %v", ref, err)
}

// Remove implements Runtime. Without noprune it deletes the blobs no
// remaining image references and returns their size; force has no meaning
// here (no container uses the cache).
func (d *DirRuntime) Remove(ctx context.Context, ref, arch string, force, noprune bool) (int64, error) {
	if IsGlanceRef(ref) {
		return d.removeVM(ref, arch)
	}
	arch = archOrDefault(arch, d.nodeArch)
	d.mu.Lock()
	defer d.mu.Unlock()
	descs, err := d.manifests()
	if err != nil {
		return 0, err
	}
	found := false
	for _, desc := range descs {
		found = found || matchEntry(ref, arch)(desc)
	}
	if !found {
		return 0, notPresent(ref, arch)
	}
	if err := d.path.RemoveDescriptors(matchEntry(ref, arch)); err != nil {
		return 0, fmt.Errorf("agent: dir runtime: remove %s: %w", ref, err)
	}
	if noprune {
		return 0, nil
	}
	return d.collect()
}

// collect deletes the blobs no index entry references and returns the
// bytes freed.
func (d *DirRuntime) collect() (int64, error) {
	descs, err := d.manifests()
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, desc := range descs {
		if desc.Annotations[annotationRef] == "" {
			// An entry of another writer: its blobs are unknown to us, so
			// nothing is collected rather than something it needs.
			return 0, nil
		}
		blobs, err := d.blobsOf(desc)
		if err != nil {
			return 0, err
		}
		for _, b := range blobs {
			keep[b.Digest.String()] = true
		}
	}
	var freed int64
	root := filepath.Join(string(d.path), "blobs")
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		alg, hex, ok := strings.Cut(filepath.ToSlash(rel), "/")
		if !ok || keep[alg+":"+hex] {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		freed += info.Size()
		return nil
	})
	if err != nil {
		return freed, fmt.Errorf("agent: dir runtime: collect blobs: %w", err)
	}
	return freed, nil
}
