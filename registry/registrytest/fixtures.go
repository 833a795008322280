package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imaged/imaged"
)

// The package-level Push* functions push anonymously to host
// ("127.0.0.1:<port>", plain HTTP); Server.Pusher returns a Pusher whose
// methods of the same names use the server's credentials (basic or
// token). All of them fail the test on error.

// Kind is the manifest format of a pushed image.
type Kind int

// Image manifest formats.
const (
	Docker Kind = iota // application/vnd.docker.distribution.manifest.v2+json
	OCI                // application/vnd.oci.image.manifest.v1+json
)

// NewImage builds a small image with one random 256-byte layer, the
// given architecture (any spelling; written in Docker/GOARCH form, ""
// leaves the config without one), OS linux and labels.
func NewImage(t testing.TB, kind Kind, arch string, labels map[string]string) v1.Image {
	t.Helper()
	lmt := types.DockerLayer
	if kind == OCI {
		lmt = types.OCILayer
	}
	layer, err := random.Layer(256, lmt)
	if err != nil {
		t.Fatal(err)
	}
	return newImage(t, kind, arch, labels, layer)
}

func newImage(t testing.TB, kind Kind, arch string, labels map[string]string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := newImageErr(kind, arch, labels, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newImageErr(kind Kind, arch string, labels map[string]string, layers ...v1.Layer) (v1.Image, error) {
	base := empty.Image
	if kind == OCI {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = ""
	if arch != "" {
		cf.Architecture = imaged.DockerArch(arch)
	}
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// NewIndex builds an index of one image per architecture (OCI index for
// OCI, Docker manifest list for Docker), each with labels.
func NewIndex(t testing.TB, kind Kind, archs []string, labels map[string]string) v1.ImageIndex {
	t.Helper()
	imgs := make([]v1.Image, len(archs))
	for i, a := range archs {
		imgs[i] = NewImage(t, kind, a, labels)
	}
	return indexOf(t, kind, archs, imgs)
}

func indexOf(t testing.TB, kind Kind, archs []string, imgs []v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	if kind == Docker {
		idx = mutate.IndexMediaType(idx, types.DockerManifestList)
	}
	for i, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: imaged.DockerArch(archs[i])}},
		})
	}
	return idx
}

