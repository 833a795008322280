package glanceapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// The metadef request bodies are checked against the schemas Glance serves
// (embedded from a real Glance 25.1), by a small JSON-schema validator that
// knows the keywords those schemas use. Its messages are jsonschema's first
// line ("'namespace' is a required property"); Glance appends the whole
// schema and instance after it, which clients do not parse.

// schemaNode is a decoded JSON schema.
type schemaNode = map[string]any

// mdValidate checks v against schema root (with its definitions), and
// returns Glance's 400 message for the first error found.
func mdValidate(name string, root schemaNode, v any) error {
	if n, ok := root["name"].(string); ok {
		name = n
	}
	if msg := validateNode(root, root, v); msg != "" {
		return invalid("Provided object does not match schema '%s': %s", name, msg)
	}
	return nil
}

// pyRepr renders v as Python's repr of the decoded JSON value, which is
// how jsonschema's messages show instances.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e16 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case json.Number:
		return x.String()
	case string:
		if strings.Contains(x, "'") && !strings.Contains(x, `"`) {
			return `"` + x + `"`
		}
		return "'" + strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), "'", `\'`) + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func typeMatches(want string, v any) bool {
	got := jsonType(v)
	return want == got || (want == "number" && got == "integer")
}

// validateNode returns the first validation error of v against s, "" if
// none. Keywords are checked in a fixed order (jsonschema's is the
// schema's dict order, which is close to this for Glance's schemas).
func validateNode(root, s schemaNode, v any) string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		defs, _ := root["definitions"].(map[string]any)
		sub, _ := defs[name].(map[string]any)
		if sub == nil {
			return ""
		}
		return validateNode(root, sub, v)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if sm, ok := sub.(map[string]any); ok {
				if msg := validateNode(root, sm, v); msg != "" {
					return msg
				}
			}
		}
	}
	switch t := s["type"].(type) {
	case string:
		if !typeMatches(t, v) {
			return pyRepr(v) + " is not of type " + pyRepr(t)
		}
	case []any:
		ok := false
		for _, e := range t {
			if ts, _ := e.(string); typeMatches(ts, v) {
				ok = true
			}
		}
		if !ok {
			return pyRepr(v) + " is not of type " + joinRepr(t)
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if jsonEqual(e, v) {
				found = true
				break
			}
		}
		if !found {
			return pyRepr(v) + " is not one of " + pyRepr(enum)
		}
	}
	switch x := v.(type) {
	case string:
		n := utf8.RuneCountInString(x)
		if m, ok := s["maxLength"].(float64); ok && float64(n) > m {
			return pyRepr(v) + " is too long"
		}
		if m, ok := s["minLength"].(float64); ok && float64(n) < m {
			if n == 0 {
				return pyRepr(v) + " should be non-empty"
			}
			return pyRepr(v) + " is too short"
		}
		if p, ok := s["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(x) {
				return pyRepr(v) + " does not match " + pyRepr(p)
			}
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && x < m {
			return pyRepr(v) + " is less than the minimum of " + pyRepr(m)
		}
		if m, ok := s["maximum"].(float64); ok && x > m {
			return pyRepr(v) + " is greater than the maximum of " + pyRepr(m)
		}
	case []any:
		if m, ok := s["minItems"].(float64); ok && float64(len(x)) < m {
			return pyRepr(v) + " is too short"
		}
		if u, _ := s["uniqueItems"].(bool); u {
			for i := range x {
				for j := i + 1; j < len(x); j++ {
					if jsonEqual(x[i], x[j]) {
						return pyRepr(v) + " has non-unique elements"
					}
				}
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			for _, e := range x {
				if msg := validateNode(root, items, e); msg != "" {
					return msg
				}
			}
		}
	case map[string]any:
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if rs, _ := r.(string); rs != "" {
					if _, has := x[rs]; !has {
						return pyRepr(rs) + " is a required property"
					}
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if ap, ok := s["additionalProperties"]; ok {
			if b, isBool := ap.(bool); isBool && !b {
				var extra []string
				for _, k := range keys {
					if _, known := props[k]; !known {
						extra = append(extra, k)
					}
				}
				if len(extra) > 0 {
					verb := "were"
					if len(extra) == 1 {
						verb = "was"
					}
					parts := make([]string, len(extra))
					for i, e := range extra {
						parts[i] = pyRepr(e)
					}
					return "Additional properties are not allowed (" + strings.Join(parts, ", ") + " " + verb + " unexpected)"
				}
			}
		}
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				if msg := validateNode(root, ps, x[k]); msg != "" {
					return msg
				}
			} else if aps, ok := s["additionalProperties"].(map[string]any); ok {
				if msg := validateNode(root, aps, x[k]); msg != "" {
					return msg
				}
			}
		}
	}
	return ""
}

