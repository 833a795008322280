// Package keystonetest starts a real Keystone (Debian's keystone package,
// served by uwsgi) on a free loopback port for tests, with SQLite and
// fernet tokens, bootstrapped with one identity per persona. It needs
// keystone-manage, uwsgi and uwsgi's python3 plugin (scripts/deps/
// keystone.sh installs them): without them a test skips, except under
// CI=true, where it fails.
package keystonetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Password is every test user's password.
const Password = "imaged-test-pw"

// Persona is a bootstrapped user with a project-scoped role set.
type Persona struct {
	User      string
	UserID    string
	Project   string
	ProjectID string
	Roles     []string // the roles assigned (Keystone adds implied ones to tokens)
}

// Server is a running Keystone.
type Server struct {
	URL      string // http://127.0.0.1:PORT (no /v3)
	Personas map[string]Persona
	// Service is the service user imaged validates tokens as (role
	// "service" in project "service").
	Service Persona
	dir     string
	cmd     *exec.Cmd
	admin   string // an admin token
}

// The personas every server has: the admin of project admin, a member and
// a reader of project alpha, a member of project beta, and nova (a
// service user that sends X-Service-Token).
var personaSpecs = []struct {
	name, project string
	roles         []string
}{
	{"alice", "alpha", []string{"member"}},
	{"rita", "alpha", []string{"reader"}},
	{"bob", "beta", []string{"member"}},
	{"imaged", "service", []string{"service"}},
	{"nova", "service", []string{"service"}},
}

// adminClient opens a connection per call: a POST on a connection that
// uwsgi has just closed would fail without a retry.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}

// templateOnce builds one bootstrapped Keystone directory per test
// process; each Start copies it (keystone-manage db_sync and bootstrap take
// most of a minute, copying takes milliseconds).
var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

