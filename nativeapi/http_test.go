package nativeapi_test

// Tests of the HTTP layer alone: routing, authentication, request ids,
// decoding, error shapes, paging links, entity tags and the event-stream
// framing. They run against fakeService, a small in-test
// imaged.ContainerService whose methods record what reached them; the
// behaviour of the real service is tested in service_test.go.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/nativeapi"
)

// fakeService implements what the HTTP-layer tests call; any other method
// panics through the nil embedded interface, which the API turns into a
// 500 the test sees.
type fakeService struct {
	imaged.ContainerService

	mu       sync.Mutex
	calls    []string
	lastCtx  context.Context
	lastQ    imaged.ContainerImageQuery
	lastAQ   imaged.AuditQuery
	patch    map[string]any
	images   []*imaged.ContainerImage
	watch    chan *imaged.Task
	watchEnd chan struct{} // closed when the watch's context ends
	task     *imaged.Task
	pageCap  int // > 0: ListContainerImages returns at most this many, as the real service caps pages
}

func (f *fakeService) record(ctx context.Context, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.lastCtx = ctx
}

func (f *fakeService) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// errFor returns the error an image id asks for: "err-<code>" gives that
// imaged code, "err-plain" an error without one.
func errFor(id string) error {
	code, ok := strings.CutPrefix(id, "err-")
	if !ok {
		return nil
	}
	if code == "plain" {
		return errors.New("database exploded at /var/lib/secret.db")
	}
	return fmt.Errorf("wrapped: %w", imaged.Errorf(code, "Message for %s.", code))
}

func fakeImage(id string, version int64) *imaged.ContainerImage {
	return &imaged.ContainerImage{
		ID: id, Reference: "127.0.0.1:5000/bai/python:3.9", Registry: "local", RegistryHost: "127.0.0.1:5000",
		Project: "bai", Repository: "bai/python", Tag: "3.9", Architecture: "x86_64", Digest: "sha256:aa",
		ConfigDigest: "sha256:cc", Size: 42, Labels: map[string]string{imaged.LabelResourceMin + "cpu": "2"},
		Type: imaged.ContainerTypeCompute, Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic,
		ResourceLimits: map[string]imaged.ResourceLimit{"mem": {Min: "2g", Max: "8g"}},
		CreatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Version: version,
	}
}

func (f *fakeService) GetContainerImage(ctx context.Context, id string) (*imaged.ContainerImage, error) {
	f.record(ctx, "GetContainerImage")
	if err := errFor(id); err != nil {
		return nil, err
	}
	return fakeImage(id, 7), nil
}

func (f *fakeService) ModifyContainerImage(ctx context.Context, id string, patch map[string]any) (*imaged.ContainerImage, error) {
	f.record(ctx, "ModifyContainerImage")
	f.mu.Lock()
	f.patch = patch
	f.mu.Unlock()
	if vs, ok := imaged.IfMatchFromContext(ctx); ok {
		found := false
		for _, v := range vs {
			found = found || v == 7
		}
		if !found {
			return nil, imaged.Errorf(imaged.EPRECONDITION, "changed")
		}
	}
	return fakeImage(id, 8), nil
}

