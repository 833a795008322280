package glanceapi_test

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/webfetch"
)

// newLegacyTaskEnv serves a catalog over real SQLite and blobs whose
// imports have web-download's fetcher, allowed to reach loopback (where
// the tests' HTTP servers listen) only when asked.
func newLegacyTaskEnv(t *testing.T, allowLoopback bool) *env {
	t.Helper()
	logger, logs := testLogger()
	store := testStore(t)
	fc := webfetch.Config{AllowedPorts: webfetch.AnyPort()}
	if allowLoopback {
		fc.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	f, err := webfetch.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	svc := catalog.New(store, policy.Legacy(), catalog.DefaultConfig()).WithBlobStore(testBlobs(t, "blobs")).WithLogger(logger).
		WithImports(store, catalog.ImportConfig{Fetcher: f})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger, ImportMethods: svc.ImportMethods()}, logs)
}

// legacyBody is a legacy import task's body.
func legacyBody(url, props string) string {
	return `{"type": "import", "input": {"import_from": "` + url + `", "import_from_format": "raw", "image_properties": ` + props + `}}`
}

func postTask(t *testing.T, e *env, token, body string) resp {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/v2/tasks", token: token, body: body,
		header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}})
}

// waitTaskEnd polls GET /v2/tasks/{id} until the task has ended.
func waitTaskEnd(t *testing.T, e *env, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		r := e.do(t, req{method: "GET", path: "/v2/tasks/" + id, token: admin, header: jsonAccept})
		if r.status != 200 {
			t.Fatalf("GET task: %d %s", r.status, r.body)
		}
		m := jsonOf(t, r.body)
		if st := m["status"]; st == "success" || st == "failure" {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("task %s did not end", id)
	return nil
}

// imageCount is how many images the admin sees.
func imageCount(t *testing.T, e *env) int {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/v2/images", token: admin, header: jsonAccept})
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	return len(jsonOf(t, r.body)["images"].([]any))
}

var taskDocRe = regexp.MustCompile(`^\{"id": "([0-9a-f-]{36})", "input": \{.*\}, "type": "import", "status": "pending", "owner": "admin", "message": "", "result": null, ` +
	`"created_at": "[0-9T:Z-]{20}", "updated_at": "[0-9T:Z-]{20}", "self": "/v2/tasks/([0-9a-f-]{36})", "schema": "/v2/schemas/task", ` +
	`"request_id": "req-[0-9a-f-]{36}", "user_id": "admin"\}$`)

// TestLegacyImportTask: a legacy import task creates its image from
// image_properties and fills it from the URL, as Glance 25.1 does.
func TestLegacyImportTask(t *testing.T) {
	t.Parallel()
	data := []byte(strings.Repeat("legacy import bytes ", 5000))
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/disk.img":
			_, _ = w.Write(data)
		case "/metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(src.Close)
	e := newLegacyTaskEnv(t, true)

	r := postTask(t, e, admin, legacyBody(src.URL+"/disk.img",
		`{"name": "legacy", "disk_format": "raw", "container_format": "bare", "os_distro": "debian", "tags": ["a"]}`))
	m := taskDocRe.FindStringSubmatch(string(r.body))
	if r.status != 201 || m == nil || m[1] != m[2] || r.header.Get("Location") != e.srv.URL+"/v2/tasks/"+m[1] ||
		r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST: %d %v %s", r.status, r.header, r.body)
	}
	task := waitTaskEnd(t, e, m[1])
	res, _ := task["result"].(map[string]any)
	imageID, _ := res["image_id"].(string)
	if task["status"] != "success" || task["message"] != "" || imageID == "" || task["expires_at"] == nil {
		t.Fatalf("task: %v", task)
	}
	if in := task["input"].(map[string]any); in["import_from"] != src.URL+"/disk.img" {
		t.Errorf("task input: %v", in)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + imageID, token: admin, header: jsonAccept})
	img := jsonOf(t, r.body)
	md, sh := md5.Sum(data), sha512.Sum512(data)
	if r.status != 200 || img["status"] != "active" || img["size"] != float64(len(data)) || img["name"] != "legacy" ||
		img["checksum"] != hex.EncodeToString(md[:]) || img["os_hash_algo"] != "sha512" || img["os_hash_value"] != hex.EncodeToString(sh[:]) ||
		img["os_distro"] != "debian" || img["disk_format"] != "raw" || img["owner"] != "admin" {
		t.Fatalf("image: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + imageID + "/file", token: admin})
	if r.status != 200 || string(r.body) != string(data) {
		t.Fatalf("download: %d, %d bytes", r.status, len(r.body))
	}

	// Failures in the background: the task fails with Glance's message
	// and the image it created is gone (never left queued or saving).
	for _, tc := range []struct{ name, body, msg string }{
		{"not found", legacyBody(src.URL+"/missing.img", `{"name": "f", "disk_format": "raw", "container_format": "bare"}`), "Task failed due to Internal Error"},
		{"redirect to a denied address", legacyBody(src.URL+"/metadata", `{"name": "f", "disk_format": "raw", "container_format": "bare"}`), "Task failed due to Internal Error"},
		{"no container_format", legacyBody(src.URL+"/disk.img", `{"name": "f", "disk_format": "raw"}`), "Task failed due to Internal Error"},
		{"format mismatch", legacyBody(src.URL+"/disk.img", `{"name": "f", "disk_format": "qcow2", "container_format": "bare"}`), "Task failed due to Internal Error"},
		{"invalid property", legacyBody(src.URL+"/disk.img", `{"name": "f", "disk_format": "foo", "container_format": "bare"}`), "Task failed due to Internal Error"},
		{"properties not an object", legacyBody(src.URL+"/disk.img", `"abc"`), "Task failed due to Internal Error"},
		{"no import_from_format", `{"type": "import", "input": {"import_from": "` + src.URL + `/disk.img", "image_properties": {}}}`, "Input does not contain 'import_from_format' field"},
		{"no image_properties", `{"type": "import", "input": {"import_from": "` + src.URL + `/disk.img", "import_from_format": "raw"}}`, "Input does not contain 'image_properties' field"},
	} {
		r := postTask(t, e, admin, tc.body)
		if r.status != 201 {
			t.Errorf("%s: POST %d %s", tc.name, r.status, r.body)
			continue
		}
		task := waitTaskEnd(t, e, jsonOf(t, r.body)["id"].(string))
		if task["status"] != "failure" || task["message"] != tc.msg || task["result"] != nil {
			t.Errorf("%s: task %v", tc.name, task)
		}
	}
	if n := imageCount(t, e); n != 1 {
		t.Errorf("%d images after the failed tasks, want only the first one", n)
	}
}

// TestLegacyImportTaskRequests: what POST /v2/tasks refuses at once, with
// Glance's statuses and messages.
func TestLegacyImportTaskRequests(t *testing.T) {
	t.Parallel()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }))
	t.Cleanup(src.Close)
	// Loopback is not allowed here: the fetcher's SSRF rules refuse it.
	e := newLegacyTaskEnv(t, false)
	props := `{"name": "x", "disk_format": "raw", "container_format": "bare"}`
	for _, tc := range []struct {
		token, body string
		status      int
		msg         string
	}{
		{alice, legacyBody("http://203.0.113.7/x.img", props), 403, "You are not authorized to complete tasks_api_access action."},
		{admin, legacyBody(src.URL+"/x.img", props), 400, "URI for legacy import task does not pass filtering: " + src.URL + "/x.img"},
		{admin, legacyBody("http://localhost:1/x.img", props), 400, "URI for legacy import task does not pass filtering: http://localhost:1/x.img"},
		{admin, legacyBody("http://169.254.169.254/latest", props), 400, "URI for legacy import task does not pass filtering: http://169.254.169.254/latest"},
		{admin, legacyBody("http://2130706433/x", props), 400, "URI for legacy import task does not pass filtering: http://2130706433/x"},
		{admin, legacyBody("ftp://example.com/x.img", props), 400, "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']"},
		{admin, legacyBody("file:///etc/passwd", props), 400, "File based imports are not allowed. Please use a non-local source of image data."},
		{admin, legacyBody("", props), 400, "Invalid location: "},
		{admin, `{"type": "import", "input": {}}`, 400, "Invalid location: None"},
		{admin, `{"type": "import", "input": null}`, 400, "Invalid location: None"},
		{admin, `{"type": "import", "input": {"import_from": 5}}`, 400, "Invalid location: 5"},
		// The schema's checks come before the URI's.
		{admin, `{"type": "import"}`, 400, "Task 'input' is required"},
		{admin, `{"type": "import", "input": {}, "foo": 1}`, 400, "Provided object does not match schema 'task': Additional properties are not allowed ('foo' was unexpected)"},
		{admin, `{"type": "api_image_import", "input": {"image_id": "x"}}`, 501, "Not Implemented: creating api_image_import tasks"},
	} {
		r := postTask(t, e, tc.token, tc.body)
		got := jsonErr(t, r)
		// 400 and 403 messages are Glance's, exactly; 501s are imaged's.
		if r.status != tc.status || (tc.status == 501 && !strings.HasPrefix(got, tc.msg)) || (tc.status != 501 && got != tc.msg) {
			t.Errorf("POST %s as %s: %d %s", tc.body, tc.token, r.status, r.body)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v2/tasks", token: admin, header: jsonAccept})
	if r.status != 200 || len(jsonOf(t, r.body)["tasks"].([]any)) != 0 {
		t.Errorf("refused requests left tasks: %d %s", r.status, r.body)
	}
	if n := imageCount(t, e); n != 0 {
		t.Errorf("refused requests left %d images", n)
	}
}
