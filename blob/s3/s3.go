// Package s3 is an imaged.BlobStore in an S3-compatible object store, so
// that stateless replicas of imaged share image bytes.
//
// A blob is one object. Create starts a multipart upload whose parts are
// uploaded while the bytes stream in (a writer holds at most two parts in
// memory: one filling, one uploading); Commit completes it, and a blob
// smaller than a part is stored with one PutObject instead. Either way the
// object appears whole or not at all, and replacing it is atomic for
// readers. PurgeUploads aborts the multipart uploads that crashed
// processes left behind.
//
// Object names: the store's prefix, the key, then "!". The suffix keeps
// every key storable on object stores that map names onto a file tree
// (MinIO, versitygw's posix backend), where an object "a" and an object
// "a/b" cannot coexist but "a!" and "a/b!" can; as '!' sorts before every
// key character, object order is still key order. Live uploads are
// marked under "<prefix>_uploads/", a name no key can take.
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob"
)

// leafSuffix ends every blob's object name (see the package comment).
const leafSuffix = "!"

// maxObjectName is S3's limit on object names, in bytes.
const maxObjectName = 1024

// markerDir holds, under the prefix, the activity markers of live uploads.
const markerDir = blob.ReservedPrefix + "/"

// DefaultTouchInterval is how often a writer that keeps receiving bytes
// refreshes its upload's activity marker. PurgeUploads treats an upload
// as live while it was created or marked within olderThan, so olderThan
// must comfortably exceed this plus the longest pause between writes;
// writers of a store whose PurgeUploads was given a shorter olderThan
// refresh more often (a quarter of it).
const DefaultTouchInterval = 10 * time.Second

// Store is a BlobStore in a bucket. Its methods are safe for concurrent
// use, also by several processes sharing the bucket.
type Store struct {
	cfg      Config
	client   *s3sdk.Client
	partSize int64
	touch    time.Duration
	clock    imaged.Clock
	// httpClient replaces the SDK's default client when set.
	httpClient *http.Client
	// purgeAge is the smallest positive olderThan PurgeUploads was
	// given (nanoseconds; 0 until then): writers refresh their markers
	// at least four times in that span, however short the lease.
	purgeAge atomic.Int64
}

// minTouchInterval bounds how often a writer refreshes its marker.
const minTouchInterval = 100 * time.Millisecond

// touchInterval is how often writers refresh their activity markers.
func (s *Store) touchInterval() time.Duration {
	d := s.touch
	if age := time.Duration(s.purgeAge.Load()); age > 0 {
		d = min(d, age/4)
	}
	return max(d, minTouchInterval)
}

var _ imaged.BlobStore = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock PurgeUploads measures ages against and writers
// time their activity markers with.
func WithClock(c imaged.Clock) Option { return func(s *Store) { s.clock = c } }

// WithTouchInterval sets how often a writing upload refreshes its
// activity marker (default DefaultTouchInterval).
func WithTouchInterval(d time.Duration) Option { return func(s *Store) { s.touch = d } }

// WithHTTPClient sets the HTTP client of the S3 requests.
func WithHTTPClient(c *http.Client) Option {
	return func(s *Store) { s.httpClient = c }
}

// New returns a Store for cfg. It does not contact the server; Check
// does.
func New(cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, partSize: cfg.PartSize, touch: DefaultTouchInterval, clock: imaged.SystemClock{}}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	for _, o := range opts {
		o(s)
	}
	o := s3sdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		// Checksums only where the protocol needs them: not every
		// S3-compatible server knows the newer checksum headers, and
		// the signed payload hash (http) or TLS (https) already
		// protects the bytes in transit.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if s.httpClient != nil {
		o.HTTPClient = s.httpClient
	}
	s.client = s3sdk.New(o)
	return s, nil
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

// MaxKeyLen is the length of the longest key the store holds: S3's limit
// on object names less the store's prefix and suffix. Longer keys are
// refused with EINVALID.
func (s *Store) MaxKeyLen() int {
	return min(blob.MaxKeyLen, maxObjectName-len(s.cfg.Prefix)-len(leafSuffix))
}

// String describes the store without its secret.
func (s *Store) String() string { return s.cfg.String() }

// Check reports whether the bucket is reachable with the store's
// credentials.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3sdk.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if err != nil {
		if httpStatus(err) == http.StatusNotFound { // a HEAD has no error code
			return fmt.Errorf("blob store %s: bucket %q does not exist: %w", s.cfg.Endpoint, s.cfg.Bucket, err)
		}
		return s.fail("check bucket", s.cfg.Bucket, err)
	}
	return nil
}

