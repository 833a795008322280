// Package nativeapi serves imaged's own HTTP API, /api/v1: the container
// catalog (registries, container images, aliases), its background tasks
// (with a server-sent event stream) and the audit log. It decodes and
// checks requests, calls an imaged.ContainerService for every business
// rule and renders JSON with snake_case fields. The API is described by an
// OpenAPI 3.0.3 document (openapi.json, embedded and served as-is); the
// tests keep the routes and the document from drifting apart.
package nativeapi

import (
	"crypto/rand"
	_ "embed" // openapi.json
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Config configures the API handler.
type Config struct {
	Containers imaged.ContainerService // required
	Auth       imaged.Authenticator    // required
	Logger     *slog.Logger            // nil = slog.Default()
	// MaxBodyBytes caps JSON request bodies (413 beyond); 0 = 1 MiB.
	MaxBodyBytes int64
	// AuthURI is the identity endpoint announced in the WWW-Authenticate
	// header of a 401 (Keystone uri="..."); "" announces the scheme only.
	AuthURI string
	// DefaultLimit and MaxLimit bound list pages; 0 = 25 and 1000.
	DefaultLimit int
	MaxLimit     int
	// KeepAlive is the interval of the comments that keep an event stream
	// open through idle proxies; 0 = 15 s.
	KeepAlive time.Duration
	// Agents, when set, fills installed_agents of container images
	// (nil: always []).
	Agents imaged.AgentService
	// OpenAPIFragments are OpenAPI documents of handlers mounted next to
	// this one under /api/v1 (agentapi); their paths and components are
	// merged into the served document so that clients see one API.
	OpenAPIFragments [][]byte
}

// OpenAPI is the OpenAPI 3.0.3 document of the API, as GET
// /api/v1/openapi.json serves it.
//
//go:embed openapi.json
var OpenAPI []byte

// Prefix is the path every route of the API starts with.
const Prefix = "/api/v1"

// api is the handler New returns.
type api struct {
	cfg    Config
	svc    imaged.ContainerService
	doc    []byte // the served OpenAPI document
	log    *slog.Logger
	mux    *http.ServeMux
	routes map[string][]string // pattern → methods, for 405s and the drift test
}

// New returns the HTTP handler of the native API. Mount it at the server's
// root: it answers every path under /api/v1.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.DefaultLimit <= 0 {
		cfg.DefaultLimit = 25
	}
	if cfg.MaxLimit <= 0 {
		cfg.MaxLimit = 1000
	}
	if cfg.DefaultLimit > cfg.MaxLimit {
		cfg.DefaultLimit = cfg.MaxLimit
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	a := &api{cfg: cfg, svc: cfg.Containers, log: cfg.Logger, mux: http.NewServeMux(), routes: map[string][]string{}, doc: OpenAPI}
	if len(cfg.OpenAPIFragments) > 0 {
		doc, err := mergeOpenAPI(OpenAPI, cfg.OpenAPIFragments...)
		if err != nil {
			// The fragments are embedded documents checked by their
			// own tests; a bad one is a programming error.
			cfg.Logger.Error("cannot merge OpenAPI fragments; serving the containers API's document alone", "err", err)
		} else {
			a.doc = doc
		}
	}
	a.register()
	return a
}

