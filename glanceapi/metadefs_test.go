package glanceapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/metadefs"
	"github.com/imaged/imaged/policy"
)

// memOnly is a projA member without the reader role: Glance's secure
// metadef reads require reader.
const memOnly = "mem-token"

// newMDEnv serves the Image API with the metadefs catalog, Glance's secure
// RBAC defaults, over loopback HTTP.
func newMDEnv(t *testing.T) *env {
	t.Helper()
	logger, logs := testLogger()
	store := testStore(t)
	pol := policy.Secure()
	cfg := glanceapi.Config{
		Images:   catalog.New(store, pol, catalog.DefaultConfig()).WithLogger(logger),
		Metadefs: metadefs.New(store, pol, nil),
		Logger:   logger,
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	y := tokensYAML + "  - token: \"mem-token\"\n    user_id: mem\n    project_id: projA\n    roles: [member]\n"
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	tf, err := auth.NewTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = tf
	srv := httptest.NewServer(glanceapi.New(cfg))
	t.Cleanup(srv.Close)
	return &env{srv: srv, log: logs}
}

// mdCall is one request of a scripted metadefs conversation.
type mdCall struct {
	name   string
	method string
	path   string
	token  string
	body   string
	header map[string]string
	status int
	// msg, when set, is the exact error message; has are substrings of
	// the body that must be there.
	msg string
	has []string
}

func runMD(t *testing.T, e *env, calls []mdCall) {
	t.Helper()
	for _, c := range calls {
		h := map[string]string{"Accept": "application/json"}
		if c.body != "" {
			h["Content-Type"] = "application/json"
		}
		for k, v := range c.header {
			h[k] = v
		}
		r := e.do(t, req{method: c.method, path: c.path, token: c.token, body: c.body, header: h})
		if r.status != c.status {
			t.Errorf("%s: %s %s: status %d, want %d: %s", c.name, c.method, c.path, r.status, c.status, r.body)
			continue
		}
		if c.msg != "" {
			if got := jsonErr(t, r); got != c.msg {
				t.Errorf("%s: message %q, want %q", c.name, got, c.msg)
			}
		}
		for _, s := range c.has {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("%s: body lacks %q: %s", c.name, s, r.body)
			}
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: error Content-Type %q", c.name, r.header.Get("Content-Type"))
		}
	}
}

const (
	nsURL    = "/v2/metadefs/namespaces"
	pubNS    = `{"namespace":"T::Pub","display_name":"Pub","description":"d","visibility":"public","protected":true,"resource_type_associations":[{"name":"OS::Glance::Image","prefix":"hw_"}],"properties":{"cpu":{"title":"CPU","type":"string","enum":["a","b"]}},"objects":[{"name":"Obj","required":["x"],"properties":{"x":{"title":"X","type":"integer","minimum":1}}}],"tags":[{"name":"t1"},{"name":"t2"}]}`
	privNS   = `{"namespace":"T::PrivA","owner":"projA","resource_type_associations":[{"name":"OS::Nova::Flavor","prefix":"hw:"}]}`
	notFound = "The resource could not be found."
)

