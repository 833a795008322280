package catalog_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// dataEnv is a catalog with a real blob store; its clock is the system
// clock (uploads run goroutines) shifted by an adjustable offset, so that
// tests can make leases expire.
type dataEnv struct {
	t     *testing.T
	store *sqlstore.Store
	blobs *fs.Store
	pol   imaged.Policy
	cfg   catalog.Config
	skew  atomic.Int64 // nanoseconds added to the system clock
	svc   *catalog.Service
}

func newDataEnv(t *testing.T, mode string, cfg catalog.Config) *dataEnv {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	// Unbuffered, as cmd/imaged opens it.
	blobs, err := fs.New(t.TempDir(), fs.WithBufferSize(0))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.ByName(mode)
	if err != nil {
		t.Fatal(err)
	}
	e := &dataEnv{t: t, store: st, blobs: blobs, pol: pol, cfg: cfg}
	e.svc = e.service(cfg)
	return e
}

// service returns another catalog over the same stores (another process).
func (e *dataEnv) service(cfg catalog.Config) *catalog.Service {
	clock := imaged.ClockFunc(func() time.Time {
		return time.Now().UTC().Add(time.Duration(e.skew.Load())).Truncate(time.Microsecond)
	})
	return catalog.New(e.store, e.pol, cfg).WithClock(clock).WithBlobStore(e.blobs)
}

// image creates a queued image of projA.
func (e *dataEnv) image(diskFormat string) *imaged.Image {
	e.t.Helper()
	img, err := e.svc.CreateImage(as(owner), map[string]any{"disk_format": diskFormat, "container_format": "bare"})
	if err != nil {
		e.t.Fatal(err)
	}
	return img
}