// mergeOpenAPI adds the paths and components of each fragment to base.
func mergeOpenAPI(base []byte, fragments ...[]byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, err
	}
	for _, f := range fragments {
		var frag map[string]any
		if err := json.Unmarshal(f, &frag); err != nil {
			return nil, err
		}
		for _, key := range []string{"paths", "components"} {
			src, _ := frag[key].(map[string]any)
			dst, _ := doc[key].(map[string]any)
			if dst == nil {
				dst = map[string]any{}
				doc[key] = dst
			}
			for k, v := range src {
				if key == "components" {
					// components has sections (schemas, responses, ...).
					sec, _ := dst[k].(map[string]any)
					if sec == nil {
						sec = map[string]any{}
						dst[k] = sec
					}
					vm, _ := v.(map[string]any)
					for name, def := range vm {
						sec[name] = def
					}
					continue
				}
				dst[k] = v
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// method binds an HTTP method to the handler of one route.
type method struct {
	name string
	h    http.HandlerFunc
}

// handle registers a path with its methods. The route answers other
// methods itself (405 with Allow, in the API's error format), so that the
// mux's plain-text answers never reach a client, and a literal path such as
// /container-images/scan answers 405 to a GET rather than falling through
// to /container-images/{id}.
func (a *api) handle(pattern string, ms ...method) {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	a.routes[pattern] = names
	allow := strings.Join(names, ", ")
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		for _, m := range ms {
			if m.name == r.Method {
				m.h(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		a.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: "Method " + r.Method + " is not allowed here; allowed: " + allow + "."})
	})
}

func (a *api) register() {
	get := func(h http.HandlerFunc) method { return method{http.MethodGet, h} }
	post := func(h http.HandlerFunc) method { return method{http.MethodPost, h} }
	put := func(h http.HandlerFunc) method { return method{http.MethodPut, h} }
	del := func(h http.HandlerFunc) method { return method{http.MethodDelete, h} }
	patch := func(h http.HandlerFunc) method { return method{http.MethodPatch, h} }
	p := Prefix

	a.handle(p+"/openapi.json", get(a.openAPI))

	a.handle(p+"/registries", get(a.listRegistries), post(a.createRegistry))
	a.handle(p+"/registries/{name}", get(a.getRegistry), patch(a.updateRegistry), del(a.deleteRegistry))
	a.handle(p+"/registries/{name}/rescan", post(a.rescanRegistry))

	a.handle(p+"/container-images", get(a.listImages))
	a.handle(p+"/container-images/resolve", get(a.resolveImage))
	a.handle(p+"/container-images/scan", post(a.scanImage))
	a.handle(p+"/container-images/forget", post(a.forgetByReference))
	// The bulk operations are three literal paths: a {op} wildcard would
	// conflict with {id}/forget and its siblings in the mux.
	for _, op := range []string{"forget", "restore", "purge"} {
		a.handle(p+"/container-images/bulk/"+op, post(a.bulk(op)))
	}
	a.handle(p+"/container-images/{id}", get(a.getImage), patch(a.modifyImage), del(a.purgeImage))
	a.handle(p+"/container-images/{id}/forget", post(a.forgetImage))
	a.handle(p+"/container-images/{id}/restore", post(a.restoreImage))
	a.handle(p+"/container-images/{id}/untag", post(a.untagImage))
	a.handle(p+"/container-images/{id}/resource-limits", put(a.setLimits), del(a.clearLimits))

	a.handle(p+"/aliases", get(a.listAliases))
	// Alias names may hold "/" (and ":"): the wildcard takes the rest of
	// the path, decoded.
	a.handle(p+"/aliases/{alias...}", put(a.putAlias), del(a.deleteAlias))

	a.handle(p+"/tasks/{id}", get(a.getTask))
	a.handle(p+"/tasks/{id}/events", get(a.taskEvents))

	a.handle(p+"/audit", get(a.listAudit))

	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "No such endpoint: %s %s.", r.Method, r.URL.Path))
	})
}

// routeList returns the registered routes as "METHOD pattern", sorted.
func (a *api) routeList() []string {
	var out []string
	for p, ms := range a.routes {
		for _, m := range ms {
			out = append(out, m+" "+p)
		}
	}
	sort.Strings(out)
	return out
}

func (a *api) openAPI(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, r, http.StatusOK, a.doc)
}

// statusWriter records what a handler wrote, for the access log and for
// the panic handler (which can only send a 500 if nothing was sent yet).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer (the
// event stream flushes and lifts the write deadline through it).
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// ServeHTTP assigns the request id, logs, recovers panics, authenticates
// and dispatches.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestID(r.Header.Get("X-Request-Id"), r.Header.Get("X-Openstack-Request-Id"))
	h := w.Header()
	h.Set("X-Request-Id", rid)
	h.Set("X-Openstack-Request-Id", rid)
	ctx := imaged.NewContextWithRequestID(r.Context(), rid)
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.ErrorContext(ctx, "panic", slog.String("request_id", rid), slog.Any("panic", p))
			if sw.status == 0 {
				a.writeError(sw, r, imaged.Errorf(imaged.EINTERNAL, "Internal error."))
			}
		}
		// The path only: query strings and bodies may carry secrets
		// (passwords of registries), headers carry tokens.
		a.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", rid),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)))
	}()
	a.serve(sw, r)
}

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == Prefix+"/openapi.json" {
		// Public: clients read the description before they hold a token.
		a.mux.ServeHTTP(w, r)
		return
	}
	id, err := a.cfg.Auth.Authenticate(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		if imaged.ErrorCode(err) == imaged.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", a.challenge())
		}
		a.writeError(w, r, err)
		return
	}
	if id == nil {
		w.Header().Set("WWW-Authenticate", a.challenge())
		a.writeError(w, r, imaged.Errorf(imaged.EUNAUTHORIZED, "Authentication required."))
		return
	}
	r = r.WithContext(imaged.NewContextWithIdentity(r.Context(), id))
	a.mux.ServeHTTP(w, r)
}

// challenge is the WWW-Authenticate of a 401, as keystonemiddleware sends
// it.
func (a *api) challenge() string {
	if a.cfg.AuthURI == "" {
		return "Keystone"
	}
	return `Keystone uri="` + a.cfg.AuthURI + `"`
}

// requestID keeps the first client request id that is short and made of
// safe characters (so it cannot forge log lines), adding "req-" as Glance
// does; otherwise it makes a new "req-<uuid>".
func requestID(ins ...string) string {
	for _, in := range ins {
		if in == "" || len(in) > 64 {
			continue
		}
		ok := true
		for i := 0; i < len(in); i++ {
			c := in[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				ok = false
				break
			}
		}
		if ok {
			if strings.HasPrefix(in, "req-") {
				return in
			}
			return "req-" + in
		}
	}
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return "req-" + string(b[:])
}
