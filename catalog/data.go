package catalog

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/format"
)

// hashAlgo is Glance's default hashing_algorithm (os_hash_algo).
const hashAlgo = "sha512"

// Blob keys and location URLs. An upload writes images/<image id>/<lease
// id>: a retry after a failed or abandoned upload never writes where the
// old one did, so recovery can delete the old key without racing the new
// upload, and the orphan sweep can tell current bytes from leftovers.
const (
	blobPrefix  = "images/"
	locationURL = "blob:///" // + key; the location of bytes kept in the blob store
)

func blobKey(imageID, leaseID string) string { return blobPrefix + imageID + "/" + leaseID }

// parseBlobKey splits images/<id>/<lease>; ok is false for other keys.
func parseBlobKey(key string) (imageID, leaseID string, ok bool) {
	rest, ok := strings.CutPrefix(key, blobPrefix)
	if !ok {
		return "", "", false
	}
	imageID, leaseID, ok = strings.Cut(rest, "/")
	if !ok || imageID == "" || leaseID == "" || strings.Contains(leaseID, "/") {
		return "", "", false
	}
	return imageID, leaseID, true
}

// newLeaseID returns a random 128-bit id, hex-encoded (a valid key segment).
func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// errLostLease: the image is no longer saving under our lease (an expired
// lease was recovered by some process, or the image was deleted).
func errLostLease(imageID string) *imaged.Error {
	return imaged.Errorf(imaged.ECONFLICT, "The upload of image %s was abandoned: another process recovered the image after its upload lease expired.", imageID)
}

// errGone is Glance's message (with 410 there) when the image was deleted
// while its data was uploading.
func errGone(imageID string) *imaged.Error {
	return imaged.Errorf(imaged.ENOTFOUND, "Image %s could not be found after upload. The image may have been deleted during the upload, cleaning up the chunks uploaded.", imageID)
}

func errTooLarge() *imaged.Error {
	return imaged.Errorf(imaged.ETOOLARGE, "The incoming image is too large: The provided image is too large.")
}

func errNoBlobStore() *imaged.Error {
	return imaged.Errorf(imaged.EUNAVAILABLE, "Image data storage is not configured.")
}

// UploadImage stores an image's bytes: queued → saving (under a fresh
// lease) → active. The bytes stream once through a pipeline that hashes
// (MD5 and SHA-512, each on its own goroutine), inspects the format and
// writes the blob concurrently; nothing holds more than a few chunks in
// memory. Any failure cancels the blob and puts the image back to queued.
func (s *Service) UploadImage(ctx context.Context, imageID string, body io.Reader, size int64) (*imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// Glance checks the store a request names before the image.
	target, err := s.headerTarget(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.load(ctx, id, imageID); err != nil {
		return nil, notFound(err, "No image found with ID %s", imageID)
	}
	if s.blobs == nil {
		return nil, errNoBlobStore()
	}
	leaseID := newLeaseID()
	ttl := s.cfg.UploadLease
	now := s.clock.Now()
	img, err := s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		if err := s.enforce(id, imaged.ActionUploadImage, img, fmt.Sprintf("Not allowed to upload image data for image %s", imageID)); err != nil {
			return err
		}
		if img.Status != imaged.StatusQueued {
			return imaged.Errorf(imaged.ECONFLICT, "Image status transition from %s to %s is not allowed", img.Status, imaged.StatusSaving)
		}
		if err := needFormats(img); err != nil {
			return err
		}
		if size > s.cfg.ImageSizeCap {
			return errTooLarge()
		}
		img.Status = imaged.StatusSaving
		// The declared length is reserved against the size quota in
		// this very update (see Quotas).
		img.Lease = &imaged.Lease{ID: leaseID, Holder: s.cfg.Holder, Expires: now.Add(ttl), Reserved: max(size, 0)}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && imaged.ErrorMessage(err) != errResourceNotFound().Message {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", imageID)
		}
		return nil, fmt.Errorf("catalog: upload to %s: %w", imageID, err)
	}
	u := &upload{s: s, imageID: imageID, leaseID: leaseID, key: blobKey(imageID, leaseID),
		status: imaged.StatusSaving, inspect: true, targets: []blobTarget{target}}
	u.finish = u.activate
	if body, err = s.AdmitTransfer(ctx, img, body, size); err != nil {
		u.fail(ctx, err)
		return nil, err
	}
	out, err := u.run(ctx, img, body, size)
	if err != nil {
		u.fail(ctx, err)
		return nil, err
	}
	return out, nil
}

