package catalog_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/webfetch"
)

// importEnv is a dataEnv whose service imports, with a real web fetcher
// that may reach loopback (where the tests' HTTP servers listen) unless
// told otherwise.
func newImportEnv(t *testing.T, allowLoopback bool) (*dataEnv, *catalog.Service) {
	t.Helper()
	e := newDataEnv(t, "legacy", catalog.Config{UploadLease: 3 * time.Second})
	cfg := webfetch.Config{AllowedPorts: webfetch.AnyPort()}
	if allowLoopback {
		cfg.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	f, err := webfetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := e.svc.WithImports(e.store, catalog.ImportConfig{Fetcher: f})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return e, svc
}

// waitTask waits until a task has ended and returns it.
func waitTask(t *testing.T, e *dataEnv, id string) *imaged.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tk, err := e.store.GetTask(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status == imaged.TaskSuccess || tk.Status == imaged.TaskFailure {
			return tk
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("task %s did not end", id)
	return nil
}

func wantHashes(t *testing.T, img *imaged.Image, data []byte) {
	t.Helper()
	m, s := md5.Sum(data), sha512.Sum512(data)
	if img.Status != imaged.StatusActive || img.Size == nil || *img.Size != int64(len(data)) ||
		img.Checksum != hex.EncodeToString(m[:]) || img.OSHashValue != hex.EncodeToString(s[:]) || img.OSHashAlgo != "sha512" {
		t.Fatalf("imported image: status %s size %v checksum %s", img.Status, img.Size, img.Checksum)
	}
	if _, locked := img.Properties["os_glance_import_task"]; locked {
		t.Fatalf("import lock left behind: %v", img.Properties)
	}
	if v, ok := img.Properties["os_glance_failed_import"]; !ok || v != "" {
		t.Fatalf("os_glance_failed_import = %q, %v; want \"\" as Glance with one store", v, ok)
	}
}

func TestStageAndGlanceDirectImport(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("raw")
	data := randomBytes(11, 3<<20+17)
	ctx := imaged.NewContextWithRequestID(as(owner), "req-stage-test")

	// Import before staging is refused.
	_, err := svc.ImportImage(ctx, img.ID, imaged.ImportRequest{Method: "glance-direct"})
	wantErr(t, err, imaged.ECONFLICT, "Image needs to be staged before 'glance-direct' method can be used")

	if err := svc.StageImage(ctx, img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	staged := e.get(img.ID)
	if staged.Status != imaged.StatusUploading || staged.Size == nil || *staged.Size != int64(len(data)) || staged.Lease != nil || staged.Checksum != "" {
		t.Fatalf("after stage: %+v", staged)
	}
	if keys := e.blobKeys(); !slices.Equal(keys, []string{"staging/" + img.ID}) {
		t.Fatalf("blobs after stage: %v", keys)
	}
	// A second stage is a conflict, as in Glance.
	err = svc.StageImage(ctx, img.ID, strings.NewReader("x"), 1)
	wantErr(t, err, imaged.ECONFLICT, "Image status transition from uploading to uploading is not allowed")
	// web-download needs a queued image.
	_, err = svc.ImportImage(ctx, img.ID, imaged.ImportRequest{Method: "web-download", URI: "http://example.com/x"})
	wantErr(t, err, imaged.ECONFLICT, "Image needs to be in 'queued' state to use 'web-download' method")

	body := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	task, err := svc.ImportImage(ctx, img.ID, imaged.ImportRequest{Method: "glance-direct", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != imaged.TaskPending || task.RequestID != "req-stage-test" || task.Owner != owner.ProjectID || task.UserID != owner.UserID {
		t.Fatalf("new task: %+v", task)
	}
	done := waitTask(t, e, task.ID)
	if done.Status != imaged.TaskSuccess || done.Result["image_id"] != img.ID || done.ExpiresAt == nil || done.Message != "Copied 3 MiB" {
		t.Fatalf("ended task: %+v", done)
	}
	out := e.get(img.ID)
	wantHashes(t, out, data)
	if got := download(t, e.svc, owner, img.ID, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ from the staged ones")
	}
	// The staged bytes are gone; only the image's data is left.
	if keys := e.blobKeys(); len(keys) != 1 || !strings.HasPrefix(keys[0], "images/"+img.ID+"/") {
		t.Fatalf("blobs after import: %v", keys)
	}
	_, err = svc.ImportImage(ctx, img.ID, imaged.ImportRequest{Method: "glance-direct"})
	wantErr(t, err, imaged.ECONFLICT, "Image with status active cannot be target for import")

	tasks, err := svc.ListImageTasks(ctx, img.ID)
	if err != nil || len(tasks) != 1 || tasks[0].ID != task.ID {
		t.Fatalf("image tasks: %v, %v", tasks, err)
	}
	// Another project sees neither the image nor its tasks.
	_, err = svc.ListImageTasks(as(other), img.ID)
	wantErr(t, err, imaged.ENOTFOUND, "")
	// The tasks API is for admins.
	_, err = svc.GetTask(ctx, task.ID)
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete tasks_api_access action.")
	if got, err := svc.GetTask(as(admin), task.ID); err != nil || got.ID != task.ID {
		t.Fatalf("admin get task: %v, %v", got, err)
	}
}

func TestStageFailureRestoresQueued(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("raw")
	// A body shorter than declared fails the stage.
	err := svc.StageImage(as(owner), img.ID, strings.NewReader("short"), 100)
	wantErr(t, err, imaged.EINVALID, "")
	e.wantQueued(img.ID)
	// A reader that fails midway too.
	err = svc.StageImage(as(owner), img.ID, &failingReader{data: randomBytes(1, 1<<20), err: errors.New("connection reset")}, -1)
	if err == nil {
		t.Fatal("stage of a failing body succeeded")
	}
	e.wantQueued(img.ID)
	// Another project may not stage.
	err = svc.StageImage(as(other), img.ID, strings.NewReader("x"), 1)
	wantErr(t, err, imaged.ENOTFOUND, "No image found with ID "+img.ID)
	// And a retry works.
	if err := svc.StageImage(as(owner), img.ID, strings.NewReader("ok"), 2); err != nil {
		t.Fatal(err)
	}
}

func TestImportFormatMismatchFails(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("qcow2") // raw bytes declared qcow2: refused at import
	if err := svc.StageImage(as(owner), img.ID, bytes.NewReader(randomBytes(3, 4096)), 4096); err != nil {
		t.Fatal(err)
	}
	task, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "glance-direct"})
	if err != nil {
		t.Fatal(err)
	}
	done := waitTask(t, e, task.ID)
	if done.Status != imaged.TaskFailure || done.Message == "" || done.Result != nil {
		t.Fatalf("task: %+v", done)
	}
	got := e.get(img.ID)
	if got.Status != imaged.StatusQueued || got.Lease != nil || got.Checksum != "" {
		t.Fatalf("after a failed import: %+v", got)
	}
	if _, locked := got.Properties["os_glance_import_task"]; locked {
		t.Fatal("lock left after a failed import")
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs left: %v", keys)
	}
}

func TestWebDownload(t *testing.T) {
	t.Parallel()
	data := randomBytes(5, 1<<20+3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/image.raw" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		loopback bool
		path     string
		ok       bool
	}{
		{"success", true, "/image.raw", true},
		{"not found", true, "/missing", false},
		{"loopback refused", false, "/image.raw", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, svc := newImportEnv(t, tc.loopback)
			img := e.image("raw")
			uri := srv.URL + tc.path
			body := map[string]any{"method": map[string]any{"name": "web-download", "uri": uri}}
			task, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "web-download", URI: uri, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			done := waitTask(t, e, task.ID)
			got := e.get(img.ID)
			if tc.ok {
				if done.Status != imaged.TaskSuccess {
					t.Fatalf("task: %+v", done)
				}
				wantHashes(t, got, data)
				return
			}
			if done.Status != imaged.TaskFailure || done.Message == "" {
				t.Fatalf("task: %+v", done)
			}
			t.Logf("failure message: %s", done.Message)
			if got.Status != imaged.StatusQueued || got.Lease != nil || got.Properties["os_glance_import_task"] != "" {
				t.Fatalf("after a failed web-download: %+v", got)
			}
		})
	}
	t.Run("bad uri", func(t *testing.T) {
		t.Parallel()
		e, svc := newImportEnv(t, true)
		img := e.image("raw")
		_, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "web-download", URI: "ftp://x/y"})
		wantErr(t, err, imaged.EINVALID, "URI for web-download does not pass filtering: ftp://x/y")
		_, err = svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "copy-image"})
		wantErr(t, err, imaged.EINVALID, "Unknown import method name 'copy-image'.")
	})
}

