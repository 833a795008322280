package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	blobs3 "github.com/imaged/imaged/blob/s3"
	"github.com/imaged/imaged/blob/s3/s3test"
)

// sharedStore is where the processes of a cluster keep image bytes: one
// store directory, or one bucket of an S3-compatible server. The
// multi-process scenarios run on each kind (storeKinds).
type sharedStore struct {
	// flags are the store's flags of `imaged serve`, env what the
	// processes' environment adds (credentials).
	flags, env []string
	// secret must never appear in a process's log ("" for none).
	secret string
	// entries lists everything the store holds, raw: the directory's
	// files (temporary ones of uncommitted uploads included), or the
	// bucket's objects (activity markers included).
	entries func(t *testing.T) []string
	// uploads lists the uploads in progress: the directory's
	// temporary files, or the bucket's multipart uploads (which
	// entries does not show).
	uploads func(t *testing.T) []pendingUpload
	// staged lists the entries holding an image's staged bytes.
	staged func(t *testing.T, id string) []string
}

// pendingUpload is an upload in progress in a store and how many of its
// bytes the store holds.
type pendingUpload struct {
	Name  string
	Bytes int64
}

// storeKinds are the shared stores the multi-process scenarios run on.
// The s3 kind skips without versitygw, except under CI=true.
var storeKinds = []struct {
	name string
	open func(t *testing.T) *sharedStore
}{
	{"dir", dirStore},
	{"s3", bucketStore},
}

// dirStore is one store directory (--store-dir) on the local file system,
// as processes on one machine, or on a shared file system, use it.
func dirStore(t *testing.T) *sharedStore {
	dir := filepath.Join(t.TempDir(), "store")
	return &sharedStore{
		flags:   []string{"--store-dir", dir},
		entries: func(t *testing.T) []string { return blobFiles(t, dir) },
		uploads: func(t *testing.T) []pendingUpload {
			var out []pendingUpload
			for _, f := range blobFiles(t, dir) {
				// The fs store writes uncommitted blobs as
				// temporary files in _uploads.
				if !strings.HasPrefix(filepath.ToSlash(f), "_uploads/") {
					continue
				}
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					continue // committed or purged meanwhile
				}
				out = append(out, pendingUpload{Name: f, Bytes: fi.Size()})
			}
			return out
		},
		staged: func(t *testing.T, id string) []string {
			var out []string
			for _, f := range blobFiles(t, dir) {
				if strings.HasPrefix(f, "staging") && strings.HasSuffix(f, id) {
					out = append(out, f)
				}
			}
			return out
		},
	}
}

// s3PartSize is the part size of the s3 kind: S3's smallest, so that the
// scenarios' uploads of a few MiB are multipart uploads of several parts.
const s3PartSize = blobs3.MinPartSize

// bucketStore is one bucket of a real S3-compatible server (versitygw),
// named by an s3:// store whose credentials come from the environment, as
// stateless replicas are configured.
func bucketStore(t *testing.T) *sharedStore {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	host := strings.TrimPrefix(srv.Endpoint, "http://")
	client := srv.Client()
	objects := func(t *testing.T, prefix string) []string {
		t.Helper()
		var out []string
		p := s3sdk.NewListObjectsV2Paginator(client, &s3sdk.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatalf("listing bucket %s: %v", bucket, err)
			}
			for _, o := range page.Contents {
				out = append(out, aws.ToString(o.Key))
			}
		}
		return out
	}
	return &sharedStore{
		flags:   []string{"--stores", fmt.Sprintf("shared=s3://%s/%s?insecure=true&part_size=%d", host, bucket, s3PartSize)},
		env:     []string{blobs3.EnvAccessKey + "=" + srv.AccessKey, blobs3.EnvSecretKey + "=" + srv.SecretKey},
		secret:  srv.SecretKey,
		entries: func(t *testing.T) []string { return objects(t, "") },
		uploads: func(t *testing.T) []pendingUpload {
			t.Helper()
			var out []pendingUpload
			in := &s3sdk.ListMultipartUploadsInput{Bucket: &bucket}
			for {
				page, err := client.ListMultipartUploads(t.Context(), in)
				if err != nil {
					t.Fatalf("listing the multipart uploads of bucket %s: %v", bucket, err)
				}
				for _, u := range page.Uploads {
					p := pendingUpload{Name: aws.ToString(u.Key) + " upload " + aws.ToString(u.UploadId)}
					// Its parts' bytes (one page: at most
					// 1000 parts, more than the tests send).
					if parts, err := client.ListParts(t.Context(), &s3sdk.ListPartsInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId}); err == nil {
						for _, part := range parts.Parts {
							p.Bytes += aws.ToInt64(part.Size)
						}
					}
					out = append(out, p)
				}
				if !aws.ToBool(page.IsTruncated) {
					return out
				}
				in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
			}
		},
		staged: func(t *testing.T, id string) []string { return objects(t, "staging/"+id) },
	}
}
