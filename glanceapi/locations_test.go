package glanceapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/imagecache"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/webfetch"
)

// newLocationsEnv serves a catalog with show_multiple_locations and
// show_image_direct_url as configured, http(s) locations allowed on
// loopback, an image cache, and the import service (for the task API).
func newLocationsEnv(t *testing.T, multiple, direct bool) *env {
	t.Helper()
	logger, logs := testLogger()
	store := testStore(t)
	cfg := catalog.DefaultConfig()
	cfg.ShowMultipleLocations, cfg.ShowImageDirectURL = multiple, direct
	f, err := webfetch.New(webfetch.Config{AllowedPorts: webfetch.AnyPort(),
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	ic, err := imagecache.Open(filepath.Join(t.TempDir(), "cache"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	svc := catalog.New(store, policy.Legacy(), cfg).WithBlobStore(testBlobs(t, "blobs")).WithLogger(logger).
		WithLocationFetcher(f).WithImageCache(ic).WithImports(store, catalog.ImportConfig{Methods: []string{"glance-direct"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.RunImageCache(ctx) }()
	t.Cleanup(func() { cancel(); <-done; svc.Close(context.Background()) })
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger}, logs)
}

// objectServer serves /obj (5 bytes) on loopback.
func objectServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/obj" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("hello"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/obj"
}

func newLocImage(t *testing.T, e *env, token string) string {
	t.Helper()
	r := e.do(t, req{method: "POST", path: "/v2/images", token: token,
		header: map[string]string{"Content-Type": "application/json"},
		body:   `{"name": "l", "disk_format": "raw", "container_format": "bare"}`})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	return jsonOf(t, r.body)["id"].(string)
}

func patchLoc(t *testing.T, e *env, id, token, body string) resp {
	t.Helper()
	return e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: token, body: body,
		header: map[string]string{"Content-Type": "application/openstack-images-v2.1-json-patch", "Accept": "application/json"}})
}

var idFieldsRe = regexp.MustCompile(`"(id|created_at|updated_at|self|file)": "[^"]*"`)

func TestLocationsRendering(t *testing.T) {
	t.Parallel()
	obj := objectServer(t)
	e := newLocationsEnv(t, true, true)
	id := newLocImage(t, e, alice)
	// A queued image shows "locations": [] and no direct_url.
	r := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if !strings.Contains(string(r.body), `"updated_at": "`) || !strings.Contains(string(r.body), `, "locations": [], "tags": []`) ||
		strings.Contains(string(r.body), "direct_url") {
		t.Fatalf("queued image: %s", r.body)
	}
	r = patchLoc(t, e, id, alice, `[{"op": "add", "path": "/locations/-", "value": {"url": "`+obj+`", "metadata": {"b": "2", "a": "1"}}}]`)
	if r.status != 200 {
		t.Fatalf("add location: %d %s", r.status, r.body)
	}
	got := idFieldsRe.ReplaceAllString(string(r.body), `"$1": X`)
	want := `{"name": "l", "disk_format": "raw", "container_format": "bare", "visibility": "shared", "size": 5, "virtual_size": null, ` +
		`"status": "active", "checksum": null, "protected": false, "min_ram": 0, "min_disk": 0, "owner": "projA", "os_hidden": false, ` +
		`"os_hash_algo": null, "os_hash_value": null, "id": X, "created_at": X, "updated_at": X, ` +
		`"locations": [{"url": "` + obj + `", "metadata": {"a": "1", "b": "2"}}], "direct_url": "` + obj + `", ` +
		`"tags": [], "self": X, "file": X, "schema": "/v2/schemas/image"}`
	if got != want {
		t.Fatalf("image with a location:\n got %s\nwant %s", got, want)
	}
	// Listings render them too; the bytes download through the location.
	r = e.do(t, req{method: "GET", path: "/v2/images", token: alice})
	if !strings.Contains(string(r.body), `"direct_url": "`+obj+`"`) {
		t.Fatalf("listing: %s", r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice})
	if r.status != 200 || string(r.body) != "hello" {
		t.Fatalf("download: %d %q", r.status, r.body)
	}
	// Glance 2024.2's locations API is not part of 25.1: 404 there too.
	for _, m := range []string{"GET", "POST"} {
		r := e.do(t, req{method: m, path: "/v2/images/" + id + "/locations", token: admin, header: jsonAccept})
		if r.status != 404 || jsonErr(t, r) != "The resource could not be found." {
			t.Errorf("%s /v2/images/{id}/locations: %d %s", m, r.status, r.body)
		}
	}
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`[{"op": "add", "path": "/locations/-", "value": {"url": "file:///etc/passwd", "metadata": {}}}]`, 400, "Invalid location"},
		{`[{"op": "add", "path": "/locations/-", "value": {"url": "` + obj + `", "metadata": {"a": "1", "b": "2"}}}]`, 400, "The location " + obj + " already exists"},
		{`[{"op": "remove", "path": "/locations/0"}]`, 403, "Access was denied to this resource.<br /><br />\nCannot remove last location in the image.\n\n"},
		{`[{"op": "replace", "path": "/locations/0", "value": {}}]`, 400, "Invalid JSON pointer for this resource: '/locations/0'"},
		{`[{"op": "add", "path": "/locations", "value": []}]`, 400, "Invalid JSON pointer for this resource: '/locations'"},
	} {
		r := patchLoc(t, e, id, alice, tc.body)
		if r.status != tc.status || jsonErr(t, r) != tc.msg {
			t.Errorf("%s: %d %q", tc.body, r.status, jsonErr(t, r))
		}
	}
}

func TestLocationsDirectURLOnly(t *testing.T) {
	t.Parallel()
	e := newLocationsEnv(t, false, true)
	id := newLocImage(t, e, alice)
	r := e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/file", token: alice,
		header: map[string]string{"Content-Type": "application/octet-stream"}, body: "abc"})
	if r.status != 204 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	m := jsonOf(t, r.body)
	if _, ok := m["locations"]; ok {
		t.Fatalf("locations shown without show_multiple_locations: %s", r.body)
	}
	if u, _ := m["direct_url"].(string); !strings.HasPrefix(u, "file:///") {
		t.Fatalf("direct_url = %q", u)
	}
	// Changes are refused while locations are invisible.
	r = patchLoc(t, e, id, alice, `[{"op": "add", "path": "/locations/-", "value": {"url": "http://127.0.0.1/x", "metadata": {}}}]`)
	if r.status != 403 || jsonErr(t, r) != "It's not allowed to add locations if locations are invisible." {
		t.Fatalf("add while invisible: %d %s", r.status, r.body)
	}
}
