package glanceapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// Tokens of the test personas (the tokens file below).
const (
	alice = "alice-token" // alice, projA, member+reader
	bob   = "bob-token"   // bob, projB, member+reader
	admin = "admin-token" // admin, admin, admin+member+reader
)

const tokensYAML = `tokens:
  - token: "alice-token"
    user_id: alice
    project_id: projA
    roles: [member, reader]
  - token: "bob-token"
    user_id: bob
    project_id: projB
    roles: [member, reader]
  - token: "admin-token"
    user_id: admin
    project_id: admin
    roles: [admin, member, reader]
`

// syncBuffer is a goroutine-safe log sink (the server logs from its own
// goroutines while the test reads).
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
	srv *httptest.Server
	log *syncBuffer
}

// newEnv runs the real stack: SQLite store, legacy policy, catalog, tokens
// file, over loopback HTTP.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

func newEnvWith(t *testing.T, wrap func(imaged.ImageService) imaged.ImageService) *env {
	t.Helper()
	logger, logs := testLogger()
	var svc imaged.ImageService = catalog.New(testStore(t), policy.Legacy(), catalog.DefaultConfig()).
		WithBlobStore(testBlobs(t, "blobs")).WithLogger(logger)
	if wrap != nil {
		svc = wrap(svc)
	}
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger, AuthURI: "http://127.0.0.1:5000/v3"}, logs)
}

// testStore opens a fresh SQLite metadata store, closed at cleanup.
func testStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	store, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// testBlobs makes a blob store in a fresh directory named name.
func testBlobs(t *testing.T, name string) *fs.Store {
	t.Helper()
	b, err := fs.New(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testLogger returns a JSON logger and the buffer it writes to.
func testLogger() (*slog.Logger, *syncBuffer) {
	logs := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(logs, nil)), logs
}

// serveEnv serves cfg over loopback HTTP, authenticating with the test
// tokens file (cfg.Auth is set here).
func serveEnv(t *testing.T, cfg glanceapi.Config, logs *syncBuffer) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := auth.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = tf
	srv := httptest.NewServer(glanceapi.New(cfg))
	t.Cleanup(srv.Close)
	return &env{srv: srv, log: logs}
}

type req struct {
	method, path, token string
	header              map[string]string
	body                string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("X-Auth-Token", r.token)
	}
	for k, v := range r.header {
		if v != "" { // "" = leave the header out
			hr.Header.Set(k, v)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// jsonOf decodes a JSON body or fails.
func jsonOf(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, b)
	}
	return m
}

// jsonErr returns the message of a JSON error body (Accept: application/json).
func jsonErr(t *testing.T, r resp) string {
	t.Helper()
	m := jsonOf(t, r.body)
	msg, _ := m["message"].(string)
	return strings.TrimSuffix(msg, "<br /><br />\n\n\n")
}

var ridRe = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

var jsonAccept = map[string]string{"Accept": "application/json"}

func TestVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 300},
		{"GET", "/versions", 200},
		{"POST", "/versions", 200},
		{"GET", "/versions/x", 200},
		{"GET", "/v1/images", 300},
		{"GET", "/v2.17/images", 300},
		{"GET", "/V2/images", 300},
		{"DELETE", "/", 300},
		{"GET", "/foo", 300},
	} {
		r := e.do(t, req{method: tc.method, path: tc.path})
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, r.status, tc.status)
			continue
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
		if !ridRe.MatchString(r.header.Get("X-Openstack-Request-Id")) {
			t.Errorf("%s %s: request id %q", tc.method, tc.path, r.header.Get("X-Openstack-Request-Id"))
		}
		var doc struct {
			Versions []struct {
				ID, Status string
				Links      []struct{ Rel, Href string }
			}
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Versions) != 12 || doc.Versions[0].ID != "v2.16" || doc.Versions[0].Status != "CURRENT" ||
			doc.Versions[11].ID != "v2.0" || doc.Versions[3].ID != "v2.9" {
			t.Errorf("versions: %+v", doc.Versions)
		}
		for _, v := range doc.Versions {
			if len(v.Links) != 1 || v.Links[0].Href != "http://"+host+"/v2/" || v.Links[0].Rel != "self" {
				t.Errorf("links of %s: %+v", v.ID, v.Links)
			}
		}
		// json.dumps layout, as Glance writes it.
		if !bytes.HasPrefix(r.body, []byte(`{"versions": [{"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": "http://`)) {
			t.Errorf("layout: %s", r.body[:80])
		}
	}
}

