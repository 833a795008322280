// Package agentapi serves the node-agent part of imaged's native API,
// /api/v1/agents, over an imaged.AgentService, with nativeapi's
// conventions (X-Auth-Token through an imaged.Authenticator, request ids
// echoed in X-Request-Id, JSON errors {"error": {code, message,
// request_id}}). Agents themselves call its register and heartbeat
// endpoints with their own token in X-Agent-Token instead.
//
//	POST /api/v1/agents/{id}/register      agent token
//	POST /api/v1/agents/{id}/heartbeat     agent token
//	GET  /api/v1/agents                    admin
//	GET  /api/v1/agents/{id}               admin
//	PUT  /api/v1/agents/{id}/token         admin
//	POST /api/v1/agents/purge-images       admin, 202 + task
//	POST /api/v1/agents/preload-images     admin, 202 + task
//
// OpenAPI returns the OpenAPI 3.0.3 fragment (paths and components) of
// these routes, to be merged into nativeapi's document.
package agentapi

import (
	"bytes"
	"crypto/rand"
	_ "embed" // openapi.json
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.0.3 fragment of the agent routes: a
// document with "paths" and "components" to merge into nativeapi's.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// Prefix is the path every route starts with.
const Prefix = "/api/v1/agents"

// Config configures the handler.
type Config struct {
	Agents imaged.AgentService  // required
	Auth   imaged.Authenticator // required
	Logger *slog.Logger         // nil = slog.Default()
	// MaxBodyBytes caps request bodies (413 beyond); 0 = 8 MiB (a
	// heartbeat carries a whole inventory).
	MaxBodyBytes int64
}

type api struct {
	cfg    Config
	svc    imaged.AgentService
	log    *slog.Logger
	mux    *http.ServeMux
	routes map[string][]string
}

// New returns the handler; mount it at /api/v1/agents and /api/v1/agents/.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	a := &api{cfg: cfg, svc: cfg.Agents, log: cfg.Logger, mux: http.NewServeMux(), routes: map[string][]string{}}
	a.register()
	return a
}

type method struct {
	name string
	h    http.HandlerFunc
}

// handle registers a route that answers other methods with a 405 in the
// API's error format.
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
	p := Prefix
	a.handle(p, get(a.list))
	a.handle(p+"/purge-images", post(a.fanOut(a.svc.PurgeImages)))
	a.handle(p+"/preload-images", post(a.fanOut(a.svc.PreloadImages)))
	a.handle(p+"/{id}", get(a.get))
	a.handle(p+"/{id}/token", put(a.putToken))
	a.handle(p+"/{id}/register", post(a.beat))
	a.handle(p+"/{id}/heartbeat", post(a.beat))
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "No such endpoint: %s %s.", r.Method, r.URL.Path))
	})
}

// agentAuthenticated reports whether a path is one an agent calls with
// its own token.
func agentAuthenticated(path string) bool {
	rest, ok := strings.CutPrefix(path, Prefix+"/")
	if !ok {
		return false
	}
	id, tail, ok := strings.Cut(rest, "/")
	return ok && id != "" && (tail == "register" || tail == "heartbeat")
}

// ServeHTTP assigns the request id, logs, recovers panics, authenticates
// and dispatches.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestID(r.Header.Get("X-Request-Id"), r.Header.Get("X-Openstack-Request-Id"))
	w.Header().Set("X-Request-Id", rid)
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
				a.writeError(sw, r, imaged.Errorf(imaged.EINTERNAL, "Internal error."))
			}
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("request_id", rid), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
	}()
	if !agentAuthenticated(r.URL.Path) {
		id, err := a.cfg.Auth.Authenticate(ctx, r.Header.Get("X-Auth-Token"))
		if err == nil && id == nil {
			err = imaged.Errorf(imaged.EUNAUTHORIZED, "Authentication required.")
		}
		if err != nil {
			if imaged.ErrorCode(err) == imaged.EUNAUTHORIZED {
				sw.Header().Set("WWW-Authenticate", "Keystone")
			}
			a.writeError(sw, r, err)
			return
		}
		r = r.WithContext(imaged.NewContextWithIdentity(ctx, id))
	}
	a.mux.ServeHTTP(sw, r)
}

// requestID keeps a client's well-formed request id, else makes one.
func requestID(ids ...string) string {
	for _, id := range ids {
		if id != "" && len(id) <= 128 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "" {
			return id
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
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
	return sw.ResponseWriter.Write(b)
}

// httpError is an error of the HTTP layer itself (405, 413, 415).
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// statusOf maps an imaged error code to its HTTP status (imaged.HTTPStatus,
// the one place that does).
func statusOf(code string) int { return imaged.HTTPStatus(code) }

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rid := imaged.RequestIDFromContext(r.Context())
	var he *httpError
	status, code, msg := 0, "", ""
	if errors.As(err, &he) {
		status, code, msg = he.status, he.code, he.msg
	} else {
		code = imaged.ErrorCode(err)
		status = statusOf(code)
		msg = imaged.ErrorMessage(err)
		if status == http.StatusInternalServerError {
			a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", rid), slog.Any("error", err))
			code, msg = imaged.EINTERNAL, "Internal error. Quote the request id when you report it."
		}
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg, "request_id": rid}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("agentapi: cannot encode response: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decode reads a JSON body strictly into dst.
func (a *api) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &httpError{status: http.StatusUnsupportedMediaType, code: imaged.EUNSUPPORTED, msg: "Send application/json."}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: imaged.ETOOLARGE, msg: "The request body is too large."}
		}
		return imaged.Errorf(imaged.EINVALID, "cannot read the request body")
	}
	return decodeStrict(data, dst)
}

// decodeStrict decodes one JSON value, refusing unknown fields and
// trailing data.
func decodeStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return imaged.Errorf(imaged.EINVALID, "bad JSON body: %s", jsonMessage(err))
	}
	if dec.More() {
		return imaged.Errorf(imaged.EINVALID, "bad JSON body: trailing data")
	}
	return nil
}

func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " must be " + te.Type.String()
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	m := err.Error()
	if len(m) > 200 {
		m = m[:200]
	}
	return strings.TrimPrefix(m, "json: ")
}

// DecodeImagesRequest decodes a purge or preload body:
// {"keys": [{"agent_id", "images": [{"name", "architecture"}]}], "force", "noprune"}.
func DecodeImagesRequest(data []byte) (imaged.AgentImagesRequest, error) {
	var req imaged.AgentImagesRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.Keys == nil {
		return req, imaged.Errorf(imaged.EINVALID, "keys is required")
	}
	return req, nil
}

// DecodeRegistration decodes an agent's register or heartbeat body.
func DecodeRegistration(data []byte) (imaged.AgentRegistration, error) {
	var b imaged.AgentRegistrationBody
	if err := decodeStrict(data, &b); err != nil {
		return imaged.AgentRegistration{}, err
	}
	if b.HeartbeatSeconds < 0 || b.HeartbeatSeconds > 3600 {
		return imaged.AgentRegistration{}, imaged.Errorf(imaged.EINVALID, "heartbeat_seconds must be between 0.1 and 3600")
	}
	return imaged.AgentRegistration{Addr: b.Addr, Runtime: b.Runtime, Version: b.Version,
		HeartbeatInterval: time.Duration(b.HeartbeatSeconds * float64(time.Second)), Images: b.Images}, nil
}
