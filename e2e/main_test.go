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
	"sync"
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
	Dir  string // holds tokens.yaml and data/ (the --data-dir)
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	logs *syncLog
}

// syncLog collects a server's log lines; the reader goroutine writes while
// tests read.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(line)
	l.b.WriteByte('\n')
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listenRE = regexp.MustCompile(`url=(http://[0-9.:]+)`)

// startServer starts imaged with a tokens file and the given extra flags and
// stops it (SIGTERM, then a wait) when the test ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	return startServerIn(t, t.TempDir(), extra...)
}

// startServerIn starts imaged on dir (tokens.yaml and data/ in it), so that
// a test can start a second process on the data of a first one.
func startServerIn(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	return startServerEnv(t, dir, nil, extra...)
}

// startServerEnv is startServerIn with variables added to the process's
// environment (NAME=value), for settings such as credentials that must not
// be on its command line.
func startServerEnv(t *testing.T, dir string, env []string, extra ...string) *server {
	t.Helper()
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--auth", "tokens", "--tokens-file", tokens}, extra...)
	cmd := exec.Command(binary, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{Dir: dir, cmd: cmd, done: make(chan struct{}), logs: &syncLog{}}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			s.logs.add(line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case s.URL = <-urlc:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("imaged did not start in 30 s")
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
			return // killed by the test
		default:
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
			if s.err != nil {
				t.Errorf("imaged exited with %v", s.err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("imaged did not stop in 30 s after SIGINT")
		}
	})
	return s
}

// kill ends the process with SIGKILL (a crash: no cleanup of any kind)
// and waits until it is gone.
func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("imaged did not die in 30 s after SIGKILL")
	}
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
