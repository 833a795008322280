package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
)

// importTask is the part of GET /v2/images/{id}/tasks the tests read.
type importTask struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Status    string         `json:"status"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	UserID    string         `json:"user_id"`
	Owner     string         `json:"owner"`
	Input     map[string]any `json:"input"`
	Result    map[string]any `json:"result"`
}

// imageTasks reads an image's tasks.
func (s *server) imageTasks(t *testing.T, id string) []importTask {
	t.Helper()
	code, _, body := s.do(t, "GET", "/v2/images/"+id+"/tasks", tokAlice, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET tasks of %s: %d %s", id, code, body)
	}
	var out struct {
		Tasks []importTask `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

// waitTaskEnd polls an image's last task until it has ended.
func (s *server) waitTaskEnd(t *testing.T, id string) importTask {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ts := s.imageTasks(t, id); len(ts) > 0 {
			if last := ts[len(ts)-1]; last.Status == "success" || last.Status == "failure" {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the import task of %s did not end", id)
	return importTask{}
}

// TestGlanceDirectImport: stage random data with gophercloud, import it
// with glance-direct, and find it active with the right hashes, the task
// recorded with the request id of the import request.
func TestGlanceDirectImport(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--import-methods", "glance-direct")
	c := s.client(t, tokAlice)
	ctx := context.Background()
	data := randomBytes(t, 5<<20+11)
	id := s.newImage(t, tokAlice, "direct")

	code, _, body := s.do(t, "GET", "/v2/info/import", tokAlice, "", "")
	if code != 200 || body != `{"import-methods": {"description": "Import methods available.", "type": "array", "value": ["glance-direct"]}}` {
		t.Fatalf("info/import: %d %s", code, body)
	}
	if err := imagedata.Stage(ctx, c, id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if img := s.image(t, tokAlice, id); img.Status != "uploading" || img.SizeBytes != int64(len(data)) {
		t.Fatalf("after stage: %s %d", img.Status, img.SizeBytes)
	}
	// web-download is not enabled on this server.
	code, _, body = s.do(t, "POST", "/v2/images/"+id+"/import", tokAlice, "application/json",
		`{"method": {"name": "web-download", "uri": "http://example.com/x"}}`)
	if code != 400 || !strings.Contains(body, "Unknown import method name 'web-download'.") {
		t.Fatalf("web-download when disabled: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", s.URL+"/v2/images/"+id+"/import", strings.NewReader(`{"method": {"name": "glance-direct"}}`))
	req.Header.Set("X-Auth-Token", tokAlice)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Openstack-Request-Id", "req-e2e-import-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("import: %d", resp.StatusCode)
	}
	task := s.waitTaskEnd(t, id)
	if task.Status != "success" || task.Type != "api_image_import" || task.RequestID != "req-e2e-import-1" ||
		task.UserID != "alice" || task.Owner != "projA" || task.Result["image_id"] != id {
		t.Fatalf("task: %+v", task)
	}
	img := s.image(t, tokAlice, id)
	checkHashes(t, img, data)
	if _, locked := img.Properties["os_glance_import_task"]; locked {
		t.Errorf("import lock left: %v", img.Properties)
	}
	// The bytes read back as staged.
	r, err := imagedata.Download(ctx, c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(r)
	r.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("downloaded data differs from the staged data")
	}
	// The tasks API is for admins; they see the task.
	if code, _, _ := s.do(t, "GET", "/v2/tasks", tokAlice, "", ""); code != 403 {
		t.Errorf("GET /v2/tasks as member: %d, want 403", code)
	}
	code, _, body = s.do(t, "GET", "/v2/tasks/"+task.ID, tokAdmin, "", "")
	if code != 200 || !strings.Contains(body, `"request_id": "req-e2e-import-1"`) {
		t.Errorf("GET task as admin: %d %s", code, body)
	}
	code, _, body = s.do(t, "GET", "/v2/tasks?status=success&limit=1", tokAdmin, "", "")
	if code != 200 || !strings.Contains(body, task.ID) || !strings.Contains(body, `"next": "/v2/tasks?status=success&limit=1&marker=`+task.ID+`"`) {
		t.Errorf("GET /v2/tasks as admin: %d %s", code, body)
	}
	// Importing an active image is a conflict.
	code, _, body = s.do(t, "POST", "/v2/images/"+id+"/import", tokAlice, "application/json", `{"method": {"name": "glance-direct"}}`)
	if code != 409 || !strings.Contains(body, "Image with status active cannot be target for import") {
		t.Errorf("second import: %d %s", code, body)
	}
}

// TestWebDownloadImport: web-download from a local HTTP server, allowed on
// one server and refused by its SSRF rules on another; a 404 URL is
// accepted and fails in the background.
func TestWebDownloadImport(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 2<<20+5)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.raw" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(src.Close)
	u, _ := url.Parse(src.URL)
	open := startServer(t, "--web-download-allowed-networks", "127.0.0.0/8", "--web-download-allowed-ports", u.Port())
	closed := startServer(t, "--web-download-allowed-ports", u.Port())

	tests := []struct {
		name   string
		s      *server
		path   string
		ok     bool
		reason string
	}{
		{"success", open, "/disk.raw", true, ""},
		{"not found", open, "/missing", false, "404"},
		{"loopback refused", closed, "/disk.raw", false, "127.0.0.0/8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.s
			id := s.newImage(t, tokAlice, "web-"+tc.name)
			err := imageimport.Create(context.Background(), s.client(t, tokAlice), id, imageimport.CreateOpts{
				Name: imageimport.WebDownloadMethod, URI: src.URL + tc.path}).ExtractErr()
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			task := s.waitTaskEnd(t, id)
			img := s.image(t, tokAlice, id)
			if tc.ok {
				if task.Status != "success" {
					t.Fatalf("task: %+v", task)
				}
				checkHashes(t, img, data)
				return
			}
			if task.Status != "failure" || !strings.Contains(task.Message, tc.reason) {
				t.Fatalf("task: %+v, want a failure naming %q", task, tc.reason)
			}
			if img.Status != "queued" {
				t.Fatalf("image after a failed web-download: %s", img.Status)
			}
			if v, ok := img.Properties["os_glance_failed_import"]; !ok || v != "" {
				t.Errorf("os_glance_failed_import = %v (present %v), want \"\" as Glance with one store", v, ok)
			}
		})
	}
	t.Run("bad uri", func(t *testing.T) {
		t.Parallel()
		id := open.newImage(t, tokAlice, "bad-uri")
		code, _, body := open.do(t, "POST", "/v2/images/"+id+"/import", tokAlice, "application/json",
			`{"method": {"name": "web-download", "uri": "file:///etc/passwd"}}`)
		if code != 400 || !strings.Contains(body, "URI for web-download does not pass filtering: file:///etc/passwd") {
			t.Fatalf("file URI: %d %s", code, body)
		}
	})
}

// TestCLIImport: glanceclient's image-create-via-import with glance-direct
// and import-info.
func TestCLIImport(t *testing.T) {
	t.Parallel()
	glance := needTool(t, "glance")
	s := startServer(t)
	home := t.TempDir()
	g := glanceAs(t, s, glance, home, tokAlice)
	out := g("import-info")
	// The table wraps long values: compare without the layout.
	flat := strings.NewReplacer("|", "", " ", "", "\n", "").Replace(out)
	if !strings.Contains(flat, `["glance-direct","web-download"]`) {
		t.Fatalf("import-info:\n%s", out)
	}
	in := filepath.Join(t.TempDir(), "in.img")
	data := randomBytes(t, 1<<20+3)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out = g("image-create-via-import", "--name", "cli-import", "--disk-format", "raw", "--container-format", "bare",
		"--import-method", "glance-direct", "--file", in)
	id := fieldOf(t, out, "id")
	checkHashes(t, s.waitStatus(t, id, "active", 30*time.Second), data)
}

// TestCrashDuringImport: imaged is killed (SIGKILL) while a web-download
// streams; a new process on the same data puts the image back to queued
// once the lease has expired, fails the task, and the image can be staged
// and imported again.
func TestCrashDuringImport(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(64<<20))
		w.Write(make([]byte, 1<<20))
		w.(http.Flusher).Flush()
		select { // then hang, as a stalled remote
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(src.Close)
	t.Cleanup(func() { close(release) })
	u, _ := url.Parse(src.URL)
	dir := t.TempDir()
	flags := []string{"--upload-lease", "2s", "--web-download-allowed-networks", "127.0.0.0/8", "--web-download-allowed-ports", u.Port()}
	s1 := startServerIn(t, dir, flags...)
	id := s1.newImage(t, tokAlice, "crash-import")
	if err := imageimport.Create(context.Background(), s1.client(t, tokAlice), id, imageimport.CreateOpts{
		Name: imageimport.WebDownloadMethod, URI: src.URL + "/big.raw"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s1.waitStatus(t, id, "importing", 10*time.Second)
	s1.kill(t)

	s2 := startServerIn(t, dir, flags...)
	s2.waitStatus(t, id, "queued", 15*time.Second)
	task := s2.waitTaskEnd(t, id)
	if task.Status != "failure" || !strings.Contains(task.Message, "abandoned") {
		t.Fatalf("task after recovery: %+v", task)
	}
	img := s2.image(t, tokAlice, id)
	if _, locked := img.Properties["os_glance_import_task"]; locked {
		t.Fatalf("lock left after recovery: %v", img.Properties)
	}
	c := s2.client(t, tokAlice)
	data := randomBytes(t, 300<<10)
	if err := imagedata.Stage(context.Background(), c, id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := imageimport.Create(context.Background(), c, id, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	checkHashes(t, s2.waitStatus(t, id, "active", 15*time.Second), data)
}
