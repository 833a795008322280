package blob_test

import (
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/blob"
)

func TestValidKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"images/0d3c-11/data", true},
		{"x/_uploads", true},
		{"...", true},
		{strings.Repeat("s", blob.MaxSegmentLen), true},
		{strings.Repeat("a/", blob.MaxKeyLen/2-1) + "ab", true},
		{"", false},
		{"/abs", false},
		{"a//b", false},
		{"a/", false},
		{"a/../b", false},
		{"./a", false},
		{"_uploads", false},
		{"_uploads/a", false},
		{"a+b", false},
		{"sp ace", false},
		{"naïve", false},
		{strings.Repeat("s", blob.MaxSegmentLen+1), false},
		{strings.Repeat("a/", blob.MaxKeyLen/2) + "a", false},
	} {
		err := blob.ValidKey(tc.key)
		if tc.ok && err != nil || !tc.ok && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Errorf("ValidKey(%.30q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}
