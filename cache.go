package imaged

import (
	"context"
	"io"
	"time"
)

// Image cache policies (Glance's names; admins only by default, in both
// rule sets).
const (
	ActionCacheList   Action = "cache_list"
	ActionCacheImage  Action = "cache_image"
	ActionCacheDelete Action = "cache_delete"
)

// CachedImage is one image whose bytes the local image cache holds, as
// Glance's cache driver reports it.
type CachedImage struct {
	ImageID      string
	Hits         int64     // downloads served from the cache
	LastAccessed time.Time // last download from the cache (or the fill)
	LastModified time.Time // when the bytes were cached
	Size         int64
}

// Targets of ClearCache (Glance's x-image-cache-clear-target header).
const (
	CacheTargetBoth  = ""
	CacheTargetCache = "cache"
	CacheTargetQueue = "queue"
)

// CacheCleared is what ClearCache removed; a nil count was not asked for.
type CacheCleared struct {
	CacheDeleted *int
	QueueDeleted *int
}

// CacheService is Glance's image cache API (/v2/cache): a bounded local
// copy of image bytes that downloads are served from, filled in the
// background from the queue. The caller's identity comes from the context.
type CacheService interface {
	// CacheState returns the cached images (by image id) and the ids
	// queued for caching.
	CacheState(ctx context.Context) ([]CachedImage, []string, error)
	// QueueImage queues an active image for caching.
	QueueImage(ctx context.Context, imageID string) error
	// DeleteCacheEntry removes an image from the cache and the queue.
	DeleteCacheEntry(ctx context.Context, imageID string) error
	// ClearCache empties the cache, the queue or both (CacheTarget*).
	ClearCache(ctx context.Context, target string) (CacheCleared, error)
}

// ImageCacheSource reads an image's bytes to fill the cache: the reader,
// the expected size, and a check to run once the bytes are read (size and
// hashes), or an error.
type ImageCacheSource func(ctx context.Context, id string) (rc io.ReadCloser, size int64, verify func() error, err error)

// ImageCache is the local cache of image bytes behind CacheService
// (imagecache implements it on a local directory). Open is ENOTFOUND for
// an image it does not hold.
type ImageCache interface {
	Cached() []CachedImage
	Queued() []string
	Has(id string) bool
	IsQueued(id string) bool
	// Queue adds id to the queue; false when it is already cached,
	// being cached or queued.
	Queue(id string) (bool, error)
	Delete(id string) error
	DeleteQueued(id string) error
	DeleteAll() (int, error)
	DeleteAllQueued() (int, error)
	Open(id string, offset, length int64) (io.ReadCloser, error)
	// Run fills queued images from src until ctx ends.
	Run(ctx context.Context, src ImageCacheSource)
}