func need(t testing.TB) {
	t.Helper()
	for _, c := range []string{"keystone-manage", "uwsgi"} {
		if _, err := exec.LookPath(c); err != nil {
			msg := fmt.Sprintf("keystonetest: %s not found (scripts/deps/keystone.sh installs Debian's keystone and uwsgi)", c)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

func writeConf(dir string) (string, error) {
	conf := filepath.Join(dir, "keystone.conf")
	body := fmt.Sprintf(`[DEFAULT]
log_file = %[1]s/keystone.log
[database]
connection = sqlite:///%[1]s/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = %[1]s/fernet-keys
[credential]
key_repository = %[1]s/credential-keys
`, dir)
	return conf, os.WriteFile(conf, []byte(body), 0o600)
}

func manage(conf string, args ...string) error {
	cmd := exec.Command("keystone-manage", append([]string{"--config-file", conf}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("keystone-manage %s: %v\n%s", strings.Join(args, " "), err, tail(out))
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// buildTemplate returns a bootstrapped Keystone directory. It is kept in
// the user's cache directory between test runs (like Go's build cache),
// keyed by the keystone-manage binary's size and time, because making one
// takes most of a minute.
func buildTemplate() (string, error) {
	key := "none"
	if fi, err := os.Stat("/usr/bin/keystone-manage"); err == nil {
		key = fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().Unix())
	}
	var cached string
	if cd, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(cd, "imaged-test", "keystone-template-v1-"+key)
		if _, err := os.Stat(filepath.Join(cached, "done")); err == nil {
			return cached, nil
		}
	}
	dir, err := os.MkdirTemp("", "imaged-keystone-template-")
	if err != nil {
		return "", err
	}
	if err := bootstrapTemplate(dir); err != nil {
		return "", err
	}
	if cached != "" && os.MkdirAll(filepath.Dir(cached), 0o700) == nil {
		_ = os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
		if os.Rename(dir, cached) == nil {
			return cached, nil
		}
	}
	return dir, nil
}

func bootstrapTemplate(dir string) error {
	conf, err := writeConf(dir)
	if err != nil {
		return err
	}
	steps := [][]string{
		{"db_sync"},
		{"fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		// The endpoint URLs are rewritten per server (see Start).
		{"bootstrap", "--bootstrap-password", Password, "--bootstrap-region-id", "RegionOne",
			"--bootstrap-public-url", "http://127.0.0.1:1/v3", "--bootstrap-admin-url", "http://127.0.0.1:1/v3",
			"--bootstrap-internal-url", "http://127.0.0.1:1/v3"},
	}
	if os.Geteuid() != 0 {
		steps[1] = []string{"fernet_setup", "--keystone-user", fmt.Sprint(os.Geteuid()), "--keystone-group", fmt.Sprint(os.Getegid())}
		steps[2] = []string{"credential_setup", "--keystone-user", fmt.Sprint(os.Geteuid()), "--keystone-group", fmt.Sprint(os.Getegid())}
	}
	for _, s := range steps {
		if err := manage(conf, s...); err != nil {
			return err
		}
	}
	return nil
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm()|0o700)
		}
		if strings.HasSuffix(p, ".conf") || strings.HasSuffix(p, ".log") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, fi.Mode().Perm())
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs a Keystone for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	need(t)
	templateOnce.Do(func() { templateDir, templateErr = buildTemplate() })
	if templateErr != nil {
		t.Fatalf("keystonetest: bootstrap: %v", templateErr)
	}
	dir := t.TempDir()
	if err := copyDir(templateDir, dir); err != nil {
		t.Fatal(err)
	}
	conf, err := writeConf(dir)
	if err != nil {
		t.Fatal(err)
	}
	// oslo.db opens a transaction (BEGIN) for reads too, and Keystone keeps
	// a reader open while another connection of the same request writes:
	// with SQLite's rollback journal that writer waits for the reader and
	// fails with "database is locked". In WAL mode readers do not block
	// writers. (The mode is stored in the file.)
	if out, err := exec.Command("/usr/bin/python3", "-c",
		"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('PRAGMA journal_mode=WAL').fetchone()[0]); c.close()",
		filepath.Join(dir, "keystone.db")).CombinedOutput(); err != nil || !strings.Contains(string(out), "wal") {
		t.Fatalf("keystonetest: WAL mode: %v %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir, Personas: map[string]Persona{}}
	logf, err := os.Create(filepath.Join(dir, "uwsgi.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("uwsgi", "--plugin", "python3", "--http-socket", fmt.Sprintf("127.0.0.1:%d", port),
		"--wsgi-file", "/usr/bin/keystone-wsgi-public", "--master", "--processes", "1", "--threads", "4",
		"--die-on-term", "--need-app", "--disable-logging", "--lazy-apps",
		// uwsgi's http-socket closes every connection after one
		// response without saying so: clients (keystoneauth, Go) that
		// reuse it get "connection reset" on their next request, a
		// POST of which they do not retry. Saying so makes them open a
		// new connection.
		"--add-header", "Connection: close")
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_FILES="+conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("keystonetest: start uwsgi: %v", err)
	}
	s.cmd = cmd
	t.Cleanup(func() { s.Stop(); logf.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/v3")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "uwsgi.log"))
			t.Fatalf("keystonetest: keystone did not answer on %s: %v\n%s", s.URL, err, tail(log))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := s.bootstrapPersonas(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "keystone.log"))
		t.Fatalf("keystonetest: personas: %v\n%s", err, tail(log))
	}
	return s
}

// Stop stops the server (idempotent). Tests use it to make Keystone
// unavailable.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	s.cmd = nil
}

// Token issues a project-scoped token for a persona ("admin" is the
// bootstrap admin).
func (s *Server) Token(t testing.TB, user string) string {
	t.Helper()
	project := "admin"
	if p, ok := s.Personas[user]; ok {
		project = p.Project
	}
	tok, err := s.issue(user, project)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Revoke revokes a token.
func (s *Server) Revoke(t testing.TB, token string) {
	t.Helper()
	if _, _, err := s.call(http.MethodDelete, "/v3/auth/tokens", nil, map[string]string{"X-Subject-Token": token}); err != nil {
		t.Fatal(err)
	}
}

// AddEndpoint registers a service of a type (e.g. "image") with a public
// endpoint in RegionOne, so that clients find it in the catalog.
func (s *Server) AddEndpoint(t testing.TB, typ, name, url string) {
	t.Helper()
	s.AddRegionEndpoint(t, "RegionOne", typ, name, url)
}

// AddRegionEndpoint registers public, internal and admin endpoints of a
// service (type and name; created on first use, then shared by every
// region) in a region, creating the region if it is new. Two imaged
// processes registered as one service in two regions are what
// glance-download finds in a user's catalog.
func (s *Server) AddRegionEndpoint(t testing.TB, region, typ, name, url string) {
	t.Helper()
	if code, _, err := s.call(http.MethodGet, "/v3/regions/"+region, nil, nil); code == http.StatusNotFound {
		if _, _, err := s.call(http.MethodPost, "/v3/regions", map[string]any{"region": map[string]any{"id": region}}, nil); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	var svcs struct {
		Services []struct{ ID, Name string } `json:"services"`
	}
	_, body, err := s.call(http.MethodGet, "/v3/services?type="+typ, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &svcs); err != nil {
		t.Fatal(err)
	}
	svcID := ""
	for _, sv := range svcs.Services {
		if sv.Name == name {
			svcID = sv.ID
		}
	}
	if svcID == "" {
		var svc struct {
			Service struct{ ID string } `json:"service"`
		}
		if _, body, err := s.call(http.MethodPost, "/v3/services", map[string]any{"service": map[string]any{"type": typ, "name": name}}, nil); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(body, &svc); err != nil {
			t.Fatal(err)
		}
		svcID = svc.Service.ID
	}
	for _, iface := range []string{"public", "internal", "admin"} {
		if _, _, err := s.call(http.MethodPost, "/v3/endpoints", map[string]any{"endpoint": map[string]any{
			"service_id": svcID, "interface": iface, "url": url, "region_id": region}}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *Server) issue(user, project string) (string, error) {
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": user, "password": Password, "domain": map[string]any{"name": "Default"}}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"name": "Default"}}},
	}})
	resp, err := adminClient.Post(s.URL+"/v3/auth/tokens?nocatalog", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("token for %s@%s: %s %s", user, project, resp.Status, b)
	}
	return resp.Header.Get("X-Subject-Token"), nil
}

// call makes an admin API call and returns the status and body; a status
// >= 300 is an error.
func (s *Server) call(method, path string, in any, hdr map[string]string) (int, []byte, error) {
	if s.admin == "" {
		tok, err := s.issue("admin", "admin")
		if err != nil {
			return 0, nil, err
		}
		s.admin = tok
	}
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	req.Header.Set("X-Auth-Token", s.admin)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, b, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return resp.StatusCode, b, nil
}

func (s *Server) bootstrapPersonas() error {
	ids := map[string]string{} // name -> id for projects, roles
	list := func(path, key string) error {
		_, b, err := s.call(http.MethodGet, path, nil, nil)
		if err != nil {
			return err
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		var entries []struct{ ID, Name string }
		if err := json.Unmarshal(doc[key], &entries); err != nil {
			return err
		}
		for _, e := range entries {
			ids[key+":"+e.Name] = e.ID
		}
		return nil
	}
	if err := list("/v3/roles", "roles"); err != nil {
		return err
	}
	if err := list("/v3/projects", "projects"); err != nil {
		return err
	}
	if _, ok := ids["roles:service"]; !ok {
		_, b, err := s.call(http.MethodPost, "/v3/roles", map[string]any{"role": map[string]any{"name": "service"}}, nil)
		if err != nil {
			return err
		}
		var r struct{ Role struct{ ID string } }
		_ = json.Unmarshal(b, &r)
		ids["roles:service"] = r.Role.ID
	}
	for _, p := range []string{"alpha", "beta", "service"} {
		if _, ok := ids["projects:"+p]; ok {
			continue
		}
		_, b, err := s.call(http.MethodPost, "/v3/projects", map[string]any{"project": map[string]any{"name": p, "domain_id": "default"}}, nil)
		if err != nil {
			return err
		}
		var r struct{ Project struct{ ID string } }
		_ = json.Unmarshal(b, &r)
		ids["projects:"+p] = r.Project.ID
	}
	for _, ps := range personaSpecs {
		_, b, err := s.call(http.MethodPost, "/v3/users", map[string]any{"user": map[string]any{"name": ps.name, "password": Password, "domain_id": "default"}}, nil)
		if err != nil {
			return err
		}
		var u struct{ User struct{ ID string } }
		_ = json.Unmarshal(b, &u)
		pid := ids["projects:"+ps.project]
		for _, r := range ps.roles {
			if _, _, err := s.call(http.MethodPut, "/v3/projects/"+pid+"/users/"+u.User.ID+"/roles/"+ids["roles:"+r], nil, nil); err != nil {
				return err
			}
		}
		p := Persona{User: ps.name, UserID: u.User.ID, Project: ps.project, ProjectID: pid, Roles: ps.roles}
		s.Personas[ps.name] = p
		if ps.name == "imaged" {
			s.Service = p
		}
	}
	_, b, err := s.call(http.MethodGet, "/v3/users?name=admin", nil, nil)
	if err != nil {
		return err
	}
	var us struct{ Users []struct{ ID string } }
	_ = json.Unmarshal(b, &us)
	if len(us.Users) == 1 {
		s.Personas["admin"] = Persona{User: "admin", UserID: us.Users[0].ID, Project: "admin", ProjectID: ids["projects:admin"], Roles: []string{"admin"}}
	}
	return nil
}