// rawLike reports whether a disk_format is read as plain bytes (format.Check
// accepts raw data for it).
func rawLike(diskFormat string) bool {
	switch diskFormat {
	case format.Raw, "ami", "aki", "ari":
		return true
	}
	return false
}

// needFormats is Glance's rule that an image needs both formats before it
// can hold data.
func needFormats(img *imaged.Image) error {
	var missing []string
	if img.DiskFormat == "" {
		missing = append(missing, "disk_format")
	}
	if img.ContainerFormat == "" {
		missing = append(missing, "container_format")
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return imaged.Errorf(imaged.EINVALID, "Property %s must be set prior to saving data.", missing[0])
	}
	return imaged.Errorf(imaged.EINVALID, "Properties %s must be set prior to saving data.", strings.Join(missing, ", "))
}

// upload is one transfer of bytes in progress: the image holds status
// under leaseID and the bytes go to key. Uploads (saving), stages
// (uploading) and imports (importing) share it: they differ in what they
// check and in how finish and onFail change the image.
type upload struct {
	s       *Service
	imageID string
	leaseID string
	key     string
	// status is the image's status while the lease is held.
	status imaged.ImageStatus
	// inspect checks the bytes' format against the image's disk_format
	// (a stage defers that to the import).
	inspect bool
	// finish records the stored bytes on the image, inside the final
	// update (which then drops the lease); it must only change img.
	finish func(img *imaged.Image, sum uploadSum, vsize *int64)
	// onFail, if set, makes further changes to the image as a failure
	// puts it back to queued (inside that update; it must only change
	// img).
	onFail func(img *imaged.Image)
	// committed says the blob exists under key (so failure must delete it).
	committed bool
	// targets are the stores the bytes go to (nil: the default store);
	// mustAll fails the transfer as soon as one of them fails (Glance's
	// all_stores_must_succeed), else it goes on while one is left.
	targets []blobTarget
	mustAll bool
	// stored and failed are the targets that committed and that failed.
	stored, failed []blobTarget
	// verify, if set, checks the streamed bytes before they are committed
	// (copy-image compares them with the image's hashes).
	verify func(uploadSum) error
	// restore is the status a failure puts the image back to ("" =
	// queued; copy-image leaves it active).
	restore imaged.ImageStatus
}

// locations are the locations of the committed bytes, one per store.
func (u *upload) locations() []imaged.Location {
	out := make([]imaged.Location, len(u.stored))
	for i, t := range u.stored {
		out[i] = newLocation(t, u.key)
	}
	return out
}

// activate is an upload's or import's finish: the image is active with
// the bytes under u.key.
func (u *upload) activate(img *imaged.Image, sum uploadSum, vsize *int64) {
	n := sum.n
	img.Status = imaged.StatusActive
	img.Size = &n
	img.VirtualSize = vsize
	img.Checksum = hex.EncodeToString(sum.md5)
	img.OSHashAlgo = hashAlgo
	img.OSHashValue = hex.EncodeToString(sum.sha512)
	img.Locations = u.locations()
}

