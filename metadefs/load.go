package metadefs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/imaged/imaged"
)

// fileNamespace is a definitions file in Glance's format (etc/metadefs/*.json).
type fileNamespace struct {
	Namespace                string          `json:"namespace"`
	DisplayName              string          `json:"display_name"`
	Description              string          `json:"description"`
	Visibility               string          `json:"visibility"`
	Protected                bool            `json:"protected"`
	Owner                    string          `json:"owner"`
	ResourceTypeAssociations []fileAssoc     `json:"resource_type_associations"`
	Properties               json.RawMessage `json:"properties"`
	Objects                  []fileObject    `json:"objects"`
	Tags                     []struct {
		Name string `json:"name"`
	} `json:"tags"`
}

type fileAssoc struct {
	Name             string `json:"name"`
	Prefix           string `json:"prefix"`
	PropertiesTarget string `json:"properties_target"`
}

type fileObject struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Required    []string        `json:"required"`
	Properties  json.RawMessage `json:"properties"`
}

// ParseFile decodes a definitions file. Property schemas are kept as the
// file has them (glance-manage db_load_metadefs stores them unfiltered).
// Errors are EINVALID and name what is wrong.
func ParseFile(data []byte) (*imaged.MetadefNamespaceInput, error) {
	var f fileNamespace
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "not a metadata definitions file: %v", err)
	}
	if dec.More() {
		return nil, imaged.Errorf(imaged.EINVALID, "not a metadata definitions file: data after the namespace object")
	}
	if f.Namespace == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "no namespace name")
	}
	if len([]rune(f.Namespace)) > 80 {
		return nil, imaged.Errorf(imaged.EINVALID, "namespace name %.20q... is longer than 80 characters", f.Namespace)
	}
	vis := imaged.Visibility(f.Visibility)
	switch vis {
	case "":
		vis = imaged.VisibilityPrivate
	case imaged.VisibilityPublic, imaged.VisibilityPrivate:
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: visibility %q is neither public nor private", f.Namespace, f.Visibility)
	}
	owner := f.Owner
	if owner == "" {
		owner = "admin" // glance-manage's default
	}
	in := &imaged.MetadefNamespaceInput{Namespace: imaged.MetadefNamespace{
		Namespace: f.Namespace, DisplayName: f.DisplayName, Description: f.Description,
		Visibility: vis, Protected: f.Protected, Owner: owner,
	}}
	for _, a := range f.ResourceTypeAssociations {
		if a.Name == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: a resource type association without name", f.Namespace)
		}
		in.ResourceTypeAssociations = append(in.ResourceTypeAssociations,
			&imaged.MetadefResourceTypeAssociation{Name: a.Name, Prefix: a.Prefix, PropertiesTarget: a.PropertiesTarget})
	}
	props, err := schemaMap(f.Namespace, "properties", f.Properties)
	if err != nil {
		return nil, err
	}
	for _, p := range props {
		in.Properties = append(in.Properties, &imaged.MetadefProperty{Name: p.name, Schema: p.schema})
	}
	seen := map[string]bool{}
	for _, o := range f.Objects {
		if o.Name == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: an object without name", f.Namespace)
		}
		if seen[o.Name] {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: object %s twice", f.Namespace, o.Name)
		}
		seen[o.Name] = true
		if _, err := schemaMap(f.Namespace, "object "+o.Name, o.Properties); err != nil {
			return nil, err
		}
		var compact bytes.Buffer
		if len(o.Properties) > 0 && string(o.Properties) != "null" {
			_ = json.Compact(&compact, o.Properties)
		}
		obj := &imaged.MetadefObject{Name: o.Name, Description: o.Description, Required: o.Required}
		if compact.Len() > 0 {
			obj.Properties = compact.Bytes()
		}
		in.Objects = append(in.Objects, obj)
	}
	tags := map[string]bool{}
	for _, t := range f.Tags {
		if t.Name == "" || tags[t.Name] {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: empty or repeated tag %q", f.Namespace, t.Name)
		}
		tags[t.Name] = true
		in.Tags = append(in.Tags, &imaged.MetadefTag{Name: t.Name})
	}
	return in, nil
}

type namedSchema struct {
	name   string
	schema json.RawMessage
}

// schemaMap decodes a name → property schema object in file order, each
// schema compacted; every schema must be a JSON object.
func schemaMap(ns, what string, raw json.RawMessage) ([]namedSchema, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	m, keys, err := decodeOrdered(raw)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: %s is not a JSON object", ns, what)
	}
	out := make([]namedSchema, 0, len(keys))
	for _, k := range keys {
		v := bytes.TrimSpace(m[k])
		if len(v) == 0 || v[0] != '{' {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: %s: property %s is not a JSON object", ns, what, k)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, imaged.Errorf(imaged.EINVALID, "namespace %s: %s: property %s: %v", ns, what, k, err)
		}
		out = append(out, namedSchema{k, c.Bytes()})
	}
	return out, nil
}

// LoadResult says what Load did with one file.
type LoadResult struct {
	File      string
	Namespace string
	Created   bool // false: it existed and was left alone
}

// Load imports every *.json definitions file of dir, in name order, as
// glance-manage db_load_metadefs does: a namespace that already exists is
// skipped. It is an operator's tool: no policy applies. A bad file stops
// the load with an error naming it (files before it stay loaded).
func (s *Service) Load(ctx context.Context, dir string) ([]LoadResult, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "cannot read %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	var out []LoadResult
	for _, n := range names {
		path := filepath.Join(dir, n)
		data, err := os.ReadFile(path)
		if err != nil {
			return out, imaged.Errorf(imaged.EINVALID, "cannot read %s: %v", path, err)
		}
		in, err := ParseFile(data)
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		res := LoadResult{File: path, Namespace: in.Namespace.Namespace}
		if _, err := s.store.GetMetadefNamespace(ctx, in.Namespace.Namespace); err == nil {
			out = append(out, res)
			continue
		} else if imaged.ErrorCode(err) != imaged.ENOTFOUND {
			return out, err
		}
		if _, err := s.create(ctx, in, true); err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		res.Created = true
		out = append(out, res)
	}
	return out, nil
}
