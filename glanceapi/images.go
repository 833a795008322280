package glanceapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/imaged/imaged"
)

// writeRendered renders with fn into a pooled buffer (listings render tens
// of kilobytes per request) and writes it as JSON.
func (a *api) writeRendered(w http.ResponseWriter, r *http.Request, status int, fn func([]byte) []byte) {
	bp, _ := a.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := fn((*bp)[:0])
	writeJSON(w, r, status, b)
	if cap(b) <= 1<<20 { // do not keep huge buffers alive
		*bp = b
		a.bufs.Put(bp)
	}
}

// writeNoContent writes a 204. Glance's image, tag and action 204s carry a
// text/html Content-Type (webob's default); its member delete does not.
func writeNoContent(w http.ResponseWriter, withType bool) {
	h := w.Header()
	if withType {
		h.Set("Content-Type", "text/html; charset=UTF-8")
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

func decodeJSON(data []byte) (any, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, invalid("Malformed JSON in request body.")
	}
	return v, nil
}

// Glance's RequestDeserializer attribute classes.
var (
	disallowedProps = []string{"direct_url", "self", "file", "schema", "stores"}
	readonlyProps   = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size",
		"direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value"}
	reservedProps = []string{"location", "deleted", "deleted_at"}
	baseProps     = []string{"checksum", "created_at", "container_format", "disk_format", "id", "min_disk",
		"min_ram", "name", "size", "virtual_size", "status", "tags", "owner", "updated_at", "visibility",
		"protected", "os_hidden"}
)

// reservedNS is Glance's reserved property namespace (os_glance*).
const reservedNS = "os_glance"