// run streams the body into the blob store and finalises the image.
func (u *upload) run(ctx context.Context, img *imaged.Image, body io.Reader, size int64) (*imaged.Image, error) {
	s := u.s
	// The upload's context: cancelled when the caller's is, or when the
	// lease is lost (the renewer cancels it with the reason).
	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var renewWG sync.WaitGroup
	renewWG.Add(1)
	stopRenew := make(chan struct{})
	go func() {
		defer renewWG.Done()
		u.renew(uctx, cancel, stopRenew)
	}()
	stopRenewer := func() {
		select {
		case <-stopRenew:
		default:
			close(stopRenew)
		}
		renewWG.Wait()
	}
	defer stopRenewer()

	if u.targets == nil {
		u.targets = []blobTarget{s.defaultTarget()}
	}
	w, err := openFanout(uctx, u.targets, u.key, u.mustAll)
	defer w.cancel(context.WithoutCancel(ctx)) // a no-op after Commit
	if err != nil {
		u.failed = slices.Clone(u.targets)
		return nil, fmt.Errorf("catalog: upload to %s: create blob: %w", u.imageID, err)
	}
	sum, err := pump(uctx, body, w, size, s.cfg.ImageSizeCap, s.cfg.UploadLease/3)
	if err != nil {
		u.failed = w.failedTargets()
		if c := context.Cause(uctx); c != nil && ctx.Err() == nil {
			err = c // the lease was lost: say so rather than "context canceled"
		}
		return nil, err
	}
	if size >= 0 && sum.n != size {
		return nil, imaged.Errorf(imaged.EINVALID, "The image data is %d bytes long, but %d bytes were declared.", sum.n, size)
	}
	res := sum.inspection
	if u.inspect {
		if err := format.Check(res, img.DiskFormat); err != nil {
			return nil, err
		}
	}
	if u.verify != nil {
		if err := u.verify(sum); err != nil {
			return nil, err
		}
	}
	u.stored, u.failed, err = w.commit(uctx)
	u.committed = len(u.stored) > 0
	if err != nil {
		if c := context.Cause(uctx); c != nil && ctx.Err() == nil {
			return nil, c
		}
		return nil, fmt.Errorf("catalog: upload to %s: commit blob: %w", u.imageID, err)
	}
	for _, t := range u.failed {
		s.log.Warn("writing image data to a store failed; the store is left out", "image", u.imageID, "store", t.name)
	}
	// Renewals stop before the final update so that none runs after it.
	stopRenewer()
	if c := context.Cause(uctx); c != nil {
		return nil, c
	}
	// The inspector's virtual size means something only when it read
	// the format the image declares (raw-like declarations take raw data).
	var vsize *int64
	if res.VirtualSize >= 0 && (res.Format == img.DiskFormat || rawLike(img.DiskFormat)) {
		v := res.VirtualSize
		vsize = &v
	}
	now := s.clock.Now()
	out, err := s.store.UpdateImage(ctx, u.imageID, func(img *imaged.Image) error {
		if img.Status != u.status || img.Lease == nil || img.Lease.ID != u.leaseID {
			return errLostLease(u.imageID)
		}
		u.finish(img, sum, vsize)
		img.Lease = nil
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, errGone(u.imageID)
		}
		return nil, fmt.Errorf("catalog: upload to %s: finalise: %w", u.imageID, err)
	}
	return out, nil
}

