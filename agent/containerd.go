//go:build containerd

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	refdocker "github.com/containerd/containerd/reference/docker"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	ctdlog "github.com/containerd/log"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imaged/imaged"
)

// ContainerdRuntime talks to containerd over its gRPC socket with the
// containerd 1.7 client (which works with 1.6 and 1.7 daemons).
//
// containerd keeps one image record per name; a multi-architecture
// record holds the platforms whose content was pulled, each listed as
// its own (reference, architecture). Removing one of them deletes the
// record, hence every platform pulled under that name.
//
// Sizes are content-store bytes (the compressed blobs of the platform's
// manifest, config and layers); the unpacked snapshots are not counted.
type ContainerdRuntime struct {
	client   *containerd.Client
	opts     ContainerdOptions
	log      *ctdlog.Entry // the client's logrus logger, fed to opts.Logger
	nodeArch string
}

// NewContainerdRuntime connects to containerd; it fails when the daemon
// does not answer within 10 seconds.
func NewContainerdRuntime(ctx context.Context, o ContainerdOptions) (*ContainerdRuntime, error) {
	o = o.withDefaults()
	if err := identifiers.Validate(o.Namespace); err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "bad containerd namespace %q: %v", o.Namespace, err)
	}
	// grpc retries a missing socket until the timeout: say so at once.
	if path, ok := strings.CutPrefix(o.Address, "unix://"); ok || !strings.Contains(o.Address, "://") {
		if _, err := os.Stat(path); err != nil {
			return nil, imaged.Errorf(imaged.EUNAVAILABLE, "containerd at %s: %v", o.Address, err)
		}
	}
	client, err := containerd.New(o.Address, containerd.WithDefaultNamespace(o.Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "containerd at %s: %v", o.Address, err)
	}
	if _, err := client.Version(ctx); err != nil {
		client.Close()
		return nil, classifyContainerd(err, "containerd at "+o.Address)
	}
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	lg.SetLevel(logrus.WarnLevel) // its info lines ("trying next host") are noise
	lg.AddHook(slogHook{o.Logger})
	return &ContainerdRuntime{client: client, opts: o, log: logrus.NewEntry(lg), nodeArch: runtime.GOARCH}, nil
}

// slogHook passes the containerd client's log entries (logrus, found in
// the context by containerd/log) to slog.
type slogHook struct{ l *slog.Logger }

func (h slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelWarn
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelError
	}
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("component", "containerd-client"))
	for k, v := range e.Data {
		attrs = append(attrs, slog.Any(k, v))
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// Close closes the connection to containerd.
func (c *ContainerdRuntime) Close() error { return c.client.Close() }

// Name implements Runtime.
func (c *ContainerdRuntime) Name() string { return RuntimeContainerd }

func (c *ContainerdRuntime) ns(ctx context.Context) context.Context {
	return ctdlog.WithLogger(namespaces.WithNamespace(ctx, c.opts.Namespace), c.log.WithContext(ctx))
}

// List implements Runtime: every record's platforms whose content is
// complete.
func (c *ContainerdRuntime) List(ctx context.Context) ([]imaged.AgentImage, error) {
	ctx = c.ns(ctx)
	recs, err := c.client.ImageService().List(ctx)
	if err != nil {
		return nil, classifyContainerd(err, "list images")
	}
	out := []imaged.AgentImage{}
	for _, rec := range recs {
		held, err := c.describe(ctx, rec)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // removed or collected since the listing
			}
			return nil, classifyContainerd(err, "inspect "+rec.Name)
		}
		out = append(out, held...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Reference != out[j].Reference {
			return out[i].Reference < out[j].Reference
		}
		return out[i].Architecture < out[j].Architecture
	})
	return out, nil
}