func TestMetadefNamespaces(t *testing.T) {
	t.Parallel()
	e := newMDEnv(t)
	runMD(t, e, []mdCall{
		{name: "empty list", method: "GET", path: nsURL, token: alice, status: 200,
			has: []string{`{"namespaces": [], "schema": "/v2/schemas/metadefs/namespaces", "first": "/v2/metadefs/namespaces"}`}},
		{name: "create public", method: "POST", path: nsURL, token: admin, body: pubNS, status: 201,
			has: []string{`"namespace": "T::Pub"`, `"owner": "admin"`, `"protected": true`, `"self": "/v2/metadefs/namespaces/T::Pub"`,
				`"properties": {"cpu": {"type": "string", "title": "CPU", "enum": ["a", "b"]}}`, `"tags": [{"name": "t1"}, {"name": "t2"}]`}},
		{name: "create private", method: "POST", path: nsURL, token: admin, body: privNS, status: 201, has: []string{`"visibility": "private"`, `"owner": "projA"`}},
		{name: "create minimal", method: "POST", path: nsURL, token: admin, body: `{"namespace":"T::Min"}`, status: 201},
		{name: "create by member", method: "POST", path: nsURL, token: alice, body: `{"namespace":"T::X"}`, status: 403,
			msg: "You are not authorized to complete add_metadef_namespace action."},
		{name: "create by member without reader", method: "POST", path: nsURL, token: memOnly, body: `{"namespace":"T::X"}`, status: 404, msg: notFound},
		{name: "duplicate", method: "POST", path: nsURL, token: admin, body: `{"namespace":"T::Min"}`, status: 409,
			msg: "The metadata definition namespace=T::Min already exists."},
		{name: "no name", method: "POST", path: nsURL, token: admin, body: `{"display_name":"x"}`, status: 400,
			msg: "Provided object does not match schema 'namespace': 'namespace' is a required property"},
		{name: "bad visibility", method: "POST", path: nsURL, token: admin, body: `{"namespace":"x","visibility":"shared"}`, status: 400,
			msg: "Provided object does not match schema 'namespace': 'shared' is not one of ['public', 'private']"},
		{name: "unknown attribute", method: "POST", path: nsURL, token: admin, body: `{"namespace":"x","colour":1}`, status: 400,
			msg: "Provided object does not match schema 'namespace': Additional properties are not allowed ('colour' was unexpected)"},
		{name: "property without title", method: "POST", path: nsURL, token: admin, body: `{"namespace":"x","properties":{"p":{"type":"string"}}}`, status: 400,
			msg: "Provided object does not match schema 'namespace': 'title' is a required property"},
		{name: "negative maxLength", method: "POST", path: nsURL, token: admin, body: `{"namespace":"x","properties":{"p":{"title":"P","type":"string","maxLength":-1}}}`, status: 400,
			msg: "Provided object does not match schema 'namespace': -1 is less than the minimum of 0"},
		{name: "read-only", method: "POST", path: nsURL, token: admin, body: `{"namespace":"x","created_at":"now"}`, status: 403, msg: "Attribute 'created_at' is read-only."},
		{name: "malformed", method: "POST", path: nsURL, token: admin, body: `{"namespace":`, status: 400, msg: "Malformed JSON in request body."},
		{name: "list body", method: "POST", path: nsURL, token: admin, body: `[]`, status: 400},

		{name: "show public as alice", method: "GET", path: nsURL + "/T::Pub", token: alice, status: 200,
			has: []string{`"objects": [{"name": "Obj", "required": ["x"]`, `"self": "/v2/metadefs/namespaces/T::Pub/objects/Obj", "schema": "/v2/schemas/metadefs/object"`,
				`"resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_", "created_at": "`}},
		{name: "show with prefix", method: "GET", path: nsURL + "/T::Pub?resource_type=OS::Glance::Image", token: alice, status: 200,
			has: []string{`"hw_cpu": {`, `"required": ["hw_x"]`, `"hw_x": {"type": "integer"`}},
		{name: "show own private", method: "GET", path: nsURL + "/T::PrivA", token: alice, status: 200},
		{name: "show other's private", method: "GET", path: nsURL + "/T::PrivA", token: bob, status: 404, msg: notFound},
		{name: "show public without reader", method: "GET", path: nsURL + "/T::Pub", token: memOnly, status: 404, msg: notFound},
		{name: "show missing", method: "GET", path: nsURL + "/T::Nope", token: admin, status: 404, msg: "Metadata definition namespace=T::Nope was not found."},

		{name: "list without reader", method: "GET", path: nsURL, token: memOnly, status: 404, msg: notFound},
		{name: "bad sort_dir", method: "GET", path: nsURL + "?sort_dir=up", token: admin, status: 400, msg: "Invalid sort direction: up"},
		{name: "bad visibility filter", method: "GET", path: nsURL + "?visibility=shared", token: admin, status: 400, msg: "Invalid visibility value: shared"},
		{name: "negative limit", method: "GET", path: nsURL + "?limit=-1", token: admin, status: 400, msg: "limit param must be positive"},
		{name: "bad limit", method: "GET", path: nsURL + "?limit=x", token: admin, status: 400, msg: "limit param must be an integer"},
		{name: "bad sort key", method: "GET", path: nsURL + "?sort_key=nope", token: admin, status: 400},
		{name: "unknown marker", method: "GET", path: nsURL + "?marker=T::Nope", token: admin, status: 404},
		{name: "hidden marker", method: "GET", path: nsURL + "?marker=T::PrivA", token: bob, status: 403,
			msg: "Forbidding request, metadata definition namespace=T::PrivA is not visible."},

		{name: "update by member", method: "PUT", path: nsURL + "/T::Pub", token: alice, body: `{"namespace":"T::Pub"}`, status: 403,
			msg: "You are not authorized to complete modify_metadef_namespace action."},
		{name: "update hidden", method: "PUT", path: nsURL + "/T::PrivA", token: bob, body: `{"namespace":"T::PrivA"}`, status: 404, msg: "Namespace T::PrivA not found"},
		{name: "rename", method: "PUT", path: nsURL + "/T::Min", token: admin, body: `{"namespace":"T::Min2","description":"new","visibility":"public"}`, status: 200,
			has: []string{`"namespace": "T::Min2"`, `"description": "new"`, `"self": "/v2/metadefs/namespaces/T::Min2"`}},
		{name: "rename onto another", method: "PUT", path: nsURL + "/T::Min2", token: admin, body: `{"namespace":"T::Pub"}`, status: 409,
			msg: "Invalid update. It would result in a duplicate metadata definition namespace with the same name of T::Pub"},
		{name: "old name gone", method: "GET", path: nsURL + "/T::Min", token: admin, status: 404},

		{name: "delete protected", method: "DELETE", path: nsURL + "/T::Pub", token: admin, status: 403,
			msg: "Metadata definition namespace T::Pub is protected and cannot be deleted."},
		{name: "delete by member", method: "DELETE", path: nsURL + "/T::PrivA", token: alice, status: 403},
		{name: "delete hidden", method: "DELETE", path: nsURL + "/T::PrivA", token: bob, status: 404, msg: "Namespace T::PrivA not found"},
		{name: "unprotect", method: "PUT", path: nsURL + "/T::Pub", token: admin, body: `{"namespace":"T::Pub","visibility":"public"}`, status: 200, has: []string{`"protected": false`}},
		{name: "delete", method: "DELETE", path: nsURL + "/T::Pub", token: admin, status: 204},
		{name: "delete again", method: "DELETE", path: nsURL + "/T::Pub", token: admin, status: 404},
	})
}

