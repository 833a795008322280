package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Limits of the agent API.
const (
	maxBody   = 1 << 20
	MaxImages = 1000 // images in one purge or preload request
)

// Result reasons of purge and preload items, and the request and result
// bodies of the agent API: the core's wire protocol (shared with the
// service's agents package).
const (
	ReasonNotPresent   = imaged.AgentReasonNotPresent
	ReasonInUse        = imaged.AgentReasonInUse
	ReasonNotFound     = imaged.AgentReasonNotFound
	ReasonInvalid      = imaged.AgentReasonInvalid
	ReasonRuntimeError = imaged.AgentReasonRuntimeError
)

type (
	ImageSpec      = imaged.AgentImageSpec
	PurgeRequest   = imaged.AgentPurgeRequest
	PurgeResult    = imaged.AgentPurgeResult
	PreloadRequest = imaged.AgentPreloadRequest
)

// PreloadResult is one image's outcome.
type PreloadResult struct {
	Reference    string `json:"reference"`
	Architecture string `json:"architecture"`
	Pulled       bool   `json:"pulled"`
	Digest       string `json:"digest,omitempty"`
	Size         int64  `json:"size,omitempty"`
	Error        string `json:"error,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// Server is the agent's HTTP API over a Runtime:
//
//	GET  /v1/images          {"runtime", "images": [AgentImage]}
//	POST /v1/images/purge    PurgeRequest → {"results": [PurgeResult]}
//	POST /v1/images/preload  PreloadRequest → {"results": [PreloadResult]}
//
// Every request must carry the agent's token, or its SHA-256 digest (what
// the service holds), in X-Agent-Token or "Authorization: Bearer".
type Server struct {
	rt  Runtime
	log *slog.Logger
	// The two accepted credentials, hashed so that comparisons are of
	// equal length and constant time whatever the client sends.
	tokenSum, digestSum [32]byte
	mux                 *http.ServeMux
}

// NewServer returns the API handler; token must not be empty.
func NewServer(rt Runtime, token string, log *slog.Logger) (*Server, error) {
	if token == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "the agent token is empty")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{rt: rt, log: log, tokenSum: sha256.Sum256([]byte(token)),
		digestSum: sha256.Sum256([]byte(imaged.AgentTokenDigest(token))), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/images", s.list)
	s.mux.HandleFunc("POST /v1/images/purge", s.purge)
	s.mux.HandleFunc("POST /v1/images/preload", s.preload)
	return s, nil
}

func (s *Server) authorized(r *http.Request) bool {
	tok := r.Header.Get("X-Agent-Token")
	if tok == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = strings.TrimSpace(v)
		}
	}
	if tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	// Both compared, always, so that timing says nothing about which.
	a := subtle.ConstantTimeCompare(sum[:], s.tokenSum[:])
	b := subtle.ConstantTimeCompare(sum[:], s.digestSum[:])
	return a|b == 1
}

// ServeHTTP authenticates, then dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imaged-agent"`)
		writeErr(w, http.StatusUnauthorized, imaged.EUNAUTHORIZED, "A valid agent token is required.")
		return
	}
	s.mux.ServeHTTP(w, r)
	s.log.Debug("agent request", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.rt.List(r.Context())
	if err != nil {
		s.log.Warn("agent: list failed", "err", err)
		writeErr(w, http.StatusServiceUnavailable, imaged.EUNAVAILABLE, imaged.ErrorMessage(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runtime": s.rt.Name(), "images": imgs})
}

// decodeImages reads a request body into dst and checks its images.
func decodeImages(r *http.Request, dst any, images func() []ImageSpec) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return imaged.Errorf(imaged.EINVALID, "bad request body: %v", err)
	}
	imgs := images()
	if len(imgs) == 0 {
		return imaged.Errorf(imaged.EINVALID, "images must name at least one image")
	}
	if len(imgs) > MaxImages {
		return imaged.Errorf(imaged.EINVALID, "at most %d images per request", MaxImages)
	}
	for i, im := range imgs {
		if strings.TrimSpace(im.Reference) == "" || len(im.Reference) > 512 {
			return imaged.Errorf(imaged.EINVALID, "images[%d].reference must be a reference of 1 to 512 characters", i)
		}
		if len(im.Architecture) > 32 {
			return imaged.Errorf(imaged.EINVALID, "images[%d].architecture is too long", i)
		}
	}
	return nil
}

// reasonOf names the reason of a runtime error.
func reasonOf(err error, notFound string) string {
	switch imaged.ErrorCode(err) {
	case imaged.ENOTFOUND:
		return notFound
	case imaged.ECONFLICT:
		return ReasonInUse
	case imaged.EINVALID:
		return ReasonInvalid
	}
	return ReasonRuntimeError
}

// clientMessage is an error's message for the service: imaged errors as
// they are, anything else (context errors included) described.
func clientMessage(err error) string {
	var e *imaged.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return fmt.Sprintf("runtime error: %v", err)
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	var req PurgeRequest
	if err := decodeImages(r, &req, func() []ImageSpec { return req.Images }); err != nil {
		writeErr(w, http.StatusBadRequest, imaged.EINVALID, imaged.ErrorMessage(err))
		return
	}
	out := make([]PurgeResult, 0, len(req.Images))
	for _, im := range req.Images {
		res := PurgeResult{Reference: im.Reference, Architecture: imaged.NormalizeArch(im.Architecture)}
		n, err := s.rt.Remove(r.Context(), im.Reference, im.Architecture, req.Force, req.NoPrune)
		if err != nil {
			res.Error, res.Reason = clientMessage(err), reasonOf(err, ReasonNotPresent)
		} else {
			res.Purged, res.BytesFreed = true, n
		}
		s.log.Info("agent: purge", "reference", im.Reference, "architecture", res.Architecture, "purged", res.Purged,
			"bytes_freed", n, "reason", res.Reason)
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (s *Server) preload(w http.ResponseWriter, r *http.Request) {
	var req PreloadRequest
	if err := decodeImages(r, &req, func() []ImageSpec { return req.Images }); err != nil {
		writeErr(w, http.StatusBadRequest, imaged.EINVALID, imaged.ErrorMessage(err))
		return
	}
	out := make([]PreloadResult, 0, len(req.Images))
	for _, im := range req.Images {
		res := PreloadResult{Reference: im.Reference, Architecture: imaged.NormalizeArch(im.Architecture)}
		got, err := s.rt.Pull(r.Context(), im.Reference, im.Architecture)
		if err != nil {
			res.Error, res.Reason = clientMessage(err), reasonOf(err, ReasonNotFound)
		} else {
			res.Pulled, res.Architecture, res.Digest, res.Size = true, got.Architecture, got.Digest, got.Size
		}
		s.log.Info("agent: preload", "reference", im.Reference, "architecture", res.Architecture, "pulled", res.Pulled, "reason", res.Reason)
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}
