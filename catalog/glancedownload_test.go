package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
)

const gdToken = "gAAAA-user-token-for-glance-download"

// gdRegions is a local catalog with glance-download and a remote region:
// another catalog served over loopback by the real Image API, behind a
// Keystone-shaped catalog endpoint. Every request to either must carry the
// user's token (counted in bad otherwise).
type gdRegions struct {
	local    *dataEnv
	svc      *catalog.Service
	remote   *dataEnv
	remoteID string
	data     []byte
	// tamper flips a byte of the remote data in transit.
	tamper atomic.Bool
	// bad counts requests that arrived without the user's token.
	bad atomic.Int64
	// redirect makes the remote answer every request with a redirect to
	// sink, which must never be reached.
	redirect atomic.Bool
	sinkHits atomic.Int64
	// stall makes the remote send half the data, then nothing.
	stall atomic.Bool
}

func newGDRegions(t *testing.T, check func(string) error) *gdRegions {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.UploadLease = 3 * time.Second
	r := &gdRegions{local: newDataEnv(t, "secure", cfg), remote: newDataEnv(t, "secure", cfg), data: randomBytes(31, 2<<20+9)}
	// The remote image: active, with properties Glance copies and not.
	img, err := r.remote.svc.CreateImage(as(owner), map[string]any{"disk_format": "raw", "container_format": "bare",
		"hw_disk_bus": "scsi", "os_distro": "debian", "trait:CUSTOM_X": "required", "owner_note": "stays remote"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.remote.svc.UploadImage(as(owner), img.ID, bytes.NewReader(r.data), int64(len(r.data))); err != nil {
		t.Fatal(err)
	}
	r.remoteID = img.ID
	api := glanceapi.New(glanceapi.Config{Images: r.remote.svc, Auth: auth.Static(*owner)})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.sinkHits.Add(1) }))
	t.Cleanup(sink.Close)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Auth-Token") != gdToken {
			r.bad.Add(1)
		}
		if r.redirect.Load() {
			http.Redirect(w, req, sink.URL+req.URL.Path, http.StatusFound)
			return
		}
		if r.stall.Load() && strings.HasSuffix(req.URL.Path, "/file") {
			w.Header().Set("Content-Length", strconv.Itoa(len(r.data)))
			w.Write(r.data[:len(r.data)/2])
			w.(http.Flusher).Flush()
			<-req.Context().Done()
			return
		}
		if r.tamper.Load() && strings.HasSuffix(req.URL.Path, "/file") {
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			b := rec.Body.Bytes()
			b[len(b)/2] ^= 0xff
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(rec.Code)
			w.Write(b)
			return
		}
		api.ServeHTTP(w, req)
	}))
	t.Cleanup(remote.Close)
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Auth-Token") != gdToken {
			r.bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if req.URL.Path != "/v3/auth/catalog" {
			http.NotFound(w, req)
			return
		}
		ep := func(region, iface, url string) map[string]any {
			return map[string]any{"id": region + iface, "interface": iface, "region": region, "region_id": region, "url": url}
		}
		json.NewEncoder(w).Encode(map[string]any{"catalog": []any{
			map[string]any{"type": "identity", "endpoints": []any{ep("RegionTwo", "public", "http://127.0.0.1:1/v3")}},
			map[string]any{"type": "image", "endpoints": []any{
				ep("RegionOne", "public", "http://127.0.0.1:1"),
				ep("RegionTwo", "internal", "http://127.0.0.1:1"),
				ep("RegionTwo", "public", remote.URL+"/v2/"),
			}},
		}})
	}))
	t.Cleanup(keystone.Close)
	svc, err := r.local.svc.WithImports(r.local.store, catalog.ImportConfig{}).
		WithGlanceDownload(catalog.GlanceDownloadConfig{KeystoneURL: keystone.URL, CheckURL: check, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	r.svc = svc
	return r
}

// importFrom starts a glance-download of the remote image into a new
// local qcow2/ovf image and returns the ended task and the image.
func (r *gdRegions) importFrom(t *testing.T, ctx context.Context, method map[string]any) (*imaged.Task, *imaged.Image) {
	t.Helper()
	img, err := r.svc.CreateImage(as(owner), map[string]any{"disk_format": "qcow2", "container_format": "ovf", "os_distro": "local"})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"name": catalog.ImportGlanceDownload, "glance_region": "regiontwo", "glance_image_id": r.remoteID}
	for k, v := range method {
		m[k] = v
	}
	task, err := r.svc.ImportImage(ctx, img.ID, imaged.ImportRequest{Method: catalog.ImportGlanceDownload, Body: map[string]any{"method": m}})
	if err != nil {
		t.Fatal(err)
	}
	return waitTask(t, r.local, task.ID), r.local.get(img.ID)
}

