package bgtask_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// countingStore is the real store, counting task writes.
type countingStore struct {
	*sqlstore.Store
	updates atomic.Int64
}

func (c *countingStore) UpdateTask(ctx context.Context, id string, fn func(*imaged.Task) error) (*imaged.Task, error) {
	c.updates.Add(1)
	return c.Store.UpdateTask(ctx, id, fn)
}

func openStore(t *testing.T, path string) *countingStore {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingStore{Store: st}
}

func newManager(t *testing.T, st imaged.TaskStore, poll time.Duration) *bgtask.Manager {
	t.Helper()
	m := bgtask.New(bgtask.Config{Store: st, PollInterval: poll, FlushInterval: 20 * time.Millisecond})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

func userCtx() context.Context {
	ctx := imaged.NewContextWithIdentity(context.Background(), &imaged.Identity{UserID: "u1", ProjectID: "p1", Roles: []string{"admin"}})
	return imaged.NewContextWithRequestID(ctx, "req-1")
}

// waitEnd watches a task to its end and returns every state seen.
func waitEnd(t *testing.T, m *bgtask.Manager, id string) []*imaged.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := m.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var seen []*imaged.Task
	for tk := range ch {
		seen = append(seen, tk)
	}
	if len(seen) == 0 || !bgtask.Ended(seen[len(seen)-1]) {
		t.Fatalf("watch ended without a final state (%d states, ctx %v)", len(seen), ctx.Err())
	}
	return seen
}

