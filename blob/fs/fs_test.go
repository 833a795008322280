package fs_test

import (
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/blobtest"
	"github.com/imaged/imaged/blob/fs"
)

func newStore(t *testing.T, opts ...fs.Option) *fs.Store {
	t.Helper()
	s, err := fs.New(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) imaged.BlobStore { return newStore(t) })
}

// Unbuffered writers take other paths (write-through, os.File.ReadFrom).
func TestConformanceUnbuffered(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) imaged.BlobStore { return newStore(t, fs.WithBufferSize(0)) })
}
