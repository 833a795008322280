package nativeapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/imaged/imaged/nativeapi"
)

// spec is openapi.json, parsed, with its schemas compiled for validating
// the responses the tests receive.
type spec struct {
	doc   map[string]any
	paths []specPath
	comp  *jsonschema.Compiler
	mu    sync.Mutex
	cache map[string]*jsonschema.Schema
}

type specPath struct {
	template string
	re       *regexp.Regexp
	params   int
}

var (
	specOnce sync.Once
	theSpec  *spec
	specErr  error
)

// loadSpec parses the embedded document once per test binary.
func loadSpec(t *testing.T) *spec {
	t.Helper()
	specOnce.Do(func() { theSpec, specErr = parseSpec(nativeapi.OpenAPI) })
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return theSpec
}

var paramRe = regexp.MustCompile(`^\{[a-z_]+\}$`)

func parseSpec(data []byte) (*spec, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	s := &spec{doc: doc, cache: map[string]*jsonschema.Schema{}}
	for p := range doc["paths"].(map[string]any) {
		// {alias} takes the rest of the path (it may hold "/"), other
		// parameters one segment.
		var expr strings.Builder
		for i, seg := range strings.Split(p, "/") {
			if i > 0 {
				expr.WriteString("/")
			}
			switch {
			case seg == "{alias}":
				expr.WriteString(".+")
			case paramRe.MatchString(seg):
				expr.WriteString("[^/]+")
			default:
				expr.WriteString(regexp.QuoteMeta(seg))
			}
		}
		s.paths = append(s.paths, specPath{template: p, re: regexp.MustCompile("^" + expr.String() + "$"),
			params: strings.Count(p, "{")})
	}
	// Literal paths win over templated ones, as in the mux.
	sort.Slice(s.paths, func(i, j int) bool { return s.paths[i].params < s.paths[j].params })

	// OpenAPI 3.0's "nullable" is no JSON Schema keyword: turn it into a
	// type union so that the validator knows null is allowed.
	schemas := convertNullable(jsonRoundTrip(doc["components"].(map[string]any)["schemas"]))
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(map[string]any{"components": map[string]any{"schemas": schemas}})))
	if err != nil {
		return nil, err
	}
	s.comp = jsonschema.NewCompiler()
	if err := s.comp.AddResource("file:///openapi.json", inst); err != nil {
		return nil, err
	}
	return s, nil
}

func jsonRoundTrip(v any) any {
	var out any
	_ = json.Unmarshal(mustJSON(v), &out)
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func convertNullable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = convertNullable(e)
		}
		if n, _ := x["nullable"].(bool); n {
			delete(x, "nullable")
			if t, ok := x["type"].(string); ok {
				x["type"] = []any{t, "null"}
				if enum, ok := x["enum"].([]any); ok {
					x["enum"] = append(enum, nil)
				}
			} else {
				inner := map[string]any{}
				for k, e := range x {
					inner[k] = e
					delete(x, k)
				}
				x["anyOf"] = []any{inner, map[string]any{"type": "null"}}
			}
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convertNullable(e)
		}
	}
	return v
}

// template returns the documented path a request path falls under.
func (s *spec) template(path string) (string, bool) {
	for _, p := range s.paths {
		if p.re.MatchString(path) {
			return p.template, true
		}
	}
	return "", false
}

