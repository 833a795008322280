package imaged

import (
	"strings"
	"testing"
)

func hintOpts(hint, ns string) ReferenceOptions {
	o := ReferenceOptions{DefaultNamespace: ns}
	if hint != "" {
		o.KnownRegistries = []string{hint}
	}
	return o
}

// TestParseReferenceSpecTable runs every row of spec §2.5, with the spec's
// hint given as the only known registry, under Docker's namespace and
// Backend.AI's.
func TestParseReferenceSpecTable(t *testing.T) {
	t.Parallel()
	const v6 = "[212c:9cb9:eada:e57b:84c9:6a9:557f:bdd2]:1024"
	cases := []struct {
		in, hint           string
		registry, path, tg string // path with "NS/" standing for the namespace
	}{
		{"c", "", "index.docker.io", "NS/c", "latest"},
		{"c:gcc6.3-alpine3.8", "", "index.docker.io", "NS/c", "gcc6.3-alpine3.8"},
		{"python:3.6-ubuntu", "", "index.docker.io", "NS/python", "3.6-ubuntu"},
		{"lablup/python-tensorflow:1.10-py36-ubuntu", "", "index.docker.io", "lablup/python-tensorflow", "1.10-py36-ubuntu"},
		{"myregistry.org/lua", "", "index.docker.io", "myregistry.org/lua", "latest"},
		{"myregistry.org/lua", "myregistry.org", "myregistry.org", "lua", "latest"},
		{"myregistry.org/lua:5.3-alpine", "myregistry.org", "myregistry.org", "lua", "5.3-alpine"},
		{"myregistry.org:999/mybase/python:3.6-cuda9-ubuntu", "myregistry.org:999", "myregistry.org:999", "mybase/python", "3.6-cuda9-ubuntu"},
		{"myregistry.org/mybase/moon/python:3.6-cuda9-ubuntu", "myregistry.org", "myregistry.org", "mybase/moon/python", "3.6-cuda9-ubuntu"},
		{"127.0.0.1:5000/python:3.6-cuda9-ubuntu", "", "127.0.0.1:5000", "python", "3.6-cuda9-ubuntu"},
		{"[::1]:5000/python:3.6", "", "[::1]:5000", "python", "3.6"},
		{v6 + "/python", "", v6, "python", "latest"},
		{"python:3.9", "cr.backend.ai", "index.docker.io", "NS/python", "3.9"},
		{"x", "*", "index.docker.io", "NS/x", "latest"},
		// Deviation (documented in reference.go): an unrecognised first
		// segment goes to the default registry, not to the hint.
		{"stable/python:3.9", "cr.backend.ai", "index.docker.io", "stable/python", "3.9"},
		{"cr.backend.ai/stable/python:3.9", "cr.backend.ai", "cr.backend.ai", "stable/python", "3.9"},
		{"any.host/stable/python:3.9", "*", "any.host", "stable/python", "3.9"},
		{"docker.io/python", "docker.io", "index.docker.io", "NS/python", "latest"},
		{"localhost:5055/bai/python:3.9", "", "localhost:5055", "bai/python", "3.9"},
		{"localhost/python", "", "localhost", "python", "latest"},
		{"[::1]/python", "", "[::1]", "python", "latest"},
	}
	for _, ns := range []string{"", "lablup"} {
		want := ns
		if want == "" {
			want = "library"
		}
		for _, c := range cases {
			r, err := ParseReference(c.in, hintOpts(c.hint, ns))
			if err != nil {
				t.Errorf("ParseReference(%q, hint %q): %v", c.in, c.hint, err)
				continue
			}
			path := strings.Replace(c.path, "NS/", want+"/", 1)
			if r.Registry != c.registry || r.Name != path || r.Tag != c.tg || r.Project != "" || r.Digest != "" {
				t.Errorf("ParseReference(%q, hint %q, ns %q) = %+v, want %s %s %s", c.in, c.hint, ns, r, c.registry, path, c.tg)
			}
		}
	}
}

