package s3

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Parts double in size every partsPerSize parts, so that memory stays at
// two parts of the configured size for common images while the 10000-part
// limit still allows terabytes.
func TestPartSizeGrows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sent    int
		pending bool
		want    int
	}{
		{0, false, 8 << 20},
		{998, true, 8 << 20},
		{999, true, 16 << 20}, // the part being filled is the 1001st
		{1000, false, 16 << 20},
		{2500, false, 32 << 20},
		{9999, false, 4 << 30},
	} {
		w := &writer{s: &Store{partSize: DefaultPartSize}, parts: make([]types.CompletedPart, tc.sent)}
		if tc.pending {
			w.pending = make(chan partResult)
		}
		if got := w.fillSize(); got != tc.want {
			t.Errorf("%d parts sent (pending %v): part size %d, want %d", tc.sent, tc.pending, got, tc.want)
		}
	}
	// The doubling stops at S3's largest part.
	w := &writer{s: &Store{partSize: 1 << 30}, parts: make([]types.CompletedPart, 9000)}
	if got := w.fillSize(); got != MaxPartSize {
		t.Errorf("part size %d, want the maximum %d", got, MaxPartSize)
	}
	// Blob capacity with the default: the sum over 10 sizes of 1000 parts.
	var total int64
	for i := range maxParts / partsPerSize {
		total += int64(partsPerSize) * min(int64(DefaultPartSize)<<i, MaxPartSize)
	}
	if total < 7<<40 {
		t.Errorf("largest blob %d bytes, want at least 7 TiB", total)
	}
}