// blobKeys lists every committed blob.
func (e *dataEnv) blobKeys() []string {
	e.t.Helper()
	var keys []string
	if err := e.blobs.List(context.Background(), "", func(b imaged.BlobInfo) error {
		keys = append(keys, b.Key)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

func (e *dataEnv) get(id string) *imaged.Image {
	e.t.Helper()
	img, err := e.store.GetImage(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return img
}

// wantQueued checks that a failed upload left the image queued, without
// lease, and no bytes behind.
func (e *dataEnv) wantQueued(id string) {
	e.t.Helper()
	img := e.get(id)
	if img.Status != imaged.StatusQueued || img.Lease != nil || img.Size != nil || img.Checksum != "" {
		e.t.Fatalf("after a failed upload: status %s, lease %+v, size %v, checksum %q; want queued and clean", img.Status, img.Lease, img.Size, img.Checksum)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		e.t.Fatalf("blobs left behind: %v", keys)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func download(t *testing.T, svc *catalog.Service, who *imaged.Identity, id string, off, n int64) []byte {
	t.Helper()
	d, err := svc.DownloadImage(as(who), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Open == nil {
		t.Fatal("image has no data")
	}
	rc, err := d.Open(context.Background(), off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 4 << 20} {
		for _, declared := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/declared=%v", n, declared), func(t *testing.T) {
				data := randomBytes(uint64(n), n)
				img := e.image("raw")
				size := int64(-1)
				if declared {
					size = int64(n)
				}
				// iotest-style one-byte-at-a-time reads would take long
				// for 4 MiB; a plain reader plus a chunked one cover
				// both read shapes.
				var body io.Reader = bytes.NewReader(data)
				if !declared {
					body = io.MultiReader(bytes.NewReader(data[:n/3]), bytes.NewReader(data[n/3:]))
				}
				got, err := e.svc.UploadImage(as(owner), img.ID, body, size)
				if err != nil {
					t.Fatal(err)
				}
				md := md5.Sum(data)
				sh := sha512.Sum512(data)
				if got.Status != imaged.StatusActive || got.Size == nil || *got.Size != int64(n) ||
					got.Checksum != hex.EncodeToString(md[:]) || got.OSHashAlgo != "sha512" ||
					got.OSHashValue != hex.EncodeToString(sh[:]) || got.Lease != nil {
					t.Fatalf("after upload: %+v", got)
				}
				if got.VirtualSize == nil || *got.VirtualSize != int64(n) {
					t.Errorf("virtual_size = %v, want %d (raw)", got.VirtualSize, n)
				}
				stored := e.get(img.ID)
				if stored.Checksum != got.Checksum || stored.Status != imaged.StatusActive || len(stored.Locations) != 1 {
					t.Fatalf("stored image differs: %+v", stored)
				}
				if back := download(t, e.svc, owner, img.ID, 0, -1); !bytes.Equal(back, data) {
					t.Fatalf("downloaded %d bytes, not the %d uploaded", len(back), n)
				}
				// A second upload is a conflict, as in Glance.
				_, err = e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), size)
				wantErr(t, err, imaged.ECONFLICT, "Image status transition from active to saving is not allowed")
			})
		}
	}
}

func TestUploadConflictAndPreconditions(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "legacy", catalog.DefaultConfig())
	for _, st := range []imaged.ImageStatus{imaged.StatusSaving, imaged.StatusActive, imaged.StatusDeactivated, imaged.StatusKilled, imaged.StatusImporting} {
		img := e.image("raw")
		if _, err := e.store.UpdateImage(context.Background(), img.ID, func(i *imaged.Image) error { i.Status = st; return nil }); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.UploadImage(as(owner), img.ID, strings.NewReader("x"), 1)
		wantErr(t, err, imaged.ECONFLICT, fmt.Sprintf("Image status transition from %s to saving is not allowed", st))
		if got := e.get(img.ID); got.Status != st {
			t.Fatalf("status changed to %s", got.Status)
		}
	}
	noFormats, err := e.svc.CreateImage(as(owner), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UploadImage(as(owner), noFormats.ID, strings.NewReader("x"), 1)
	wantErr(t, err, imaged.EINVALID, "Properties disk_format, container_format must be set prior to saving data.")
	_, err = e.svc.UploadImage(as(owner), "00000000-0000-0000-0000-000000000000", strings.NewReader("x"), 1)
	wantErr(t, err, imaged.ENOTFOUND, "No image found with ID 00000000-0000-0000-0000-000000000000")
}

func TestUploadDeclaredSizeMismatch(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	data := randomBytes(1, 300<<10)
	for _, declared := range []int64{int64(len(data)) - 1, int64(len(data)) + 1, 0} {
		img := e.image("raw")
		_, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), declared)
		wantErr(t, err, imaged.EINVALID, "")
		e.wantQueued(img.ID)
		// The retry with the right size works.
		if _, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteImage(as(owner), img.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestUploadSizeCap(t *testing.T) {
	t.Parallel()
	cfg := catalog.DefaultConfig()
	cfg.ImageSizeCap = 1 << 20
	e := newDataEnv(t, "secure", cfg)
	const msg = "The incoming image is too large: The provided image is too large."

	// Declared over the cap: refused before a byte is read.
	img := e.image("raw")
	body := &countingReader{r: bytes.NewReader(make([]byte, 2<<20))}
	_, err := e.svc.UploadImage(as(owner), img.ID, body, 2<<20)
	wantErr(t, err, imaged.ETOOLARGE, msg)
	if body.n.Load() != 0 {
		t.Errorf("read %d bytes of an upload declared over the cap", body.n.Load())
	}
	e.wantQueued(img.ID)

	// Undeclared, streamed over the cap: refused once past it, without
	// reading the whole body.
	body = &countingReader{r: io.LimitReader(zeroReader{}, 64<<20)}
	_, err = e.svc.UploadImage(as(owner), img.ID, body, -1)
	wantErr(t, err, imaged.ETOOLARGE, msg)
	if n := body.n.Load(); n > 2<<20 {
		t.Errorf("read %d bytes before refusing an upload over a 1 MiB cap", n)
	}
	e.wantQueued(img.ID)

	// Exactly the cap is fine.
	if _, err := e.svc.UploadImage(as(owner), img.ID, io.LimitReader(zeroReader{}, 1<<20), -1); err != nil {
		t.Fatal(err)
	}
}

// zeroReader is an endless source of zeros that costs nothing: it leaves
// the buffer as it is (the pipeline reuses its buffers, which start zeroed
// and only ever hold zeros here).
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { return len(p), nil }

// failingReader returns data, then an error (the client went away).
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestUploadReaderFailsMidway(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	data := randomBytes(2, 1<<20)
	img := e.image("raw")
	_, err := e.svc.UploadImage(as(owner), img.ID, &failingReader{data: data[:600<<10], err: errors.New("connection reset by peer")}, int64(len(data)))
	if err == nil {
		t.Fatal("upload from a failing reader succeeded")
	}
	e.wantQueued(img.ID)
	got, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(data); got.Checksum != hex.EncodeToString(sum[:]) {
		t.Fatal("retry stored other bytes")
	}
	if keys := e.blobKeys(); len(keys) != 1 {
		t.Fatalf("blobs after retry: %v", keys)
	}
}

// ctxReader blocks until its context is done, after handing out some bytes.
type blockingReader struct {
	first   []byte
	started chan struct{}
	release chan struct{}
	rest    io.Reader
	once    sync.Once
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	b.once.Do(func() { close(b.started) })
	<-b.release
	if b.rest == nil {
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func TestUploadContextCancelled(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	img := e.image("raw")
	ctx, cancel := context.WithCancel(as(owner))
	body := &blockingReader{first: make([]byte, 512<<10), started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(ctx, img.ID, body, 1<<20)
		done <- err
	}()
	<-body.started
	if got := e.get(img.ID); got.Status != imaged.StatusSaving || got.Lease == nil {
		t.Fatalf("during upload: status %s, lease %+v", got.Status, got.Lease)
	}
	cancel()
	close(body.release) // the server closes the body when the client goes
	if err := <-done; err == nil {
		t.Fatal("cancelled upload succeeded")
	}
	e.wantQueued(img.ID)
}

func TestUploadConcurrent(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	img := e.image("raw")
	data := randomBytes(3, 2<<20)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), int64(len(data)))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch imaged.ErrorCode(err) {
		case "":
			wins++
		case imaged.ECONFLICT:
			if !strings.HasPrefix(imaged.ErrorMessage(err), "Image status transition from ") {
				t.Errorf("conflict message %q", imaged.ErrorMessage(err))
			}
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d uploads won, want exactly 1", wins)
	}
	if keys := e.blobKeys(); len(keys) != 1 {
		t.Fatalf("blobs: %v", keys)
	}
	if back := download(t, e.svc, owner, img.ID, 0, -1); !bytes.Equal(back, data) {
		t.Fatal("downloaded bytes differ")
	}
}

// slowReader yields chunks with pauses, for a total time longer than the
// upload lease.
type slowReader struct {
	data  []byte
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p[:min(len(p), 4096)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestUploadLeaseRenewal(t *testing.T) {
	t.Parallel()
	cfg := catalog.DefaultConfig()
	// The lease is short next to the upload (40 x 60 ms = 2.4 s) but long
	// next to its renewal period (lease/3), so that a CPU-starved CI
	// machine delaying one renewal does not expire it.
	cfg.UploadLease = 1500 * time.Millisecond
	e := newDataEnv(t, "secure", cfg)
	img := e.image("raw")
	data := randomBytes(4, 40*4096)
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(as(owner), img.ID, &slowReader{data: data, pause: 60 * time.Millisecond}, int64(len(data)))
		done <- err
	}()
	// Meanwhile another process sweeps for abandoned uploads: the renewed
	// lease never looks expired.
	other := e.service(cfg)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("slow upload (2.4 s with a 1.5 s lease) failed: %v", err)
			}
			if got := e.get(img.ID); got.Status != imaged.StatusActive {
				t.Fatalf("status %s", got.Status)
			}
			return
		case <-ticker.C:
			// The whole maintenance round of cmd/imaged, with the
			// lease as the purge age.
			if n, err := other.RecoverAbandoned(context.Background()); err != nil || n != 0 {
				t.Fatalf("recovery during a live upload: %d, %v", n, err)
			}
			if n, err := e.blobs.PurgeUploads(context.Background(), cfg.UploadLease); err != nil || n != 0 {
				t.Fatalf("purge during a live upload: %d, %v", n, err)
			}
			if n, err := other.SweepOrphans(context.Background()); err != nil || n != 0 {
				t.Fatalf("sweep during a live upload: %d, %v", n, err)
			}
		}
	}
}

func TestRecoverAbandoned(t *testing.T) {
	t.Parallel()
	cfg := catalog.DefaultConfig()
	cfg.UploadLease = time.Hour // no renewal during the test
	e := newDataEnv(t, "secure", cfg)
	img := e.image("raw")
	idle := e.image("raw") // queued, no lease: left alone
	body := &blockingReader{first: make([]byte, 300<<10), started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(as(owner), img.ID, body, -1)
		done <- err
	}()
	<-body.started
	lease := e.get(img.ID).Lease
	if lease == nil {
		t.Fatal("no lease during upload")
	}
	// Not expired yet: nothing to recover.
	if n, err := e.svc.RecoverAbandoned(context.Background()); err != nil || n != 0 {
		t.Fatalf("recovered %d, %v before expiry", n, err)
	}
	// Two hours later, two processes recover at once: the image is
	// recovered exactly once.
	e.skew.Store(int64(2 * time.Hour))
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.service(cfg).RecoverAbandoned(context.Background())
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 {
		t.Fatalf("recovered %v, want 1 in all", counts)
	}
	if got := e.get(img.ID); got.Status != imaged.StatusQueued || got.Lease != nil {
		t.Fatalf("after recovery: status %s lease %+v", got.Status, got.Lease)
	}
	if got := e.get(idle.ID); got.Status != imaged.StatusQueued {
		t.Fatalf("idle image: %s", got.Status)
	}
	// The hung upload wakes up and fails: its lease is gone; it must not
	// touch the recovered image nor leave bytes.
	body.rest = bytes.NewReader(make([]byte, 1000))
	close(body.release)
	err := <-done
	wantErr(t, err, imaged.ECONFLICT, "")
	e.wantQueued(img.ID)
	// A retry works.
	if _, err := e.svc.UploadImage(as(owner), img.ID, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverRemovesCommittedBytes(t *testing.T) {
	t.Parallel()
	// A crash between Commit and the final update leaves a committed blob
	// under the lease's key: recovery deletes it.
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	img := e.image("raw")
	ctx := context.Background()
	lease := &imaged.Lease{ID: "deadbeef", Holder: "gone:1", Expires: time.Now().Add(-time.Minute)}
	if _, err := e.store.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Status, i.Lease = imaged.StatusSaving, lease
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w, err := e.blobs.Create(ctx, "images/"+img.ID+"/deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.RecoverAbandoned(ctx); err != nil || n != 1 {
		t.Fatalf("recovered %d, %v", n, err)
	}
	e.wantQueued(img.ID)
}

func TestSweepOrphans(t *testing.T) {
	t.Parallel()
	cfg := catalog.DefaultConfig()
	cfg.UploadLease = time.Minute
	e := newDataEnv(t, "secure", cfg)
	ctx := context.Background()
	put := func(key string) {
		w, err := e.blobs.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(key))
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	live := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), live.ID, strings.NewReader("live"), 4); err != nil {
		t.Fatal(err)
	}
	liveKey := e.blobKeys()[0]
	leased := e.image("raw")
	if _, err := e.store.UpdateImage(ctx, leased.ID, func(i *imaged.Image) error {
		i.Status = imaged.StatusSaving
		i.Lease = &imaged.Lease{ID: "cafe", Holder: "h:1", Expires: time.Now().Add(time.Hour)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deleted := e.image("raw")
	if err := e.svc.DeleteImage(as(owner), deleted.ID); err != nil {
		t.Fatal(err)
	}
	keep := []string{liveKey, "images/" + leased.ID + "/cafe", "other/thing"}
	orphans := []string{
		"images/" + live.ID + "/stale",                  // not the current data
		"images/" + leased.ID + "/old",                  // not the live lease
		"images/" + deleted.ID + "/x",                   // image deleted
		"images/00000000-0000-0000-0000-00000000000a/y", // never existed
	}
	for _, k := range append(keep[1:], orphans...) {
		put(k)
	}
	// Young blobs are within the grace period.
	if n, err := e.svc.SweepOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("swept %d, %v within the grace period", n, err)
	}
	e.skew.Store(int64(2 * time.Minute))
	n, err := e.svc.SweepOrphans(ctx)
	if err != nil || n != len(orphans) {
		t.Fatalf("swept %d, %v; want %d", n, err, len(orphans))
	}
	got := strings.Join(e.blobKeys(), " ")
	for _, k := range keep {
		if !strings.Contains(got, k) {
			t.Errorf("swept %s", k)
		}
	}
	if back := download(t, e.svc, owner, live.ID, 0, -1); string(back) != "live" {
		t.Fatalf("live data: %q", back)
	}
}

// qcow2 builds a minimal version 3 qcow2 header of the given virtual size;
// backing puts a backing file name in it.
func qcow2(vsize uint64, backing bool) []byte {
	b := make([]byte, 128<<10)
	copy(b, "QFI\xfb")
	binary.BigEndian.PutUint32(b[4:], 3)
	binary.BigEndian.PutUint32(b[20:], 16) // 64 KiB clusters
	binary.BigEndian.PutUint64(b[24:], vsize)
	binary.BigEndian.PutUint32(b[96:], 4)
	binary.BigEndian.PutUint32(b[100:], 112)
	if backing {
		binary.BigEndian.PutUint64(b[8:], 512)
		binary.BigEndian.PutUint32(b[16:], 9)
		copy(b[512:], "/etc/base")
	}
	return b
}

func TestUploadFormatChecks(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	tests := []struct {
		name, diskFormat string
		data             []byte
		code             string
		vsize            int64
	}{
		{"qcow2 as qcow2", "qcow2", qcow2(1<<30, false), "", 1 << 30},
		{"qcow2 with backing file", "qcow2", qcow2(1<<30, true), imaged.EINVALID, 0},
		{"qcow2 declared raw", "raw", qcow2(1<<30, false), imaged.EINVALID, 0},
		{"raw declared qcow2", "qcow2", randomBytes(5, 70000), imaged.EINVALID, 0},
		{"raw as raw", "raw", randomBytes(6, 70000), "", 70000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := e.image(tt.diskFormat)
			got, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(tt.data), int64(len(tt.data)))
			wantErr(t, err, tt.code, "")
			if tt.code != "" {
				if err := e.get(img.ID); err.Status != imaged.StatusQueued || err.Lease != nil {
					t.Fatalf("refused upload left %s", err.Status)
				}
				return
			}
			if got.VirtualSize == nil || *got.VirtualSize != tt.vsize {
				t.Fatalf("virtual_size %v, want %d", got.VirtualSize, tt.vsize)
			}
		})
	}
	if keys := e.blobKeys(); len(keys) != 2 {
		t.Fatalf("blobs: %v (want the two accepted uploads)", keys)
	}
}

func TestDownloadRanges(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	data := randomBytes(8, 100000)
	img := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 1}, {99999, -1}, {99999, 1}, {1000, 5000}, {50000, 1 << 30}} {
		want := data[r[0]:]
		if r[1] >= 0 && r[0]+r[1] < int64(len(data)) {
			want = data[r[0] : r[0]+r[1]]
		}
		if got := download(t, e.svc, owner, img.ID, r[0], r[1]); !bytes.Equal(got, want) {
			t.Errorf("range %v: got %d bytes, want %d", r, len(got), len(want))
		}
	}
	d, err := e.svc.DownloadImage(as(owner), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Open(context.Background(), 100000, -1)
	wantErr(t, err, imaged.ERANGE, "")

	// No data yet: Open is nil (HTTP 204).
	empty := e.image("raw")
	d, err = e.svc.DownloadImage(as(owner), empty.ID)
	if err != nil || d.Open != nil {
		t.Fatalf("download of a queued image: %v, open %v", err, d.Open != nil)
	}
	// A zero-byte image reads as empty.
	zero := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), zero.ID, strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	if got := download(t, e.svc, owner, zero.ID, 0, -1); len(got) != 0 {
		t.Fatalf("zero-byte image read %d bytes", len(got))
	}
}

