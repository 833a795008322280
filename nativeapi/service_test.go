package nativeapi_test

// Behaviour through HTTP with the real stack: SQLite store, the containers
// service, a real registry (registrytest; skipped locally without the
// docker-registry binary, failing under CI=true) and the tokens file.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/nativeapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

type stack struct {
	*env
	reg  *registrytest.Server
	push registrytest.Pusher
}

// newStack serves the real service; the registry "local" (projects bai,
// custom) is created through the API.
func newStack(t *testing.T, opts registrytest.Options) *stack {
	t.Helper()
	reg := registrytest.Start(t, opts)
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	tasks := bgtask.New(bgtask.Config{Store: st, Logger: logger, PollInterval: 50 * time.Millisecond})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tasks.Close(cctx)
	})
	svc, err := containers.New(containers.Config{
		Store: st, Images: st, Tasks: tasks, Registry: registry.New(registry.Options{}), Policy: policy.Secure(),
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{env: serve(t, nativeapi.Config{Containers: svc, KeepAlive: 100 * time.Millisecond, Logger: logger}),
		reg: reg, push: reg.Pusher()}
	s.logs = logs
	body, _ := json.Marshal(map[string]any{"name": "local", "url": reg.URL, "type": "oci", "projects": []string{"bai", "custom"},
		"username": reg.Username, "password": reg.Password})
	want(t, s.send(t, "POST", admin, "/api/v1/registries", string(body)), http.StatusCreated)
	return s
}

func bai(extra map[string]string) map[string]string {
	m := map[string]string{imaged.LabelKernelspec: "1", "ai.backend.service-ports": "jupyter:http:8081"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// scan pushes repo:tag (amd64) and registers it through the API.
func (s *stack) scan(t *testing.T, repo, tag string, labels map[string]string) map[string]any {
	t.Helper()
	s.push.PushImage(t, repo, tag, "amd64", labels)
	r := s.send(t, "POST", admin, "/api/v1/container-images/scan",
		`{"reference":"`+s.reg.Host+"/"+repo+":"+tag+`","architecture":"amd64"}`)
	want(t, r, 200)
	imgs := obj(t, r)["images"].([]any)
	if len(imgs) != 1 {
		t.Fatalf("scan %s:%s: %s", repo, tag, r.body)
	}
	return imgs[0].(map[string]any)
}

func TestRegistriesHTTP(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{Username: "u", Password: "registry-pw"})
	r := s.get(t, admin, "/api/v1/registries/local")
	want(t, r, 200)
	m := obj(t, r)
	if m["url"] != s.reg.URL || m["username"] != "u" || strings.Contains(string(r.body), "registry-pw") {
		t.Errorf("registry %s", r.body)
	}
	if m["has_password"] != true {
		t.Errorf("has_password = %v for a registry with a password (the service blanks Password; see report)", m["has_password"])
	}
	s.scan(t, "bai/python", "3.9", bai(nil))
	list := obj(t, s.get(t, admin, "/api/v1/registries"))["registries"].([]any)
	if len(list) != 1 {
		t.Errorf("registries %v", list)
	}
	// Merge patch: change projects, drop the password.
	r = s.do(t, call{method: "PATCH", path: "/api/v1/registries/local", token: admin,
		body: `{"projects":["bai"],"password":null}`, hdr: []string{"Content-Type", "application/merge-patch+json"}})
	want(t, r, 200)
	m = obj(t, r)
	if ps := m["projects"].([]any); len(ps) != 1 || ps[0] != "bai" || m["has_password"] != false {
		t.Errorf("patched %s", r.body)
	}
	// Without its password the registry refuses imaged: 502, not a 401
	// that would blame the caller's token.
	s.push.PushImage(t, "bai/python", "3.10", "amd64", bai(nil))
	r = s.send(t, "POST", admin, "/api/v1/container-images/scan", `{"reference":"`+s.reg.Host+`/bai/python:3.10"}`)
	wantErr(t, r, http.StatusBadGateway, imaged.EUNAUTHORIZED)
	if r.header.Get("WWW-Authenticate") != "" {
		t.Error("a registry's refusal challenges the client")
	}
	tests := []struct {
		name, method, token, path, body string
		status                          int
		code                            string
	}{
		{"duplicate", "POST", admin, "/api/v1/registries", `{"name":"local","url":"http://127.0.0.1:1"}`, 409, imaged.ECONFLICT},
		{"member creates", "POST", alice, "/api/v1/registries", `{"name":"x","url":"http://127.0.0.1:1"}`, 403, imaged.EFORBIDDEN},
		{"reader reads", "GET", reader, "/api/v1/registries/local", "", 403, imaged.EFORBIDDEN},
		{"member lists", "GET", bob, "/api/v1/registries", "", 403, imaged.EFORBIDDEN},
		{"member patches", "PATCH", bob, "/api/v1/registries/local", `{"verify_tls":false}`, 403, imaged.EFORBIDDEN},
		{"member deletes", "DELETE", bob, "/api/v1/registries/local", "", 403, imaged.EFORBIDDEN},
		{"member rescans", "POST", bob, "/api/v1/registries/local/rescan", "", 403, imaged.EFORBIDDEN},
		{"unknown", "GET", admin, "/api/v1/registries/nope", "", 404, imaged.ENOTFOUND},
		{"bad url", "POST", admin, "/api/v1/registries", `{"name":"bad","url":"ftp://x"}`, 400, imaged.EINVALID},
		{"rescan unknown", "POST", admin, "/api/v1/registries/nope/rescan", "", 404, imaged.ENOTFOUND},
	}
	for _, tt := range tests {
		r := s.send(t, tt.method, tt.token, tt.path, tt.body)
		if r.status != tt.status || errCode(t, r) != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	for _, secret := range []string{"registry-pw", admin} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	// A registry with images cannot go; without, it can.
	wantErr(t, s.send(t, "DELETE", admin, "/api/v1/registries/local", ""), 409, imaged.ECONFLICT)
	want(t, s.send(t, "POST", admin, "/api/v1/registries", `{"name":"empty","url":"http://127.0.0.1:1","type":"harbor2","projects":["p"]}`), 201)
	want(t, s.send(t, "DELETE", admin, "/api/v1/registries/empty", ""), 204)
	// Docker Hub cannot be enumerated: the rescan is refused (422).
	want(t, s.send(t, "POST", admin, "/api/v1/registries", `{"name":"dh","url":"https://index.docker.io","type":"docker-hub"}`), 201)
	wantErr(t, s.send(t, "POST", admin, "/api/v1/registries/dh/rescan", ""), http.StatusUnprocessableEntity, imaged.EREFUSED)
	wantErr(t, s.get(t, admin, "/api/v1/registries/empty"), 404, imaged.ENOTFOUND)
}

// TestImageRoles: what each persona may see and do, through HTTP. alice
// owns the customized image; bob is another member; rita only reads.
func TestImageRoles(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	stock := s.scan(t, "bai/python", "3.9", bai(nil))["id"].(string)
	cust := s.scan(t, "custom/alice-py", "1", bai(map[string]string{imaged.LabelCustomizedOwner: "user:alice"}))["id"].(string)
	img := func(id string) string { return "/api/v1/container-images/" + id }

	type step struct {
		method, token, path, body string
		status                    int
	}
	steps := []step{
		// Seeing.
		{"GET", admin, img(cust), "", 200}, {"GET", alice, img(cust), "", 200},
		{"GET", bob, img(cust), "", 404}, {"GET", reader, img(cust), "", 404},
		{"GET", bob, img(stock), "", 200}, {"GET", reader, img(stock), "", 200},
		// Changing what one sees but may not change: 403; what one
		// cannot see: 404.
		{"POST", bob, img(stock) + "/forget", "", 403}, {"POST", alice, img(stock) + "/forget", "", 403},
		{"POST", reader, img(stock) + "/forget", "", 403}, {"POST", bob, img(cust) + "/forget", "", 404},
		{"POST", reader, img(cust) + "/forget", "", 404}, {"PATCH", alice, img(cust), `{"protected":true}`, 403},
		{"PATCH", bob, img(cust), `{"protected":true}`, 404}, {"PATCH", bob, img(stock), `{"protected":true}`, 403},
		{"PUT", alice, img(cust) + "/resource-limits", `{"cpu":{"min":"2"}}`, 403},
		{"DELETE", alice, img(stock) + "/resource-limits", "", 403},
		{"DELETE", bob, img(cust), "", 404}, {"DELETE", reader, img(stock), "", 403},
		{"POST", bob, img(stock) + "/untag", "", 403}, {"POST", bob, img(cust) + "/restore", "", 404},
		{"PUT", alice, "/api/v1/aliases/mine", `{"image_id":"` + cust + `"}`, 403},
		{"GET", bob, "/api/v1/audit", "", 403}, {"GET", bob, "/api/v1/aliases", "", 403},
		{"POST", bob, "/api/v1/container-images/scan", `{"reference":"` + s.reg.Host + `/bai/python:3.9"}`, 403},
		{"GET", admin, img("00000000-0000-0000-0000-000000000000"), "", 404},
		// The owner's life cycle: forget, again (409), restore, again (409).
		{"POST", alice, img(cust) + "/forget", "", 200}, {"POST", alice, img(cust) + "/forget", "", 409},
		{"GET", alice, img(cust), "", 200}, {"POST", bob, img(cust) + "/restore", "", 404},
		{"POST", alice, img(cust) + "/restore", "", 200}, {"POST", alice, img(cust) + "/restore", "", 409},
		// Admins may change everything; limits are checked.
		{"PATCH", admin, img(stock), `{"type":"system","tags":["x","y"],"labels":{"extra":"1"}}`, 200},
		{"PUT", admin, img(stock) + "/resource-limits", `{"cpu":{"min":"2","max":"1"}}`, 400},
		{"PUT", admin, img(stock) + "/resource-limits", `{"cpu":{"min":"2","max":"4"},"mem":{"min":"2g"}}`, 200},
		{"PATCH", admin, img(stock), `{"protected":true}`, 200},
		{"POST", admin, img(stock) + "/forget", "", 403}, // protected
		{"PATCH", admin, img(stock), `{"protected":false}`, 200},
		{"DELETE", admin, img(stock) + "/resource-limits", "", 200},
	}
	for i, st := range steps {
		r := s.send(t, st.method, st.token, st.path, st.body)
		if r.status != st.status {
			t.Errorf("step %d %s %s as %s: %d %s, want %d", i, st.method, st.path, st.token, r.status, r.body, st.status)
		}
	}
	m := obj(t, s.get(t, bob, img(stock)))
	if m["type"] != "system" || m["labels"].(map[string]any)["extra"] != "1" || len(m["tags"].([]any)) != 2 ||
		len(m["resource_limits"].(map[string]any)["custom"].(map[string]any)) != 0 {
		t.Errorf("stock image after changes: %s", mustJSON(m))
	}
	if m := obj(t, s.get(t, alice, img(cust))); m["customized_owner"] != "alice" || m["status"] != "alive" {
		t.Errorf("customized image: %s", mustJSON(m))
	}

	// Listing: bob does not see alice's image; alice does; customized
	// filters; the forgotten listing is the admin's.
	ids := func(token, q string) []string {
		var out []string
		for _, im := range obj(t, s.get(t, token, "/api/v1/container-images"+q))["images"].([]any) {
			out = append(out, im.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := ids(bob, ""); len(got) != 1 || got[0] != stock {
		t.Errorf("bob lists %v", got)
	}
	if got := ids(alice, "?customized=true"); len(got) != 1 || got[0] != cust {
		t.Errorf("alice lists customized %v", got)
	}
	if got := ids(admin, "?customized=false&architecture=amd64&sort=reference:desc"); len(got) != 1 || got[0] != stock {
		t.Errorf("admin lists stock %v", got)
	}
	if got := ids(admin, "?limit=1"); len(got) != 1 {
		t.Errorf("limit 1 gives %v", got)
	}
	r := s.get(t, admin, "/api/v1/container-images?limit=1")
	next, _ := obj(t, r)["next"].(string)
	if next == "" || len(ids(admin, strings.TrimPrefix(next, "/api/v1/container-images"))) != 1 {
		t.Errorf("next %q", next)
	}

	// Resolve and forget by reference.
	ref := s.reg.Host + "/bai/python:3.9"
	r = s.get(t, bob, "/api/v1/container-images/resolve?reference="+url.QueryEscape(ref)+"&architecture=amd64")
	want(t, r, 200)
	if obj(t, r)["id"] != stock {
		t.Errorf("resolved %s", r.body)
	}
	want(t, s.send(t, "POST", admin, "/api/v1/container-images/forget", `{"reference":"`+ref+`","architecture":"x86_64"}`), 200)
	wantErr(t, s.get(t, bob, "/api/v1/container-images/resolve?reference="+url.QueryEscape(ref)+"&architecture=amd64"), 404, imaged.ENOTFOUND)
	wantErr(t, s.get(t, bob, img(stock)), 404, imaged.ENOTFOUND)
	if got := ids(admin, "?status=forgotten"); len(got) != 2 && len(got) != 1 {
		t.Errorf("forgotten listing %v", got)
	}
	wantErr(t, s.send(t, "POST", admin, "/api/v1/container-images/forget", `{"reference":"`+ref+`","architecture":"x86_64"}`), 404, imaged.ENOTFOUND)

	// The audit log recorded the changes, with the request id.
	r = s.do(t, call{method: "POST", path: img(stock) + "/restore", token: admin, hdr: []string{"X-Request-Id", "audit-me"}})
	want(t, r, 200)
	entries := obj(t, s.get(t, admin, "/api/v1/audit?target="+stock+"&limit=2"))
	es := entries["entries"].([]any)
	if len(es) != 2 || es[0].(map[string]any)["request_id"] != "req-audit-me" || entries["next"] == nil {
		t.Errorf("audit %s", mustJSON(entries))
	}
	if es := obj(t, s.get(t, admin, "/api/v1/audit?user_id=alice&result=failure"))["entries"].([]any); len(es) == 0 {
		t.Error("alice's refused changes are not audited as failures")
	}
}

// TestPurgeUntag: the manifest leaves the registry and the row the
// catalog.
func TestPurgeUntag(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	im := s.scan(t, "bai/python", "3.9", bai(nil))
	id, digest := im["id"].(string), im["digest"].(string)
	r := s.send(t, "DELETE", admin, "/api/v1/container-images/"+id+"?untag=true", "")
	want(t, r, 200)
	if obj(t, r)["id"] != id {
		t.Errorf("purge answered %s", r.body)
	}
	if st := manifestStatus(t, s.reg, "bai/python", digest); st != http.StatusNotFound {
		t.Errorf("manifest still in the registry: %d", st)
	}
	wantErr(t, s.get(t, admin, "/api/v1/container-images/"+id), 404, imaged.ENOTFOUND)
	wantErr(t, s.send(t, "DELETE", admin, "/api/v1/container-images/"+id, ""), 404, imaged.ENOTFOUND)
}

// TestPurgeUntagDeletesDisabled: the registry refuses; the row stays and
// the error says why.
func TestPurgeUntagDeletesDisabled(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{DisableDelete: true})
	im := s.scan(t, "bai/python", "3.9", bai(nil))
	id, digest := im["id"].(string), im["digest"].(string)
	r := s.send(t, "DELETE", admin, "/api/v1/container-images/"+id+"?untag=true", "")
	wantErr(t, r, http.StatusUnprocessableEntity, imaged.EREFUSED)
	if msg := string(r.body); !strings.Contains(strings.ToLower(msg), "delet") {
		t.Errorf("error does not say deletion is refused: %s", msg)
	}
	want(t, s.get(t, admin, "/api/v1/container-images/"+id), 200)
	if st := manifestStatus(t, s.reg, "bai/python", digest); st != http.StatusOK {
		t.Errorf("manifest status %d", st)
	}
	wantErr(t, s.send(t, "POST", admin, "/api/v1/container-images/"+id+"/untag", ""), 422, imaged.EREFUSED)
	// Without untag the purge works.
	want(t, s.send(t, "DELETE", admin, "/api/v1/container-images/"+id+"?untag=false", ""), 200)
}

func manifestStatus(t *testing.T, reg *registrytest.Server, repo, digest string) int {
	t.Helper()
	h := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"}}
	res, _, err := reg.Get(context.Background(), "/v2/"+repo+"/manifests/"+digest, h)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}

// TestRescanOverSSE: a rescan's task, followed over server-sent events to
// its end.
func TestRescanOverSSE(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	s.push.PushImage(t, "bai/python", "3.9", "amd64", bai(nil))
	s.push.PushImage(t, "bai/python", "3.10", "amd64", bai(nil))
	s.push.PushIndex(t, "bai/torch", "2", []string{"amd64", "arm64"}, bai(nil))

	r := s.send(t, "POST", admin, "/api/v1/registries/local/rescan", `{"project":"bai"}`)
	want(t, r, http.StatusAccepted)
	task := obj(t, r)
	loc := r.header.Get("Location")
	if loc != "/api/v1/tasks/"+task["id"].(string) || task["type"] != imaged.TaskTypeRegistryRescan {
		t.Fatalf("rescan answered %s, Location %q", r.body, loc)
	}
	wantErr(t, s.get(t, bob, loc), 404, imaged.ENOTFOUND)
	wantErr(t, s.get(t, bob, loc+"/events"), 404, imaged.ENOTFOUND)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+loc+"/events", nil)
	req.Header.Set("X-Auth-Token", admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var names []string
	var last map[string]any
	readEvents(t, res, func(name, data string) {
		if name == "comment" {
			return
		}
		names = append(names, name)
		s.spec.checkSchema(t, "Task", []byte(data))
		_ = json.Unmarshal([]byte(data), &last)
	})
	if len(names) < 2 || names[len(names)-1] != "done" || names[len(names)-2] != "progress" {
		t.Fatalf("events %v", names)
	}
	if last["status"] != "success" {
		t.Fatalf("final state %v", last)
	}
	p := last["progress"].(map[string]any)
	if p["done"] != p["total"] || p["total"].(float64) < 3 {
		t.Errorf("progress %v", p)
	}
	// The task reads the same afterwards, and its images are there.
	if m := obj(t, s.get(t, admin, loc)); m["status"] != "success" {
		t.Errorf("task %v", m)
	}
	if n := len(obj(t, s.get(t, admin, "/api/v1/container-images?registry=local"))["images"].([]any)); n != 4 {
		t.Errorf("%d images after the rescan, want 4", n)
	}
	// A stream of an ended task: its state and done at once.
	req, _ = http.NewRequestWithContext(ctx, "GET", s.srv.URL+loc+"/events", nil)
	req.Header.Set("X-Auth-Token", admin)
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	names = nil
	readEvents(t, res2, func(name, _ string) { names = append(names, name) })
	if strings.Join(names, ",") != "progress,done" {
		t.Errorf("ended task events %v", names)
	}
}

// TestBulkMixed: good and bad ids together; each reported.
func TestBulkMixed(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	a := s.scan(t, "bai/a", "1", bai(nil))["id"].(string)
	b := s.scan(t, "bai/b", "1", bai(nil))["id"].(string)
	cust := s.scan(t, "custom/alice", "1", bai(map[string]string{imaged.LabelCustomizedOwner: "user:alice"}))["id"].(string)
	missing := "00000000-0000-0000-0000-000000000000"

	r := s.send(t, "POST", alice, "/api/v1/container-images/bulk/forget", `{"ids":["`+cust+`","`+a+`","`+missing+`"]}`)
	want(t, r, 200)
	var res imaged.BulkResult
	_ = json.Unmarshal(r.body, &res)
	codes := map[string]string{}
	for _, f := range res.Failed {
		codes[f.ID] = f.Code
		if f.Error == "" {
			t.Errorf("failure without message: %+v", f)
		}
	}
	if len(res.Successful) != 1 || res.Successful[0] != cust || codes[a] != imaged.EFORBIDDEN || codes[missing] != imaged.ENOTFOUND {
		t.Errorf("alice's bulk forget: %s", r.body)
	}
	r = s.send(t, "POST", admin, "/api/v1/container-images/bulk/purge", `{"ids":["`+a+`","`+b+`","`+missing+`"]}`)
	want(t, r, 200)
	res = imaged.BulkResult{}
	_ = json.Unmarshal(r.body, &res)
	if len(res.Successful) != 2 || len(res.Failed) != 1 || res.Failed[0].ID != missing {
		t.Errorf("admin's bulk purge: %s", r.body)
	}
	r = s.send(t, "POST", admin, "/api/v1/container-images/bulk/restore", `{"ids":["`+cust+`","`+a+`"]}`)
	want(t, r, 200)
	res = imaged.BulkResult{}
	_ = json.Unmarshal(r.body, &res)
	if len(res.Successful) != 1 || res.Successful[0] != cust || len(res.Failed) != 1 || res.Failed[0].Code != imaged.ENOTFOUND {
		t.Errorf("admin's bulk restore: %s", r.body)
	}
}

// TestAliasesWithSlashes: alias names with "/" and ":" in the path, raw or
// percent-encoded.
func TestAliasesWithSlashes(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	a := s.scan(t, "bai/python", "3.9", bai(nil))["id"].(string)
	b := s.scan(t, "bai/python", "3.10", bai(nil))["id"].(string)

	r := s.send(t, "PUT", admin, "/api/v1/aliases/lablup/python:3.9", `{"image_id":"`+a+`"}`)
	want(t, r, http.StatusCreated)
	if m := obj(t, r); m["alias"] != "lablup/python:3.9" || m["image_id"] != a {
		t.Errorf("created %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/aliases/lablup/python:3.9" {
		t.Errorf("Location %q", loc)
	}
	// Moving it (percent-encoded path, by reference): 200.
	r = s.send(t, "PUT", admin, "/api/v1/aliases/lablup%2Fpython%3A3.9",
		`{"reference":"`+s.reg.Host+`/bai/python:3.10","architecture":"amd64"}`)
	want(t, r, http.StatusOK)
	if obj(t, r)["image_id"] != b {
		t.Errorf("moved %s", r.body)
	}
	m := obj(t, s.get(t, admin, "/api/v1/container-images/"+b))
	if al := m["aliases"].([]any); len(al) != 1 || al[0] != "lablup/python:3.9" {
		t.Errorf("image aliases %v", m["aliases"])
	}
	r = s.get(t, bob, "/api/v1/container-images/resolve?reference=lablup/python:3.9&architecture=amd64")
	want(t, r, 200)
	if obj(t, r)["id"] != b {
		t.Errorf("alias resolved to %s", r.body)
	}
	want(t, s.send(t, "PUT", admin, "/api/v1/aliases/py", `{"image_id":"`+a+`"}`), http.StatusCreated)
	list := obj(t, s.get(t, admin, "/api/v1/aliases?limit=1"))
	if as := list["aliases"].([]any); len(as) != 1 || as[0].(map[string]any)["alias"] != "lablup/python:3.9" || list["next"] == nil {
		t.Errorf("alias page %s", mustJSON(list))
	}
	list = obj(t, s.get(t, bob, "/api/v1/aliases?image_id="+a))
	if as := list["aliases"].([]any); len(as) != 1 || as[0].(map[string]any)["alias"] != "py" {
		t.Errorf("aliases of a %s", mustJSON(list))
	}
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"bad name", "PUT", "/api/v1/aliases/Upper%20Case", `{"image_id":"` + a + `"}`, 400},
		{"shadows a reference", "PUT", "/api/v1/aliases/" + s.reg.Host + "/bai/python:3.9", `{"image_id":"` + b + `"}`, 409},
		{"unknown image", "PUT", "/api/v1/aliases/x", `{"image_id":"00000000-0000-0000-0000-000000000000"}`, 404},
	}
	for _, tt := range tests {
		if r := s.send(t, tt.method, admin, tt.path, tt.body); r.status != tt.status {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	r = s.send(t, "DELETE", admin, "/api/v1/aliases/lablup/python:3.9", "")
	want(t, r, 200)
	wantErr(t, s.send(t, "DELETE", admin, "/api/v1/aliases/lablup/python:3.9", ""), 404, imaged.ENOTFOUND)
	wantErr(t, s.get(t, bob, "/api/v1/container-images/resolve?reference=lablup/python:3.9&architecture=amd64"), 404, imaged.ENOTFOUND)
}

// TestImageIfMatch: a stale ETag loses with 412.
func TestImageIfMatch(t *testing.T) {
	t.Parallel()
	s := newStack(t, registrytest.Options{})
	id := s.scan(t, "bai/python", "3.9", bai(nil))["id"].(string)
	path := "/api/v1/container-images/" + id
	etag := s.get(t, admin, path).header.Get("ETag")
	if !strings.HasPrefix(etag, `"`+id+"-") {
		t.Fatalf("ETag %q", etag)
	}
	patch := func(tag string) resp {
		return s.do(t, call{method: "PATCH", path: path, token: admin, body: `{"tags":["t"]}`, hdr: []string{"If-Match", tag}})
	}
	r := patch(etag)
	want(t, r, 200)
	if r.header.Get("ETag") == etag {
		t.Error("ETag unchanged by an update")
	}
	wantErr(t, patch(etag), http.StatusPreconditionFailed, imaged.EPRECONDITION)
	want(t, patch(r.header.Get("ETag")), 200)
}