// renew extends the lease every UploadLease/3 until stop is closed. A
// renewal that finds the image no longer saving under our lease cancels
// the upload; other failures (a database hiccup) are retried at the next
// tick, as the lease still has two thirds of its time.
func (u *upload) renew(ctx context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	s := u.s
	t := time.NewTicker(max(s.cfg.UploadLease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		exp := s.clock.Now().Add(s.cfg.UploadLease)
		_, err := s.store.UpdateImage(ctx, u.imageID, func(img *imaged.Image) error {
			if img.Status != u.status || img.Lease == nil || img.Lease.ID != u.leaseID {
				return errLostLease(u.imageID)
			}
			img.Lease.Expires = exp
			return nil
		})
		switch {
		case err == nil:
		case imaged.ErrorCode(err) == imaged.ENOTFOUND:
			cancel(errGone(u.imageID))
			return
		case imaged.ErrorCode(err) == imaged.ECONFLICT:
			cancel(err)
			return
		case ctx.Err() != nil:
			return
		default:
			s.log.Warn("renewing an upload lease failed; retrying", "image", u.imageID, "lease", u.leaseID, "err", err)
		}
	}
}

// fail undoes a failed upload: the bytes go, and the image goes back to
// queued (if it is still saving under our lease) so that a retry works.
// It runs even when ctx is cancelled (the client went away).
func (u *upload) fail(ctx context.Context, cause error) {
	s := u.s
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	level := s.log.Warn
	if c := imaged.ErrorCode(cause); c == imaged.EINVALID || c == imaged.ETOOLARGE {
		level = s.log.Info // the client's mistake, not the service's
	}
	level("image upload failed; image back to queued", "image", u.imageID, "lease", u.leaseID, "err", cause)
	for _, t := range u.stored {
		if err := t.blobs.Delete(cctx, u.key); err != nil {
			s.log.Error("deleting the bytes of a failed upload; the orphan sweep will retry", "image", u.imageID, "store", t.name, "key", u.key, "err", err)
		}
	}
	now := s.clock.Now()
	_, err := s.store.UpdateImage(cctx, u.imageID, func(img *imaged.Image) error {
		if img.Status != u.status || img.Lease == nil || img.Lease.ID != u.leaseID {
			return errLostLease(u.imageID)
		}
		img.Status = imaged.StatusQueued
		if u.restore != "" {
			img.Status = u.restore
		}
		img.Lease = nil
		if u.onFail != nil {
			u.onFail(img)
		}
		img.UpdatedAt = now
		return nil
	})
	switch imaged.ErrorCode(err) {
	case "", imaged.ENOTFOUND, imaged.ECONFLICT:
		// Restored, deleted meanwhile, or already recovered by someone.
	default:
		s.log.Error("restoring an image to queued after a failed upload; recovery will once its lease expires", "image", u.imageID, "err", err)
	}
}

// uploadSum is what streaming found out about the bytes.
type uploadSum struct {
	n          int64
	md5        []byte
	sha512     []byte
	inspection format.Result
}

// Pipeline shape: the reading goroutine fills chunks and hands each to
// three workers (MD5; SHA-512 plus the format inspector; the blob writer),
// which run in parallel and give the chunk back when all three are done.
// MD5 and SHA-512 are each inherently sequential, so running them on
// separate goroutines is what lets an upload use two cores.
const (
	chunkSize = 256 << 10
	chunks    = 8 // at most 2 MiB in flight per upload
)

type chunk struct {
	b    []byte
	refs atomic.Int32
}

// pump copies body to w through the hashing and inspection pipeline,
// enforcing the size cap and the declared size as the bytes arrive. A chunk
// goes on when it is full or, for a body that trickles in, once it has
// waited maxWait: the blob store then sees a write at least that often,
// which is what tells its purge of stale uploads that this one is alive.
func pump(ctx context.Context, body io.Reader, w io.Writer, size, capBytes int64, maxWait time.Duration) (uploadSum, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan *chunk, chunks)
	allocated := 0
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
	md5Ch := make(chan *chunk, chunks)
	shaCh := make(chan *chunk, chunks)
	wCh := make(chan *chunk, chunks)
	var wg sync.WaitGroup
	hashWorker := func(ch <-chan *chunk, hs ...io.Writer) {
		defer wg.Done()
		for c := range ch {
			for _, h := range hs {
				h.Write(c.b) // hashes and the inspector never fail
			}
			release(c)
		}
	}
	md5h, shah, insp := md5.New(), sha512.New(), format.NewInspector()
	wg.Add(3)
	go hashWorker(md5Ch, md5h)
	go hashWorker(shaCh, shah, insp)
	var werr error
	go func() {
		defer wg.Done()
		for c := range wCh {
			if werr == nil {
				if _, werr = w.Write(c.b); werr != nil {
					cancel(werr)
				}
			}
			release(c)
		}
	}()

	var sum uploadSum
	err := func() error {
		for {
			var c *chunk
			select {
			case c = <-free:
			default:
				if allocated < chunks {
					allocated++
					c = &chunk{b: make([]byte, chunkSize)}
				} else {
					select {
					case c = <-free:
					case <-ctx.Done():
						return context.Cause(ctx)
					}
				}
			}
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			n, rerr := readChunk(body, c.b, maxWait)
			if n > 0 {
				sum.n += int64(n)
				if sum.n > capBytes {
					return errTooLarge()
				}
				if size >= 0 && sum.n > size {
					return imaged.Errorf(imaged.EINVALID, "The image data is longer than the %d bytes declared.", size)
				}
				c.b = c.b[:n]
				c.refs.Store(3)
				md5Ch <- c
				shaCh <- c
				wCh <- c
			} else {
				free <- c
			}
			var qerr *imaged.Error
			if rerr == io.EOF {
				return nil
			} else if errors.As(rerr, &qerr) {
				return rerr // the body's own verdict (a quota exceeded)
			} else if rerr != nil {
				return imaged.Errorf(imaged.EINVALID, "Error reading the image data: %v", rerr)
			}
		}
	}()
	close(md5Ch)
	close(shaCh)
	close(wCh)
	wg.Wait()
	if err == nil {
		err = werr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if werr != nil && err == werr {
			return sum, fmt.Errorf("catalog: write blob: %w", werr)
		}
		return sum, err
	}
	sum.md5 = md5h.Sum(nil)
	sum.sha512 = shah.Sum(nil)
	sum.inspection = insp.Result()
	return sum, nil
}

