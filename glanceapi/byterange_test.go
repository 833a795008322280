package glanceapi

import (
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// webobRange is an oracle for parseRange: webob's own regexp and rules
// (Range.parse), with Python's unbounded integers emulated by comparing
// canonical decimal strings.
var webobRangeRE = regexp.MustCompile(`^(?i:bytes) *= *([0-9]*) *- *([0-9]*)`)

func webobRange(h string) (rangeSpec, bool) {
	m := webobRangeRE.FindStringSubmatch(h)
	if m == nil {
		return rangeSpec{}, false
	}
	first, last := trimZeros(m[1]), trimZeros(m[2])
	if first == "" {
		if last == "" {
			return rangeSpec{}, false // webob raises; Glance answers 500
		}
		return rangeSpec{suffix: last}, true
	}
	if last != "" && decCmp(first, last) > 0 {
		return rangeSpec{}, false
	}
	return rangeSpec{first: first, last: last}, true
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want rangeSpec
		ok   bool
	}{
		{"bytes=0-4", rangeSpec{first: "0", last: "4"}, true},
		{"bytes=5-", rangeSpec{first: "5"}, true},
		{"bytes=-3", rangeSpec{suffix: "3"}, true},
		{"bytes=-0", rangeSpec{suffix: "0"}, true},
		{"BYTES = 2 - 3", rangeSpec{first: "2", last: "3"}, true},
		{"bytes=2-3junk", rangeSpec{first: "2", last: "3"}, true},
		{"bytes=00-01", rangeSpec{first: "0", last: "1"}, true},
		{"bytes=1-1", rangeSpec{first: "1", last: "1"}, true},
		{"bytes=4-2", rangeSpec{}, false},
		{"bytes=-", rangeSpec{}, false},
		{"garbage", rangeSpec{}, false},
		{"items=0-1", rangeSpec{}, false},
		{"", rangeSpec{}, false},
		{"bytes=\t1-2", rangeSpec{}, false},
		{"bytes=99999999999999999999-99999999999999999998", rangeSpec{}, false},
		{"bytes=99999999999999999998-99999999999999999999", rangeSpec{first: "99999999999999999998", last: "99999999999999999999"}, true},
	} {
		got, ok := parseRange(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRange(%q) = %+v %v, want %+v %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if o, ook := webobRange(tc.in); o != got || ook != ok {
			t.Errorf("parseRange(%q) = %+v %v, oracle %+v %v", tc.in, got, ok, o, ook)
		}
	}
}

// TestResolveRange holds what Glance 25.1 answered for a 10-byte image
// ("0123456789") and for an empty one, header by header.
func TestResolveRange(t *testing.T) {
	t.Parallel()
	const badStart = "Invalid start position in Range header. Start position MUST be in the inclusive range [0, 9]."
	for _, tc := range []struct {
		rng, crange string
		size        int64
		status      int    // 0 = 200, else 206/400/416
		cr          string // Content-Range of a 206
		msg         string
	}{
		{size: 10},
		{rng: "bytes=0-4", size: 10, status: 206, cr: "bytes 0-4/10"},
		{rng: "bytes=5-", size: 10, status: 206, cr: "bytes 5-9/10"},
		{rng: "bytes=-3", size: 10, status: 206, cr: "bytes 7-9/10"},
		{rng: "bytes=-0", size: 10, status: 206, cr: "bytes 0-9/10"},
		{rng: "bytes=-10", size: 10, status: 206, cr: "bytes 0-9/10"},
		{rng: "bytes=-11", size: 10, status: 206, cr: "bytes 0-9/10"},
		{rng: "bytes=-99999999999999999999", size: 10, status: 206, cr: "bytes 0-9/10"},
		{rng: "bytes=3-100", size: 10, status: 206, cr: "bytes 3-9/10"},
		{rng: "bytes=3-99999999999999999999", size: 10, status: 206, cr: "bytes 3-9/10"},
		{rng: "bytes=9-9", size: 10, status: 206, cr: "bytes 9-9/10"},
		{rng: "bytes=8-9", size: 10, status: 206, cr: "bytes 8-9/10"},
		{rng: "bytes=1-1", size: 10, status: 206, cr: "bytes 1-1/10"},
		{rng: "BYTES = 2 - 3", size: 10, status: 206, cr: "bytes 2-3/10"},
		{rng: "bytes=2-3junk", size: 10, status: 206, cr: "bytes 2-3/10"},
		{rng: "bytes=10-", size: 10, status: 416, msg: badStart},
		{rng: "bytes=10-20", size: 10, status: 416, msg: badStart},
		{rng: "bytes=99999999999999999998-99999999999999999999", size: 10, status: 416, msg: badStart},
		{rng: "bytes=4-2", size: 10, status: 416, msg: "Invalid Range header."},
		{rng: "garbage", size: 10, status: 416, msg: "Invalid Range header."},
		{rng: "", size: 10, status: 416, msg: "Invalid Range header."},
		{rng: "bytes=-", size: 10, status: 416, msg: "Invalid Range header."}, // Glance: 500
		{rng: "bytes=0-1,3-4", size: 10, status: 400,
			msg: "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead."},
		{rng: "junk,", size: 10, status: 400,
			msg: "Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead."},
		{rng: "bytes=0-1", size: 0, status: 416,
			msg: "Invalid start position in Range header. Start position MUST be in the inclusive range [0, -1]."},
		{rng: "bytes=-1", size: 0, status: 416, // Glance: 206 "bytes 0--1/0"
			msg: "Invalid start position in Range header. Start position MUST be in the inclusive range [0, -1]."},
		{size: 0},
		// The legacy Content-Range request header.
		{crange: "bytes 1-3/*", size: 10, status: 206, cr: "bytes 1-3/10"},
		{crange: "bytes 1-3/10", size: 10, status: 206, cr: "bytes 1-3/10"},
		{crange: "bytes 0-9/*", size: 10, status: 206, cr: "bytes 0-9/10"},
		{crange: "bytes 0-50/100", size: 10, status: 206, cr: "bytes 0-9/10"}, // Glance: "bytes 0-50/10", 51 bytes announced
		{crange: "bytes 0-10/*", size: 10, status: 416,
			msg: "Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, 9]."},
		{crange: "bytes 10-11/*", size: 10, status: 416,
			msg: "Invalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, 9]."},
		{crange: "bytes 10-11/100", size: 10, status: 416,
			msg: "Invalid start position in Content-Range header. Start position MUST be in the inclusive range [0, 9]."},
		{crange: "bytes 3-1/*", size: 10, status: 416, msg: "Invalid Content-Range header."},
		{crange: "bytes 1-3/3", size: 10, status: 416, msg: "Invalid Content-Range header."},
		{crange: "junk", size: 10, status: 416, msg: "Invalid Content-Range header."},
		{crange: "bytes */*", size: 10, status: 416, msg: "Invalid Content-Range header."}, // Glance: 500
		{crange: "Bytes 1-3/*", size: 10, status: 416, msg: "Invalid Content-Range header."},
		{rng: "bytes=0-1", crange: "bytes 5-6/*", size: 10, status: 206, cr: "bytes 0-1/10"}, // Range wins
	} {
		h := http.Header{}
		if tc.rng != "" || (tc.status != 0 && tc.crange == "") {
			h["Range"] = []string{tc.rng}
		}
		if tc.crange != "" {
			h["Content-Range"] = []string{tc.crange}
		}
		span, err := resolveRange(h, tc.size)
		name := tc.rng + "|" + tc.crange
		switch tc.status {
		case 0, 206:
			if err != nil {
				t.Errorf("%q: %v", name, err)
				continue
			}
			if span.partial != (tc.status == 206) {
				t.Errorf("%q: partial %v", name, span.partial)
			}
			if span.offset < 0 || span.length < 0 || span.offset+span.length > tc.size {
				t.Errorf("%q: span %+v outside %d bytes", name, span, tc.size)
			}
			if tc.status == 206 && span.contentRange(tc.size) != tc.cr {
				t.Errorf("%q: Content-Range %q, want %q", name, span.contentRange(tc.size), tc.cr)
			}
			if tc.status == 0 && (span.offset != 0 || span.length != tc.size) {
				t.Errorf("%q: span %+v, want the whole image", name, span)
			}
		default:
			if got := statusFor(imaged.ErrorCode(err)); got != tc.status || imaged.ErrorMessage(err) != tc.msg {
				t.Errorf("%q: %d %q, want %d %q", name, got, imaged.ErrorMessage(err), tc.status, tc.msg)
			}
		}
	}
}

// FuzzParseRange checks parseRange against webob's regexp and rules, and
// that every accepted range resolves to a span inside the image whose
// Content-Range describes it.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-4", "bytes=-3", "bytes=5-", "BYTES = 2 - 3x", "bytes=4-2", "bytes=-",
		"bytes=99999999999999999999-", "bytes=-0", "", "bytes=0-1,2-3", "bytes 1-3/*"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		got, ok := parseRange(h)
		if want, wok := webobRange(h); got != want || ok != wok {
			t.Fatalf("parseRange(%q) = %+v %v, webob %+v %v", h, got, ok, want, wok)
		}
		for _, hdr := range []http.Header{{"Range": {h}}, {"Content-Range": {h}}} {
			span, err := resolveRange(hdr, size)
			if err != nil {
				if c := imaged.ErrorCode(err); c != imaged.ERANGE && c != imaged.EINVALID {
					t.Fatalf("%v: code %s", hdr, c)
				}
				continue
			}
			if span.offset < 0 || span.length < 0 || span.offset > size-span.length {
				t.Fatalf("%v size %d: span %+v outside the image", hdr, size, span)
			}
			if span.partial {
				cr := span.contentRange(size)
				m := regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`).FindStringSubmatch(cr)
				if m == nil {
					t.Fatalf("%v: bad Content-Range %q", hdr, cr)
				}
				a, _ := strconv.ParseInt(m[1], 10, 64)
				b, _ := strconv.ParseInt(m[2], 10, 64)
				if a != span.offset || b-a+1 != span.length || b >= size {
					t.Fatalf("%v: Content-Range %q for span %+v", hdr, cr, span)
				}
			}
			if strings.Contains(h, ",") && hdr.Get("Range") != "" {
				t.Fatalf("%q: a comma must be refused", h)
			}
		}
	})
}

func TestDecimalHelpers(t *testing.T) {
	t.Parallel()
	if decInt("99999999999999999999") != math.MaxInt64 || decInt("42") != 42 {
		t.Error("decInt")
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{{"9", "10", -1}, {"10", "9", 1}, {"12", "12", 0}, {"19", "21", -1}} {
		if got := decCmp(tc.a, tc.b); got != tc.want {
			t.Errorf("decCmp(%s, %s) = %d", tc.a, tc.b, got)
		}
	}
	if trimZeros("000") != "0" || trimZeros("007") != "7" || trimZeros("") != "" {
		t.Error("trimZeros")
	}
}
