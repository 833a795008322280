package nativeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

func invalid(format string, args ...any) error {
	return imaged.Errorf(imaged.EINVALID, format, args...)
}

// readBody reads a JSON request body, capped at MaxBodyBytes (413
// beyond). A Content-Type, when given, must be JSON (or a JSON merge
// patch, where mergePatch allows it): 415 otherwise.
func (a *api) readBody(w http.ResponseWriter, r *http.Request, mergePatch bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == mediaJSON || mergePatch && mt == mediaMergePatch) {
			want := mediaJSON
			if mergePatch {
				want = mediaMergePatch + " or " + mediaJSON
			}
			return nil, &httpError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
				msg: fmt.Sprintf("Content-Type %q is not supported here; send %s.", ct, want)}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, imaged.Errorf(imaged.ETOOLARGE, "The request body is larger than %d bytes.", a.cfg.MaxBodyBytes)
		}
		return nil, invalid("Cannot read the request body.")
	}
	return data, nil
}

// decodeStrict decodes one JSON object into dst: no unknown fields, no
// trailing data, no scalar or null in place of the object. Its errors are
// EINVALID with a message that names the problem.
func decodeStrict(data []byte, dst any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return invalid("A JSON object is required in the request body.")
	}
	if trimmed[0] != '{' {
		return invalid("The request body must be a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("Unexpected data after the JSON object in the request body.")
	}
	return nil
}

// jsonError turns a decoding error into a client-safe EINVALID.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalid("Malformed JSON in the request body at offset %d.", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return invalid("Field %q must be %s, not a JSON %s.", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return invalid("The request body must be %s, not a JSON %s.", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("Malformed JSON in the request body: it ends too early.")
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return invalid("Unknown field %s in the request body.", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return invalid("Malformed JSON in the request body.")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "a " + kind
}

// registryCreate is the body of POST /registries.
type registryCreate struct {
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Type      string   `json:"type"`
	Projects  []string `json:"projects"`
	Username  string   `json:"username"`
	Password  string   `json:"password"`
	VerifyTLS *bool    `json:"verify_tls"`
}

// decodeRegistryCreate decodes the body of POST /registries. verify_tls
// defaults to true: skipping verification must be asked for.
func decodeRegistryCreate(data []byte) (*imaged.Registry, error) {
	var b registryCreate
	if err := decodeStrict(data, &b); err != nil {
		return nil, err
	}
	if b.Name == "" {
		return nil, invalid("Field \"name\" is required.")
	}
	if b.URL == "" {
		return nil, invalid("Field \"url\" is required.")
	}
	reg := &imaged.Registry{Name: b.Name, URL: b.URL, Type: imaged.RegistryType(b.Type), Projects: b.Projects,
		Username: b.Username, Password: b.Password, VerifyTLS: true}
	if b.VerifyTLS != nil {
		reg.VerifyTLS = *b.VerifyTLS
	}
	if reg.Type == "" {
		reg.Type = imaged.RegistryOCI
	}
	if !validRegistryType(reg.Type) {
		return nil, invalid("Field \"type\" must be one of oci, harbor2, docker-hub.")
	}
	return reg, nil
}

func validRegistryType(t imaged.RegistryType) bool {
	switch t {
	case imaged.RegistryOCI, imaged.RegistryHarbor2, imaged.RegistryDockerHub:
		return true
	}
	return false
}

// fieldKind is the JSON type a merge-patch member must have.
type fieldKind int

const (
	kString        fieldKind = iota // a string
	kNullString                     // a string or null
	kBool                           // a boolean
	kStringList                     // an array of strings, or null
	kStringMap                      // an object of strings or nulls (itself a merge patch), or null
	kLimitMap                       // an object of slot → {min, max} or null, or null
	kRegistryType                   // oci, harbor2 or docker-hub
	kContainerType                  // compute, system or service
	kVisibility                     // public, private, shared, community
)

// Members a merge patch may hold, with their types. The service checks the
// values; the HTTP layer makes sure that what reaches it is well typed, so
// that a wrong type is a 400 naming the field wherever it is checked.
var (
	registryPatchFields = map[string]fieldKind{
		"url": kString, "type": kRegistryType, "projects": kStringList,
		"username": kNullString, "password": kNullString, "verify_tls": kBool,
	}
	imagePatchFields = map[string]fieldKind{
		"type": kContainerType, "labels": kStringMap, "resource_limits": kLimitMap,
		"visibility": kVisibility, "protected": kBool, "tags": kStringList,
	}
)

