package catalog

import (
	"context"
	"fmt"
	"io"

	"github.com/imaged/imaged"
)

// Quotas are per-project limits, as Glance's unified limits name them
// (glance/quota/keystone.py); -1 means unlimited. They apply to the project
// that owns the image (the caller's project when it creates one).
//
// How they are enforced, and why it is safe under concurrency (also across
// processes sharing a database):
//
//   - image_count_total is checked before an image is created, as Glance
//     does (usage + 1 > limit is refused). Like Glance's, the check and
//     the insert are not one transaction: creates racing for the last
//     slot may both succeed. Counting after the insert would close that,
//     but a refused create would then leave a tombstone that keeps a
//     client-chosen id taken for ever.
//   - The byte and upload-count quotas use "reserve, then check": the
//     transaction that moves an image to saving (or uploading, for a
//     stage) also records in its lease the bytes it reserves (the declared
//     length; 0 for a chunked body); once it has committed, AdmitTransfer
//     reads the project's usage, which counts every committed reservation
//     and every image being uploaded, and refuses if the project is over.
//     Of two transfers racing for the last bytes, the one that commits
//     second always sees the first, so they never both pass beyond the
//     quota; under contention both may be refused (never too many
//     accepted). A refused transfer is undone (back to queued), which
//     drops its reservation.
//   - A body of unknown length grows its reservation as bytes arrive
//     (AdmitTransfer's reader), with the same reserve-then-check step, and fails as
//     soon as the bytes would exceed the quota.
//   - Finishing an upload replaces the reservation with the image's size
//     in one update, so usage never dips or doubles.
type Quotas struct {
	ImageCountTotal     int64 // image_count_total: images that are not deleted or killed
	ImageSizeTotal      int64 // image_size_total: bytes of stored images (and uploads in progress)
	ImageStageTotal     int64 // image_stage_total: bytes of staged images (and stages in progress)
	ImageCountUploading int64 // image_count_uploading: images saving, uploading or importing
}

// Unlimited returns quotas that limit nothing (Glance without limits).
func Unlimited() Quotas {
	return Quotas{ImageCountTotal: -1, ImageSizeTotal: -1, ImageStageTotal: -1, ImageCountUploading: -1}
}

// quotas returns the configured quotas (Unlimited when none are).
func (s *Service) quotas() Quotas {
	if s.cfg.Quotas == nil {
		return Unlimited()
	}
	return *s.cfg.Quotas
}

// reservationStep is the least a chunked transfer grows its reservation by
// (when the quota leaves that much), so that it does not go to the database
// for every chunk; it grows by a quarter of what it holds when that is
// more, so that a large upload reserves O(log size) times.
const reservationStep = 1 << 20

// errOverLimit is Glance's LimitExceeded around oslo.limit's
// ProjectOverLimit, word for word.
func errOverLimit(project, quota string, limit, usage, delta int64) *imaged.Error {
	return imaged.Errorf(imaged.ETOOLARGE, "The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\nThe response body:\nProject %s is over a limit for [Resource %s is over limit of %d due to current usage %d and delta %d]",
		project, quota, limit, usage, delta)
}

// usage reads a project's usage.
func (s *Service) usage(ctx context.Context, project string) (imaged.Usage, error) {
	u, err := s.store.Usage(ctx, project)
	if err != nil {
		return imaged.Usage{}, fmt.Errorf("catalog: usage of %s: %w", project, err)
	}
	return u, nil
}

// checkImageCount refuses a new image of project beyond image_count_total.
func (s *Service) checkImageCount(ctx context.Context, project string) error {
	limit := s.quotas().ImageCountTotal
	if limit < 0 || project == "" {
		return nil
	}
	u, err := s.usage(ctx, project)
	if err != nil {
		return err
	}
	if u.ImageCount+1 > limit {
		return errOverLimit(project, imaged.QuotaImageCountTotal, limit, u.ImageCount, 1)
	}
	return nil
}

// AdmitTransfer is the quota gate of every transfer of bytes into an image
// (an upload, a stage, an import). Call it with the image as the
// transaction that moved it to saving, uploading or importing wrote it,
// after that transaction committed, and with the body and its declared
// length (-1 if unknown); read the bytes from the reader it returns. On an
// error, undo that move (back to queued), which releases the reservation.
//
// The lease of a saving or uploading image carries the bytes reserved for
// the transfer (its declared length; Lease.Reserved). AdmitTransfer refuses,
// with Glance's 413, a project that is then over image_count_uploading (the
// image counts itself, as in Glance) or over the byte quota the transfer
// fills: image_stage_total for a stage (uploading), image_size_total
// otherwise. The reader it returns grows the reservation ahead of bytes not
// reserved up front (a chunked body) and fails with the same 413 as soon as
// they would exceed the quota.
func (s *Service) AdmitTransfer(ctx context.Context, img *imaged.Image, body io.Reader, size int64) (io.Reader, error) {
	q := s.quotas()
	limit := byteLimit(q, img)
	if img.Owner == "" || (limit < 0 && q.ImageCountUploading < 0) {
		return body, nil
	}
	u, err := s.usage(ctx, img.Owner)
	if err != nil {
		return nil, err
	}
	if l := q.ImageCountUploading; l >= 0 && u.Uploading > l {
		return nil, errOverLimit(img.Owner, imaged.QuotaImageCountUploading, l, u.Uploading, 0)
	}
	if err := checkBytes(img, limit, u, 0); err != nil {
		return nil, err
	}
	reserved := reservation(img)
	if limit < 0 || img.Lease == nil || (size >= 0 && size <= reserved) {
		return body, nil
	}
	return &quotaReader{s: s, ctx: ctx, img: img.Clone(), limit: limit, body: body, reserved: reserved}, nil
}

