package glanceapi_test

import (
	"regexp"
	"testing"
	"time"
)

var cacheEntryRe = regexp.MustCompile(`^\{"cached_images": \[\{"image_id": "([0-9a-f-]{36})", "hits": (\d+), "last_accessed": \d+\.\d+, "last_modified": \d+\.\d+, "size": 3\}\], "queued_images": \[\]\}$`)

func TestCacheAPI(t *testing.T) {
	t.Parallel()
	e := newLocationsEnv(t, false, false)
	id := newLocImage(t, e, alice)
	unknown := "00000000-0000-0000-0000-000000000000"
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	if r := e.do(t, req{method: "PUT", path: "/v2/images/" + id + "/file", token: alice, header: octet, body: "abc"}); r.status != 204 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		method, path, token string
		header              map[string]string
		status              int
		body                string
	}{
		{"GET", "/v2/cache", admin, nil, 200, `{"cached_images": [], "queued_images": []}`},
		{"GET", "/v2/cache", alice, nil, 403, "You are not authorized to complete cache_list action."},
		{"PUT", "/v2/cache/" + id, alice, nil, 403, "You are not authorized to complete cache_image action."},
		{"PUT", "/v2/cache/" + unknown, alice, nil, 404, "Image " + unknown + " not found."},
		{"DELETE", "/v2/cache/" + unknown, admin, nil, 404, "Image " + unknown + " not found."},
		{"DELETE", "/v2/cache/" + id, alice, nil, 403, "You are not authorized to complete cache_delete action."},
		{"DELETE", "/v2/cache", admin, map[string]string{"X-Image-Cache-Clear-Target": "foo"}, 400, "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string."},
		{"DELETE", "/v2/cache", alice, map[string]string{"X-Image-Cache-Clear-Target": "foo"}, 403, "You are not authorized to complete cache_delete action."},
	} {
		h := map[string]string{"Accept": "application/json"}
		for k, v := range tc.header {
			h[k] = v
		}
		r := e.do(t, req{method: tc.method, path: tc.path, token: tc.token, header: h})
		got := string(r.body)
		if r.status >= 400 {
			got = jsonErr(t, r)
		}
		if r.status != tc.status || got != tc.body {
			t.Errorf("%s %s as %s: %d %s", tc.method, tc.path, tc.token, r.status, r.body)
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v2/cache", "GET, DELETE"},
		{"GET", "/v2/cache/" + id, "DELETE, PUT"},
	} {
		if r := e.do(t, req{method: tc.method, path: tc.path, token: admin}); r.status != 405 || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q", tc.method, tc.path, r.status, r.header.Get("Allow"))
		}
	}

	r := e.do(t, req{method: "PUT", path: "/v2/cache/" + id, token: admin})
	if r.status != 202 || len(r.body) != 0 || r.header.Get("Content-Type") != "text/html; charset=UTF-8" {
		t.Fatalf("queue: %d %v %q", r.status, r.header, r.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = e.do(t, req{method: "GET", path: "/v2/cache", token: admin})
		if m := cacheEntryRe.FindSubmatch(r.body); m != nil {
			if string(m[1]) != id || string(m[2]) != "0" {
				t.Fatalf("cache state: %s", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("image never cached: %s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A download is served from the cache and counted.
	if r := e.do(t, req{method: "GET", path: "/v2/images/" + id + "/file", token: alice}); r.status != 200 || string(r.body) != "abc" {
		t.Fatalf("download: %d %q", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/cache", token: admin})
	if m := cacheEntryRe.FindSubmatch(r.body); m == nil || string(m[2]) != "1" {
		t.Fatalf("after a download: %s", r.body)
	}
	for _, target := range []string{"queue", "CACHE", ""} {
		r := e.do(t, req{method: "DELETE", path: "/v2/cache", token: admin, header: map[string]string{"X-Image-Cache-Clear-Target": target}})
		if r.status != 204 || len(r.body) != 0 {
			t.Fatalf("clear %q: %d %s", target, r.status, r.body)
		}
	}
	r = e.do(t, req{method: "GET", path: "/v2/cache", token: admin})
	if string(r.body) != `{"cached_images": [], "queued_images": []}` {
		t.Fatalf("after clearing: %s", r.body)
	}
	if r := e.do(t, req{method: "DELETE", path: "/v2/cache/" + id, token: admin}); r.status != 204 {
		t.Fatalf("delete entry: %d %s", r.status, r.body)
	}
}

// Without a cache directory the API is Glance's 404 (after the policy).
func TestCacheAPIWithoutCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.do(t, req{method: "GET", path: "/v2/cache", token: admin, header: jsonAccept}); r.status != 404 || jsonErr(t, r) != "Caching via API is not supported at this site." {
		t.Fatalf("admin: %d %s", r.status, r.body)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/cache", token: alice, header: jsonAccept}); r.status != 403 {
		t.Fatalf("alice: %d %s", r.status, r.body)
	}
}
