package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/imaged/imaged"
	blobs3 "github.com/imaged/imaged/blob/s3"
	"github.com/imaged/imaged/blob/s3/s3test"
)

// bucketState lists what a bucket holds behind the store's back: every
// object name and every multipart upload in progress.
func bucketState(t *testing.T, srv *s3test.Server, bucket string) (objects, uploads []string) {
	t.Helper()
	ctx := t.Context()
	p := s3sdk.NewListObjectsV2Paginator(srv.Client(), &s3sdk.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			objects = append(objects, aws.ToString(o.Key))
		}
	}
	mu, err := srv.Client().ListMultipartUploads(ctx, &s3sdk.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range mu.Uploads {
		uploads = append(uploads, aws.ToString(u.Key))
	}
	return objects, uploads
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

func storeWith(t *testing.T, srv *s3test.Server, cfg blobs3.Config, opts ...blobs3.Option) *blobs3.Store {
	t.Helper()
	s, err := blobs3.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A blob of more than two parts is uploaded in parts as it streams in and
// reads back whole; the object is a multipart object of that many parts.
func TestMultipart(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config(t, "mp/")
	cfg.PartSize = blobs3.MinPartSize
	s := storeWith(t, srv, cfg)
	ctx := t.Context()
	want := randomBytes(1, 3*blobs3.MinPartSize+12345) // 4 parts, the last short
	w, err := s.Create(ctx, "images/big")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(w, bytes.NewReader(want)); err != nil || n != int64(len(want)) {
		t.Fatalf("copy = %d, %v", n, err)
	}
	// Before Commit the parts are uploaded but nothing is visible.
	if _, err := s.Stat(ctx, "images/big"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("Stat before Commit: %v", err)
	}
	info, err := w.Commit(ctx)
	if err != nil || info.Size != int64(len(want)) {
		t.Fatalf("Commit = %+v, %v", info, err)
	}
	r, err := s.Open(ctx, "images/big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(want))
	}
	// A range across a part boundary.
	r, err = s.Open(ctx, "images/big", blobs3.MinPartSize-10, 20)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, want[blobs3.MinPartSize-10:blobs3.MinPartSize+10]) {
		t.Fatalf("range across parts = %d bytes, not the written ones", len(got))
	}
	head, err := srv.Client().HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: &cfg.Bucket, Key: aws.String("mp/images/big!")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-4") {
		t.Errorf("ETag %s, want a multipart ETag of 4 parts", etag)
	}
	objects, uploads := bucketState(t, srv, cfg.Bucket)
	if !slices.Equal(objects, []string{"mp/images/big!"}) || len(uploads) != 0 {
		t.Fatalf("bucket holds %q and uploads %q, want only the blob", objects, uploads)
	}
}

// Cancel, after parts were uploaded and activity markers written, leaves
// nothing in the bucket.
func TestCancelLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config(t, "")
	cfg.PartSize = blobs3.MinPartSize
	s := storeWith(t, srv, cfg, blobs3.WithTouchInterval(time.Nanosecond))
	ctx := t.Context()
	for _, size := range []int{0, 100, 2*blobs3.MinPartSize + 1} {
		w, err := s.Create(ctx, "c/x")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // past the (shortest) touch interval
		if _, err := w.Write(randomBytes(2, size)); err != nil {
			t.Fatal(err)
		}
		if objects, _ := bucketState(t, srv, cfg.Bucket); len(objects) != 1 || !strings.HasPrefix(objects[0], "_uploads/") {
			t.Fatalf("size %d: while writing the bucket holds %q, want one activity marker", size, objects)
		}
		if err := w.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if objects, uploads := bucketState(t, srv, cfg.Bucket); len(objects)+len(uploads) != 0 {
			t.Fatalf("size %d: after Cancel the bucket holds %q and uploads %q", size, objects, uploads)
		}
	}
	// A commit, too, removes its marker.
	w, err := s.Create(ctx, "c/y")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	w.Write(randomBytes(3, blobs3.MinPartSize+1))
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if objects, uploads := bucketState(t, srv, cfg.Bucket); !slices.Equal(objects, []string{"c/y!"}) || len(uploads) != 0 {
		t.Fatalf("after Commit the bucket holds %q and uploads %q", objects, uploads)
	}
}

