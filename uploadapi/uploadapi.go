// Package uploadapi serves POST /api/v1/uploads: a VM image created and
// uploaded in one multipart/form-data request, as a browser's form or
// XMLHttpRequest sends it. The text fields (name, disk_format,
// container_format, visibility, ...) come first and the file part last;
// the image is created when the file part arrives and its bytes stream
// straight into imaged.ImageService.UploadImage: nothing is buffered, in
// memory or on disk, beyond the multipart reader's few KiB.
//
// Errors have the native API's shape, {"error": {"code", "message",
// "request_id"}}. Authentication is the other APIs' X-Auth-Token. Because
// a browser can post a multipart form to any origin without asking, and
// "--auth none" accepts any request, every request must also carry a
// header a cross-origin form cannot set without a CORS preflight
// (X-Auth-Token or X-Requested-With): that is the CSRF guard.
package uploadapi

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed" // openapi.json
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Path is where the handler is mounted.
const Path = "/api/v1/uploads"

// Config configures New.
type Config struct {
	Images imaged.ImageService  // required
	Auth   imaged.Authenticator // required
	Logger *slog.Logger         // nil = slog.Default()
	// AuthURI is announced in the WWW-Authenticate header of a 401
	// (Keystone uri="..."); "" announces the scheme only.
	AuthURI string
	// MaxFieldBytes caps each text field (413 beyond); 0 = 64 KiB.
	MaxFieldBytes int64
}

// maxFields bounds the text parts before the file, so that a client cannot
// keep the handler reading tiny parts forever.
const maxFields = 64

// New returns the handler of POST /api/v1/uploads.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxFieldBytes <= 0 {
		cfg.MaxFieldBytes = 64 << 10
	}
	return &handler{cfg: cfg, log: cfg.Logger}
}

type handler struct {
	cfg Config
	log *slog.Logger
}

// apiError is an error with an HTTP status of its own (the statuses that
// no imaged code names, and those this surface maps differently).
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// Image is the 201 answer: the uploaded image, in the Glance image
// document's field names.
type Image struct {
	ID              string  `json:"id"`
	Name            *string `json:"name"`
	Status          string  `json:"status"`
	Visibility      string  `json:"visibility"`
	DiskFormat      *string `json:"disk_format"`
	ContainerFormat *string `json:"container_format"`
	Size            *int64  `json:"size"`
	Checksum        *string `json:"checksum"`
	OSHashAlgo      *string `json:"os_hash_algo"`
	OSHashValue     *string `json:"os_hash_value"`
}

