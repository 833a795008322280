package glanceapi

import (
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// statusFor maps an imaged error code to its HTTP status (imaged.HTTPStatus,
// the one place that does).
func statusFor(code string) int { return imaged.HTTPStatus(code) }

// webobTitle is the reason phrase webob puts in the status line and in
// error bodies; Go's net/http phrases differ for a few codes (413, 416).
func webobTitle(status int) string {
	switch status {
	case 300:
		return "Multiple Choices"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 409:
		return "Conflict"
	case 413:
		return "Request Entity Too Large"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Request Range Not Satisfiable"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	}
	return http.StatusText(status)
}

// defaultExplanation is webob's text for an error raised without one
// (Glance raises 401 that way, and we never show internal messages).
func defaultExplanation(status int) string {
	switch status {
	case 400:
		return "The server could not comply with the request since it is either malformed or otherwise incorrect."
	case 401:
		return "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required."
	case 403:
		return "Access was denied to this resource."
	case 404:
		return "The resource could not be found."
	case 409:
		return "There was a conflict when trying to complete your request."
	case 413:
		return "The body of your request was too large for this server."
	case 416:
		return "The Range requested is not available."
	case 412:
		return "Request precondition failed."
	case 503:
		return "The server is currently unavailable. Please try again at a later time."
	}
	return "The server has either erred or is incapable of performing the requested operation."
}

// errTemplate selects one of webob's body templates.
type errTemplate int

const (
	tmplDefault errTemplate = iota // "${explanation}<br /><br />\n${detail}\n${html_comment}\n"
	tmpl405                        // names the request method
	tmpl415                        // names the request's media type
	tmplBare                       // "${explanation}" alone (Glance's body_template='${explanation}')
)

// apiError is an error response as Glance (webob's HTTPException) renders it.
type apiError struct {
	status int
	text   string // explanation (default template) or the method / media type
	detail string // webob's detail, shown after the explanation
	tmpl   errTemplate
	header http.Header // extra headers (Allow, Accept-Patch, WWW-Authenticate)
}

// body expands the template, escaping the variable parts with esc as webob
// does (HTML escaping for the HTML page, none otherwise).
func (e *apiError) body(esc func(string) string) string {
	switch e.tmpl {
	case tmpl405:
		return "The method " + esc(e.text) + " is not allowed for this resource. <br /><br />\n"
	case tmpl415:
		return "The request media type " + esc(e.text) + " is not supported by this server.\n<br /><br />\n"
	case tmplBare:
		return esc(e.text)
	}
	return esc(e.text) + "<br /><br />\n" + esc(e.detail) + "\n\n"
}

// writeError renders err: the code picks the status, the message is shown
// unless the error is internal (then it is only logged).
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := imaged.ErrorCode(err)
	status := statusFor(code)
	msg := imaged.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", imaged.RequestIDFromContext(r.Context())), slog.Any("error", err))
		msg = defaultExplanation(status)
	}
	if msg == "" {
		msg = defaultExplanation(status)
	}
	e := &apiError{status: status, text: msg}
	var ie *imaged.Error
	if errors.As(err, &ie) && ie.Detail && status != http.StatusInternalServerError {
		e.text, e.detail = defaultExplanation(status), msg
	}
	if status == http.StatusUnauthorized {
		e.header = a.authHeader()
	}
	writeAPIError(w, r, e)
}

// writeAPIError writes e in the representation the request's Accept header
// selects: HTML page, JSON document, or plain text (webob's rules).
func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h.Del("X-Content-Type-Options")
	if r.Method == http.MethodHead {
		// webob renders no body for HEAD: its Response defaults apply.
		h.Set("Content-Type", "text/html; charset=UTF-8")
		h.Set("Content-Length", "0")
		w.WriteHeader(e.status)
		return
	}
	status := strconv.Itoa(e.status) + " " + webobTitle(e.status)
	var body, ctype string
	switch negotiateError(r.Header.Values("Accept")) {
	case "text/html":
		ctype = "text/html; charset=UTF-8"
		body = "<html>\n <head>\n  <title>" + status + "</title>\n </head>\n <body>\n  <h1>" + status + "</h1>\n  " +
			e.body(htmlEscape) + "\n </body>\n</html>"
	case "application/json":
		ctype = "application/json"
		body = `{"message": ` + pyJSONString(e.body(noEscape)) + `, "code": ` + pyJSONString(status) +
			`, "title": ` + pyJSONString(webobTitle(e.status)) + `}`
	default:
		ctype = "text/plain; charset=UTF-8"
		body = status + "\n\n" + stripTags(e.body(noEscape))
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(body))
}

