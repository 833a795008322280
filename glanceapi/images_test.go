package glanceapi_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaValidator compiles a schema this server serves.
func schemaValidator(t *testing.T, e *env, name string) *jsonschema.Schema {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/v2/schemas/" + name, token: alice})
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource("http://imaged.test/"+name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("http://imaged.test/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, body []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("response does not match the schema: %v\n%s", err, body)
	}
}

var coreKeys = []string{"name", "disk_format", "container_format", "visibility", "size", "virtual_size", "status",
	"checksum", "protected", "min_ram", "min_disk", "owner", "os_hidden", "os_hash_algo", "os_hash_value", "id",
	"created_at", "updated_at", "tags", "self", "file", "schema"}

func createImage(t *testing.T, e *env, token, body string) map[string]any {
	t.Helper()
	r := e.do(t, req{method: "POST", path: "/v2/images", token: token, body: body,
		header: map[string]string{"Content-Type": "application/json", "Accept": "application/json"}})
	if r.status != 201 {
		t.Fatalf("create %s: %d %s", body, r.status, r.body)
	}
	return jsonOf(t, r.body)
}

func TestImageLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	imageSchema := schemaValidator(t, e, "image")

	r := e.do(t, req{method: "POST", path: "/v2/images", token: alice,
		header: map[string]string{"Content-Type": "application/json"},
		body:   `{"name":"cirros é","disk_format":"qcow2","container_format":"bare","tags":["b","a"],"os_distro":"cirros","note":"<&>"}`})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	img := jsonOf(t, r.body)
	id, _ := img["id"].(string)
	if got := r.header.Get("Location"); got != e.srv.URL+"/v2/images/"+id {
		t.Errorf("Location %q", got)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("headers %v", r.header)
	}
	validate(t, imageSchema, r.body)
	for _, k := range coreKeys {
		if _, ok := img[k]; !ok {
			t.Errorf("missing %q", k)
		}
	}
	for k, want := range map[string]any{"name": "cirros é", "status": "queued", "visibility": "shared", "owner": "projA",
		"size": nil, "checksum": nil, "os_distro": "cirros", "note": "<&>", "protected": false, "min_ram": float64(0),
		"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image"} {
		if img[k] != want {
			t.Errorf("%s = %#v, want %#v", k, img[k], want)
		}
	}
	if _, ok := img["locations"]; ok {
		t.Error("locations shown")
	}
	// Python's json.dumps layout, raw UTF-8 and no HTML escaping.
	for _, frag := range []string{`"name": "cirros é", "disk_format": "qcow2"`, `"note": "<&>"`, `"schema": "/v2/schemas/image"}`} {
		if !bytes.Contains(r.body, []byte(frag)) {
			t.Errorf("body lacks %s: %s", frag, r.body)
		}
	}
	if ts, _ := img["created_at"].(string); len(ts) != 20 || !strings.HasSuffix(ts, "Z") {
		t.Errorf("created_at %q", ts)
	}

	// GET shows the same document.
	g := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if g.status != 200 || !bytes.Equal(g.body, r.body) {
		t.Errorf("get: %d %s", g.status, g.body)
	}
	// Other project: not visible (shared, not a member).
	if g := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: bob, header: jsonAccept}); g.status != 404 {
		t.Errorf("bob get: %d", g.status)
	}

	// PATCH, both media types.
	p := e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: alice,
		header: map[string]string{"Content-Type": "application/openstack-images-v2.1-json-patch"},
		body:   `[{"op":"replace","path":"/name","value":"renamed"},{"op":"add","path":"/hw_disk_bus","value":"scsi"},{"op":"remove","path":"/note"}]`})
	if p.status != 200 {
		t.Fatalf("patch 2.1: %d %s", p.status, p.body)
	}
	validate(t, imageSchema, p.body)
	pm := jsonOf(t, p.body)
	if pm["name"] != "renamed" || pm["hw_disk_bus"] != "scsi" || pm["note"] != nil {
		t.Errorf("patched: %v", pm)
	}
	p = e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: alice,
		header: map[string]string{"Content-Type": "application/openstack-images-v2.0-json-patch; charset=UTF-8"},
		body:   `[{"replace":"/name","value":"v20"}]`})
	if p.status != 200 || jsonOf(t, p.body)["name"] != "v20" {
		t.Errorf("patch 2.0: %d %s", p.status, p.body)
	}
	// v2.0: add of an existing property is a conflict (NoReplaceOnAdd).
	p = e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: alice, header: map[string]string{
		"Content-Type": "application/openstack-images-v2.0-json-patch", "Accept": "application/json"},
		body: `[{"add":"/hw_disk_bus","value":"ide"}]`})
	if p.status != 409 {
		t.Errorf("patch 2.0 add existing: %d %s", p.status, p.body)
	}

	// Tags.
	for _, tc := range []struct {
		method, tag string
		status      int
	}{{"PUT", "x%20y", 204}, {"PUT", "x%20y", 204}, {"DELETE", "x%20y", 204}, {"DELETE", "x%20y", 404},
		{"PUT", "x%2Fy", 404}, // as Glance: the decoded slash splits the path
	} {
		r := e.do(t, req{method: tc.method, path: "/v2/images/" + id + "/tags/" + tc.tag, token: alice, header: jsonAccept})
		if r.status != tc.status {
			t.Errorf("%s tag: %d %s", tc.method, r.status, r.body)
		}
		if r.status == 204 && (r.header.Get("Content-Type") != "text/html; charset=UTF-8" || len(r.body) != 0) {
			t.Errorf("%s tag: headers %v", tc.method, r.header)
		}
	}
	g = e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if tags := jsonOf(t, g.body)["tags"].([]any); !slices.Equal(tags, []any{"a", "b"}) {
		t.Errorf("tags %v", tags)
	}

	// Deactivate needs an active image: Glance's 403 from the catalog.
	if r := e.do(t, req{method: "POST", path: "/v2/images/" + id + "/actions/deactivate", token: admin, header: jsonAccept}); r.status != 403 {
		t.Errorf("deactivate queued: %d %s", r.status, r.body)
	}

	// Delete.
	if r := e.do(t, req{method: "DELETE", path: "/v2/images/" + id, token: alice}); r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	g = e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice, header: jsonAccept})
	if g.status != 404 || jsonErr(t, g) != "No image found with ID "+id {
		t.Errorf("get deleted: %d %s", g.status, g.body)
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		msg               string
	}{
		{"no body", "application/json", "", 400, "Body expected in request."},
		{"bad json", "application/json", `{"name":"x"`, 400, "Malformed JSON in request body."},
		{"trailing garbage", "application/json", `{} x`, 400, "Malformed JSON in request body."},
		{"scalar", "application/json", `"str"`, 400, "Unexpected body type. Expected list/dict."},
		{"array (Glance: 500)", "application/json", `[]`, 400, "Request body must be a JSON object."},
		{"read-only", "application/json", `{"self":"x"}`, 403, "Attribute 'self' is read-only."},
		{"reserved", "application/json", `{"deleted":"x"}`, 403, "Access was denied to this resource.<br /><br />\nAttribute 'deleted' is reserved.\n\n"},
		{"reserved namespace", "application/json", `{"os_glance_x":"x"}`, 403, "Access was denied to this resource.<br /><br />\nAttribute 'os_glance_x' is reserved.\n\n"},
		{"long key", "application/json", `{"` + strings.Repeat("k", 256) + `":"x"}`, 400, "Custom property should not be greater than 255 characters."},
		{"any content type", "text/plain", `{"name":"ok"}`, 201, ""},
		{"too big", "application/json", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "The body of your request was too large for this server."},
	} {
		r := e.do(t, req{method: "POST", path: "/v2/images", token: alice, body: tc.body,
			header: map[string]string{"Content-Type": tc.ctype, "Accept": "application/json"}})
		if r.status != tc.status {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			continue
		}
		if tc.msg != "" && jsonErr(t, r) != tc.msg {
			t.Errorf("%s: message %q", tc.name, jsonErr(t, r))
		}
	}
}

func TestPatchErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := createImage(t, e, alice, `{"name":"p"}`)["id"].(string)
	const v21, v20 = "application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		msg               string
	}{
		{"no media type", "", `[]`, 415, "The request media type text/plain is not supported by this server.\n<br /><br />\n"},
		{"json media type", "application/json", `[]`, 415, "The request media type application/json is not supported by this server.\n<br /><br />\n"},
		{"form media type", "application/x-www-form-urlencoded", `[]`, 415, "The request media type application/x-www-form-urlencoded is not supported by this server.\n<br /><br />\n"},
		{"empty list", v21, `[]`, 200, ""},
		{"no body", v21, ``, 400, "Body expected in request."},
		{"object", v21, `{}`, 400, "Request body must be a JSON array of operation objects."},
		{"not objects", v21, `[1]`, 400, "Operations must be JSON objects."},
		{"no op", v21, `[{"path":"/name"}]`, 400, "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace."},
		{"move", v21, `[{"op":"move","path":"/name"}]`, 400, "Invalid operation: `move`. It must be one of the following: add, remove, replace."},
		{"no path", v21, `[{"op":"add"}]`, 400, "Unable to find 'path' in JSON Schema change"},
		{"relative", v21, `[{"op":"add","path":"name"}]`, 400, "Pointer `name` does not start with \"/\"."},
		{"deep", v21, `[{"op":"add","path":"/a/b","value":1}]`, 400, "Invalid JSON pointer for this resource: '/a/b'"},
		{"no value", v21, `[{"op":"add","path":"/a"}]`, 400, "Operation \"add\" requires a member named \"value\"."},
		{"tilde", v21, `[{"op":"add","path":"/a~2","value":"x"}]`, 400, "Pointer `/a~2` contains \"~\" not part of a recognized escape sequence."},
		{"adjacent", v21, `[{"op":"add","path":"/a//b","value":"x"}]`, 400, "Pointer `/a//b` contains adjacent \"/\"."},
		{"trailing slash", v21, `[{"op":"add","path":"/a/","value":"x"}]`, 400, "Pointer `/a/` end with \"/\"."},
		{"locations replace deep", v21, `[{"op":"replace","path":"/locations/0","value":{}}]`, 400, "Invalid JSON pointer for this resource: '/locations/0'"},
		{"tags element", v21, `[{"op":"add","path":"/tags/-","value":"t"}]`, 400, "Invalid JSON pointer for this resource: '/tags/-'"},
		{"read-only", v21, `[{"op":"replace","path":"/status","value":"x"}]`, 403, "Attribute 'status' is read-only."},
		{"reserved", v21, `[{"op":"replace","path":"/deleted","value":"x"}]`, 403, "Attribute 'deleted' is reserved."},
		{"two ops v2.0", v20, `[{"add":"/a","replace":"/b","value":"x"}]`, 400, "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\"."},
		{"no op v2.0", v20, `[{"value":"x"}]`, 400, "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\"."},
		{"escaped pointer", v21, `[{"op":"add","path":"/a~1b","value":"x"}]`, 200, ""},
	} {
		r := e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: alice, body: tc.body,
			header: map[string]string{"Content-Type": tc.ctype, "Accept": "application/json"}})
		if r.status != tc.status {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			continue
		}
		if r.status == 415 {
			if r.header.Get("Accept-Patch") != v20+", "+v21 {
				t.Errorf("%s: Accept-Patch %q", tc.name, r.header.Get("Accept-Patch"))
			}
			if m := jsonOf(t, r.body); m["message"] != tc.msg || m["code"] != "415 Unsupported Media Type" {
				t.Errorf("%s: %v", tc.name, m)
			}
			continue
		}
		if tc.msg != "" && jsonErr(t, r) != tc.msg {
			t.Errorf("%s: message %q", tc.name, jsonErr(t, r))
		}
	}
	g := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if jsonOf(t, g.body)["a/b"] != "x" {
		t.Errorf("escaped pointer not applied: %s", g.body)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	memberSchema, membersSchema := schemaValidator(t, e, "member"), schemaValidator(t, e, "members")
	id := createImage(t, e, alice, `{"name":"shared"}`)["id"].(string)
	base := "/v2/images/" + id + "/members"

	r := e.do(t, req{method: "POST", path: base, token: alice, body: `{"member":"projB"}`})
	if r.status != 200 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	validate(t, memberSchema, r.body)
	m := jsonOf(t, r.body)
	if m["member_id"] != "projB" || m["image_id"] != id || m["status"] != "pending" || m["schema"] != "/v2/schemas/member" {
		t.Errorf("member %v", m)
	}
	if !bytes.HasPrefix(r.body, []byte(`{"member_id": "projB", "image_id": "`+id+`", "status": "pending", "created_at": "`)) {
		t.Errorf("layout %s", r.body)
	}
	l := e.do(t, req{method: "GET", path: base, token: alice})
	validate(t, membersSchema, l.body)
	lm := jsonOf(t, l.body)
	if l.status != 200 || len(lm["members"].([]any)) != 1 || lm["schema"] != "/v2/schemas/members" {
		t.Errorf("list: %d %s", l.status, l.body)
	}
	if g := e.do(t, req{method: "GET", path: base + "/projB", token: bob}); g.status != 200 {
		t.Errorf("get by member: %d %s", g.status, g.body)
	}
	u := e.do(t, req{method: "PUT", path: base + "/projB", token: bob, body: `{"status":"accepted"}`})
	if u.status != 200 || jsonOf(t, u.body)["status"] != "accepted" {
		t.Errorf("accept: %d %s", u.status, u.body)
	}
	// Now bob lists it.
	if l := e.do(t, req{method: "GET", path: "/v2/images", token: bob}); !bytes.Contains(l.body, []byte(id)) {
		t.Errorf("bob does not list the accepted image: %s", l.body)
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"no member", "POST", base, `{"x":"projC"}`, 400, "Member to be added not specified"},
		{"empty member", "POST", base, `{"member":""}`, 400, "Member can't be empty"},
		{"array", "POST", base, `[]`, 400, `Expected a member in the form: {"member": "image_id"}`},
		{"number", "POST", base, `{"member":5}`, 400, `Expected a member in the form: {"member": "image_id"}`},
		{"duplicate", "POST", base, `{"member":"projB"}`, 409, ""},
		{"no status", "PUT", base + "/projB", `{}`, 400, "Status not specified"},
		{"status array", "PUT", base + "/projB", `[]`, 400, `Expected a status in the form: {"status": "status"}`},
		{"status number", "PUT", base + "/projB", `{"status":5}`, 400, `Incorrect request: Status must be "pending", "accepted" or "rejected".`},
		{"unknown member", "GET", base + "/projZ", ``, 404, ""},
	} {
		tok := alice
		if tc.method == "PUT" {
			tok = bob
		}
		r := e.do(t, req{method: tc.method, path: tc.path, token: tok, body: tc.body, header: jsonAccept})
		if r.status != tc.status {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			continue
		}
		if tc.msg != "" && jsonErr(t, r) != tc.msg {
			t.Errorf("%s: message %q", tc.name, jsonErr(t, r))
		}
	}
	d := e.do(t, req{method: "DELETE", path: base + "/projB", token: alice})
	if d.status != 204 || d.header.Get("Content-Type") != "" {
		t.Errorf("delete: %d %v", d.status, d.header)
	}
}