func TestDeleteRemovesBytes(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	img := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), img.ID, strings.NewReader("bytes"), 5); err != nil {
		t.Fatal(err)
	}
	if len(e.blobKeys()) != 1 {
		t.Fatal("no blob after upload")
	}
	if err := e.svc.DeleteImage(as(owner), img.ID); err != nil {
		t.Fatal(err)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs after delete: %v", keys)
	}
}

func TestDeleteDuringUpload(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "secure", catalog.DefaultConfig())
	img := e.image("raw")
	body := &blockingReader{first: make([]byte, 300<<10), started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(as(owner), img.ID, body, -1)
		done <- err
	}()
	<-body.started
	if err := e.svc.DeleteImage(as(owner), img.ID); err != nil {
		t.Fatal(err)
	}
	close(body.release)
	err := <-done
	wantErr(t, err, imaged.ENOTFOUND, fmt.Sprintf("Image %s could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.", img.ID))
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs after delete during upload: %v", keys)
	}
}

// TestDataPersonas checks who may upload to and download from a shared
// image of projA (and a deactivated one), in both policy modes, as Glance
// 25.1 answers.
func TestDataPersonas(t *testing.T) {
	t.Parallel()
	type want struct{ upload, download, deactivated string }
	tests := []struct {
		who            *imaged.Identity
		legacy, secure want
	}{
		{admin, want{"", "", ""}, want{"", "", ""}},
		{owner, want{"", "", imaged.EFORBIDDEN}, want{"", "", imaged.EFORBIDDEN}},
		{ownerRead, want{"", "", imaged.EFORBIDDEN}, want{imaged.EFORBIDDEN, imaged.EFORBIDDEN, imaged.EFORBIDDEN}},
		{other, want{imaged.ENOTFOUND, imaged.ENOTFOUND, imaged.ENOTFOUND}, want{imaged.ENOTFOUND, imaged.ENOTFOUND, imaged.ENOTFOUND}},
		{pending, want{imaged.EFORBIDDEN, "", imaged.EFORBIDDEN}, want{imaged.EFORBIDDEN, "", imaged.EFORBIDDEN}},
		{accepted, want{imaged.EFORBIDDEN, "", imaged.EFORBIDDEN}, want{imaged.EFORBIDDEN, "", imaged.EFORBIDDEN}},
	}
	for _, mode := range []string{"legacy", "secure"} {
		e := newDataEnv(t, mode, catalog.DefaultConfig())
		env := &env{t: t, store: e.store, svc: e.svc}
		for _, tt := range tests {
			w := tt.legacy
			if mode == "secure" {
				w = tt.secure
			}
			t.Run(mode+"/"+tt.who.UserID, func(t *testing.T) {
				env.t = t
				img := env.sharedImage(map[string]any{"disk_format": "raw", "container_format": "bare"})
				_, err := e.svc.UploadImage(as(tt.who), img.ID, strings.NewReader("data"), 4)
				wantErr(t, err, w.upload, "")
				if err != nil {
					// Glance 25.1's wording in each mode.
					msg := "Not allowed to upload image data for image " + img.ID
					if mode == "secure" {
						msg = "You are not authorized to complete upload_image action."
					}
					if imaged.ErrorCode(err) == imaged.EFORBIDDEN && imaged.ErrorMessage(err) != msg {
						t.Errorf("upload refusal %q, want %q", imaged.ErrorMessage(err), msg)
					}
					if _, err := e.svc.UploadImage(as(owner), img.ID, strings.NewReader("data"), 4); err != nil {
						t.Fatal(err)
					}
				}
				_, err = e.svc.DownloadImage(as(tt.who), img.ID)
				if w.download == imaged.EFORBIDDEN {
					wantErr(t, err, w.download, "You are not authorized to complete download_image action.")
				} else {
					wantErr(t, err, w.download, "")
				}
				if err := e.svc.DeactivateImage(as(admin), img.ID); err != nil {
					t.Fatal(err)
				}
				_, err = e.svc.DownloadImage(as(tt.who), img.ID)
				wantErr(t, err, w.deactivated, "")
				if w.deactivated == imaged.EFORBIDDEN {
					wantErr(t, err, imaged.EFORBIDDEN, "The requested image has been deactivated. Image data download is forbidden.")
				}
			})
		}
	}
}

