package catalog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
)

// overLimit is Glance's 413 text for a project over one of its limits.
func overLimit(project, quota string, limit, usage, delta int64) string {
	return fmt.Sprintf("The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\nThe response body:\nProject %s is over a limit for [Resource %s is over limit of %d due to current usage %d and delta %d]",
		project, quota, limit, usage, delta)
}

// quotaEnv is a data env whose catalog enforces q.
func quotaEnv(t *testing.T, q catalog.Quotas) *dataEnv {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.Quotas = &q
	return newDataEnv(t, "secure", cfg)
}

func limits(mod func(*catalog.Quotas)) catalog.Quotas {
	q := catalog.Unlimited()
	mod(&q)
	return q
}

// usageOf returns the caller's usage as GET /v2/info/usage reports it.
func usageOf(t *testing.T, svc *catalog.Service, who *imaged.Identity) map[string]imaged.QuotaUsage {
	t.Helper()
	u, err := svc.ProjectUsage(as(who))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// wantRefusedClean checks that a refused transfer left the image queued,
// without lease (so without reservation).
func (e *dataEnv) wantRefusedClean(id string) {
	e.t.Helper()
	img := e.get(id)
	if img.Status != imaged.StatusQueued || img.Lease != nil || img.Size != nil {
		e.t.Fatalf("after a refused upload: status %s, lease %+v, size %v; want queued and clean", img.Status, img.Lease, img.Size)
	}
}

func TestQuotaImageCount(t *testing.T) {
	t.Parallel()
	for _, limit := range []int64{0, 1, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageCountTotal = limit }))
			attrs := map[string]any{"disk_format": "raw", "container_format": "bare"}
			var made []*imaged.Image
			// Below and at the limit: created.
			for range limit {
				img, err := e.svc.CreateImage(as(owner), attrs)
				if err != nil {
					t.Fatal(err)
				}
				made = append(made, img)
			}
			// Above: refused, with Glance's text.
			_, err := e.svc.CreateImage(as(owner), attrs)
			wantErr(t, err, imaged.ETOOLARGE, overLimit(owner.ProjectID, "image_count_total", limit, limit, 1))
			// Another project has its own count.
			if limit > 0 {
				if _, err := e.svc.CreateImage(as(other), attrs); err != nil {
					t.Fatalf("other project: %v", err)
				}
			}
			if u := usageOf(t, e.svc, owner)["image_count_total"]; u != (imaged.QuotaUsage{Limit: limit, Usage: limit}) {
				t.Fatalf("usage %+v", u)
			}
			// Deleted and killed images free their slot.
			if limit > 0 {
				if err := e.svc.DeleteImage(as(owner), made[0].ID); err != nil {
					t.Fatal(err)
				}
				img, err := e.svc.CreateImage(as(owner), attrs)
				if err != nil {
					t.Fatalf("after a delete: %v", err)
				}
				if _, err := e.store.UpdateImage(context.Background(), img.ID, func(i *imaged.Image) error {
					i.Status = imaged.StatusKilled
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if _, err := e.svc.CreateImage(as(owner), attrs); err != nil {
					t.Fatalf("after a kill: %v", err)
				}
			}
		})
	}
}

func TestQuotaSizeDeclared(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	const first = 600 << 10 // stored before each case
	cases := []struct {
		name string
		size int64
		ok   bool
	}{
		{"below", limit - first - 1, true},
		{"at", limit - first, true},
		{"above", limit - first + 1, false},
		{"far above", 10 * limit, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageSizeTotal = limit }))
			if _, err := e.svc.UploadImage(as(owner), e.image("raw").ID, bytes.NewReader(randomBytes(1, first)), first); err != nil {
				t.Fatal(err)
			}
			img := e.image("raw")
			body := &countingReader{r: io.LimitReader(zeroReader{}, tc.size)}
			_, err := e.svc.UploadImage(as(owner), img.ID, body, tc.size)
			if tc.ok {
				wantErr(t, err, "", "")
				if u := usageOf(t, e.svc, owner)["image_size_total"]; u != (imaged.QuotaUsage{Limit: limit, Usage: first + tc.size}) {
					t.Fatalf("usage %+v", u)
				}
				return
			}
			wantErr(t, err, imaged.ETOOLARGE, overLimit(owner.ProjectID, "image_size_total", limit, first, tc.size))
			if n := body.n.Load(); n != 0 {
				t.Fatalf("read %d bytes of an upload declared over the quota", n)
			}
			e.wantRefusedClean(img.ID)
			// The refusal released its reservation.
			if u := usageOf(t, e.svc, owner)["image_size_total"]; u.Usage != first {
				t.Fatalf("usage after refusal %+v, want %d", u, first)
			}
			// Another project is not limited by projA's bytes.
			oimg, err := e.svc.CreateImage(as(other), map[string]any{"disk_format": "raw", "container_format": "bare"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.UploadImage(as(other), oimg.ID, io.LimitReader(zeroReader{}, limit), limit); err != nil {
				t.Fatalf("other project: %v", err)
			}
		})
	}
}

