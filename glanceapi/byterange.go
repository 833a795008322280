package glanceapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// A download's Range handling follows Glance 25.1 (glance.common.wsgi's
// get_range_from_request over webob.byterange), including its leniencies:
// only the first "bytes=a-b" of the header is looked at (trailing junk is
// ignored), "bytes" is case-insensitive and spaces may surround "=" and "-";
// a comma anywhere is a 400; a legacy Content-Range request header is
// honoured when there is no Range. Where Glance fails with a 500 (an empty
// "bytes=-", "bytes */*", any valid range on an image without data) or
// sends a broken answer ("bytes 0--1/0" on an empty image, a Content-Length
// past the end for "Content-Range: bytes 0-50/100"), we answer 416, 204 or
// a clamped 206 instead.

// rangeSpec is a parsed "bytes=first-last" Range header, as webob's
// Range.parse returns it. The numbers are kept as decimal strings, without
// leading zeros, because Python compares them exactly at any size; an
// int64 would saturate and compare two huge numbers wrongly.
type rangeSpec struct {
	first  string // "" = suffix range ("bytes=-n")
	last   string // inclusive; "" = to the end
	suffix string // n of a suffix range
}

// skipSpaces returns s without its leading ASCII spaces (the regexp's " *").
func skipSpaces(s string) string {
	return strings.TrimLeft(s, " ")
}

