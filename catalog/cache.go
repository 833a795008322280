package catalog

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/imaged/imaged"
)

// The image cache API (Glance 25.1's /v2/cache) over an imaged.ImageCache:
// admins only (cache_list, cache_image, cache_delete default to
// role:admin in both rule sets), checked in Glance's order: the image
// first where the request names one, then the policy, then whether the
// site has a cache at all. Downloads are served from the cache when it
// holds the image (Glance does so only with its cachemanagement
// middleware); the cache is filled by RunImageCache from the stores.

var _ imaged.CacheService = (*Service)(nil)

// WithImageCache returns a copy of s that serves downloads from c and
// answers the cache API with it.
func (s *Service) WithImageCache(c imaged.ImageCache) *Service {
	cp := *s
	cp.cache = c
	return &cp
}

// cacheEnforce is Glance's CacheController._enforce: the policy, then the
// cache's presence.
func (s *Service) cacheEnforce(ctx context.Context, action imaged.Action, img *imaged.Image) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	t := imaged.PolicyTarget{}
	if img != nil {
		t = target(id, img)
	}
	// The cache rules are role:admin; a policy that does not know them
	// denies them, so admins are let through here.
	if !s.pol.IsAdmin(id) && !s.pol.Allow(id, action, t) {
		return notAuthorized(action)
	}
	if s.cache == nil {
		return imaged.Errorf(imaged.ENOTFOUND, "Caching via API is not supported at this site.")
	}
	return nil
}

// CacheState is GET /v2/cache.
func (s *Service) CacheState(ctx context.Context) ([]imaged.CachedImage, []string, error) {
	if err := s.cacheEnforce(ctx, imaged.ActionCacheList, nil); err != nil {
		return nil, nil, err
	}
	return s.cache.Cached(), s.cache.Queued(), nil
}

// QueueImage is PUT /v2/cache/{id}: an active image the caller can see is
// queued and the worker is woken.
func (s *Service) QueueImage(ctx context.Context, imageID string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return notFound(err, "Image %s not found.", imageID)
	}
	if err := s.cacheEnforce(ctx, imaged.ActionCacheImage, img); err != nil {
		return err
	}
	if img.Status != imaged.StatusActive {
		return imaged.Errorf(imaged.EINVALID, "Only images with status active can be targeted for queueing")
	}
	if _, err := s.cache.Queue(imageID); err != nil {
		return fmt.Errorf("catalog: queue %s for caching: %w", imageID, err)
	}
	return nil
}

// DeleteCacheEntry is DELETE /v2/cache/{id}: an image unknown to the
// catalog may still be removed from the cache and the queue.
func (s *Service) DeleteCacheEntry(ctx context.Context, imageID string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		if !errors.Is(err, errNoImage) {
			return err
		}
		img = nil
		if s.cache == nil || (!s.cache.Has(imageID) && !s.cache.IsQueued(imageID)) {
			return imaged.Errorf(imaged.ENOTFOUND, "Image %s not found.", imageID)
		}
	}
	if err := s.cacheEnforce(ctx, imaged.ActionCacheDelete, img); err != nil {
		return err
	}
	if err := s.cache.Delete(imageID); err != nil {
		return err
	}
	return s.cache.DeleteQueued(imageID)
}

// ClearCache is DELETE /v2/cache: the target is checked after the policy,
// as Glance does.
func (s *Service) ClearCache(ctx context.Context, tgt string) (imaged.CacheCleared, error) {
	var out imaged.CacheCleared
	if err := s.cacheEnforce(ctx, imaged.ActionCacheDelete, nil); err != nil {
		return out, err
	}
	var doCache, doQueue bool
	switch strings.ToLower(tgt) {
	case imaged.CacheTargetBoth:
		doCache, doQueue = true, true
	case imaged.CacheTargetCache:
		doCache = true
	case imaged.CacheTargetQueue:
		doQueue = true
	default:
		return out, imaged.Errorf(imaged.EINVALID, "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")
	}
	if doCache {
		n, err := s.cache.DeleteAll()
		out.CacheDeleted = &n
		if err != nil {
			return out, fmt.Errorf("catalog: clear the image cache: %w", err)
		}
	}
	if doQueue {
		n, err := s.cache.DeleteAllQueued()
		out.QueueDeleted = &n
		if err != nil {
			return out, fmt.Errorf("catalog: clear the image cache queue: %w", err)
		}
	}
	return out, nil
}

