package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
)

// imageBlobs lists the committed image blobs of a store directory.
func imageBlobs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range blobFiles(t, dir) {
		// The fs store keeps key images/x/y as images+/x+/y.
		if strings.HasPrefix(filepath.ToSlash(f), "images") {
			out = append(out, f)
		}
	}
	return out
}

// imageStores reads an image's "stores" field ("" when absent).
func (s *server) imageStores(t *testing.T, id string) string {
	t.Helper()
	code, _, body := s.do(t, "GET", "/v2/images/"+id, tokAlice, "", "")
	if code != http.StatusOK {
		t.Fatalf("GET image: %d %s", code, body)
	}
	var img map[string]any
	if err := json.Unmarshal([]byte(body), &img); err != nil {
		t.Fatal(err)
	}
	st, _ := img["stores"].(string)
	return st
}

// TestNamedStores: the real binary with two store directories: discovery,
// an upload into the non-default store, copy-image into the other (the
// bytes read back and verified), delete-from-store and image delete, with
// the bytes appearing and going in the right directories.
func TestNamedStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fast, slow := filepath.Join(dir, "fast"), filepath.Join(dir, "slow")
	s := startServer(t, "--stores", "fast="+fast+",slow="+slow, "--default-store", "fast",
		"--store-descriptions", "fast=Fast store")

	code, _, body := s.do(t, "GET", "/v2/info/stores", tokAlice, "", "")
	if want := `{"stores": [{"id": "fast", "description": "Fast store", "default": "true"}, {"id": "slow"}]}`; code != 200 || body != want {
		t.Fatalf("GET /v2/info/stores: %d %s", code, body)
	}
	if _, _, body := s.do(t, "GET", "/v2/info/import", tokAlice, "", ""); !strings.Contains(body, `"copy-image"`) {
		t.Fatalf("GET /v2/info/import: %s", body)
	}

	// Upload into slow, named by X-Image-Meta-Store.
	id := s.newImage(t, tokAlice, "two-stores")
	data := randomBytes(t, 3<<20+11)
	req, err := http.NewRequestWithContext(context.Background(), "PUT", s.URL+"/v2/images/"+id+"/file", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", tokAlice)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Image-Meta-Store", "slow")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload to slow: %d", resp.StatusCode)
	}
	if st := s.imageStores(t, id); st != "slow" {
		t.Fatalf("stores %q after the upload, want slow", st)
	}
	if n, m := len(imageBlobs(t, fast)), len(imageBlobs(t, slow)); n != 0 || m != 1 {
		t.Fatalf("blobs: fast %d, slow %d; want 0, 1", n, m)
	}

	// copy-image into fast (admin), bytes verified against the hashes.
	code, _, body = s.do(t, "POST", "/v2/images/"+id+"/import", tokAdmin, "application/json",
		`{"method": {"name": "copy-image"}, "stores": ["fast"]}`)
	if code != http.StatusAccepted {
		t.Fatalf("copy-image: %d %s", code, body)
	}
	// The copy's task is the admin's (alice does not see it).
	if task := s.waitAdminTask(t, id); task.Status != "success" {
		t.Fatalf("copy task: %s %s", task.Status, task.Message)
	}
	if st := s.imageStores(t, id); st != "slow,fast" {
		t.Fatalf("stores %q after the copy", st)
	}
	img := s.image(t, tokAlice, id)
	checkHashes(t, img, data)
	if n, m := len(imageBlobs(t, fast)), len(imageBlobs(t, slow)); n != 1 || m != 1 {
		t.Fatalf("blobs: fast %d, slow %d; want 1, 1", n, m)
	}

	// Out of slow (delete_image_location: admins, under secure RBAC):
	// the download now reads fast.
	if code, _, body := s.do(t, "DELETE", "/v2/stores/slow/"+id, tokAlice, "", ""); code != http.StatusForbidden {
		t.Fatalf("alice deletes from slow: %d %s", code, body)
	}
	if code, _, body := s.do(t, "DELETE", "/v2/stores/slow/"+id, tokAdmin, "", ""); code != http.StatusNoContent {
		t.Fatalf("delete from slow: %d %s", code, body)
	}
	if n := len(imageBlobs(t, slow)); n != 0 {
		t.Fatalf("slow keeps %d blobs", n)
	}
	code, _, body = s.do(t, "DELETE", "/v2/stores/fast/"+id, tokAdmin, "", "")
	if code != http.StatusForbidden || !strings.Contains(body, "Cannot delete image data from the only store containing it.") {
		t.Fatalf("delete the last copy: %d %s", code, body)
	}
	rc, err := imagedata.Download(context.Background(), s.client(t, tokAlice), id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("download from fast: %d bytes, %v", len(back), err)
	}

	// Deleting the image removes its bytes from every store.
	if code, _, body := s.do(t, "DELETE", "/v2/images/"+id, tokAlice, "", ""); code != http.StatusNoContent {
		t.Fatalf("delete image: %d %s", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(imageBlobs(t, fast)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(imageBlobs(t, fast)); n != 0 {
		t.Fatalf("fast keeps %d blobs after the delete", n)
	}
}

// waitAdminTask polls, as the admin, an image's last task until it ends.
func (s *server) waitAdminTask(t *testing.T, id string) importTask {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, _, body := s.do(t, "GET", "/v2/images/"+id+"/tasks", tokAdmin, "", "")
		var out struct {
			Tasks []importTask `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(body), &out); code != http.StatusOK || err != nil {
			t.Fatalf("GET tasks: %d %s", code, body)
		}
		if n := len(out.Tasks); n > 0 && (out.Tasks[n-1].Status == "success" || out.Tasks[n-1].Status == "failure") {
			return out.Tasks[n-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the task of %s did not end", id)
	return importTask{}
}
