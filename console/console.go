// Package console serves imaged's web console at /console/: one HTML page,
// one script and one style sheet, embedded in the binary (no build step).
// The page talks to the same server's APIs with the user's token
// (X-Auth-Token, kept in the tab's sessionStorage): it lists VM images
// (/v2/images) and container images (/api/v1/container-images), shows one,
// uploads a VM image through POST /api/v1/uploads with a progress bar,
// forgets, restores and purges container images, and follows a registry
// rescan by polling its task.
//
// Every answer carries a Content-Security-Policy that allows only this
// origin's scripts and styles (no inline code, so an injected string cannot
// run) and forbids framing, plus X-Content-Type-Options: nosniff.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// CSP is the Content-Security-Policy of every console answer.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the console: mount it at Prefix (and at "/console", which
// it redirects).
func Handler() http.Handler {
	assets := map[string]asset{}
	for name, ctype := range map[string]string{
		"index.html": "text/html; charset=utf-8",
		"app.js":     "text/javascript; charset=utf-8",
		"style.css":  "text/css; charset=utf-8",
	} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("console: missing embedded file " + name) // a build defect
		}
		sum := sha256.Sum256(b)
		assets[name] = asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		a, found := assets[name]
		if !ok || !found {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", a.ctype)
		// Revalidated on every load (the ETag makes that a 304): a new
		// binary's console is picked up at once.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