func TestQuotaSizeStreamed(t *testing.T) {
	t.Parallel()
	// Over several reservation steps, so that growth is exercised.
	const limit = 40 << 20
	const first = 3 << 20
	cases := []struct {
		name string
		size int64
		ok   bool
	}{
		{"below", limit - first - 1, true},
		{"at", limit - first, true},
		{"above", limit - first + 1, false},
		{"far above", 1 << 40, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageSizeTotal = limit }))
			if _, err := e.svc.UploadImage(as(owner), e.image("raw").ID, io.LimitReader(zeroReader{}, first), -1); err != nil {
				t.Fatal(err)
			}
			img := e.image("raw")
			body := &countingReader{r: io.LimitReader(zeroReader{}, tc.size)}
			_, err := e.svc.UploadImage(as(owner), img.ID, body, -1)
			if tc.ok {
				wantErr(t, err, "", "")
				if got := e.get(img.ID); got.Lease != nil || *got.Size != tc.size {
					t.Fatalf("stored %v bytes, lease %+v", *got.Size, got.Lease)
				}
				if u := usageOf(t, e.svc, owner)["image_size_total"]; u.Usage != first+tc.size {
					t.Fatalf("usage %+v, want %d (the reservation must become the size)", u, first+tc.size)
				}
				return
			}
			wantErr(t, err, imaged.ETOOLARGE, "")
			prefix := overLimit(owner.ProjectID, "image_size_total", limit, first, 0)
			prefix = prefix[:strings.LastIndex(prefix, "delta")]
			if msg := imaged.ErrorMessage(err); !strings.HasPrefix(msg, prefix) {
				t.Fatalf("message %q, want it to start with %q", msg, prefix)
			}
			// Refused as soon as the bytes passed the quota: at most
			// one pipeline's worth of chunks beyond it.
			if n := body.n.Load(); n > limit-first+(4<<20) {
				t.Fatalf("read %d bytes before refusing; the quota left %d", n, limit-first)
			}
			e.wantRefusedClean(img.ID)
			if u := usageOf(t, e.svc, owner)["image_size_total"]; u.Usage != first {
				t.Fatalf("usage after refusal %+v, want %d", u, first)
			}
		})
	}
}

func TestQuotaUploadingCount(t *testing.T) {
	t.Parallel()
	e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageCountUploading = 1 }))
	a, b := e.image("raw"), e.image("raw")
	body := &blockingReader{first: make([]byte, 512<<10), started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(as(owner), a.ID, body, 512<<10)
		done <- err
	}()
	<-body.started
	// At the limit (one upload running): the second is refused.
	if u := usageOf(t, e.svc, owner)["image_count_uploading"]; u != (imaged.QuotaUsage{Limit: 1, Usage: 1}) {
		t.Fatalf("usage during an upload %+v", u)
	}
	second := &countingReader{r: bytes.NewReader(make([]byte, 1024))}
	_, err := e.svc.UploadImage(as(owner), b.ID, second, 1024)
	wantErr(t, err, imaged.ETOOLARGE, overLimit(owner.ProjectID, "image_count_uploading", 1, 2, 0))
	if second.n.Load() != 0 {
		t.Fatal("read bytes of a refused upload")
	}
	e.wantRefusedClean(b.ID)
	close(body.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Below the limit again: it works.
	if _, err := e.svc.UploadImage(as(owner), b.ID, bytes.NewReader(make([]byte, 1024)), 1024); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, e.svc, owner)["image_count_uploading"]; u.Usage != 0 {
		t.Fatalf("usage after the uploads %+v", u)
	}

	// A limit of 0 refuses every upload.
	z := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageCountUploading = 0 }))
	_, err = z.svc.UploadImage(as(owner), z.image("raw").ID, bytes.NewReader(nil), 0)
	wantErr(t, err, imaged.ETOOLARGE, overLimit(owner.ProjectID, "image_count_uploading", 0, 1, 0))
}