// readChunk fills b from r, as io.ReadFull does, except that it returns
// early what it has once maxWait has passed (a slow body), and reports an
// error (io.EOF included) together with the bytes read before it.
func readChunk(r io.Reader, b []byte, maxWait time.Duration) (int, error) {
	b = b[:cap(b)]
	start := time.Now()
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
		if n > 0 && (m == 0 || time.Since(start) >= maxWait) {
			return n, nil
		}
	}
	return n, nil
}

// DownloadImage checks that the caller may read an image's bytes and
// returns a handle on them, as Glance's download: invisible images are
// 404, deactivated ones 403 except for admins, then download_image.
func (s *Service) DownloadImage(ctx context.Context, imageID string) (*imaged.ImageData, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", imageID)
	}
	if img.Status == imaged.StatusDeactivated && !s.pol.IsAdmin(id) {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "The requested image has been deactivated. Image data download is forbidden.")
	}
	if err := s.enforce(id, imaged.ActionDownloadImage, img, ""); err != nil {
		return nil, err
	}
	data := &imaged.ImageData{Image: img}
	if open := s.cachedOpen(img); open != nil {
		data.Open = open
		return data, nil
	}
	key, blobs := s.readLocation(img)
	if key == "" || img.Size == nil || blobs == nil {
		data.Open = s.externalOpen(img)
		return data, nil
	}
	size := *img.Size
	data.Open = func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
		// An empty image reads as empty from 0; any other offset at or
		// past the end is unsatisfiable.
		if offset < 0 || (offset >= size && !(offset == 0 && size == 0)) {
			return nil, imaged.Errorf(imaged.ERANGE, "Requested range not satisfiable")
		}
		if length < 0 || offset+length > size {
			length = size - offset
		}
		rc, err := blobs.Open(ctx, key, offset, length)
		if err != nil {
			return nil, fmt.Errorf("catalog: read data of %s: %w", imageID, err)
		}
		return rc, nil
	}
	return data, nil
}

// deleteData removes the bytes of a deleted image (best effort: what fails
// here, the orphan sweep removes later).
func (s *Service) deleteData(ctx context.Context, img *imaged.Image) {
	if s.blobs == nil || img == nil {
		return
	}
	for _, l := range img.Locations {
		k, ok := strings.CutPrefix(l.URL, locationURL)
		if b := s.lookupStore(locationStore(l)); ok && b != nil {
			if err := b.Delete(ctx, k); err != nil {
				s.log.Warn("deleting the bytes of a deleted image; the orphan sweep will retry", "image", img.ID, "key", k, "err", err)
			}
		}
	}
	if img.Lease != nil {
		// A transfer in progress, into any store: its finalise will
		// find the image gone.
		s.deleteKeyEverywhere(ctx, img.ID, blobKey(img.ID, img.Lease.ID))
	}
	var keys []string
	if img.Status == imaged.StatusUploading || img.Status == imaged.StatusImporting {
		keys = append(keys, stagingKey(img.ID)) // staged for an import
	}
	for _, k := range keys {
		if err := s.blobs.Delete(ctx, k); err != nil {
			s.log.Warn("deleting the bytes of a deleted image; the orphan sweep will retry", "image", img.ID, "key", k, "err", err)
		}
	}
}
