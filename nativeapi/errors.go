package nativeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/imaged/imaged"
)

// httpError is an error of the HTTP layer itself, whose status no imaged
// code names (405, 415).
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// statusOf maps an imaged error code to its HTTP status (imaged.HTTPStatus,
// the one place that does).
func statusOf(code string) int { return imaged.HTTPStatus(code) }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError renders err as {"error": {code, message, request_id}}. An
// error without an imaged code is a 500 whose text goes to the log only.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rid := imaged.RequestIDFromContext(r.Context())
	var he *httpError
	var status int
	var d errorDetail
	if errors.As(err, &he) {
		status, d = he.status, errorDetail{Code: he.code, Message: he.msg}
	} else {
		code := imaged.ErrorCode(err)
		status = statusOf(code)
		if code == imaged.EUNAUTHORIZED && imaged.IdentityFromContext(r.Context()) != nil {
			// The caller's token was accepted, so this is a registry
			// refusing imaged's credentials: a 401 would tell the
			// client to re-authenticate, which cannot help. 502: an
			// upstream server refused.
			status = http.StatusBadGateway
		}
		if status == http.StatusInternalServerError {
			a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", rid), slog.Any("error", err))
			code = imaged.EINTERNAL
			d = errorDetail{Code: code, Message: "Internal error. Quote the request id when you report it."}
		} else {
			d = errorDetail{Code: code, Message: imaged.ErrorMessage(err)}
		}
		if status >= 500 && status != http.StatusInternalServerError {
			a.log.WarnContext(r.Context(), "dependency error", slog.String("request_id", rid), slog.Any("error", err))
		}
	}
	d.RequestID = rid
	writeJSON(w, r, status, errorBody{Error: d})
}

// writeJSON renders v with status.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a bug in a renderer can get here (every value is plain data).
		panic("nativeapi: cannot encode response: " + err.Error())
	}
	writeRaw(w, r, status, buf.Bytes())
}

// writeRaw sends a JSON document as is.
func writeRaw(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
