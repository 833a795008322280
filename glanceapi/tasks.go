package glanceapi

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/imaged/imaged"
)

// POST /v2/tasks and DELETE /v2/tasks/{id}, Glance 25.1's deprecated task
// API. Both are for tasks_api_access (admins) first. DELETE is always
// Glance's 405 (tasks expire by themselves). POST checks the body exactly
// as Glance's deserializer does, then hands it to the service: a legacy
// "import" task (a URL into a new image) is created and runs in the
// background (catalog.CreateTask); an "api_image_import" task, which
// Glance creates but never runs usefully, is a 501 pointing to the
// interoperable import (POST /v2/images/{id}/import).

// taskAccess answers tasks_api_access's refusal (403) or the absence of
// the import service (501); it reports whether the request may go on.
func (a *api) taskAccess(w http.ResponseWriter, r *http.Request) bool {
	imp := a.importer(w, r)
	if imp == nil {
		return false
	}
	// The service enforces tasks_api_access on every task read: a page
	// of one task tells whether the caller has it.
	if _, err := imp.ListTasks(r.Context(), imaged.TaskQuery{Limit: 1}, ""); imaged.ErrorCode(err) == imaged.EFORBIDDEN {
		a.writeError(w, r, err)
		return false
	}
	return true
}

// deleteTask is DELETE /v2/tasks/{id}.
func (a *api) deleteTask(w http.ResponseWriter, r *http.Request) {
	if !a.taskAccess(w, r) {
		return
	}
	writeAPIError(w, r, &apiError{status: http.StatusMethodNotAllowed, tmpl: tmplBare,
		text:   "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.",
		header: http.Header{"Allow": {"GET"}}})
}

// createTask is POST /v2/tasks.
func (a *api) createTask(w http.ResponseWriter, r *http.Request) {
	if !a.taskAccess(w, r) {
		return
	}
	body, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := validateTaskBody(body); err != nil {
		a.writeError(w, r, err)
		return
	}
	tc, ok := a.svc.(taskCreator)
	if !ok {
		a.writeError(w, r, imaged.Errorf(imaged.ENOTIMPLEMENTED,
			"Not Implemented: creating tasks through the deprecated task API is not supported; use the image import API (POST /v2/images/{image_id}/import)."))
		return
	}
	m := body.(map[string]any) // validateTaskBody checked it
	input, _ := m["input"].(map[string]any)
	t, err := tc.CreateTask(r.Context(), m["type"].(string), input)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", baseURL(r)+"/v2/tasks/"+t.ID)
	a.writeRendered(w, r, http.StatusCreated, func(b []byte) []byte { return appendTask(b, t) })
}

// taskCreator is the service side of POST /v2/tasks (catalog.Service):
// typ and input have passed the task schema; input is nil for JSON null.
type taskCreator interface {
	CreateTask(ctx context.Context, typ string, input map[string]any) (*imaged.Task, error)
}

// taskProps are the task schema's properties, in its order, with their
// JSON types.
var taskProps = []struct{ name, types string }{
	{"id", "string"}, {"type", "string"}, {"status", "string"}, {"input", "null,object"},
	{"result", "null,object"}, {"owner", "string"}, {"message", "string"}, {"image_id", "string"},
	{"request_id", "string"}, {"user_id", "string"}, {"expires_at", "null,string"},
	{"created_at", "string"}, {"updated_at", "string"}, {"self", "string"}, {"schema", "string"},
}

var taskEnums = map[string][]string{
	"type":   {"import", "api_image_import"},
	"status": {"pending", "processing", "success", "failure"},
}

var taskIDRe = regexp.MustCompile(`^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`)

// validateTaskBody is Glance's task RequestDeserializer.create: "type" and
// "input" required, then the task schema (no other properties, the enums,
// the types; jsonschema's first line).
func validateTaskBody(body any) error {
	has := func(k string) bool {
		switch x := body.(type) {
		case map[string]any:
			_, ok := x[k]
			return ok
		case []any:
			return slices.Contains(x, any(k))
		}
		return false
	}
	for _, k := range []string{"type", "input"} {
		if !has(k) {
			return invalid("Task '%s' is required", k)
		}
	}
	bad := func(format string, args ...any) error {
		return invalid("Provided object does not match schema 'task': "+format, args...)
	}
	m, ok := body.(map[string]any)
	if !ok {
		return bad("%s is not of type 'object'", pyRepr(body))
	}
	var extra []string
	for k := range m {
		if !slices.ContainsFunc(taskProps, func(p struct{ name, types string }) bool { return p.name == k }) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		quoted := make([]string, len(extra))
		for i, k := range extra {
			quoted[i] = pyRepr(k)
		}
		verb := "was"
		if len(extra) > 1 {
			verb = "were"
		}
		return bad("Additional properties are not allowed (%s %s unexpected)", strings.Join(quoted, ", "), verb)
	}
	for _, p := range taskProps {
		v, ok := m[p.name]
		if !ok {
			continue
		}
		types := strings.Split(p.types, ",")
		if !jsonTypeIn(v, types) {
			q := make([]string, len(types))
			for i, t := range types {
				q[i] = "'" + t + "'"
			}
			return bad("%s is not of type %s", pyRepr(v), strings.Join(q, ", "))
		}
		if enum, ok := taskEnums[p.name]; ok && !slices.Contains(enum, v.(string)) {
			q := make([]string, len(enum))
			for i, e := range enum {
				q[i] = "'" + e + "'"
			}
			return bad("%s is not one of [%s]", pyRepr(v), strings.Join(q, ", "))
		}
		if s, ok := v.(string); ok && p.name == "id" && !taskIDRe.MatchString(s) {
			return bad("%s does not match %s", pyRepr(v), pyRepr(taskIDRe.String()))
		}
	}
	return nil
}

// jsonTypeIn reports whether v is of one of the JSON types.
func jsonTypeIn(v any, types []string) bool {
	for _, t := range types {
		switch t {
		case "null":
			if v == nil {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "object":
			if _, ok := v.(map[string]any); ok {
				return true
			}
		}
	}
	return false
}