// RunImageCache fills queued images from the stores until ctx ends (the
// background worker; cmd/imaged runs it when a cache is configured). The
// bytes are checked against the image's size, checksum and os_hash_value
// before they are cached.
func (s *Service) RunImageCache(ctx context.Context) {
	if s.cache == nil {
		return
	}
	s.cache.Run(ctx, s.cacheSource)
}

// cacheSource opens an active image's bytes for the cache worker.
func (s *Service) cacheSource(ctx context.Context, imageID string) (io.ReadCloser, int64, func() error, error) {
	img, err := s.store.GetImage(ctx, imageID)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("catalog: cache %s: %w", imageID, err)
	}
	if img.Status != imaged.StatusActive || img.Size == nil {
		return nil, 0, nil, imaged.Errorf(imaged.ECONFLICT, "Image %s is not active: not cached.", imageID)
	}
	var rc io.ReadCloser
	if key, blobs := s.readLocation(img); blobs != nil {
		rc, err = blobs.Open(ctx, key, 0, -1)
	} else if open := s.externalOpen(img); open != nil {
		rc, err = open(ctx, 0, -1)
	} else {
		return nil, 0, nil, imaged.Errorf(imaged.ECONFLICT, "Image %s has no readable location: not cached.", imageID)
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("catalog: cache %s: %w", imageID, err)
	}
	h := &hashingReader{r: rc, md5: md5.New(), sha: sha512.New()}
	verify := func() error {
		if img.Checksum != "" && hex.EncodeToString(h.md5.Sum(nil)) != img.Checksum {
			return imaged.Errorf(imaged.ECONFLICT, "The data of image %s does not match its checksum: not cached.", imageID)
		}
		if img.OSHashValue != "" && img.OSHashAlgo == hashAlgo && hex.EncodeToString(h.sha.Sum(nil)) != img.OSHashValue {
			return imaged.Errorf(imaged.ECONFLICT, "The data of image %s does not match its os_hash_value: not cached.", imageID)
		}
		return nil
	}
	return struct {
		io.Reader
		io.Closer
	}{h, rc}, *img.Size, verify, nil
}

// hashingReader hashes what is read through it.
type hashingReader struct {
	r        io.Reader
	md5, sha hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.md5.Write(p[:n])
		h.sha.Write(p[:n])
	}
	return n, err
}

// cachedOpen serves an image's bytes from the cache when it holds them
// (nil otherwise); an entry evicted between the check and the read falls
// back to the stores.
func (s *Service) cachedOpen(img *imaged.Image) func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if s.cache == nil || img.Size == nil || img.Status != imaged.StatusActive && img.Status != imaged.StatusDeactivated || !s.cache.Has(img.ID) {
		return nil
	}
	size := *img.Size
	return func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
		if offset < 0 || (offset >= size && !(offset == 0 && size == 0)) {
			return nil, imaged.Errorf(imaged.ERANGE, "Requested range not satisfiable")
		}
		if length < 0 || offset+length > size {
			length = size - offset
		}
		rc, err := s.cache.Open(img.ID, offset, length)
		if err == nil {
			return rc, nil
		}
		if key, blobs := s.readLocation(img); blobs != nil {
			return blobs.Open(ctx, key, offset, length)
		}
		if open := s.externalOpen(img); open != nil {
			return open(ctx, offset, length)
		}
		return nil, fmt.Errorf("catalog: read data of %s: %w", img.ID, err)
	}
}