// listImages creates n images named img-00.. with alternating tags.
func seedImages(t *testing.T, e *env, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		tags := `["even"]`
		if i%2 == 1 {
			tags = `["odd","x"]`
		}
		ids[i] = createImage(t, e, alice, fmt.Sprintf(`{"name":"img-%02d","disk_format":"raw","container_format":"bare","tags":%s,"flavor":"f%d"}`, i, tags, i%3))["id"].(string)
	}
	return ids
}

func listNames(t *testing.T, body []byte) []string {
	t.Helper()
	var names []string
	for _, im := range jsonOf(t, body)["images"].([]any) {
		names = append(names, im.(map[string]any)["name"].(string))
	}
	return names
}

func TestListImages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	imagesSchema := schemaValidator(t, e, "images")
	seedImages(t, e, 7)

	// Paging: follow next links to the end.
	var all []string
	path := "/v2/images?limit=3&sort=name:asc"
	pages := 0
	for path != "" {
		r := e.do(t, req{method: "GET", path: path, token: alice})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		validate(t, imagesSchema, r.body)
		m := jsonOf(t, r.body)
		if m["first"] != "/v2/images?limit=3&sort=name%3Aasc" || m["schema"] != "/v2/schemas/images" {
			t.Errorf("first/schema: %v %v", m["first"], m["schema"])
		}
		all = append(all, listNames(t, r.body)...)
		next, _ := m["next"].(string)
		path = next
		if next != "" && !strings.HasPrefix(next, "/v2/images?limit=3&sort=name%3Aasc&marker=") {
			t.Errorf("next %q", next)
		}
		pages++
	}
	want := []string{"img-00", "img-01", "img-02", "img-03", "img-04", "img-05", "img-06"}
	if !slices.Equal(all, want) || pages != 3 {
		t.Errorf("paged %v in %d pages", all, pages)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"sort=name:desc&limit=2", []string{"img-06", "img-05"}},
		{"sort_key=name&sort_dir=asc&limit=2", []string{"img-00", "img-01"}},
		{"sort_key=name&limit=1", []string{"img-06"}},
		{"name=img-03", []string{"img-03"}},
		{`name=in:"img-01,x",img-02&sort=name:asc`, []string{"img-02"}},
		{`name=in:img-01,img-02&sort=name:asc`, []string{"img-01", "img-02"}},
		{"tag=odd&tag=x&sort=name:asc", []string{"img-01", "img-03", "img-05"}},
		{"tag=odd&tag=even", nil},
		{"flavor=f1&sort=name:asc", []string{"img-01", "img-04"}},
		{"status=queued&limit=1&sort=name", []string{"img-06"}},
		{"status=active", nil},
		{"limit=0", nil},
		{"created_at=gte:2000-01-01T00:00:00Z&limit=1&sort=name:asc", []string{"img-00"}},
		{"created_at=lt:2000-01-01&limit=1", nil},
		{"visibility=private", nil},
		{"visibility=all&owner=projA&limit=1&sort=name:asc", []string{"img-00"}},
		{"os_hidden=TRUE", nil},
		{"protected=false&limit=1&sort=name:asc", []string{"img-00"}},
		{"size_min=1", nil},
	} {
		r := e.do(t, req{method: "GET", path: "/v2/images?" + tc.query, token: alice, header: jsonAccept})
		if r.status != 200 {
			t.Errorf("%s: %d %s", tc.query, r.status, r.body)
			continue
		}
		if got := listNames(t, r.body); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
		}
	}

	// first/next links follow Glance's rules: last value of a repeated
	// key, marker dropped, quote_plus encoding.
	r := e.do(t, req{method: "GET", path: "/v2/images?tag=odd&tag=x&limit=1&marker=&name=a%20b", token: alice, header: jsonAccept})
	if r.status != 400 || jsonErr(t, r) != "No image found with ID " {
		t.Errorf("empty marker: %d %s", r.status, r.body)
	}
	r = e.do(t, req{method: "GET", path: "/v2/images?tag=even&tag=odd&flavor=a%20b%2F%C3%A9", token: alice})
	if m := jsonOf(t, r.body); m["first"] != "/v2/images?tag=odd&flavor=a+b%2F%C3%A9" || m["next"] != nil {
		t.Errorf("links: %v %v", m["first"], m["next"])
	}
	r = e.do(t, req{method: "GET", path: "/v2/images", token: alice})
	if m := jsonOf(t, r.body); m["first"] != "/v2/images" || len(m["images"].([]any)) != 7 {
		t.Errorf("plain list: %v", m["first"])
	}
	// A full page has a next link even if nothing follows (Glance too).
	r = e.do(t, req{method: "GET", path: "/v2/images?limit=7", token: alice})
	if m := jsonOf(t, r.body); m["next"] == nil {
		t.Error("full page without next")
	}
}

func TestListErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sortKeys := "name, status, container_format, disk_format, size, id, created_at, updated_at"
	for _, tc := range []struct{ query, msg string }{
		{"limit=-1", "limit param must be positive"},
		{"limit=abc", "limit param must be an integer"},
		{"sort_key=visibility", "Invalid sort key: visibility. It must be one of the following: " + sortKeys + "."},
		{"sort=name:up", "Invalid sort direction: up"},
		{"sort=name,size&sort_key=id", "Old and new sorting syntax cannot be combined"},
		{"sort_key=name&sort_dir=asc&sort_dir=desc", "Number of sort dirs does not match the number of sort keys"},
		{"sort=", "Invalid sort key: . It must be one of the following: " + sortKeys + "."},
		{"name=foo:bar", "Unable to filter by unknown operator 'foo'."},
		{`name=in:"a`, `Invalid filter value "a. The quote is not closed.`},
		{"status=gt:active", "Unable to filter by unknown operator 'gt'."},
		{"size_min=x", "Unable to filter on a range with a non-numeric value."},
		{"created_at=foo:2026-01-01", "Unable to filter on a unknown operator."},
		{"created_at=gt:yesterday", `Bad "created_at" query filter format. Use ISO 8601 DateTime notation.`},
		{"os_hidden=maybe", "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'."},
		{"protected=True", "Invalid value 'True' for 'protected' filter. Valid values are 'true' or 'false'."},
		{"visibility=bogus", "Invalid visibility value: bogus"},
		{"member_status=x", "Invalid status: x"},
		{"changes-since=2026", `The "changes-since" filter is no longer available on v2.`},
		{"marker=nonexistent", "No image found with ID nonexistent"},
	} {
		r := e.do(t, req{method: "GET", path: "/v2/images?" + tc.query, token: alice, header: jsonAccept})
		if r.status != 400 || jsonErr(t, r) != tc.msg {
			t.Errorf("%s: %d %q, want 400 %q", tc.query, r.status, jsonErr(t, r), tc.msg)
		}
	}
}