// describe returns the architectures of rec whose manifest, config and
// layers are all in the content store. The digest is the record's target,
// the digest its reference resolves to in the registry (the index's, for
// a multi-architecture image), as the docker runtime reports.
func (c *ContainerdRuntime) describe(ctx context.Context, rec images.Image) ([]imaged.AgentImage, error) {
	cs := c.client.ContentStore()
	plats, err := images.Platforms(ctx, cs, rec.Target)
	if err != nil {
		return nil, err
	}
	var out []imaged.AgentImage
	seen := map[string]bool{}
	for _, p := range plats {
		var m platforms.MatchComparer
		arch := imaged.NormalizeArch(p.Architecture)
		switch {
		case p.Architecture == "" && (p.OS == "" || p.OS == "linux") && !images.IsIndexType(rec.Target.MediaType):
			// A lone manifest whose config does not say: guess from the
			// tag as the catalog does (spec §4.3).
			arch, m = imaged.ArchFromTag(tagOf(rec.Name)), platforms.All
		case p.OS != "linux":
			continue
		default:
			m = platforms.OnlyStrict(p)
		}
		if seen[arch] {
			continue
		}
		ok, _, _, missing, err := images.Check(ctx, cs, rec.Target, m)
		if err != nil {
			return nil, err
		}
		if !ok || len(missing) > 0 {
			continue
		}
		size, err := rec.Size(ctx, cs, m)
		if err != nil {
			return nil, err
		}
		seen[arch] = true
		out = append(out, imaged.AgentImage{Reference: CanonicalRef(rec.Name), Architecture: arch,
			Digest: rec.Target.Digest.String(), Size: size})
	}
	return out, nil
}

// tagOf returns the tag of a reference ("" if it has none).
func tagOf(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	return ""
}

// orSilent matches the platform of m and the platform of an image config
// that names no architecture, which describe then places by its tag.
type orSilent struct{ platforms.MatchComparer }

func (o orSilent) Match(p ocispec.Platform) bool {
	return (p.Architecture == "" && (p.OS == "" || p.OS == "linux")) || o.MatchComparer.Match(p)
}

