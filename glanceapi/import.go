package glanceapi

import (
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Interoperable image import and tasks: PUT /v2/images/{id}/stage, POST
// /v2/images/{id}/import, GET /v2/images/{id}/tasks, GET /v2/tasks(/{id}),
// GET /v2/info/import. They need an ImageService that is also an
// imaged.ImportService (catalog with WithImports); without one they answer
// 501 as before.

// importer returns the import service, or answers 501 and nil.
func (a *api) importer(w http.ResponseWriter, r *http.Request) imaged.ImportService {
	imp, ok := a.svc.(imaged.ImportService)
	if !ok || imp.ImportMethods() == nil {
		a.notImplemented(w, r)
		return nil
	}
	return imp
}

// importMethods are the methods announced and accepted: the service's,
// which cmd/imaged also puts in Config.ImportMethods for the create header.
func (a *api) importMethods(imp imaged.ImportService) []string {
	if m := imp.ImportMethods(); m != nil {
		return m
	}
	return a.cfg.ImportMethods
}

// infoImport is GET /v2/info/import (Glance's discovery).
func (a *api) infoImport(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte {
		b = append(b, `{"import-methods": {"description": "Import methods available.", "type": "array", "value": [`...)
		for i, m := range a.importMethods(imp) {
			if i > 0 {
				b = append(b, ',', ' ')
			}
			b = appendPyString(b, m)
		}
		return append(b, "]}}"...)
	})
}

// stageImage is PUT /v2/images/{id}/stage: as an upload, but the bytes are
// kept for a later glance-direct import.
func (a *api) stageImage(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	if !slices.Contains(a.importMethods(imp), imaged.ImportGlanceDirect) {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTFOUND, "'glance-direct' method is not available at this site."))
		return
	}
	ct, ok := r.Header["Content-Type"]
	ctype := "text/plain"
	if ok && len(ct) > 0 {
		ctype = ct[0]
	}
	if mt, _, _ := strings.Cut(ctype, ";"); mt != octetStream {
		writeAPIError(w, r, &apiError{status: http.StatusUnsupportedMediaType, text: ctype, tmpl: tmpl415})
		return
	}
	body := &clientBody{r: r.Body}
	if err := imp.StageImage(r.Context(), r.PathValue("id"), body, r.ContentLength); err != nil {
		if body.err != nil || r.Context().Err() != nil {
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "stage aborted by the client",
				slog.String("request_id", imaged.RequestIDFromContext(r.Context())),
				slog.String("image_id", r.PathValue("id")))
			if code := imaged.ErrorCode(err); code != imaged.EINVALID && code != imaged.ETOOLARGE {
				err = invalid("The image data could not be read: the client closed the connection or sent less data than announced.")
			}
		}
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

