package fs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/fs"
)

func put(t *testing.T, s imaged.BlobStore, key string, b []byte) {
	t.Helper()
	w, err := s.Create(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s imaged.BlobStore, key string) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listKeys(t *testing.T, s imaged.BlobStore) []string {
	t.Helper()
	var keys []string
	if err := s.List(t.Context(), "", func(i imaged.BlobInfo) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

func uploads(t *testing.T, s *fs.Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "_uploads"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestLayout(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	put(t, s, "a", []byte("1"))
	put(t, s, "a/b", []byte("22"))
	put(t, s, "x/y/z", []byte("333"))
	for path, want := range map[string]string{"a": "1", "a+/b": "22", "x+/y+/z": "333"} {
		b, err := os.ReadFile(filepath.Join(s.Root(), path))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	if err := s.Delete(t.Context(), "x/y/z"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "x+")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Delete left the emptied directories: %v", err)
	}
	if err := s.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "a/b"); string(got) != "22" {
		t.Errorf("a/b = %q after deleting a", got)
	}
	if len(uploads(t, s)) != 0 {
		t.Errorf("uploads left: %v", uploads(t, s))
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts      []fs.Option
		file, dir os.FileMode
	}{
		{nil, 0o600, 0o700},
		{[]fs.Option{fs.WithPerm(0o640, 0o750)}, 0o640, 0o750},
	} {
		s := newStore(t, tc.opts...)
		put(t, s, "d/f", []byte("x"))
		fi, err := os.Stat(filepath.Join(s.Root(), "d+/f"))
		if err != nil || fi.Mode().Perm() != tc.file {
			t.Errorf("file mode = %v, %v; want %v", fi.Mode().Perm(), err, tc.file)
		}
		for _, d := range []string{"d+", "_uploads"} {
			fi, err = os.Stat(filepath.Join(s.Root(), d))
			// The umask may take bits away, never add them.
			if err != nil || fi.Mode().Perm()&^tc.dir != 0 || fi.Mode().Perm()&0o700 != 0o700 {
				t.Errorf("%s mode = %v, %v; want within %v", d, fi.Mode().Perm(), err, tc.dir)
			}
		}
	}
}

func TestNegativeOffset(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	put(t, s, "k", []byte("abc"))
	_, err := s.Open(t.Context(), "k", -1, -1)
	if imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("Open(-1) = %v, want EINVALID", err)
	}
}

// TestSharedRoot: two stores on one directory, as two processes have.
func TestSharedRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	put(t, a, "img/1", []byte("from a"))
	if got := get(t, b, "img/1"); string(got) != "from a" {
		t.Fatalf("b reads %q", got)
	}
	w, err := b.Create(t.Context(), "img/2")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("from b"))
	// a's purge of old uploads leaves b's fresh one alone.
	if n, err := a.PurgeUploads(t.Context(), time.Minute); err != nil || n != 0 {
		t.Fatalf("PurgeUploads = %d, %v", n, err)
	}
	if _, err := w.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, a); !slices.Equal(got, []string{"img/1", "img/2"}) {
		t.Fatalf("a lists %v", got)
	}
}

