package nativeapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// Registries.

func (a *api) listRegistries(w http.ResponseWriter, r *http.Request) {
	if q := parseQuery(r); q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	regs, err := a.svc.ListRegistries(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]registryJSON, len(regs))
	for i, reg := range regs {
		out[i] = renderRegistry(reg)
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"registries": out})
}

func (a *api) createRegistry(w http.ResponseWriter, r *http.Request) {
	data, err := a.readBody(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	reg, err := decodeRegistryCreate(data)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	reg, err = a.svc.CreateRegistry(r.Context(), reg)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/registries/"+escapeSegment(reg.Name))
	writeJSON(w, r, http.StatusCreated, renderRegistry(reg))
}

func (a *api) getRegistry(w http.ResponseWriter, r *http.Request) {
	reg, err := a.svc.GetRegistry(r.Context(), r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, renderRegistry(reg))
}

func (a *api) updateRegistry(w http.ResponseWriter, r *http.Request) {
	data, err := a.readBody(w, r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	patch, err := decodeMergePatch(data, registryPatchFields)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	reg, err := a.svc.UpdateRegistry(r.Context(), r.PathValue("name"), patch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, renderRegistry(reg))
}

func (a *api) deleteRegistry(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteRegistry(r.Context(), r.PathValue("name")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) rescanRegistry(w http.ResponseWriter, r *http.Request) {
	data, err := a.readBody(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	project, err := decodeRescan(data)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t, err := a.svc.RescanRegistry(r.Context(), r.PathValue("name"), project)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/tasks/"+escapeSegment(t.ID))
	writeJSON(w, r, http.StatusAccepted, renderTask(t))
}

// Container images.

func (a *api) listImages(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r, "registry", "project", "repository", "tag", "architecture", "status", "owner",
		"customized", "sort", "limit", "marker")
	cq := imaged.ContainerImageQuery{
		Registry: q.str("registry"), Project: q.str("project"), Repository: q.str("repository"),
		Tag: q.str("tag"), Owner: q.str("owner"), Customized: q.boolean("customized"),
	}
	if arch := q.str("architecture"); arch != "" {
		cq.Architecture = imaged.NormalizeArch(arch)
	}
	switch s := q.str("status"); s {
	case "":
	case string(imaged.ContainerAlive), string(imaged.ContainerForgotten):
		cq.Statuses = []imaged.ContainerStatus{imaged.ContainerStatus(s)}
	default:
		q.fail("Query parameter \"status\" must be alive or forgotten.")
	}
	cq.SortKey, cq.SortDir = q.sort()
	limit := q.limit(a.cfg.DefaultLimit, a.cfg.MaxLimit)
	if q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	// One more than asked tells whether there is a next page.
	cq.Limit = limit + 1
	imgs, err := a.svc.ListContainerImages(r.Context(), cq, q.str("marker"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body := struct {
		Images []imageJSON `json:"images"`
		Next   *string     `json:"next,omitempty"`
	}{Images: []imageJSON{}}
	if a.more(len(imgs), limit) {
		imgs = imgs[:limit]
		body.Next = nextURL(r, "marker", imgs[limit-1].ID)
	}
	for _, ci := range imgs {
		body.Images = append(body.Images, renderImage(ci))
	}
	a.installed(r, body.Images)
	writeJSON(w, r, http.StatusOK, body)
}

func (a *api) getImage(w http.ResponseWriter, r *http.Request) {
	ci, err := a.svc.GetContainerImage(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if imaged.NoneMatch(r.Header.Values("If-None-Match"), imageETag(ci)) {
		w.Header().Set("ETag", imageETag(ci))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	a.writeImage(w, r, http.StatusOK, ci)
}

func (a *api) resolveImage(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r, "reference", "architecture")
	ref, arch := q.str("reference"), q.str("architecture")
	if ref == "" {
		q.fail("Query parameter \"reference\" is required.")
	}
	if q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	ci, err := a.svc.ResolveContainerImage(r.Context(), ref, imaged.NormalizeArch(arch))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeImage(w, r, http.StatusOK, ci)
}

func (a *api) scanImage(w http.ResponseWriter, r *http.Request) {
	b, ok := a.referenceBody(w, r)
	if !ok {
		return
	}
	imgs, err := a.svc.ScanImage(r.Context(), b.Reference, imaged.NormalizeArch(b.Architecture))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]imageJSON, len(imgs))
	for i, ci := range imgs {
		out[i] = renderImage(ci)
	}
	a.installed(r, out)
	writeJSON(w, r, http.StatusOK, map[string]any{"images": out})
}

func (a *api) forgetByReference(w http.ResponseWriter, r *http.Request) {
	b, ok := a.referenceBody(w, r)
	if !ok {
		return
	}
	ci, err := a.svc.ForgetContainerImageByReference(r.Context(), b.Reference, imaged.NormalizeArch(b.Architecture))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeImage(w, r, http.StatusOK, ci)
}

func (a *api) referenceBody(w http.ResponseWriter, r *http.Request) (referenceBody, bool) {
	data, err := a.readBody(w, r, false)
	if err == nil {
		var b referenceBody
		if b, err = decodeReference(data); err == nil {
			return b, true
		}
	}
	a.writeError(w, r, err)
	return referenceBody{}, false
}

// imageOp serves the POST actions on one image that take no body.
func (a *api) imageOp(op func(*api, *http.Request, string) (*imaged.ContainerImage, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		ci, err := op(a, withIfMatch(r, id), id)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		a.writeImage(w, r, http.StatusOK, ci)
	}
}

func (a *api) forgetImage(w http.ResponseWriter, r *http.Request) {
	a.imageOp(func(a *api, r *http.Request, id string) (*imaged.ContainerImage, error) {
		return a.svc.ForgetContainerImage(r.Context(), id)
	})(w, r)
}

func (a *api) restoreImage(w http.ResponseWriter, r *http.Request) {
	a.imageOp(func(a *api, r *http.Request, id string) (*imaged.ContainerImage, error) {
		return a.svc.RestoreContainerImage(r.Context(), id)
	})(w, r)
}

func (a *api) untagImage(w http.ResponseWriter, r *http.Request) {
	a.imageOp(func(a *api, r *http.Request, id string) (*imaged.ContainerImage, error) {
		return a.svc.UntagContainerImage(r.Context(), id)
	})(w, r)
}

func (a *api) clearLimits(w http.ResponseWriter, r *http.Request) {
	a.imageOp(func(a *api, r *http.Request, id string) (*imaged.ContainerImage, error) {
		return a.svc.ClearResourceLimits(r.Context(), id)
	})(w, r)
}

func (a *api) purgeImage(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r, "untag")
	untag := q.boolean("untag")
	if q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	id := r.PathValue("id")
	ci, err := a.svc.PurgeContainerImage(withIfMatch(r, id).Context(), id, untag != nil && *untag)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, renderImage(ci))
}

func (a *api) modifyImage(w http.ResponseWriter, r *http.Request) {
	data, err := a.readBody(w, r, true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	patch, err := decodeMergePatch(data, imagePatchFields)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	ci, err := a.svc.ModifyContainerImage(withIfMatch(r, id).Context(), id, patch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeImage(w, r, http.StatusOK, ci)
}

func (a *api) setLimits(w http.ResponseWriter, r *http.Request) {
	data, err := a.readBody(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	limits, err := decodeLimits(data)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	ci, err := a.svc.SetResourceLimits(withIfMatch(r, id).Context(), id, limits)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeImage(w, r, http.StatusOK, ci)
}

func (a *api) bulk(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := a.readBody(w, r, false)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		ids, err := decodeBulk(data)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		res, err := a.svc.Bulk(r.Context(), op, ids)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		out := imaged.BulkResult{Successful: res.Successful, Failed: res.Failed}
		if out.Successful == nil {
			out.Successful = []string{}
		}
		if out.Failed == nil {
			out.Failed = []imaged.BulkFailure{}
		}
		writeJSON(w, r, http.StatusOK, out)
	}
}

// Aliases.

func (a *api) listAliases(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r, "image_id", "limit", "marker")
	limit := q.limit(a.cfg.DefaultLimit, a.cfg.MaxLimit)
	if q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	as, err := a.svc.ListAliases(r.Context(), q.str("image_id"), q.str("marker"), limit+1)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body := struct {
		Aliases []aliasJSON `json:"aliases"`
		Next    *string     `json:"next,omitempty"`
	}{Aliases: []aliasJSON{}}
	if a.more(len(as), limit) {
		as = as[:limit]
		body.Next = nextURL(r, "marker", as[limit-1].Alias)
	}
	for _, al := range as {
		body.Aliases = append(body.Aliases, renderAlias(al))
	}
	writeJSON(w, r, http.StatusOK, body)
}

func (a *api) putAlias(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("alias")
	data, err := a.readBody(w, r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	target, err := decodeAliasTarget(data)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if target.Architecture != "" {
		target.Architecture = imaged.NormalizeArch(target.Architecture)
	}
	// The service does not say whether the alias is new (201) or moved
	// (200): an alias that resolves before the change existed. (One that
	// names a forgotten image does not resolve and is reported as new; a
	// PutAlias that reports creation would be exact.)
	_, rerr := a.svc.ResolveContainerImage(r.Context(), name, "")
	existed := rerr == nil
	al, err := a.svc.PutAlias(r.Context(), name, target)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+"/aliases/"+escapePath(al.Alias))
	}
	writeJSON(w, r, status, renderAlias(al))
}

func (a *api) deleteAlias(w http.ResponseWriter, r *http.Request) {
	al, err := a.svc.DeleteAlias(r.Context(), r.PathValue("alias"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, renderAlias(al))
}

// Tasks.

func (a *api) getTask(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.GetTask(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, renderTask(t))
}

// Audit.

func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r, "action", "target", "user_id", "result", "since", "until", "limit", "before")
	aq := imaged.AuditQuery{Action: q.str("action"), Target: q.str("target"), UserID: q.str("user_id"),
		Result: q.str("result"), Since: q.time("since"), Until: q.time("until"), BeforeID: q.int64("before")}
	switch aq.Result {
	case "", "success", "failure":
	default:
		q.fail("Query parameter \"result\" must be success or failure.")
	}
	limit := q.limit(a.cfg.DefaultLimit, a.cfg.MaxLimit)
	if q.err != nil {
		a.writeError(w, r, q.err)
		return
	}
	aq.Limit = limit + 1
	es, err := a.svc.ListAudit(r.Context(), aq)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body := struct {
		Entries []auditJSON `json:"entries"`
		Next    *string     `json:"next,omitempty"`
	}{Entries: []auditJSON{}}
	if a.more(len(es), limit) {
		es = es[:limit]
		body.Next = nextURL(r, "before", strconv.FormatInt(es[limit-1].ID, 10))
	}
	for _, e := range es {
		body.Entries = append(body.Entries, renderAudit(e))
	}
	writeJSON(w, r, http.StatusOK, body)
}

// more reports whether a page of n items, fetched asking for limit+1,
// has a next page. The extra item tells exactly, except at MaxLimit: a
// service that caps its pages there returns limit items either way, so a
// full page at the cap gets a next link (which may lead to an empty page)
// rather than hiding the rest.
func (a *api) more(n, limit int) bool {
	return n > limit || n == limit && limit == a.cfg.MaxLimit
}

// escapeSegment escapes a name for one path segment of a Location.
func escapeSegment(s string) string { return url.PathEscape(s) }

// escapePath escapes a name whose "/" stay path separators (aliases).
func escapePath(s string) string {
	parts := strings.Split(s, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
