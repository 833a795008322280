package nativeapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/nativeapi"
)

// Tokens of the test personas (the tokens file below).
const (
	admin  = "admin-token"  // user admin, project admin: admin
	alice  = "alice-token"  // user alice, projA: member (owns customized images)
	bob    = "bob-token"    // user bob, projB: member
	reader = "reader-token" // user rita, projA: reader only
)

const tokensYAML = `tokens:
  - token: "admin-token"
    user_id: admin
    project_id: admin
    roles: [admin, member, reader]
  - token: "alice-token"
    user_id: alice
    project_id: projA
    roles: [member, reader]
  - token: "bob-token"
    user_id: bob
    project_id: projB
    roles: [member, reader]
  - token: "reader-token"
    user_id: rita
    project_id: projA
    roles: [reader]
`

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv  *httptest.Server
	spec *spec
	logs *syncBuffer
}

// serve runs the API over loopback HTTP with the test tokens file.
func serve(t *testing.T, cfg nativeapi.Config) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := auth.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg.Auth = tf
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	srv := httptest.NewServer(nativeapi.New(cfg))
	t.Cleanup(srv.Close)
	return &env{srv: srv, spec: loadSpec(t), logs: logs}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// call is one request. hdr is "Name", "value" pairs.
type call struct {
	method, path, token string
	body                string
	hdr                 []string
	// anyError lets an error status the operation does not list fall
	// under its "default" response (the error-mapping test provokes
	// every code on one route).
	anyError bool
}

// do sends a request and checks the response against openapi.json.
func (e *env) do(t *testing.T, c call) resp {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, e.srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.hdr); i += 2 {
		if c.hdr[i+1] == "" {
			req.Header.Del(c.hdr[i])
		} else {
			req.Header.Set(c.hdr[i], c.hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := resp{res.StatusCode, res.Header, b}
	if rid := res.Header.Get("X-Request-Id"); rid == "" || rid != res.Header.Get("X-Openstack-Request-Id") {
		t.Errorf("%s %s: request id headers %q / %q", c.method, c.path, rid, res.Header.Get("X-Openstack-Request-Id"))
	}
	u, _ := url.Parse(c.path)
	e.spec.check(t, c.method, u.Path, r.status, r.header, r.body, c.anyError)
	if r.status >= 400 {
		checkErrorBody(t, r)
	}
	return r
}

// get, post, ... are shorthands.
func (e *env) get(t *testing.T, token, path string) resp {
	t.Helper()
	return e.do(t, call{method: "GET", path: path, token: token})
}

func (e *env) send(t *testing.T, method, token, path, body string) resp {
	t.Helper()
	return e.do(t, call{method: method, path: path, token: token, body: body})
}

// checkErrorBody asserts the one error shape.
func checkErrorBody(t *testing.T, r resp) {
	t.Helper()
	var b struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		}
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Errorf("error body is not JSON: %q", r.body)
		return
	}
	if b.Error.Code == "" || b.Error.Message == "" || b.Error.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("error body %s (request id header %q)", r.body, r.header.Get("X-Request-Id"))
	}
}

// errCode returns the error code of an error response.
func errCode(t *testing.T, r resp) string {
	t.Helper()
	var b struct{ Error struct{ Code string } }
	_ = json.Unmarshal(r.body, &b)
	return b.Error.Code
}

// obj decodes a JSON object body.
func obj(t *testing.T, r resp) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// want fails unless r has status.
func want(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

// wantErr fails unless r is an error with status and code.
func wantErr(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status || errCode(t, r) != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
}

var _ = imaged.EINVALID