// TestPurgeByMtime ages uploads by setting their mtimes, and by moving
// the store's clock.
func TestPurgeByMtime(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s := newStore(t, fs.WithClock(imaged.ClockFunc(func() time.Time { return now })))
	ctx := t.Context()
	ws := make([]imaged.BlobWriter, 3)
	for i := range ws {
		w, err := s.Create(ctx, "k"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		ws[i] = w
	}
	names := uploads(t, s)
	if len(names) != 3 {
		t.Fatalf("uploads = %v", names)
	}
	for i, age := range []time.Duration{3 * time.Hour, 90 * time.Minute} {
		mt := now.Add(-age)
		if err := os.Chtimes(filepath.Join(s.Root(), "_uploads", names[i]), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PurgeUploads(ctx, 2*time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads(2h) = %d, %v; want 1", n, err)
	}
	if n, err := s.PurgeUploads(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads(1h) = %d, %v; want 1", n, err)
	}
	if got := uploads(t, s); len(got) != 1 {
		t.Fatalf("uploads left = %v, want the young one", got)
	}
	now = now.Add(25 * time.Hour) // the clock moves on; nothing written since
	if n, err := s.PurgeUploads(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("PurgeUploads(24h) a day later = %d, %v; want 1", n, err)
	}
	for i, w := range ws {
		_, err := w.Commit(ctx)
		if imaged.ErrorCode(err) != imaged.ECONFLICT {
			t.Errorf("Commit of purged upload %d = %v, want ECONFLICT", i, err)
		}
	}
	if got := listKeys(t, s); len(got) != 0 {
		t.Fatalf("List = %v", got)
	}
}

// TestWriterFollowsContext: an upload stops once its request is gone.
func TestWriterFollowsContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	w, err := s.Create(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Write([]byte("after")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write after cancel = %v", err)
	}
	if _, err := io.Copy(w, bytes.NewReader([]byte("after"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("io.Copy after cancel = %v", err)
	}
	if _, err := w.Commit(t.Context()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit after cancel = %v", err)
	}
	if got := uploads(t, s); len(got) != 0 {
		t.Fatalf("a failed Commit left uploads %v", got)
	}
}

func TestUploadsDirRecreated(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if err := os.Remove(filepath.Join(s.Root(), "_uploads")); err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", []byte("v"))
	if got := get(t, s, "k"); string(got) != "v" {
		t.Fatalf("k = %q", got)
	}
}

// TestStrayFilesIgnored: files the store did not make (editor droppings,
// a directory without the suffix) are not blobs.
func TestStrayFilesIgnored(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	put(t, s, "d/real", []byte("x"))
	for _, p := range []string{"bad name", "d+/x+", "plain/f", "d+/sub/f", "d+/a b"} {
		full := filepath.Join(s.Root(), p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("stray"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := listKeys(t, s); !slices.Equal(got, []string{"d/real"}) {
		t.Fatalf("List = %v", got)
	}
}

// TestCopyPaths writes from a file (copy_file_range), from a limited file
// and from a pipe-like reader, and reads into a file, over both buffer
// settings.
func TestCopyPaths(t *testing.T) {
	t.Parallel()
	want := make([]byte, 3<<20+17)
	rand.Read(want)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, want, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bufSize := range []int{fs.BufferSize, 0} {
		s := newStore(t, fs.WithBufferSize(bufSize))
		for name, mk := range map[string]func(f *os.File) io.Reader{
			"file":    func(f *os.File) io.Reader { return f },
			"limited": func(f *os.File) io.Reader { return io.LimitReader(f, int64(len(want))) },
			"plain":   func(f *os.File) io.Reader { return struct{ io.Reader }{f} },
		} {
			f, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			w, err := s.Create(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(want[:5]) // something buffered first: ReadFrom must flush it in order
			f.Seek(5, io.SeekStart)
			if n, err := io.Copy(w, mk(f)); err != nil || n != int64(len(want)-5) {
				t.Fatalf("%s: copy = %d, %v", name, n, err)
			}
			f.Close()
			if _, err := w.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := get(t, s, name); !bytes.Equal(got, want) {
				t.Fatalf("buffer %d, %s: read back %d bytes, not the same", bufSize, name, len(got))
			}
			// Out into a file (copy_file_range from the section).
			dst, err := os.Create(filepath.Join(t.TempDir(), "dst"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(t.Context(), name, 1000, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(dst, r); err != nil || n != 1<<20 {
				t.Fatalf("copy out = %d, %v", n, err)
			}
			r.Close()
			dst.Close()
			if got, _ := os.ReadFile(dst.Name()); !bytes.Equal(got, want[1000:1000+1<<20]) {
				t.Fatalf("copied out range differs")
			}
		}
	}
}

// TestHTTPDownload serves ranges over loopback HTTP the way the image API
// will (Content-Length set, io.Copy), the path that uses sendfile.
func TestHTTPDownload(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	want := make([]byte, 5<<20+3)
	rand.Read(want)
	put(t, s, "img", want)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		off, _ := strconv.ParseInt(req.URL.Query().Get("off"), 10, 64)
		n, _ := strconv.ParseInt(req.URL.Query().Get("n"), 10, 64)
		r, err := s.Open(req.Context(), "img", off, n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
			return
		}
		defer r.Close()
		size := int64(len(want)) - off
		if n >= 0 {
			size = min(size, n)
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, r)
	}))
	defer srv.Close()
	for _, tc := range []struct{ off, n int64 }{{0, -1}, {100, 1 << 20}, {int64(len(want)) - 1, -1}, {int64(len(want)), -1}} {
		resp, err := http.Get(srv.URL + "?off=" + strconv.FormatInt(tc.off, 10) + "&n=" + strconv.FormatInt(tc.n, 10))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		end := int64(len(want))
		if tc.n >= 0 {
			end = min(end, tc.off+tc.n)
		}
		if err != nil || !bytes.Equal(got, want[tc.off:end]) {
			t.Fatalf("GET %+v: %d bytes, %v", tc, len(got), err)
		}
	}
}

// TestCrashLeavesOnlyUploads kills a real process in the middle of an
// upload (SIGKILL: no deferred cleanup runs) and checks that the key never
// appears, that the old version is intact, and that PurgeUploads removes
// the leftover.
func TestCrashLeavesOnlyUploads(t *testing.T) {
	if root := os.Getenv("BLOBFS_CRASH_ROOT"); root != "" {
		crashChild(root)
		return
	}
	t.Parallel()
	s := newStore(t)
	old := bytes.Repeat([]byte("old "), 1000)
	put(t, s, "img/replaced", old)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLeavesOnlyUploads$")
	cmd.Env = append(os.Environ(), "BLOBFS_CRASH_ROOT="+s.Root())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got := listKeys(t, s); !slices.Equal(got, []string{"img/committed", "img/replaced"}) {
		t.Fatalf("List after the crash = %v", got)
	}
	if got := get(t, s, "img/replaced"); !bytes.Equal(got, old) {
		t.Fatalf("the old version changed: %d bytes", len(got))
	}
	if n := len(uploads(t, s)); n != 2 {
		t.Fatalf("%d uploads left, want the 2 the child abandoned", n)
	}
	if n, err := s.PurgeUploads(t.Context(), 0); err != nil || n != 2 {
		t.Fatalf("PurgeUploads = %d, %v", n, err)
	}
	if n := len(uploads(t, s)); n != 0 {
		t.Fatalf("%d uploads left after the purge", n)
	}
}

func crashChild(root string) {
	s, err := fs.New(root)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	w, _ := s.Create(ctx, "img/committed")
	w.Write([]byte("done"))
	if _, err := w.Commit(ctx); err != nil {
		panic(err)
	}
	chunk := make([]byte, 1<<20)
	for _, key := range []string{"img/new", "img/replaced"} {
		w, err := s.Create(ctx, key)
		if err != nil {
			panic(err)
		}
		for range 3 {
			w.Write(chunk)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