// AddAttestation appends a BuildKit-style attestation manifest (platform
// unknown/unknown, annotation vnd.docker.reference.type=
// attestation-manifest) referring to the first image of idx.
func AddAttestation(t testing.TB, idx v1.ImageIndex) v1.ImageIndex {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		t.Fatalf("AddAttestation: empty index: %v", err)
	}
	stmt := static.NewLayer([]byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`), "application/vnd.in-toto+json")
	att := newImage(t, OCI, "", nil, stmt)
	return mutate.AppendManifests(idx, mutate.IndexAddendum{
		Add: att,
		Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": im.Manifests[0].Digest.String(),
			},
		},
	})
}

// Pusher pushes to one registry with fixed credentials.
type Pusher struct {
	Host               string
	Username, Password string
}

func (p Pusher) opts(ctx context.Context) []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	if p.Username != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: p.Username, Password: p.Password})
	}
	return []remote.Option{remote.WithAuth(auth), remote.WithContext(ctx), remote.WithJobs(4)}
}

func (p Pusher) ref(t testing.TB, repo, tag string) name.Reference {
	t.Helper()
	ref, err := name.NewTag(p.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("registrytest: bad reference %s:%s: %v", repo, tag, err)
	}
	return ref
}

// WriteImage pushes img as repo:tag and returns its manifest digest.
func (p Pusher) WriteImage(t testing.TB, repo, tag string, img v1.Image) string {
	t.Helper()
	if err := remote.Write(p.ref(t, repo, tag), img, p.opts(context.Background())...); err != nil {
		t.Fatalf("registrytest: push %s/%s:%s: %v", p.Host, repo, tag, err)
	}
	return digestOf(t, img)
}

// WriteIndex pushes idx (and its images) as repo:tag and returns the
// index digest.
func (p Pusher) WriteIndex(t testing.TB, repo, tag string, idx v1.ImageIndex) string {
	t.Helper()
	if err := remote.WriteIndex(p.ref(t, repo, tag), idx, p.opts(context.Background())...); err != nil {
		t.Fatalf("registrytest: push index %s/%s:%s: %v", p.Host, repo, tag, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushImage pushes a small random single-arch Docker schema2 image with
// labels as repo:tag and returns its manifest digest.
func (p Pusher) PushImage(t testing.TB, repo, tag, arch string, labels map[string]string) string {
	t.Helper()
	return p.WriteImage(t, repo, tag, NewImage(t, Docker, arch, labels))
}

// PushIndex pushes an OCI image index with one small image per
// architecture (all with labels) as repo:tag and returns the index digest.
func (p Pusher) PushIndex(t testing.TB, repo, tag string, archs []string, labels map[string]string) string {
	t.Helper()
	return p.WriteIndex(t, repo, tag, NewIndex(t, OCI, archs, labels))
}

// PushManifestList is PushIndex with a Docker manifest list of Docker
// schema2 images.
func (p Pusher) PushManifestList(t testing.TB, repo, tag string, archs []string, labels map[string]string) string {
	t.Helper()
	return p.WriteIndex(t, repo, tag, NewIndex(t, Docker, archs, labels))
}

// PushMany pushes repos repositories "many/r<NNN>" with tagsPerRepo tags
// "t<NNNN>" each, every tag a distinct single-arch (x86_64) Docker image
// whose config carries the labels ai.backend.kernelspec=1 and
// registrytest.tag=<repo>:<tag>. The images of one repository share one
// small layer, and each tag is written with the three requests it cannot
// do without (start a config upload, finish it, put the manifest) rather
// than go-containerregistry's six, 16 at a time: 2,000 tags take seconds
// on loopback. Returns the repository names, sorted.
func (p Pusher) PushMany(t testing.TB, repos, tagsPerRepo int) []string {
	t.Helper()
	ctx := context.Background()
	type job struct {
		repo, tag string
		rt        http.RoundTripper
	}
	layer := fileLayer(t, Docker, "registrytest PushMany")
	// Enough idle connections for every worker: http.DefaultTransport
	// keeps 2 per host, and reconnecting dominates on loopback.
	base := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	defer base.CloseIdleConnections()
	jobs := make(chan job)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for j := range jobs {
				if err := p.putTag(ctx, j.rt, layer, j.repo, j.tag); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("push %s:%s: %w", j.repo, j.tag, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	names := make([]string, 0, repos)
	for r := 0; r < repos && firstEr == nil; r++ {
		repo := fmt.Sprintf("many/r%03d", r)
		names = append(names, repo)
		ref := p.ref(t, repo, "base")
		if err := remote.WriteLayer(ref.Context(), layer, p.opts(ctx)...); err != nil {
			t.Fatalf("registrytest: PushMany: layer of %s: %v", repo, err)
		}
		var auth authn.Authenticator = authn.Anonymous
		if p.Username != "" {
			auth = authn.FromConfig(authn.AuthConfig{Username: p.Username, Password: p.Password})
		}
		rt, err := transport.NewWithContext(ctx, ref.Context().Registry, auth, base,
			[]string{ref.Context().Scope(transport.PushScope)})
		if err != nil {
			t.Fatalf("registrytest: PushMany: %v", err)
		}
		for i := 0; i < tagsPerRepo; i++ {
			jobs <- job{repo, fmt.Sprintf("t%04d", i), rt}
		}
	}
	close(jobs)
	wg.Wait()
	if firstEr != nil {
		t.Fatalf("registrytest: PushMany: %v", firstEr)
	}
	sort.Strings(names)
	return names
}

// putTag writes one image of PushMany: config blob upload (POST, PUT)
// and manifest PUT; the layer is already in the repository.
func (p Pusher) putTag(ctx context.Context, rt http.RoundTripper, layer v1.Layer, repo, tag string) error {
	img, err := newImageErr(Docker, "amd64", map[string]string{
		imaged.LabelKernelspec: "1",
		"registrytest.tag":     repo + ":" + tag,
	}, layer)
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	man, err := img.RawManifest()
	if err != nil {
		return err
	}
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt}
	base := "http://" + p.Host + "/v2/" + repo
	do := func(method, u string, body []byte, ctype string, want int) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained for connection reuse
		resp.Body.Close()
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: HTTP %d", method, u, resp.StatusCode)
		}
		return resp, nil
	}
	resp, err := do(http.MethodPost, base+"/blobs/uploads/", nil, "", http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := resp.Location()
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", cfgName.String())
	loc.RawQuery = q.Encode()
	if _, err := do(http.MethodPut, loc.String(), cfg, "application/octet-stream", http.StatusCreated); err != nil {
		return err
	}
	_, err = do(http.MethodPut, base+"/manifests/"+tag, man, string(mt), http.StatusCreated)
	return err
}

// Fixture is one pushed Backend.AI fixture.
type Fixture struct {
	Repo, Tag string
	Kind      string   // "docker", "oci", "oci-index" or "docker-list"
	Archs     []string // normalised (x86_64, aarch64)
	Digest    string   // manifest digest (index digest for multi-arch)
	Labels    map[string]string
}

// BackendAIFixtures pushes the six Backend.AI-style fixtures of the
// registry peer (see the package docs of registrytest's callers):
//
//	bai/python:3.9-ubuntu20.04   Docker schema2, amd64
//	bai/python:3.11-ubuntu22.04  OCI index, amd64 + arm64
//	bai/pytorch:2.1-py310        Docker manifest list, amd64 + arm64
//	bai/cuda:12.1-py311          OCI manifest, amd64, accelerators=cuda
//	bai/vllm:0.4-inference       OCI manifest, amd64, role=INFERENCE
//	other/busybox:latest         OCI manifest, amd64, no ai.backend.* labels
//
// Layers are deterministic (a one-file tar per image), so digests are the
// same on every run. Returns the fixtures in that order.
func (p Pusher) BackendAIFixtures(t testing.TB) []Fixture {
	t.Helper()
	common := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"ai.backend.kernelspec":    "1",
			"ai.backend.features":      "batch query uid-match user-input",
			"ai.backend.runtime-type":  "python",
			"ai.backend.runtime-path":  "/usr/bin/python3",
			"ai.backend.service-ports": "ipython:pty:3000,jupyter:http:8081",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	py39 := common(map[string]string{"ai.backend.base-distro": "ubuntu20.04",
		"ai.backend.resource.min.cpu": "1", "ai.backend.resource.min.mem": "256m"})
	py311 := common(map[string]string{"ai.backend.base-distro": "ubuntu22.04",
		"ai.backend.resource.min.cpu": "1", "ai.backend.resource.min.mem": "1g"})
	pt := common(map[string]string{"ai.backend.base-distro": "ubuntu22.04",
		"ai.backend.resource.min.cpu": "2", "ai.backend.resource.min.mem": "2g"})
	cuda := common(map[string]string{"ai.backend.base-distro": "ubuntu22.04",
		"ai.backend.accelerators": "cuda", "ai.backend.resource.min.cpu": "2", "ai.backend.resource.min.mem": "4g",
		"ai.backend.resource.min.cuda.device": "1", "ai.backend.resource.min.cuda.shares": "0.1"})
	vllm := map[string]string{
		"ai.backend.kernelspec": "1", "ai.backend.role": "INFERENCE",
		"ai.backend.runtime-type": "python", "ai.backend.runtime-path": "/usr/bin/python3",
		"ai.backend.base-distro": "ubuntu22.04", "ai.backend.service-ports": "vllm:preopen:8000",
		"ai.backend.endpoint-ports": "vllm", "ai.backend.model-path": "/models",
		"ai.backend.model-format": "safetensors", "ai.backend.resource.min.mem": "8g",
	}
	busybox := map[string]string{"org.opencontainers.image.title": "busybox"}

	det := func(kind Kind, arch, content string, labels map[string]string) v1.Image {
		return newImage(t, kind, arch, labels, fileLayer(t, kind, content))
	}
	var out []Fixture
	single := func(repo, tag, kindName string, kind Kind, content string, labels map[string]string) {
		d := p.WriteImage(t, repo, tag, det(kind, "amd64", content, labels))
		out = append(out, Fixture{Repo: repo, Tag: tag, Kind: kindName, Archs: []string{"x86_64"}, Digest: d, Labels: labels})
	}
	multi := func(repo, tag, kindName string, kind Kind, prefix string, labels map[string]string) {
		archs := []string{"amd64", "arm64"}
		imgs := []v1.Image{det(kind, "amd64", prefix+"-amd64", labels), det(kind, "arm64", prefix+"-arm64", labels)}
		d := p.WriteIndex(t, repo, tag, indexOf(t, kind, archs, imgs))
		out = append(out, Fixture{Repo: repo, Tag: tag, Kind: kindName, Archs: []string{"x86_64", "aarch64"}, Digest: d, Labels: labels})
	}
	single("bai/python", "3.9-ubuntu20.04", "docker", Docker, "py39-amd64", py39)
	multi("bai/python", "3.11-ubuntu22.04", "oci-index", OCI, "py311", py311)
	multi("bai/pytorch", "2.1-py310", "docker-list", Docker, "pt21", pt)
	single("bai/cuda", "12.1-py311", "oci", OCI, "cuda121", cuda)
	single("bai/vllm", "0.4-inference", "oci", OCI, "vllm04", vllm)
	single("other/busybox", "latest", "oci", OCI, "busybox", busybox)
	return out
}

// fileLayer is a deterministic layer holding /opt/fixture/id = content.
func fileLayer(t testing.TB, kind Kind, content string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opt/fixture/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opt/fixture/id", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content) + 1)},
	} {
		h.Format = tar.FormatUSTAR
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(tw, content+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	mt := types.DockerLayer
	if kind == OCI {
		mt = types.OCILayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushImage pushes anonymously; see Pusher.PushImage.
func PushImage(t testing.TB, host, repo, tag, arch string, labels map[string]string) string {
	t.Helper()
	return Pusher{Host: host}.PushImage(t, repo, tag, arch, labels)
}

// PushIndex pushes anonymously; see Pusher.PushIndex.
func PushIndex(t testing.TB, host, repo, tag string, archs []string, labels map[string]string) string {
	t.Helper()
	return Pusher{Host: host}.PushIndex(t, repo, tag, archs, labels)
}

// PushManifestList pushes anonymously; see Pusher.PushManifestList.
func PushManifestList(t testing.TB, host, repo, tag string, archs []string, labels map[string]string) string {
	t.Helper()
	return Pusher{Host: host}.PushManifestList(t, repo, tag, archs, labels)
}

// PushMany pushes anonymously; see Pusher.PushMany.
func PushMany(t testing.TB, host string, repos, tagsPerRepo int) []string {
	t.Helper()
	return Pusher{Host: host}.PushMany(t, repos, tagsPerRepo)
}

// BackendAIFixtures pushes anonymously; see Pusher.BackendAIFixtures.
func BackendAIFixtures(t testing.TB, host string) []Fixture {
	t.Helper()
	return Pusher{Host: host}.BackendAIFixtures(t)
}

// Pusher returns a Pusher with the server's credentials.
func (s *Server) Pusher() Pusher {
	return Pusher{Host: s.Host, Username: s.Username, Password: s.Password}
}