// PurgeUploads aborts an abandoned multipart upload (parts uploaded, its
// process gone) but not one that is old yet still receives bytes.
func TestPurgeAbandonedMultipart(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config(t, "imaged/")
	cfg.PartSize = blobs3.MinPartSize
	s := storeWith(t, srv, cfg, blobs3.WithTouchInterval(200*time.Millisecond))
	ctx := t.Context()
	abandoned, err := s.Create(ctx, "images/abandoned")
	if err != nil {
		t.Fatal(err)
	}
	abandoned.Write(randomBytes(4, blobs3.MinPartSize+1)) // one part uploaded
	slow, err := s.Create(ctx, "images/slow")
	if err != nil {
		t.Fatal(err)
	}
	slowData := randomBytes(5, 100000)
	for i := range 10 { // 2.5 s of a trickle
		time.Sleep(250 * time.Millisecond)
		if _, err := slow.Write(slowData[i*10000 : (i+1)*10000]); err != nil {
			t.Fatal(err)
		}
	}
	if _, uploads := bucketState(t, srv, cfg.Bucket); len(uploads) != 2 {
		t.Fatalf("uploads = %q, want both", uploads)
	}
	n, err := s.PurgeUploads(ctx, 2*time.Second)
	if err != nil || n != 1 {
		t.Fatalf("PurgeUploads(2s) = %d, %v; want the abandoned upload only", n, err)
	}
	if _, uploads := bucketState(t, srv, cfg.Bucket); !slices.Equal(uploads, []string{"imaged/images/slow!"}) {
		t.Fatalf("uploads after the purge = %q", uploads)
	}
	if _, err := abandoned.Commit(ctx); imaged.ErrorCode(err) != imaged.ECONFLICT {
		t.Fatalf("Commit of the purged upload: %v, want a conflict", err)
	}
	if _, err := slow.Commit(ctx); err != nil {
		t.Fatalf("Commit of the slow upload: %v", err)
	}
	objects, uploads := bucketState(t, srv, cfg.Bucket)
	if !slices.Equal(objects, []string{"imaged/images/slow!"}) || len(uploads) != 0 {
		t.Fatalf("bucket holds %q and uploads %q, want only the slow blob", objects, uploads)
	}
}

// Objects in the bucket that are not blobs of the store (other data, other
// prefixes) are neither listed nor purged.
func TestForeignObjects(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config(t, "mine/")
	s := storeWith(t, srv, cfg)
	ctx := t.Context()
	for _, name := range []string{"mine/plain", "mine/a+b!", "other/x!", "mine!", "mine/_uploads/zzz"} {
		if _, err := srv.Client().PutObject(ctx, &s3sdk.PutObjectInput{Bucket: &cfg.Bucket, Key: aws.String(name), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Client().CreateMultipartUpload(ctx, &s3sdk.CreateMultipartUploadInput{Bucket: &cfg.Bucket, Key: aws.String("other/upload")}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("v"))
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(i imaged.BlobInfo) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("List = %q, want only the store's blob", keys)
	}
	if n, err := s.PurgeUploads(ctx, 0); err != nil || n != 0 {
		t.Fatalf("PurgeUploads = %d, %v; want another application's upload left alone", n, err)
	}
	if _, uploads := bucketState(t, srv, cfg.Bucket); len(uploads) != 1 {
		t.Fatalf("uploads = %q", uploads)
	}
}

// Errors: wrong credentials and a missing bucket fail without the secret
// in the error text; a server that is down is EUNAVAILABLE.
func TestErrors(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	ctx := t.Context()
	good := srv.Config(t, "")
	bad := good
	bad.SecretKey = "Wrong-Secret-" + strings.Repeat("z", 20)
	noBucket := good
	noBucket.Bucket = "no-such-bucket"
	for name, cfg := range map[string]blobs3.Config{"bad secret": bad, "no bucket": noBucket} {
		s := storeWith(t, srv, cfg)
		// (Stat is a HEAD, whose 404 cannot tell a missing bucket
		// from a missing blob: Check, at start-up, tells them apart.)
		var errs []error
		_, err := s.Create(ctx, "k")
		errs = append(errs, err, s.List(ctx, "", func(imaged.BlobInfo) error { return nil }), s.Check(ctx))
		_, err = s.Open(ctx, "k", 0, -1)
		errs = append(errs, err)
		_, err = s.PurgeUploads(ctx, 0)
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				t.Fatalf("%s: an operation succeeded", name)
			}
			if code := imaged.ErrorCode(err); code == imaged.ENOTFOUND && name == "no bucket" {
				t.Errorf("%s: %v is ENOTFOUND: a missing bucket is no missing blob", name, err)
			}
			for _, secret := range []string{bad.SecretKey, good.SecretKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error shows a secret: %v", name, err)
				}
			}
		}
	}
	if err := storeWith(t, srv, good).Check(ctx); err != nil {
		t.Fatalf("Check of a good store: %v", err)
	}

	// Nothing listens on port 1.
	down := good
	down.Endpoint = "http://127.0.0.1:1"
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := storeWith(t, srv, down).Stat(dctx, "k")
	if imaged.ErrorCode(err) != imaged.EUNAVAILABLE || strings.Contains(err.Error(), good.SecretKey) {
		t.Fatalf("Stat on a server that is down: %v, want EUNAVAILABLE", err)
	}
}
