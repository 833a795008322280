package cli_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// randomFile writes n random bytes to a temp file.
func randomFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// upload stores data as a new VM image and returns its id.
func upload(t *testing.T, s *server, path string) string {
	t.Helper()
	var im struct {
		ID, Status, Checksum string
		Size                 int64
		OSHashAlgo           string `json:"os_hash_algo"`
	}
	s.run(t, "upload", path, "--name", "cirros", "--disk-format", "raw", "--container-format", "bare").ok(t).json(t, &im)
	if im.Status != "active" || im.ID == "" || im.OSHashAlgo == "" {
		t.Fatalf("uploaded image %+v", im)
	}
	return im.ID
}

// A few MiB go up streamed and come back identical; both ends verify.
func TestUploadDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	path, data := randomFile(t, 3<<20+12345)
	id := upload(t, s, path)

	out := filepath.Join(t.TempDir(), "back.img")
	r := s.run(t, "download", id, "-o", out, "--output", "table").ok(t)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (err %v), want the %d uploaded", len(got), err, len(data))
	}
	sum := md5.Sum(data)
	if !strings.Contains(r.stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("download output lacks the md5: %s", r.stdout)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	r = s.run(t, "images", "--output", "table").ok(t)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "cirros") || !strings.Contains(r.stdout, "3.0 MiB") {
		t.Errorf("images table:\n%s", r.stdout)
	}
	// An empty file is an image of size 0.
	empty := filepath.Join(t.TempDir(), "empty.img")
	os.WriteFile(empty, nil, 0o600)
	upload(t, s, empty)
}

// cutFile wraps the server: image data downloads get their headers and
// only part of the body (then the connection drops), or a flipped byte.
func cutFile(mode string) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/file") {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			switch mode {
			case "truncate":
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // drops the connection mid-body
			case "corrupt":
				body[len(body)/3] ^= 0xff
				w.Write(body)
			}
		})
	}
}

func TestDownloadRefusesBadData(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"truncate", "corrupt"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, cutFile(mode))
			path, _ := randomFile(t, 2<<20)
			id := upload(t, s, path)
			dir := t.TempDir()
			out := filepath.Join(dir, "back.img")
			r := s.run(t, "download", id, "-o", out)
			if r.code != 1 {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
			want := map[string]string{"truncate": "failed after", "corrupt": "checksum mismatch"}[mode]
			if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "nothing written") {
				t.Errorf("stderr: %s", r.stderr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files left in the target directory: %v", entries)
			}
		})
	}
}

// A server that stores other bytes than were sent is caught by the
// upload's own hashes.
func TestUploadDetectsChecksumMismatch(t *testing.T) {
	t.Parallel()
	flip := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/file") {
				r.Body = &flipReader{r: r.Body}
			}
			next.ServeHTTP(w, r)
		})
	}
	s := newServer(t, flip)
	path, _ := randomFile(t, 1<<20)
	r := s.run(t, "upload", path, "--name", "x", "--disk-format", "raw")
	if r.code != 1 || !strings.Contains(r.stderr, "checksum mismatch") || !strings.Contains(r.stderr, "kept for inspection") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

// flipReader inverts the first byte of a body.
type flipReader struct {
	r    interface{ Read([]byte) (int, error) }
	done bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 0xff
		f.done = true
	}
	return n, err
}

func (f *flipReader) Close() error { return nil }

// A refused upload (the data is not the declared disk format) prints
// the server's message and deletes the image it created.
func TestUploadFailureDeletesImage(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	path, _ := randomFile(t, 64<<10)
	r := s.run(t, "upload", path, "--name", "big", "--disk-format", "qcow2")
	if r.code != 1 || !strings.Contains(r.stderr, "Image data does not match disk_format qcow2: the data is in raw format. (HTTP 400 bad_request, request id req-") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var list struct{ Images []struct{ ID string } }
	s.run(t, "images").ok(t).json(t, &list)
	if len(list.Images) != 0 {
		t.Errorf("the empty image was kept: %+v", list.Images)
	}
}