// byteLimit is the byte quota a transfer into img fills.
func byteLimit(q Quotas, img *imaged.Image) int64 {
	if quotaName(img) == imaged.QuotaImageStageTotal {
		return q.ImageStageTotal
	}
	return q.ImageSizeTotal
}

// reservation is what img's lease reserves and the store counts (only
// while saving or uploading).
func reservation(img *imaged.Image) int64 {
	if img.Lease == nil || (img.Status != imaged.StatusSaving && img.Status != imaged.StatusUploading) {
		return 0
	}
	return img.Lease.Reserved
}

// checkBytes refuses when the project's bytes (u) exceed limit. The
// message splits them as oslo.limit does: the usage without this
// transfer's reservation, and as delta what the transfer asked for (want,
// or its reservation when want is 0).
func checkBytes(img *imaged.Image, limit int64, u imaged.Usage, want int64) error {
	if limit < 0 {
		return nil
	}
	used := usedBytes(img, u)
	if used <= limit {
		return nil
	}
	reserved := reservation(img)
	if want == 0 {
		want = reserved
	}
	return errOverLimit(img.Owner, quotaName(img), limit, used-reserved, want)
}

// quotaReader is AdmitTransfer's reader of a body not reserved up front.
// It is used by one goroutine.
type quotaReader struct {
	s        *Service
	ctx      context.Context
	img      *imaged.Image // the image as the transfer claimed it
	limit    int64
	body     io.Reader
	n        int64 // bytes read
	reserved int64 // bytes reserved, >= n
	err      error // sticky
}

func (r *quotaReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.body.Read(p)
	if n > 0 && r.n+int64(n) > r.reserved {
		if gerr := r.grow(r.n + int64(n)); gerr != nil {
			r.err = gerr
			return 0, gerr // the bytes beyond the reservation are not passed on
		}
	}
	r.n += int64(n)
	return n, err
}

// grow raises the reservation to at least need: to need plus a step, within
// what the quota has left; then it checks the project's usage again, as
// AdmitTransfer does. An importing image's reservation is not counted by
// the store: it is only the running check that the bytes fit what the
// quota left when they arrived.
func (r *quotaReader) grow(need int64) error {
	s, img := r.s, r.img
	u, err := s.usage(r.ctx, img.Owner)
	if err != nil {
		return err
	}
	counted := img.Status == imaged.StatusSaving || img.Status == imaged.StatusUploading
	others := usedBytes(img, u) // the project's bytes without this transfer's
	if counted {
		others -= r.reserved
	}
	avail := r.limit - others
	if need > avail {
		return errOverLimit(img.Owner, quotaName(img), r.limit, others, need)
	}
	// Grow by a quarter of what is held (at least a step), but never take
	// more than half of what the quota has left beyond need: uploads
	// that share a project's last bytes then all get some.
	want := need + min(max(reservationStep, r.reserved/4), (avail-need)/2)
	if !counted {
		r.reserved = want
		return nil
	}
	leaseID, status := img.Lease.ID, img.Status
	upd, err := s.store.UpdateImage(r.ctx, img.ID, func(cur *imaged.Image) error {
		if cur.Status != status || cur.Lease == nil || cur.Lease.ID != leaseID {
			return errLostLease(img.ID)
		}
		cur.Lease.Reserved = want
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return errGone(img.ID)
		}
		return fmt.Errorf("catalog: reserve quota for %s: %w", img.ID, err)
	}
	r.reserved = want
	if u, err = s.usage(r.ctx, img.Owner); err != nil {
		return err
	}
	return checkBytes(upd, r.limit, u, need)
}

// quotaName is the byte quota a transfer into img fills: a stage fills
// the staging area; an upload or an import, the store.
func quotaName(img *imaged.Image) string {
	if img.Status == imaged.StatusUploading {
		return imaged.QuotaImageStageTotal
	}
	return imaged.QuotaImageSizeTotal
}

// usedBytes is what u says of the byte quota a transfer into img fills.
func usedBytes(img *imaged.Image, u imaged.Usage) int64 {
	if quotaName(img) == imaged.QuotaImageStageTotal {
		return u.StageSize
	}
	return u.ImageSize
}

// ProjectUsage returns every quota of the caller's project with its limit
// and usage (bytes for the size quotas), for GET /v2/info/usage. A caller
// without a project uses nothing.
func (s *Service) ProjectUsage(ctx context.Context) (map[string]imaged.QuotaUsage, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var u imaged.Usage
	if id.ProjectID != "" {
		if u, err = s.usage(ctx, id.ProjectID); err != nil {
			return nil, err
		}
	}
	q := s.quotas()
	return map[string]imaged.QuotaUsage{
		imaged.QuotaImageSizeTotal:      {Limit: q.ImageSizeTotal, Usage: u.ImageSize},
		imaged.QuotaImageStageTotal:     {Limit: q.ImageStageTotal, Usage: u.StageSize},
		imaged.QuotaImageCountTotal:     {Limit: q.ImageCountTotal, Usage: u.ImageCount},
		imaged.QuotaImageCountUploading: {Limit: q.ImageCountUploading, Usage: u.Uploading},
	}, nil
}

var _ imaged.UsageService = (*Service)(nil)
