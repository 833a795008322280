package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
)

func ociReg(s *registrytest.Server) *imaged.Registry {
	return &imaged.Registry{Name: "local", URL: s.URL, Type: imaged.RegistryOCI,
		Username: s.Username, Password: s.Password, VerifyTLS: true}
}

func listAll(t *testing.T, c *registry.Client, reg *imaged.Registry, project string) []string {
	t.Helper()
	var got []string
	if err := c.ListRepositories(context.Background(), reg, project, func(r string) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("ListRepositories(%q): %v", project, err)
	}
	return got
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := imaged.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// TestListRepositories: catalog pagination (page size 2 over 7
// repositories) and project filtering, where "proj" must not match
// "proj2/x" (the reference's bare prefix match did).
func TestListRepositories(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	repos := []string{"proj/a", "proj/b/c", "proj", "proj2/x", "projx", "other/proj/y", "z"}
	for _, r := range repos {
		registrytest.PushImage(t, s.Host, r, "v1", "amd64", nil)
	}
	counter := &registry.CountingTransport{}
	c := registry.New(registry.Options{PageSize: 2, Transport: counter})
	reg := ociReg(s)
	all := listAll(t, c, reg, "")
	sort.Strings(repos)
	if !slices.Equal(all, repos) {
		t.Fatalf("all repositories = %v, want %v", all, repos)
	}
	// 7 repositories, 2 per page: 4 pages, plus the /v2/ ping.
	if n := counter.Requests(); n != 5 {
		t.Errorf("requests for a 4-page catalog = %d, want 5 (ping + 4 pages)", n)
	}
	for _, tc := range []struct {
		project string
		want    []string
	}{
		{"proj", []string{"proj", "proj/a", "proj/b/c"}},
		{"proj/", []string{"proj", "proj/a", "proj/b/c"}},
		{"proj/b", []string{"proj/b/c"}},
		{"proj2", []string{"proj2/x"}},
		{"other", []string{"other/proj/y"}},
		{"nothing", nil},
	} {
		if got := listAll(t, c, reg, tc.project); !slices.Equal(got, tc.want) {
			t.Errorf("project %q: got %v, want %v", tc.project, got, tc.want)
		}
	}
	// fn's error stops the listing and comes back as is.
	stop := errors.New("stop")
	calls := 0
	err := c.ListRepositories(context.Background(), reg, "", func(string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn error: got %v after %d calls, want stop after 1", err, calls)
	}
}

func TestInProject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		repo, project string
		want          bool
	}{
		{"proj/a", "proj", true}, {"proj", "proj", true}, {"proj2/x", "proj", false},
		{"projx", "proj", false}, {"a/b/c", "a/b", true}, {"a/bc", "a/b", false},
		{"x", "", true}, {"proj/a", "proj/", true},
	} {
		if got := registry.InProject(tc.repo, tc.project); got != tc.want {
			t.Errorf("InProject(%q, %q) = %v, want %v", tc.repo, tc.project, got, tc.want)
		}
	}
}

// TestListTags: > 100 tags with a page size of 40, and a repository whose
// only manifest was deleted (tags: null) lists as empty.
func TestListTags(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	registrytest.PushMany(t, s.Host, 1, 130)
	c := registry.New(registry.Options{PageSize: 40})
	reg := ociReg(s)
	tags, err := c.ListTags(context.Background(), reg, "many/r000")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 130 {
		t.Fatalf("got %d tags, want 130", len(tags))
	}
	sort.Strings(tags)
	tags = slices.Compact(tags)
	if len(tags) != 130 || tags[0] != "t0000" || tags[129] != "t0129" {
		t.Fatalf("tags not the 130 distinct pushed ones: %d, %v..%v", len(tags), tags[0], tags[len(tags)-1])
	}

	d := registrytest.PushImage(t, s.Host, "gone/img", "only", "amd64", nil)
	if err := c.DeleteManifest(context.Background(), reg, "gone/img", d); err != nil {
		t.Fatal(err)
	}
	tags, err = c.ListTags(context.Background(), reg, "gone/img")
	if err != nil || tags == nil || len(tags) != 0 {
		t.Fatalf("tags of emptied repo = %#v, %v; want [] and no error", tags, err)
	}
	_, err = c.ListTags(context.Background(), reg, "no/such")
	wantCode(t, err, imaged.ENOTFOUND)
}

