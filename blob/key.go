// Package blob holds what every imaged.BlobStore backend shares: the rules
// for keys. The backends live in subpackages (blob/fs: a local directory)
// and all run one conformance suite (blob/blobtest).
package blob

import (
	"strings"

	"github.com/imaged/imaged"
)

// Limits on keys. They keep every key storable on every backend: a POSIX
// file name holds at most 255 bytes (and the fs store adds a suffix to
// directory names), S3 keys at most 1024.
const (
	MaxKeyLen     = 1024
	MaxSegmentLen = 200
)

// ReservedPrefix is a first key segment no store accepts: the fs store
// keeps its uncommitted writes there, and keeping it reserved everywhere
// makes keys portable between backends.
const ReservedPrefix = "_uploads"

// ValidKey returns nil if key is a valid blob key: slash-separated
// segments of [A-Za-z0-9._-], none empty, "." or "..", the first not
// ReservedPrefix, within MaxKeyLen and MaxSegmentLen. Otherwise it returns
// an EINVALID error. Backends call it before touching storage so that no
// key can escape the store's namespace (no absolute paths, no "..").
func ValidKey(key string) error {
	if key == "" {
		return imaged.Errorf(imaged.EINVALID, "Blob key must not be empty.")
	}
	if len(key) > MaxKeyLen {
		return imaged.Errorf(imaged.EINVALID, "Blob key is longer than %d bytes.", MaxKeyLen)
	}
	first := true
	for seg := range strings.SplitSeq(key, "/") {
		if err := validSegment(seg); err != nil {
			return err
		}
		if first && seg == ReservedPrefix {
			return imaged.Errorf(imaged.EINVALID, "Blob key must not start with %q.", ReservedPrefix)
		}
		first = false
	}
	return nil
}

// ValidSegment reports whether seg may be one segment of a key.
func ValidSegment(seg string) bool { return validSegment(seg) == nil }

func validSegment(seg string) error {
	switch {
	case seg == "":
		return imaged.Errorf(imaged.EINVALID, "Blob key must not have empty segments.")
	case seg == "." || seg == "..":
		return imaged.Errorf(imaged.EINVALID, "Blob key must not have %q segments.", seg)
	case len(seg) > MaxSegmentLen:
		return imaged.Errorf(imaged.EINVALID, "Blob key segments must not be longer than %d bytes.", MaxSegmentLen)
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return imaged.Errorf(imaged.EINVALID, "Blob key has an invalid character %q.", c)
		}
	}
	return nil
}