func render(img *imaged.Image) Image {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return Image{ID: img.ID, Name: img.Name, Status: string(img.Status), Visibility: string(img.Visibility),
		DiskFormat: opt(img.DiskFormat), ContainerFormat: opt(img.ContainerFormat), Size: img.Size,
		Checksum: opt(img.Checksum), OSHashAlgo: opt(img.OSHashAlgo), OSHashValue: opt(img.OSHashValue)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestID(r.Header.Get("X-Request-Id"), r.Header.Get("X-Openstack-Request-Id"))
	w.Header().Set("X-Request-Id", rid)
	w.Header().Set("X-Openstack-Request-Id", rid)
	ctx := imaged.NewContextWithRequestID(r.Context(), rid)
	r = r.WithContext(ctx)
	img, n, err := h.serve(w, r)
	status := http.StatusCreated
	if err != nil {
		status = h.writeError(w, r, err)
	} else {
		w.Header().Set("Location", "/v2/images/"+img.ID)
		writeJSON(w, http.StatusCreated, render(img))
	}
	attrs := []slog.Attr{slog.String("request_id", rid), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Int64("bytes", n), slog.Duration("duration", time.Since(start))}
	if img != nil {
		attrs = append(attrs, slog.String("image_id", img.ID))
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "upload", attrs...)
}

// serve does the work; it returns the image (also on a failed upload,
// when one was created, for the log), the file bytes read, and the error.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) (*imaged.Image, int64, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, 0, newError(http.StatusMethodNotAllowed, "method_not_allowed", "Method %s is not allowed here; allowed: POST.", r.Method)
	}
	id, err := h.cfg.Auth.Authenticate(r.Context(), r.Header.Get("X-Auth-Token"))
	if err == nil && id == nil {
		err = imaged.Errorf(imaged.EUNAUTHORIZED, "Authentication required.")
	}
	if err != nil {
		if imaged.ErrorCode(err) == imaged.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", h.challenge())
		}
		return nil, 0, err
	}
	if _, ok := r.Header["X-Auth-Token"]; !ok && r.Header.Get("X-Requested-With") == "" {
		return nil, 0, newError(http.StatusForbidden, "csrf_check_failed",
			"Send an X-Auth-Token or an X-Requested-With header: a plain cross-site form post is refused.")
	}
	ctx := imaged.NewContextWithIdentity(r.Context(), id)

	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, 0, newError(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Unsupported Content-Type %q: send multipart/form-data.", r.Header.Get("Content-Type"))
	}
	if params["boundary"] == "" {
		return nil, 0, imaged.Errorf(imaged.EINVALID, "The multipart/form-data Content-Type has no boundary parameter.")
	}
	// multipart.Reader reads part by part: never ParseMultipartForm,
	// which would spool the image to memory and temporary files.
	mr := multipart.NewReader(r.Body, params["boundary"])
	f := form{attrs: map[string]any{}, size: -1, seen: map[string]bool{}}
	for fields := 0; ; fields++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) && fields == 0 {
			return nil, 0, imaged.Errorf(imaged.EINVALID, "The body holds no multipart part delimited by the boundary %q.", truncate(params["boundary"], 70))
		}
		if errors.Is(err, io.EOF) {
			return nil, 0, imaged.Errorf(imaged.EINVALID, `No file part: send the image as the last part of the form, named "file".`)
		}
		if err != nil {
			return nil, 0, imaged.Errorf(imaged.EINVALID, "Malformed multipart body: %v.", err)
		}
		if part.FormName() == "file" || part.FileName() != "" {
			return h.upload(ctx, part, &f)
		}
		if fields >= maxFields {
			return nil, 0, newError(http.StatusRequestEntityTooLarge, imaged.ETOOLARGE, "More than %d fields before the file part.", maxFields)
		}
		if err := h.field(part, &f); err != nil {
			return nil, 0, err
		}
	}
}

// form is what the text fields said.
type form struct {
	attrs map[string]any
	size  int64
	seen  map[string]bool
}

// fields are the text fields the form may carry before the file.
var fields = map[string]string{
	"name": "string", "disk_format": "string", "container_format": "string", "visibility": "string",
	"min_disk": "int", "min_ram": "int", "tags": "list", "size": "size", "protected": "bool",
}

func (h *handler) field(part *multipart.Part, f *form) error {
	name := part.FormName()
	kind, ok := fields[name]
	if !ok {
		return imaged.Errorf(imaged.EINVALID, "Unknown form field %q: send name, disk_format, container_format, visibility, min_disk, min_ram, protected, tags, size, then the file part.", truncate(name, 64))
	}
	if f.seen[name] && kind != "list" {
		return imaged.Errorf(imaged.EINVALID, "Form field %q is repeated.", name)
	}
	f.seen[name] = true
	b, err := io.ReadAll(io.LimitReader(part, h.cfg.MaxFieldBytes+1))
	if err != nil {
		return imaged.Errorf(imaged.EINVALID, "Malformed multipart body in field %q: %v.", name, err)
	}
	if int64(len(b)) > h.cfg.MaxFieldBytes {
		return newError(http.StatusRequestEntityTooLarge, imaged.ETOOLARGE, "Form field %q is longer than %d bytes.", name, h.cfg.MaxFieldBytes)
	}
	v := string(b)
	switch kind {
	case "string":
		f.attrs[name] = v
	case "list":
		tags, _ := f.attrs[name].([]any)
		f.attrs[name] = append(tags, v)
	case "int":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return imaged.Errorf(imaged.EINVALID, "Form field %q must be an integer, not %q.", name, truncate(v, 32))
		}
		// As the JSON create request decodes it.
		f.attrs[name] = float64(n)
	case "bool":
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "on", "1":
			f.attrs[name] = true
		case "false", "off", "0", "":
			f.attrs[name] = false
		default:
			return imaged.Errorf(imaged.EINVALID, "Form field %q must be true or false, not %q.", name, truncate(v, 32))
		}
	case "size":
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return imaged.Errorf(imaged.EINVALID, "Form field \"size\" must be the file's length in bytes, not %q.", truncate(v, 32))
		}
		f.size = n
	}
	return nil
}

