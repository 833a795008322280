package glanceapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFromRecorder is a ResponseWriter that says whether io.Copy reached
// its ReadFrom with the source it was given.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.src = src
	return io.Copy(r.ResponseRecorder, src)
}

// TestStatusWriterReadFrom: a download's io.Copy through the logging
// wrapper must reach net/http's ReadFrom with the file itself, which is what
// lets net/http use sendfile(2).
func TestStatusWriterReadFrom(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	sw := &statusWriter{ResponseWriter: rec}
	sw.Header().Set("Content-Length", "1000")
	sw.WriteHeader(http.StatusOK)
	lr := &io.LimitedReader{R: f, N: 1000}
	n, err := io.Copy(sw, lr)
	if err != nil || n != 1000 || sw.bytes != 1000 || rec.Body.Len() != 1000 {
		t.Fatalf("copied %d (%v), counted %d, body %d", n, err, sw.bytes, rec.Body.Len())
	}
	if rec.src != lr {
		t.Errorf("ReadFrom got %T, want the *io.LimitedReader over the file", rec.src)
	}
	if sw.status != http.StatusOK {
		t.Errorf("status %d", sw.status)
	}
}