func joinRepr(t []any) string {
	parts := make([]string, len(t))
	for i, e := range t {
		parts[i] = pyRepr(e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func jsonEqual(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

// mdSchema returns the embedded metadef schema name, decoded.
func mdSchema(name string) schemaNode {
	var s schemaNode
	if err := json.Unmarshal(mdSchemaBody(name), &s); err != nil {
		panic("glanceapi: bad embedded metadef schema " + name) // a build defect
	}
	return s
}

// Attributes a request may not set (Glance's _disallowed_properties).
var mdReadOnly = map[string][]string{
	"namespace":    {"self", "schema", "created_at", "updated_at"},
	"object":       {"self", "schema", "created_at", "updated_at"},
	"property":     {},
	"tag":          {"self", "schema", "created_at", "updated_at"},
	"tags_request": {"self", "schema", "created_at", "updated_at"},
}

func checkReadOnly(kind string, m map[string]any) error {
	for _, k := range mdReadOnly[kind] {
		if _, ok := m[k]; ok {
			return imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is read-only.", k)
		}
	}
	return nil
}

// propertyFields are Glance's PropertyType attributes, in its order; the
// stored schema of a property keeps only these (WSME drops the rest).
var propertyFields = []string{"type", "title", "description", "operators", "default", "readonly",
	"minimum", "maximum", "enum", "pattern", "minLength", "maxLength", "confidential",
	"items", "uniqueItems", "minItems", "maxItems", "additionalItems"}

// encodeProperty renders a decoded property schema as stored: the known
// fields in Glance's order, without the name.
func encodeProperty(m map[string]any) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, f := range propertyFields {
		v, ok := m[f]
		if !ok || v == nil {
			continue
		}
		if f == "items" {
			im, _ := v.(map[string]any)
			it := map[string]any{}
			for _, k := range []string{"type", "enum"} {
				if x, ok := im[k]; ok && x != nil {
					it[k] = x
				}
			}
			v = it
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		kb, _ := json.Marshal(f)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// encodeProperties renders an object's properties (name → schema), names
// sorted.
func encodeProperties(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		pm, _ := m[k].(map[string]any)
		b.Write(encodeProperty(pm))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// decodeAssociation turns a checked association body into its type.
func decodeAssociation(m map[string]any) *imaged.MetadefResourceTypeAssociation {
	return &imaged.MetadefResourceTypeAssociation{Name: str(m, "name"), Prefix: str(m, "prefix"), PropertiesTarget: str(m, "properties_target")}
}

// decodeObject turns a checked object body into its type.
func decodeObject(m map[string]any) *imaged.MetadefObject {
	o := &imaged.MetadefObject{Name: str(m, "name"), Description: str(m, "description")}
	if r, ok := m["required"]; ok && r != nil {
		o.Required = strList(r)
	}
	if p, ok := m["properties"].(map[string]any); ok {
		o.Properties = encodeProperties(p)
	}
	return o
}

// decodeNamespaceBody checks a namespace create or update body (decoded
// JSON) and returns the input it describes.
func decodeNamespaceBody(v any) (*imaged.MetadefNamespaceInput, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("Provided object does not match schema 'namespace': %s is not of type 'object'", pyRepr(v))
	}
	if err := checkReadOnly("namespace", m); err != nil {
		return nil, err
	}
	if err := mdValidate("namespace", mdSchema("namespace"), m); err != nil {
		return nil, err
	}
	in := &imaged.MetadefNamespaceInput{Namespace: imaged.MetadefNamespace{
		Namespace: str(m, "namespace"), DisplayName: str(m, "display_name"), Description: str(m, "description"),
		Visibility: imaged.Visibility(str(m, "visibility")), Owner: str(m, "owner"),
	}}
	in.Namespace.Protected, _ = m["protected"].(bool)
	for _, a := range asList(m["resource_type_associations"]) {
		if am, ok := a.(map[string]any); ok {
			in.ResourceTypeAssociations = append(in.ResourceTypeAssociations, decodeAssociation(am))
		}
	}
	for _, o := range asList(m["objects"]) {
		if om, ok := o.(map[string]any); ok {
			in.Objects = append(in.Objects, decodeObject(om))
		}
	}
	if props, ok := m["properties"].(map[string]any); ok {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			pm, _ := props[k].(map[string]any)
			in.Properties = append(in.Properties, &imaged.MetadefProperty{Name: k, Schema: encodeProperty(pm)})
		}
	}
	for _, t := range asList(m["tags"]) {
		if tm, ok := t.(map[string]any); ok {
			in.Tags = append(in.Tags, &imaged.MetadefTag{Name: str(tm, "name")})
		}
	}
	return in, nil
}

// checkObjectProperties is Glance's second check of a created object:
// each of its properties against the property schema, name not required
// (an object update skips it).
func checkObjectProperties(m map[string]any) error {
	props, _ := m["properties"].(map[string]any)
	if len(props) == 0 {
		return nil
	}
	sch := mdSchema("property")
	sch["required"] = []any{"type", "title"}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := mdValidate("property", sch, props[k]); err != nil {
			return err
		}
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// decodeItemBody checks an object, property or tag body against its schema.
func decodeItemBody(kind string, v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("Provided object does not match schema '%s': %s is not of type 'object'", kind, pyRepr(v))
	}
	if err := checkReadOnly(kind, m); err != nil {
		return nil, err
	}
	if err := mdValidate(kind, mdSchema(kind), m); err != nil {
		return nil, err
	}
	return m, nil
}
