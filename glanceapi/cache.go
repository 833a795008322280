package glanceapi

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/imaged/imaged"
)

// The image cache API (Glance 25.1, API 2.14+): GET and DELETE /v2/cache,
// PUT and DELETE /v2/cache/{id}. The service decides everything (admins
// only, 404 when the site has no cache); these handlers shape the answers
// as Glance does: 200 with the state, 202 for a queued image, 204 with no
// body (not even the counts Glance computes) for the deletes.

// cacheService returns the cache surface, nil if the service has none.
func (a *api) cacheService(w http.ResponseWriter, r *http.Request) imaged.CacheService {
	cs, ok := a.svc.(imaged.CacheService)
	if !ok {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "Caching via API is not supported at this site."))
		return nil
	}
	return cs
}

// cacheState is GET /v2/cache.
func (a *api) cacheState(w http.ResponseWriter, r *http.Request) {
	cs := a.cacheService(w, r)
	if cs == nil {
		return
	}
	cached, queued, err := cs.CacheState(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte {
		b = append(b, `{"cached_images": [`...)
		for i, c := range cached {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, `{"image_id": `...)
			b = appendPyString(b, c.ImageID)
			b = append(b, `, "hits": `...)
			b = strconv.AppendInt(b, c.Hits, 10)
			b = append(b, `, "last_accessed": `...)
			b = appendEpochFloat(b, c.LastAccessed)
			b = append(b, `, "last_modified": `...)
			b = appendEpochFloat(b, c.LastModified)
			b = append(b, `, "size": `...)
			b = strconv.AppendInt(b, c.Size, 10)
			b = append(b, '}')
		}
		b = append(b, `], "queued_images": [`...)
		for i, id := range queued {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, id)
		}
		return append(b, "]}"...)
	})
}

// appendEpochFloat appends t as Python's repr of time.time(): seconds since
// the epoch as a float, as Glance's cache driver stores them.
func appendEpochFloat(b []byte, t time.Time) []byte {
	f := float64(t.UnixMicro()) / 1e6
	if f == math.Trunc(f) {
		b = strconv.AppendFloat(b, f, 'f', -1, 64)
		return append(b, ".0"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// queueImage is PUT /v2/cache/{id}: 202 with an empty text/html body.
func (a *api) queueImage(w http.ResponseWriter, r *http.Request) {
	cs := a.cacheService(w, r)
	if cs == nil {
		return
	}
	if err := cs.QueueImage(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// deleteCacheEntry is DELETE /v2/cache/{id}.
func (a *api) deleteCacheEntry(w http.ResponseWriter, r *http.Request) {
	cs := a.cacheService(w, r)
	if cs == nil {
		return
	}
	if err := cs.DeleteCacheEntry(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

// clearCache is DELETE /v2/cache with x-image-cache-clear-target.
func (a *api) clearCache(w http.ResponseWriter, r *http.Request) {
	cs := a.cacheService(w, r)
	if cs == nil {
		return
	}
	if _, err := cs.ClearCache(r.Context(), r.Header.Get("X-Image-Cache-Clear-Target")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}
