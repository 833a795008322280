package glanceapi

import (
	"embed"
	"net/http"
	"strconv"
	"strings"
)

// versionList is the list of API versions Glance 25.1 shows (with its
// default config: image cache on, a single store), newest first.
var versionList = []struct{ id, status string }{
	{"v2.16", "CURRENT"}, {"v2.15", "SUPPORTED"}, {"v2.14", "SUPPORTED"}, {"v2.9", "SUPPORTED"},
	{"v2.7", "SUPPORTED"}, {"v2.6", "SUPPORTED"}, {"v2.5", "SUPPORTED"}, {"v2.4", "SUPPORTED"},
	{"v2.3", "SUPPORTED"}, {"v2.2", "SUPPORTED"}, {"v2.1", "SUPPORTED"}, {"v2.0", "SUPPORTED"},
}

// allowedVersion reports whether a URL version segment (or the version of
// an application/vnd.openstack.images- media type) selects API v2, as
// Glance's version negotiation decides.
func allowedVersion(v string) bool {
	if v == "v2" {
		return true
	}
	for _, x := range versionList {
		if x.id == v {
			return true
		}
	}
	return false
}

// baseURL is the scheme and host the client used, for absolute links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// versionsBody renders the versions document, in json.dumps layout.
func versionsBody(r *http.Request) []byte {
	href := baseURL(r) + "/v2/"
	b := make([]byte, 0, 1400)
	b = append(b, `{"versions": [`...)
	for i, v := range versionList {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"id": "`...)
		b = append(b, v.id...)
		b = append(b, `", "status": "`...)
		b = append(b, v.status...)
		b = append(b, `", "links": [{"rel": "self", "href": `...)
		b = append(b, pyJSONString(href)...)
		b = append(b, "}]}"...)
	}
	return append(b, "]}"...)
}

// serveVersions answers /versions (200) and any unknown version (300
// Multiple Choices), whatever the method, as Glance does.
func serveVersions(w http.ResponseWriter, r *http.Request, status int) {
	writeJSON(w, r, status, versionsBody(r))
}

// writeJSON writes a JSON body with an explicit length.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// The schemas Glance 25.1 serves, fetched from a real Glance. The image and
// images schemas lack Glance's "stores" property: glanceclient 4.1 turns
// every schema property into a command-line option, and "stores" collides
// with its own "--stores" option of image-create-via-import, which breaks
// every later command. Images here never carry "stores" (one store), so
// leaving it out loses nothing.
//
//go:embed schemas/*.json
var schemaFS embed.FS

// schemaBody returns the embedded schema document name.
func schemaBody(name string) []byte {
	b, err := schemaFS.ReadFile("schemas/" + name + ".json")
	if err != nil {
		panic("glanceapi: missing embedded schema " + name) // a build defect
	}
	return b
}

// splitVersion splits "/v2.1/images" into "v2.1" and "/images".
func splitVersion(path string) (string, string) {
	p := strings.TrimLeft(path, "/")
	seg, rest, found := strings.Cut(p, "/")
	if found {
		rest = "/" + rest
	}
	return seg, rest
}
