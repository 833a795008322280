package imaged

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each outer surface maps them to its own protocol in one place
// (for HTTP: glanceapi's error renderer).
const (
	EINVALID        = "invalid"             // malformed or semantically bad input (HTTP 400)
	EUNAUTHORIZED   = "unauthorized"        // no or bad credentials (401)
	EFORBIDDEN      = "forbidden"           // authenticated but not allowed (403)
	ENOTFOUND       = "not_found"           // no such thing, or not visible to the caller (404)
	ECONFLICT       = "conflict"            // state or uniqueness conflict (409)
	ETOOLARGE       = "too_large"           // a quota or size limit was exceeded (413)
	EUNSUPPORTED    = "unsupported"         // unsupported media type (415)
	EREFUSED        = "refused"             // understood, but refused where it would run: a registry that forbids deletes, a runtime not built in (422)
	ERANGE          = "range"               // unsatisfiable range (416)
	EPRECONDITION   = "precondition_failed" // a conditional request's precondition (If-Match) failed (412)
	ENOTIMPLEMENTED = "not_implemented"     // a known endpoint that is not built yet (501)
	EUNAVAILABLE    = "unavailable"         // a dependency is down (503)
	EINTERNAL       = "internal"            // a bug or an unexpected failure (500)
)

// HTTPStatus is the HTTP status of an error code: the one place where
// domain errors become HTTP, for every HTTP surface. Unknown codes
// (internal errors) are 500.
func HTTPStatus(code string) int {
	switch code {
	case EINVALID:
		return http.StatusBadRequest
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EFORBIDDEN:
		return http.StatusForbidden
	case ENOTFOUND:
		return http.StatusNotFound
	case ECONFLICT:
		return http.StatusConflict
	case EPRECONDITION:
		return http.StatusPreconditionFailed
	case ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case ERANGE:
		return http.StatusRequestedRangeNotSatisfiable
	case EREFUSED:
		return http.StatusUnprocessableEntity
	case ENOTIMPLEMENTED:
		return http.StatusNotImplemented
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is an application error with a code and a message that is safe to
// show to the client. Wrap it with fmt.Errorf("...: %w", err) freely: the
// code and message survive wrapping.
type Error struct {
	Code    string
	Message string
	// Detail marks Message as a detail that follows the status's generic
	// explanation, as Glance renders the errors it raises without an
	// explanation (webob's HTTPForbidden(msg) rather than
	// HTTPForbidden(explanation=msg)): "Access was denied to this
	// resource.<br /><br />\nProperty name may not be removed.".
	// Surfaces other than the Glance API may ignore it.
	Detail bool
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("imaged error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Detailf is Errorf for an error whose message is a Detail.
func Detailf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Detail: true}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or a generic message for any other error (whose text may hold
// internal details and is only logged).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