// TestParseReferenceHintAsDefault shows how to get upstream's "hint
// prepended" behaviour.
func TestParseReferenceHintAsDefault(t *testing.T) {
	t.Parallel()
	opts := ReferenceOptions{KnownRegistries: []string{"cr.backend.ai"}, DefaultRegistry: "cr.backend.ai"}
	r, err := ParseReference("stable/python:3.9", opts)
	if err != nil || r.String() != "cr.backend.ai/stable/python:3.9" {
		t.Fatalf("got %v %v", r, err)
	}
	r, err = ParseReference("python", opts)
	if err != nil || r.String() != "cr.backend.ai/python:latest" {
		t.Fatalf("got %v %v", r, err)
	}
}

func TestParseReferenceInvalid(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("a", 64)
	cases := []struct{ in, hint, msg string }{
		{"a:!", "", "invalid image tag"},
		{"127.0.0.1:5000/a:-x-", "", "invalid image tag"},
		{"http://127.0.0.1:5000/xyz", "", "invalid image name"},
		{"//127.0.0.1:5000/xyz", "", "invalid image name"},
		{"myregistry.org:999/python", "", "invalid image tag \"999/python\""},
		// Deviation: upstream accepts "::1/python" as a Docker Hub path.
		{"::1/python:3.6", "", "invalid image name"},
		{"", "", "empty reference"},
		{"Python:3.9", "", "path component \"Python\""},
		{"a//b", "", "empty path component"},
		{"a/", "", "empty path component"},
		{":tag", "", "empty repository name"},
		{"python:", "", "empty tag"},
		{"py thon", "", "whitespace"},
		{"python\n", "", "control"},
		{"pythön", "", "non-ASCII"},
		{"a__-b", "", "path component"},
		{"a:" + strings.Repeat("t", 129), "", "longer than 128"},
		{"a/" + strings.Repeat("b", 250), "", "more than 255"},
		{"a@sha256:" + hex[:63], "", "invalid image digest"},
		{"a@sha256:" + strings.ToUpper(hex), "", "invalid image digest"},
		{"a@md5:" + hex, "", "invalid image digest"},
		{"127.0.0.1:99999/a", "", "invalid image tag"}, // bad port: not an IP host, so the colon starts a tag
		{strings.Repeat("a", 2000), "", "longer than 1024"},
	}
	for _, c := range cases {
		_, err := ParseReference(c.in, hintOpts(c.hint, ""))
		if ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), c.msg) {
			t.Errorf("ParseReference(%q) error = %v, want EINVALID containing %q", c.in, err, c.msg)
		}
	}
}

func TestParseReferenceDigest(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("0f", 32)
	r, err := ParseReference("127.0.0.1:5055/bai/python@"+d, ReferenceOptions{})
	if err != nil || r.Tag != "" || r.Digest != d || r.Name != "bai/python" {
		t.Fatalf("digest only: %+v %v", r, err)
	}
	if r.String() != "127.0.0.1:5055/bai/python@"+d || r.Short() != "bai/python@"+d {
		t.Errorf("String/Short = %q %q", r.String(), r.Short())
	}
	r, err = ParseReference("python:3.9@"+d, ReferenceOptions{})
	if err != nil || r.Tag != "3.9" || r.Digest != d || r.String() != "index.docker.io/library/python:3.9@"+d {
		t.Fatalf("tag and digest: %+v %v", r, err)
	}
}

