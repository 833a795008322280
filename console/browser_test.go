package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/console"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/nativeapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/uploadapi"
)

// browser returns a headless Chromium and the flags that run it, or skips
// (fails in CI and with IMAGED_BROWSER_TESTS=1, where
// scripts/deps/chromium.sh installs it).
func browser(t *testing.T) (string, []string) {
	t.Helper()
	if p, err := exec.LookPath("chromium-headless-shell"); err == nil {
		return p, []string{"--headless"}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, []string{"--headless=new"}
	}
	if os.Getenv("CI") == "true" || os.Getenv("IMAGED_BROWSER_TESTS") == "1" {
		t.Fatal("no headless Chromium (scripts/deps/chromium.sh installs chromium-headless-shell)")
	}
	t.Skip("no headless Chromium; IMAGED_BROWSER_TESTS=1 scripts/install-test-deps.sh installs one")
	return "", nil
}

// dumpDOM loads url in a fresh headless browser and returns the DOM once
// the page's scripts and fetches settled (virtual time runs until the
// network is idle, within the budget).
func dumpDOM(t *testing.T, url string) string {
	t.Helper()
	bin, flags := browser(t)
	flags = append(flags, "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, flags...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	return string(out)
}

// TestBrowserListsImages loads the console in a real browser against a
// real catalog (SQLite, filesystem store, tokens file) with the token in
// the URL fragment, and checks the DOM lists the images, escaped.
func TestBrowserListsImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := catalog.New(st, policy.Secure(), catalog.DefaultConfig()).WithBlobStore(blobs)
	tf := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tf, []byte("tokens:\n  - token: alice-tok\n    user_id: alice\n    project_id: projA\n    roles: [member, reader]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewTokenFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	alice := imaged.NewContextWithIdentity(ctx, &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}})
	names := []string{"cirros-0.6", `<img src=x onerror="document.title='pwned'">`}
	ids := map[string]bool{}
	for _, n := range names {
		img, err := svc.CreateImage(alice, map[string]any{"name": n, "disk_format": "raw", "container_format": "bare"})
		if err != nil {
			t.Fatal(err)
		}
		ids[img.ID] = true
	}
	if _, err := svc.UploadImage(alice, mustFirst(ids), strings.NewReader("0123456789"), 10); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle(uploadapi.Path, uploadapi.New(uploadapi.Config{Images: svc, Auth: authn, Logger: log}))
	mux.Handle("/", glanceapi.New(glanceapi.Config{Images: svc, Auth: authn, Logger: log}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	t.Run("listed", func(t *testing.T) {
		dom := dumpDOM(t, srv.URL+"/console/#token=alice-tok")
		for id := range ids {
			if !strings.Contains(dom, `data-id="`+id+`"`) {
				t.Errorf("the DOM lacks the row of image %s:\n%s", id, dom)
			}
		}
		if !strings.Contains(dom, "cirros-0.6") || !strings.Contains(dom, "2 VM image(s)") {
			t.Errorf("the DOM does not list the images:\n%s", dom)
		}
		// The hostile name is text, not an element.
		if strings.Contains(dom, `<img src="x"`) || strings.Contains(dom, "pwned</title>") ||
			!strings.Contains(dom, `&lt;img src=x onerror="document.title='pwned'"&gt;`) {
			t.Errorf("the image name was not escaped:\n%s", dom)
		}
		if strings.Contains(dom, "alice-tok") {
			t.Errorf("the token stayed in the page")
		}
		if !strings.Contains(dom, `<section id="login-view" hidden="">`) {
			t.Errorf("the login view is still shown")
		}
	})
	t.Run("bad token", func(t *testing.T) {
		dom := dumpDOM(t, srv.URL+"/console/#token=wrong")
		if !strings.Contains(dom, `<section id="vm-view" hidden="">`) || strings.Contains(dom, `<section id="login-view" hidden="">`) ||
			!strings.Contains(dom, "log in again") {
			t.Errorf("a refused token does not lead back to the login:\n%s", dom)
		}
	})
}

func mustFirst(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// TestBrowserListsContainerImages loads the console's container images and
// registries views (chosen by the fragment) against the native API over a
// real registry (docker-registry) holding one scanned image.
func TestBrowserListsContainerImages(t *testing.T) {
	t.Parallel()
	browser(t) // skip before starting a registry when there is no browser
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tasks := bgtask.New(bgtask.Config{Store: st, Logger: log})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tasks.Close(cctx)
	})
	csvc, err := containers.New(containers.Config{Store: st, Images: st, Tasks: tasks, Registry: registry.New(registry.Options{}),
		Policy: policy.Secure(), Logger: log, DefaultNamespace: "library"})
	if err != nil {
		t.Fatal(err)
	}
	admin := imaged.NewContextWithIdentity(ctx, &imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}})
	if _, err := csvc.CreateRegistry(admin, &imaged.Registry{Name: "local", URL: reg.URL, Type: imaged.RegistryOCI, Projects: []string{"bai"}}); err != nil {
		t.Fatal(err)
	}
	reg.Pusher().PushImage(t, "bai/python", "3.11", "amd64", map[string]string{"ai.backend.kernelspec": "1"})
	imgs, err := csvc.ScanImage(admin, reg.Host+"/bai/python:3.11", "")
	if err != nil || len(imgs) != 1 {
		t.Fatalf("scan: %v %v", imgs, err)
	}
	tf := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tf, []byte("tokens:\n  - token: admin-tok\n    user_id: admin\n    project_id: admin\n    roles: [admin, member, reader]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewTokenFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle("/api/v1/", nativeapi.New(nativeapi.Config{Containers: csvc, Auth: authn, Logger: log}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	dom := dumpDOM(t, srv.URL+"/console/#token=admin-tok&view=containers")
	if !strings.Contains(dom, `data-id="`+imgs[0].ID+`"`) || !strings.Contains(dom, reg.Host+"/bai/python:3.11") ||
		!strings.Contains(dom, "1 container image(s)") || !strings.Contains(dom, ">Forget</button>") || !strings.Contains(dom, ">Purge</button>") {
		t.Errorf("the container images view does not list the image:\n%s", dom)
	}
	if !strings.Contains(dom, `<section id="containers-view">`) {
		t.Errorf("the fragment's view is not shown")
	}
	dom = dumpDOM(t, srv.URL+"/console/#token=admin-tok&view=registries")
	if !strings.Contains(dom, "<td>local</td>") || !strings.Contains(dom, reg.URL) || !strings.Contains(dom, ">Rescan</button>") {
		t.Errorf("the registries view does not list the registry:\n%s", dom)
	}
}
