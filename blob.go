package imaged

import (
	"context"
	"io"
	"time"
)

// BlobInfo describes one stored blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// BlobStore keeps image bytes under keys, as distribution's storage drivers
// do: a small interface that many backends (a local directory now, S3 later)
// implement and one conformance suite (blob/blobtest) checks. Keys are
// slash-separated paths of [A-Za-z0-9._-] segments; stores reject others
// with EINVALID. Errors: ENOTFOUND for a missing key.
type BlobStore interface {
	// Create starts writing a blob. Its bytes become visible under key
	// only when Commit succeeds, atomically (a reader never sees a
	// partial blob); Cancel, or a crash, leaves nothing under key.
	// Committing over an existing key replaces it.
	Create(ctx context.Context, key string) (BlobWriter, error)
	// Open reads length bytes of a blob from offset (length < 0: to the
	// end). ERANGE if offset is past the end.
	Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes a blob.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes a blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each committed blob whose key starts with
	// prefix, in key order; an error from fn stops the walk and is
	// returned.
	List(ctx context.Context, prefix string, fn func(BlobInfo) error) error
	// PurgeUploads removes uncommitted writes (left by crashed or
	// killed processes) older than the given age and returns how many
	// it removed. Safe while other processes write.
	PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error)
}

// BlobWriter is an uncommitted blob being written.
type BlobWriter interface {
	io.Writer
	// Commit makes the written bytes durable and visible under the key
	// and returns the blob's description. Write must not be called
	// after Commit.
	Commit(ctx context.Context) (BlobInfo, error)
	// Cancel discards the written bytes. It is safe to call after
	// Commit (then it does nothing) and more than once.
	Cancel(ctx context.Context) error
}
