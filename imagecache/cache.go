// Package imagecache is a bounded local copy of image bytes, as Glance's
// image cache keeps one per API node: downloads are served from it, images
// are queued for caching (PUT /v2/cache/{id}) and a background worker fills
// them from the blob stores. Its size is capped: a fill evicts the least
// recently accessed images until the new one fits.
//
// Layout under the cache directory (everything survives a restart):
//
//	data/<image id>        the cached bytes (complete, verified)
//	data/<image id>.json   hits, last access, last modification, size
//	incomplete/<image id>  a fill in progress (removed at start-up)
//	queue/<image id>       an empty file per queued image; its mtime orders the queue
//
// Image ids name files, so the cache only accepts ids made of letters,
// digits and dashes (every imaged image id is a UUID).
package imagecache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// validID is what the cache accepts as a file name.
var validID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// ValidID reports whether id can be a cache entry.
func ValidID(id string) bool { return validID.MatchString(id) }

// entry is one cached image's record (the .json sidecar).
type entry struct {
	Hits         int64     `json:"hits"`
	LastAccessed time.Time `json:"last_accessed"`
	LastModified time.Time `json:"last_modified"`
	Size         int64     `json:"size"`
}

// Cache is a bounded directory of image bytes. It is safe for concurrent
// use.
type Cache struct {
	dir   string
	max   int64
	clock imaged.Clock
	log   *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	total   int64
	queue   map[string]time.Time // queued id -> when
	filling map[string]bool
	wake    chan struct{}
}

// Option configures a Cache.
type Option func(*Cache)

// WithClock makes the cache read the time from c (tests).
func WithClock(c imaged.Clock) Option { return func(x *Cache) { x.clock = c } }

// WithLogger makes the cache log to l.
func WithLogger(l *slog.Logger) Option { return func(x *Cache) { x.log = l } }

// Open opens (creating it if needed) the cache in dir, holding at most
// maxSize bytes (> 0). It reloads what a previous process cached and
// queued and drops incomplete fills.
func Open(dir string, maxSize int64, opts ...Option) (*Cache, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("imagecache: the size limit must be positive, got %d", maxSize)
	}
	c := &Cache{
		dir: dir, max: maxSize, clock: imaged.SystemClock{}, log: slog.Default(),
		entries: map[string]*entry{}, queue: map[string]time.Time{},
		filling: map[string]bool{}, wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(c)
	}
	for _, sub := range []string{"data", "incomplete", "queue"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("imagecache: %w", err)
		}
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the directory back into memory.
func (c *Cache) load() error {
	inc, err := os.ReadDir(filepath.Join(c.dir, "incomplete"))
	if err != nil {
		return fmt.Errorf("imagecache: %w", err)
	}
	for _, e := range inc {
		_ = os.Remove(filepath.Join(c.dir, "incomplete", e.Name()))
	}
	data, err := os.ReadDir(filepath.Join(c.dir, "data"))
	if err != nil {
		return fmt.Errorf("imagecache: %w", err)
	}
	for _, e := range data {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if ok || !ValidID(e.Name()) {
			continue
		}
		en, err := c.readMeta(id)
		if err != nil {
			// Bytes without a readable record: rebuild it from the file.
			fi, serr := os.Stat(c.dataPath(id))
			if serr != nil {
				continue
			}
			en = &entry{LastAccessed: fi.ModTime().UTC(), LastModified: fi.ModTime().UTC(), Size: fi.Size()}
		}
		c.entries[id] = en
		c.total += en.Size
	}
	q, err := os.ReadDir(filepath.Join(c.dir, "queue"))
	if err != nil {
		return fmt.Errorf("imagecache: %w", err)
	}
	for _, e := range q {
		if !ValidID(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			c.queue[e.Name()] = fi.ModTime()
		}
	}
	return nil
}

func (c *Cache) dataPath(id string) string { return filepath.Join(c.dir, "data", id) }
func (c *Cache) metaPath(id string) string { return filepath.Join(c.dir, "data", id+".json") }
func (c *Cache) queuePath(id string) string {
	return filepath.Join(c.dir, "queue", id)
}

func (c *Cache) readMeta(id string) (*entry, error) {
	b, err := os.ReadFile(c.metaPath(id))
	if err != nil {
		return nil, err
	}
	var en entry
	if err := json.Unmarshal(b, &en); err != nil {
		return nil, err
	}
	return &en, nil
}

