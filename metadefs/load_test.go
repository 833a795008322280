package metadefs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/metadefs"
)

func TestParseGlanceFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 6 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in, err := metadefs.ParseFile(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Cross-check against a plain decoding of the same file.
		var raw struct {
			Namespace  string
			Properties map[string]json.RawMessage
			Objects    []struct{ Properties map[string]json.RawMessage }
			RTA        []any `json:"resource_type_associations"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		if in.Namespace.Namespace != raw.Namespace || len(in.Properties) != len(raw.Properties) ||
			len(in.Objects) != len(raw.Objects) || len(in.ResourceTypeAssociations) != len(raw.RTA) {
			t.Errorf("%s: parsed %s with %d properties, %d objects, %d associations", f, in.Namespace.Namespace,
				len(in.Properties), len(in.Objects), len(in.ResourceTypeAssociations))
		}
		if in.Namespace.Owner != "admin" {
			t.Errorf("%s: owner %q, want glance-manage's default admin", f, in.Namespace.Owner)
		}
		for _, p := range in.Properties {
			var m map[string]any
			if err := json.Unmarshal(p.Schema, &m); err != nil || m["title"] == nil {
				t.Errorf("%s: property %s schema %s", f, p.Name, p.Schema)
			}
		}
	}
}

func TestParseFileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, err string }{
		{``, "not a metadata definitions file"},
		{`[]`, "not a metadata definitions file"},
		{`{"namespace":"a"} {}`, "data after"},
		{`{}`, "no namespace name"},
		{`{"namespace":"` + strings.Repeat("n", 81) + `"}`, "longer than 80"},
		{`{"namespace":"a","visibility":"shared"}`, "neither public nor private"},
		{`{"namespace":"a","properties":[]}`, "properties is not a JSON object"},
		{`{"namespace":"a","properties":{"p":"x"}}`, "property p is not a JSON object"},
		{`{"namespace":"a","objects":[{"name":"o"},{"name":"o"}]}`, "object o twice"},
		{`{"namespace":"a","objects":[{}]}`, "an object without name"},
		{`{"namespace":"a","objects":[{"name":"o","properties":{"p":1}}]}`, "object o: property p"},
		{`{"namespace":"a","tags":[{"name":"t"},{"name":"t"}]}`, "repeated tag"},
		{`{"namespace":"a","resource_type_associations":[{"prefix":"x"}]}`, "association without name"},
		{`{"namespace":"a","protected":"yes"}`, "not a metadata definitions file"},
	} {
		_, err := metadefs.ParseFile([]byte(tc.in))
		if err == nil || imaged.ErrorCode(err) != imaged.EINVALID || !strings.Contains(imaged.ErrorMessage(err), tc.err) {
			t.Errorf("%.40q: %v, want EINVALID %q", tc.in, err, tc.err)
		}
	}
}

// FuzzParseFile: no input panics; an accepted file has a name and every
// property schema it keeps is a JSON object.
func FuzzParseFile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"namespace":"a","objects":[{"name":"o","properties":{"p":{"type":"string"}}}],"tags":[{"name":"t"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := metadefs.ParseFile(data)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("error code %s: %v", imaged.ErrorCode(err), err)
			}
			return
		}
		if in.Namespace.Namespace == "" {
			t.Fatal("accepted a file without namespace")
		}
		for _, p := range in.Properties {
			var m map[string]any
			if json.Unmarshal(p.Schema, &m) != nil {
				t.Fatalf("property %s: %s", p.Name, p.Schema)
			}
		}
		for _, o := range in.Objects {
			if _, err := o.Item(); err != nil {
				t.Fatalf("object %s: %v", o.Name, err)
			}
		}
	})
}
