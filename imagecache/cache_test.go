package imagecache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/imagecache"
)

// tick is a clock that advances one second per reading, so that access
// order is unambiguous.
type tick struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tick) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func open(t *testing.T, dir string, max int64) *imagecache.Cache {
	t.Helper()
	c, err := imagecache.Open(dir, max, imagecache.WithClock(&tick{t: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fill(t *testing.T, c *imagecache.Cache, id string, n int) {
	t.Helper()
	if err := c.Fill(context.Background(), id, int64(n), bytes.NewReader(bytes.Repeat([]byte{'x'}, n)), nil); err != nil {
		t.Fatalf("fill %s: %v", id, err)
	}
}

func read(t *testing.T, c *imagecache.Cache, id string, off, n int64) string {
	t.Helper()
	rc, err := c.Open(id, off, n)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ids(c *imagecache.Cache) string {
	var out []string
	for _, e := range c.Cached() {
		out = append(out, e.ImageID)
	}
	return strings.Join(out, ",")
}

func TestFillEvictsLeastRecentlyAccessed(t *testing.T) {
	t.Parallel()
	c := open(t, t.TempDir(), 100)
	fill(t, c, "a", 40)
	fill(t, c, "b", 40)
	_ = read(t, c, "a", 0, -1) // a is now more recent than b
	fill(t, c, "c", 40)        // needs 20 more bytes: b goes
	if got := ids(c); got != "a,c" {
		t.Fatalf("cached after eviction = %s, want a,c", got)
	}
	if c.Size() != 80 {
		t.Fatalf("size = %d, want 80", c.Size())
	}
	// An image larger than the cache is refused, nothing evicted.
	err := c.Fill(context.Background(), "d", 101, bytes.NewReader(make([]byte, 101)), nil)
	if imaged.ErrorCode(err) != imaged.ETOOLARGE {
		t.Fatalf("oversized fill: %v", err)
	}
	if got := ids(c); got != "a,c" {
		t.Fatalf("cached after refused fill = %s", got)
	}
}

func TestHitsRangesAndReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := open(t, dir, 1000)
	if err := c.Fill(context.Background(), "img-1", 10, strings.NewReader("0123456789"), nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c, "img-1", 3, 4); got != "3456" {
		t.Fatalf("range read = %q", got)
	}
	if got := read(t, c, "img-1", 5, -1); got != "56789" {
		t.Fatalf("tail read = %q", got)
	}
	e := c.Cached()[0]
	if e.Hits != 2 || !e.LastAccessed.After(e.LastModified) || e.Size != 10 {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := c.Queue("img-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Queue("img-3"); err != nil {
		t.Fatal(err)
	}
	// A fill in progress when the process died is dropped at start-up.
	if err := os.WriteFile(filepath.Join(dir, "incomplete", "img-4"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := open(t, dir, 1000)
	if got := c2.Cached(); len(got) != 1 || got[0].Hits != 2 || got[0].Size != 10 {
		t.Fatalf("reloaded entries = %+v", got)
	}
	if got := strings.Join(c2.Queued(), ","); got != "img-2,img-3" {
		t.Fatalf("reloaded queue = %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "incomplete", "img-4")); !os.IsNotExist(err) {
		t.Fatalf("incomplete fill survived a restart: %v", err)
	}
}

func TestQueueAndDelete(t *testing.T) {
	t.Parallel()
	c := open(t, t.TempDir(), 1000)
	for _, tc := range []struct {
		id   string
		want bool
	}{{"q1", true}, {"q1", false}, {"q2", true}} {
		ok, err := c.Queue(tc.id)
		if err != nil || ok != tc.want {
			t.Fatalf("Queue(%s) = %v, %v; want %v", tc.id, ok, err, tc.want)
		}
	}
	fill(t, c, "q1", 5) // filling removes the queue entry
	if got := strings.Join(c.Queued(), ","); got != "q2" {
		t.Fatalf("queue after fill = %s", got)
	}
	if ok, _ := c.Queue("q1"); ok {
		t.Fatal("a cached image was queued again")
	}
	if _, err := c.Queue("../etc"); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("queue of a path: %v", err)
	}
	if n, err := c.DeleteAllQueued(); n != 1 || err != nil {
		t.Fatalf("DeleteAllQueued = %d, %v", n, err)
	}
	if n, err := c.DeleteAll(); n != 1 || err != nil || c.Size() != 0 {
		t.Fatalf("DeleteAll = %d, %v (size %d)", n, err, c.Size())
	}
	if _, err := c.Open("q1", 0, -1); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("open after delete: %v", err)
	}
}

func TestFillRefusesBadBytes(t *testing.T) {
	t.Parallel()
	c := open(t, t.TempDir(), 1000)
	ctx := context.Background()
	if err := c.Fill(ctx, "short", 10, strings.NewReader("abc"), nil); imaged.ErrorCode(err) != imaged.ECONFLICT {
		t.Fatalf("short source: %v", err)
	}
	if err := c.Fill(ctx, "long", 2, strings.NewReader("abc"), nil); imaged.ErrorCode(err) != imaged.ECONFLICT {
		t.Fatalf("long source: %v", err)
	}
	bad := errors.New("hash mismatch")
	if err := c.Fill(ctx, "rotten", 3, strings.NewReader("abc"), func() error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("verify failure: %v", err)
	}
	if len(c.Cached()) != 0 {
		t.Fatalf("refused fills were cached: %+v", c.Cached())
	}
}

func TestWorkerFillsQueue(t *testing.T) {
	t.Parallel()
	c := open(t, t.TempDir(), 1000)
	var mu sync.Mutex
	calls := map[string]int{}
	src := func(ctx context.Context, id string) (io.ReadCloser, int64, func() error, error) {
		mu.Lock()
		calls[id]++
		mu.Unlock()
		if id == "broken" {
			return nil, 0, nil, errors.New("no such bytes")
		}
		return io.NopCloser(strings.NewReader("data-" + id)), int64(len("data-" + id)), nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, src) }()
	for _, id := range []string{"w1", "broken", "w2"} {
		if _, err := c.Queue(id); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(c.Has("w1") && c.Has("w2")) {
		if time.Now().After(deadline) {
			t.Fatalf("worker did not fill the queue: %s", ids(c))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := read(t, c, "w2", 0, -1); got != "data-w2" {
		t.Fatalf("w2 = %q", got)
	}
	// The failed image stays queued, as with Glance's prefetcher.
	if got := strings.Join(c.Queued(), ","); got != "broken" {
		t.Fatalf("queue after the worker = %q", got)
	}
}

func TestOpenRejectsBadLimit(t *testing.T) {
	t.Parallel()
	if _, err := imagecache.Open(t.TempDir(), 0); err == nil {
		t.Fatal("a zero size limit was accepted")
	}
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"", "a", "../x", "2c524311-a006-4c47-a1cb-d6917c7dce13", strings.Repeat("a", 65), "a/b", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !imagecache.ValidID(id) {
			return
		}
		// A valid id is a plain file name.
		if id == "." || id == ".." || strings.ContainsAny(id, "/\\\x00") || filepath.Base(id) != id {
			t.Fatalf("ValidID accepted %q", id)
		}
	})
}
