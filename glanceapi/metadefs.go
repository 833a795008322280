package glanceapi

import (
	"embed"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// The metadef schemas, as a real Glance 25.1 serves them.
//
//go:embed metadefs_schemas/*.json
var mdSchemaFS embed.FS

func mdSchemaBody(name string) []byte {
	b, err := mdSchemaFS.ReadFile("metadefs_schemas/" + name + ".json")
	if err != nil {
		panic("glanceapi: missing embedded metadef schema " + name) // a build defect
	}
	return b
}

// metadefRoutes registers the metadata definitions API (Config.Metadefs).
func (a *api) metadefRoutes() {
	get := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodGet, h} }
	post := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodPost, h} }
	put := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodPut, h} }
	del := func(h http.HandlerFunc) methodHandler { return methodHandler{http.MethodDelete, h} }
	const ns = "/v2/metadefs/namespaces/{ns}"
	a.handle("/v2/metadefs/namespaces", get(a.mdListNamespaces), post(a.mdCreateNamespace))
	a.handle(ns, get(a.mdGetNamespace), put(a.mdUpdateNamespace), del(a.mdDeleteNamespace))
	a.handle(ns+"/objects", get(a.mdListObjects), post(a.mdCreateObject), del(a.mdDeleteObjects))
	a.handle(ns+"/objects/{name}", get(a.mdGetObject), put(a.mdUpdateObject), del(a.mdDeleteObject))
	a.handle(ns+"/properties", get(a.mdListProperties), post(a.mdCreateProperty), del(a.mdDeleteProperties))
	a.handle(ns+"/properties/{name}", get(a.mdGetProperty), put(a.mdUpdateProperty), del(a.mdDeleteProperty))
	a.handle(ns+"/tags", get(a.mdListTags), post(a.mdCreateTags), del(a.mdDeleteTags))
	a.handle(ns+"/tags/{name}", get(a.mdGetTag), post(a.mdCreateTag), put(a.mdUpdateTag), del(a.mdDeleteTag))
	a.handle("/v2/metadefs/resource_types", get(a.mdListResourceTypes))
	a.handle(ns+"/resource_types", get(a.mdListAssociations), post(a.mdAssociate))
	a.handle(ns+"/resource_types/{rt}", del(a.mdDissociate))
	for _, s := range []string{"namespace", "namespaces", "object", "objects", "property", "properties",
		"tag", "tags", "resource_type", "resource_types"} {
		body := mdSchemaBody(s)
		a.handle("/v2/schemas/metadefs/"+s, get(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, body)
		}))
	}
}

// mdBuf is a JSON object under construction, in json.dumps layout.
type mdBuf struct {
	b []byte
	n []int // members written per open object
}

func (o *mdBuf) open() *mdBuf { o.b = append(o.b, '{'); o.n = append(o.n, 0); return o }
func (o *mdBuf) close() *mdBuf {
	o.b = append(o.b, '}')
	o.n = o.n[:len(o.n)-1]
	return o
}

func (o *mdBuf) key(k string) *mdBuf {
	if o.n[len(o.n)-1] > 0 {
		o.b = append(o.b, ',', ' ')
	}
	o.n[len(o.n)-1]++
	o.b = appendKey(o.b, k)
	return o
}

func (o *mdBuf) str(k, v string) *mdBuf { o.key(k); o.b = appendPyString(o.b, v); return o }
func (o *mdBuf) optStr(k, v string) *mdBuf {
	if v != "" {
		o.str(k, v)
	}
	return o
}

func (o *mdBuf) boolean(k string, v bool) *mdBuf {
	o.key(k)
	if v {
		o.b = append(o.b, "true"...)
	} else {
		o.b = append(o.b, "false"...)
	}
	return o
}

func (o *mdBuf) time(k string, t time.Time) *mdBuf {
	if !t.IsZero() {
		o.key(k)
		o.b = appendTime(o.b, t)
	}
	return o
}

// raw appends a stored JSON document in json.dumps layout.
func (o *mdBuf) raw(k string, v json.RawMessage) *mdBuf {
	o.key(k)
	o.b = appendPyRaw(o.b, v)
	return o
}

func (o *mdBuf) strList(k string, l []string) *mdBuf {
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range l {
		if i > 0 {
			o.b = append(o.b, ',', ' ')
		}
		o.b = appendPyString(o.b, s)
	}
	o.b = append(o.b, ']')
	return o
}