// held returns the entry of name for arch, or nil.
func (c *ContainerdRuntime) held(ctx context.Context, name, arch string) (*images.Image, *imaged.AgentImage, error) {
	rec, err := c.client.ImageService().Get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	all, err := c.describe(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	for i := range all {
		if all[i].Architecture == arch {
			return &rec, &all[i], nil
		}
	}
	return &rec, nil, nil
}

// containerdName is the name containerd's resolver is given: fully
// qualified, Docker Hub as docker.io (index.docker.io is not mapped to
// registry-1.docker.io).
func containerdName(ref string) (string, error) {
	name := engineRef(ref)
	n, err := refdocker.ParseDockerRef(name)
	if err != nil {
		return "", imaged.Errorf(imaged.EINVALID, "bad image reference %q: %v", ref, err)
	}
	if n.String() != name {
		return "", imaged.Errorf(imaged.EINVALID, "image reference %q is not canonical (%s)", ref, n)
	}
	return name, nil
}

func (c *ContainerdRuntime) resolver() remotes.Resolver {
	plain := c.opts.PlainHTTP
	hosts := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(func(host string) (bool, error) {
		if slices.Contains(plain, host) {
			return true, nil
		}
		return docker.MatchLocalhost(host)
	}))
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// Pull implements Runtime: fetches the platform linux/<arch> into the
// content store and unpacks it into the snapshotter, so that the image can
// run. A pull that fails, or finds no such platform, leaves no record it
// created behind.
func (c *ContainerdRuntime) Pull(ctx context.Context, ref, arch string) (imaged.AgentImage, error) {
	arch = archOrDefault(arch, c.nodeArch)
	name, err := containerdName(ref)
	if err != nil {
		return imaged.AgentImage{}, err
	}
	ctx = c.ns(ctx)
	_, err = c.client.ImageService().Get(ctx, name)
	existed := err == nil
	plat := ocispec.Platform{OS: "linux", Architecture: imaged.DockerArch(arch)}
	opts := []containerd.RemoteOpt{
		containerd.WithResolver(c.resolver()),
		containerd.WithPlatformMatcher(orSilent{platforms.OnlyStrict(plat)}),
		containerd.WithPullUnpack,
	}
	if c.opts.Snapshotter != "" {
		opts = append(opts, containerd.WithPullSnapshotter(c.opts.Snapshotter))
	}
	_, err = c.client.Pull(ctx, name, opts...)
	if err == nil {
		var got *imaged.AgentImage
		if _, got, err = c.held(ctx, name, arch); err == nil {
			if got != nil {
				got.Reference = ref
				return *got, nil
			}
			err = imaged.Errorf(imaged.ENOTFOUND, "image %s has no %s variant", ref, arch)
		}
	}
	if !existed {
		// Best effort, on a context of its own: ctx may be what failed.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = c.client.ImageService().Delete(dctx, name)
		cancel()
	}
	if ctx.Err() != nil {
		return imaged.AgentImage{}, ctx.Err()
	}
	if imaged.ErrorCode(err) != "" {
		return imaged.AgentImage{}, err
	}
	if errdefs.IsNotFound(err) || strings.Contains(err.Error(), "no match for platform") {
		return imaged.AgentImage{}, imaged.Errorf(imaged.ENOTFOUND, "pull of %s (%s): %v", ref, arch, err)
	}
	return imaged.AgentImage{}, classifyContainerd(err, "pull "+ref)
}

// Remove implements Runtime. containerd garbage-collects content no record
// references, so:
//   - without noprune the record is deleted with a synchronous collection,
//     and the bytes freed are the sizes of the record's blobs that the
//     collection removed (0 when another record still uses them);
//   - with noprune the record is deleted without one: its content stays
//     until containerd's next collection, and 0 bytes are reported.
//
// force is needed when a container was created from the image (containerd
// would otherwise keep the record's snapshots alive under the container).
func (c *ContainerdRuntime) Remove(ctx context.Context, ref, arch string, force, noprune bool) (int64, error) {
	arch = archOrDefault(arch, c.nodeArch)
	name, err := containerdName(ref)
	if err != nil {
		return 0, err
	}
	ctx = c.ns(ctx)
	rec, got, err := c.held(ctx, name, arch)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return 0, notPresent(ref, arch)
		}
		return 0, classifyContainerd(err, "inspect "+ref)
	}
	if got == nil {
		return 0, notPresent(ref, arch)
	}
	if !force {
		ctrs, err := c.client.ContainerService().List(ctx, fmt.Sprintf("image==%q", name))
		if err != nil {
			return 0, classifyContainerd(err, "list containers of "+ref)
		}
		if len(ctrs) > 0 {
			return 0, imaged.Errorf(imaged.ECONFLICT, "image %s is used by container %s", ref, ctrs[0].ID)
		}
	}
	var blobs map[digest.Digest]int64
	if !noprune {
		if blobs, err = presentBlobs(ctx, c.client.ContentStore(), rec.Target); err != nil {
			return 0, classifyContainerd(err, "walk "+ref)
		}
	}
	var dopts []images.DeleteOpt
	if !noprune {
		dopts = append(dopts, images.SynchronousDelete())
	}
	if err := c.client.ImageService().Delete(ctx, name, dopts...); err != nil {
		if errdefs.IsNotFound(err) {
			return 0, notPresent(ref, arch)
		}
		return 0, classifyContainerd(err, "remove "+ref)
	}
	var freed int64
	for dg, size := range blobs {
		if _, err := c.client.ContentStore().Info(ctx, dg); errdefs.IsNotFound(err) {
			freed += size
		}
	}
	return freed, nil
}

// presentBlobs returns the blobs under target that are in the store, with
// their sizes (an index's absent platforms are skipped).
func presentBlobs(ctx context.Context, cs content.Store, target ocispec.Descriptor) (map[digest.Digest]int64, error) {
	out := map[digest.Digest]int64{}
	err := images.Walk(ctx, images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		info, err := cs.Info(ctx, desc.Digest)
		if errdefs.IsNotFound(err) {
			return nil, images.ErrSkipDesc
		} else if err != nil {
			return nil, err
		}
		out[desc.Digest] = info.Size
		return images.Children(ctx, cs, desc)
	}), target)
	return out, err
}

// classifyContainerd maps a containerd client error to an imaged error.
func classifyContainerd(err error, what string) error {
	var ie *imaged.Error
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errdefs.IsNotFound(err):
		return imaged.Errorf(imaged.ENOTFOUND, "%s: %v", what, err)
	case errdefs.IsInvalidArgument(err):
		return imaged.Errorf(imaged.EINVALID, "%s: %v", what, err)
	case errdefs.IsAlreadyExists(err), errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		return imaged.Errorf(imaged.ECONFLICT, "%s: %v", what, err)
	case status.Code(err) == codes.Unavailable:
		return imaged.Errorf(imaged.EUNAVAILABLE, "containerd unreachable: %s: %v", what, err)
	}
	return imaged.Errorf(imaged.EUNAVAILABLE, "%s: %v", what, err)
}