// importImage is POST /v2/images/{id}/import: the body checks of Glance's
// deserializer, then the service's; 202 with an empty body.
func (a *api) importImage(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	v, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body, _ := v.(map[string]any)
	if body == nil {
		a.writeError(w, r, invalid("Import request requires a 'method' field."))
		return
	}
	mv, ok := body["method"]
	if !ok {
		a.writeError(w, r, invalid("Import request requires a 'method' field."))
		return
	}
	method, _ := mv.(map[string]any)
	name, ok := method["name"].(string)
	if !ok {
		a.writeError(w, r, invalid("Import request requires a 'name' field."))
		return
	}
	if !slices.Contains(a.importMethods(imp), name) {
		a.writeError(w, r, invalid("Unknown import method name '%s'.", name))
		return
	}
	for _, k := range []string{"all_stores_must_succeed", "all_stores"} {
		if x, ok := body[k]; ok {
			if _, isBool := x.(bool); !isBool {
				a.writeError(w, r, invalid("'%s' must be boolean value only", k))
				return
			}
		}
	}
	// One store: Glance without enabled_backends ignores "stores" and
	// "all_stores", and refuses all_stores_must_succeed=false.
	if x, ok := body["all_stores_must_succeed"].(bool); ok && !x && !a.multiStore() {
		a.writeError(w, r, invalid("All_stores_must_succeed can only be set with enabled_backends %s", pyStr(method["uri"])))
		return
	}
	uri, _ := method["uri"].(string)
	if _, err := imp.ImportImage(r.Context(), r.PathValue("id"), imaged.ImportRequest{Method: name, URI: uri, Body: body}); err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// imageTasks is GET /v2/images/{id}/tasks: the tasks as Glance's database
// layer formats them (every column, Python isoformat timestamps).
func (a *api) imageTasks(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	tasks, err := imp.ListImageTasks(r.Context(), r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte {
		b = append(b, `{"tasks": [`...)
		for i, t := range tasks {
			if i > 0 {
				b = append(b, ',', ' ')
			}
			b = appendDBTask(b, t)
		}
		return append(b, "]}"...)
	})
}

// getTask is GET /v2/tasks/{task}.
func (a *api) getTask(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	t, err := imp.GetTask(r.Context(), r.PathValue("task"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte { return appendTask(b, t) })
}

var uuidLike = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// listTasks is GET /v2/tasks with Glance's parameters: limit, marker,
// sort_key, sort_dir, status and type (which Glance only accepts as
// "import").
func (a *api) listTasks(w http.ResponseWriter, r *http.Request) {
	imp := a.importer(w, r)
	if imp == nil {
		return
	}
	// Glance enforces tasks_api_access before it looks at parameters:
	// a page of one task tells whether the caller may list.
	if _, err := imp.ListTasks(r.Context(), imaged.TaskQuery{Limit: 1}, ""); imaged.ErrorCode(err) == imaged.EFORBIDDEN {
		a.writeError(w, r, err)
		return
	}
	params := r.URL.Query()
	q := imaged.TaskQuery{SortKey: "created_at", SortDir: imaged.Desc}
	if v := params.Get("sort_dir"); params.Has("sort_dir") {
		if v != "asc" && v != "desc" {
			a.writeError(w, r, invalid("Invalid sort direction: %s", v))
			return
		}
		q.SortDir = imaged.SortDir(v)
	}
	if params.Has("sort_key") {
		q.SortKey = params.Get("sort_key")
	}
	if v := params.Get("status"); v != "" {
		if !imaged.ValidTaskStatus(v) {
			a.writeError(w, r, invalid("Invalid status value: %s", v))
			return
		}
		q.Statuses = []string{v}
	}
	if v := params.Get("type"); v != "" {
		if v != "import" {
			a.writeError(w, r, invalid("Invalid type value: %s", v))
			return
		}
		q.Types = []string{v}
	}
	marker := params.Get("marker")
	if params.Has("marker") && marker != "" && !uuidLike.MatchString(marker) {
		a.writeError(w, r, invalid("Invalid marker format"))
		return
	}
	limit := a.cfg.DefaultLimit
	if params.Has("limit") {
		n, err := strconv.Atoi(params.Get("limit"))
		if err != nil {
			a.writeError(w, r, invalid("limit param must be an integer"))
			return
		}
		if n < 0 {
			a.writeError(w, r, invalid("limit param must be positive"))
			return
		}
		limit = n
	}
	limit = min(limit, a.cfg.MaxLimit)
	var tasks []*imaged.Task
	if limit > 0 {
		q.Limit = limit
		var err error
		if tasks, err = imp.ListTasks(r.Context(), q, marker); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	// first: the query without marker; next: with the last task as marker,
	// in the request's parameter order (Glance re-encodes its params).
	first, next := "/v2/tasks", ""
	var kept [][2]string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if k == "marker" {
			continue
		}
		kept = append(kept, [2]string{k, v})
	}
	enc := func(ps [][2]string) string {
		var sb strings.Builder
		for i, p := range ps {
			if i > 0 {
				sb.WriteByte('&')
			}
			sb.WriteString(url.QueryEscape(p[0]) + "=" + url.QueryEscape(p[1]))
		}
		return sb.String()
	}
	if len(kept) > 0 {
		first += "?" + enc(kept)
	}
	if len(tasks) > 0 && len(tasks) == limit {
		next = "/v2/tasks?" + enc(append(kept, [2]string{"marker", tasks[len(tasks)-1].ID}))
	}
	a.writeRendered(w, r, http.StatusOK, func(b []byte) []byte {
		b = append(b, `{"tasks": [`...)
		for i, t := range tasks {
			if i > 0 {
				b = append(b, ',', ' ')
			}
			b = appendTaskStub(b, t)
		}
		b = append(b, `], "first": `...)
		b = appendPyString(b, first)
		b = append(b, `, "schema": "/v2/schemas/tasks"`...)
		if next != "" {
			b = append(b, `, "next": `...)
			b = appendPyString(b, next)
		}
		return append(b, '}')
	})
}

// appendTask is Glance's task view (GET /v2/tasks/{id}), keys in its order.
func appendTask(b []byte, t *imaged.Task) []byte {
	b = append(b, `{"id": `...)
	b = appendPyString(b, t.ID)
	b = append(b, `, "input": `...)
	b = appendTaskInput(b, t.Input)
	b = appendTaskKind(b, t)
	b = append(b, `, "message": `...)
	b = appendPyString(b, t.Message)
	b = append(b, `, "result": `...)
	b = appendPyJSON(b, nilMap(t.Result))
	b = append(b, `, "created_at": `...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, t.UpdatedAt)
	b = append(b, `, "self": "/v2/tasks/`...)
	b = appendPyStringBody(b, t.ID)
	b = append(b, `", "schema": "/v2/schemas/task"`...)
	if t.ImageID != "" {
		b = append(b, `, "image_id": `...)
		b = appendPyString(b, t.ImageID)
	}
	if t.RequestID != "" {
		b = append(b, `, "request_id": `...)
		b = appendPyString(b, t.RequestID)
	}
	if t.UserID != "" {
		b = append(b, `, "user_id": `...)
		b = appendPyString(b, t.UserID)
	}
	if t.ExpiresAt != nil {
		b = append(b, `, "expires_at": `...)
		b = appendTime(b, *t.ExpiresAt)
	}
	return append(b, '}')
}

// appendTaskKind writes the type, status and owner members every task
// shape has, in Glance's order.
func appendTaskKind(b []byte, t *imaged.Task) []byte {
	b = append(b, `, "type": `...)
	b = appendPyString(b, t.Type)
	b = append(b, `, "status": `...)
	b = appendPyString(b, string(t.Status))
	b = append(b, `, "owner": `...)
	return appendNullString(b, t.Owner)
}

// appendTaskStub is a task of GET /v2/tasks.
func appendTaskStub(b []byte, t *imaged.Task) []byte {
	b = append(b, `{"id": `...)
	b = appendPyString(b, t.ID)
	b = appendTaskKind(b, t)
	b = append(b, `, "created_at": `...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, t.UpdatedAt)
	b = append(b, `, "self": "/v2/tasks/`...)
	b = appendPyStringBody(b, t.ID)
	b = append(b, `", "schema": "/v2/schemas/task"`...)
	if t.ExpiresAt != nil {
		b = append(b, `, "expires_at": `...)
		b = appendTime(b, *t.ExpiresAt)
	}
	return append(b, '}')
}

// appendDBTask is a task as Glance's tasks_get_by_image returns it.
func appendDBTask(b []byte, t *imaged.Task) []byte {
	b = append(b, `{"id": `...)
	b = appendPyString(b, t.ID)
	b = appendTaskKind(b, t)
	b = append(b, `, "expires_at": `...)
	if t.ExpiresAt != nil {
		b = appendPyTime(b, *t.ExpiresAt)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `, "created_at": `...)
	b = appendPyTime(b, t.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendPyTime(b, t.UpdatedAt)
	b = append(b, `, "deleted_at": null, "deleted": false, "image_id": `...)
	b = appendNullString(b, t.ImageID)
	b = append(b, `, "request_id": `...)
	b = appendNullString(b, t.RequestID)
	b = append(b, `, "user_id": `...)
	b = appendNullString(b, t.UserID)
	b = append(b, `, "input": `...)
	b = appendTaskInput(b, t.Input)
	b = append(b, `, "result": `...)
	b = appendPyJSON(b, nilMap(t.Result))
	b = append(b, `, "message": `...)
	b = appendPyString(b, t.Message)
	return append(b, '}')
}

// appendPyTime is Python's datetime.isoformat() of a naive UTC time: no
// zone, microseconds only when not zero.
func appendPyTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = append(b, '"')
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		s := strconv.Itoa(us)
		b = append(b, strings.Repeat("0", 6-len(s))...)
		b = append(b, s...)
	}
	return append(b, '"')
}

func nilMap(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// appendTaskInput renders an import task's input with Glance's key order
// (image_id, import_req, backend), other keys after them.
func appendTaskInput(b []byte, in map[string]any) []byte {
	if in == nil {
		return append(b, "null"...)
	}
	return appendPyObject(b, in, []string{"image_id", "import_req", "backend"})
}

// appendPyJSON appends a decoded JSON value as json.dumps writes it; object
// keys are sorted (the request's order is not kept by decoding).
func appendPyJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		return appendPyString(b, x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.AppendInt(b, int64(x), 10)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',', ' ')
			}
			b = appendPyJSON(b, e)
		}
		return append(b, ']')
	case map[string]any:
		return appendPyObject(b, x, nil)
	}
	return append(b, "null"...)
}

// appendPyObject writes first's keys (those present) then the rest sorted.
func appendPyObject(b []byte, m map[string]any, first []string) []byte {
	keys := make([]string, 0, len(m))
	for _, k := range first {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(first, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	keys = append(keys, rest...)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',', ' ')
		}
		b = appendKey(b, k)
		b = appendPyJSON(b, m[k])
	}
	return append(b, '}')
}