// appendPyRaw re-renders compact JSON with json.dumps's separators.
func appendPyRaw(b []byte, v json.RawMessage) []byte {
	inStr := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if inStr {
			switch c {
			case '\\':
				// encoding/json escapes <, > and & for HTML; json.dumps
				// does not.
				if i+5 < len(v) && v[i+1] == 'u' {
					switch string(v[i+2 : i+6]) {
					case "003c":
						b, i = append(b, '<'), i+5
						continue
					case "003e":
						b, i = append(b, '>'), i+5
						continue
					case "0026":
						b, i = append(b, '&'), i+5
						continue
					}
				}
				if i+1 < len(v) {
					b = append(b, c, v[i+1])
					i++
					continue
				}
			case '"':
				inStr = false
			}
			b = append(b, c)
			continue
		}
		switch c {
		case '"':
			inStr = true
			b = append(b, c)
		case ',':
			b = append(b, ',', ' ')
		case ':':
			b = append(b, ':', ' ')
		case ' ', '\n', '\t', '\r':
		default:
			b = append(b, c)
		}
	}
	return b
}

func nsHref(ns string) string { return "/v2/metadefs/namespaces/" + ns }

func (o *mdBuf) association(a *imaged.MetadefResourceTypeAssociation) *mdBuf {
	o.open().str("name", a.Name).optStr("prefix", a.Prefix).optStr("properties_target", a.PropertiesTarget).
		time("created_at", a.CreatedAt).time("updated_at", a.UpdatedAt)
	return o.close()
}

func (o *mdBuf) list(k string, n int, fn func(i int)) *mdBuf {
	o.key(k)
	o.b = append(o.b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			o.b = append(o.b, ',', ' ')
		}
		fn(i)
	}
	o.b = append(o.b, ']')
	return o
}

// namespace renders a namespace's attributes (without self and schema).
func (o *mdBuf) namespace(ns *imaged.MetadefNamespace) *mdBuf {
	o.str("namespace", ns.Namespace).optStr("display_name", ns.DisplayName).optStr("description", ns.Description).
		str("visibility", string(ns.Visibility)).boolean("protected", ns.Protected).str("owner", ns.Owner).
		time("created_at", ns.CreatedAt).time("updated_at", ns.UpdatedAt)
	if as := ns.ResourceTypeAssociations; len(as) > 0 {
		o.list("resource_type_associations", len(as), func(i int) { o.association(as[i]) })
	}
	return o
}

// object renders an object; full adds timestamps, links, and an empty
// required list (Glance's show and list; its create and update echo the
// request).
func (o *mdBuf) object(ns string, obj *imaged.MetadefObject, full bool) *mdBuf {
	o.open().str("name", obj.Name)
	if obj.Required != nil || full {
		o.strList("required", obj.Required)
	}
	o.optStr("description", obj.Description)
	if len(obj.Properties) > 0 {
		o.propMap("properties", obj.Properties)
	} else if full {
		o.key("properties")
		o.b = append(o.b, '{', '}')
	}
	o.time("created_at", obj.CreatedAt).time("updated_at", obj.UpdatedAt)
	if full || !obj.CreatedAt.IsZero() {
		o.str("self", nsHref(ns)+"/objects/"+obj.Name).str("schema", "/v2/schemas/metadefs/object")
	}
	return o.close()
}

// propSchema renders a stored property schema as Glance's PropertyType
// model does: its known fields in the model's order ("name" first when
// stored), others dropped (definition files may carry more).
func (o *mdBuf) propSchema(raw json.RawMessage, name string) *mdBuf {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	o.open()
	if name != "" {
		o.str("name", name)
	} else if v, ok := m["name"]; ok {
		o.raw("name", v)
	}
	for _, f := range propertyFields {
		v, ok := m[f]
		if !ok || string(v) == "null" {
			continue
		}
		if f == "items" {
			var im map[string]json.RawMessage
			if json.Unmarshal(v, &im) == nil {
				o.key("items").open()
				for _, k := range []string{"type", "enum"} {
					if iv, ok := im[k]; ok && string(iv) != "null" {
						o.raw(k, iv)
					}
				}
				o.close()
				continue
			}
		}
		if f == "default" && len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
			// Glance's model types default as bytes: a number comes
			// back as its text.
			o.str(f, string(v))
			continue
		}
		o.raw(f, v)
	}
	return o.close()
}

// propMap renders a JSON object of name → property schema, in its order.
func (o *mdBuf) propMap(k string, raw json.RawMessage) *mdBuf {
	o.key(k).open()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				break
			}
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				break
			}
			name, _ := kt.(string)
			o.key(name)
			o.propSchema(v, "")
		}
	}
	return o.close()
}

// properties renders a name → schema object.
func (o *mdBuf) properties(k string, ps []*imaged.MetadefProperty) *mdBuf {
	o.key(k).open()
	for _, p := range ps {
		o.key(p.Name)
		o.propSchema(p.Schema, "")
	}
	return o.close()
}