// TestScan scans every manifest shape and checks the facts against what
// was pushed: digests, sizes (layers + config), labels, architectures.
func TestScan(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	p := s.Pusher()
	labels := map[string]string{"ai.backend.kernelspec": "1", "k": "v"}

	dockerImg := registrytest.NewImage(t, registrytest.Docker, "amd64", labels)
	ociImg := registrytest.NewImage(t, registrytest.OCI, "arm64", labels)
	noArch := registrytest.NewImage(t, registrytest.OCI, "", nil)
	ociIdx := registrytest.NewIndex(t, registrytest.OCI, []string{"amd64", "arm64"}, labels)
	dockerList := registrytest.NewIndex(t, registrytest.Docker, []string{"arm64", "amd64"}, labels)
	attIdx := registrytest.AddAttestation(t, registrytest.NewIndex(t, registrytest.OCI, []string{"amd64"}, labels))

	p.WriteImage(t, "s/docker", "v2", dockerImg)
	p.WriteImage(t, "s/oci", "v1", ociImg)
	p.WriteImage(t, "s/noarch", "1.0-arm64", noArch)
	p.WriteImage(t, "s/noarch", "1.0", noArch)
	ociIdxDigest := p.WriteIndex(t, "s/ociidx", "multi", ociIdx)
	listDigest := p.WriteIndex(t, "s/list", "multi", dockerList)
	attDigest := p.WriteIndex(t, "s/att", "v1", attIdx)

	c := registry.New(registry.Options{})
	reg := ociReg(s)
	expect := func(img v1.Image, arch, index string) imaged.ScannedImage {
		t.Helper()
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		mt, _ := img.MediaType()
		size := m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
		}
		cf, _ := img.ConfigFile()
		lb := cf.Config.Labels
		if lb == nil {
			lb = map[string]string{}
		}
		return imaged.ScannedImage{Architecture: arch, Digest: d.String(), IndexDigest: index,
			ConfigDigest: m.Config.Digest.String(), Size: size, Labels: lb, MediaType: string(mt)}
	}
	child := func(idx v1.ImageIndex, i int) v1.Image {
		t.Helper()
		im, _ := idx.IndexManifest()
		img, err := idx.Image(im.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	dockerDigest, _ := dockerImg.Digest()
	for _, tc := range []struct {
		repo, ref string
		want      []imaged.ScannedImage
	}{
		{"s/docker", "v2", []imaged.ScannedImage{expect(dockerImg, "x86_64", "")}},
		{"s/docker", dockerDigest.String(), []imaged.ScannedImage{expect(dockerImg, "x86_64", "")}},
		{"s/oci", "v1", []imaged.ScannedImage{expect(ociImg, "aarch64", "")}},
		// No architecture in the config: guessed from the tag.
		{"s/noarch", "1.0-arm64", []imaged.ScannedImage{expect(noArch, "aarch64", "")}},
		{"s/noarch", "1.0", []imaged.ScannedImage{expect(noArch, "x86_64", "")}},
		{"s/ociidx", "multi", []imaged.ScannedImage{
			expect(child(ociIdx, 0), "x86_64", ociIdxDigest), expect(child(ociIdx, 1), "aarch64", ociIdxDigest)}},
		{"s/list", "multi", []imaged.ScannedImage{
			expect(child(dockerList, 0), "aarch64", listDigest), expect(child(dockerList, 1), "x86_64", listDigest)}},
		// The attestation entry (unknown/unknown) is skipped.
		{"s/att", "v1", []imaged.ScannedImage{expect(child(attIdx, 0), "x86_64", attDigest)}},
	} {
		t.Run(tc.repo+"/"+tc.ref, func(t *testing.T) {
			got, err := c.Scan(context.Background(), reg, tc.repo, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			tag := tc.ref
			if strings.HasPrefix(tag, "sha256:") {
				tag = ""
			}
			for i := range tc.want {
				tc.want[i].Repository, tc.want[i].Tag = tc.repo, tag
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d images, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				g, _ := json.Marshal(got[i])
				w, _ := json.Marshal(tc.want[i])
				if string(g) != string(w) {
					t.Errorf("image %d:\n got %s\nwant %s", i, g, w)
				}
			}
		})
	}
	if att, _ := attIdx.IndexManifest(); len(att.Manifests) != 2 {
		t.Fatalf("attestation fixture has %d entries, want 2", len(att.Manifests))
	}
	wantMT := map[string]string{"s/docker": "application/vnd.docker.distribution.manifest.v2+json",
		"s/oci": "application/vnd.oci.image.manifest.v1+json"}
	for repo, mt := range wantMT {
		tag := map[string]string{"s/docker": "v2", "s/oci": "v1"}[repo]
		got, err := c.Scan(context.Background(), reg, repo, tag)
		if err != nil || got[0].MediaType != mt {
			t.Errorf("%s media type = %v, %v; want %s", repo, got, err, mt)
		}
	}
	for _, tc := range []struct{ repo, ref, code string }{
		{"s/docker", "nope", imaged.ENOTFOUND},
		{"no/such", "v1", imaged.ENOTFOUND},
		{"s/docker", "sha256:" + strings.Repeat("0", 64), imaged.ENOTFOUND},
		{"s/docker", "sha256:xyz", imaged.EINVALID},
		{"s/docker", "bad tag!", imaged.EINVALID},
		{"", "v1", imaged.EINVALID},
		{"UPPER/case", "v1", imaged.EINVALID},
	} {
		_, err := c.Scan(context.Background(), reg, tc.repo, tc.ref)
		if imaged.ErrorCode(err) != tc.code {
			t.Errorf("Scan(%q, %q): %v, want %s", tc.repo, tc.ref, err, tc.code)
		}
	}
}

// TestBackendAIFixtures scans the six fixtures as the scanner will.
func TestBackendAIFixtures(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	fx := registrytest.BackendAIFixtures(t, s.Host)
	again := registrytest.Start(t, registrytest.Options{})
	fx2 := registrytest.BackendAIFixtures(t, again.Host)
	c := registry.New(registry.Options{})
	reg := ociReg(s)
	if got := listAll(t, c, reg, "bai"); !slices.Equal(got, []string{"bai/cuda", "bai/python", "bai/pytorch", "bai/vllm"}) {
		t.Errorf("bai repositories = %v", got)
	}
	for i, f := range fx {
		if f.Digest != fx2[i].Digest {
			t.Errorf("%s:%s digest differs between registries: %s vs %s (fixtures must be deterministic)", f.Repo, f.Tag, f.Digest, fx2[i].Digest)
		}
		got, err := c.Scan(context.Background(), reg, f.Repo, f.Tag)
		if err != nil {
			t.Fatalf("%s:%s: %v", f.Repo, f.Tag, err)
		}
		var archs []string
		for _, g := range got {
			archs = append(archs, g.Architecture)
			if !mapsEqual(g.Labels, f.Labels) {
				t.Errorf("%s:%s labels = %v, want %v", f.Repo, f.Tag, g.Labels, f.Labels)
			}
			if len(f.Archs) > 1 && g.IndexDigest != f.Digest || len(f.Archs) == 1 && g.Digest != f.Digest {
				t.Errorf("%s:%s digests %s/%s, pushed %s", f.Repo, f.Tag, g.Digest, g.IndexDigest, f.Digest)
			}
		}
		if !slices.Equal(archs, f.Archs) {
			t.Errorf("%s:%s archs = %v, want %v", f.Repo, f.Tag, archs, f.Archs)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestAuth: HTTP Basic (htpasswd) and the bearer token flow, with good
// and wrong passwords; the password never shows in an error.
func TestAuth(t *testing.T) {
	t.Parallel()
	for _, token := range []bool{false, true} {
		t.Run("token="+strconv.FormatBool(token), func(t *testing.T) {
			t.Parallel()
			s := registrytest.Start(t, registrytest.Options{Username: "tester", Password: "s3cr3t-pw", Token: token})
			d := s.Pusher().PushImage(t, "auth/img", "v1", "arm64", map[string]string{"a": "b"})
			c := registry.New(registry.Options{})
			reg := ociReg(s)
			got, err := c.Scan(context.Background(), reg, "auth/img", "v1")
			if err != nil || len(got) != 1 || got[0].Digest != d || got[0].Architecture != "aarch64" {
				t.Fatalf("scan with good credentials: %+v, %v", got, err)
			}
			if repos := listAll(t, c, reg, ""); !slices.Equal(repos, []string{"auth/img"}) {
				t.Errorf("repositories = %v", repos)
			}
			if tags, err := c.ListTags(context.Background(), reg, "auth/img"); err != nil || !slices.Equal(tags, []string{"v1"}) {
				t.Errorf("tags = %v, %v", tags, err)
			}

			if token && s.TokensIssued() == 0 {
				t.Error("token auth: the token server issued no token")
			}
			bad := *reg
			bad.Password = "wrong-pw-zzz"
			_, err = c.Scan(context.Background(), &bad, "auth/img", "v1")
			wantCode(t, err, imaged.EUNAUTHORIZED)
			if !strings.Contains(imaged.ErrorMessage(err), "refused the credentials") {
				t.Errorf("message = %q", imaged.ErrorMessage(err))
			}
			if strings.Contains(err.Error(), "wrong-pw-zzz") || strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("error leaks the password: %v", err)
			}
			err = c.ListRepositories(context.Background(), &bad, "", func(string) error { return nil })
			wantCode(t, err, imaged.EUNAUTHORIZED)

			anon := *reg
			anon.Username, anon.Password = "", ""
			_, err = c.ListTags(context.Background(), &anon, "auth/img")
			wantCode(t, err, imaged.EUNAUTHORIZED)
		})
	}
}

// TestUnavailable: a closed port and a registry that answers 503 are
// EUNAVAILABLE, quickly.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c := registry.New(registry.Options{RequestTimeout: 300 * time.Millisecond})
	for _, u := range []string{"http://" + addr, failing.URL, slow.URL} {
		reg := &imaged.Registry{Name: "down", URL: u, Type: imaged.RegistryOCI}
		start := time.Now()
		_, err := c.Scan(context.Background(), reg, "a/b", "v1")
		wantCode(t, err, imaged.EUNAVAILABLE)
		_, err = c.ListTags(context.Background(), reg, "a/b")
		wantCode(t, err, imaged.EUNAVAILABLE)
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("%s: took %v to fail", u, el)
		}
	}
}

// TestDelete: delete by digest, then the tag is gone (ENOTFOUND); a
// second delete succeeds; a registry with deletes disabled is
// EREFUSED.
func TestDelete(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{Filesystem: true})
	d := registrytest.PushImage(t, s.Host, "del/img", "v1", "amd64", nil)
	c := registry.New(registry.Options{})
	reg := ociReg(s)
	if _, err := c.Scan(context.Background(), reg, "del/img", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteManifest(context.Background(), reg, "del/img", d); err != nil {
		t.Fatal(err)
	}
	_, err := c.Scan(context.Background(), reg, "del/img", "v1")
	wantCode(t, err, imaged.ENOTFOUND)
	if err := c.DeleteManifest(context.Background(), reg, "del/img", d); err != nil {
		t.Errorf("second delete: %v, want success", err)
	}
	wantCode(t, c.DeleteManifest(context.Background(), reg, "del/img", "v1"), imaged.EINVALID)

	ro := registrytest.Start(t, registrytest.Options{DisableDelete: true})
	d = registrytest.PushImage(t, ro.Host, "keep/img", "v1", "amd64", nil)
	err = c.DeleteManifest(context.Background(), ociReg(ro), "keep/img", d)
	wantCode(t, err, imaged.EREFUSED)
	if msg := imaged.ErrorMessage(err); msg != "registry local does not allow deleting manifests (405)" {
		t.Errorf("message = %q", msg)
	}
	if _, err := c.Scan(context.Background(), ociReg(ro), "keep/img", "v1"); err != nil {
		t.Errorf("image gone after refused delete: %v", err)
	}
}

// TestHarbor2 lists repositories through a fake of Harbor's project API
// (Harbor itself cannot run here); everything else — tags, manifests,
// configs — comes from the real registry behind the fake, as Harbor
// serves the OCI API on the same host.
func TestHarbor2(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	d := registrytest.PushImage(t, s.Host, "bai/python", "3.9", "amd64", map[string]string{"x": "y"})
	var names []string
	for i := 0; i < 230; i++ {
		names = append(names, fmt.Sprintf("bai/r%03d", i))
	}
	names = append(names, "bai/python")
	backend, _ := url.Parse(s.URL)
	var pages []int
	harbor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			proxyTo(w, r, backend)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "Harbor12345" {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/api/v2.0/projects/nope/repositories" {
			http.Error(w, `{"errors":[{"code":"NOT_FOUND"}]}`, http.StatusNotFound)
			return
		}
		if r.URL.Path != "/api/v2.0/projects/bai/repositories" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		pages = append(pages, page)
		var out []map[string]any
		for i := (page - 1) * size; i < page*size && i < len(names); i++ {
			out = append(out, map[string]any{"name": names[i], "id": i})
		}
		if out == nil {
			out = []map[string]any{}
		}
		w.Header().Set("X-Total-Count", strconv.Itoa(len(names)))
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer harbor.Close()
	reg := &imaged.Registry{Name: "harbor", URL: harbor.URL, Type: imaged.RegistryHarbor2, Username: "admin", Password: "Harbor12345"}
	c := registry.New(registry.Options{})
	got := listAll(t, c, reg, "bai")
	if !slices.Equal(got, names) || !slices.Equal(pages, []int{1, 2, 3}) {
		t.Errorf("got %d repositories over pages %v, want %d over [1 2 3]", len(got), pages, len(names))
	}
	if got := listAll(t, c, reg, "bai/python"); !slices.Equal(got, []string{"bai/python"}) {
		t.Errorf("sub-project filter: %v", got)
	}
	err := c.ListRepositories(context.Background(), reg, "nope", func(string) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)
	bad := *reg
	bad.Password = "nope"
	err = c.ListRepositories(context.Background(), &bad, "bai", func(string) error { return nil })
	wantCode(t, err, imaged.EUNAUTHORIZED)
	if strings.Contains(err.Error(), "Harbor12345") {
		t.Errorf("password in error: %v", err)
	}
	imgs, err := c.Scan(context.Background(), reg, "bai/python", "3.9")
	if err != nil || len(imgs) != 1 || imgs[0].Digest != d || imgs[0].Labels["x"] != "y" {
		t.Fatalf("scan through harbor host: %+v, %v", imgs, err)
	}
}

func proxyTo(w http.ResponseWriter, r *http.Request, backend *url.URL) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = backend.Scheme, backend.Host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		w.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

func TestDockerHubListRepositories(t *testing.T) {
	t.Parallel()
	c := registry.New(registry.Options{})
	reg := &imaged.Registry{Name: "hub", URL: "https://index.docker.io", Type: imaged.RegistryDockerHub}
	err := c.ListRepositories(context.Background(), reg, "lablup", func(string) error {
		t.Fatal("fn called")
		return nil
	})
	wantCode(t, err, imaged.EREFUSED)
	if imaged.ErrorMessage(err) != "Docker Hub registries are scanned one repository at a time" {
		t.Errorf("message = %q", imaged.ErrorMessage(err))
	}
}

func TestInvalidRegistry(t *testing.T) {
	t.Parallel()
	c := registry.New(registry.Options{})
	for _, u := range []string{"ftp://x", "http://", "::"} {
		_, err := c.ListTags(context.Background(), &imaged.Registry{Name: "bad", URL: u, Type: imaged.RegistryOCI}, "a/b")
		wantCode(t, err, imaged.EINVALID)
	}
	wantCode(t, c.ListRepositories(context.Background(), &imaged.Registry{Name: "bad", URL: "http://x", Type: "weird"}, "", nil), imaged.EINVALID)
}

// TestRequestsPerTag measures the requests a rescan spends per tag: the
// client is reused across tags, as a rescan does.
func TestRequestsPerTag(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	const n = 20
	for i := 0; i < n; i++ {
		registrytest.PushImage(t, s.Host, "one/img", fmt.Sprintf("t%02d", i), "amd64", nil)
		registrytest.PushIndex(t, s.Host, "two/img", fmt.Sprintf("t%02d", i), []string{"amd64", "arm64"}, nil)
	}
	for _, tc := range []struct {
		repo string
		want float64 // steady state, after the first tag's ping
	}{{"one/img", 2}, {"two/img", 5}} {
		counter := &registry.CountingTransport{}
		c := registry.New(registry.Options{Transport: counter})
		reg := ociReg(s)
		for i := 0; i < n; i++ {
			if _, err := c.Scan(context.Background(), reg, tc.repo, fmt.Sprintf("t%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
		per := float64(counter.Requests()-1) / n
		t.Logf("%s: %d requests for %d tags = %.2f per tag after the ping", tc.repo, counter.Requests(), n, per)
		if per != tc.want {
			t.Errorf("%s: %.2f requests per tag, want %.0f", tc.repo, per, tc.want)
		}
	}

	// Tags of one image (aliases): the config is read once, so every
	// further tag costs its manifest GET only.
	img := registrytest.NewImage(t, registrytest.Docker, "amd64", nil)
	for i := 0; i < n; i++ {
		s.Pusher().WriteImage(t, "alias/img", fmt.Sprintf("a%02d", i), img)
	}
	counter := &registry.CountingTransport{}
	c := registry.New(registry.Options{Transport: counter})
	for i := 0; i < n; i++ {
		if _, err := c.Scan(context.Background(), ociReg(s), "alias/img", fmt.Sprintf("a%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := counter.Requests(), int64(1+1+n); got != want {
		t.Errorf("%d aliases of one image: %d requests, want %d (ping, one config, one manifest each)", n, got, want)
	}
}

// TestTLS: an https:// registry on a loopback address (a TLS proxy with a
// self-signed certificate in front of the real registry) is reached over
// TLS — go-containerregistry alone would pick plain HTTP for 127.0.0.1 —
// and its certificate is checked unless VerifyTLS is false.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := registrytest.Start(t, registrytest.Options{})
	d := registrytest.PushImage(t, s.Host, "tls/img", "v1", "amd64", nil)
	backend, _ := url.Parse(s.URL)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "TLS only", http.StatusBadRequest)
			return
		}
		proxyTo(w, r, backend)
	}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	front.StartTLS()
	defer front.Close()
	c := registry.New(registry.Options{})
	reg := &imaged.Registry{Name: "tls", URL: front.URL, Type: imaged.RegistryOCI, VerifyTLS: true}
	_, err := c.Scan(context.Background(), reg, "tls/img", "v1")
	wantCode(t, err, imaged.EUNAVAILABLE)
	if !strings.Contains(imaged.ErrorMessage(err), "certificate") {
		t.Errorf("message = %q, want it to name the certificate", imaged.ErrorMessage(err))
	}
	reg.VerifyTLS = false
	got, err := c.Scan(context.Background(), reg, "tls/img", "v1")
	if err != nil || len(got) != 1 || got[0].Digest != d {
		t.Fatalf("VerifyTLS false: %+v, %v", got, err)
	}
	// The same through a request counter, which still counts.
	counter := &registry.CountingTransport{}
	got, err = registry.New(registry.Options{Transport: counter}).Scan(context.Background(), reg, "tls/img", "v1")
	if err != nil || len(got) != 1 || counter.Requests() != 3 {
		t.Fatalf("VerifyTLS false with a counter: %+v, %v, %d requests (want 3: ping, manifest, config)", got, err, counter.Requests())
	}
}

// TestScanMalformed: a registry that serves what no image looks like
// gives EINVALID, never a panic or a half-filled result.
func TestScanMalformed(t *testing.T) {
	t.Parallel()
	sha := func(b string) string { return v1Hash(b) }
	cfgOK := `{"architecture":"amd64","config":{}}`
	cfgBad := `{"architecture":`
	manifest := func(cfg string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
			sha(cfg) + `","size":` + strconv.Itoa(len(cfg)) + `},"layers":[]}`
	}
	const ociMT, indexMT = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"
	nested := `{"schemaVersion":2,"mediaType":"` + indexMT + `","manifests":[]}`
	indexOfIndex := `{"schemaVersion":2,"mediaType":"` + indexMT + `","manifests":[{"mediaType":"` + ociMT + `","digest":"` + sha(nested) + `","size":` + strconv.Itoa(len(nested)) + `,"platform":{"os":"linux","architecture":"amd64"}}]}`
	for _, tc := range []struct {
		name      string
		manifests map[string][2]string // reference -> content type, body
		blobs     map[string]string
		code      string
	}{
		{"schema1", map[string][2]string{"v1": {"application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`}}, nil, imaged.EINVALID},
		{"html", map[string][2]string{"v1": {"text/html", `<html>`}}, nil, imaged.EINVALID},
		{"garbage manifest", map[string][2]string{"v1": {ociMT, `{"schemaVersion":`}}, nil, imaged.EINVALID},
		{"config missing", map[string][2]string{"v1": {ociMT, manifest(cfgOK)}}, nil, imaged.EINVALID},
		{"config garbage", map[string][2]string{"v1": {ociMT, manifest(cfgBad)}}, map[string]string{sha(cfgBad): cfgBad}, imaged.EINVALID},
		{"child is an index", map[string][2]string{"v1": {indexMT, indexOfIndex}, sha(nested): {indexMT, nested}}, nil, imaged.EINVALID},
		{"child missing", map[string][2]string{"v1": {indexMT, indexOfIndex}}, nil, imaged.EINVALID},
		{"no linux image", map[string][2]string{"v1": {indexMT, `{"schemaVersion":2,"manifests":[{"mediaType":"` + ociMT + `","digest":"` + sha(nested) + `","size":1,"platform":{"os":"windows","architecture":"amd64"}}]}`}}, nil, imaged.EINVALID},
		{"good", map[string][2]string{"v1": {ociMT, manifest(cfgOK)}}, map[string]string{sha(cfgOK): cfgOK}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ref := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
				switch {
				case r.URL.Path == "/v2/":
				case strings.Contains(r.URL.Path, "/manifests/"):
					m, ok := tc.manifests[ref]
					if !ok {
						http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
						return
					}
					w.Header().Set("Content-Type", m[0])
					_, _ = io.WriteString(w, m[1])
				case strings.Contains(r.URL.Path, "/blobs/"):
					b, ok := tc.blobs[ref]
					if !ok {
						http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
						return
					}
					_, _ = io.WriteString(w, b)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			c := registry.New(registry.Options{})
			got, err := c.Scan(context.Background(), &imaged.Registry{Name: "m", URL: srv.URL, Type: imaged.RegistryOCI}, "a/b", "v1")
			wantCode(t, err, tc.code)
			if err == nil && (len(got) != 1 || got[0].Architecture != "x86_64") {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func v1Hash(s string) string {
	h, _, err := v1.SHA256(strings.NewReader(s))
	if err != nil {
		panic(err)
	}
	return h.String()
}
