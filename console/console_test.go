package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imaged/imaged/console"
)

func serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	h := console.Handler()
	mux.Handle("/console", h)
	mux.Handle(console.Prefix, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestHandler(t *testing.T) {
	t.Parallel()
	base := serve(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		header       map[string]string
		status       int
		ctype        string
		contains     string
	}{
		{"GET", "/console/", nil, 200, "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"GET", "/console/index.html", nil, 200, "text/html; charset=utf-8", "<title>imaged console</title>"},
		{"GET", "/console/app.js", nil, 200, "text/javascript; charset=utf-8", "'use strict';"},
		{"GET", "/console/style.css", nil, 200, "text/css; charset=utf-8", ":root"},
		{"HEAD", "/console/app.js", nil, 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/console", nil, 301, "", ""},
		{"GET", "/console/nope.js", nil, 404, "text/plain; charset=utf-8", "not found"},
		{"GET", "/console/static/app.js", nil, 404, "text/plain; charset=utf-8", ""},
		{"POST", "/console/", nil, 405, "text/plain; charset=utf-8", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.status == 301 && resp.Header.Get("Location") != console.Prefix {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
			// The security headers are on every answer, errors included.
			csp := resp.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("Content-Security-Policy %q lacks %s", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("Content-Security-Policy allows inline code: %q", csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	t.Run("unclean path", func(t *testing.T) {
		// Mounted behind a handler that does not clean paths, the
		// console still serves only its three files.
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/console/x", nil)
		r.URL.Path = "/console/../go.mod"
		console.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Security-Policy") != console.CSP {
			t.Fatalf("status %d, headers %v", w.Code, w.Header())
		}
	})
	t.Run("revalidation", func(t *testing.T) {
		resp, err := http.Get(base + "/console/app.js")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest("GET", base+"/console/app.js", nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
	})
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("static", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScriptDiscipline checks what the CSP and the escaping rule need of
// the sources: no inline script or style in the page (the CSP would block
// it), no HTML sinks in the script, and every element the script looks up
// exists in the page.
func TestScriptDiscipline(t *testing.T) {
	t.Parallel()
	html, js := read(t, "index.html"), read(t, "app.js")
	for _, re := range []string{`<script>`, `<script(?:\s[^>]*)?>[^<]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("index.html has inline code %q, which the CSP blocks", m)
		}
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setTimeout('", `setTimeout("`} {
		if strings.Contains(js, sink) {
			t.Errorf("app.js uses %s: render data with textContent", sink)
		}
	}
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if ids[m[1]] {
			t.Errorf("index.html repeats id %q", m[1])
		}
		ids[m[1]] = true
	}
	used := regexp.MustCompile(`byId\('([^']+)'\)`).FindAllStringSubmatch(js, -1)
	if len(used) < 10 {
		t.Fatalf("found only %d byId lookups: the pattern drifted", len(used))
	}
	for _, m := range used {
		if !ids[m[1]] {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
	// The views the script switches between ("name-view").
	for _, m := range regexp.MustCompile(`'(login|vm|containers|detail|upload|registries)'`).FindAllStringSubmatch(js, -1) {
		if !ids[m[1]+"-view"] {
			t.Errorf("index.html lacks #%s-view", m[1])
		}
	}
}

// TestScriptSyntax parses app.js with node, when installed
// (scripts/deps/chromium.sh installs it; required under CI=true).
func TestScriptSyntax(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		if node, err = exec.LookPath("nodejs"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("node is not installed (scripts/deps/chromium.sh installs it)")
			}
			t.Skip("node is not installed; run scripts/install-test-deps.sh")
		}
	}
	out, err := exec.Command(node, "--check", filepath.Join("static", "app.js")).CombinedOutput()
	if err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}
