// Package e2e tests imaged as its users run it: the real binary, started as a
// separate process on loopback, driven by real clients (gophercloud, raw
// HTTP, the glance and openstack command-line clients when installed).
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// Tokens of the test personas, mirroring the Glance peer's fakeauth
// personas (user:project:roles).
const (
	tokAdmin  = "admin-token"  // admin of project admin
	tokAlice  = "alice-token"  // member, reader of projA
	tokCarol  = "carol-token"  // reader of projA
	tokBob    = "bob-token"    // member, reader of projB
	tokDave   = "dave-token"   // member, reader of projC
	tokNoRole = "norole-token" // no roles in projA
)

const tokensYAML = `tokens:
  - token: admin-token
    user_id: admin
    project_id: admin
    roles: [admin, member, reader]
  - token: alice-token
    user_id: alice
    project_id: projA
    roles: [member, reader]
  - token: carol-token
    user_id: carol
    project_id: projA
    roles: [reader]
  - token: bob-token
    user_id: bob
    project_id: projB
    roles: [member, reader]
  - token: dave-token
    user_id: dave
    project_id: projC
    roles: [member, reader]
  - token: norole-token
    user_id: norole
    project_id: projA
    roles: []
`

// binary is the imaged binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imaged-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "imaged")
	build := exec.Command("go", "build", "-o", binary, "../cmd/imaged")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building imaged:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running imaged process.
type server struct {
	URL  string
	Dir  string
	cmd  *exec.Cmd
	logs *strings.Builder
}

var listenRE = regexp.MustCompile(`url=(http://[0-9.:]+)`)

// startServer starts imaged with a tokens file and the given extra flags and
// stops it (SIGTERM, then a wait) when the test ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--auth", "tokens", "--tokens-file", tokens}, extra...)
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{Dir: dir, cmd: cmd, logs: &strings.Builder{}}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.URL = <-urlc:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("imaged did not start in 30 s")
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("imaged exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("imaged did not stop in 30 s after SIGINT")
		}
	})
	return s
}

// client returns a gophercloud image v2 client for the given token.
func (s *server) client(t *testing.T, token string) *gophercloud.ServiceClient {
	t.Helper()
	pc := &gophercloud.ProviderClient{TokenID: token, HTTPClient: http.Client{Timeout: 30 * time.Second}}
	pc.EndpointLocator = func(gophercloud.EndpointOpts) (string, error) { return s.URL + "/", nil }
	c, err := openstack.NewImageV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends a raw request and returns the status and body.
func (s *server) do(t *testing.T, method, path, token, contentType, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}