func (a *api) createImage(w http.ResponseWriter, r *http.Request) {
	body, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	attrs, ok := body.(map[string]any)
	if !ok {
		// Glance answers a JSON array with a 500; we say what is wrong.
		a.writeError(w, r, invalid("Request body must be a JSON object."))
		return
	}
	for _, k := range disallowedProps {
		if _, ok := attrs[k]; ok {
			a.writeError(w, r, imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is read-only.", k))
			return
		}
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		if !slices.Contains(baseProps, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // deterministic: the first offending key in sorted order
	for _, k := range keys {
		if len([]rune(k)) > 255 {
			a.writeError(w, r, invalid("Custom property should not be greater than 255 characters."))
			return
		}
		if slices.Contains(reservedProps, k) || strings.HasPrefix(k, reservedNS) {
			// Glance raises this one as a detail (HTTPForbidden(msg)).
			a.writeError(w, r, imaged.Detailf(imaged.EFORBIDDEN, "Attribute '%s' is reserved.", k))
			return
		}
	}
	img, err := a.svc.CreateImage(r.Context(), attrs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Location", baseURL(r)+"/v2/images/"+img.ID)
	setImageETag(w, img)
	if len(a.cfg.ImportMethods) > 0 {
		h.Set("OpenStack-image-import-methods", strings.Join(a.cfg.ImportMethods, ","))
	}
	a.writeRendered(w, r, http.StatusCreated, func(b []byte) []byte { return appendImageWith(b, img, a.locView(r)) })
}

func (a *api) getImage(w http.ResponseWriter, r *http.Request) {
	img, err := a.svc.GetImage(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if notModified(r, img) {
		writeNotModified(w, img)
		return
	}
	setImageETag(w, img)
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendImageWith(b, img, a.locView(r)) })
}

const (
	patchV20 = "application/openstack-images-v2.0-json-patch"
	patchV21 = "application/openstack-images-v2.1-json-patch"
)

func (a *api) updateImage(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if _, ok := r.Header["Content-Type"]; !ok {
		ct = "text/plain" // what Glance's WSGI server assumes
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != patchV20 && mt != patchV21 {
		writeAPIError(w, r, &apiError{status: http.StatusUnsupportedMediaType, text: ct, tmpl: tmpl415,
			header: http.Header{"Accept-Patch": {patchV20 + ", " + patchV21}}})
		return
	}
	body, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ops, err := parsePatch(body, mt == patchV21)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	r = withIfMatch(r, r.PathValue("id"))
	img, err := a.svc.UpdateImage(r.Context(), r.PathValue("id"), ops)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	setImageETag(w, img)
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendImageWith(b, img, a.locView(r)) })
}

func (a *api) deleteImage(w http.ResponseWriter, r *http.Request) {
	r = withIfMatch(r, r.PathValue("id"))
	if err := a.svc.DeleteImage(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) addTag(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.AddTag(r.Context(), r.PathValue("id"), r.PathValue("tag")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) deleteTag(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteTag(r.Context(), r.PathValue("id"), r.PathValue("tag")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) deactivate(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeactivateImage(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) reactivate(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.ReactivateImage(r.Context(), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) listImages(w http.ResponseWriter, r *http.Request) {
	ps := parseParams(r.URL.RawQuery)
	lq, err := parseListQuery(ps, a.cfg.DefaultLimit, a.cfg.MaxLimit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if lq.hasMarker && lq.marker == "" {
		a.writeError(w, r, invalid("No image found with ID "))
		return
	}
	var imgs []*imaged.Image
	if lq.limit > 0 {
		imgs, err = a.svc.ListImages(r.Context(), lq.q, lq.marker)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.ENOTFOUND {
				// Glance reports an unknown marker as a bad request.
				err = invalid("%s", imaged.ErrorMessage(err))
			}
			a.writeError(w, r, err)
			return
		}
	}
	// Links as Glance's serializer builds them: every parameter once
	// (last value), marker dropped, then the new marker appended.
	link := lastValues(ps)
	link = slices.DeleteFunc(link, func(p param) bool { return p.key == "marker" })
	first := "/v2/images"
	if len(link) > 0 {
		first += "?" + encodeParams(link)
	}
	next := ""
	if len(imgs) > 0 && len(imgs) >= lq.limit {
		next = "/v2/images?" + encodeParams(append(link, param{"marker", imgs[len(imgs)-1].ID}))
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendImageListWith(b, imgs, first, next, a.locView(r)) })
}

// Member handlers.

func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := a.svc.ListMembers(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendMemberList(b, ms) })
}

func (a *api) getMember(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetMember(r.Context(), r.PathValue("id"), r.PathValue("member"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendMember(b, m) })
}

// isFalsy reports whether v is false in Python's sense.
func isFalsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func (a *api) addMember(w http.ResponseWriter, r *http.Request) {
	body, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	const form = `Expected a member in the form: {"member": "image_id"}`
	obj, ok := body.(map[string]any)
	if !ok {
		a.writeError(w, r, invalid(form))
		return
	}
	v, ok := obj["member"]
	switch {
	case !ok:
		err = invalid("Member to be added not specified")
	case isFalsy(v):
		err = invalid("Member can't be empty")
	}
	member, isStr := v.(string)
	if err == nil && !isStr {
		err = invalid(form) // Glance stores a number as is; we want a project id
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	m, err := a.svc.AddMember(r.Context(), r.PathValue("id"), member)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// Glance answers a new member with 200, not 201.
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendMember(b, m) })
}

func (a *api) updateMember(w http.ResponseWriter, r *http.Request) {
	body, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	obj, ok := body.(map[string]any)
	if !ok {
		a.writeError(w, r, invalid(`Expected a status in the form: {"status": "status"}`))
		return
	}
	v, ok := obj["status"]
	if !ok {
		a.writeError(w, r, invalid("Status not specified"))
		return
	}
	status, ok := v.(string)
	if !ok {
		a.writeError(w, r, invalid(`Incorrect request: Status must be "pending", "accepted" or "rejected".`))
		return
	}
	m, err := a.svc.UpdateMember(r.Context(), r.PathValue("id"), r.PathValue("member"), imaged.MemberStatus(status))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendMember(b, m) })
}

func (a *api) deleteMember(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteMember(r.Context(), r.PathValue("id"), r.PathValue("member")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, false)
}