func TestImportMethodsConfig(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "legacy", catalog.Config{})
	tests := []struct {
		name    string
		cfg     catalog.ImportConfig
		methods []string
	}{
		{"default without fetcher", catalog.ImportConfig{}, []string{"glance-direct"}},
		{"web-download needs a fetcher", catalog.ImportConfig{Methods: []string{"web-download"}}, nil},
	}
	for _, tc := range tests {
		svc := e.svc.WithImports(e.store, tc.cfg)
		if got := svc.ImportMethods(); !slices.Equal(got, tc.methods) {
			t.Errorf("%s: methods %v, want %v", tc.name, got, tc.methods)
		}
	}
}

func TestRecoverAbandonedImport(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("raw")
	if err := svc.StageImage(as(owner), img.ID, strings.NewReader("staged"), 6); err != nil {
		t.Fatal(err)
	}
	// A process took the import and died: the image is importing under a
	// lease that expires, with the lock and a processing task.
	taskID := "5f0b3e1c-0000-4000-8000-000000000001"
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := e.store.CreateTask(context.Background(), &imaged.Task{ID: taskID, Type: imaged.TaskTypeImageImport,
		Status: imaged.TaskProcessing, Owner: owner.ProjectID, ImageID: img.ID, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateImage(context.Background(), img.ID, func(i *imaged.Image) error {
		i.Status = imaged.StatusImporting
		i.Properties["os_glance_import_task"] = taskID
		i.Lease = &imaged.Lease{ID: "deadbeef", Holder: "gone:1", Expires: now.Add(time.Second)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.skew.Store(int64(time.Minute))
	n, err := svc.RecoverAbandoned(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	got := e.get(img.ID)
	if got.Status != imaged.StatusQueued || got.Lease != nil || got.Properties["os_glance_import_task"] != "" {
		t.Fatalf("after recovery: %+v", got)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("staged bytes kept after recovery: %v", keys)
	}
	tk, err := e.store.GetTask(context.Background(), taskID)
	if err != nil || tk.Status != imaged.TaskFailure || tk.ExpiresAt == nil {
		t.Fatalf("task after recovery: %+v, %v", tk, err)
	}
	// The image can be staged and imported again.
	if err := svc.StageImage(as(owner), img.ID, strings.NewReader("again"), 5); err != nil {
		t.Fatal(err)
	}
}

func TestTaskListing(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	var ids []string
	for range 3 {
		img := e.image("raw")
		if err := svc.StageImage(as(owner), img.ID, strings.NewReader("abc"), 3); err != nil {
			t.Fatal(err)
		}
		task, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "glance-direct"})
		if err != nil {
			t.Fatal(err)
		}
		waitTask(t, e, task.ID)
		ids = append(ids, task.ID)
	}
	_, err := svc.ListTasks(as(owner), imaged.TaskQuery{}, "")
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete tasks_api_access action.")
	var got []string
	marker := ""
	for {
		page, err := svc.ListTasks(as(admin), imaged.TaskQuery{Limit: 2, SortKey: "created_at", SortDir: imaged.Asc}, marker)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range page {
			got = append(got, tk.ID)
		}
		if len(page) < 2 {
			break
		}
		marker = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("paged tasks %v, want %v", got, ids)
	}
	_, err = svc.ListTasks(as(admin), imaged.TaskQuery{}, "5f0b3e1c-0000-4000-8000-00000000ffff")
	wantErr(t, err, imaged.EINVALID, "Task with the given id 5f0b3e1c-0000-4000-8000-00000000ffff was not found")
	_, err = svc.ListTasks(as(admin), imaged.TaskQuery{SortKey: "owner"}, "")
	wantErr(t, err, imaged.EINVALID, "Sort key supplied was not valid.")
}

// TestImportLock: a live os_glance_import_task lock refuses a new import;
// a stale one (its task has not moved for over an hour) is broken and its
// task failed, as Glance's _enforce_import_lock.
func TestImportLock(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("raw")
	if err := svc.StageImage(as(owner), img.ID, strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := &imaged.Task{ID: "5f0b3e1c-0000-4000-8000-000000000002", Type: imaged.TaskTypeImageImport,
		Status: imaged.TaskProcessing, ImageID: img.ID, CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateTask(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Properties["os_glance_import_task"] = old.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "glance-direct"})
	wantErr(t, err, imaged.ECONFLICT, "Image has active task")

	e.skew.Store(int64(61 * time.Minute))
	task, err := svc.ImportImage(as(owner), img.ID, imaged.ImportRequest{Method: "glance-direct"})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitTask(t, e, task.ID); done.Status != imaged.TaskSuccess {
		t.Fatalf("task: %+v", done)
	}
	got, err := e.store.GetTask(ctx, old.ID)
	if err != nil || got.Status != imaged.TaskFailure || got.Message != "Expired lock preempted" {
		t.Fatalf("preempted task: %+v, %v", got, err)
	}
}

// TestDeleteStagedImage: deleting an image whose bytes are staged removes
// them.
func TestDeleteStagedImage(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	img := e.image("raw")
	if err := svc.StageImage(as(owner), img.ID, strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteImage(as(owner), img.ID); err != nil {
		t.Fatal(err)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs left: %v", keys)
	}
}