func (f *fakeService) ListContainerImages(ctx context.Context, q imaged.ContainerImageQuery, marker string) ([]*imaged.ContainerImage, error) {
	f.record(ctx, "ListContainerImages")
	f.mu.Lock()
	f.lastQ = q
	f.mu.Unlock()
	start := 0
	if marker != "" {
		start = -1
		for i, ci := range f.images {
			if ci.ID == marker {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, imaged.Errorf(imaged.EINVALID, "marker not found")
		}
	}
	n := q.Limit
	if f.pageCap > 0 && n > f.pageCap {
		n = f.pageCap
	}
	end := min(start+n, len(f.images))
	return f.images[start:end], nil
}

func (f *fakeService) CreateRegistry(ctx context.Context, r *imaged.Registry) (*imaged.Registry, error) {
	f.record(ctx, "CreateRegistry")
	out := *r
	out.CreatedAt = time.Now().UTC()
	out.UpdatedAt = out.CreatedAt
	return &out, nil
}

func (f *fakeService) GetTask(ctx context.Context, id string) (*imaged.Task, error) {
	f.record(ctx, "GetTask")
	if id != f.task.ID {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "no task %s", id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := *f.task
	return &t, nil
}

func (f *fakeService) WatchTask(ctx context.Context, id string) (<-chan *imaged.Task, error) {
	f.record(ctx, "WatchTask")
	out := make(chan *imaged.Task)
	go func() {
		defer close(out)
		defer close(f.watchEnd)
		for {
			select {
			case <-ctx.Done():
				return
			case t, ok := <-f.watch:
				if !ok {
					return
				}
				f.mu.Lock()
				f.task = t
				f.mu.Unlock()
				select {
				case out <- t:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (f *fakeService) ListAudit(ctx context.Context, q imaged.AuditQuery) ([]*imaged.AuditEntry, error) {
	f.record(ctx, "ListAudit")
	f.mu.Lock()
	f.lastAQ = q
	f.mu.Unlock()
	return nil, nil
}

func newFake(t *testing.T) (*env, *fakeService) {
	t.Helper()
	f := &fakeService{}
	return serve(t, nativeapi.Config{Containers: f, AuthURI: "http://127.0.0.1:5000/v3"}), f
}

func TestAuthAndRequestIDs(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	for _, tok := range []string{"", "wrong"} {
		r := e.do(t, call{method: "GET", path: "/api/v1/container-images/x", token: tok})
		wantErr(t, r, http.StatusUnauthorized, imaged.EUNAUTHORIZED)
		if got := r.header.Get("WWW-Authenticate"); got != `Keystone uri="http://127.0.0.1:5000/v3"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
	}
	if c := f.called(); len(c) != 0 {
		t.Errorf("service called without identity: %v", c)
	}

	// The OpenAPI document is public and served as embedded.
	r := e.get(t, "", "/api/v1/openapi.json")
	want(t, r, http.StatusOK)
	if string(r.body) != string(nativeapi.OpenAPI) {
		t.Error("openapi.json differs from the embedded document")
	}

	tests := []struct {
		name, hdr, value, want string
	}{
		{"x-request-id kept", "X-Request-Id", "abc-1", "req-abc-1"},
		{"openstack id kept", "X-Openstack-Request-Id", "req-zz.9", "req-zz.9"},
		{"unsafe replaced", "X-Request-Id", "evil; rm -rf", ""},
		{"too long replaced", "X-Request-Id", strings.Repeat("a", 65), ""},
	}
	for _, tt := range tests {
		r := e.do(t, call{method: "GET", path: "/api/v1/container-images/img1", token: admin, hdr: []string{tt.hdr, tt.value}})
		want(t, r, http.StatusOK)
		got := r.header.Get("X-Request-Id")
		if tt.want != "" && got != tt.want || tt.want == "" && !strings.HasPrefix(got, "req-") || len(got) > 64 {
			t.Errorf("%s: request id %q", tt.name, got)
		}
		f.mu.Lock()
		ctxID, ident := imaged.RequestIDFromContext(f.lastCtx), imaged.IdentityFromContext(f.lastCtx)
		f.mu.Unlock()
		if ctxID != got || ident == nil || ident.UserID != "admin" {
			t.Errorf("%s: context has request id %q, identity %+v", tt.name, ctxID, ident)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	e, _ := newFake(t)
	tests := []struct {
		code   string
		status int
	}{
		{imaged.EINVALID, 400}, {imaged.EUNAUTHORIZED, 502}, // token accepted: a registry refused {imaged.EFORBIDDEN, 403}, {imaged.ENOTFOUND, 404},
		{imaged.ECONFLICT, 409}, {imaged.EPRECONDITION, 412}, {imaged.ETOOLARGE, 413},
		{imaged.EREFUSED, 422}, {imaged.EUNSUPPORTED, 415}, {imaged.ENOTIMPLEMENTED, 501}, {imaged.EUNAVAILABLE, 503},
	}
	for _, tt := range tests {
		r := e.do(t, call{method: "GET", path: "/api/v1/container-images/err-" + tt.code, token: admin, anyError: true})
		if r.status != tt.status || errCode(t, r) != tt.code {
			t.Errorf("%s: %d %s", tt.code, r.status, r.body)
		}
		if !strings.Contains(string(r.body), "Message for "+tt.code) {
			t.Errorf("%s: message lost: %s", tt.code, r.body)
		}
	}
	// An error without a code: 500, generic message, details in the log.
	r := e.get(t, admin, "/api/v1/container-images/err-plain")
	wantErr(t, r, 500, imaged.EINTERNAL)
	if strings.Contains(string(r.body), "secret.db") {
		t.Errorf("internal details leaked: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "secret.db") {
		t.Error("internal error not logged")
	}
	// A panic in the service (an unimplemented fake method) is a 500 too.
	wantErr(t, e.get(t, admin, "/api/v1/registries"), 500, imaged.EINTERNAL)
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	wantErr(t, e.get(t, admin, "/api/v1/nope"), 404, imaged.ENOTFOUND)
	wantErr(t, e.get(t, admin, "/elsewhere"), 404, imaged.ENOTFOUND)
	r := e.get(t, admin, "/api/v1/container-images/scan")
	wantErr(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	r = e.send(t, "PUT", admin, "/api/v1/container-images/x", `{}`)
	wantErr(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	// The bulk paths are not taken for an image "bulk".
	wantErr(t, e.get(t, admin, "/api/v1/container-images/bulk/forget"), 405, "method_not_allowed")
	if c := f.called(); len(c) != 0 {
		t.Errorf("service called: %v", c)
	}
}

// TestBadInput: malformed bodies and queries are 400s (413, 415) that never
// reach the service.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	big := `{"reference": "` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name         string
		method, path string
		body, ctype  string
		status       int
	}{
		{"no body", "POST", "/api/v1/container-images/scan", "", "", 400},
		{"malformed", "POST", "/api/v1/container-images/scan", `{"reference":`, "", 400},
		{"syntax", "POST", "/api/v1/container-images/scan", `{"reference" "x"}`, "", 400},
		{"unknown field", "POST", "/api/v1/container-images/scan", `{"reference":"a","arch":"x"}`, "", 400},
		{"wrong type", "POST", "/api/v1/container-images/scan", `{"reference":1}`, "", 400},
		{"scalar", "POST", "/api/v1/container-images/scan", `"x"`, "", 400},
		{"null", "POST", "/api/v1/container-images/scan", `null`, "", 400},
		{"array", "POST", "/api/v1/container-images/bulk/forget", `[]`, "", 400},
		{"trailing", "POST", "/api/v1/container-images/scan", `{"reference":"a"} {}`, "", 400},
		{"missing reference", "POST", "/api/v1/container-images/forget", `{"architecture":"x86_64"}`, "", 400},
		{"too large", "POST", "/api/v1/container-images/scan", big, "", 413},
		{"content type", "POST", "/api/v1/container-images/scan", `{"reference":"a"}`, "text/plain", 415},
		{"merge patch elsewhere", "POST", "/api/v1/container-images/scan", `{"reference":"a"}`, "application/merge-patch+json", 415},
		{"empty bulk", "POST", "/api/v1/container-images/bulk/purge", `{"ids":[]}`, "", 400},
		{"bulk ids not strings", "POST", "/api/v1/container-images/bulk/purge", `{"ids":[1]}`, "", 400},
		{"registry no name", "POST", "/api/v1/registries", `{"url":"http://x"}`, "", 400},
		{"registry bad type", "POST", "/api/v1/registries", `{"name":"a","url":"http://x","type":"quay"}`, "", 400},
		{"registry password number", "POST", "/api/v1/registries", `{"name":"a","url":"http://x","password":5}`, "", 400},
		{"registry patch name", "PATCH", "/api/v1/registries/a", `{"name":"b"}`, "", 400},
		{"registry patch type", "PATCH", "/api/v1/registries/a", `{"verify_tls":"yes"}`, "", 400},
		{"image patch unknown", "PATCH", "/api/v1/container-images/a", `{"status":"forgotten"}`, "", 400},
		{"image patch labels", "PATCH", "/api/v1/container-images/a", `{"labels":{"a":1}}`, "", 400},
		{"image patch limits", "PATCH", "/api/v1/container-images/a", `{"resource_limits":{"cpu":{"low":"1"}}}`, "", 400},
		{"image patch type", "PATCH", "/api/v1/container-images/a", `{"type":"gpu"}`, "", 400},
		{"image patch visibility", "PATCH", "/api/v1/container-images/a", `{"visibility":"everyone"}`, "", 400},
		{"limits unknown", "PUT", "/api/v1/container-images/a/resource-limits", `{"cpu":{"min":"1","avg":"2"}}`, "", 400},
		{"limits empty slot", "PUT", "/api/v1/container-images/a/resource-limits", `{"cpu":{}}`, "", 400},
		{"limits number", "PUT", "/api/v1/container-images/a/resource-limits", `{"cpu":{"min":1}}`, "", 400},
		{"alias both", "PUT", "/api/v1/aliases/py", `{"image_id":"a","reference":"b"}`, "", 400},
		{"alias none", "PUT", "/api/v1/aliases/py", `{}`, "", 400},
		{"rescan unknown", "POST", "/api/v1/registries/a/rescan", `{"projects":["x"]}`, "", 400},
		{"limit zero", "GET", "/api/v1/container-images?limit=0", "", "", 400},
		{"limit text", "GET", "/api/v1/container-images?limit=ten", "", "", 400},
		{"limit empty", "GET", "/api/v1/container-images?limit=", "", "", 400},
		{"unknown param", "GET", "/api/v1/container-images?regsitry=x", "", "", 400},
		{"repeated param", "GET", "/api/v1/container-images?tag=a&tag=b", "", "", 400},
		{"bad status", "GET", "/api/v1/container-images?status=deleted", "", "", 400},
		{"bad customized", "GET", "/api/v1/container-images?customized=yes", "", "", 400},
		{"bad sort key", "GET", "/api/v1/container-images?sort=name", "", "", 400},
		{"bad sort dir", "GET", "/api/v1/container-images?sort=size:up", "", "", 400},
		{"bad query escape", "GET", "/api/v1/container-images?tag=%zz", "", "", 400},
		{"resolve no reference", "GET", "/api/v1/container-images/resolve?architecture=x86_64", "", "", 400},
		{"purge untag", "DELETE", "/api/v1/container-images/a?untag=maybe", "", "", 400},
		{"audit since", "GET", "/api/v1/audit?since=yesterday", "", "", 400},
		{"audit before", "GET", "/api/v1/audit?before=-3", "", "", 400},
		{"audit result", "GET", "/api/v1/audit?result=ok", "", "", 400},
		{"aliases limit", "GET", "/api/v1/aliases?limit=-1", "", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := []string{}
			if tt.ctype != "" {
				hdr = []string{"Content-Type", tt.ctype}
			}
			r := e.do(t, call{method: tt.method, path: tt.path, token: admin, body: tt.body, hdr: hdr})
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
		})
	}
	if c := f.called(); len(c) != 0 {
		t.Errorf("bad input reached the service: %v", c)
	}
}

func TestListPagingAndFilters(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	for i := range 5 {
		f.images = append(f.images, fakeImage("img"+strconv.Itoa(i), 1))
	}
	r := e.get(t, bob, "/api/v1/container-images?limit=2&architecture=amd64&customized=true&status=forgotten&sort=size:desc&registry=local")
	want(t, r, 200)
	f.mu.Lock()
	q := f.lastQ
	f.mu.Unlock()
	if q.Architecture != "x86_64" || q.Customized == nil || !*q.Customized || len(q.Statuses) != 1 ||
		q.Statuses[0] != imaged.ContainerForgotten || q.SortKey != "size" || q.SortDir != imaged.Desc || q.Registry != "local" {
		t.Errorf("query reached the service as %+v", q)
	}
	var ids []string
	path := "/api/v1/container-images?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		m := obj(t, e.get(t, bob, path))
		for _, im := range m["images"].([]any) {
			ids = append(ids, im.(map[string]any)["id"].(string))
		}
		path, _ = m["next"].(string)
	}
	if strings.Join(ids, ",") != "img0,img1,img2,img3,img4" {
		t.Errorf("pages gave %v", ids)
	}
	// A service that caps pages at MaxLimit: a full page at the cap still
	// links to the next.
	capped := &fakeService{pageCap: 2, images: f.images}
	ce := serve(t, nativeapi.Config{Containers: capped, MaxLimit: 2})
	ids = nil
	path = "/api/v1/container-images?limit=5"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		m := obj(t, ce.get(t, bob, path))
		for _, im := range m["images"].([]any) {
			ids = append(ids, im.(map[string]any)["id"].(string))
		}
		path, _ = m["next"].(string)
	}
	if strings.Join(ids, ",") != "img0,img1,img2,img3,img4" {
		t.Errorf("capped pages gave %v", ids)
	}
	// Clamped to the maximum.
	e.get(t, bob, "/api/v1/container-images?limit=100000")
	f.mu.Lock()
	if f.lastQ.Limit != 1001 {
		t.Errorf("limit reached the service as %d", f.lastQ.Limit)
	}
	f.mu.Unlock()
	// Rendering: accelerators nil → ["*"], effective limits computed.
	m := obj(t, e.get(t, bob, "/api/v1/container-images/img9"))
	if acc := m["accelerators"].([]any); len(acc) != 1 || acc[0] != "*" {
		t.Errorf("accelerators %v", acc)
	}
	eff := m["resource_limits"].(map[string]any)["effective"].(map[string]any)
	if eff["cpu"].(map[string]any)["min"] != "2" || eff["mem"].(map[string]any)["max"] != "8g" {
		t.Errorf("effective limits %v", eff)
	}
}

func TestETags(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	r := e.get(t, admin, "/api/v1/container-images/img1")
	etag := r.header.Get("ETag")
	if etag != `"img1-7"` {
		t.Fatalf("ETag %q", etag)
	}
	r = e.do(t, call{method: "GET", path: "/api/v1/container-images/img1", token: admin, hdr: []string{"If-None-Match", etag}})
	want(t, r, http.StatusNotModified)
	tests := []struct {
		ifMatch string
		status  int
	}{
		{etag, 200}, {`"img1-6", ` + etag, 200}, {"*", 200}, {"", 200},
		{`"img1-6"`, 412}, {`"other-7"`, 412}, {`W/` + etag, 412}, {`garbage`, 412},
	}
	for _, tt := range tests {
		r := e.do(t, call{method: "PATCH", path: "/api/v1/container-images/img1", token: admin,
			body: `{"protected":true}`, hdr: []string{"If-Match", tt.ifMatch, "Content-Type", "application/merge-patch+json"}})
		if r.status != tt.status {
			t.Errorf("If-Match %q: %d %s", tt.ifMatch, r.status, r.body)
		}
		if r.status == 200 && r.header.Get("ETag") != `"img1-8"` {
			t.Errorf("ETag after update %q", r.header.Get("ETag"))
		}
	}
	f.mu.Lock()
	if f.patch["protected"] != true {
		t.Errorf("patch reached the service as %v", f.patch)
	}
	f.mu.Unlock()
}

func TestRegistryPasswordNeverRendered(t *testing.T) {
	t.Parallel()
	e, _ := newFake(t)
	r := e.send(t, "POST", admin, "/api/v1/registries", `{"name":"hub","url":"https://r.example","password":"s3cr3t-pw","username":"u"}`)
	want(t, r, 201)
	m := obj(t, r)
	if strings.Contains(string(r.body), "s3cr3t-pw") || m["has_password"] != true || m["verify_tls"] != true || m["type"] != "oci" {
		t.Errorf("registry rendered as %s", r.body)
	}
	if r.header.Get("Location") != "/api/v1/registries/hub" {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	logs := e.logs.String()
	for _, secret := range []string{"s3cr3t-pw", admin} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds a secret %q", secret)
		}
	}
	for _, field := range []string{`"request_id"`, `"method"`, `"path"`, `"status"`, `"duration"`} {
		if !strings.Contains(logs, field) {
			t.Errorf("access log lacks %s", field)
		}
	}
}

// readEvents reads server-sent events until the stream ends.
func readEvents(t *testing.T, res *http.Response, onFrame func(name, data string)) {
	t.Helper()
	sc := bufio.NewScanner(res.Body)
	var name, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" || data != "" {
				onFrame(name, data)
			}
			name, data = "", ""
		case strings.HasPrefix(line, ":"):
			onFrame("comment", strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
}

func TestTaskEventsFraming(t *testing.T) {
	t.Parallel()
	f := &fakeService{watch: make(chan *imaged.Task), watchEnd: make(chan struct{}),
		task: &imaged.Task{ID: "t1", Type: imaged.TaskTypeRegistryRescan, Status: imaged.TaskPending}}
	e := serve(t, nativeapi.Config{Containers: f, KeepAlive: 20 * time.Millisecond})
	wantErr(t, e.get(t, admin, "/api/v1/tasks/t2/events"), 404, imaged.ENOTFOUND)

	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/tasks/t1/events", nil)
	req.Header.Set("X-Auth-Token", admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	go func() {
		// Let keep-alives flow, then progress, a repeat, and the end.
		time.Sleep(60 * time.Millisecond)
		mk := func(st imaged.TaskStatus, done int64) *imaged.Task {
			return &imaged.Task{ID: "t1", Type: imaged.TaskTypeRegistryRescan, Status: st,
				Progress: imaged.TaskProgress{Done: done, Total: 2}}
		}
		f.watch <- mk(imaged.TaskProcessing, 1)
		f.watch <- mk(imaged.TaskProcessing, 1)
		f.watch <- mk(imaged.TaskSuccess, 2)
	}()
	var frames []string
	comments := 0
	s := loadSpec(t)
	readEvents(t, res, func(name, data string) {
		if name == "comment" {
			comments++
			return
		}
		frames = append(frames, name+" "+data)
		// Every frame's data is a Task.
		s.checkSchema(t, "Task", []byte(data))
	})
	if comments < 1 {
		t.Error("no keep-alive comment")
	}
	if len(frames) != 4 || !strings.HasPrefix(frames[0], `progress {"id":"t1","type":"registry_rescan","status":"pending"`) ||
		!strings.Contains(frames[1], `"progress":{"done":1,"total":2}`) ||
		!strings.HasPrefix(frames[2], `progress {"id":"t1","type":"registry_rescan","status":"success"`) ||
		!strings.HasPrefix(frames[3], `done {"id":"t1","type":"registry_rescan","status":"success"`) {
		t.Errorf("frames:\n%s", strings.Join(frames, "\n"))
	}
}

// TestTaskEventsClientLeaves: a client that goes away ends the watch.
func TestTaskEventsClientLeaves(t *testing.T) {
	t.Parallel()
	f := &fakeService{watch: make(chan *imaged.Task), watchEnd: make(chan struct{}),
		task: &imaged.Task{ID: "t1", Type: imaged.TaskTypeRegistryRescan, Status: imaged.TaskProcessing}}
	e := serve(t, nativeapi.Config{Containers: f})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/tasks/t1/events", nil)
	req.Header.Set("X-Auth-Token", admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "event: progress\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	cancel()
	res.Body.Close()
	select {
	case <-f.watchEnd:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end when the client left")
	}
}

func TestAuditQuery(t *testing.T) {
	t.Parallel()
	e, f := newFake(t)
	r := e.get(t, admin, "/api/v1/audit?action=container_image.*&since=2026-01-01T00:00:00Z&before=10&limit=5&result=failure")
	want(t, r, 200)
	f.mu.Lock()
	q := f.lastAQ
	f.mu.Unlock()
	if q.Action != "container_image.*" || q.Since == nil || q.Since.Year() != 2026 || q.BeforeID != 10 || q.Limit != 6 || q.Result != "failure" {
		t.Errorf("audit query %+v", q)
	}
}
