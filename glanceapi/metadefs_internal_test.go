package glanceapi

import (
	"testing"

	"github.com/imaged/imaged"
)

// FuzzMetadefBodies feeds arbitrary request bodies to every metadef body
// decoder: none may panic, and every refusal is a 400 or (read-only
// attributes) a 403.
func FuzzMetadefBodies(f *testing.F) {
	for _, s := range []string{
		`{"namespace":"n","properties":{"p":{"title":"P","type":"string","minLength":0,"items":{"type":"string"}}},"objects":[{"name":"o","required":["a","a"]}],"tags":[{"name":"t"}]}`,
		`{"namespace":"n","resource_type_associations":[{"name":1}]}`,
		`{"name":"x","title":"T","type":"array","items":{"enum":[1,null]},"default":1.5}`,
		`{"tags":[{"name":"a"},{"name":"b","x":1}]}`,
		`{"self":"x"}`, `[]`, `null`, `"s"`, `{"namespace":"` + "\xff" + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeJSON(data)
		if err != nil {
			return
		}
		check := func(what string, err error) {
			if err == nil {
				return
			}
			if c := imaged.ErrorCode(err); c != imaged.EINVALID && c != imaged.EFORBIDDEN {
				t.Fatalf("%s: %v (code %s) for %q", what, err, c, data)
			}
		}
		in, err := decodeNamespaceBody(v)
		check("namespace", err)
		if err == nil && in.Namespace.Namespace == "" {
			if m, ok := v.(map[string]any); !ok || m["namespace"] != "" {
				t.Fatalf("accepted a namespace without name: %q", data)
			}
		}
		for _, kind := range []string{"object", "property", "tag", "tags_request", "resource_type"} {
			m, err := decodeItemBody(kind, v)
			check(kind, err)
			if err == nil && kind == "object" {
				check("object properties", checkObjectProperties(m))
				o := decodeObject(m)
				if len(o.Properties) > 0 && o.Properties[0] != '{' {
					t.Fatalf("object properties not an object: %s", o.Properties)
				}
				b := (&mdBuf{}).object("ns", o, true).b
				if _, err := decodeJSON(b); err != nil {
					t.Fatalf("rendered object is not JSON: %s", b)
				}
			}
			if err == nil && kind == "property" {
				b := (&mdBuf{}).propSchema(encodeProperty(m), "p").b
				if _, err := decodeJSON(b); err != nil {
					t.Fatalf("rendered property is not JSON: %s", b)
				}
			}
		}
	})
}

func TestPyRepr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "None"}, {true, "True"}, {float64(3), "3"}, {1.5, "1.5"},
		{"a'b", `"a'b"`}, {"ab", "'ab'"}, {[]any{"x", nil}, "['x', None]"},
		{map[string]any{"b": 1.0, "a": "x"}, "{'a': 'x', 'b': 1}"},
	} {
		if got := pyRepr(tc.in); got != tc.want {
			t.Errorf("pyRepr(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAppendPyRaw(t *testing.T) {
	t.Parallel()
	in := `{"a":"x\u003cy\u0026\"z:,","b":[1,2],"c":"\\u003c"}`
	want := `{"a": "x<y&\"z:,", "b": [1, 2], "c": "\\u003c"}`
	if got := string(appendPyRaw(nil, []byte(in))); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
