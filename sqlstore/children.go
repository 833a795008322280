package sqlstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// encodeChildren renders an image's tags (sorted, unique) and properties as
// the JSON copies kept on its images row.
func encodeChildren(tags []string, props map[string]string) (string, string, error) {
	t, p := "[]", "{}"
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return "", "", fmt.Errorf("sqlstore: encode tags: %w", err)
		}
		t = string(b)
	}
	if len(props) > 0 {
		b, err := json.Marshal(props) // keys come out sorted
		if err != nil {
			return "", "", fmt.Errorf("sqlstore: encode properties: %w", err)
		}
		p = string(b)
	}
	return t, p, nil
}

// jsonReader reads the simple JSON this package writes: arrays of strings
// and objects of strings. Strings with escapes (or anything unexpected)
// make it fail, and the caller falls back to encoding/json; the common
// case then costs one pass and one allocation per string, which matters
// because every listed image decodes both documents.
type jsonReader struct {
	b   []byte
	bad bool
}

func (r *jsonReader) skipSpace() {
	for len(r.b) > 0 && (r.b[0] == ' ' || r.b[0] == '\n' || r.b[0] == '\t' || r.b[0] == '\r') {
		r.b = r.b[1:]
	}
}

// next consumes c (after white space) and reports whether it was there.
func (r *jsonReader) next(c byte) bool {
	r.skipSpace()
	if len(r.b) > 0 && r.b[0] == c {
		r.b = r.b[1:]
		return true
	}
	return false
}

func (r *jsonReader) str() string {
	if !r.next('"') {
		r.bad = true
		return ""
	}
	i := bytes.IndexByte(r.b, '"')
	if i < 0 || bytes.IndexByte(r.b[:i], '\\') >= 0 || !utf8.Valid(r.b[:i]) {
		r.bad = true
		return ""
	}
	for _, c := range r.b[:i] {
		if c < 0x20 {
			r.bad = true
			return ""
		}
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

// decodeTags decodes a tags_json value (never nil).
func decodeTags(b []byte) ([]string, error) {
	out := []string{}
	r := jsonReader{b: b}
	if !r.next('[') {
		r.bad = true
	} else if !r.next(']') {
		for !r.bad {
			out = append(out, r.str())
			if r.next(']') {
				break
			}
			if !r.next(',') {
				r.bad = true
			}
		}
	}
	r.skipSpace()
	if r.bad || len(r.b) > 0 {
		out = []string{}
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &out); err != nil {
				return nil, err
			}
		}
	}
	if !slices.IsSorted(out) {
		slices.Sort(out)
	}
	return out, nil
}

// decodeProperties decodes a properties_json value (never nil).
func decodeProperties(b []byte) (map[string]string, error) {
	r := jsonReader{b: b}
	if !r.next('{') {
		return unmarshalProps(b)
	}
	out := make(map[string]string, max(1, bytes.Count(b, []byte{':'})))
	if !r.next('}') {
		for !r.bad {
			k := r.str()
			if !r.next(':') {
				r.bad = true
				break
			}
			out[k] = r.str()
			if r.next('}') {
				break
			}
			if !r.next(',') {
				r.bad = true
			}
		}
	}
	r.skipSpace()
	if r.bad || len(r.b) > 0 {
		return unmarshalProps(b)
	}
	return out, nil
}

func unmarshalProps(b []byte) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(string(b)) == "" {
		return out, nil
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