func TestAuthAndV2Root(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"no token", "/v2/images", "", 401},
		{"bad token", "/v2/images", "nope", 401},
		{"no token on /v2", "/v2", "", 401},
		{"no token on unknown v2 path", "/v2/foo", "", 401},
		{"no token on image data", "/v2/images/x/file", "", 401},
		{"no token on not implemented", "/v2/tasks", "", 401},
		{"good token", "/v2/images", alice, 200},
		{"versioned path", "/v2.1/images", alice, 200},
		{"v2 root", "/v2/", alice, 404},
		{"unknown v2 path", "/v2/foo", alice, 404},
		{"trailing slash", "/v2/images/", alice, 404},
	} {
		r := e.do(t, req{method: "GET", path: tc.path, token: tc.token, header: jsonAccept})
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if r.status == 401 {
			if got := r.header.Get("WWW-Authenticate"); got != `Keystone uri="http://127.0.0.1:5000/v3"` {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
			}
			m := jsonOf(t, r.body)
			if m["code"] != "401 Unauthorized" || m["title"] != "Unauthorized" {
				t.Errorf("%s: body %v", tc.name, m)
			}
		}
		if r.status == 404 && jsonErr(t, r) != "The resource could not be found." {
			t.Errorf("%s: 404 body %s", tc.name, r.body)
		}
	}
	// Media-type versioning: the version comes from Accept, the path
	// has none.
	if r := e.do(t, req{method: "GET", path: "/images", token: alice,
		header: map[string]string{"Accept": "application/vnd.openstack.images-v2.1"}}); r.status != 200 || !bytes.Contains(r.body, []byte(`"images": [`)) {
		t.Errorf("vnd accept: %d %s", r.status, r.body)
	}
	r := e.do(t, req{method: "GET", path: "/v2", token: alice})
	if r.status != 302 || r.header.Get("Location") != e.srv.URL+"/v2/" || r.header.Get("Content-Length") != "0" {
		t.Errorf("/v2: %d %v", r.status, r.header)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ in, want string }{
		{"req-11111111-2222-3333-4444-555555555555", "req-11111111-2222-3333-4444-555555555555"},
		{"foo", "req-foo"},
		{strings.Repeat("a", 65), ""}, // too long: a new one
		{"bad id\twith space", ""},    // unsafe characters: a new one
		{"", ""},                      // none: a new one
	} {
		for _, path := range []string{"/versions", "/v2/images", "/v2/nowhere"} {
			r := e.do(t, req{method: "GET", path: path, token: alice, header: map[string]string{"X-Openstack-Request-Id": tc.in}})
			got := r.header.Get("X-Openstack-Request-Id")
			if tc.want != "" && got != tc.want || tc.want == "" && !ridRe.MatchString(got) {
				t.Errorf("in %q on %s: got %q", tc.in, path, got)
			}
		}
	}
	// Every response has one, 401 included, and the access log names it
	// without the token.
	r := e.do(t, req{method: "GET", path: "/v2/images", token: "secret-token-value"})
	rid := r.header.Get("X-Openstack-Request-Id")
	if r.status != 401 || !ridRe.MatchString(rid) {
		t.Fatalf("401: %d %q", r.status, rid)
	}
	logs := e.log.String()
	if strings.Contains(logs, "secret-token-value") || strings.Contains(logs, alice) {
		t.Error("a token leaked into the log")
	}
	found := false
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, rid) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "request" && m["method"] == "GET" && m["path"] == "/v2/images" && m["status"] == float64(401) && m["duration"] != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("no access log line for %s in:\n%s", rid, logs)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := "11111111-2222-3333-4444-555555555555"
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v2/images", "GET, POST"},
		{"HEAD", "/v2/images", "GET, POST"},
		{"PUT", "/v2/images/" + id, "GET, PATCH, DELETE"},
		{"PATCH", "/v2/images/" + id + "/members", "GET, POST"},
		{"POST", "/v2/images/" + id + "/members/projB", "GET, PUT, DELETE"},
		{"GET", "/v2/images/" + id + "/tags/x", "PUT, DELETE"},
		{"GET", "/v2/images/" + id + "/actions/deactivate", "POST"},
		{"PUT", "/v2/schemas/image", "GET"},
		{"POST", "/v2/images/" + id + "/file", "GET, PUT"},
		{"HEAD", "/v2/images/" + id + "/file", "GET, PUT"}, // as Glance: no HEAD on image data
		{"GET", "/v2/images/" + id + "/stage", "PUT"},
	} {
		r := e.do(t, req{method: tc.method, path: tc.path, token: alice, header: jsonAccept})
		if r.status != 405 || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 %q", tc.method, tc.path, r.status, r.header.Get("Allow"), tc.allow)
			continue
		}
		if tc.method == "HEAD" {
			// webob sends no body for HEAD, with its default type.
			if r.header.Get("Content-Type") != "text/html; charset=UTF-8" || r.header.Get("Content-Length") != "0" {
				t.Errorf("HEAD: %v", r.header)
			}
			continue
		}
		want := `{"message": "The method ` + tc.method + ` is not allowed for this resource. <br /><br />\n", "code": "405 Method Not Allowed", "title": "Method Not Allowed"}`
		if string(r.body) != want {
			t.Errorf("%s %s: body %s", tc.method, tc.path, r.body)
		}
	}
}

