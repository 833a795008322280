package catalog_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
)

// TestLegacyImportShutdown: a legacy import cut off mid-transfer (the
// service closing) fails its task and deletes the image it created: no
// image is left saving, no bytes are left behind.
func TestLegacyImportShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		_, _ = w.Write(make([]byte, 4096))
		w.(http.Flusher).Flush()
		close(started)
		select { // stall until the test is done
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(src.Close)
	t.Cleanup(func() { close(release) })
	e, svc := newImportEnv(t, true)

	input := map[string]any{"import_from": src.URL + "/disk.img", "import_from_format": "raw",
		"image_properties": map[string]any{"name": "cut", "disk_format": "raw", "container_format": "bare"}}
	task, err := svc.CreateTask(as(admin), "import", input)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != imaged.TaskPending || task.Type != "import" || task.Owner != "admin" || task.UserID != "admin" {
		t.Fatalf("new task: %+v", task)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch did not start")
	}
	// The image exists while the bytes move.
	imgs, err := svc.ListImages(as(admin), imaged.ImageQuery{Limit: 10}, "")
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images while importing: %v %v", imgs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = svc.Close(ctx) // cancels the import
	got := waitTask(t, e, task.ID)
	if got.Status != imaged.TaskFailure || got.Message != "Task failed due to Internal Error" || got.Result != nil || got.ExpiresAt == nil {
		t.Fatalf("task after shutdown: %+v", got)
	}
	if _, err := e.store.GetImage(context.Background(), imgs[0].ID); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("image of the failed task: %v; want it deleted", err)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs left behind: %v", keys)
	}
}

// TestLegacyImportNeedsFetcher: without web-download's fetcher nothing may
// fetch URLs, so the legacy import is not available; it stays admin-only.
func TestLegacyImportNeedsFetcher(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "legacy", catalog.Config{})
	svc := e.svc.WithImports(e.store, catalog.ImportConfig{Methods: []string{imaged.ImportGlanceDirect}})
	t.Cleanup(func() { svc.Close(context.Background()) })
	input := map[string]any{"import_from": "http://203.0.113.7/x"}
	_, err := svc.CreateTask(as(owner), "import", input)
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete tasks_api_access action.")
	_, err = svc.CreateTask(as(admin), "import", input)
	if imaged.ErrorCode(err) != imaged.ENOTIMPLEMENTED {
		t.Fatalf("without a fetcher: %v", err)
	}
}

// TestRecoverAbandonedLegacyTask: a legacy import task whose process died
// (its heartbeat, updated_at, older than an upload lease) is failed by the
// recovery sweep; a task whose heartbeat is recent, and one that ended,
// are left alone.
func TestRecoverAbandonedLegacyTask(t *testing.T) {
	t.Parallel()
	e, svc := newImportEnv(t, false)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	tasks := []*imaged.Task{
		{ID: "5f0b3e1c-0000-4000-8000-00000000000a", Status: imaged.TaskProcessing, UpdatedAt: now},                  // dead
		{ID: "5f0b3e1c-0000-4000-8000-00000000000b", Status: imaged.TaskPending, UpdatedAt: now},                     // dead before it started
		{ID: "5f0b3e1c-0000-4000-8000-00000000000c", Status: imaged.TaskProcessing, UpdatedAt: now.Add(time.Minute)}, // alive
		{ID: "5f0b3e1c-0000-4000-8000-00000000000d", Status: imaged.TaskSuccess, UpdatedAt: now},                     // ended
	}
	for _, tk := range tasks {
		tk.Type, tk.Owner, tk.CreatedAt = catalog.TaskTypeLegacyImport, "admin", now
		if err := e.store.CreateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	e.skew.Store(int64(30 * time.Second)) // ten upload leases later
	if _, err := svc.RecoverAbandoned(ctx); err != nil {
		t.Fatal(err)
	}
	want := []imaged.TaskStatus{imaged.TaskFailure, imaged.TaskFailure, imaged.TaskProcessing, imaged.TaskSuccess}
	for i, tk := range tasks {
		got, err := e.store.GetTask(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want[i] {
			t.Errorf("task %d: status %s, want %s", i, got.Status, want[i])
		}
		if want[i] == imaged.TaskFailure && (got.Message != "Task failed due to Internal Error" || got.ExpiresAt == nil) {
			t.Errorf("task %d failed as %q, expires %v", i, got.Message, got.ExpiresAt)
		}
	}
}