// TestQuotaRacingUploads races uploads (declared and chunked, from two
// catalogs as from two processes) for the last bytes of a quota: whatever
// the interleaving, what is stored never exceeds the quota, and every loser
// gets the quota's 413.
func TestQuotaRacingUploads(t *testing.T) {
	t.Parallel()
	const limit = 4 << 20
	for _, tc := range []struct {
		name string
		each int64 // bytes per upload
		n    int
		size func(n int64) int64
	}{
		{"declared, one fits", limit/2 + 1, 6, func(n int64) int64 { return n }},
		{"chunked, one fits", limit/2 + 1, 6, func(int64) int64 { return -1 }},
		{"declared, four fit", limit / 4, 8, func(n int64) int64 { return n }},
		{"chunked, four fit", limit / 4, 8, func(int64) int64 { return -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageSizeTotal = limit }))
			svcs := []*catalog.Service{e.svc, e.service(e.svc.Config())}
			imgs := make([]*imaged.Image, tc.n)
			for i := range imgs {
				imgs[i] = e.image("raw")
			}
			start := make(chan struct{})
			errs := make([]error, tc.n)
			var wg sync.WaitGroup
			for i := range tc.n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = svcs[i%2].UploadImage(as(owner), imgs[i].ID, io.LimitReader(zeroReader{}, tc.each), tc.size(tc.each))
				}()
			}
			close(start)
			wg.Wait()
			var stored int64
			for i, err := range errs {
				switch imaged.ErrorCode(err) {
				case "":
					stored += tc.each
				case imaged.ETOOLARGE:
					if !strings.Contains(imaged.ErrorMessage(err), "Resource image_size_total is over limit of") {
						t.Errorf("upload %d: %v", i, err)
					}
					e.wantRefusedClean(imgs[i].ID)
				default:
					t.Errorf("upload %d: %v", i, err)
				}
			}
			if stored > limit {
				t.Fatalf("stored %d bytes over a quota of %d", stored, limit)
			}
			if u := usageOf(t, e.svc, owner)["image_size_total"]; u.Usage != stored {
				t.Fatalf("usage %+v, want %d (no reservation left behind)", u, stored)
			}
			t.Logf("%d of %d uploads stored %d of %d bytes", stored/tc.each, tc.n, stored, limit)
			// The quota is not left blocked: what is left can be used.
			if left := limit - stored; left > 0 {
				if _, err := e.svc.UploadImage(as(owner), e.image("raw").ID, io.LimitReader(zeroReader{}, left), -1); err != nil {
					t.Fatalf("filling the %d bytes left: %v", left, err)
				}
			}
		})
	}
}

// TestQuotaUsageDuringUpload: an upload's reservation counts in the usage
// while it runs, and becomes the image's size when it ends.
func TestQuotaUsageDuringUpload(t *testing.T) {
	t.Parallel()
	e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageSizeTotal = 10 << 20 }))
	img := e.image("raw")
	const size = 1 << 20
	body := &blockingReader{first: make([]byte, 256<<10), started: make(chan struct{}), release: make(chan struct{}),
		rest: io.LimitReader(zeroReader{}, size-256<<10)}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.UploadImage(as(owner), img.ID, body, size)
		done <- err
	}()
	<-body.started
	u := usageOf(t, e.svc, owner)
	if u["image_size_total"].Usage != size || u["image_count_uploading"].Usage != 1 {
		t.Fatalf("usage during the upload %+v", u)
	}
	close(body.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	u = usageOf(t, e.svc, owner)
	want := map[string]imaged.QuotaUsage{
		"image_size_total":      {Limit: 10 << 20, Usage: size},
		"image_stage_total":     {Limit: -1, Usage: 0},
		"image_count_total":     {Limit: -1, Usage: 1},
		"image_count_uploading": {Limit: -1, Usage: 0},
	}
	if fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("usage %v, want %v", u, want)
	}
}

// TestAdmitTransferStage drives the hook a stage calls: an image moved to
// uploading with its reservation is checked against image_stage_total, and
// a chunked stage is cut at the quota.
func TestAdmitTransferStage(t *testing.T) {
	t.Parallel()
	const limit = 2 << 20
	e := quotaEnv(t, limits(func(q *catalog.Quotas) { q.ImageStageTotal = limit }))
	claim := func(reserved int64) *imaged.Image {
		t.Helper()
		img, err := e.store.UpdateImage(context.Background(), e.image("raw").ID, func(i *imaged.Image) error {
			i.Status = imaged.StatusUploading
			i.Lease = &imaged.Lease{ID: fmt.Sprintf("%032x", reserved), Holder: "test", Expires: time.Now().Add(time.Minute), Reserved: reserved}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// Declared: at the quota passes (and the body is not wrapped), over
	// it is refused.
	at := claim(limit)
	r, err := e.svc.AdmitTransfer(as(owner), at, strings.NewReader("x"), limit)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*strings.Reader); !ok {
		t.Fatalf("a body reserved up front was wrapped: %T", r)
	}
	over := claim(1)
	_, err = e.svc.AdmitTransfer(as(owner), over, strings.NewReader("x"), 1)
	wantErr(t, err, imaged.ETOOLARGE, overLimit(owner.ProjectID, "image_stage_total", limit, limit, 1))
	// Chunked, with the quota half used: the reader stops at the rest.
	if _, err := e.store.UpdateImage(context.Background(), at.ID, func(i *imaged.Image) error {
		i.Lease.Reserved = limit / 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DeleteImage(context.Background(), over.ID, nil); err != nil {
		t.Fatal(err)
	}
	chunked := claim(0)
	r, err = e.svc.AdmitTransfer(as(owner), chunked, io.LimitReader(zeroReader{}, limit), -1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	wantErr(t, err, imaged.ETOOLARGE, "")
	if n > limit/2 {
		t.Fatalf("passed %d bytes; the quota left %d", n, limit/2)
	}
	if !strings.Contains(imaged.ErrorMessage(err), "Resource image_stage_total is over limit of") {
		t.Fatalf("message %q", imaged.ErrorMessage(err))
	}
}