func TestGlanceDownload(t *testing.T) {
	t.Parallel()
	r := newGDRegions(t, nil)
	if m := r.svc.ImportMethods(); !strings.Contains(strings.Join(m, ","), catalog.ImportGlanceDownload) {
		t.Fatalf("import methods %v lack glance-download", m)
	}
	task, img := r.importFrom(t, catalog.WithUserToken(as(owner), gdToken), nil)
	if task.Status != imaged.TaskSuccess {
		t.Fatalf("task: %+v", task)
	}
	wantHashes(t, img, r.data)
	if img.DiskFormat != "raw" || img.ContainerFormat != "bare" {
		t.Errorf("formats %s/%s, want the remote's raw/bare", img.DiskFormat, img.ContainerFormat)
	}
	for k, want := range map[string]string{"hw_disk_bus": "scsi", "os_distro": "debian", "trait:CUSTOM_X": "required", "owner_note": ""} {
		if got := img.Properties[k]; got != want {
			t.Errorf("property %s = %q, want %q", k, got, want)
		}
	}
	// The interface Glance defaults is recorded; the token is not.
	in, _ := json.Marshal(task.Input)
	if !strings.Contains(string(in), `"glance_service_interface":"public"`) || strings.Contains(string(in), gdToken) {
		t.Errorf("task input: %s", in)
	}
	if got := download(t, r.svc, owner, img.ID, 0, -1); !bytes.Equal(got, r.data) {
		t.Fatal("downloaded bytes differ from the remote's")
	}
	if n := r.bad.Load(); n != 0 {
		t.Errorf("%d requests went out without the user's token", n)
	}
}

func TestGlanceDownloadFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  bool
		method map[string]any
		check  func(string) error
		setup  func(r *gdRegions)
		reason string
	}{
		{name: "tampered data", token: true, setup: func(r *gdRegions) { r.tamper.Store(true) },
			reason: "does not match the remote image's checksum"},
		{name: "no token", reason: "needs the caller's Keystone token"},
		{name: "unknown region", token: true, method: map[string]any{"glance_region": "RegionNine"},
			reason: "public glance endpoint not found for region RegionNine"},
		{name: "admin interface missing", token: true, method: map[string]any{"glance_service_interface": "admin"},
			reason: "admin glance endpoint not found for region regiontwo"},
		{name: "remote image missing", token: true, method: map[string]any{"glance_image_id": "4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e"},
			reason: "404"},
		{name: "stalled transfer", token: true, setup: func(r *gdRegions) { r.stall.Store(true) },
			reason: "the remote region sent nothing for 2s"},
		{name: "redirect refused", token: true, setup: func(r *gdRegions) { r.redirect.Store(true) }, reason: "302"},
		{name: "filtered", token: true, check: func(string) error { return imaged.Errorf(imaged.EINVALID, "port 1234 is not allowed") },
			reason: "does not pass filtering"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newGDRegions(t, tc.check)
			if tc.setup != nil {
				tc.setup(r)
			}
			ctx := as(owner)
			if tc.token {
				ctx = catalog.WithUserToken(ctx, gdToken)
			}
			task, img := r.importFrom(t, ctx, tc.method)
			if task.Status != imaged.TaskFailure || !strings.Contains(task.Message, tc.reason) {
				t.Fatalf("task %s %q, want a failure naming %q", task.Status, task.Message, tc.reason)
			}
			if strings.Contains(task.Message, gdToken) {
				t.Fatal("the token leaked into the task's message")
			}
			// Glance's revert: queued, the local formats and
			// properties back, no bytes kept.
			if img.Status != imaged.StatusQueued || img.DiskFormat != "qcow2" || img.ContainerFormat != "ovf" ||
				img.Properties["os_distro"] != "local" || img.Properties["hw_disk_bus"] != "" || img.Lease != nil {
				t.Fatalf("after a failed glance-download: %s %s/%s %v", img.Status, img.DiskFormat, img.ContainerFormat, img.Properties)
			}
			if keys := r.local.blobKeys(); len(keys) != 0 {
				t.Fatalf("blobs left behind: %v", keys)
			}
			if n := r.sinkHits.Load(); n != 0 {
				t.Fatalf("a redirect was followed (%d requests reached its target)", n)
			}
		})
	}
}

