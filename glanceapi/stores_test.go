package glanceapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
)

// newStoresEnv is the real stack with two named stores, each a
// directory: fast (the default, described) and slow.
func newStoresEnv(t *testing.T) *env {
	t.Helper()
	store := testStore(t)
	var named []catalog.NamedStore
	for _, n := range []string{"fast", "slow"} {
		named = append(named, catalog.NamedStore{Name: n, Blobs: testBlobs(t, n)})
	}
	named[0].Description = "Fast store"
	logger, logs := testLogger()
	svc, err := catalog.New(store, policy.Legacy(), catalog.DefaultConfig()).WithLogger(logger).WithStores(named, "fast")
	if err != nil {
		t.Fatal(err)
	}
	svc = svc.WithImports(store, catalog.ImportConfig{Methods: []string{imaged.ImportGlanceDirect}})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger, ImportMethods: svc.ImportMethods()}, logs)
}

// jsonMessage is the message of a JSON error body, Glance's trailer cut.
func jsonMessage(t *testing.T, r resp) string {
	t.Helper()
	var v struct{ Message string }
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	msg, _, _ := strings.Cut(v.Message, "<br />")
	return msg
}

// waitStores polls an image until its "stores" field is want.
func waitStores(t *testing.T, e *env, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
		var img map[string]any
		if err := json.Unmarshal(r.body, &img); err != nil {
			t.Fatalf("image %q: %v", r.body, err)
		}
		if img["stores"] == want || (want == "" && img["stores"] == nil) {
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("stores %v, want %q", img["stores"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInfoStores(t *testing.T) {
	t.Parallel()
	e := newStoresEnv(t)
	r := e.do(t, req{method: "GET", path: "/v2/info/stores", token: alice})
	want := `{"stores": [{"id": "fast", "description": "Fast store", "default": "true"}, {"id": "slow"}]}`
	if r.status != 200 || string(r.body) != want || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v2/info/stores: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/info/import", token: alice})
	if !strings.Contains(string(r.body), `"value": ["glance-direct", "copy-image"]`) {
		t.Fatalf("GET /v2/info/import: %s", r.body)
	}
	// A single implicit store: Glance without enabled_backends.
	single := newImportEnv(t, nil)
	r = single.do(t, req{method: "GET", path: "/v2/info/stores", token: alice, header: map[string]string{"Accept": "application/json"}})
	if r.status != 404 || jsonMessage(t, r) != "Multi backend is not supported at this site." {
		t.Fatalf("single store GET /v2/info/stores: %d %s", r.status, r.body)
	}
	r = single.do(t, req{method: "DELETE", path: "/v2/stores/fast/00000000-0000-0000-0000-000000000001", token: admin, header: map[string]string{"Accept": "application/json"}})
	if r.status != 404 || jsonMessage(t, r) != "The resource could not be found." {
		t.Fatalf("single store DELETE /v2/stores: %d %s", r.status, r.body)
	}
}

func TestStoresUploadCopyDelete(t *testing.T) {
	t.Parallel()
	e := newStoresEnv(t)
	id := newDataImage(t, e)
	hdr := func(store string) map[string]string {
		return map[string]string{"Content-Type": "application/octet-stream", "Accept": "application/json", "X-Image-Meta-Store": store}
	}
	r := e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/file", token: alice, body: "hello", header: hdr("nope")})
	if r.status != 400 || jsonMessage(t, r) != "Store for identifier nope not found" {
		t.Fatalf("upload to an unknown store: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/file", token: alice, body: "hello", header: hdr("slow")})
	if r.status != 204 {
		t.Fatalf("upload to slow: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if !strings.HasSuffix(string(r.body), `"schema": "/v2/schemas/image", "stores": "slow"}`) {
		t.Fatalf("image view: %s", r.body)
	}

	// copy-image: admins only (legacy default), 400 for a store that
	// holds the image already, 409 for an unknown one.
	for _, tc := range []struct {
		token, body string
		status      int
		msg         string
	}{
		{alice, `{"method": {"name": "copy-image"}, "stores": ["fast"]}`, 403, "You are not authorized to complete copy_image action."},
		{admin, `{"method": {"name": "copy-image"}, "stores": ["slow"]}`, 400, "Image is already present at store 'slow'"},
		{admin, `{"method": {"name": "copy-image"}, "stores": ["nope"]}`, 409, "Store for identifier nope not found"},
	} {
		r := postImport(t, e, id, tc.token, tc.body)
		if r.status != tc.status || jsonMessage(t, r) != tc.msg {
			t.Errorf("copy %s: %d %s; want %d %q", tc.body, r.status, r.body, tc.status, tc.msg)
		}
	}
	if r := postImport(t, e, id, admin, `{"method": {"name": "copy-image"}, "stores": ["fast"]}`); r.status != 202 {
		t.Fatalf("copy-image: %d %s", r.status, r.body)
	}
	img := waitStores(t, e, id, "slow,fast")
	if img["status"] != "active" || img["os_glance_importing_to_stores"] != "" || img["os_glance_failed_import"] != "" {
		t.Fatalf("after copy: %v", img)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice}); string(r.body) != "hello" {
		t.Fatalf("download after copy: %d %q", r.status, r.body)
	}

	del := func(store string) resp {
		return e.do(t, req{method: "DELETE", path: "/v2/stores/" + store + "/" + id, token: alice, header: map[string]string{"Accept": "application/json"}})
	}
	if r := del("nope"); r.status != 409 || jsonMessage(t, r) != "The selected store nope is not available on this node." {
		t.Fatalf("delete from unknown store: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "DELETE", path: "/v2/stores/slow/" + id, token: bob, header: map[string]string{"Accept": "application/json"}}); r.status != 404 {
		t.Fatalf("bob deletes alice's data: %d %s", r.status, r.body)
	}
	if r := del("slow"); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("delete from slow: %d %s", r.status, r.body)
	}
	waitStores(t, e, id, "fast")
	if r := del("fast"); r.status != 403 || jsonMessage(t, r) != "Cannot delete image data from the only store containing it. Consider deleting the image instead." {
		t.Fatalf("delete the last location: %d %s", r.status, r.body)
	}
}

func TestStoresImportBody(t *testing.T) {
	t.Parallel()
	e := newStoresEnv(t)
	id := newDataImage(t, e)
	r := e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/stage", token: alice, body: "staged",
		header: map[string]string{"Content-Type": "application/octet-stream"}})
	if r.status != 204 {
		t.Fatalf("stage: %d %s", r.status, r.body)
	}
	// With named stores all_stores_must_succeed=false is accepted.
	r = postImport(t, e, id, alice, `{"method": {"name": "glance-direct"}, "all_stores": true, "all_stores_must_succeed": false}`)
	if r.status != 202 {
		t.Fatalf("import to all stores: %d %s", r.status, r.body)
	}
	waitStores(t, e, id, "fast,slow")
}
