package nativeapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// Entity tags: a single-image response carries ETag "<id>-<version>"
// (Version counts committed updates); PATCH, PUT, DELETE and the POST
// actions on an image honour If-Match (412 when the image changed), and GET
// honours If-None-Match (304).

// entityTags splits If-Match / If-None-Match values into their tags
// (quotes and any W/ prefix kept) and reports whether "*" is among them.
func entityTags(values []string) (tags []string, any bool) {
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
				// Not an entity tag: skip the element.
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

// contains reports whether tags holds tag; weak ignores W/ prefixes (the
// weak comparison of If-None-Match).
func contains(tags []string, tag string, weak bool) bool {
	for _, t := range tags {
		if weak {
			t = strings.TrimPrefix(t, "W/")
		}
		if t == tag {
			return true
		}
	}
	return false
}

// withIfMatch returns r with a context carrying the versions an If-Match
// header accepts for image id (an empty list when it names none: the
// change must fail with 412). The service checks them inside its
// serialised update. "*" or no header leaves the request unconditional.
func withIfMatch(r *http.Request, id string) *http.Request {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return r
	}
	tags, any := entityTags(values)
	if any {
		return r
	}
	versions := []int64{}
	prefix := `"` + id + "-"
	for _, t := range tags {
		if !strings.HasPrefix(t, prefix) || !strings.HasSuffix(t, `"`) || len(t) <= len(prefix)+1 {
			continue // a weak tag or another image's: never matches strongly
		}
		if v, err := strconv.ParseInt(t[len(prefix):len(t)-1], 10, 64); err == nil {
			versions = append(versions, v)
		}
	}
	return r.WithContext(imaged.NewContextWithIfMatch(r.Context(), versions))
}
