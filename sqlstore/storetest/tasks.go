package storetest

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// RunTasks runs the conformance suite of imaged.TaskStore. open must return
// a fresh, empty store; the suite does not close it (a TaskStore has no
// Close of its own).
func RunTasks(t *testing.T, open func(t *testing.T) imaged.TaskStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s imaged.TaskStore)
	}{
		{"RoundTrip", testTaskRoundTrip},
		{"Update", testTaskUpdate},
		{"ConcurrentUpdates", testTaskConcurrentUpdates},
		{"ListModel", testTaskList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func newTask(id string, at time.Time) *imaged.Task {
	return &imaged.Task{ID: id, Type: imaged.TaskTypeImageImport, Status: imaged.TaskPending,
		Input:   map[string]any{"image_id": "img-" + id, "import_req": map[string]any{"method": map[string]any{"name": "glance-direct"}}, "backend": []any{nil}},
		Message: "", Owner: "proj-a", ImageID: "img-" + id, RequestID: "req-" + id, UserID: "alice",
		CreatedAt: at, UpdatedAt: at}
}

func testTaskRoundTrip(t *testing.T, s imaged.TaskStore) {
	ctx := context.Background()
	r := newRand(t)
	want := newTask(uuid(r), base)
	if err := s.CreateTask(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	wantCode(t, s.CreateTask(ctx, newTask(want.ID, base)), imaged.ECONFLICT)
	_, err = s.GetTask(ctx, uuid(r))
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.UpdateTask(ctx, uuid(r), func(*imaged.Task) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)
	// Null owner, image and result survive as empty values.
	bare := &imaged.Task{ID: uuid(r), Type: imaged.TaskTypeImageImport, Status: imaged.TaskPending, CreatedAt: base, UpdatedAt: base}
	if err := s.CreateTask(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTask(ctx, bare.ID); err != nil || !reflect.DeepEqual(got, bare) {
		t.Fatalf("bare task: got %+v, %v; want %+v", got, err, bare)
	}
	// A native task keeps its progress and errors (quotes and unicode
	// survive the JSON round trip).
	native := &imaged.Task{ID: uuid(r), Type: imaged.TaskTypeRegistryRescan, Status: imaged.TaskProcessing, CreatedAt: base, UpdatedAt: base,
		Progress: imaged.TaskProgress{Done: 7, Total: 1 << 40}, Errors: []string{`repo "a": 401`, "ü"}}
	if err := s.CreateTask(ctx, native); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTask(ctx, native.ID); err != nil || !reflect.DeepEqual(got, native) {
		t.Fatalf("native task: got %+v, %v; want %+v", got, err, native)
	}
}

func testTaskUpdate(t *testing.T, s imaged.TaskStore) {
	ctx := context.Background()
	r := newRand(t)
	tk := newTask(uuid(r), base)
	if err := s.CreateTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	veto := fmt.Errorf("veto")
	if _, err := s.UpdateTask(ctx, tk.ID, func(t *imaged.Task) error { t.Status = imaged.TaskFailure; return veto }); err != veto {
		t.Fatalf("vetoed update: %v", err)
	}
	exp := base.Add(48 * time.Hour)
	out, err := s.UpdateTask(ctx, tk.ID, func(t *imaged.Task) error {
		t.Status = imaged.TaskSuccess
		t.Result = map[string]any{"image_id": t.ImageID}
		t.Message = "Copied 0 MiB"
		t.UpdatedAt = base.Add(time.Second)
		t.ExpiresAt = &exp
		t.Progress = imaged.TaskProgress{Done: 3, Total: 10}
		t.Errors = append(t.Errors, "registry unreachable")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, out) || got.Status != imaged.TaskSuccess || got.Message != "Copied 0 MiB" ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.Result["image_id"] != tk.ImageID ||
		got.Progress != (imaged.TaskProgress{Done: 3, Total: 10}) || !slices.Equal(got.Errors, []string{"registry unreachable"}) {
		t.Fatalf("after update: %+v (returned %+v)", got, out)
	}
}

func testTaskConcurrentUpdates(t *testing.T, s imaged.TaskStore) {
	ctx := context.Background()
	r := newRand(t)
	tk := newTask(uuid(r), base)
	tk.Result = map[string]any{"n": float64(0)}
	if err := s.CreateTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateTask(ctx, tk.ID, func(t *imaged.Task) error {
				t.Result["n"] = t.Result["n"].(float64) + 1
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetTask(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Result["n"] != float64(n) {
		t.Fatalf("lost updates: n = %v, want %d", got.Result["n"], n)
	}
}

// testTaskList checks filters, every sort key in both directions and
// keyset paging against a brute-force model.
func testTaskList(t *testing.T, s imaged.TaskStore) {
	ctx := context.Background()
	r := newRand(t)
	statuses := []imaged.TaskStatus{imaged.TaskPending, imaged.TaskProcessing, imaged.TaskSuccess, imaged.TaskFailure}
	var all []*imaged.Task
	for i := range 40 {
		// Few distinct times, so that ties on the sort key are common.
		tk := newTask(uuid(r), base.Add(time.Duration(r.IntN(5))*time.Second))
		tk.UpdatedAt = tk.CreatedAt.Add(time.Duration(r.IntN(3)) * time.Second)
		tk.Status = statuses[r.IntN(len(statuses))]
		tk.Owner = []string{"proj-a", "proj-b"}[i%2]
		tk.ImageID = []string{"img-1", "img-2", "img-3"}[r.IntN(3)]
		if i%7 == 0 {
			tk.Type = "import"
		}
		if err := s.CreateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
		all = append(all, tk)
	}
	value := func(tk *imaged.Task, key string) string {
		switch key {
		case "id":
			return tk.ID
		case "type":
			return tk.Type
		case "status":
			return string(tk.Status)
		case "updated_at":
			return fmt.Sprintf("%020d", tk.UpdatedAt.UnixMicro())
		}
		return fmt.Sprintf("%020d", tk.CreatedAt.UnixMicro())
	}
	queries := []imaged.TaskQuery{
		{},
		{Owner: "proj-b"},
		{ImageID: "img-2"},
		{Statuses: []string{"success", "failure"}},
		{Types: []string{"import"}},
		{Owner: "proj-a", ImageID: "img-1", Statuses: []string{"pending"}},
	}
	for _, key := range append([]string{""}, imaged.TaskSortKeys...) {
		for _, dir := range []imaged.SortDir{"", imaged.Asc, imaged.Desc} {
			for _, q := range queries {
				q.SortKey, q.SortDir = key, dir
				k := cmp.Or(key, "created_at")
				var want []string
				for _, tk := range all {
					if (q.Owner == "" || tk.Owner == q.Owner) && (q.ImageID == "" || tk.ImageID == q.ImageID) &&
						(len(q.Statuses) == 0 || slices.Contains(q.Statuses, string(tk.Status))) &&
						(len(q.Types) == 0 || slices.Contains(q.Types, tk.Type)) {
						want = append(want, value(tk, k)+"|"+tk.ID)
					}
				}
				sort.Strings(want)
				if dir != imaged.Asc {
					slices.Reverse(want)
				}
				for i := range want {
					_, want[i], _ = strings.Cut(want[i], "|")
				}
				// Walk in pages of 3.
				var got []string
				q.Limit = 3
				for {
					page, err := s.ListTasks(ctx, q)
					if err != nil {
						t.Fatalf("%+v: %v", q, err)
					}
					for _, tk := range page {
						got = append(got, tk.ID)
					}
					if len(page) < q.Limit {
						break
					}
					q.After = page[len(page)-1]
				}
				if !slices.Equal(got, want) {
					t.Fatalf("sort %q %q %+v:\n got %v\nwant %v", key, dir, q, got, want)
				}
			}
		}
	}
	_, err := s.ListTasks(ctx, imaged.TaskQuery{SortKey: "owner", Limit: 1})
	wantCode(t, err, imaged.EINVALID)
}
