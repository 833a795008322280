package glanceapi

import (
	"net/http"

	"github.com/imaged/imaged"
)

// Entity tags of images. Glance has none; imaged adds them so that clients
// sharing an image can update it optimistically (If-Match on PATCH and
// DELETE, 412 when someone else got there first) and poll it cheaply
// (If-None-Match on GET, 304). The syntax and the tag ("<id>-<version>")
// are the core's (imaged.ETag), shared with the native API.

// imageETag is an image's entity tag.
func imageETag(img *imaged.Image) string { return imaged.ETag(img.ID, img.Version) }

// setImageETag adds the image's ETag to a response about it.
func setImageETag(w http.ResponseWriter, img *imaged.Image) {
	w.Header().Set("ETag", imageETag(img))
}

// withIfMatch returns r with a context carrying the image versions an
// If-Match header accepts for image id (none: the update must fail with
// 412). The catalog checks them inside the serialised update. "*" and no
// header leave the request unconditional (the image must exist either
// way).
func withIfMatch(r *http.Request, id string) *http.Request {
	versions, conditional := imaged.IfMatchVersions(r.Header.Values("If-Match"), id)
	if !conditional {
		return r
	}
	return r.WithContext(imaged.NewContextWithIfMatch(r.Context(), versions))
}

// notModified reports whether a GET's If-None-Match names img's current
// tag or is "*".
func notModified(r *http.Request, img *imaged.Image) bool {
	return imaged.NoneMatch(r.Header.Values("If-None-Match"), imageETag(img))
}

// writeNotModified answers a GET whose If-None-Match matched: no body, the
// tag again.
func writeNotModified(w http.ResponseWriter, img *imaged.Image) {
	setImageETag(w, img)
	w.WriteHeader(http.StatusNotModified)
}
