// Package glanceapi serves the OpenStack Image API v2 as Glance 25.1 (API
// 2.16) does: the same routes, status codes, headers and JSON shapes, so that
// glanceclient, the openstack CLI and gophercloud work unchanged. It decodes
// requests, checks their shape, calls an imaged.ImageService for every
// business rule, and renders Glance's responses and error bodies.
package glanceapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// Config configures the API handler.
type Config struct {
	Images imaged.ImageService  // required
	Auth   imaged.Authenticator // required
	Logger *slog.Logger         // nil = slog.Default()
	// MaxBodyBytes caps JSON request bodies (413 beyond); 0 = 1 MiB.
	MaxBodyBytes int64
	// AuthURI is the identity endpoint announced in the WWW-Authenticate
	// header of a 401 (Keystone uri="..."); "" announces the scheme only.
	AuthURI string
	// ImportMethods, when not empty, are announced in the
	// OpenStack-image-import-methods header of a create response, as
	// Glance does for its enabled_import_methods.
	ImportMethods []string
	// DefaultLimit and MaxLimit are Glance's limit_param_default (25)
	// and api_limit_max (1000); 0 = those defaults. MaxLimit should not
	// exceed the service's own cap, or "next" links go missing.
	DefaultLimit int
	MaxLimit     int
	// Metadefs serves the metadata definitions API (/v2/metadefs); nil
	// answers those routes with 501.
	Metadefs imaged.MetadefService
}

// api is the handler New returns.
type api struct {
	cfg Config
	svc imaged.ImageService
	log *slog.Logger
	mux *http.ServeMux
	// bufs recycles response buffers (*[]byte).
	bufs sync.Pool
}

// New returns the HTTP handler of the Image API.
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
	a := &api{cfg: cfg, svc: cfg.Images, log: cfg.Logger, mux: http.NewServeMux()}
	a.routes()
	return a
}

// methodHandler binds an HTTP method to a handler of one route.
type methodHandler struct {
	method string
	h      http.HandlerFunc
}

// handle registers a path with its methods. The route answers other
// methods itself (405 with Allow in Glance's order and error format), so the
// mux's plain-text 404/405 never reach a client.
func (a *api) handle(pattern string, ms ...methodHandler) {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.method
	}
	allow := strings.Join(names, ", ")
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		for _, m := range ms {
			if m.method == r.Method {
				m.h(w, r)
				return
			}
		}
		writeAPIError(w, r, &apiError{status: http.StatusMethodNotAllowed, text: r.Method, tmpl: tmpl405,
			header: http.Header{"Allow": {allow}}})
	})
}

func (a *api) routes() {
	get := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodGet, h} }
	post := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodPost, h} }
	put := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodPut, h} }
	del := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodDelete, h} }
	patch := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodPatch, h} }

	a.handle("/v2/images", get(a.listImages), post(a.createImage))
	a.handle("/v2/images/{id}", get(a.getImage), patch(a.updateImage), del(a.deleteImage))
	a.handle("/v2/images/{id}/members", get(a.listMembers), post(a.addMember))
	a.handle("/v2/images/{id}/members/{member}", get(a.getMember), put(a.updateMember), del(a.deleteMember))
	a.handle("/v2/images/{id}/tags/{tag}", put(a.addTag), del(a.deleteTag))
	a.handle("/v2/images/{id}/actions/deactivate", post(a.deactivate))
	a.handle("/v2/images/{id}/actions/reactivate", post(a.reactivate))
	for _, s := range []string{"image", "images", "member", "members"} {
		body := schemaBody(s)
		a.handle("/v2/schemas/"+s, get(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, body)
		}))
	}

	a.handle("/v2/images/{id}/file", get(a.downloadImage), put(a.withStore(a.uploadImage)))
	a.mux.HandleFunc("/v2/info/usage", a.getUsage)

	// Import, tasks and metadefs come with a later milestone.
	ni := a.notImplemented
	a.handle("/v2/images/{id}/stage", put(a.withStore(a.stageImage)))
	a.handle("/v2/images/{id}/import", post(a.withStore(a.importImage)))
	a.handle("/v2/images/{id}/tasks", get(a.imageTasks))
	a.handle("/v2/info/import", get(a.infoImport))
	a.handle("/v2/info/stores", get(a.infoStores))
	a.handle("/v2/stores/{store}/{id}", del(a.deleteFromStore))
	a.handle("/v2/tasks", get(a.listTasks), post(a.createTask))
	a.handle("/v2/tasks/{task}", get(a.getTask), del(a.deleteTask))
	a.handle("/v2/cache", get(a.cacheState), del(a.clearCache))
	a.handle("/v2/cache/{id}", del(a.deleteCacheEntry), put(a.queueImage))
	for _, s := range []string{"task", "tasks"} {
		body := schemaBody(s)
		a.handle("/v2/schemas/"+s, get(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, body)
		}))
	}
	if a.cfg.Metadefs != nil {
		a.metadefRoutes()
	} else {
		a.mux.HandleFunc("/v2/schemas/metadefs/", ni)
		a.mux.HandleFunc("/v2/metadefs", ni)
		a.mux.HandleFunc("/v2/metadefs/", ni)
	}

	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, &apiError{status: http.StatusNotFound, text: defaultExplanation(http.StatusNotFound)})
	})
}

