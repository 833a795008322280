// Package blobtest is the conformance suite of imaged.BlobStore, as
// distribution's storage driver testsuites are for its drivers. Every
// backend runs it: Run(t, func(t) imaged.BlobStore { ... fresh store ... }).
// It uses only the imaged interfaces and io, so it holds for a local
// directory and for an object store alike.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob"
)

// Option declares a documented limit of the store under test.
type Option func(*config)

type config struct {
	maxKeyLen int
	timeRes   time.Duration
}

// MaxKeyLen declares that the store holds keys of at most n bytes, fewer
// than blob.MaxKeyLen. It exists for object stores: S3 limits object
// names to 1024 bytes, and a store that keeps its blobs under a prefix
// (or adds a suffix to names) spends some of them. The suite then checks
// that a key of exactly n bytes works and that a longer valid key is
// refused with EINVALID up front, rather than failing in the backend.
func MaxKeyLen(n int) Option { return func(c *config) { c.maxKeyLen = n } }

// TimeResolution declares that the times by which the store ages its
// uploads are truncated to d. It exists for object stores: S3 servers
// report times in whole seconds (HTTP dates; versitygw's listings too),
// so an upload created at 12:00:00.9 looks 0.9 s older than it is. The
// PurgeUploads test then ages its uploads by d more (its "young" upload
// must not look old), and still checks the same cases.
func TimeResolution(d time.Duration) Option { return func(c *config) { c.timeRes = d } }

