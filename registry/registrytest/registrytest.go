// Package registrytest starts a real OCI registry for tests — the Debian
// docker-registry package (CNCF distribution 2.8.2), run as a child
// process on a free 127.0.0.1 port — and pushes fixture images into it
// with go-containerregistry.
//
// scripts/deps/registry.sh installs docker-registry. When it is missing,
// Start skips the test, or fails it when CI=true (so a CI run cannot pass
// without the registry tests). IMAGED_REGISTRY_BIN names another binary.
//
// Behaviours of distribution 2.8.2 worth knowing in tests: without an
// Accept header schema2 manifests are down-converted to schema 1 and OCI
// indexes answer 404; deletes work by digest only (a tag answers 400
// DIGEST_INVALID); a repository whose manifests were all deleted stays in
// the catalog with "tags": null; catalog pages are linked with
// Link: <...>; rel="next".
package registrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options configures a registry.
type Options struct {
	// Filesystem stores blobs in a t.TempDir() instead of memory.
	Filesystem bool
	// DisableDelete turns storage.delete off: manifest deletes answer
	// 405 UNSUPPORTED.
	DisableDelete bool
	// Username and Password, when Username is set, protect the registry
	// with HTTP Basic auth (htpasswd, bcrypt) — or, with Token, with the
	// Docker token flow whose token server checks them.
	Username, Password string
	// Token uses bearer-token auth: an in-test token server (Docker token
	// spec, self-signed ECDSA certificate as the root bundle) issues the
	// tokens after checking Username/Password with HTTP Basic auth.
	Token bool
}

// Server is a running registry.
type Server struct {
	Host     string // "127.0.0.1:<port>"
	URL      string // "http://127.0.0.1:<port>"
	Username string
	Password string
	// TokenURL is the token server's realm when Options.Token is set.
	TokenURL string
	// Dir holds config.yml, registry.log and (Filesystem) storage/.
	Dir string

	cmd   *exec.Cmd
	token *tokenServer
}

// TokensIssued returns how many tokens the token server issued (0 without
// Options.Token).
func (s *Server) TokensIssued() int64 {
	if s.token == nil {
		return 0
	}
	return s.token.issued.Load()
}

// Required reports whether a missing registry binary must fail tests
// rather than skip them.
func Required() bool { return os.Getenv("CI") == "true" }

// Binary returns the path of the docker-registry binary, or "" when it
// is not installed.
func Binary() string {
	if b := os.Getenv("IMAGED_REGISTRY_BIN"); b != "" {
		return b
	}
	p, err := exec.LookPath("docker-registry")
	if err != nil {
		return ""
	}
	return p
}

// Start runs a registry until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		const msg = "docker-registry (Debian package docker-registry, CNCF distribution) is not installed; run scripts/install-test-deps.sh"
		if Required() {
			t.Fatal(msg + " (required: CI=true)")
		}
		t.Skip(msg + ", skipping")
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, Username: opts.Username, Password: opts.Password}
	auth := ""
	if opts.Username != "" {
		if opts.Token {
			ts := startTokenServer(t, dir, opts.Username, opts.Password)
			s.TokenURL, s.token = ts.realm, ts
			auth = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
				ts.realm, tokenService, tokenIssuer, ts.certFile)
		} else {
			// bcrypt.MinCost: distribution checks the password on every
			// request; the default cost makes pushes ~30x slower.
			hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			hp := filepath.Join(dir, "htpasswd")
			if err := os.WriteFile(hp, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", hp)
		}
	}
	storage := "  inmemory: {}\n"
	if opts.Filesystem {
		storage = fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", filepath.Join(dir, "storage"))
	}
	var lastErr error
	// The free port is found by listening and closing, so another process
	// may take it before the registry binds: retry a few times.
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Host = fmt.Sprintf("127.0.0.1:%d", port)
		s.URL = "http://" + s.Host
		cfg := "version: 0.1\n" +
			"log:\n  level: warn\n  accesslog:\n    disabled: true\n" +
			"storage:\n" + storage +
			fmt.Sprintf("  delete:\n    enabled: %t\n", !opts.DisableDelete) +
			"  maintenance:\n    uploadpurging:\n      enabled: false\n" +
			"http:\n  addr: " + s.Host + "\n  secret: registrytest-" + randHex(8) + "\n" +
			auth
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.run(t, bin, cfgPath); lastErr == nil {
			return s
		}
	}
	t.Fatalf("registrytest: registry did not start: %v\nlog:\n%s", lastErr, s.Log())
	return nil
}

// run starts the process and waits for /v2/ to answer (200, or 401 with
// auth on).
func (s *Server) run(t testing.TB, bin, cfgPath string) error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		// Only the pid we started.
		_ = cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("docker-registry exited: %v", err)
		default:
		}
		resp, err := client.Get(s.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				s.cmd = cmd
				t.Cleanup(stop)
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return fmt.Errorf("no answer on %s/v2/ within 20s", s.URL)
}

// Log returns the registry's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "registry.log"))
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Get issues a raw GET against the registry (with the server's basic
// credentials when it has some and no token auth), for tests that check
// what the registry itself says.
func (s *Server) Get(ctx context.Context, path string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if s.Username != "" && s.TokenURL == "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes(), err
}

// String implements fmt.Stringer without credentials.
func (s *Server) String() string {
	return strings.TrimSpace("registrytest " + s.URL)
}