func (a *api) notImplemented(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, imaged.Errorf(imaged.ENOTIMPLEMENTED,
		"Not Implemented: %s %s is not available yet (import, tasks and metadefs come in a later release).",
		r.Method, r.URL.Path))
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

// ReadFrom hands a download's file to net/http's response writer, which
// sends it with sendfile(2) when the response has a Content-Length; without
// it io.Copy would move every byte through a user-space buffer.
func (sw *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := sw.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(sw.ResponseWriter, src)
	}
	sw.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

const vndMediaType = "application/vnd.openstack.images-"

// ServeHTTP assigns the request id, logs, recovers panics, negotiates the
// API version, authenticates and dispatches.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestID(r.Header.Get("X-Openstack-Request-Id"))
	w.Header().Set("X-Openstack-Request-Id", rid)
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
				writeAPIError(sw, r, &apiError{status: http.StatusInternalServerError,
					text: defaultExplanation(http.StatusInternalServerError)})
			}
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", rid))
	}()
	a.serve(sw, r)
}

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	// Version negotiation (Glance's VersionNegotiationFilter): comes
	// before authentication, so version documents need no token.
	seg, rest := splitVersion(r.URL.Path)
	if seg == "versions" {
		serveVersions(w, r, http.StatusOK)
		return
	}
	ver, rewrite, vnd := seg, seg != "v2", false
	if accept := r.Header.Get("Accept"); strings.HasPrefix(accept, vndMediaType) {
		// Media-type versioning: the path keeps its first segment.
		ver, rest, rewrite, vnd = accept[len(vndMediaType):], r.URL.Path, true, true
	}
	if !allowedVersion(ver) {
		serveVersions(w, r, http.StatusMultipleChoices)
		return
	}

	id, err := a.authenticate(r)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.EUNAUTHORIZED {
			writeAPIError(w, r, &apiError{status: http.StatusUnauthorized,
				text: defaultExplanation(http.StatusUnauthorized), header: a.authHeader()})
			return
		}
		a.writeError(w, r, err)
		return
	}
	r = r.WithContext(imaged.NewContextWithIdentity(r.Context(), id))

	if rest == "" {
		// Glance redirects /v2 to /v2/ (which then is a 404).
		h := w.Header()
		h.Set("Location", baseURL(r)+"/v2/")
		h.Set("Content-Type", "text/plain; charset=utf8")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusFound)
		return
	}
	if strings.Count(r.URL.Path, "/") != strings.Count(r.URL.EscapedPath(), "/") {
		// An escaped slash (%2F) in an id or tag: Glance routes on the
		// decoded path, where it splits the segment, and finds nothing.
		writeAPIError(w, r, &apiError{status: http.StatusNotFound, text: defaultExplanation(http.StatusNotFound)})
		return
	}
	if rewrite {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = "/v2" + rest
		if u.RawPath != "" {
			raw := u.RawPath
			if !vnd {
				_, raw = splitVersion(raw)
			}
			u.RawPath = "/v2" + raw
		}
		r2.URL = &u
		r = r2
	}
	a.mux.ServeHTTP(w, r)
}

// authHeader is the challenge of a 401, as keystonemiddleware sends it.
func (a *api) authHeader() http.Header {
	if a.cfg.AuthURI == "" {
		return http.Header{"Www-Authenticate": {"Keystone"}}
	}
	return http.Header{"Www-Authenticate": {`Keystone uri="` + a.cfg.AuthURI + `"`}}
}

// requestID keeps a client's request id, as Glance does (adding "req-" if
// missing), when it is short (Glance's max_request_id_length is 64) and made
// of safe characters, so it cannot forge log lines; otherwise it makes a
// new "req-<uuid>".
func requestID(in string) string {
	if in != "" && len(in) <= 64 {
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
	var b [40]byte
	copy(b[:], "req-")
	hex.Encode(b[4:12], u[0:4])
	b[12] = '-'
	hex.Encode(b[13:17], u[4:6])
	b[17] = '-'
	hex.Encode(b[18:22], u[6:8])
	b[22] = '-'
	hex.Encode(b[23:27], u[8:10])
	b[27] = '-'
	hex.Encode(b[28:40], u[10:16])
	return string(b[:])
}

// readJSON reads and decodes a JSON request body as Glance's
// JSONRequestDeserializer: no body → "Body expected in request.", bad JSON →
// "Malformed JSON in request body.", a scalar → "Unexpected body type.
// Expected list/dict.", too big → 413.
func (a *api) readJSON(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		return nil, invalid("Body expected in request.")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, imaged.Errorf(imaged.ETOOLARGE, "The body of your request was too large for this server.")
		}
		return nil, invalid("Malformed JSON in request body.")
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	switch v.(type) {
	case map[string]any, []any:
		return v, nil
	}
	return nil, invalid("Unexpected body type. Expected list/dict.")
}

// authenticate validates the request's token and, when the authenticator
// honours them (Keystone), its X-Service-Token, as keystonemiddleware does
// in front of Glance.
func (a *api) authenticate(r *http.Request) (*imaged.Identity, error) {
	token := r.Header.Get("X-Auth-Token")
	if svc := r.Header.Get("X-Service-Token"); svc != "" {
		if sa, ok := a.cfg.Auth.(imaged.ServiceAuthenticator); ok {
			return sa.AuthenticateWithService(r.Context(), token, svc)
		}
	}
	return a.cfg.Auth.Authenticate(r.Context(), token)
}