// mdListNames returns the namespace names of a listing and its next link.
func mdListNames(t *testing.T, e *env, path, token string) ([]string, map[string]any) {
	t.Helper()
	r := e.do(t, req{method: "GET", path: path, token: token})
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	m := jsonOf(t, r.body)
	var names []string
	for _, n := range m["namespaces"].([]any) {
		names = append(names, n.(map[string]any)["namespace"].(string))
	}
	return names, m
}

func TestMetadefNamespaceListing(t *testing.T) {
	t.Parallel()
	e := newMDEnv(t)
	for _, b := range []string{
		`{"namespace":"A","visibility":"public","resource_type_associations":[{"name":"OS::Glance::Image"}]}`,
		`{"namespace":"B","owner":"projA"}`,
		`{"namespace":"C","owner":"projB","resource_type_associations":[{"name":"OS::Nova::Flavor"}]}`,
		`{"namespace":"D","visibility":"public","resource_type_associations":[{"name":"OS::Nova::Flavor"},{"name":"OS::Glance::Image"}]}`,
	} {
		if r := e.do(t, req{method: "POST", path: nsURL, token: admin, body: b, header: map[string]string{"Content-Type": "application/json"}}); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	for _, tc := range []struct {
		path, token string
		want        []string
	}{
		{nsURL + "?sort_key=namespace&sort_dir=asc", admin, []string{"A", "B", "C", "D"}},
		{nsURL, admin, []string{"D", "C", "B", "A"}}, // created_at desc, then newest id first
		{nsURL + "?sort_key=namespace&sort_dir=asc", alice, []string{"A", "B", "D"}},
		{nsURL + "?sort_key=namespace&sort_dir=asc", bob, []string{"A", "C", "D"}},
		{nsURL + "?visibility=private", alice, []string{"B"}},
		{nsURL + "?resource_types=OS::Nova::Flavor&sort_key=namespace&sort_dir=asc", admin, []string{"C", "D"}},
		{nsURL + "?resource_types=OS::Glance::Image,OS::Nova::Flavor&sort_key=namespace&sort_dir=asc", bob, []string{"A", "C", "D"}},
	} {
		got, _ := mdListNames(t, e, tc.path, tc.token)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s as %s: %v, want %v", tc.path, tc.token, got, tc.want)
		}
	}
	// Paging: limit, first and next links keep the other parameters.
	var all []string
	path := nsURL + "?limit=2&sort_key=namespace&sort_dir=asc"
	for i := 0; path != "" && i < 5; i++ {
		got, m := mdListNames(t, e, path, admin)
		all = append(all, got...)
		if first := m["first"]; first != "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc" {
			t.Errorf("first = %v", first)
		}
		path, _ = m["next"].(string)
	}
	if !slices.Equal(all, []string{"A", "B", "C", "D"}) {
		t.Errorf("pages: %v", all)
	}
	// The next link drops the old marker and appends the new one, keeping
	// every other parameter (unknown ones too) in request order.
	got, m := mdListNames(t, e, nsURL+"?marker=A&limit=1&sort_key=namespace&sort_dir=asc&foo=1", admin)
	if !slices.Equal(got, []string{"B"}) || m["next"] != "/v2/metadefs/namespaces?limit=1&sort_key=namespace&sort_dir=asc&foo=1&marker=B" ||
		m["first"] != "/v2/metadefs/namespaces?limit=1&sort_key=namespace&sort_dir=asc&foo=1" {
		t.Errorf("marker page: %v %v %v", got, m["first"], m["next"])
	}
	if got, m := mdListNames(t, e, nsURL+"?limit=0", admin); len(got) != 0 || m["next"] != nil {
		t.Errorf("limit=0: %v %v", got, m["next"])
	}
	// Resource types come from the associations, in creation order.
	r := e.do(t, req{method: "GET", path: "/v2/metadefs/resource_types", token: bob})
	var rts struct {
		ResourceTypes []struct{ Name string } `json:"resource_types"`
	}
	if err := json.Unmarshal(r.body, &rts); err != nil || len(rts.ResourceTypes) != 2 || rts.ResourceTypes[0].Name != "OS::Glance::Image" {
		t.Errorf("resource types: %s", r.body)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/metadefs/resource_types", token: memOnly}); r.status != 404 {
		t.Errorf("resource types without reader: %d", r.status)
	}
}

