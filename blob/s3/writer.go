package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/imaged/imaged"
)

// cleanupTimeout bounds the requests that clean up after an upload, which
// run even when the upload's own context is done.
const cleanupTimeout = 30 * time.Second

// writer is one multipart upload. Bytes fill buf; a full buf becomes a
// part that a goroutine uploads while the next one fills, so a writer
// holds at most two parts. Its methods take a lock so that a Cancel from
// another goroutine cannot race a Write.
type writer struct {
	s        *Store
	ctx      context.Context
	key, obj string
	uploadID string

	mu      sync.Mutex
	buf     []byte          // the part being filled
	spare   []byte          // a part's buffer to reuse, once uploaded
	pending chan partResult // the part being uploaded; nil if none
	parts   []types.CompletedPart
	size    int64
	err     error  // sticky: the first failure
	done    string // "committed" or "cancelled"; "" while open
	aborted bool   // the multipart upload is gone (small-blob commit)

	lastTouch time.Time
	touched   bool // an activity marker may exist
}

type partResult struct {
	part types.CompletedPart
	buf  []byte
	err  error
}

func (w *writer) usable() error {
	switch {
	case w.done != "":
		return imaged.Errorf(imaged.ECONFLICT, "Blob upload of %s was already %s.", w.key, w.done)
	case w.err != nil:
		return w.err
	}
	return w.ctx.Err()
}

// Write implements io.Writer.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if w.buf == nil && w.spare != nil {
			w.buf, w.spare = w.spare[:0], nil
		}
		size := w.fillSize()
		m := min(len(p), size-len(w.buf))
		if cap(w.buf)-len(w.buf) < m {
			// The first buffer grows as bytes come, so that a
			// small blob never costs a whole part of memory, and
			// never past a part (append could overshoot).
			nb := make([]byte, len(w.buf), min(size, max(2*cap(w.buf), len(w.buf)+m, 64<<10)))
			copy(nb, w.buf)
			w.buf = nb
		}
		w.buf = append(w.buf, p[:m]...)
		p, n, w.size = p[m:], n+m, w.size+int64(m)
		if len(w.buf) == size {
			if err := w.sendPart(); err != nil {
				return n, err
			}
		}
	}
	w.touch()
	return n, nil
}

// fillSize is the size of the part being filled: the configured part
// size, doubled for every partsPerSize parts already sent or in flight,
// at most MaxPartSize.
func (w *writer) fillSize() int {
	n := len(w.parts)
	if w.pending != nil {
		n++
	}
	size := w.s.partSize
	for i := n / partsPerSize; i > 0 && size < MaxPartSize; i-- {
		size *= 2
	}
	return int(min(size, MaxPartSize))
}

// touch refreshes the upload's activity marker if it is due, so that
// PurgeUploads in any process sees that the upload is alive. A failure
// only makes the upload look older; the next write tries again.
func (w *writer) touch() {
	now := w.s.clock.Now()
	if now.Sub(w.lastTouch) < w.s.touchInterval() {
		return
	}
	w.lastTouch, w.touched = now, true
	name := w.s.marker(w.obj, w.uploadID)
	_, _ = w.s.client.PutObject(w.ctx, &s3sdk.PutObjectInput{Bucket: &w.s.cfg.Bucket, Key: &name,
		Body: bytes.NewReader(nil), ContentLength: aws.Int64(0)})
}

// sendPart starts uploading buf as the next part, after the previous
// part's upload has finished.
func (w *writer) sendPart() error {
	if err := w.wait(); err != nil {
		return err
	}
	num := len(w.parts) + 1
	if num > maxParts {
		w.err = imaged.Errorf(imaged.ETOOLARGE, "Blob %s is larger than this store allows (%d parts from %d bytes).", w.key, maxParts, w.s.partSize)
		return w.err
	}
	buf := w.buf
	w.buf = nil
	ch := make(chan partResult, 1)
	w.pending = ch
	go func() { ch <- w.uploadPart(w.ctx, int32(num), buf) }()
	return nil
}

// wait collects the result of the part being uploaded, if any.
func (w *writer) wait() error {
	if w.pending == nil {
		return w.err
	}
	r := <-w.pending
	w.pending = nil
	w.spare = r.buf[:0]
	if r.err != nil {
		if w.err == nil {
			w.err = r.err
		}
		return w.err
	}
	w.parts = append(w.parts, r.part)
	return w.err
}

func (w *writer) uploadPart(ctx context.Context, num int32, buf []byte) partResult {
	out, err := w.s.client.UploadPart(ctx, &s3sdk.UploadPartInput{Bucket: &w.s.cfg.Bucket, Key: &w.obj,
		UploadId: &w.uploadID, PartNumber: aws.Int32(num), Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf)))})
	if err != nil {
		return partResult{buf: buf, err: w.uploadErr("write", err)}
	}
	return partResult{buf: buf, part: types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}}
}

// uploadErr reports a purged upload as a conflict.
func (w *writer) uploadErr(op string, err error) error {
	if isNoSuchUpload(err) {
		return fmt.Errorf("blob %s %s: %w", op, w.key, imaged.Errorf(imaged.ECONFLICT,
			"Blob upload of %s was purged before it was committed.", w.key))
	}
	return w.s.fail(op, w.key, err)
}