// writeMeta persists an entry's record (temp file, rename: a crash leaves
// the old record or the new one).
func (c *Cache) writeMeta(id string, en entry) error {
	b, err := json.Marshal(en)
	if err != nil {
		return err
	}
	tmp := c.metaPath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, c.metaPath(id))
}

// Cache is the core's image cache.
var _ imaged.ImageCache = (*Cache)(nil)

// MaxSize is the cache's size limit in bytes.
func (c *Cache) MaxSize() int64 { return c.max }

// Size is the bytes the cache holds.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Cached returns the cached images, by image id.
func (c *Cache) Cached() []imaged.CachedImage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]imaged.CachedImage, 0, len(c.entries))
	for id, en := range c.entries {
		out = append(out, imaged.CachedImage{ImageID: id, Hits: en.Hits, LastAccessed: en.LastAccessed,
			LastModified: en.LastModified, Size: en.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ImageID < out[j].ImageID })
	return out
}

// Queued returns the queued image ids, oldest first.
func (c *Cache) Queued() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queuedLocked()
}

func (c *Cache) queuedLocked() []string {
	out := make([]string, 0, len(c.queue))
	for id := range c.queue {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := c.queue[out[i]], c.queue[out[j]]
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return out[i] < out[j]
	})
	return out
}

// Has reports whether id is cached.
func (c *Cache) Has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[id]
	return ok
}

// IsQueued reports whether id is queued.
func (c *Cache) IsQueued(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.queue[id]
	return ok
}

// Queue adds id to the queue and wakes the worker. It reports false when
// id is already cached, being cached or queued (as Glance's queue_image).
func (c *Cache) Queue(id string) (bool, error) {
	if !ValidID(id) {
		return false, imaged.Errorf(imaged.EINVALID, "Invalid image id for the cache: %q", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; ok || c.filling[id] {
		return false, nil
	}
	if _, ok := c.queue[id]; ok {
		return false, nil
	}
	f, err := os.Create(c.queuePath(id))
	if err != nil {
		return false, fmt.Errorf("imagecache: queue %s: %w", id, err)
	}
	_ = f.Close()
	now := c.clock.Now()
	_ = os.Chtimes(c.queuePath(id), now, now)
	c.queue[id] = now
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true, nil
}

// Delete removes id's cached bytes, if any.
func (c *Cache) Delete(id string) error {
	if !ValidID(id) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleteLocked(id)
}

func (c *Cache) deleteLocked(id string) error {
	en, ok := c.entries[id]
	if !ok {
		return nil
	}
	delete(c.entries, id)
	c.total -= en.Size
	// Readers that have the file open keep reading it (POSIX unlink).
	err := errors.Join(rmIfExists(c.dataPath(id)), rmIfExists(c.metaPath(id)))
	if err != nil {
		return fmt.Errorf("imagecache: delete %s: %w", id, err)
	}
	return nil
}

// DeleteQueued removes id from the queue, if there.
func (c *Cache) DeleteQueued(id string) error {
	if !ValidID(id) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.queue, id)
	return rmIfExists(c.queuePath(id))
}

// DeleteAll empties the cache and returns how many images it held.
func (c *Cache) DeleteAll() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	var errs []error
	for id := range c.entries {
		errs = append(errs, c.deleteLocked(id))
		n++
	}
	return n, errors.Join(errs...)
}

// DeleteAllQueued empties the queue and returns how many ids it held.
func (c *Cache) DeleteAllQueued() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	var errs []error
	for id := range c.queue {
		delete(c.queue, id)
		errs = append(errs, rmIfExists(c.queuePath(id)))
		n++
	}
	return n, errors.Join(errs...)
}

func rmIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Open reads length bytes (< 0: to the end) of id's cached bytes from
// offset and records a hit. ENOTFOUND when id is not cached.
func (c *Cache) Open(id string, offset, length int64) (io.ReadCloser, error) {
	c.mu.Lock()
	en, ok := c.entries[id]
	if !ok {
		c.mu.Unlock()
		return nil, imaged.Errorf(imaged.ENOTFOUND, "Image %s is not cached.", id)
	}
	f, err := os.Open(c.dataPath(id))
	if err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("imagecache: open %s: %w", id, err)
	}
	en.Hits++
	en.LastAccessed = c.clock.Now()
	rec := *en
	c.mu.Unlock()
	if err := c.writeMeta(id, rec); err != nil {
		c.log.Warn("recording an image cache hit", "image", id, "err", err)
	}
	if length < 0 {
		length = rec.Size - offset
	}
	return &section{SectionReader: io.NewSectionReader(f, offset, max(length, 0)), f: f}, nil
}