func TestNotImplemented(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := "11111111-2222-3333-4444-555555555555"
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/v2/images/" + id + "/stage"},
		{"POST", "/v2/images/" + id + "/import"},
		{"GET", "/v2/images/" + id + "/tasks"},
		{"GET", "/v2/info/import"},
		{"GET", "/v2/tasks"},
		{"POST", "/v2/tasks"},
		{"GET", "/v2/tasks/abc"},
		{"GET", "/v2/metadefs/namespaces"},
		{"POST", "/v2/metadefs/namespaces/x/objects"},
		{"GET", "/v2/schemas/metadefs/namespace"},
	} {
		r := e.do(t, req{method: tc.method, path: tc.path, token: alice, header: jsonAccept})
		if r.status != 501 {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
			continue
		}
		m := jsonOf(t, r.body)
		if m["code"] != "501 Not Implemented" || !strings.HasPrefix(jsonErr(t, r), "Not Implemented") {
			t.Errorf("%s %s: %v", tc.method, tc.path, m)
		}
		if r := e.do(t, req{method: tc.method, path: tc.path}); r.status != 401 {
			t.Errorf("%s %s without token: %d", tc.method, tc.path, r.status)
		}
	}
}

func TestSchemas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"image", "images", "member", "members"} {
		r := e.do(t, req{method: "GET", path: "/v2/schemas/" + name, token: alice})
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %v", name, r.status, r.header)
		}
		m := jsonOf(t, r.body)
		if m["name"] != name {
			t.Errorf("%s: name %v", name, m["name"])
		}
		if bytes.Contains(r.body, []byte(`"stores"`)) {
			t.Errorf("%s: has stores (breaks glanceclient 4.1)", name)
		}
	}
}

// panicky is an ImageService whose GetImage panics: a bug can't be made to
// happen in the real catalog on purpose.
type panicky struct{ imaged.ImageService }

func (panicky) GetImage(context.Context, string) (*imaged.Image, error) { panic("boom") }

// failing returns an internal error with a secret in it.
type failing struct{ imaged.ImageService }

func (failing) ListMembers(context.Context, string) ([]*imaged.Member, error) {
	return nil, io.ErrUnexpectedEOF
}

func TestPanicAndInternalError(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s imaged.ImageService) imaged.ImageService { return failing{panicky{s}} })
	r := e.do(t, req{method: "GET", path: "/v2/images/x", token: alice, header: jsonAccept})
	if r.status != 500 || r.header.Get("X-Openstack-Request-Id") == "" {
		t.Fatalf("panic: %d %v", r.status, r.header)
	}
	want := `{"message": "The server has either erred or is incapable of performing the requested operation.<br /><br />\n\n\n", "code": "500 Internal Server Error", "title": "Internal Server Error"}`
	if string(r.body) != want {
		t.Errorf("panic body %s", r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/x/members", token: alice, header: jsonAccept})
	if r.status != 500 || string(r.body) != want {
		t.Errorf("internal error: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.log.String(), "boom") || !strings.Contains(e.log.String(), io.ErrUnexpectedEOF.Error()) {
		t.Error("panic and internal error are not logged")
	}
	// The server still works.
	if r := e.do(t, req{method: "GET", path: "/v2/images", token: alice}); r.status != 200 {
		t.Errorf("after panic: %d", r.status)
	}
}
