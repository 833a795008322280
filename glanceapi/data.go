package glanceapi

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/imaged/imaged"
)

// octetStream is the only media type an upload accepts, as Glance's
// RequestDeserializer.upload.
const octetStream = "application/octet-stream"

// clientBody wraps a request body and remembers the first failure to read
// it, so that the handler can tell a client that went away (or sent less
// than it announced) from a failure of ours.
type clientBody struct {
	r   io.Reader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// uploadImage is PUT /v2/images/{id}/file. The body streams straight into
// the service: it is never buffered and has no size limit here (the
// service enforces the image size cap and quotas).
func (a *api) uploadImage(w http.ResponseWriter, r *http.Request) {
	// Glance compares the media type, parameters cut off, exactly (case
	// and spaces matter); eventlet's WSGI server makes a missing header
	// "text/plain". The check comes before the image is looked up, and
	// before any 100 Continue: nothing is read.
	ct, ok := r.Header["Content-Type"]
	ctype := "text/plain"
	if ok && len(ct) > 0 {
		ctype = ct[0]
	}
	if mt, _, _ := strings.Cut(ctype, ";"); mt != octetStream {
		writeAPIError(w, r, &apiError{status: http.StatusUnsupportedMediaType, text: ctype, tmpl: tmpl415})
		return
	}
	// ContentLength is -1 for a chunked body, as the service expects for
	// an unknown size.
	size := r.ContentLength
	body := &clientBody{r: r.Body}
	_, err := a.svc.UploadImage(r.Context(), r.PathValue("id"), body, size)
	if err != nil {
		if body.err != nil || r.Context().Err() != nil {
			// The client went away or cut its body short: the
			// service has put the image back to queued. Nothing of
			// ours failed, so this is no 500 and no error log; the
			// answer is a 400 in case the client still listens.
			cause := body.err
			if cause == nil {
				cause = r.Context().Err()
			}
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "upload aborted by the client",
				slog.String("request_id", imaged.RequestIDFromContext(r.Context())),
				slog.String("image_id", r.PathValue("id")),
				slog.String("cause", cause.Error()))
			if code := imaged.ErrorCode(err); code != imaged.EINVALID && code != imaged.ETOOLARGE {
				err = invalid("The image data could not be read: the client closed the connection or sent less data than announced.")
			}
		}
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

// downloadImage is GET /v2/images/{id}/file: 200 with the image's bytes,
// 206 for a Range, 204 for an image without data, as Glance answers.
func (a *api) downloadImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	data, err := a.svc.DownloadImage(ctx, r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if data.Open == nil || data.Image == nil || data.Image.Size == nil {
		// Glance checks the Range syntax even here (then fails with a
		// 500 on a valid range, where we send the 204).
		if _, _, _, _, err := checkRangeSyntax(r.Header); err != nil {
			a.writeError(w, r, err)
			return
		}
		writeNoContent(w, false)
		return
	}
	img := data.Image
	size := *img.Size
	span, err := resolveRange(r.Header, size)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ERANGE {
			// RFC 9110 asks for the size with a 416; Glance leaves it
			// out, and clients that do not look lose nothing.
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		}
		a.writeError(w, r, err)
		return
	}
	var rc io.ReadCloser
	if span.length > 0 {
		rc, err = data.Open(ctx, span.offset, span.length)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.ENOTFOUND {
				// The bytes are gone from the store: Glance turns
				// glance_store.NotFound into a 204.
				a.log.LogAttrs(ctx, slog.LevelWarn, "image data missing from the blob store",
					slog.String("request_id", imaged.RequestIDFromContext(ctx)),
					slog.String("image_id", img.ID), slog.Any("error", err))
				writeNoContent(w, false)
				return
			}
			a.writeError(w, r, err)
			return
		}
		defer rc.Close()
	}
	h := w.Header()
	h.Set("Content-Type", octetStream)
	if span.partial {
		h.Set("Content-Range", span.contentRange(size))
	}
	if img.Checksum != "" {
		// Glance sends the hex MD5 of the whole image, also with a
		// range (not RFC 1864's base64 of the part sent).
		h.Set("Content-MD5", img.Checksum)
	}
	// Content-Length before the first byte: net/http then sends the
	// file with sendfile (through statusWriter.ReadFrom) instead of
	// chunking through a buffer.
	h.Set("Content-Length", strconv.FormatInt(span.length, 10))
	if span.partial {
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if rc == nil {
		return
	}
	n, err := io.Copy(w, rc)
	if err != nil {
		// The status is sent; net/http closes the connection because
		// fewer bytes than Content-Length went out, so the client sees
		// the failure. A client that went away is not our error.
		level, msg := slog.LevelError, "image download failed mid-stream"
		if ctx.Err() != nil || isClientGone(err) {
			level, msg = slog.LevelInfo, "image download aborted by the client"
		}
		a.log.LogAttrs(ctx, level, msg,
			slog.String("request_id", imaged.RequestIDFromContext(ctx)),
			slog.String("image_id", img.ID), slog.Int64("sent", n), slog.Int64("length", span.length),
			slog.String("error", err.Error()))
	}
}

// isClientGone reports whether a write error means the peer closed the
// connection (reset, broken pipe, or net/http's closed-connection errors).
func isClientGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}