// BenchmarkUpload1GiB uploads 1 GiB from a zero-cost reader and reports
// MB/s next to crypto/md5's own speed in the same run: MD5 (and SHA-512)
// are the bound, so the ratio says how well the pipeline overlaps hashing
// with writing.
func BenchmarkUpload1GiB(b *testing.B) {
	const size = 1 << 30
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	blobs, err := fs.New(b.TempDir(), fs.WithBufferSize(0))
	if err != nil {
		b.Fatal(err)
	}
	pol, _ := policy.ByName("secure")
	svc := catalog.New(st, pol, catalog.DefaultConfig()).WithBlobStore(blobs)
	// References measured in the same run: crypto/md5 alone, and MD5 and
	// SHA-512 each on its own goroutine at once (the pipeline's bound: no
	// upload can hash faster than that).
	buf := make([]byte, 1<<20)
	mbs := func(d time.Duration) float64 { return 256 * (1 << 20) / d.Seconds() / 1e6 }
	start := time.Now()
	h := md5.New()
	for range 256 {
		h.Write(buf)
	}
	md5MBs := mbs(time.Since(start))
	start = time.Now()
	var wg sync.WaitGroup
	for _, h := range []hash.Hash{md5.New(), sha512.New()} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 256 {
				h.Write(buf)
			}
		}()
	}
	wg.Wait()
	boundMBs := mbs(time.Since(start))
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		img, err := svc.CreateImage(as(owner), map[string]any{"disk_format": "raw", "container_format": "bare"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := svc.UploadImage(as(owner), img.ID, io.LimitReader(zeroReader{}, size), size); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := svc.DeleteImage(as(owner), img.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(md5MBs, "md5-MB/s")
	b.ReportMetric(boundMBs, "md5||sha512-MB/s")
}
