package glanceapi

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/imaged/imaged"
)

var supportedOps = []string{"add", "remove", "replace"}

var (
	adjacentSlashRe = regexp.MustCompile(`/\s*?/`)
	badTildeRe      = regexp.MustCompile(`~[^01]`)
)

// pyStr formats a decoded JSON value roughly as Python's str() would, for
// messages that echo a client's value.
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// parsePatch checks the shape of a JSON-Patch body as Glance's
// RequestDeserializer.update does, with its messages, and returns the
// operations for the service. v21 selects the
// openstack-images-v2.1-json-patch syntax ({"op", "path", "value"}); the
// v2.0 syntax is {"replace": "/name", "value": ...}.
func parsePatch(body any, v21 bool) ([]imaged.PatchOp, error) {
	list, ok := body.([]any)
	if !ok {
		return nil, invalid("Request body must be a JSON array of operation objects.")
	}
	ops := make([]imaged.PatchOp, 0, len(list))
	for _, raw := range list {
		change, ok := raw.(map[string]any)
		if !ok {
			return nil, invalid("Operations must be JSON objects.")
		}
		var op string
		var rawPath any
		if v21 {
			opv := change["op"]
			if opv == nil {
				return nil, invalid("Unable to find `op` in JSON Schema change. It must be one of the following: %s.",
					strings.Join(supportedOps, ", "))
			}
			s, isStr := opv.(string)
			if !isStr || !slices.Contains(supportedOps, s) {
				return nil, invalid("Invalid operation: `%s`. It must be one of the following: %s.",
					pyStr(opv), strings.Join(supportedOps, ", "))
			}
			op = s
			if rawPath, ok = change["path"]; !ok {
				return nil, invalid("Unable to find '%s' in JSON Schema change", "path")
			}
		} else {
			for _, k := range supportedOps {
				if _, ok := change[k]; ok {
					if op != "" {
						return nil, invalid(`Operation objects must contain only one member named "add", "remove", or "replace".`)
					}
					op = k
				}
			}
			if op == "" {
				return nil, invalid(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
			}
			rawPath = change[op]
		}
		pointer, isStr := rawPath.(string)
		if !isStr {
			return nil, invalid("Pointer `%s` does not start with \"/\".", pyStr(rawPath))
		}
		parts, err := decodePointer(pointer)
		if err != nil {
			return nil, err
		}
		// Path depth: 1, except /locations/N for add and remove.
		want := 1
		if parts[0] == "locations" && op != "replace" {
			want = 2
		}
		if len(parts) != want {
			return nil, invalid("Invalid JSON pointer for this resource: '/%s'", strings.Join(parts, "/"))
		}
		value, hasValue := change["value"]
		if op != "remove" && !hasValue {
			return nil, invalid(`Operation "%s" requires a member named "value".`, op)
		}
		root := parts[0]
		if slices.Contains(readonlyProps, root) {
			return nil, imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is read-only.", root)
		}
		if slices.Contains(reservedProps, root) || strings.HasPrefix(root, reservedNS) {
			return nil, imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is reserved.", root)
		}
		p := imaged.PatchOp{Op: op, Path: encodePointer(parts), NoReplaceOnAdd: !v21}
		if op != "remove" {
			p.Value, p.HasValue = value, true
		}
		ops = append(ops, p)
	}
	return ops, nil
}

// decodePointer validates a JSON pointer as Glance does (only a limited form
// is accepted) and returns its decoded, space-trimmed tokens.
func decodePointer(pointer string) ([]string, error) {
	if !strings.HasPrefix(pointer, "/") {
		return nil, invalid("Pointer `%s` does not start with \"/\".", pointer)
	}
	if adjacentSlashRe.MatchString(pointer[1:]) {
		return nil, invalid("Pointer `%s` contains adjacent \"/\".", pointer)
	}
	if len(pointer) > 1 && strings.HasSuffix(pointer, "/") {
		return nil, invalid("Pointer `%s` end with \"/\".", pointer)
	}
	if pyStrip(pointer[1:]) == "/" {
		return nil, invalid("Pointer `%s` does not contains valid token.", pointer)
	}
	if badTildeRe.MatchString(pointer) || strings.HasSuffix(pointer, "~") {
		return nil, invalid("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", pointer)
	}
	tokens := strings.Split(strings.TrimLeft(pointer, "/"), "/")
	for i, t := range tokens {
		t = strings.ReplaceAll(t, "~1", "/")
		t = strings.ReplaceAll(t, "~0", "~")
		tokens[i] = strings.TrimFunc(t, unicode.IsSpace)
	}
	return tokens, nil
}

// encodePointer joins tokens back into an escaped JSON pointer.
func encodePointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}