// property renders one property: its name, then its schema's fields.
func (o *mdBuf) property(p *imaged.MetadefProperty) *mdBuf {
	return o.propSchema(p.Schema, p.Name)
}

func (o *mdBuf) tagNames(k string, ts []*imaged.MetadefTag) *mdBuf {
	return o.list(k, len(ts), func(i int) { o.open().str("name", ts[i].Name).close() })
}

func (o *mdBuf) tag(t *imaged.MetadefTag) *mdBuf {
	return o.open().str("name", t.Name).time("created_at", t.CreatedAt).time("updated_at", t.UpdatedAt).close()
}

func (a *api) mdWrite(w http.ResponseWriter, r *http.Request, status int, o *mdBuf) {
	writeJSON(w, r, status, o.b)
}

func (a *api) mdBody(w http.ResponseWriter, r *http.Request) (any, bool) {
	v, err := a.readJSON(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return nil, false
	}
	return v, true
}

// mdNoContent is Glance's metadef 204 (webob's default Content-Type).
func mdNoContent(w http.ResponseWriter, err error, a *api, r *http.Request) {
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeNoContent(w, true)
}

func (a *api) mdListNamespaces(w http.ResponseWriter, r *http.Request) {
	ps := multi(parseParams(r.URL.RawQuery))
	q := imaged.MetadefNamespaceQuery{SortKey: "created_at", SortDesc: true}
	rest := ps
	limitStr, hasLimit := rest.pop("limit")
	marker, _ := rest.pop("marker")
	dir, hasDir := rest.pop("sort_dir")
	if !hasDir {
		dir = "desc"
	}
	limit := int64(a.cfg.DefaultLimit)
	if hasLimit {
		n, ok := pyInt(limitStr)
		if !ok {
			// Glance's int(limit) before its own check: a 500 there.
			a.writeError(w, r, invalid("limit param must be an integer"))
			return
		}
		limit = n
	}
	if limit > int64(a.cfg.MaxLimit) {
		limit = int64(a.cfg.MaxLimit)
	}
	if key, ok := rest.pop("sort_key"); ok {
		q.SortKey = key
	}
	if dir != "asc" && dir != "desc" {
		a.writeError(w, r, invalid("Invalid sort direction: %s", dir))
		return
	}
	q.SortDesc = dir == "desc"
	if v, ok := rest.get("visibility"); ok && v != "" {
		if v != "public" && v != "private" {
			a.writeError(w, r, invalid("Invalid visibility value: %s", v))
			return
		}
		q.Visibility = imaged.Visibility(v)
	}
	if limit < 0 {
		a.writeError(w, r, invalid("limit param must be positive"))
		return
	}
	if v, ok := rest.get("resource_types"); ok && v != "" {
		q.ResourceTypes = strings.Split(v, ",")
	}
	q.Marker = marker
	q.Limit = int(limit)
	if limit == 0 {
		q.Limit = 1 // checks policy and marker as Glance does; the page is empty
	}
	list, err := a.cfg.Metadefs.ListNamespaces(r.Context(), q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if limit == 0 {
		list = nil
	}
	o := (&mdBuf{}).open()
	o.list("namespaces", len(list), func(i int) {
		o.open().namespace(list[i]).str("self", nsHref(list[i].Namespace)).str("schema", "/v2/schemas/metadefs/namespace").close()
	})
	o.str("schema", "/v2/schemas/metadefs/namespaces")
	link := lastValues(ps)
	var keep []param
	for _, p := range link {
		if p.key != "marker" {
			keep = append(keep, p)
		}
	}
	first := "/v2/metadefs/namespaces"
	if qs := encodeParams(keep); qs != "" {
		first += "?" + qs
	}
	o.str("first", first)
	if len(list) > 0 && len(list) == int(limit) {
		// Glance pops the marker and appends the new one.
		next := append(keep[:len(keep):len(keep)], param{"marker", list[len(list)-1].Namespace})
		o.str("next", "/v2/metadefs/namespaces?"+encodeParams(next))
	}
	a.mdWrite(w, r, http.StatusOK, o.close())
}

func (a *api) mdCreateNamespace(w http.ResponseWriter, r *http.Request) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return
	}
	in, err := decodeNamespaceBody(v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	d, err := a.cfg.Metadefs.CreateNamespace(r.Context(), in)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", baseURL(r)+nsHref(d.Namespace.Namespace))
	a.mdWrite(w, r, http.StatusCreated, a.mdDetail(d, false))
}