// decodeMergePatch decodes a JSON merge patch (RFC 7396) whose members
// must be among fields, with the types fields gives.
func decodeMergePatch(data []byte, fields map[string]fieldKind) (map[string]any, error) {
	var patch map[string]any
	if err := decodeStrict(data, &patch); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad field named is always the same
	for _, k := range keys {
		kind, ok := fields[k]
		if !ok {
			return nil, invalid("Field %q cannot be changed (or does not exist).", k)
		}
		if err := checkKind(k, kind, patch[k]); err != nil {
			return nil, err
		}
	}
	return patch, nil
}

func checkKind(name string, kind fieldKind, v any) error {
	switch kind {
	case kString:
		if _, ok := v.(string); !ok {
			return invalid("Field %q must be a string.", name)
		}
	case kNullString:
		if _, ok := v.(string); !ok && v != nil {
			return invalid("Field %q must be a string or null.", name)
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return invalid("Field %q must be a boolean.", name)
		}
	case kStringList:
		if v == nil {
			return nil
		}
		l, ok := v.([]any)
		if !ok {
			return invalid("Field %q must be an array of strings or null.", name)
		}
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return invalid("Field %q must be an array of strings or null.", name)
			}
		}
	case kStringMap:
		if v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return invalid("Field %q must be an object of strings or null.", name)
		}
		for k, e := range m {
			if _, ok := e.(string); !ok && e != nil {
				return invalid("Field %q: member %q must be a string or null.", name, k)
			}
		}
	case kLimitMap:
		if v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return invalid("Field %q must be an object of slot limits or null.", name)
		}
		for slot, e := range m {
			if e == nil {
				continue
			}
			lim, ok := e.(map[string]any)
			if !ok {
				return invalid("Field %q: slot %q must be an object {\"min\", \"max\"} or null.", name, slot)
			}
			for lk, lv := range lim {
				if lk != "min" && lk != "max" {
					return invalid("Field %q: slot %q has unknown member %q.", name, slot, lk)
				}
				if _, ok := lv.(string); !ok && lv != nil {
					return invalid("Field %q: slot %q: %q must be a string.", name, slot, lk)
				}
			}
		}
	case kRegistryType:
		s, ok := v.(string)
		if !ok || !validRegistryType(imaged.RegistryType(s)) {
			return invalid("Field %q must be one of oci, harbor2, docker-hub.", name)
		}
	case kContainerType:
		s, ok := v.(string)
		switch imaged.ContainerImageType(s) {
		case imaged.ContainerTypeCompute, imaged.ContainerTypeSystem, imaged.ContainerTypeService:
		default:
			ok = false
		}
		if !ok {
			return invalid("Field %q must be one of compute, system, service.", name)
		}
	case kVisibility:
		s, ok := v.(string)
		if !ok || !imaged.ValidVisibility(s) {
			return invalid("Field %q must be one of public, private, shared, community.", name)
		}
	}
	return nil
}

// decodeLimits decodes the body of PUT .../resource-limits: {slot: {min,
// max}}.
func decodeLimits(data []byte) (map[string]imaged.ResourceLimit, error) {
	var m map[string]imaged.ResourceLimit
	if err := decodeStrict(data, &m); err != nil {
		return nil, err
	}
	for slot, l := range m {
		if slot == "" {
			return nil, invalid("A resource slot name cannot be empty.")
		}
		if l.Min == "" && l.Max == "" {
			return nil, invalid("Slot %q needs a \"min\" or a \"max\".", slot)
		}
	}
	return m, nil
}

// referenceBody is the body of POST /container-images/scan and
// /container-images/forget.
type referenceBody struct {
	Reference    string `json:"reference"`
	Architecture string `json:"architecture"`
}

func decodeReference(data []byte) (referenceBody, error) {
	var b referenceBody
	if err := decodeStrict(data, &b); err != nil {
		return b, err
	}
	if b.Reference == "" {
		return b, invalid("Field \"reference\" is required.")
	}
	return b, nil
}

// maxBulk bounds the ids of one bulk request, so that one request cannot
// hold the service for long.
const maxBulk = 1000