func TestTaskLifecycleOutlivesRequest(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	m := newManager(t, st, time.Hour) // local notifications only
	ctx, cancelReq := context.WithCancel(userCtx())
	release := make(chan struct{})
	tk, err := m.Start(ctx, bgtask.Spec{Type: imaged.TaskTypeRegistryRescan, Input: map[string]any{"registry": "r"}},
		func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
			<-release
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.AddTotal(3)
			r.Done(2)
			r.Error("repo:bad: invalid label")
			r.Done(1)
			return map[string]any{"created": 2}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != imaged.TaskPending || tk.UserID != "u1" || tk.RequestID != "req-1" || tk.Type != imaged.TaskTypeRegistryRescan {
		t.Fatalf("started task: %+v", tk)
	}
	cancelReq() // the client goes away: the task must go on
	close(release)
	seen := waitEnd(t, m, tk.ID)
	end := seen[len(seen)-1]
	if end.Status != imaged.TaskSuccess || end.ExpiresAt == nil {
		t.Fatalf("end: %+v", end)
	}
	got, err := st.GetTask(context.Background(), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Result["created"] != float64(2) {
		t.Errorf("result %v", got.Result)
	}
	if got.Progress != (imaged.TaskProgress{Done: 3, Total: 3}) {
		t.Errorf("progress %+v, want 3/3 persisted", got.Progress)
	}
	if len(got.Errors) != 1 || got.Errors[0] != "repo:bad: invalid label" {
		t.Errorf("errors %q", got.Errors)
	}
}

func TestTaskFailures(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	m := newManager(t, st, 50*time.Millisecond)
	cases := []struct {
		name    string
		timeout time.Duration
		fn      bgtask.Func
		msg     string
	}{
		{"error", 0, func(context.Context, imaged.TaskReporter) (map[string]any, error) {
			return nil, imaged.Errorf(imaged.EUNAVAILABLE, "registry r is unreachable")
		}, "registry r is unreachable"},
		{"internal", 0, func(context.Context, imaged.TaskReporter) (map[string]any, error) {
			return nil, errors.New("secret internal detail")
		}, "Internal error."},
		{"panic", 0, func(context.Context, imaged.TaskReporter) (map[string]any, error) {
			panic("boom")
		}, "Internal error."},
		{"timeout", 50 * time.Millisecond, func(ctx context.Context, _ imaged.TaskReporter) (map[string]any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, "The task ran out of time."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tk, err := m.Start(userCtx(), bgtask.Spec{Type: "test", Timeout: c.timeout}, c.fn)
			if err != nil {
				t.Fatal(err)
			}
			seen := waitEnd(t, m, tk.ID)
			end := seen[len(seen)-1]
			if end.Status != imaged.TaskFailure || end.Message != c.msg {
				t.Fatalf("got %s %q, want failure %q", end.Status, end.Message, c.msg)
			}
		})
	}
}

func TestStartRejectsBadSpec(t *testing.T) {
	t.Parallel()
	m := newManager(t, openStore(t, sqltest.SQLite(t)), 0)
	if _, err := m.Start(userCtx(), bgtask.Spec{}, nil); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("got %v", err)
	}
	if _, err := m.Watch(context.Background(), "nope"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("watch unknown: %v", err)
	}
}

// TestWatchAcrossProcesses: a second Manager over its own connection to
// the same database (another process) sees the progress by polling.
func TestWatchAcrossProcesses(t *testing.T) {
	t.Parallel()
	path := sqltest.SQLite(t)
	a := newManager(t, openStore(t, path), time.Hour)
	b := newManager(t, openStore(t, path), 30*time.Millisecond)
	step := make(chan struct{})
	tk, err := a.Start(userCtx(), bgtask.Spec{Type: "test"}, func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
		r.AddTotal(2)
		for range 2 {
			<-step
			r.Done(1)
			time.Sleep(80 * time.Millisecond) // longer than a flush and a poll
		}
		return map[string]any{"ok": true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := b.Watch(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	var dones []int64
	for st := range ch {
		if n := len(dones); n == 0 || dones[n-1] != st.Progress.Done {
			dones = append(dones, st.Progress.Done)
			if st.Progress.Done < 2 && !bgtask.Ended(st) {
				step <- struct{}{}
			}
		}
		if bgtask.Ended(st) && st.Status != imaged.TaskSuccess {
			t.Fatalf("ended %s %q", st.Status, st.Message)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("watch did not end")
	}
	if !slices.Equal(dones, []int64{0, 1, 2}) {
		t.Fatalf("progress seen by the other process: %v, want [0 1 2]", dones)
	}
}

// TestProgressIsThrottled: thousands of items make a handful of writes.
func TestProgressIsThrottled(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	m := bgtask.New(bgtask.Config{Store: st, FlushInterval: 250 * time.Millisecond})
	defer m.Close(context.Background())
	tk, err := m.Start(userCtx(), bgtask.Spec{Type: "test"}, func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
		deadline := time.Now().Add(600 * time.Millisecond)
		for time.Now().Before(deadline) {
			r.AddTotal(1)
			r.Done(1)
			r.Error("item: bad")
			time.Sleep(100 * time.Microsecond)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Wait()
	// start + at most ~3 flushes in 600 ms + end.
	if n := st.updates.Load(); n > 6 {
		t.Fatalf("%d task writes for 600 ms of progress; want <= 6", n)
	}
	got, err := st.GetTask(context.Background(), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress.Done < 100 || got.Progress.Done != got.Progress.Total {
		t.Fatalf("final progress %+v", got.Progress)
	}
	if len(got.Errors) != bgtask.MaxErrors && got.Progress.Done >= bgtask.MaxErrors {
		t.Fatalf("kept %d errors, want the cap %d", len(got.Errors), bgtask.MaxErrors)
	}
}

func TestCloseInterruptsAndRefuses(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	m := bgtask.New(bgtask.Config{Store: st})
	started := make(chan struct{})
	tk, err := m.Start(userCtx(), bgtask.Spec{Type: "test"}, func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetTask(context.Background(), tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != imaged.TaskFailure || !strings.Contains(got.Message, "shut down") {
		t.Fatalf("after close: %s %q", got.Status, got.Message)
	}
	if _, err := m.Start(userCtx(), bgtask.Spec{Type: "test"}, func(context.Context, imaged.TaskReporter) (map[string]any, error) { return nil, nil }); imaged.ErrorCode(err) != imaged.EUNAVAILABLE {
		t.Fatalf("start after close: %v", err)
	}
}

func TestRecoverAbandoned(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := imaged.ClockFunc(func() time.Time { return now })
	m := bgtask.New(bgtask.Config{Store: st, Clock: clock})
	defer m.Close(context.Background())
	ctx := context.Background()
	mk := func(id string, status imaged.TaskStatus, age time.Duration) {
		at := now.Add(-age)
		if err := st.CreateTask(ctx, &imaged.Task{ID: id, Type: imaged.TaskTypeRegistryRescan, Status: status, CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	mk("dead", imaged.TaskProcessing, time.Hour)
	mk("deadpending", imaged.TaskPending, time.Hour)
	mk("alive", imaged.TaskProcessing, time.Second)
	mk("done", imaged.TaskSuccess, time.Hour)
	n, err := m.RecoverAbandoned(ctx, []string{imaged.TaskTypeRegistryRescan}, time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("recovered %d, %v; want 2", n, err)
	}
	for id, want := range map[string]imaged.TaskStatus{"dead": imaged.TaskFailure, "deadpending": imaged.TaskFailure,
		"alive": imaged.TaskProcessing, "done": imaged.TaskSuccess} {
		got, err := st.GetTask(ctx, id)
		if err != nil || got.Status != want {
			t.Errorf("%s: %v %v, want %s", id, got.Status, err, want)
		}
	}
}

// TestManyWatchers: watchers of one task each get the final state, even
// when another watcher gives up early.
func TestManyWatchers(t *testing.T) {
	t.Parallel()
	st := openStore(t, sqltest.SQLite(t))
	m := newManager(t, st, time.Hour) // local wake-ups only
	release := make(chan struct{})
	tk, err := m.Start(userCtx(), bgtask.Spec{Type: "test"}, func(ctx context.Context, r imaged.TaskReporter) (map[string]any, error) {
		<-release
		r.AddTotal(1)
		r.Done(1)
		return map[string]any{"n": 1}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	early, cancel := context.WithCancel(context.Background())
	ch, err := m.Watch(early, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	cancel()
	done := make(chan *imaged.Task, 3)
	for range 3 {
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer wcancel()
		w, err := m.Watch(wctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var last *imaged.Task
			for s := range w {
				last = s
			}
			done <- last
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	for range 3 {
		if end := <-done; end == nil || end.Status != imaged.TaskSuccess || end.Progress.Done != 1 {
			t.Fatalf("watcher ended with %+v", end)
		}
	}
	for range ch { // the early watcher's channel is closed
	}
}
