package glanceapi

import (
	"encoding/json"
	"testing"

	"github.com/imaged/imaged"
)

// Filters on integer and hash columns compare as Glance's database does
// (checked against Glance 25.1 on SQLite): numeric text equals the
// integer, anything else matches no image (200, empty page), never 400.
func TestParseColumnFilters(t *testing.T) {
	t.Parallel()
	i64 := func(n int64) *int64 { return &n }
	base := func() imaged.ImageQuery {
		return imaged.ImageQuery{MemberStatus: "accepted", Limit: 25, Sort: []imaged.SortKey{{Key: "created_at", Dir: "desc"}}}
	}
	for _, tc := range []struct {
		raw     string
		set     func(q *imaged.ImageQuery)
		noMatch bool
	}{
		{"min_ram=512", func(q *imaged.ImageQuery) { q.MinRAM = i64(512) }, false},
		{"min_ram=+512.0", func(q *imaged.ImageQuery) { q.MinRAM = i64(512) }, false},
		{"min_disk=1e1&virtual_size=%205.12e2%20", func(q *imaged.ImageQuery) { q.MinDisk, q.VirtualSize = i64(10), i64(512) }, false},
		{"os_hash_algo=sha512&checksum=abc&os_hash_value=def", func(q *imaged.ImageQuery) {
			q.OSHashAlgo, q.Checksum, q.OSHashValue = "sha512", "abc", "def"
		}, false},
		{"size=0512", func(q *imaged.ImageQuery) { q.SizeMin, q.SizeMax = i64(512), i64(512) }, false},
		{"min_ram=abc", func(q *imaged.ImageQuery) {}, true},
		{"min_disk=1.5", func(q *imaged.ImageQuery) {}, true},
		{"virtual_size=", func(q *imaged.ImageQuery) {}, true},
		{"size=abc", func(q *imaged.ImageQuery) {}, true},
		{"checksum=", func(q *imaged.ImageQuery) { q.Checksum = "" }, true},
		{"os_hash_algo=", func(q *imaged.ImageQuery) {}, true},
		{"min_ram=1_0", func(q *imaged.ImageQuery) {}, true},
	} {
		lq, err := parseListQuery(parseParams(tc.raw), 25, 1000)
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		want := base()
		tc.set(&want)
		got, _ := json.Marshal(lq.q)
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("%s:\n got %s\nwant %s", tc.raw, got, wantJSON)
		}
		if (lq.limit == 0) != tc.noMatch {
			t.Errorf("%s: page size %d, want empty page %v", tc.raw, lq.limit, tc.noMatch)
		}
	}
	// A bad value still loses to an error found in a later filter.
	if _, err := parseListQuery(parseParams("min_ram=x&created_at=bad"), 25, 1000); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Errorf("min_ram=x&created_at=bad: %v", err)
	}
}

func TestSQLInteger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		n  int64
		ok bool
	}{
		{"512", 512, true}, {" 512\t", 512, true}, {"+512", 512, true}, {"-1", -1, true}, {"0512", 512, true},
		{"512.", 512, true}, {"512.0", 512, true}, {"5.12e2", 512, true}, {".5e3", 500, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"", 0, false}, {"abc", 0, false}, {"512abc", 0, false}, {"1.5", 0, false}, {"1_0", 0, false},
		{"0x200", 0, false}, {"inf", 0, false}, {"99999999999999999999999", 0, false}, {".", 0, false}, {"1e", 0, false},
	} {
		n, ok := sqlInteger(tc.in)
		if n != tc.n || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}