// Run runs the whole suite. newStore must return a fresh, empty store
// that no other test uses.
func Run(t *testing.T, newStore func(t *testing.T) imaged.BlobStore, opts ...Option) {
	cfg := config{maxKeyLen: blob.MaxKeyLen}
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s imaged.BlobStore)
	}{
		{"RoundTripSizes", testRoundTripSizes},
		{"WriteStyles", testWriteStyles},
		{"RangedReads", testRangedReads},
		{"NotFound", testNotFound},
		{"InvisibleBeforeCommit", testInvisibleBeforeCommit},
		{"Cancel", testCancel},
		{"WriterLifecycle", testWriterLifecycle},
		{"ReplaceOnCommit", testReplaceOnCommit},
		{"ReaderKeepsOldVersion", testReaderKeepsOldVersion},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStops", testListStops},
		{"InvalidKeys", func(t *testing.T, s imaged.BlobStore) { testInvalidKeys(t, s, cfg.maxKeyLen) }},
		{"ConcurrentWritersSameKey", testConcurrentSameKey},
		{"LastCommitWins", testLastCommitWins},
		{"ConcurrentChurn", testConcurrentChurn},
		{"PurgeUploads", func(t *testing.T, s imaged.BlobStore) { testPurgeUploads(t, s, cfg.timeRes) }},
		{"ContextCancelled", testContextCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// Sizes at the edges that matter to stores: empty, one byte, around a
// page, around a typical buffer, and one big enough to need many buffers.
var sizes = []int64{0, 1, 4095, 4096, 4097, 1<<20 - 1, 1 << 20, 1<<20 + 1, 64 << 20}

// data returns n reproducible random bytes.
func data(seed uint64, n int64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8(seedBytes(seed)).Read(b)
	return b
}

// stream returns a reader of the same bytes data(seed, n) returns.
func stream(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if imaged.ErrorCode(err) != code {
		t.Fatalf("error = %v (code %q), want code %q", err, imaged.ErrorCode(err), code)
	}
}

// put commits b under key in one Write.
func put(t *testing.T, s imaged.BlobStore, key string, b []byte) imaged.BlobInfo {
	t.Helper()
	ctx := t.Context()
	w, err := s.Create(ctx, key)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if n, err := w.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write(%q) = %d, %v; want %d", key, n, err, len(b))
	}
	info, err := w.Commit(ctx)
	if err != nil {
		t.Fatalf("Commit(%q): %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(b)) {
		t.Fatalf("Commit(%q) = %+v, want key %q size %d", key, info, key, len(b))
	}
	return info
}

// get reads a whole blob.
func get(t *testing.T, s imaged.BlobStore, key string) []byte {
	t.Helper()
	return getRange(t, s, key, 0, -1)
}

func getRange(t *testing.T, s imaged.BlobStore, key string, off, n int64) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

// hashWriter hides every optional interface so that copies into it take
// the reader's plain path (or its WriterTo with a buffer).
type hashWriter struct {
	h interface{ Write([]byte) (int, error) }
}

func (w hashWriter) Write(p []byte) (int, error) { return w.h.Write(p) }

// sha reads a blob range with io.Copy (the reader's WriterTo path, if it
// has one) and returns its SHA-256 and length.
func sha(t *testing.T, s imaged.BlobStore, key string, off, n int64) ([32]byte, int64) {
	t.Helper()
	r, err := s.Open(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	h := sha256.New()
	got, err := io.Copy(hashWriter{h}, r)
	if err != nil {
		t.Fatalf("copy %q: %v", key, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, got
}

func testRoundTripSizes(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	for i, size := range sizes {
		key := fmt.Sprintf("images/size-%d", size)
		// Stream the bytes in with io.Copy (the writer's ReadFrom, if
		// any) and out with io.Copy (the reader's WriterTo), then
		// compare digests: the big size never needs to be in memory.
		w, err := s.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.New()
		n, err := io.Copy(w, io.TeeReader(stream(uint64(i), size), want))
		if err != nil || n != size {
			t.Fatalf("copy %d bytes into %q = %d, %v", size, key, n, err)
		}
		info, err := w.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != key || info.Size != size || info.ModTime.IsZero() {
			t.Fatalf("Commit = %+v, want key %q size %d and a time", info, key, size)
		}
		st, err := s.Stat(ctx, key)
		if err != nil || st.Key != key || st.Size != size || !st.ModTime.Equal(info.ModTime) {
			t.Fatalf("Stat = %+v, %v; want %+v", st, err, info)
		}
		sum, got := sha(t, s, key, 0, -1)
		if got != size || !bytes.Equal(sum[:], want.Sum(nil)) {
			t.Fatalf("size %d: read back %d bytes, digest mismatch %v", size, got, !bytes.Equal(sum[:], want.Sum(nil)))
		}
		if size <= 1<<20+1 {
			// And through plain Read calls.
			if got := get(t, s, key); !bytes.Equal(got, data(uint64(i), size)) {
				t.Fatalf("size %d: ReadAll returned different bytes (%d)", size, len(got))
			}
		}
	}
}

// testWriteStyles writes the same bytes in differently sized pieces: every
// way must store exactly the bytes written.
func testWriteStyles(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	want := data(7, 3<<20+12345)
	chunks := []int{1, 1000, 4096, 32 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3 << 20}
	for _, chunk := range chunks {
		key := fmt.Sprintf("styles/chunk-%d", chunk)
		w, err := s.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		b := want
		if chunk == 1 {
			b = want[:100000] // a byte at a time: keep it quick
		}
		for p := b; len(p) > 0; {
			n := min(chunk, len(p))
			if m, err := w.Write(p[:n]); err != nil || m != n {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, m, err)
			}
			p = p[n:]
		}
		if m, err := w.Write(nil); err != nil || m != 0 {
			t.Fatalf("empty Write = %d, %v", m, err)
		}
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, key); !bytes.Equal(got, b) {
			t.Fatalf("chunk %d: read back %d bytes, want %d equal ones", chunk, len(got), len(b))
		}
	}
}

func testRangedReads(t *testing.T, s imaged.BlobStore) {
	const size = 10000
	want := data(3, size)
	put(t, s, "ranged", want)
	tests := []struct {
		off, n     int64
		start, end int // want want[start:end]
	}{
		{0, -1, 0, size},
		{0, size, 0, size},
		{0, 0, 0, 0},
		{0, 10, 0, 10},
		{5000, 100, 5000, 5100},
		{5000, -1, 5000, size},
		{size - 1, 1, size - 1, size},
		{size - 1, -1, size - 1, size},
		{size - 1, 100, size - 1, size}, // length past the end: to the end
		{9000, 1 << 40, 9000, size},
		{size, -1, size, size}, // offset == size: empty, not an error
		{size, 5, size, size},
	}
	for _, tc := range tests {
		got := getRange(t, s, "ranged", tc.off, tc.n)
		if !bytes.Equal(got, want[tc.start:tc.end]) {
			t.Errorf("Open(%d, %d) read %d bytes, want want[%d:%d]", tc.off, tc.n, len(got), tc.start, tc.end)
		}
		sum, n := sha(t, s, "ranged", tc.off, tc.n)
		if n != int64(tc.end-tc.start) || sum != sha256.Sum256(want[tc.start:tc.end]) {
			t.Errorf("Open(%d, %d) copied %d bytes, want want[%d:%d]", tc.off, tc.n, n, tc.start, tc.end)
		}
	}
	for _, off := range []int64{size + 1, size + 1<<20} {
		r, err := s.Open(t.Context(), "ranged", off, -1)
		if err == nil {
			r.Close()
		}
		wantCode(t, err, imaged.ERANGE)
	}
	// An empty blob: offset 0 is its end.
	put(t, s, "empty", nil)
	if got := getRange(t, s, "empty", 0, 10); len(got) != 0 {
		t.Fatalf("empty blob read %d bytes", len(got))
	}
	_, err := s.Open(t.Context(), "empty", 1, -1)
	wantCode(t, err, imaged.ERANGE)
}

func testNotFound(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	_, err := s.Stat(ctx, "missing")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.Open(ctx, "missing", 0, -1)
	wantCode(t, err, imaged.ENOTFOUND)
	put(t, s, "dir/file", []byte("x"))
	for _, key := range []string{"dir", "dir/file/below", "dir/other", "file"} {
		_, err = s.Stat(ctx, key)
		wantCode(t, err, imaged.ENOTFOUND)
		_, err = s.Open(ctx, key, 0, -1)
		wantCode(t, err, imaged.ENOTFOUND)
	}
}

func keys(t *testing.T, s imaged.BlobStore, prefix string) []string {
	t.Helper()
	var out []string
	err := s.List(t.Context(), prefix, func(i imaged.BlobInfo) error {
		out = append(out, i.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func testInvisibleBeforeCommit(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	w, err := s.Create(ctx, "pending/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data(1, 2<<20)); err != nil { // more than a buffer
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "pending/a")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.Open(ctx, "pending/a", 0, -1)
	wantCode(t, err, imaged.ENOTFOUND)
	if k := keys(t, s, ""); len(k) != 0 {
		t.Fatalf("List before Commit = %v, want nothing", k)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if k := keys(t, s, ""); !slices.Equal(k, []string{"pending/a"}) {
		t.Fatalf("List after Commit = %v", k)
	}
}

func testCancel(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	w, err := s.Create(ctx, "c/new")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data(1, 3<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	_, err = s.Stat(ctx, "c/new")
	wantCode(t, err, imaged.ENOTFOUND)
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Cancel succeeded")
	}
	if _, err := w.Commit(ctx); err == nil {
		t.Fatal("Commit after Cancel succeeded")
	}
	_, err = s.Stat(ctx, "c/new")
	wantCode(t, err, imaged.ENOTFOUND)

	// Cancelling a replacement keeps the old version whole.
	old := data(2, 100000)
	put(t, s, "c/old", old)
	w, err = s.Create(ctx, "c/old")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data(3, 5000)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "c/old"); !bytes.Equal(got, old) {
		t.Fatal("an uncommitted write changed the old version")
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "c/old"); !bytes.Equal(got, old) {
		t.Fatal("Cancel changed the old version")
	}
	// Cancel with a done context still cleans up.
	w, err = s.Create(ctx, "c/ctx")
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Cancel(done); err != nil {
		t.Fatalf("Cancel with a done context: %v", err)
	}
	if k := keys(t, s, ""); !slices.Equal(k, []string{"c/old"}) {
		t.Fatalf("List = %v, want only c/old", k)
	}
}

func testWriterLifecycle(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	w, err := s.Create(ctx, "life")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("Cancel after Commit: %v", err)
	}
	if got := get(t, s, "life"); string(got) != "hello" {
		t.Fatalf("blob = %q after Cancel-after-Commit, want hello", got)
	}
}

func testReplaceOnCommit(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	put(t, s, "r/k", data(1, 5<<20))
	v2 := data(2, 1234)
	info := put(t, s, "r/k", v2)
	if got := get(t, s, "r/k"); !bytes.Equal(got, v2) {
		t.Fatalf("after replace read %d bytes, want the 1234 new ones", len(got))
	}
	if st, err := s.Stat(ctx, "r/k"); err != nil || st.Size != info.Size {
		t.Fatalf("Stat = %+v, %v; want size %d", st, err, info.Size)
	}
	if k := keys(t, s, ""); !slices.Equal(k, []string{"r/k"}) {
		t.Fatalf("List = %v, want one key", k)
	}
	put(t, s, "r/k", nil) // replacing with nothing is a replace too
	if st, err := s.Stat(ctx, "r/k"); err != nil || st.Size != 0 {
		t.Fatalf("Stat = %+v, %v; want size 0", st, err)
	}
}

func testReaderKeepsOldVersion(t *testing.T, s imaged.BlobStore) {
	v1, v2 := data(1, 3<<20), data(2, 1<<20)
	put(t, s, "v", v1)
	r, err := s.Open(t.Context(), "v", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	put(t, s, "v", v2)
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), v1) {
		t.Fatal("a reader opened before a replace did not read the old version whole")
	}
	if got := get(t, s, "v"); !bytes.Equal(got, v2) {
		t.Fatal("a reader opened after the replace did not read the new version")
	}
	// The same across a Delete.
	r2, err := s.Open(t.Context(), "v", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := s.Delete(t.Context(), "v"); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r2); err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("a reader opened before a Delete read %d bytes, %v", len(got), err)
	}
}

func testDelete(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	put(t, s, "d/a/b", []byte("1"))
	put(t, s, "d/a/c", []byte("2"))
	for range 2 { // idempotent
		if err := s.Delete(ctx, "d/a/b"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Stat(ctx, "d/a/b")
	wantCode(t, err, imaged.ENOTFOUND)
	if got := get(t, s, "d/a/c"); string(got) != "2" {
		t.Fatalf("sibling = %q", got)
	}
	for _, key := range []string{"never", "d/a", "d/a/b/c", "d/x/y"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%q) of a missing key: %v", key, err)
		}
	}
	if err := s.Delete(ctx, "d/a/c"); err != nil {
		t.Fatal(err)
	}
	if k := keys(t, s, ""); len(k) != 0 {
		t.Fatalf("List after deleting all = %v", k)
	}
	// The key space is still usable after its "directories" emptied.
	put(t, s, "d/a/b", []byte("3"))
	if got := get(t, s, "d/a/b"); string(got) != "3" {
		t.Fatalf("re-created blob = %q", got)
	}
}

func testList(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	// Keys whose string order differs from a naive directory walk's:
	// '-' < '.' < '/' < '0' < 'A' < '_' < 'a'.
	all := []string{"a", "a.b", "a/b", "a/b/c", "a/b.c", "a/b/c/d", "a-b", "a0", "A", "B/x",
		"b/x", "b_", "b.x/y", "images/0001", "images/0002", "images/00010", "images/0001.part/x",
		"x/_uploads", "z"}
	sizeOf := map[string]int64{}
	for i, k := range all {
		b := data(uint64(i), int64(i*10))
		put(t, s, k, b)
		sizeOf[k] = int64(len(b))
	}
	// Another pending write must not show.
	w, err := s.Create(ctx, "images/0003")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel(ctx)
	for _, prefix := range []string{"", "a", "a/", "a/b", "a/b/", "a.", "a/b/c", "a/b/c/d", "a/b/c/d/",
		"images/", "images/000", "images/0001", "images/0001.", "b", "B", "x/", "_", "_uploads", "zz",
		"nothing/", "a//", "/", "../", "./a", "a/../a"} {
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		var got []string
		err := s.List(ctx, prefix, func(i imaged.BlobInfo) error {
			got = append(got, i.Key)
			if i.Size != sizeOf[i.Key] || i.ModTime.IsZero() {
				t.Errorf("List(%q) gave %+v, want size %d and a time", prefix, i, sizeOf[i.Key])
			}
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) =\n %q, want\n %q", prefix, got, want)
		}
	}
}

func testListStops(t *testing.T, s imaged.BlobStore) {
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		put(t, s, k, []byte(k))
	}
	stop := errors.New("stop")
	var seen []string
	err := s.List(t.Context(), "", func(i imaged.BlobInfo) error {
		seen = append(seen, i.Key)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(seen, []string{"a/1", "a/2"}) {
		t.Fatalf("List = %v after %v, want the callback's error after a/1 a/2", err, seen)
	}
}

// InvalidKeys are keys every store must reject with EINVALID.
var InvalidKeys = []string{"", "/", "/a", "a/", "a//b", ".", "..", "../a", "a/..", "a/../b", "./a", "a/./b",
	"_uploads", "_uploads/x", "a b", "a\x00b", "a\\b", "ü", "a:b", "a*", "~", "a+", "a+/b",
	strings.Repeat("x", 201), strings.Repeat("x/", 600) + "x"}

func testInvalidKeys(t *testing.T, s imaged.BlobStore, maxKeyLen int) {
	ctx := t.Context()
	for _, key := range InvalidKeys {
		_, err := s.Create(ctx, key)
		wantCode(t, err, imaged.EINVALID)
		_, err = s.Open(ctx, key, 0, -1)
		wantCode(t, err, imaged.EINVALID)
		_, err = s.Stat(ctx, key)
		wantCode(t, err, imaged.EINVALID)
		wantCode(t, s.Delete(ctx, key), imaged.EINVALID)
	}
	if k := keys(t, s, ""); len(k) != 0 {
		t.Fatalf("List = %v after invalid keys", k)
	}
	// The longest valid key and a 200-byte segment are fine.
	long := keyOfLen(maxKeyLen)
	if maxKeyLen < blob.MaxKeyLen {
		_, err := s.Create(ctx, keyOfLen(maxKeyLen+1))
		wantCode(t, err, imaged.EINVALID)
	}
	for _, key := range []string{long, strings.Repeat("y", 200), "-", "_", "...", ".a", "a.", "A-Z_a.z-09"} {
		put(t, s, key, []byte(key))
		if got := get(t, s, key); string(got) != key {
			t.Fatalf("key %.20q: read %q", key, got)
		}
	}
}

// keyOfLen returns a valid key of n bytes, of one-byte segments.
func keyOfLen(n int) string {
	k := (n - 1) / 2
	return strings.Repeat("x/", k) + "xy"[:n-2*k]
}

// testConcurrentSameKey races writers to one key while readers read it:
// every read and the final blob must be one writer's bytes whole.
func testConcurrentSameKey(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	const writers = 6
	versions := make(map[int][]byte) // by length, which differs per writer
	for i := range writers {
		b := data(uint64(100+i), int64(256<<10+i*4099))
		versions[len(b)] = b
	}
	check := func(what string, got []byte) {
		if want, ok := versions[len(got)]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes that are no single writer's version", what, len(got))
		}
	}
	put(t, s, "race", versions[256<<10])
	var wg sync.WaitGroup
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				r, err := s.Open(ctx, "race", 0, -1)
				if err != nil {
					t.Errorf("Open during the race: %v", err)
					return
				}
				b, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Errorf("read during the race: %v", err)
					return
				}
				check("a reader during the race", b)
			}
		})
	}
	for i := range writers {
		wg.Go(func() {
			b := data(uint64(100+i), int64(256<<10+i*4099))
			for round := range 3 {
				w, err := s.Create(ctx, "race")
				if err != nil {
					t.Error(err)
					return
				}
				for p := b; len(p) > 0; { // small writes, to interleave
					n := min(len(p), 7000+round)
					if _, err := w.Write(p[:n]); err != nil {
						t.Error(err)
						return
					}
					p = p[n:]
				}
				if _, err := w.Commit(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stopReaders)
	readers.Wait()
	check("the final blob", get(t, s, "race"))
	if k := keys(t, s, ""); !slices.Equal(k, []string{"race"}) {
		t.Fatalf("List = %v", k)
	}
}

// testLastCommitWins: the version is the last committed, not the last
// created.
func testLastCommitWins(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	a, err := s.Create(ctx, "lcw")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, "lcw")
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("first created"))
	b.Write([]byte("second created"))
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "lcw"); string(got) != "second created" {
		t.Fatalf("after b's commit: %q", got)
	}
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "lcw"); string(got) != "first created" {
		t.Fatalf("after a's commit: %q", got)
	}
}