func decodeBulk(data []byte) ([]string, error) {
	var b struct {
		IDs []string `json:"ids"`
	}
	if err := decodeStrict(data, &b); err != nil {
		return nil, err
	}
	if len(b.IDs) == 0 {
		return nil, invalid("Field \"ids\" must list at least one image id.")
	}
	if len(b.IDs) > maxBulk {
		return nil, invalid("Field \"ids\" may list at most %d image ids.", maxBulk)
	}
	return b.IDs, nil
}

func decodeRescan(data []byte) (string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil // the body is optional
	}
	var b struct {
		Project string `json:"project"`
	}
	if err := decodeStrict(data, &b); err != nil {
		return "", err
	}
	return b.Project, nil
}

func decodeAliasTarget(data []byte) (imaged.AliasTarget, error) {
	var b struct {
		ImageID      string `json:"image_id"`
		Reference    string `json:"reference"`
		Architecture string `json:"architecture"`
	}
	if err := decodeStrict(data, &b); err != nil {
		return imaged.AliasTarget{}, err
	}
	switch {
	case b.ImageID != "" && (b.Reference != "" || b.Architecture != ""):
		return imaged.AliasTarget{}, invalid("Give either \"image_id\" or \"reference\" (with \"architecture\"), not both.")
	case b.ImageID == "" && b.Reference == "":
		return imaged.AliasTarget{}, invalid("Field \"image_id\" or \"reference\" is required.")
	}
	return imaged.AliasTarget{ImageID: b.ImageID, Reference: b.Reference, Architecture: b.Architecture}, nil
}

// query reads the query parameters of a request, rejecting unknown and
// repeated ones (a typo would otherwise silently widen a listing).
type query struct {
	v   url.Values
	err error
}

func parseQuery(r *http.Request, allowed ...string) *query {
	v, err := url.ParseQuery(r.URL.RawQuery)
	q := &query{v: v}
	if err != nil {
		q.err = invalid("Malformed query string.")
		return q
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			q.err = invalid("Unknown query parameter %q; this endpoint takes: %s.", k, strings.Join(allowed, ", "))
			return q
		}
		if len(v[k]) > 1 {
			q.err = invalid("Query parameter %q is given more than once.", k)
			return q
		}
	}
	return q
}

func (q *query) str(name string) string { return q.v.Get(name) }

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = invalid(format, args...)
	}
}

// boolean reads true|false; nil when absent.
func (q *query) boolean(name string) *bool {
	s, ok := q.v[name]
	if !ok {
		return nil
	}
	switch s[0] {
	case "true":
		b := true
		return &b
	case "false":
		b := false
		return &b
	}
	q.fail("Query parameter %q must be true or false.", name)
	return nil
}

// limit reads a page size: def when absent, at most max (larger values
// are clamped, as Glance does).
func (q *query) limit(def, max int) int {
	s := q.v.Get("limit")
	if s == "" {
		if _, given := q.v["limit"]; given {
			q.fail("Query parameter \"limit\" must be a positive integer.")
		}
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		q.fail("Query parameter \"limit\" must be a positive integer.")
		return def
	}
	if n > max {
		n = max
	}
	return n
}

func (q *query) int64(name string) int64 {
	s, ok := q.v[name]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(s[0], 10, 64)
	if err != nil || n < 1 {
		q.fail("Query parameter %q must be a positive integer.", name)
		return 0
	}
	return n
}

// time reads an RFC 3339 time; nil when absent.
func (q *query) time(name string) *time.Time {
	s, ok := q.v[name]
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s[0])
	if err != nil {
		q.fail("Query parameter %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z.", name)
		return nil
	}
	t = t.UTC()
	return &t
}

// imageSortKeys are the keys a container image listing sorts by.
var imageSortKeys = []string{"reference", "created_at", "updated_at", "size"}

// sort reads sort=key[:asc|desc].
func (q *query) sort() (string, imaged.SortDir) {
	s, ok := q.v["sort"]
	if !ok {
		return "", ""
	}
	key, dir, _ := strings.Cut(s[0], ":")
	known := false
	for _, k := range imageSortKeys {
		known = known || k == key
	}
	if !known {
		q.fail("Sort key %q is not one of %s.", key, strings.Join(imageSortKeys, ", "))
		return "", ""
	}
	switch dir {
	case "", "asc":
		return key, imaged.Asc
	case "desc":
		return key, imaged.Desc
	}
	q.fail("Sort direction %q is not asc or desc.", dir)
	return "", ""
}