// object returns the object name of a valid key.
func (s *Store) object(key string) (string, error) {
	name := s.cfg.Prefix + key + leafSuffix
	if len(name) > maxObjectName {
		return "", imaged.Errorf(imaged.EINVALID, "Blob key is too long for this store (%d bytes with the store's prefix, at most %d).", len(name), maxObjectName)
	}
	return name, nil
}

// keyOf returns the key of an object name, or false for objects that are
// not blobs (markers, other data sharing the bucket).
func (s *Store) keyOf(name string) (string, bool) {
	key, ok := strings.CutPrefix(name, s.cfg.Prefix)
	if !ok {
		return "", false
	}
	key, ok = strings.CutSuffix(key, leafSuffix)
	return key, ok && blob.ValidKey(key) == nil
}

// marker returns the object name of an upload's activity marker.
func (s *Store) marker(object, uploadID string) string {
	h := sha256.Sum256([]byte(object + "\n" + uploadID))
	return s.cfg.Prefix + markerDir + hex.EncodeToString(h[:16])
}

// Create implements imaged.BlobStore. The upload lives as long as ctx:
// once ctx is done, Write fails and Commit discards the upload.
func (s *Store) Create(ctx context.Context, key string) (imaged.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3sdk.CreateMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &obj})
	if err != nil {
		return nil, s.fail("create", key, err)
	}
	if out.UploadId == nil || *out.UploadId == "" {
		return nil, fmt.Errorf("blob create %s: the server returned no upload id", key)
	}
	return &writer{s: s, ctx: ctx, key: key, obj: obj, uploadID: *out.UploadId, lastTouch: s.clock.Now()}, nil
}

// Open implements imaged.BlobStore. The reader streams one ranged
// GetObject.
func (s *Store) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, imaged.Errorf(imaged.EINVALID, "Blob offset must not be negative.")
	}
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if length == 0 {
		// No byte range means nothing; check existence and offset.
		return s.emptyAt(ctx, key, offset)
	}
	in := &s3sdk.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &obj}
	switch {
	case length > 0 && offset+length > offset: // no overflow
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			// At or past the end (every range of an empty object
			// is unsatisfiable): the end itself reads as empty.
			return s.emptyAt(ctx, key, offset)
		}
		return nil, s.fail("open", key, err)
	}
	return out.Body, nil
}

// emptyAt returns an empty reader if offset is within the blob's size.
func (s *Store) emptyAt(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset > info.Size {
		return nil, imaged.Errorf(imaged.ERANGE, "Offset %d is past the end of blob %s (%d bytes).", offset, key, info.Size)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Stat implements imaged.BlobStore.
func (s *Store) Stat(ctx context.Context, key string) (imaged.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return imaged.BlobInfo{}, err
	}
	if err := blob.ValidKey(key); err != nil {
		return imaged.BlobInfo{}, err
	}
	obj, err := s.object(key)
	if err != nil {
		return imaged.BlobInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &obj})
	if err != nil {
		return imaged.BlobInfo{}, s.fail("stat", key, err)
	}
	return imaged.BlobInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified).UTC()}, nil
}

// Delete implements imaged.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &obj}); err != nil {
		if err := s.fail("delete", key, err); imaged.ErrorCode(err) != imaged.ENOTFOUND {
			return err
		}
	}
	return nil
}

