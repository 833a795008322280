package glanceapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
)

// newImportEnv is newEnv with import enabled for the given methods (no
// fetcher: web-download stays off).
func newImportEnv(t *testing.T, methods []string) *env {
	t.Helper()
	logger, logs := testLogger()
	store := testStore(t)
	svc := catalog.New(store, policy.Legacy(), catalog.DefaultConfig()).WithBlobStore(testBlobs(t, "blobs")).WithLogger(logger).
		WithImports(store, catalog.ImportConfig{Methods: methods})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger, ImportMethods: svc.ImportMethods()}, logs)
}

func postImport(t *testing.T, e *env, id, token, body string) resp {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/v2/images/" + id + "/import", token: token, body: body,
		header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}})
}

func stage(t *testing.T, e *env, id, token, ctype, body string) resp {
	t.Helper()
	return e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/stage", token: token, body: body,
		header: map[string]string{"Content-Type": ctype, "Accept": "application/json"}})
}

// TestImportRequests: Glance's checks of the import body and the image, with
// its statuses and messages, then a glance-direct import that ends active.
func TestImportRequests(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, nil)
	id := newDataImage(t, e)
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{}`, 400, "Import request requires a 'method' field."},
		{`{"method": {}}`, 400, "Import request requires a 'name' field."},
		{`{"method": {"name": "web-download", "uri": "http://x"}}`, 400, "Unknown import method name 'web-download'."},
		{`{"method": {"name": "glance-direct"}, "all_stores": 1}`, 400, "'all_stores' must be boolean value only"},
		{`{"method": {"name": "glance-direct"}, "stores": ["foo"]}`, 409, "Image needs to be staged before 'glance-direct' method can be used"},
		{`{"method": {"name": "glance-direct"}}`, 409, "Image needs to be staged before 'glance-direct' method can be used"},
	} {
		r := postImport(t, e, id, alice, tc.body)
		if r.status != tc.status || !strings.HasPrefix(jsonErr(t, r), tc.msg) {
			t.Errorf("%s: %d %s", tc.body, r.status, r.body)
		}
	}
	if r := stage(t, e, id, alice, "application/json", "x"); r.status != 415 {
		t.Errorf("stage as json: %d", r.status)
	}
	if r := stage(t, e, id, bob, "application/octet-stream", "x"); r.status != 404 {
		t.Errorf("stage by another project: %d %s", r.status, r.body)
	}
	pub := createImage(t, e, admin, `{"name": "pub", "disk_format": "raw", "container_format": "bare", "visibility": "public"}`)["id"].(string)
	if r := stage(t, e, pub, alice, "application/octet-stream", "x"); r.status != 403 || !strings.HasPrefix(jsonErr(t, r), "You do not own this image") {
		t.Errorf("stage of another project's public image: %d %s", r.status, r.body)
	}
	if r := postImport(t, e, id, alice, `{"method": {"name": "glance-direct"}, "all_stores_must_succeed": false}`); r.status != 400 ||
		!strings.HasPrefix(jsonErr(t, r), "All_stores_must_succeed can only be set with enabled_backends None") {
		t.Errorf("all_stores_must_succeed false: %d %s", r.status, r.body)
	}
	if r := stage(t, e, id, alice, "application/octet-stream", "staged data"); r.status != 204 {
		t.Fatalf("stage: %d %s", r.status, r.body)
	}
	if r := stage(t, e, id, alice, "application/octet-stream", "again"); r.status != 409 ||
		!strings.HasPrefix(jsonErr(t, r), "Image status transition from uploading to uploading is not allowed") {
		t.Errorf("second stage: %d %s", r.status, r.body)
	}
	r := postImport(t, e, id, alice, `{"method": {"name": "glance-direct"}}`)
	if r.status != 202 || len(r.body) != 0 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)
		if img["status"] == "active" {
			if img["size"] != float64(len("staged data")) || img["os_glance_failed_import"] != "" {
				t.Fatalf("imported image: %v", img)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("image still %v", img["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The image turns active in the import's last image update; its task
	// records success just after: wait for that too.
	var task map[string]any
	for {
		tasks := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/tasks", token: alice})
		m := jsonOf(t, tasks.body)
		list, _ := m["tasks"].([]any)
		if tasks.status != 200 || len(list) != 1 {
			t.Fatalf("image tasks: %d %s", tasks.status, tasks.body)
		}
		task = list[0].(map[string]any)
		if task["status"] != "processing" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range []string{"id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "deleted_at",
		"deleted", "image_id", "request_id", "user_id", "input", "result", "message"} {
		if _, ok := task[k]; !ok {
			t.Errorf("task lacks %q: %v", k, task)
		}
	}
	if task["status"] != "success" || task["message"] != "Copied 0 MiB" || strings.HasSuffix(task["created_at"].(string), "Z") {
		t.Errorf("task: %v", task)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/tasks", token: bob}); r.status != 404 {
		t.Errorf("tasks of an invisible image: %d", r.status)
	}
}

// TestTasksAPI: the admin-only tasks API with Glance's parameter checks.
func TestTasksAPI(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, nil)
	for _, tc := range []struct {
		path, token string
		status      int
		msg         string
	}{
		{"/v2/tasks", alice, 403, "You are not authorized to complete tasks_api_access action."},
		{"/v2/tasks?sort_dir=x", alice, 403, "You are not authorized to complete tasks_api_access action."},
		{"/v2/tasks/11111111-2222-3333-4444-555555555555", alice, 403, "You are not authorized to complete tasks_api_access action."},
		{"/v2/tasks/11111111-2222-3333-4444-555555555555", admin, 404, "Could not find task 11111111-2222-3333-4444-555555555555"},
		{"/v2/tasks?type=api_image_import", admin, 400, "Invalid type value: api_image_import"},
		{"/v2/tasks?status=bad", admin, 400, "Invalid status value: bad"},
		{"/v2/tasks?sort_key=foo", admin, 400, "Sort key supplied was not valid."},
		{"/v2/tasks?marker=abc", admin, 400, "Invalid marker format"},
		{"/v2/tasks?marker=11111111-2222-3333-4444-555555555555", admin, 400, "Task with the given id 11111111-2222-3333-4444-555555555555 was not found"},
		{"/v2/tasks?limit=-1", admin, 400, "limit param must be positive"},
		{"/v2/tasks?limit=x", admin, 400, "limit param must be an integer"},
		{"/v2/tasks?sort_dir=x", admin, 400, "Invalid sort direction: x"},
	} {
		r := e.do(t, req{method: "GET", path: tc.path, token: tc.token, header: jsonAccept})
		if r.status != tc.status || !strings.HasPrefix(jsonErr(t, r), tc.msg) {
			t.Errorf("%s: %d %s", tc.path, r.status, r.body)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v2/tasks?status=success", token: admin})
	if r.status != 200 || string(r.body) != `{"tasks": [], "first": "/v2/tasks?status=success", "schema": "/v2/schemas/tasks"}` {
		t.Errorf("empty listing: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/info/import", token: alice})
	if string(r.body) != `{"import-methods": {"description": "Import methods available.", "type": "array", "value": ["glance-direct"]}}` {
		t.Errorf("info/import: %s", r.body)
	}
	for _, s := range []string{"task", "tasks"} {
		r := e.do(t, req{method: "GET", path: "/v2/schemas/" + s, token: alice})
		if r.status != 200 || jsonOf(t, r.body)["name"] != s {
			t.Errorf("schema %s: %d %s", s, r.status, r.body)
		}
	}
}

// TestStageDisabled: without glance-direct, staging is a 404 as in Glance.
func TestStageDisabled(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t, []string{})
	id := newDataImage(t, e)
	r := stage(t, e, id, alice, "application/octet-stream", "x")
	if r.status != 404 || !strings.HasPrefix(jsonErr(t, r), "'glance-direct' method is not available at this site.") {
		t.Errorf("stage: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "POST", path: "/v2/images", token: alice, body: `{"name": "x"}`,
		header: map[string]string{"Content-Type": "application/json"}})
	if h := r.header.Get("OpenStack-image-import-methods"); h != "" {
		t.Errorf("import methods header with none enabled: %q", h)
	}
}
