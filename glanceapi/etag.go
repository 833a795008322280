package glanceapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// Entity tags of images. Glance has none; imaged adds them so that clients
// sharing an image can update it optimistically (If-Match on PATCH and
// DELETE, 412 when someone else got there first) and poll it cheaply
// (If-None-Match on GET, 304). The tag is strong and names the image and
// its Version, which the store increments on every committed update.

// imageETag is an image's entity tag: "<id>-<version>".
func imageETag(img *imaged.Image) string {
	return `"` + img.ID + "-" + strconv.FormatInt(img.Version, 10) + `"`
}

// setImageETag adds the image's ETag to a response about it.
func setImageETag(w http.ResponseWriter, img *imaged.Image) {
	w.Header().Set("ETag", imageETag(img))
}

// entityTags splits an If-Match / If-None-Match header into its tags
// (quotes and any W/ prefix kept) and reports whether it is "*".
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
				v = ""
				continue
			}
			tags = append(tags, v[:start+1+end+1])
			v = v[start+1+end+1:]
		}
	}
	return tags, any
}

// tagVersion returns the version an entity tag names for image id, if it
// is a strong tag of that image (If-Match compares strongly).
func tagVersion(tag, id string) (int64, bool) {
	prefix := `"` + id + "-"
	if !strings.HasPrefix(tag, prefix) || !strings.HasSuffix(tag, `"`) {
		return 0, false
	}
	v, err := strconv.ParseInt(tag[len(prefix):len(tag)-1], 10, 64)
	return v, err == nil
}

// withIfMatch returns r's context, carrying the image versions an If-Match
// header accepts for image id (none: the update must fail with 412). The
// catalog checks them inside the serialised update. "*" and no header
// leave the request unconditional (the image must exist either way).
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
	for _, t := range tags {
		if v, ok := tagVersion(t, id); ok {
			versions = append(versions, v)
		}
	}
	return r.WithContext(imaged.NewContextWithIfMatch(r.Context(), versions))
}

// notModified reports whether a GET's If-None-Match names img's current
// tag (weak comparison, as RFC 9110 asks for If-None-Match) or is "*".
func notModified(r *http.Request, img *imaged.Image) bool {
	values := r.Header.Values("If-None-Match")
	if len(values) == 0 {
		return false
	}
	tags, any := entityTags(values)
	if any {
		return true
	}
	cur := imageETag(img)
	for _, t := range tags {
		if strings.TrimPrefix(t, "W/") == cur {
			return true
		}
	}
	return false
}

// writeNotModified answers a GET whose If-None-Match matched: no body, the
// tag again.
func writeNotModified(w http.ResponseWriter, img *imaged.Image) {
	setImageETag(w, img)
	w.WriteHeader(http.StatusNotModified)
}