func noEscape(s string) string { return s }

// htmlEscape escapes as webob's html_escape: &, <, >, " and ' become
// entities, and non-ASCII characters become decimal character references.
func htmlEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '"':
			b.WriteString("&quot;")
		case c == '\'':
			b.WriteString("&#x27;")
		case c >= utf8.RuneSelf:
			b.WriteString("&#")
			b.WriteString(strconv.Itoa(int(c)))
			b.WriteByte(';')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

var (
	brRe      = regexp.MustCompile(`(?is)<br.*?>`)
	commentRe = regexp.MustCompile(`<!--|-->`)
	tagRe     = regexp.MustCompile(`(?s)<.*?>`)
)

// stripTags turns the HTML fragment into plain text as webob's strip_tags.
func stripTags(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\r", "")
	s = brRe.ReplaceAllString(s, "\n")
	s = commentRe.ReplaceAllString(s, "")
	return tagRe.ReplaceAllString(s, "")
}

// pyJSONString encodes s as Python's json.dumps does by default
// (ensure_ascii: every non-ASCII character as \uXXXX).
func pyJSONString(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c < 0x20 || (c >= 0x7f && c < 0x10000):
			b = appendU4(b, c)
		case c >= 0x10000:
			c -= 0x10000
			b = appendU4(b, 0xd800+(c>>10))
			b = appendU4(b, 0xdc00+(c&0x3ff))
		default:
			b = append(b, byte(c))
		}
	}
	return string(append(b, '"'))
}

func appendU4(b []byte, c rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[c>>12&0xf], hex[c>>8&0xf], hex[c>>4&0xf], hex[c&0xf])
}

// negotiateError picks text/html, application/json or "" (plain text) for
// an error body, following webob's acceptable_offers over the two offers
// text/html and application/json: the most specific matching media range
// gives each offer its quality, q=0 excludes it, ties keep offer order. A
// missing header offers nothing (plain text); an unparsable one offers all.
func negotiateError(accept []string) string {
	if len(accept) == 0 {
		return ""
	}
	offers := [2][2]string{{"text", "html"}, {"application", "json"}}
	var q [2]float64
	var spec [2]int
	for _, hv := range accept {
		for _, part := range strings.Split(hv, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mr, params, _ := strings.Cut(part, ";")
			typ, sub, ok := strings.Cut(strings.TrimSpace(mr), "/")
			if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
				return "text/html"
			}
			rq, extra := 1.0, false
			for p := range strings.SplitSeq(params, ";") {
				p = strings.TrimSpace(p)
				if p == "" {
					continue
				}
				k, v, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil || f < 0 || f > 1 {
						return "text/html"
					}
					rq = f
					break // parameters after q are accept-extensions
				}
				extra = true
			}
			if extra {
				continue // ranges with media parameters never match our bare offers
			}
			for i, o := range offers {
				s := 0
				switch {
				case typ == "*":
					s = 1
				case strings.EqualFold(typ, o[0]) && sub == "*":
					s = 2
				case strings.EqualFold(typ, o[0]) && strings.EqualFold(sub, o[1]):
					s = 3
				}
				if s > spec[i] {
					spec[i], q[i] = s, rq
				}
			}
		}
	}
	best, bestQ := "", 0.0
	for i, o := range offers {
		if spec[i] > 0 && q[i] > bestQ {
			best, bestQ = o[0]+"/"+o[1], q[i]
		}
	}
	return best
}