func TestMetadefDefinitions(t *testing.T) {
	t.Parallel()
	e := newMDEnv(t)
	ns := nsURL + "/T::Pub"
	priv := nsURL + "/T::PrivA"
	appendHdr := map[string]string{"X-Openstack-Append": "True"}
	runMD(t, e, []mdCall{
		{name: "create public", method: "POST", path: nsURL, token: admin, body: pubNS, status: 201},
		{name: "create private", method: "POST", path: nsURL, token: admin, body: privNS, status: 201},

		// objects
		{name: "object create", method: "POST", path: ns + "/objects", token: admin, body: `{"name":"A2","properties":{"s":{"title":"S","type":"integer"}}}`, status: 201,
			has: []string{`"name": "A2"`, `"self": "/v2/metadefs/namespaces/T::Pub/objects/A2"`}},
		{name: "object duplicate", method: "POST", path: ns + "/objects", token: admin, body: `{"name":"A2"}`, status: 409,
			msg: "A metadata definition object with name=A2 already exists in namespace=T::Pub."},
		{name: "object by member", method: "POST", path: ns + "/objects", token: alice, body: `{"name":"A3"}`, status: 403},
		{name: "object no name", method: "POST", path: ns + "/objects", token: admin, body: `{}`, status: 400,
			msg: "Provided object does not match schema 'object': 'name' is a required property"},
		{name: "object with an unknown property attribute", method: "POST", path: ns + "/objects", token: admin,
			body: `{"name":"U","properties":{"p":{"title":"P","type":"string","foo":1}}}`, status: 400,
			msg: "Provided object does not match schema 'property': Additional properties are not allowed ('foo' was unexpected)"},
		{name: "object list", method: "GET", path: ns + "/objects", token: bob, status: 200,
			has: []string{`{"objects": [{"name": "A2", "required": []`, `{"name": "Obj", "required": ["x"]`, `"schema": "v2/schemas/metadefs/objects"}`}},
		{name: "object list hidden", method: "GET", path: priv + "/objects", token: bob, status: 404, msg: "Namespace T::PrivA not found"},
		{name: "object list missing ns", method: "GET", path: nsURL + "/Nope/objects", token: admin, status: 404, msg: "Metadata definition namespace=Nope was not found."},
		{name: "object show", method: "GET", path: ns + "/objects/Obj", token: alice, status: 200, has: []string{`"properties": {"x": {"type": "integer", "title": "X", "minimum": 1}}`}},
		{name: "object show missing", method: "GET", path: ns + "/objects/Nope", token: alice, status: 404, msg: "Could not find metadata object Nope"},
		{name: "object update", method: "PUT", path: ns + "/objects/A2", token: admin, body: `{"name":"A3","description":"d"}`, status: 200, has: []string{`"name": "A3"`, `"description": "d"`}},
		{name: "object update by member", method: "PUT", path: ns + "/objects/A3", token: alice, body: `{"name":"A3"}`, status: 403},
		{name: "object delete protected", method: "DELETE", path: ns + "/objects/A3", token: admin, status: 403,
			msg: "Metadata definition object A3 is protected and cannot be deleted."},
		{name: "object in private", method: "POST", path: priv + "/objects", token: admin, body: `{"name":"P"}`, status: 201},
		{name: "object delete", method: "DELETE", path: priv + "/objects/P", token: admin, status: 204},
		{name: "object delete again", method: "DELETE", path: priv + "/objects/P", token: admin, status: 404},

		// properties
		{name: "property create", method: "POST", path: ns + "/properties", token: admin, body: `{"name":"cores","title":"Cores","type":"integer","minimum":1}`, status: 201,
			has: []string{`{"name": "cores", "type": "integer", "title": "Cores", "minimum": 1}`}},
		{name: "property duplicate", method: "POST", path: ns + "/properties", token: admin, body: `{"name":"cores","title":"C","type":"integer"}`, status: 409},
		{name: "property bad type", method: "POST", path: ns + "/properties", token: admin, body: `{"name":"x","title":"X","type":"float"}`, status: 400},
		{name: "property list", method: "GET", path: ns + "/properties", token: alice, status: 200,
			has: []string{`"cores": {"name": "cores", "type": "integer"`, `"cpu": {"type": "string"`}},
		{name: "property show prefixed", method: "GET", path: ns + "/properties/hw_cpu?resource_type=OS::Glance::Image", token: alice, status: 200, has: []string{`"name": "cpu"`}},
		{name: "property show missing", method: "GET", path: ns + "/properties/nope", token: alice, status: 404, msg: "Could not find property nope"},
		{name: "property update", method: "PUT", path: ns + "/properties/cores", token: admin, body: `{"name":"threads","title":"T","type":"integer"}`, status: 200, has: []string{`"name": "threads"`}},
		{name: "property delete protected", method: "DELETE", path: ns + "/properties/threads", token: admin, status: 403},
		{name: "property in private", method: "POST", path: priv + "/properties", token: admin, body: `{"name":"pp","title":"PP","type":"boolean"}`, status: 201},
		{name: "property delete", method: "DELETE", path: priv + "/properties/pp", token: admin, status: 204},

		// tags
		{name: "tag create", method: "POST", path: ns + "/tags/t3", token: admin, status: 201, has: []string{`"name": "t3", "created_at": "`}},
		{name: "tag duplicate", method: "POST", path: ns + "/tags/t3", token: admin, status: 409,
			msg: "A metadata tag with name=t3 already exists in namespace=T::Pub. (Please note that metadata tag names are case insensitive)."},
		{name: "tag by member", method: "POST", path: ns + "/tags/t9", token: alice, status: 403},
		{name: "tag list newest first", method: "GET", path: ns + "/tags", token: alice, status: 200, has: []string{`{"tags": [{"name": "t3"}, {"name": "t2"}, {"name": "t1"}]}`}},
		{name: "tag rename", method: "PUT", path: ns + "/tags/t3", token: admin, body: `{"name":"t4"}`, status: 200, has: []string{`"name": "t4"`}},
		{name: "tag show missing", method: "GET", path: ns + "/tags/t3", token: alice, status: 404, msg: "Could not find metadata tag t3"},
		{name: "tags append", method: "POST", path: ns + "/tags", token: admin, header: appendHdr, body: `{"tags":[{"name":"a1"},{"name":"a2"}]}`, status: 201,
			has: []string{`{"tags": [{"name": "a1"}, {"name": "a2"}]}`}},
		{name: "tags after append", method: "GET", path: ns + "/tags", token: alice, status: 200, has: []string{`{"name": "a1"}`, `{"name": "t4"}`, `{"name": "t1"}`}},
		{name: "tags duplicate in batch", method: "POST", path: ns + "/tags", token: admin, header: appendHdr, body: `{"tags":[{"name":"d"},{"name":"d"}]}`, status: 409},
		{name: "tags bad body", method: "POST", path: ns + "/tags", token: admin, body: `{"names":[]}`, status: 400,
			msg: "Provided object does not match schema 'tags': Additional properties are not allowed ('names' was unexpected)"},
		{name: "tags replace", method: "POST", path: priv + "/tags", token: admin, body: `{"tags":[{"name":"r1"},{"name":"r2"}]}`, status: 201},
		{name: "tags replace again", method: "POST", path: priv + "/tags", token: admin, body: `{"tags":[{"name":"r3"}]}`, status: 201},
		{name: "tags after replace", method: "GET", path: priv + "/tags", token: alice, status: 200, has: []string{`{"tags": [{"name": "r3"}]}`}},
		{name: "tag delete protected", method: "DELETE", path: ns + "/tags/t4", token: admin, status: 403},
		{name: "tags delete all protected", method: "DELETE", path: ns + "/tags", token: admin, status: 403},
		{name: "tags delete all", method: "DELETE", path: priv + "/tags", token: admin, status: 204},
		{name: "tags empty", method: "GET", path: priv + "/tags", token: alice, status: 200, has: []string{`{"tags": []}`}},

		// resource type associations
		{name: "rt list", method: "GET", path: ns + "/resource_types", token: alice, status: 200, has: []string{`{"resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"`}},
		{name: "rt associate", method: "POST", path: priv + "/resource_types", token: admin, body: `{"name":"OS::Glance::Image","prefix":"img_"}`, status: 201, has: []string{`"prefix": "img_"`}},
		{name: "rt associate again", method: "POST", path: priv + "/resource_types", token: admin, body: `{"name":"OS::Glance::Image"}`, status: 409},
		{name: "rt associate by member", method: "POST", path: priv + "/resource_types", token: alice, body: `{"name":"X"}`, status: 403},
		{name: "rt associate hidden", method: "POST", path: priv + "/resource_types", token: bob, body: `{"name":"X"}`, status: 404},
		{name: "rt dissociate", method: "DELETE", path: priv + "/resource_types/OS::Glance::Image", token: admin, status: 204},
		{name: "rt dissociate again", method: "DELETE", path: priv + "/resource_types/OS::Glance::Image", token: admin, status: 404,
			msg: "Failed to find resource type OS::Glance::Image to delete"},
		{name: "rt dissociate protected", method: "DELETE", path: ns + "/resource_types/OS::Glance::Image", token: admin, status: 403},

		// delete all of a kind
		{name: "objects delete all protected", method: "DELETE", path: ns + "/objects", token: admin, status: 403},
		{name: "unprotect", method: "PUT", path: ns, token: admin, body: `{"namespace":"T::Pub","visibility":"public"}`, status: 200},
		{name: "objects delete all by member", method: "DELETE", path: ns + "/objects", token: alice, status: 403},
		{name: "objects delete all", method: "DELETE", path: ns + "/objects", token: admin, status: 204},
		{name: "properties delete all", method: "DELETE", path: ns + "/properties", token: admin, status: 204},
		{name: "emptied", method: "GET", path: ns, token: admin, status: 200, has: []string{`"tags": [`}},
		{name: "method not allowed", method: "PATCH", path: ns, token: admin, status: 405},
	})
	r := e.do(t, req{method: "GET", path: ns, token: admin})
	m := jsonOf(t, r.body)
	if _, ok := m["objects"]; ok {
		t.Errorf("objects left after delete all: %s", r.body)
	}
	if _, ok := m["properties"]; ok {
		t.Errorf("properties left after delete all: %s", r.body)
	}
}

func TestMetadefSchemas(t *testing.T) {
	t.Parallel()
	e := newMDEnv(t)
	for _, s := range []string{"namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags", "resource_type", "resource_types"} {
		r := e.do(t, req{method: "GET", path: "/v2/schemas/metadefs/" + s, token: alice})
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", s, r.status, r.header.Get("Content-Type"))
			continue
		}
		m := jsonOf(t, r.body)
		if _, ok := m["properties"].(map[string]any); !ok || m["name"] == nil {
			t.Errorf("%s: not a schema: %s", s, r.body)
		}
	}
	if r := e.do(t, req{method: "GET", path: "/v2/schemas/metadefs/nope", token: alice}); r.status != 404 {
		t.Errorf("unknown schema: %d", r.status)
	}
	if r := e.do(t, req{method: "GET", path: "/v2/metadefs/nope", token: alice}); r.status != 404 {
		t.Errorf("unknown metadefs path: %d", r.status)
	}
}