// section is a ranged read of an open file.
type section struct {
	*io.SectionReader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

// errTooBig: the image can never fit.
func (c *Cache) errTooBig(id string, size int64) error {
	return imaged.Errorf(imaged.ETOOLARGE, "Image %s (%d bytes) is larger than the image cache (%d bytes).", id, size, c.max)
}

// Fill caches id's bytes read from src, which must be exactly size bytes;
// verify, when not nil, checks them once read (the caller's hashes) and
// refuses them with an error. Least recently accessed images are evicted
// to make room. The queue entry of id is removed once it is cached.
func (c *Cache) Fill(ctx context.Context, id string, size int64, src io.Reader, verify func() error) error {
	if !ValidID(id) {
		return imaged.Errorf(imaged.EINVALID, "Invalid image id for the cache: %q", id)
	}
	if size > c.max {
		return c.errTooBig(id, size)
	}
	c.mu.Lock()
	if _, ok := c.entries[id]; ok || c.filling[id] {
		c.mu.Unlock()
		return nil
	}
	c.filling[id] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.filling, id)
		c.mu.Unlock()
	}()

	tmp := filepath.Join(c.dir, "incomplete", id)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, io.LimitReader(src, size+1)})
	if err != nil {
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}
	if n != size {
		return imaged.Errorf(imaged.ECONFLICT, "Image %s read %d bytes for the cache, expected %d.", id, n, size)
	}
	if verify != nil {
		if err := verify(); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.evictLocked(size); err != nil {
		return err
	}
	now := c.clock.Now()
	en := entry{LastAccessed: now, LastModified: now, Size: size}
	if err := c.writeMeta(id, en); err != nil {
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}
	if err := os.Rename(tmp, c.dataPath(id)); err != nil {
		_ = rmIfExists(c.metaPath(id))
		return fmt.Errorf("imagecache: fill %s: %w", id, err)
	}
	done = true
	c.entries[id] = &en
	c.total += size
	delete(c.queue, id)
	_ = rmIfExists(c.queuePath(id))
	return nil
}

// evictLocked removes least recently accessed images until need more
// bytes fit.
func (c *Cache) evictLocked(need int64) error {
	if c.total+need <= c.max {
		return nil
	}
	ids := make([]string, 0, len(c.entries))
	for id := range c.entries {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return c.entries[a].LastAccessed.Compare(c.entries[b].LastAccessed)
	})
	for _, id := range ids {
		if c.total+need <= c.max {
			break
		}
		c.log.Info("evicting an image from the image cache", "image", id, "size", c.entries[id].Size)
		if err := c.deleteLocked(id); err != nil {
			return err
		}
	}
	return nil
}

// Source opens the bytes of an image for the worker: the reader, its size
// and a verification to run once all bytes were read.
type Source = imaged.ImageCacheSource

// Run fills queued images, oldest first, from src until ctx ends. A fill
// that fails leaves the image queued (as Glance's prefetcher does); it is
// tried again when the image is queued again or at the next start.
func (c *Cache) Run(ctx context.Context, src Source) {
	tried := map[string]bool{}
	for {
		var next string
		c.mu.Lock()
		for _, id := range c.queuedLocked() {
			if !tried[id] {
				next = id
				break
			}
		}
		c.mu.Unlock()
		if next == "" {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
				// A new queue entry: failed ones get another chance too.
				clear(tried)
				continue
			}
		}
		tried[next] = true
		if err := c.fillFrom(ctx, next, src); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("caching an image failed; it stays queued", "image", next, "err", err)
		}
	}
}

func (c *Cache) fillFrom(ctx context.Context, id string, src Source) error {
	if c.Has(id) {
		return c.DeleteQueued(id)
	}
	rc, size, verify, err := src(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	return c.Fill(ctx, id, size, rc, verify)
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