// testConcurrentChurn commits and deletes neighbouring keys at once:
// stores with directories must not lose a commit to a Delete emptying a
// shared parent.
func testConcurrentChurn(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 40 {
				key := fmt.Sprintf("churn/%d/deep/k%d-%d", i%2, g, i)
				w, err := s.Create(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				w.Write([]byte(key))
				if _, err := w.Commit(ctx); err != nil {
					t.Errorf("Commit(%q): %v", key, err)
					return
				}
				if st, err := s.Stat(ctx, key); err != nil || st.Size != int64(len(key)) {
					t.Errorf("Stat(%q) right after its commit = %+v, %v", key, st, err)
					return
				}
				if err := s.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%q): %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if k := keys(t, s, ""); len(k) != 0 {
		t.Fatalf("List after churn = %v", k)
	}
}

// testPurgeUploads ages uploads with real (short) time, the only clock the
// interface lets the suite control: backends test finer cases themselves.
func testPurgeUploads(t *testing.T, s imaged.BlobStore, res time.Duration) {
	// An upload this old is stale; the young one, created just before
	// the purge, may look up to res older than it is.
	age := time.Second + res
	ctx := t.Context()
	put(t, s, "kept", []byte("committed"))
	old, err := s.Create(ctx, "p/old")
	if err != nil {
		t.Fatal(err)
	}
	old.Write([]byte("abandoned"))
	if n, err := s.PurgeUploads(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("PurgeUploads(1h) = %d, %v; want 0 young uploads purged", n, err)
	}
	time.Sleep(age + 500*time.Millisecond)
	young, err := s.Create(ctx, "p/young")
	if err != nil {
		t.Fatal(err)
	}
	young.Write([]byte("in progress"))
	if n, err := s.PurgeUploads(ctx, age); err != nil || n != 1 {
		t.Fatalf("PurgeUploads(%v) = %d, %v; want the 1 old upload purged", age, n, err)
	}
	if n, err := s.PurgeUploads(ctx, age); err != nil || n != 0 {
		t.Fatalf("second PurgeUploads(%v) = %d, %v; want 0", age, n, err)
	}
	if _, err := young.Commit(ctx); err != nil {
		t.Fatalf("Commit of the young upload after a purge: %v", err)
	}
	if got := get(t, s, "p/young"); string(got) != "in progress" {
		t.Fatalf("young = %q", got)
	}
	// The purged upload cannot commit, and leaves nothing.
	if _, err := old.Commit(ctx); err == nil {
		t.Fatal("Commit of a purged upload succeeded")
	}
	if err := old.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "p/old")
	wantCode(t, err, imaged.ENOTFOUND)
	// Committed blobs are never uploads, however old.
	if n, err := s.PurgeUploads(ctx, 0); err != nil || n != 0 {
		t.Fatalf("PurgeUploads(0) = %d, %v; want 0 with nothing pending", n, err)
	}
	if k := keys(t, s, ""); !slices.Equal(k, []string{"kept", "p/young"}) {
		t.Fatalf("List = %v", k)
	}
}