// digits splits s into its leading ASCII digits and the rest.
func digits(s string) (string, string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// trimZeros canonicalises a decimal string ("007" → "7", "000" → "0").
func trimZeros(d string) string {
	t := strings.TrimLeft(d, "0")
	if t == "" && d != "" {
		return "0"
	}
	return t
}

// decCmp compares two canonical non-negative decimal strings.
func decCmp(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// decInt converts a canonical decimal string to an int64, saturating at
// math.MaxInt64 (every such value is past the end of any image).
func decInt(d string) int64 {
	n, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// parseRange parses a Range header value as webob's Range.parse does with
// its regexp `bytes *= *(\d*) *- *(\d*)` (case-insensitive, matched at the
// start only). ok is false where webob returns None (and for "bytes=-",
// which makes webob raise).
func parseRange(h string) (rangeSpec, bool) {
	if len(h) < 5 || !strings.EqualFold(h[:5], "bytes") {
		return rangeSpec{}, false
	}
	s := skipSpaces(h[5:])
	if !strings.HasPrefix(s, "=") {
		return rangeSpec{}, false
	}
	first, s := digits(skipSpaces(s[1:]))
	s = skipSpaces(s)
	if !strings.HasPrefix(s, "-") {
		return rangeSpec{}, false
	}
	last, _ := digits(skipSpaces(s[1:]))
	first, last = trimZeros(first), trimZeros(last)
	switch {
	case first == "" && last == "":
		return rangeSpec{}, false
	case first == "":
		return rangeSpec{suffix: last}, true
	case last != "" && decCmp(first, last) > 0:
		return rangeSpec{}, false
	}
	return rangeSpec{first: first, last: last}, true
}

// contentRangeSpec is a legacy Content-Range request header
// ("bytes first-last/length", length "" for "*").
type contentRangeSpec struct {
	first, last, length string
}

// parseContentRange parses a Content-Range value as webob's
// ContentRange.parse does (regexp `bytes (?:(\d+)-(\d+)|[*])/(?:(\d+)|[*])`
// at the start, case-sensitive, then its validity rules for a response).
// The "bytes */..." forms, which webob accepts and Glance then fails on
// with a 500, are refused.
func parseContentRange(h string) (contentRangeSpec, bool) {
	s, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return contentRangeSpec{}, false
	}
	first, s := digits(s)
	if first == "" || !strings.HasPrefix(s, "-") {
		return contentRangeSpec{}, false
	}
	last, s := digits(s[1:])
	if last == "" || !strings.HasPrefix(s, "/") {
		return contentRangeSpec{}, false
	}
	length, _ := digits(s[1:])
	if length == "" && !strings.HasPrefix(s[1:], "*") {
		return contentRangeSpec{}, false
	}
	c := contentRangeSpec{first: trimZeros(first), last: trimZeros(last), length: trimZeros(length)}
	if decCmp(c.first, c.last) > 0 {
		return contentRangeSpec{}, false // start >= stop
	}
	if c.length != "" && (decCmp(c.last, c.length) >= 0 || decCmp(c.first, c.length) >= 0) {
		return contentRangeSpec{}, false // stop > length, or start >= length
	}
	return c, true
}

// byteSpan is the part of an image a download sends.
type byteSpan struct {
	offset, length int64
	partial        bool // a 206 with Content-Range
}

// contentRange is the response's Content-Range value of a partial span.
func (s byteSpan) contentRange(size int64) string {
	return "bytes " + strconv.FormatInt(s.offset, 10) + "-" + strconv.FormatInt(s.offset+s.length-1, 10) +
		"/" + strconv.FormatInt(size, 10)
}

// rangeNotSatisfiable is Glance's 416: webob's explanation, then the detail.
func rangeNotSatisfiable(format string, args ...any) error {
	return imaged.Detailf(imaged.ERANGE, format, args...)
}

// checkRangeSyntax applies the checks Glance makes before it looks at the
// image's size: a comma is a 400, an unparsable header a 416. It returns
// the parsed forms; hasRange/hasCR say which header applies.
func checkRangeSyntax(h http.Header) (rs rangeSpec, cr contentRangeSpec, hasRange, hasCR bool, err error) {
	if v, ok := h["Range"]; ok {
		raw := strings.Join(v, ",") // repeated headers are one list, as WSGI joins them
		if strings.Contains(raw, ",") {
			return rs, cr, false, false, invalid("Requests with multiple ranges are not supported in Glance. " +
				"You may make multiple single-range requests instead.")
		}
		rs, ok := parseRange(raw)
		if !ok {
			return rs, cr, false, false, rangeNotSatisfiable("Invalid Range header.")
		}
		return rs, cr, true, false, nil
	}
	if v, ok := h["Content-Range"]; ok {
		cr, ok := parseContentRange(strings.Join(v, ","))
		if !ok {
			return rs, cr, false, false, rangeNotSatisfiable("Invalid Content-Range header.")
		}
		return rs, cr, false, true, nil
	}
	return rs, cr, false, false, nil
}

// resolveRange turns a download's Range (or legacy Content-Range) header
// into the span of an image of size bytes to send, or an *imaged.Error:
// EINVALID (400) for several ranges, ERANGE (416) for a malformed or
// unsatisfiable one.
func resolveRange(h http.Header, size int64) (byteSpan, error) {
	full := byteSpan{offset: 0, length: size}
	rs, cr, hasRange, hasCR, err := checkRangeSyntax(h)
	switch {
	case err != nil:
		return byteSpan{}, err
	case hasRange:
		if rs.suffix == "" && decInt(rs.first) >= size || size == 0 {
			return byteSpan{}, rangeNotSatisfiable("Invalid start position in Range header. "+
				"Start position MUST be in the inclusive range [0, %d].", size-1)
		}
		var off int64
		if rs.suffix != "" {
			// A suffix at least as long as the image is the whole image.
			if n := decInt(rs.suffix); n > 0 && n < size {
				off = size - n
			}
		} else {
			off = decInt(rs.first)
		}
		end := size // exclusive
		if rs.last != "" && rs.suffix == "" {
			if last := decInt(rs.last); last < size-1 {
				end = last + 1
			}
		}
		return byteSpan{offset: off, length: end - off, partial: true}, nil
	case hasCR:
		first, last := decInt(cr.first), decInt(cr.last)
		if cr.length == "" && last >= size {
			return byteSpan{}, rangeNotSatisfiable("Invalid stop position in Content-Range header. "+
				"The stop position MUST be in the inclusive range [0, %d].", size-1)
		}
		if first >= size {
			return byteSpan{}, rangeNotSatisfiable("Invalid start position in Content-Range header. "+
				"Start position MUST be in the inclusive range [0, %d].", size-1)
		}
		// Glance sends stop-start bytes even past the end (a broken
		// response); we clamp to the image.
		last = min(last, size-1)
		return byteSpan{offset: first, length: last - first + 1, partial: true}, nil
	}
	return full, nil
}
