package nativeapi

import (
	"net/http"

	"github.com/imaged/imaged"
)

// Entity tags: a single-image response carries ETag "<id>-<version>"
// (imaged.ETag; Version counts committed updates); PATCH, PUT, DELETE and
// the POST actions on an image honour If-Match (412 when the image
// changed), and GET honours If-None-Match (304). The header syntax is the
// core's, shared with the Glance API.

// withIfMatch returns r with a context carrying the versions an If-Match
// header accepts for image id (an empty list when it names none: the
// change must fail with 412). The service checks them inside its
// serialised update. "*" or no header leaves the request unconditional.
func withIfMatch(r *http.Request, id string) *http.Request {
	versions, conditional := imaged.IfMatchVersions(r.Header.Values("If-Match"), id)
	if !conditional {
		return r
	}
	return r.WithContext(imaged.NewContextWithIfMatch(r.Context(), versions))
}
