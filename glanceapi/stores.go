package glanceapi

import (
	"net/http"

	"github.com/imaged/imaged"
)

// Several named stores (Glance's enabled_backends): GET /v2/info/stores,
// DELETE /v2/stores/{store}/{id}, and the X-Image-Meta-Store header of
// uploads, stages and imports. They need an ImageService that is also an
// imaged.StoreService with stores configured; otherwise they answer as
// Glance without enabled_backends (404s, the header ignored).

// storeHeader is the request header naming the store to write to.
const storeHeader = "X-Image-Meta-Store"

// storeService returns the multi-store service, nil with a single store.
func (a *api) storeService() imaged.StoreService {
	ss, ok := a.svc.(imaged.StoreService)
	if !ok || ss.Stores() == nil {
		return nil
	}
	return ss
}

// withStore passes X-Image-Meta-Store to the service in the request's
// context; the service checks the name (400 for an upload, 409 for an
// import, as Glance) and ignores it with a single store.
func (a *api) withStore(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v, ok := r.Header[storeHeader]; ok && len(v) > 0 {
			r = r.WithContext(imaged.WithStore(r.Context(), v[0]))
		}
		h(w, r)
	}
}

// infoStores is GET /v2/info/stores (Glance's discovery get_stores):
// "default" is the string "true", as Glance renders it.
func (a *api) infoStores(w http.ResponseWriter, r *http.Request) {
	ss := a.storeService()
	if ss == nil {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "Multi backend is not supported at this site."))
		return
	}
	stores := ss.Stores()
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte {
		b = append(b, `{"stores": [`...)
		for i, st := range stores {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, `{"id": `...)
			b = appendPyString(b, st.ID)
			if st.Description != "" {
				b = append(b, `, "description": `...)
				b = appendPyString(b, st.Description)
			}
			if st.Default {
				b = append(b, `, "default": "true"`...)
			}
			b = append(b, '}')
		}
		return append(b, "]}"...)
	})
}

// deleteFromStore is DELETE /v2/stores/{store}/{id}: 204, or webob's bare
// 404 without named stores (Glance raises HTTPNotFound()).
func (a *api) deleteFromStore(w http.ResponseWriter, r *http.Request) {
	ss := a.storeService()
	if ss == nil {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "The resource could not be found."))
		return
	}
	if err := ss.DeleteFromStore(r.Context(), r.PathValue("store"), r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

// multiStore reports whether named stores are configured.
func (a *api) multiStore() bool { return a.storeService() != nil }