// mdDetail renders a namespace with its definitions.
func (a *api) mdDetail(d *imaged.MetadefNamespaceDetail, full bool) *mdBuf {
	ns := d.Namespace.Namespace
	o := (&mdBuf{}).open().namespace(d.Namespace)
	if len(d.Properties) > 0 {
		o.properties("properties", d.Properties)
	}
	if len(d.Objects) > 0 {
		o.list("objects", len(d.Objects), func(i int) { o.object(ns, d.Objects[i], full) })
	}
	if len(d.Tags) > 0 {
		o.tagNames("tags", d.Tags)
	}
	return o.str("self", nsHref(ns)).str("schema", "/v2/schemas/metadefs/namespace").close()
}

func (a *api) mdGetNamespace(w http.ResponseWriter, r *http.Request) {
	rt, _ := multi(parseParams(r.URL.RawQuery)).get("resource_type")
	d, err := a.cfg.Metadefs.GetNamespace(r.Context(), r.PathValue("ns"), rt)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, a.mdDetail(d, true))
}

func (a *api) mdUpdateNamespace(w http.ResponseWriter, r *http.Request) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return
	}
	in, err := decodeNamespaceBody(v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ns, err := a.cfg.Metadefs.UpdateNamespace(r.Context(), r.PathValue("ns"), &in.Namespace)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ns.ResourceTypeAssociations = nil // Glance's update answer omits them
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).open().namespace(ns).
		str("self", nsHref(ns.Namespace)).str("schema", "/v2/schemas/metadefs/namespace").close())
}

func (a *api) mdDeleteNamespace(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteNamespace(r.Context(), r.PathValue("ns")), a, r)
}

func (a *api) mdListObjects(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	list, err := a.cfg.Metadefs.ListObjects(r.Context(), ns)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	o := (&mdBuf{}).open()
	o.list("objects", len(list), func(i int) { o.object(ns, list[i], true) })
	// Sic: Glance's objects listing names its schema without the slash.
	a.mdWrite(w, r, http.StatusOK, o.str("schema", "v2/schemas/metadefs/objects").close())
}

func (a *api) mdObjectBody(w http.ResponseWriter, r *http.Request, create bool) (*imaged.MetadefObject, bool) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return nil, false
	}
	m, err := decodeItemBody("object", v)
	if err == nil && create {
		err = checkObjectProperties(m)
	}
	if err != nil {
		a.writeError(w, r, err)
		return nil, false
	}
	return decodeObject(m), true
}

func (a *api) mdCreateObject(w http.ResponseWriter, r *http.Request) {
	obj, ok := a.mdObjectBody(w, r, true)
	if !ok {
		return
	}
	ns := r.PathValue("ns")
	got, err := a.cfg.Metadefs.CreateObject(r.Context(), ns, obj)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusCreated, (&mdBuf{}).object(ns, got, false))
}

func (a *api) mdGetObject(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("ns")
	got, err := a.cfg.Metadefs.GetObject(r.Context(), ns, r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).object(ns, got, true))
}

func (a *api) mdUpdateObject(w http.ResponseWriter, r *http.Request) {
	obj, ok := a.mdObjectBody(w, r, false)
	if !ok {
		return
	}
	ns := r.PathValue("ns")
	got, err := a.cfg.Metadefs.UpdateObject(r.Context(), ns, r.PathValue("name"), obj)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).object(ns, got, false))
}

func (a *api) mdDeleteObject(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteObject(r.Context(), r.PathValue("ns"), r.PathValue("name")), a, r)
}

func (a *api) mdDeleteObjects(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteObjects(r.Context(), r.PathValue("ns")), a, r)
}

func (a *api) mdListProperties(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Metadefs.ListProperties(r.Context(), r.PathValue("ns"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).open().properties("properties", list).close())
}

func (a *api) mdPropertyBody(w http.ResponseWriter, r *http.Request) (*imaged.MetadefProperty, bool) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return nil, false
	}
	m, err := decodeItemBody("property", v)
	if err != nil {
		a.writeError(w, r, err)
		return nil, false
	}
	// Glance keeps the name inside the schema of a property made by this
	// route (not of one made with its namespace), and lists it there.
	name := str(m, "name")
	schema := encodeProperty(m)
	nb, _ := json.Marshal(name)
	full := append([]byte(`{"name":`), nb...)
	if len(schema) > 2 {
		full = append(append(full, ','), schema[1:]...)
	} else {
		full = append(full, '}')
	}
	return &imaged.MetadefProperty{Name: name, Schema: full}, true
}

