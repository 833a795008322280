package agentapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agentapi"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

type resolver struct{}

func (resolver) ResolveContainerImage(_ context.Context, ref, arch string) (*imaged.ContainerImage, error) {
	if ref == "known" {
		return &imaged.ContainerImage{Reference: "127.0.0.1:5000/bai/known:1", Architecture: "x86_64"}, nil
	}
	return nil, imaged.Errorf(imaged.ENOTFOUND, "no image %q", ref)
}

const agentToken = "agent-n1-token-0123456789"

type fixture struct {
	srv     *httptest.Server
	handler http.Handler
	store   *sqlstore.Store
	tasks   *bgtask.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tasks := bgtask.New(bgtask.Config{Store: st})
	t.Cleanup(func() { tasks.Close(context.Background()) })
	svc, err := agents.New(agents.Config{Store: st, Resolver: resolver{}, Catalog: st, Tasks: tasks, Policy: policy.Secure(),
		Tokens: map[string]string{"n1": imaged.AgentTokenDigest(agentToken)}, AgentTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(users, []byte("tokens:\n  - {token: admin-token, user_id: adm, project_id: admins, roles: [admin, member, reader]}\n  - {token: member-token, user_id: alice, project_id: projA, roles: [member, reader]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewTokenFile(users)
	if err != nil {
		t.Fatal(err)
	}
	h := agentapi.New(agentapi.Config{Agents: svc, Auth: authn, MaxBodyBytes: 64 << 10})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, handler: h, store: st, tasks: tasks}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func errCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func admin() map[string]string  { return map[string]string{"X-Auth-Token": "admin-token"} }
func member() map[string]string { return map[string]string{"X-Auth-Token": "member-token"} }

const goodBeat = `{"addr":"http://127.0.0.1:7070","runtime":"dir","version":"v1","heartbeat_seconds":10,"images":[{"reference":"r/a:1","architecture":"amd64","digest":"sha256:00","size":5}]}`

func TestErrorsAndAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	big := `{"keys":[` + strings.Repeat(`{"agent_id":"n1","images":[{"name":"x"}]},`, 3000) + `{"agent_id":"n2","images":[{"name":"x"}]}]}`
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		status             int
		code               string
	}{
		{"no token", "GET", "/api/v1/agents", nil, "", 401, imaged.EUNAUTHORIZED},
		{"bad token", "GET", "/api/v1/agents", map[string]string{"X-Auth-Token": "nope"}, "", 401, imaged.EUNAUTHORIZED},
		{"member lists", "GET", "/api/v1/agents", member(), "", 403, imaged.EFORBIDDEN},
		{"member purges", "POST", "/api/v1/agents/purge-images", member(), `{"keys":[{"agent_id":"n1","images":[{"name":"known"}]}]}`, 403, imaged.EFORBIDDEN},
		{"member preloads", "POST", "/api/v1/agents/preload-images", member(), `{"keys":[{"agent_id":"n1","images":[{"name":"known"}]}]}`, 403, imaged.EFORBIDDEN},
		{"unknown agent", "GET", "/api/v1/agents/zz", admin(), "", 404, imaged.ENOTFOUND},
		{"unknown path", "GET", "/api/v1/agents/zz/yy/xx", admin(), "", 404, imaged.ENOTFOUND},
		{"wrong method", "DELETE", "/api/v1/agents/purge-images", admin(), "", 405, "method_not_allowed"},
		{"bad json", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":`, 400, imaged.EINVALID},
		{"unknown field", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[],"prune":true}`, 400, imaged.EINVALID},
		{"no keys", "POST", "/api/v1/agents/purge-images", admin(), `{}`, 400, imaged.EINVALID},
		{"empty keys", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[]}`, 400, imaged.EINVALID},
		{"bad agent id", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":"../x","images":[{"name":"known"}]}]}`, 400, imaged.EINVALID},
		{"no images", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":"n1","images":[]}]}`, 400, imaged.EINVALID},
		{"empty name", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":"n1","images":[{"name":""}]}]}`, 400, imaged.EINVALID},
		{"duplicate agent", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":"n1","images":[{"name":"a"}]},{"agent_id":"n1","images":[{"name":"b"}]}]}`, 400, imaged.EINVALID},
		{"wrong type", "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":1,"images":[]}]}`, 400, imaged.EINVALID},
		{"too large", "POST", "/api/v1/agents/purge-images", admin(), big, 413, imaged.ETOOLARGE},
		{"media type", "POST", "/api/v1/agents/purge-images", map[string]string{"X-Auth-Token": "admin-token", "Content-Type": "text/plain"}, `{}`, 415, imaged.EUNSUPPORTED},
		{"agent without token", "POST", "/api/v1/agents/n1/register", nil, goodBeat, 401, imaged.EUNAUTHORIZED},
		{"agent wrong token", "POST", "/api/v1/agents/n1/register", map[string]string{"X-Agent-Token": "agent-n2-token-0123456789"}, goodBeat, 401, imaged.EUNAUTHORIZED},
		{"agent unknown id", "POST", "/api/v1/agents/n9/heartbeat", map[string]string{"X-Agent-Token": agentToken}, goodBeat, 401, imaged.EUNAUTHORIZED},
		{"user token is no agent token", "POST", "/api/v1/agents/n1/register", admin(), goodBeat, 401, imaged.EUNAUTHORIZED},
		{"agent bad addr", "POST", "/api/v1/agents/n1/register", map[string]string{"X-Agent-Token": agentToken}, `{"addr":"ftp://x","runtime":"dir"}`, 400, imaged.EINVALID},
		{"agent bad runtime", "POST", "/api/v1/agents/n1/register", map[string]string{"X-Agent-Token": agentToken}, `{"addr":"http://127.0.0.1:1","runtime":"Dir!"}`, 400, imaged.EINVALID},
		{"agent bad heartbeat", "POST", "/api/v1/agents/n1/register", map[string]string{"X-Agent-Token": agentToken}, `{"addr":"http://127.0.0.1:1","runtime":"dir","heartbeat_seconds":-1}`, 400, imaged.EINVALID},
		{"agent bad image", "POST", "/api/v1/agents/n1/register", map[string]string{"X-Agent-Token": agentToken}, `{"addr":"http://127.0.0.1:1","runtime":"dir","images":[{"reference":"","size":-1}]}`, 400, imaged.EINVALID},
		{"token both", "PUT", "/api/v1/agents/n5/token", admin(), `{"token":"abcdefghijklmnopq","sha256":"00"}`, 400, imaged.EINVALID},
		{"token short", "PUT", "/api/v1/agents/n5/token", admin(), `{"token":"short"}`, 400, imaged.EINVALID},
		{"token by member", "PUT", "/api/v1/agents/n5/token", member(), `{"token":"abcdefghijklmnopq"}`, 403, imaged.EFORBIDDEN},
		{"token of file agent", "PUT", "/api/v1/agents/n1/token", admin(), `{"token":"abcdefghijklmnopq"}`, 409, imaged.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.do(t, tc.method, tc.path, tc.hdr, tc.body)
			if a.status != tc.status || errCode(a) != tc.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.path, a.status, a.raw, tc.status, tc.code)
			}
			e := a.body["error"].(map[string]any)
			if e["request_id"] == "" || e["request_id"] != a.header.Get("X-Request-Id") {
				t.Fatalf("request id %v vs header %q", e["request_id"], a.header.Get("X-Request-Id"))
			}
			if tc.status == 401 && tc.path == "/api/v1/agents" && a.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tc.status == 405 && a.header.Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", a.header.Get("Allow"))
			}
			if strings.Contains(a.raw, agentToken) || strings.Contains(a.raw, "admin-token") {
				t.Fatal("an answer quotes a token")
			}
		})
	}
}

func TestRequestIDEcho(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.do(t, "GET", "/api/v1/agents", map[string]string{"X-Auth-Token": "admin-token", "X-Request-Id": "my-req-1"}, "")
	if a.status != 200 || a.header.Get("X-Request-Id") != "my-req-1" {
		t.Fatalf("%d %q", a.status, a.header.Get("X-Request-Id"))
	}
	a = f.do(t, "GET", "/api/v1/agents", map[string]string{"X-Auth-Token": "admin-token", "X-Request-Id": "bad id with spaces"}, "")
	if a.header.Get("X-Request-Id") == "bad id with spaces" || a.header.Get("X-Request-Id") == "" {
		t.Fatalf("a malformed request id was echoed: %q", a.header.Get("X-Request-Id"))
	}
}

func TestRegisterTokenAndHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// An admin registers n5's token; n5 can then register; the service
	// keeps only the digest.
	tok := "n5-secret-token-0123456789"
	if a := f.do(t, "PUT", "/api/v1/agents/n5/token", admin(), `{"token":"`+tok+`"}`); a.status != 204 {
		t.Fatalf("PUT token = %d %s", a.status, a.raw)
	}
	if d, err := f.store.GetAgentToken(context.Background(), "n5"); err != nil || d != imaged.AgentTokenDigest(tok) {
		t.Fatalf("stored %q, %v", d, err)
	}
	a := f.do(t, "POST", "/api/v1/agents/n5/register", map[string]string{"X-Agent-Token": tok}, goodBeat)
	if a.status != 200 || a.body["status"] != "online" {
		t.Fatalf("register = %d %s", a.status, a.raw)
	}
	// A heartbeat without images keeps the inventory.
	a = f.do(t, "POST", "/api/v1/agents/n5/heartbeat", map[string]string{"X-Agent-Token": tok}, `{"addr":"http://127.0.0.1:7070","runtime":"dir"}`)
	if a.status != 200 {
		t.Fatalf("heartbeat = %d %s", a.status, a.raw)
	}
	a = f.do(t, "GET", "/api/v1/agents/n5", admin(), "")
	imgs, _ := a.body["images"].([]any)
	if a.status != 200 || len(imgs) != 1 || a.body["image_count"] != float64(1) || a.body["heartbeat_seconds"] != float64(10) {
		t.Fatalf("GET n5 = %d %s", a.status, a.raw)
	}
	if im := imgs[0].(map[string]any); im["architecture"] != "x86_64" {
		t.Fatalf("architecture not normalised: %v", im)
	}
	// By digest.
	if a := f.do(t, "PUT", "/api/v1/agents/n6/token", admin(), `{"sha256":"`+imaged.AgentTokenDigest(tok+"6")+`"}`); a.status != 204 {
		t.Fatalf("PUT sha256 = %d %s", a.status, a.raw)
	}
	if a := f.do(t, "POST", "/api/v1/agents/n6/register", map[string]string{"X-Agent-Token": tok + "6"}, goodBeat); a.status != 200 {
		t.Fatalf("register n6 = %d %s", a.status, a.raw)
	}
	if a := f.do(t, "POST", "/api/v1/agents/n6/register", map[string]string{"X-Agent-Token": imaged.AgentTokenDigest(tok + "6")}, goodBeat); a.status != 401 {
		t.Fatalf("the digest itself registered an agent: %d", a.status)
	}
}

func TestPurgeAnswersWithATask(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.do(t, "POST", "/api/v1/agents/purge-images", admin(), `{"keys":[{"agent_id":"n1","images":[{"name":"known","architecture":"x86_64"},{"name":"unknown"}]}],"force":true}`)
	if a.status != 202 || a.body["type"] != imaged.TaskTypeAgentPurge || !strings.HasPrefix(a.header.Get("Location"), "/api/v1/tasks/") {
		t.Fatalf("purge = %d %s", a.status, a.raw)
	}
	f.tasks.Wait()
	task, err := f.store.GetTask(context.Background(), a.body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// n1 never registered: one unknown_agent error plus the unknown image.
	b, _ := json.Marshal(task.Result)
	if task.Status != imaged.TaskSuccess || !bytes.Contains(b, []byte(`"reason":"unknown_agent"`)) || !bytes.Contains(b, []byte(`"reason":"unknown_image"`)) {
		t.Fatalf("task %s: %s", task.Status, b)
	}
	if task.Input["force"] != true {
		t.Fatalf("input %v", task.Input)
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI    string                    `json:"openapi"`
		Paths      map[string]map[string]any `json:"paths"`
		Components map[string]any            `json:"components"`
	}
	if err := json.Unmarshal(agentapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" || doc.Components["schemas"] == nil {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	f := newFixture(t)
	seen := map[string]bool{}
	for _, r := range agentapi.Routes(f.handler) {
		method, path, _ := strings.Cut(r, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok || op == nil {
			t.Errorf("route %s is not in the OpenAPI fragment", r)
		}
		seen[strings.ToLower(method)+" "+path] = true
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" && !seen[m+" "+p] {
				t.Errorf("the OpenAPI fragment describes %s %s, which is not served", m, p)
			}
		}
	}
	// Every $ref resolves.
	raw := string(agentapi.OpenAPI())
	for _, part := range strings.Split(raw, `"$ref": "#/components/`)[1:] {
		ref, _, _ := strings.Cut(part, `"`)
		kind, name, _ := strings.Cut(ref, "/")
		m, _ := doc.Components[kind].(map[string]any)
		if _, ok := m[name]; !ok {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func FuzzDecodeImagesRequest(f *testing.F) {
	f.Add([]byte(`{"keys":[{"agent_id":"n1","images":[{"name":"x","architecture":"amd64"}]}],"force":true}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := agentapi.DecodeImagesRequest(data)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("code %s", imaged.ErrorCode(err))
			}
			return
		}
		if err := agents.ValidateRequest(&req); err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Fatalf("validate code %s", imaged.ErrorCode(err))
		}
	})
}

func FuzzDecodeRegistration(f *testing.F) {
	f.Add([]byte(goodBeat))
	f.Add([]byte(`{"heartbeat_seconds":1e308}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := agentapi.DecodeRegistration(data); err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Fatalf("code %s", imaged.ErrorCode(err))
		}
	})
}
