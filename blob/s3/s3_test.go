package s3_test

import (
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob/blobtest"
	blobs3 "github.com/imaged/imaged/blob/s3"
	"github.com/imaged/imaged/blob/s3/s3test"
)

func newStore(t *testing.T, srv *s3test.Server, prefix string, opts ...blobs3.Option) *blobs3.Store {
	t.Helper()
	s, err := blobs3.New(srv.Config(t, prefix), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	for _, prefix := range []string{"", "imaged/blobs/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			t.Parallel()
			probe := newStore(t, srv, prefix)
			blobtest.Run(t, func(t *testing.T) imaged.BlobStore { return newStore(t, srv, prefix) },
				blobtest.MaxKeyLen(probe.MaxKeyLen()), blobtest.TimeResolution(time.Second))
		})
	}
}
