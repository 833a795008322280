package imaged

import (
	"strconv"
	"strings"
)

// Entity tags. Every catalog row (a VM image, or a container image, which
// shares its catalog image's id and version) has a strong entity tag
// naming its id and Version, which the store increments on every committed
// update; the HTTP surfaces send it as ETag and read If-Match (turned into
// NewContextWithIfMatch, checked inside the serialised update) and
// If-None-Match (304). The header syntax is RFC 9110's; it lives here so
// that every surface parses it the same way.

// ETag returns the entity tag of the row id at version: "<id>-<version>",
// quoted.
func ETag(id string, version int64) string {
	return `"` + id + "-" + strconv.FormatInt(version, 10) + `"`
}

// ParseEntityTags splits If-Match / If-None-Match header values into
// their entity tags (quotes and any W/ prefix kept) and reports whether
// "*" is among them. Elements that are not entity tags are skipped; an
// unterminated tag ends the value.
func ParseEntityTags(values []string) (tags []string, any bool) {
	for _, v := range values {
		for len(v) > 0 {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				any = true
				v = v[1:]
				continue
			}
			start := 0
			if strings.HasPrefix(v, "W/") {
				start = 2
			}
			if len(v) <= start || v[start] != '"' {
				if i := strings.IndexByte(v, ','); i >= 0 {
					v = v[i:]
				} else {
					v = ""
				}
				continue
			}
			end := strings.IndexByte(v[start+1:], '"')
			if end < 0 {
				break
			}
			tags = append(tags, v[:start+1+end+1])
			v = v[start+1+end+1:]
		}
	}
	return tags, any
}

// IfMatchVersions returns the versions of row id that If-Match header
// values accept, compared strongly (a weak tag or another row's never
// matches), and whether the request is conditional at all: no header and
// "*" are not (the row must exist either way). A conditional request with
// no acceptable version gets an empty, non-nil list: its change must fail.
func IfMatchVersions(values []string, id string) (versions []int64, conditional bool) {
	if len(values) == 0 {
		return nil, false
	}
	tags, any := ParseEntityTags(values)
	if any {
		return nil, false
	}
	versions = []int64{}
	prefix := `"` + id + "-"
	for _, t := range tags {
		if !strings.HasPrefix(t, prefix) || !strings.HasSuffix(t, `"`) || len(t) <= len(prefix)+1 {
			continue
		}
		if v, err := strconv.ParseInt(t[len(prefix):len(t)-1], 10, 64); err == nil {
			versions = append(versions, v)
		}
	}
	return versions, true
}

// NoneMatch reports whether If-None-Match header values name the current
// entity tag (weak comparison, as RFC 9110 asks for If-None-Match) or are
// "*": a GET may then answer 304.
func NoneMatch(values []string, current string) bool {
	if len(values) == 0 {
		return false
	}
	tags, any := ParseEntityTags(values)
	if any {
		return true
	}
	for _, t := range tags {
		if strings.TrimPrefix(t, "W/") == current {
			return true
		}
	}
	return false
}
