package glanceapi_test

import (
	"strings"
	"testing"
)

func TestTaskCreateAndDelete(t *testing.T) {
	t.Parallel()
	e := newLocationsEnv(t, false, false)
	js := map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
	for _, tc := range []struct {
		token, body string
		status      int
		msg         string
	}{
		{alice, `{"type": "import", "input": {}}`, 403, "You are not authorized to complete tasks_api_access action."},
		{admin, ``, 400, "Body expected in request."},
		{admin, `{}`, 400, "Task 'type' is required"},
		{admin, `[]`, 400, "Task 'type' is required"},
		{admin, `{"type": "import"}`, 400, "Task 'input' is required"},
		{admin, `{"type": "foo", "input": {}}`, 400, "Provided object does not match schema 'task': 'foo' is not one of ['import', 'api_image_import']"},
		{admin, `{"type": "import", "input": "x"}`, 400, "Provided object does not match schema 'task': 'x' is not of type 'null', 'object'"},
		{admin, `{"type": "import", "input": {}, "foo": 1}`, 400, "Provided object does not match schema 'task': Additional properties are not allowed ('foo' was unexpected)"},
		{admin, `{"type": "import", "input": {}, "status": "bogus"}`, 400, "Provided object does not match schema 'task': 'bogus' is not one of ['pending', 'processing', 'success', 'failure']"},
		{admin, `{"type": "import", "input": {}, "id": "x"}`, 400, "Provided object does not match schema 'task': 'x' does not match"},
		// No web-download fetcher here: nothing may fetch the URL.
		{admin, `{"type": "import", "input": {"import_from": "http://example.com/x"}}`, 501, "Not Implemented: the legacy import task fetches image data from a URL"},
	} {
		r := e.do(t, req{method: "POST", path: "/v2/tasks", token: tc.token, header: js, body: tc.body})
		if r.status != tc.status || !strings.HasPrefix(jsonErr(t, r), tc.msg) {
			t.Errorf("POST %s as %s: %d %s", tc.body, tc.token, r.status, r.body)
		}
	}
	id := "00000000-0000-0000-0000-000000000000"
	if r := e.do(t, req{method: "DELETE", path: "/v2/tasks/" + id, token: alice, header: jsonAccept}); r.status != 403 {
		t.Errorf("DELETE as alice: %d %s", r.status, r.body)
	}
	r := e.do(t, req{method: "DELETE", path: "/v2/tasks/" + id, token: admin, header: jsonAccept})
	want := `{"message": "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property.", "code": "405 Method Not Allowed", "title": "Method Not Allowed"}`
	if r.status != 405 || r.header.Get("Allow") != "GET" || string(r.body) != want {
		t.Errorf("DELETE as admin: %d %v %s", r.status, r.header, r.body)
	}
	r = e.do(t, req{method: "DELETE", path: "/v2/tasks/xyz", token: admin})
	if r.status != 405 || string(r.body) != "405 Method Not Allowed\n\nThis operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property." {
		t.Errorf("DELETE, plain text: %d %q", r.status, r.body)
	}
	if r := e.do(t, req{method: "PUT", path: "/v2/tasks", token: admin}); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT /v2/tasks: %d %v", r.status, r.header)
	}
}