// TestGlanceDownloadRequestChecks: the synchronous checks answer 400s in
// Glance's words, 409 for an image that is not queued, 403 for a reader.
func TestGlanceDownloadRequestChecks(t *testing.T) {
	t.Parallel()
	r := newGDRegions(t, nil)
	img, err := r.svc.CreateImage(as(owner), map[string]any{"disk_format": "raw", "container_format": "bare"})
	if err != nil {
		t.Fatal(err)
	}
	reader := &imaged.Identity{UserID: "rita", ProjectID: owner.ProjectID, Roles: []string{"reader"}}
	ok := map[string]any{"name": catalog.ImportGlanceDownload, "glance_region": "RegionTwo", "glance_image_id": r.remoteID}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		who    *imaged.Identity
		method map[string]any
		code   string
		msg    string
	}{
		{"no region", owner, with("glance_region", nil), imaged.EINVALID, "'glance_region' needs to be set for glance-download import method"},
		{"no image id", owner, with("glance_image_id", nil), imaged.EINVALID, "'glance_image_id' needs to be set for glance-download import method"},
		{"not a uuid", owner, with("glance_image_id", "../../etc"), imaged.EINVALID, "Remote image id does not look like a UUID: ../../etc"},
		{"number id", owner, with("glance_image_id", 12.0), imaged.EINVALID, "Remote image id does not look like a UUID: 12"},
		{"region not a string", owner, with("glance_region", []any{"x"}), imaged.EINVALID, "'glance_region' must be a non-empty string"},
		{"bad interface", owner, with("glance_service_interface", "private"), imaged.EINVALID, "'glance_service_interface' must be one of public, internal, admin"},
		{"reader", reader, ok, imaged.EFORBIDDEN, ""},
	}
	for _, tc := range tests {
		_, err := r.svc.ImportImage(catalog.WithUserToken(as(tc.who), gdToken), img.ID,
			imaged.ImportRequest{Method: catalog.ImportGlanceDownload, Body: map[string]any{"method": tc.method}})
		if imaged.ErrorCode(err) != tc.code || !strings.Contains(imaged.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	// An image that is not queued: Glance's 409 comes first.
	if _, err := r.svc.UploadImage(as(owner), img.ID, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: catalog.ImportGlanceDownload, Body: map[string]any{"method": with("glance_region", nil)}})
	wantErr(t, err, imaged.ECONFLICT, "Image with status active cannot be target for import")
}

// TestGlanceDownloadNeedsImports: it is refused without import support.
func TestGlanceDownloadNeedsImports(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.Config{})
	if _, err := e.svc.WithGlanceDownload(catalog.GlanceDownloadConfig{KeystoneURL: "http://127.0.0.1:5000"}); err == nil {
		t.Fatal("WithGlanceDownload without imports succeeded")
	}
	imp := e.svc.WithImports(e.store, catalog.ImportConfig{})
	t.Cleanup(func() { imp.Close(context.Background()) })
	for _, u := range []string{"", "ftp://x", "http://"} {
		if _, err := imp.WithGlanceDownload(catalog.GlanceDownloadConfig{KeystoneURL: u}); err == nil {
			t.Errorf("Keystone URL %q accepted", u)
		}
	}
}