// operation returns the documented operation of method on template.
func (s *spec) operation(method, template string) map[string]any {
	item, _ := s.doc["paths"].(map[string]any)[template].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// schema compiles (once) the schema at a JSON pointer of the document.
func (s *spec) schema(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.cache[ref]; ok {
		return sch
	}
	sch, err := s.comp.Compile("file:///openapi.json" + ref)
	if err != nil {
		t.Fatalf("compile %s: %v", ref, err)
	}
	s.cache[ref] = sch
	return sch
}

// check validates a response against the document: the path and method
// must be documented, the status among the operation's responses (405
// only under "default") and a JSON body valid against its schema.
func (s *spec) check(t *testing.T, method, path string, status int, header http.Header, body []byte, anyError bool) {
	t.Helper()
	tmpl, ok := s.template(path)
	if !ok {
		if status == http.StatusNotFound {
			return // an undocumented path: the catch-all 404, checked below
		}
		t.Errorf("%s %s: path not documented (status %d)", method, path, status)
		return
	}
	op := s.operation(method, tmpl)
	if op == nil {
		if status != http.StatusMethodNotAllowed && status != http.StatusUnauthorized {
			t.Errorf("%s %s: method not documented (status %d)", method, tmpl, status)
		}
		return
	}
	resps := op["responses"].(map[string]any)
	r, ok := resps[strconv.Itoa(status)].(map[string]any)
	if !ok && anyError && status >= 400 {
		r, ok = resps["default"].(map[string]any)
	}
	if !ok {
		t.Errorf("%s %s: status %d not documented", method, tmpl, status)
		return
	}
	if ref, ok := r["$ref"].(string); ok {
		r = s.doc["components"].(map[string]any)["responses"].(map[string]any)[strings.TrimPrefix(ref, "#/components/responses/")].(map[string]any)
	}
	content, _ := r["content"].(map[string]any)
	if content == nil {
		if len(body) != 0 {
			t.Errorf("%s %s: status %d documented without a body, got %q", method, tmpl, status, body)
		}
		return
	}
	js, ok := content["application/json"].(map[string]any)
	if !ok {
		return // the event stream: checked by its own test
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, tmpl, ct)
	}
	ref := js["schema"].(map[string]any)["$ref"].(string)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s: body is not JSON: %v: %q", method, tmpl, err, body)
		return
	}
	if err := s.schema(t, "#"+strings.TrimPrefix(ref, "#")).Validate(inst); err != nil {
		t.Errorf("%s %s %d: body does not match %s: %v\n%s", method, tmpl, status, ref, err, body)
	}
}

// TestOpenAPIMatchesRoutes keeps the mux and the document in step: every
// registered route is documented and every documented operation routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	if v := s.doc["openapi"]; v != "3.0.3" {
		t.Errorf("openapi = %v", v)
	}
	h := nativeapi.New(nativeapi.Config{})
	routed := map[string]bool{}
	for _, r := range nativeapi.RouteList(h) {
		routed[strings.Replace(r, "...}", "}", 1)] = true
	}
	documented := map[string]bool{}
	for p, item := range s.doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	for r := range routed {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %s, which is not routed", d)
		}
	}
	if len(routed) < 28 {
		t.Errorf("only %d routes", len(routed))
	}
}

// TestOpenAPISchemasCompile compiles every schema and checks every $ref
// of the document resolves.
func TestOpenAPISchemasCompile(t *testing.T) {
	t.Parallel()
	s := loadSpec(t)
	for name := range s.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		s.schema(t, "#/components/schemas/"+name)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = s.doc
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(s.doc)
	// Every operation answers 401 unless public, and 500.
	for p, item := range s.doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			resps := op.(map[string]any)["responses"].(map[string]any)
			_, public := op.(map[string]any)["security"]
			if _, ok := resps["401"]; !ok && !public {
				t.Errorf("%s %s: no 401", m, p)
			}
			if _, ok := resps["500"]; !ok {
				t.Errorf("%s %s: no 500", m, p)
			}
		}
	}
}

// checkSchema validates a JSON document against a named component schema.
func (s *spec) checkSchema(t *testing.T, name string, data []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Errorf("not JSON: %q", data)
		return
	}
	if err := s.schema(t, "#/components/schemas/"+name).Validate(inst); err != nil {
		t.Errorf("does not match %s: %v\n%s", name, err, data)
	}
}

// TestOpenAPIIsValidOAS30 checks openapi.json against the OpenAPI
// Initiative's schema of 3.0 documents, so that tools can read it.
func TestOpenAPIIsValidOAS30(t *testing.T) {
	t.Parallel()
	meta, err := os.ReadFile("testdata/oas-3.0-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	mdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(meta))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource("file:///oas-3.0-schema.json", mdoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("file:///oas-3.0-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(nativeapi.OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3.0 document: %v", err)
	}
	// And the negative: the check does catch a broken document.
	var broken map[string]any
	_ = json.Unmarshal(nativeapi.OpenAPI, &broken)
	broken["paths"].(map[string]any)["/api/v1/audit"].(map[string]any)["get"].(map[string]any)["responses"] = "none"
	if sch.Validate(jsonRoundTrip(broken)) == nil {
		t.Error("a broken document validates")
	}
}