// Commit implements imaged.BlobWriter. A failed Commit discards the upload
// (a later Cancel does nothing).
func (w *writer) Commit(ctx context.Context) (imaged.BlobInfo, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.usable()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if w.done == "" {
			w.discard()
		}
		return imaged.BlobInfo{}, err
	}
	info, err := w.commit(ctx)
	if err != nil {
		w.discard()
		return imaged.BlobInfo{}, err
	}
	w.done, w.buf, w.spare = "committed", nil, nil
	return info, nil
}

func (w *writer) commit(ctx context.Context) (imaged.BlobInfo, error) {
	var etag *string
	if w.pending == nil && len(w.parts) == 0 {
		// Smaller than a part: one PutObject. Aborting the upload
		// first proves that no PurgeUploads took it, as a purged
		// upload must not commit.
		_, err := w.s.client.AbortMultipartUpload(ctx, &s3sdk.AbortMultipartUploadInput{Bucket: &w.s.cfg.Bucket, Key: &w.obj, UploadId: &w.uploadID})
		if err != nil {
			return imaged.BlobInfo{}, w.uploadErr("commit", err)
		}
		w.aborted = true
		var out *s3sdk.PutObjectOutput
		err = retryDirRace(func() (err error) {
			out, err = w.s.client.PutObject(ctx, &s3sdk.PutObjectInput{Bucket: &w.s.cfg.Bucket, Key: &w.obj,
				Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
			return err
		})
		if err != nil {
			return imaged.BlobInfo{}, w.s.fail("commit", w.key, err)
		}
		etag = out.ETag
	} else {
		if err := w.wait(); err != nil {
			return imaged.BlobInfo{}, err
		}
		if len(w.buf) > 0 {
			if len(w.parts) >= maxParts {
				return imaged.BlobInfo{}, imaged.Errorf(imaged.ETOOLARGE, "Blob %s is larger than this store allows (%d parts from %d bytes).", w.key, maxParts, w.s.partSize)
			}
			r := w.uploadPart(ctx, int32(len(w.parts)+1), w.buf)
			if r.err != nil {
				return imaged.BlobInfo{}, r.err
			}
			w.parts = append(w.parts, r.part)
		}
		var out *s3sdk.CompleteMultipartUploadOutput
		err := retryDirRace(func() (err error) {
			out, err = w.s.client.CompleteMultipartUpload(ctx, &s3sdk.CompleteMultipartUploadInput{Bucket: &w.s.cfg.Bucket,
				Key: &w.obj, UploadId: &w.uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
			return err
		})
		if err != nil {
			return imaged.BlobInfo{}, w.uploadErr("commit", err)
		}
		etag = out.ETag
	}
	// Committed. What follows cannot undo it, so it does not fail.
	w.aborted = true
	w.dropMarker(ctx)
	info := imaged.BlobInfo{Key: w.key, Size: w.size, ModTime: w.s.clock.Now().UTC().Truncate(time.Second)}
	// Stat reports the server's time: report the same, if the object
	// is still ours (a concurrent commit may have replaced it).
	if out, err := w.s.client.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &w.s.cfg.Bucket, Key: &w.obj}); err == nil &&
		out.LastModified != nil && (etag == nil || aws.ToString(out.ETag) == *etag) {
		info.ModTime = out.LastModified.UTC()
	}
	return info, nil
}

func (w *writer) dropMarker(ctx context.Context) {
	if w.touched {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		w.s.deleteObject(ctx, w.s.marker(w.obj, w.uploadID))
	}
}

// discard aborts the upload. It runs even when the upload's context is
// done, with a context of its own.
func (w *writer) discard() error {
	if w.done != "" {
		return nil
	}
	w.done = "cancelled"
	if w.pending != nil {
		// An abort does not stop a part upload in flight, which
		// could then outlive it: let it finish first.
		<-w.pending
		w.pending = nil
	}
	w.buf, w.spare = nil, nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	var err error
	if !w.aborted {
		w.aborted = true
		_, err = w.s.client.AbortMultipartUpload(ctx, &s3sdk.AbortMultipartUploadInput{Bucket: &w.s.cfg.Bucket, Key: &w.obj, UploadId: &w.uploadID})
		if err != nil && isNoSuchUpload(err) {
			err = nil // purged already
		}
	}
	w.dropMarker(ctx)
	if err != nil {
		// PurgeUploads will remove it later.
		return w.s.fail("cancel", w.key, err)
	}
	return nil
}

// Cancel implements imaged.BlobWriter. It ignores ctx's cancellation so
// that cleanup works after the request that started the upload ended.
func (w *writer) Cancel(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.discard()
}

// retryDirRace runs a write again while it fails as object stores over a
// file tree (versitygw's posix backend) fail a write whose parent
// directory a concurrent Delete of the last object in it removed between
// their mkdir and their link ("ExistingObjectIsDirectory"). No object of
// ours is a directory (see the package comment), so that error can only
// mean the race, which a new attempt wins.
func retryDirRace(write func() error) error {
	var err error
	for range 20 {
		var ae smithy.APIError
		if err = write(); err == nil || !errors.As(err, &ae) || ae.ErrorCode() != "ExistingObjectIsDirectory" {
			return err
		}
	}
	return err
}