// List implements imaged.BlobStore: S3 lists names in byte order, which
// is key order (see the package comment), a page of at most 1000 at a
// time.
func (s *Store) List(ctx context.Context, prefix string, fn func(imaged.BlobInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !possiblePrefix(prefix) {
		return nil
	}
	in := &s3sdk.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: aws.String(s.cfg.Prefix + prefix)}
	p := s3sdk.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			if err := ctx.Err(); err != nil {
				return err
			}
			key, ok := s.keyOf(aws.ToString(o.Key))
			if !ok {
				continue
			}
			if err := fn(imaged.BlobInfo{Key: key, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified).UTC()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// possiblePrefix reports whether some valid key starts with prefix; other
// prefixes are not sent to the server, which may refuse names such as
// "../".
func possiblePrefix(prefix string) bool {
	segs := strings.Split(prefix, "/")
	for _, seg := range segs[:len(segs)-1] {
		if !blob.ValidSegment(seg) {
			return false
		}
	}
	last := segs[len(segs)-1]
	return last == "" || last == "." || last == ".." || blob.ValidSegment(last)
}

// PurgeUploads implements imaged.BlobStore. An upload's age is the time
// since it was created or its writer last refreshed its activity marker
// (every DefaultTouchInterval while bytes arrive), so a long upload that
// still receives bytes is never purged. It also deletes markers older
// than olderThan whose upload is gone (left by a crash).
func (s *Store) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for olderThan > 0 {
		old := s.purgeAge.Load()
		if old > 0 && old <= int64(olderThan) || s.purgeAge.CompareAndSwap(old, int64(olderThan)) {
			break
		}
	}
	cutoff := s.clock.Now().Add(-olderThan)
	live := map[string]bool{} // marker names of the uploads we keep
	n := 0
	in := &s3sdk.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: aws.String(s.cfg.Prefix)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, s.fail("purge", "uploads", err)
		}
		for _, u := range page.Uploads {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			obj, id := aws.ToString(u.Key), aws.ToString(u.UploadId)
			if _, ours := s.keyOf(obj); !ours || id == "" {
				continue
			}
			marker := s.marker(obj, id)
			if u.Initiated != nil && !u.Initiated.Before(cutoff) {
				live[marker] = true
				continue
			}
			if t, err := s.modTime(ctx, marker); err != nil {
				return n, err
			} else if !t.IsZero() && !t.Before(cutoff) {
				live[marker] = true
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3sdk.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &obj, UploadId: &id})
			if err != nil && !isNoSuchUpload(err) {
				return n, s.fail("purge", "uploads", err)
			}
			if err == nil {
				n++
			}
			s.deleteObject(ctx, marker)
		}
		if !aws.ToBool(page.IsTruncated) || page.NextKeyMarker == nil && page.NextUploadIdMarker == nil {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	// Markers whose upload is gone.
	p := s3sdk.NewListObjectsV2Paginator(s.client, &s3sdk.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: aws.String(s.cfg.Prefix + markerDir)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, s.fail("purge", "markers", err)
		}
		for _, o := range page.Contents {
			if name := aws.ToString(o.Key); !live[name] && aws.ToTime(o.LastModified).Before(cutoff) {
				s.deleteObject(ctx, name)
			}
		}
	}
	return n, nil
}

// modTime returns an object's modification time, zero if it is missing.
func (s *Store) modTime(ctx context.Context, name string) (time.Time, error) {
	out, err := s.client.HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &name})
	if err != nil {
		if err := s.fail("purge", "marker", err); imaged.ErrorCode(err) != imaged.ENOTFOUND {
			return time.Time{}, err
		}
		return time.Time{}, nil
	}
	return aws.ToTime(out.LastModified), nil
}

// deleteObject deletes an object, best effort: markers only delay purges.
func (s *Store) deleteObject(ctx context.Context, name string) {
	_, _ = s.client.DeleteObject(ctx, &s3sdk.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &name})
}

// errUnavailable marks failures to reach the object store.
var errUnavailable = imaged.Errorf(imaged.EUNAVAILABLE, "The image store is unavailable.")

// fail turns an S3 error into an imaged error: ENOTFOUND for a missing
// object, EUNAVAILABLE for an unreachable or failing server (5xx,
// throttling, network), others wrapped as they are (credentials, a
// missing bucket: configuration errors). Context errors stay matchable.
func (s *Store) fail(op, key string, err error) error {
	var ae smithy.APIError
	status := httpStatus(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("blob %s %s: %w", op, key, err)
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket":
		return fmt.Errorf("blob %s %s: bucket %q does not exist: %w", op, key, s.cfg.Bucket, err)
	case status == http.StatusNotFound:
		return fmt.Errorf("blob %s: %w", op, imaged.Errorf(imaged.ENOTFOUND, "Blob %s not found.", key))
	case status == http.StatusServiceUnavailable || status >= 500 || status == 0 || status == http.StatusTooManyRequests:
		return fmt.Errorf("blob %s %s: %w: %w", op, key, errUnavailable, err)
	}
	return fmt.Errorf("blob %s %s: %w", op, key, err)
}

// httpStatus returns the HTTP status of a failed request, 0 if none came.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	var ae smithy.APIError
	return errors.As(err, &nsu) || errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" || httpStatus(err) == http.StatusNotFound
}
