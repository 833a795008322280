package catalog

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// uuidPattern is the pattern Glance's schema gives ids (and kernel_id,
// ramdisk_id).
const uuidPattern = `^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`

var uuidRE = regexp.MustCompile(uuidPattern)

// patternRE compiles a schema pattern; the only one Glance's schema uses
// is the UUID pattern, compiled once.
func patternRE(p string) *regexp.Regexp {
	if p == uuidPattern {
		return uuidRE
	}
	return regexp.MustCompile(p)
}

// prop is one property of Glance's draft-4 image schema, reduced to the
// keywords it uses.
type prop struct {
	types     []string // JSON types, in the schema's order ("null", "string", "integer", "boolean", "array", "object")
	enum      []any    // nil = no enum; a nil element is JSON null
	maxLength int      // 0 = none
	pattern   string   // "" = none
	items     *prop    // for arrays
}

// schema is Glance 25.1's image schema: the base properties, the custom
// properties of the schema-image.json it ships, and additional properties
// that must be strings.
type schema struct {
	props map[string]*prop
}

func newSchema(diskFormats, containerFormats []string) *schema {
	enumOf := func(vals []string) []any {
		e := []any{nil}
		for _, v := range vals {
			e = append(e, v)
		}
		return e
	}
	str := func() *prop { return &prop{types: []string{"string"}} }
	nullStr := func(max int) *prop { return &prop{types: []string{"null", "string"}, maxLength: max} }
	p := map[string]*prop{
		"id":   {types: []string{"string"}, pattern: uuidPattern},
		"name": nullStr(255),
		"status": {types: []string{"string"}, enum: []any{"queued", "saving", "active", "killed",
			"deleted", "uploading", "importing", "pending_delete", "deactivated"}},
		"visibility":       {types: []string{"string"}, enum: []any{"community", "public", "private", "shared"}},
		"protected":        {types: []string{"boolean"}},
		"os_hidden":        {types: []string{"boolean"}},
		"checksum":         nullStr(32),
		"os_hash_algo":     nullStr(64),
		"os_hash_value":    nullStr(128),
		"owner":            nullStr(255),
		"size":             {types: []string{"null", "integer"}},
		"virtual_size":     {types: []string{"null", "integer"}},
		"container_format": {types: []string{"null", "string"}, enum: enumOf(containerFormats)},
		"disk_format":      {types: []string{"null", "string"}, enum: enumOf(diskFormats)},
		"created_at":       str(),
		"updated_at":       str(),
		"tags":             {types: []string{"array"}, items: &prop{types: []string{"string"}, maxLength: 255}},
		"direct_url":       str(),
		"min_ram":          {types: []string{"integer"}},
		"min_disk":         {types: []string{"integer"}},
		"self":             str(),
		"file":             str(),
		"stores":           str(),
		"schema":           str(),
		"locations":        {types: []string{"array"}, items: &prop{types: []string{"object"}}},
		// Custom properties from the schema-image.json Glance ships.
		"kernel_id":                {types: []string{"null", "string"}, pattern: uuidPattern},
		"ramdisk_id":               {types: []string{"null", "string"}, pattern: uuidPattern},
		"instance_uuid":            str(),
		"architecture":             str(),
		"os_distro":                str(),
		"os_version":               str(),
		"description":              str(),
		"cinder_encryption_key_id": str(),
		"cinder_encryption_key_deletion_policy": {types: []string{"string"},
			enum: []any{"on_image_deletion", "do_not_delete"}},
	}
	return &schema{props: p}
}

// additional is the schema of every property the schema does not name.
var additional = &prop{types: []string{"string"}}

// validate checks one attribute against the schema and returns Glance's
// 400, whose text starts as jsonschema's does.
func (sc *schema) validate(key string, value any) error {
	p, ok := sc.props[key]
	if !ok {
		p = additional
	}
	if reason := p.check(value); reason != "" {
		return imaged.Errorf(imaged.EINVALID, "Provided object does not match schema 'image': %s", reason)
	}
	return nil
}

// validateAll checks every attribute of obj, in key order so that the
// reported error does not depend on map order.
func (sc *schema) validateAll(obj map[string]any) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := sc.validate(k, obj[k]); err != nil {
			return err
		}
	}
	return nil
}

// check returns jsonschema's message for the first keyword v fails, or "".
func (p *prop) check(v any) string {
	if !p.hasType(v) {
		quoted := make([]string, len(p.types))
		for i, t := range p.types {
			quoted[i] = "'" + t + "'"
		}
		return pyRepr(v) + " is not of type " + strings.Join(quoted, ", ")
	}
	if p.enum != nil {
		found := false
		for _, e := range p.enum {
			if e == nil && v == nil || e != nil && v != nil && e == v {
				found = true
				break
			}
		}
		if !found {
			return pyRepr(v) + " is not one of " + pyRepr(p.enum)
		}
	}
	if s, ok := v.(string); ok {
		if p.maxLength > 0 && utf8.RuneCountInString(s) > p.maxLength {
			return pyRepr(v) + " is too long"
		}
		if p.pattern != "" && !patternRE(p.pattern).MatchString(s) {
			return pyRepr(v) + " does not match " + pyRepr(p.pattern)
		}
	}
	if arr, ok := v.([]any); ok && p.items != nil {
		for _, it := range arr {
			if r := p.items.check(it); r != "" {
				return r
			}
		}
	}
	return ""
}

func (p *prop) hasType(v any) bool {
	for _, t := range p.types {
		if jsonType(v, t) {
			return true
		}
	}
	return false
}

// jsonType reports whether v (as encoding/json decodes into any) is of
// the draft-4 type t. Integers are numbers without a fractional part.
func jsonType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		switch n := v.(type) {
		case float64:
			return n == math.Trunc(n) && !math.IsInf(n, 0)
		case int, int64:
			return true
		}
		return false
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// asInt64 converts an integer-typed JSON number.
func asInt64(v any) int64 {
	switch n := v.(type) {
	case float64:
		// float64(math.MaxInt64) is 2^63, which no int64 holds.
		if n >= math.MaxInt64 || n < math.MinInt64 {
			if n > 0 {
				return math.MaxInt64
			}
			return math.MinInt64
		}
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	}
	return 0
}

// pyRepr renders a decoded JSON value as Python's repr() does, because
// Glance's messages embed Python reprs.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return pyStr(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
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
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyStr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return "<object>"
}

// pyStr is Python's repr of a str.
func pyStr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:])
		case r == utf8.RuneError || !unicode.IsPrint(r) && r > 0x7f:
			if r <= 0xff {
				b.WriteString(`\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:])
			} else if r <= 0xffff {
				b.WriteString(`\u` + strconv.FormatInt(int64(r)|0x10000, 16)[1:])
			} else {
				b.WriteString(`\U` + strconv.FormatInt(int64(r)|0x100000000, 16)[1:])
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