func TestReferenceFormats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, hint, project, name, canonical, short string
	}{
		{"myregistry.org/project/kernel-python:3.6-ubuntu", "myregistry.org", "project", "kernel-python", "myregistry.org/project/kernel-python:3.6-ubuntu", "project/kernel-python:3.6-ubuntu"},
		{"myregistry.org/project/sub/kernel-python:3.6-ubuntu", "myregistry.org", "project", "sub/kernel-python", "myregistry.org/project/sub/kernel-python:3.6-ubuntu", "project/sub/kernel-python:3.6-ubuntu"},
		{"myregistry.org/project/sub/kernel-python:3.6-ubuntu", "myregistry.org", "project/sub", "kernel-python", "myregistry.org/project/sub/kernel-python:3.6-ubuntu", "project/sub/kernel-python:3.6-ubuntu"},
		{"registry.gitlab.com/user/python:3.6-cuda9-ubuntu", "registry.gitlab.com", "user/python", "", "registry.gitlab.com/user/python:3.6-cuda9-ubuntu", "user/python:3.6-cuda9-ubuntu"},
		{"python:3.6-cuda9-ubuntu", "index.docker.io", "lablup", "python", "index.docker.io/lablup/python:3.6-cuda9-ubuntu", "lablup/python:3.6-cuda9-ubuntu"},
		{"127.0.0.1:5055/bai/python:3.9-ubuntu20.04", "", "", "bai/python", "127.0.0.1:5055/bai/python:3.9-ubuntu20.04", "bai/python:3.9-ubuntu20.04"},
	}
	for _, c := range cases {
		r, err := ParseReference(c.in, hintOpts(c.hint, "lablup"))
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		p, err := r.InProject(c.project)
		if err != nil {
			t.Fatalf("%q InProject(%q): %v", c.in, c.project, err)
		}
		if p.Project != c.project || p.Name != c.name || p.String() != c.canonical || p.Short() != c.short || p.Path() != r.Name {
			t.Errorf("%q in %q = %+v (%q, %q)", c.in, c.project, p, p.String(), p.Short())
		}
	}
	r, _ := ParseReference("myregistry.org/project/kernel-python", hintOpts("myregistry.org", ""))
	for _, bad := range []string{"other", "proj", "project/kernel", "project/kernel-python/x"} {
		if _, err := r.InProject(bad); ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), "project mismatch") {
			t.Errorf("InProject(%q) = %v, want project mismatch", bad, err)
		}
	}
}

func TestParseTagSet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tag, version string
		platform     map[string]string
	}{
		{"latest", "latest", map[string]string{}},
		{"gcc6.3-alpine3.8", "gcc6.3", map[string]string{"alpine": "3.8"}},
		{"3.6-ubuntu", "3.6", map[string]string{"ubuntu": ""}},
		{"1.10-py36-ubuntu", "1.10", map[string]string{"py": "36", "ubuntu": ""}},
		{"1.0-py36-cuda9-ubuntu16.04-mkl2018.3", "1.0", map[string]string{"py": "36", "cuda": "9", "ubuntu": "16.04", "mkl": "2018.3"}},
		{"1-myplatform9b1", "1", map[string]string{"myplatform": "9b1"}},
		{"1-other", "1", map[string]string{"other": ""}},
		{"1234", "1234", map[string]string{}},
		{"", "", map[string]string{}},
	}
	for _, c := range cases {
		v, p, err := ParseTagSet(c.tag)
		if err != nil || v != c.version || len(p) != len(c.platform) {
			t.Errorf("ParseTagSet(%q) = %q %v %v", c.tag, v, p, err)
			continue
		}
		for k, want := range c.platform {
			if got, ok := p[k]; !ok || got != want {
				t.Errorf("ParseTagSet(%q)[%q] = %q, want %q", c.tag, k, got, want)
			}
		}
	}
	for _, bad := range []string{"1-py36-py37", "1-1234", "1--x", "1-", "1-py3.x", "1-9b"} {
		if _, _, err := ParseTagSet(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseTagSet(%q) err = %v, want EINVALID", bad, err)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"c", "python:3.9", "lablup/python:1.10-py36-ubuntu", "myregistry.org/lua:5.3",
		"127.0.0.1:5000/python:3.6", "[::1]:5000/python:3.6", "::1/python", "a:!", "http://x/y", "//x",
		"myregistry.org:999/python", "a@sha256:" + strings.Repeat("a", 64), "docker.io/a", "localhost:1/a:b"} {
		f.Add(s, "")
		f.Add(s, "*")
		f.Add(s, "myregistry.org")
	}
	f.Fuzz(func(t *testing.T, s, hint string) {
		r, err := ParseReference(s, hintOpts(hint, ""))
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("ParseReference(%q) error code %q", s, ErrorCode(err))
			}
			return
		}
		if r.Name == "" || r.Registry == "" || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v: incomplete", s, r)
		}
		again, err := ParseReference(r.String(), ReferenceOptions{KnownRegistries: []string{r.Registry}})
		if err != nil || again != r {
			t.Fatalf("re-parse of %q (from %q) = %+v, %v; want %+v", r.String(), s, again, err, r)
		}
	})
}
