package catalog_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/imagecache"
)

// cacheEnv is a catalog with a real blob store and an image cache.
func cacheEnv(t *testing.T, mode string, max int64) (*dataEnv, *imagecache.Cache) {
	t.Helper()
	e := newDataEnv(t, mode, catalog.DefaultConfig())
	c, err := imagecache.Open(filepath.Join(t.TempDir(), "cache"), max)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = e.svc.WithImageCache(c)
	return e, c
}

// activeImage uploads data to a new image of projA.
func (e *dataEnv) activeImage(data []byte) *imaged.Image {
	e.t.Helper()
	img := e.image("raw")
	out, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// runWorker runs the cache worker until the test ends.
func runWorker(t *testing.T, svc *catalog.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.RunImageCache(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitCached(t *testing.T, c *imagecache.Cache, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Has(id) {
		if time.Now().After(deadline) {
			t.Fatalf("image %s was not cached", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCacheQueueFillAndServe(t *testing.T) {
	t.Parallel()
	e, c := cacheEnv(t, "legacy", 1<<20)
	runWorker(t, e.svc)
	data := randomBytes(7, 4096)
	img := e.activeImage(data)
	if err := e.svc.QueueImage(as(admin), img.ID); err != nil {
		t.Fatal(err)
	}
	waitCached(t, c, img.ID)
	cached, queued, err := e.svc.CacheState(as(admin))
	if err != nil || len(cached) != 1 || cached[0].ImageID != img.ID || cached[0].Size != 4096 || len(queued) != 0 {
		t.Fatalf("CacheState = %+v, %v, %v", cached, queued, err)
	}
	// Downloads come from the cache (a hit each), even once the blob is
	// gone from the store.
	for _, k := range e.blobKeys() {
		if err := e.blobs.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if got := download(t, e.svc, owner, img.ID, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("download from the cache differs")
	}
	if got := download(t, e.svc, owner, img.ID, 100, 10); !bytes.Equal(got, data[100:110]) {
		t.Fatal("ranged download from the cache differs")
	}
	if cached, _, _ := e.svc.CacheState(as(admin)); cached[0].Hits != 2 {
		t.Fatalf("hits = %d, want 2", cached[0].Hits)
	}
	if err := e.svc.DeleteCacheEntry(as(admin), img.ID); err != nil {
		t.Fatal(err)
	}
	if c.Has(img.ID) {
		t.Fatal("entry still cached after delete")
	}
}

func TestCacheRefusesRottenBytes(t *testing.T) {
	t.Parallel()
	e, c := cacheEnv(t, "legacy", 1<<20)
	img := e.activeImage(randomBytes(8, 2048))
	// Corrupt the stored bytes (same size): the worker must not cache them.
	keys := e.blobKeys()
	if len(keys) != 1 {
		t.Fatalf("blob keys %v", keys)
	}
	w, err := e.blobs.Create(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(9, 2048)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.QueueImage(as(admin), img.ID); err != nil {
		t.Fatal(err)
	}
	runWorker(t, e.svc)
	time.Sleep(200 * time.Millisecond)
	if c.Has(img.ID) {
		t.Fatal("corrupted bytes were cached")
	}
	if q := c.Queued(); len(q) != 1 || q[0] != img.ID {
		t.Fatalf("queue = %v, want the image still queued", q)
	}
}

func TestCacheAPIRules(t *testing.T) {
	t.Parallel()
	e, c := cacheEnv(t, "legacy", 1<<20)
	img := e.activeImage([]byte("abc"))
	queued := e.image("raw")
	unknown := "00000000-0000-0000-0000-000000000000"
	_, _, err := e.svc.CacheState(as(owner))
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete cache_list action.")
	wantErr(t, e.svc.QueueImage(as(owner), img.ID), imaged.EFORBIDDEN, "You are not authorized to complete cache_image action.")
	wantErr(t, e.svc.QueueImage(as(owner), unknown), imaged.ENOTFOUND, "Image "+unknown+" not found.")
	wantErr(t, e.svc.QueueImage(as(admin), unknown), imaged.ENOTFOUND, "Image "+unknown+" not found.")
	wantErr(t, e.svc.QueueImage(as(admin), queued.ID), imaged.EINVALID, "Only images with status active can be targeted for queueing")
	wantErr(t, e.svc.DeleteCacheEntry(as(admin), unknown), imaged.ENOTFOUND, "Image "+unknown+" not found.")
	wantErr(t, e.svc.DeleteCacheEntry(as(owner), img.ID), imaged.EFORBIDDEN, "You are not authorized to complete cache_delete action.")
	_, err = e.svc.ClearCache(as(owner), "foo")
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete cache_delete action.")
	_, err = e.svc.ClearCache(as(admin), "foo")
	wantErr(t, err, imaged.EINVALID, "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")

	// An id the catalog does not know may still be removed from the cache.
	if err := c.Fill(context.Background(), unknown, 1, strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.svc.DeleteCacheEntry(as(admin), unknown), "", "")
	if c.Has(unknown) {
		t.Fatal("unknown image still cached")
	}

	for _, tc := range []struct {
		target       string
		cache, queue int
	}{{"queue", -1, 1}, {"CACHE", 1, -1}, {"", 1, 1}} {
		if err := c.Fill(context.Background(), "img-x", 1, strings.NewReader("x"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Queue("img-y"); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.ClearCache(as(admin), tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if n := got.CacheDeleted; (tc.cache < 0) != (n == nil) || (n != nil && *n != tc.cache) {
			t.Fatalf("target %q: cache deleted %v", tc.target, n)
		}
		if n := got.QueueDeleted; (tc.queue < 0) != (n == nil) || (n != nil && *n != tc.queue) {
			t.Fatalf("target %q: queue deleted %v", tc.target, n)
		}
	}

	// Without a cache the API is Glance's 404, after the policy.
	plain := newDataEnv(t, "legacy", catalog.DefaultConfig())
	_, _, err = plain.svc.CacheState(as(admin))
	wantErr(t, err, imaged.ENOTFOUND, "Caching via API is not supported at this site.")
	_, _, err = plain.svc.CacheState(as(owner))
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete cache_list action.")
}