func testContextCancelled(t *testing.T, s imaged.BlobStore) {
	ctx := t.Context()
	for _, k := range []string{"c/1", "c/2", "c/3"} {
		put(t, s, k, []byte(k))
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	wantCanceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", what, err)
		}
	}
	_, err := s.Create(done, "c/new")
	wantCanceled("Create", err)
	_, err = s.Open(done, "c/1", 0, -1)
	wantCanceled("Open", err)
	_, err = s.Stat(done, "c/1")
	wantCanceled("Stat", err)
	wantCanceled("Delete", s.Delete(done, "c/1"))
	wantCanceled("List", s.List(done, "", func(imaged.BlobInfo) error { return nil }))
	_, err = s.PurgeUploads(done, 0)
	wantCanceled("PurgeUploads", err)

	// Commit with a done context fails and publishes nothing.
	w, err := s.Create(ctx, "c/new")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	_, err = w.Commit(done)
	wantCanceled("Commit", err)
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "c/new")
	wantCode(t, err, imaged.ENOTFOUND)

	// A context cancelled during List stops the walk.
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	calls := 0
	err = s.List(lctx, "", func(imaged.BlobInfo) error {
		calls++
		lcancel()
		return nil
	})
	wantCanceled("List cancelled midway", err)
	if calls != 1 {
		t.Errorf("List called fn %d times after the context was cancelled in the first", calls)
	}
	if k := keys(t, s, "c/"); !slices.Equal(k, []string{"c/1", "c/2", "c/3"}) {
		t.Errorf("List = %v, want the blobs intact", k)
	}
}