// upload creates the image and streams the file part into it.
func (h *handler) upload(ctx context.Context, part *multipart.Part, f *form) (*imaged.Image, int64, error) {
	img, err := h.cfg.Images.CreateImage(ctx, f.attrs)
	if err != nil {
		return nil, 0, err
	}
	body := &recordingReader{r: part}
	out, err := h.cfg.Images.UploadImage(ctx, img.ID, body, f.size)
	if err == nil {
		return out, body.n, nil
	}
	// The service leaves the image queued: say so, with its id, so that
	// the client can retry with PUT /v2/images/{id}/file or delete it.
	if body.err != nil && !errors.Is(body.err, io.EOF) {
		if ctx.Err() != nil {
			return img, body.n, imaged.Errorf(imaged.EINVALID, "The client went away after %d bytes; image %s is left queued.", body.n, img.ID)
		}
		return img, body.n, imaged.Errorf(imaged.EINVALID, "The upload was cut short after %d bytes (%v); image %s is left queued.", body.n, body.err, img.ID)
	}
	return img, body.n, &imageError{err: err, id: img.ID}
}

// imageError is a failed upload of a created image: the service's error
// with the image named.
type imageError struct {
	err error
	id  string
}

func (e *imageError) Error() string { return e.err.Error() }
func (e *imageError) Unwrap() error { return e.err }

// recordingReader remembers the body's read error: a multipart body that
// ends early is the client's fault (400), whatever the service makes of
// the error.
type recordingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	if err != nil && rr.err == nil {
		rr.err = err
	}
	return n, err
}

func (h *handler) challenge() string {
	if h.cfg.AuthURI == "" {
		return "Keystone"
	}
	return `Keystone uri="` + h.cfg.AuthURI + `"`
}

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

// writeError renders err and returns the status sent. Errors without an
// imaged code are 500s whose text is logged, not sent.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	rid := imaged.RequestIDFromContext(r.Context())
	var ae *apiError
	var d errorDetail
	var status int
	if errors.As(err, &ae) {
		status, d = ae.status, errorDetail{Code: ae.code, Message: ae.msg}
	} else {
		code := imaged.ErrorCode(err)
		status = statusOf(code)
		msg := imaged.ErrorMessage(err)
		if status == http.StatusInternalServerError {
			h.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", rid), slog.Any("error", err))
			code, msg = imaged.EINTERNAL, "Internal error. Quote the request id when you report it."
		}
		var ie *imageError
		if errors.As(err, &ie) {
			msg = strings.TrimSuffix(msg, ".") + fmt.Sprintf(". Image %s is left queued.", ie.id)
		}
		d = errorDetail{Code: code, Message: msg}
	}
	d.RequestID = rid
	if status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
		// The rest of a refused body is not read: tell the client the
		// connection closes rather than let it keep sending gigabytes.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, errorBody{Error: d})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("uploadapi: cannot encode response: " + err.Error()) // plain data only: a bug
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// requestID keeps a client's request id if it is short and made of safe
// characters (it is logged), else makes "req-<uuid>", as nativeapi does.
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
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := hex.EncodeToString(u[:])
	return "req-" + s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.0.3 fragment (paths and components) of
// POST /api/v1/uploads, for nativeapi.Config.OpenAPIFragments: its Error
// schema and token security scheme are the native API's.
func OpenAPI() []byte { return bytes.Clone(openAPI) }