func (a *api) mdCreateProperty(w http.ResponseWriter, r *http.Request) {
	p, ok := a.mdPropertyBody(w, r)
	if !ok {
		return
	}
	got, err := a.cfg.Metadefs.CreateProperty(r.Context(), r.PathValue("ns"), p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusCreated, (&mdBuf{}).property(got))
}

func (a *api) mdGetProperty(w http.ResponseWriter, r *http.Request) {
	rt, _ := multi(parseParams(r.URL.RawQuery)).get("resource_type")
	got, err := a.cfg.Metadefs.GetProperty(r.Context(), r.PathValue("ns"), r.PathValue("name"), rt)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).property(got))
}

func (a *api) mdUpdateProperty(w http.ResponseWriter, r *http.Request) {
	p, ok := a.mdPropertyBody(w, r)
	if !ok {
		return
	}
	got, err := a.cfg.Metadefs.UpdateProperty(r.Context(), r.PathValue("ns"), r.PathValue("name"), p)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).property(got))
}

func (a *api) mdDeleteProperty(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteProperty(r.Context(), r.PathValue("ns"), r.PathValue("name")), a, r)
}

func (a *api) mdDeleteProperties(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteProperties(r.Context(), r.PathValue("ns")), a, r)
}

func (a *api) mdListTags(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Metadefs.ListTags(r.Context(), r.PathValue("ns"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).open().tagNames("tags", list).close())
}

func (a *api) mdCreateTags(w http.ResponseWriter, r *http.Request) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return
	}
	m, err := decodeItemBody("tags_request", v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var names []string
	for _, t := range asList(m["tags"]) {
		if tm, ok := t.(map[string]any); ok {
			names = append(names, str(tm, "name"))
		}
	}
	appendTags := pyBoolFromString(r.Header.Get("X-Openstack-Append"))
	tags, err := a.cfg.Metadefs.CreateTags(r.Context(), r.PathValue("ns"), names, appendTags)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusCreated, (&mdBuf{}).open().tagNames("tags", tags).close())
}

// pyBoolFromString is oslo's strutils.bool_from_string (default False).
func pyBoolFromString(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true
	}
	return false
}

func (a *api) mdCreateTag(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if n := len([]rune(name)); n > 80 {
		a.writeError(w, r, invalid("Provided object does not match schema 'tag': %s is too long", pyRepr(name)))
		return
	}
	t, err := a.cfg.Metadefs.CreateTag(r.Context(), r.PathValue("ns"), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusCreated, (&mdBuf{}).tag(t))
}

func (a *api) mdGetTag(w http.ResponseWriter, r *http.Request) {
	t, err := a.cfg.Metadefs.GetTag(r.Context(), r.PathValue("ns"), r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).tag(t))
}

func (a *api) mdUpdateTag(w http.ResponseWriter, r *http.Request) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return
	}
	m, err := decodeItemBody("tag", v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t, err := a.cfg.Metadefs.UpdateTag(r.Context(), r.PathValue("ns"), r.PathValue("name"), str(m, "name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusOK, (&mdBuf{}).tag(t))
}

func (a *api) mdDeleteTag(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteTag(r.Context(), r.PathValue("ns"), r.PathValue("name")), a, r)
}

func (a *api) mdDeleteTags(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.DeleteTags(r.Context(), r.PathValue("ns")), a, r)
}

func (a *api) mdListResourceTypes(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Metadefs.ListResourceTypes(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	o := (&mdBuf{}).open()
	o.list("resource_types", len(list), func(i int) {
		o.open().str("name", list[i].Name).time("created_at", list[i].CreatedAt).time("updated_at", list[i].UpdatedAt).close()
	})
	a.mdWrite(w, r, http.StatusOK, o.close())
}

func (a *api) mdListAssociations(w http.ResponseWriter, r *http.Request) {
	list, err := a.cfg.Metadefs.ListAssociations(r.Context(), r.PathValue("ns"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	o := (&mdBuf{}).open()
	o.list("resource_type_associations", len(list), func(i int) { o.association(list[i]) })
	a.mdWrite(w, r, http.StatusOK, o.close())
}

func (a *api) mdAssociate(w http.ResponseWriter, r *http.Request) {
	v, ok := a.mdBody(w, r)
	if !ok {
		return
	}
	m, err := decodeItemBody("resource_type", v)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	got, err := a.cfg.Metadefs.Associate(r.Context(), r.PathValue("ns"), decodeAssociation(m))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.mdWrite(w, r, http.StatusCreated, (&mdBuf{}).association(got))
}

func (a *api) mdDissociate(w http.ResponseWriter, r *http.Request) {
	mdNoContent(w, a.cfg.Metadefs.Dissociate(r.Context(), r.PathValue("ns"), r.PathValue("rt")), a, r)
}
