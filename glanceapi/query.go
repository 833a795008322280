package glanceapi

import (
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/imaged/imaged"
)

// param is one key=value pair of a query string, in request order.
type param struct{ key, value string }

// parseParams splits a raw query string as webob does (parse_qsl with blank
// values kept, lenient about bad escapes): repeated keys and order survive,
// which matters for tag filters, classic sort syntax and the first/next links.
func parseParams(raw string) []param {
	var ps []param
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		ps = append(ps, param{unescapeQuery(k), unescapeQuery(v)})
	}
	return ps
}

// unescapeQuery decodes + and %XX; an invalid escape is kept literally, as
// Python's unquote_plus does, instead of failing the whole request.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// multi is an ordered multi-map with webob MultiDict's semantics: pop takes
// the first occurrence, get returns the last one.
type multi []param

func (m multi) has(k string) bool {
	for _, p := range m {
		if p.key == k {
			return true
		}
	}
	return false
}

func (m multi) get(k string) (string, bool) {
	for i := len(m) - 1; i >= 0; i-- {
		if m[i].key == k {
			return m[i].value, true
		}
	}
	return "", false
}

func (m *multi) pop(k string) (string, bool) {
	for i, p := range *m {
		if p.key == k {
			*m = append((*m)[:i:i], (*m)[i+1:]...)
			return p.value, true
		}
	}
	return "", false
}

// lastValues returns each key once, in order of first appearance, with its
// last value: what Python's dict(MultiDict) gives.
func lastValues(ps []param) []param {
	out := make([]param, 0, len(ps))
	for _, p := range ps {
		found := false
		for i := range out {
			if out[i].key == p.key {
				out[i].value = p.value
				found = true
				break
			}
		}
		if !found {
			out = append(out, p)
		}
	}
	return out
}

// encodeParams is Python's urlencode (quote_plus on keys and values).
func encodeParams(ps []param) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return b.String()
}

// Glance 25.1's API accepts only these sort keys (RequestDeserializer).
var apiSortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// imageColumns are the image table's columns: Glance compares a filter on
// one of these with the column, any other key with an additional property.
var imageColumns = map[string]bool{
	"id": true, "name": true, "disk_format": true, "container_format": true, "size": true,
	"virtual_size": true, "status": true, "visibility": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "min_disk": true, "min_ram": true, "owner": true, "protected": true,
	"os_hidden": true, "created_at": true, "updated_at": true, "deleted_at": true, "deleted": true,
	"tags": true, "locations": true, "properties": true, "members": true,
}

// listQuery is a parsed GET /v2/images request.
type listQuery struct {
	q         imaged.ImageQuery
	marker    string
	hasMarker bool
	limit     int // effective page size; 0 = empty page
}

func invalid(format string, args ...any) error {
	return imaged.Errorf(imaged.EINVALID, format, args...)
}

// parseListQuery turns the query parameters of an image listing into an
// ImageQuery, checking every value in the order Glance does, with Glance's
// messages. defaultLimit and maxLimit are Glance's limit_param_default and
// api_limit_max. Every error is EINVALID.
func parseListQuery(ps []param, defaultLimit, maxLimit int) (*listQuery, error) {
	params := append(multi(nil), ps...)
	lq := &listQuery{}
	q := &lq.q
	limitStr, hasLimit := params.pop("limit")
	lq.marker, lq.hasMarker = params.pop("marker")
	memberStatus, ok := params.pop("member_status")
	if !ok {
		memberStatus = "accepted"
	}
	var tags []string
	for params.has("tag") {
		t, _ := params.pop("tag")
		tags = append(tags, pyStrip(t))
	}
	// RequestDeserializer._get_filters
	if v, _ := params.get("visibility"); v != "" {
		switch v {
		case "community", "public", "private", "shared", "all":
		default:
			return nil, invalid("Invalid visibility value: %s", v)
		}
	}
	if params.has("changes-since") {
		return nil, invalid(`The "changes-since" filter is no longer available on v2.`)
	}
	switch memberStatus {
	case "pending", "accepted", "rejected", "all":
	default:
		return nil, invalid("Invalid status: %s", memberStatus)
	}
	q.MemberStatus = memberStatus
	limit := defaultLimit
	if hasLimit {
		n, ok := pyInt(limitStr)
		if !ok {
			return nil, invalid("limit param must be an integer")
		}
		if n < 0 {
			return nil, invalid("limit param must be positive")
		}
		limit = int(min(n, int64(math.MaxInt32)))
	}
	lq.limit = min(limit, maxLimit)
	q.Limit = lq.limit
	q.Tags = tags
	sort, err := parseSort(&params)
	if err != nil {
		return nil, err
	}
	q.Sort = sort
	// ImagesController.index
	osHidden := "false"
	if v, ok := params.get("os_hidden"); ok {
		osHidden = strings.ToLower(v)
	}
	if osHidden != "true" && osHidden != "false" {
		return nil, invalid("Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", osHidden)
	}
	if params.has("os_hidden") {
		b := osHidden == "true"
		q.OSHidden = &b
	}
	if v, ok := params.get("protected"); ok {
		if v != "true" && v != "false" {
			return nil, invalid("Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", v)
		}
		b := v == "true"
		q.Protected = &b
	}
	// db.sqlalchemy.api: the remaining filters, one key at a time in order
	// of first appearance, last value winning. noMatch records a filter
	// that no image can satisfy (Glance compares the column with the raw
	// string and simply finds nothing): the answer is an empty page.
	noMatch := false
	intFilter := func(v string) *int64 {
		n, ok := sqlInteger(v)
		if !ok {
			noMatch = true
			return nil
		}
		return &n
	}
	strFilter := func(v string) string {
		if v == "" { // an unset hash is NULL, which equals nothing
			noMatch = true
		}
		return v
	}
	for _, p := range lastValues(params) {
		k, v := p.key, p.value
		switch {
		case k == "visibility":
			q.Visibility = v
		case k == "os_hidden" || k == "protected":
			// done above
		case k == "checksum":
			q.Checksum = strFilter(v)
		case k == "os_hash_value":
			q.OSHashValue = strFilter(v)
		case k == "os_hash_algo":
			q.OSHashAlgo = strFilter(v)
		case k == "min_ram":
			q.MinRAM = intFilter(v)
		case k == "min_disk":
			q.MinDisk = intFilter(v)
		case k == "virtual_size":
			q.VirtualSize = intFilter(v)
		case k == "owner":
			q.Owners = []string{v}
		case strings.HasSuffix(k, "_min") || strings.HasSuffix(k, "_max"):
			n, ok := pyInt(v)
			if !ok {
				return nil, invalid("Unable to filter on a range with a non-numeric value.")
			}
			switch k {
			case "size_min":
				q.SizeMin = &n
			case "size_max":
				q.SizeMax = &n
			default:
				return nil, invalid("Unsupported filter: %s", k)
			}
		case k == "created_at" || k == "updated_at":
			op, iso := splitFilterOp(v)
			t, err := parseISOTime(iso)
			if err != nil {
				return nil, invalid(`Bad "%s" query filter format. Use ISO 8601 DateTime notation.`, k)
			}
			switch op {
			case imaged.OpEq, imaged.OpNeq, imaged.OpGt, imaged.OpGte, imaged.OpLt, imaged.OpLte:
			default:
				return nil, invalid("Unable to filter on a unknown operator.")
			}
			tf := imaged.TimeFilter{Op: op, Value: t}
			if k == "created_at" {
				q.CreatedAt = append(q.CreatedAt, tf)
			} else {
				q.UpdatedAt = append(q.UpdatedAt, tf)
			}
		case k == "name" || k == "id" || k == "status" || k == "container_format" || k == "disk_format":
			op, val := splitFilterOp(v)
			var list []string
			switch op {
			case "in":
				list, err = splitFilterValueForQuotes(val)
				if err != nil {
					return nil, err
				}
			case "eq":
				list = []string{val}
			default:
				return nil, invalid("Unable to filter by unknown operator '%s'.", op)
			}
			switch k {
			case "name":
				q.Names = list
			case "id":
				q.IDs = list
			case "status":
				q.Statuses = list
			case "container_format":
				q.ContainerFormat = list
			default:
				q.DiskFormat = list
			}
		case k == "size":
			if n := intFilter(v); n != nil {
				q.SizeMin, q.SizeMax = n, n
			}
		case imageColumns[k]:
			// Columns the core query cannot express (deleted_at,
			// locations...): refuse rather than silently ignore.
			return nil, invalid("Unsupported filter: %s", k)
		default:
			if q.Properties == nil {
				q.Properties = make(map[string]string)
			}
			q.Properties[k] = v
		}
	}
	if noMatch {
		lq.limit = 0
	}
	return lq, nil
}

var sqlNumberRe = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)

// sqlInteger is the integer a filter value equals when compared with an
// integer column the way Glance's database compares it: the text is taken
// as a number if it looks like one (white space around, sign, decimals,
// exponent: "512", " 512", "512.0", "5.12e2"), and only an integral value
// can be equal. ok is false when no integer equals v ("abc", "", "1.5",
// "1_0", "0x200", beyond int64).
func sqlInteger(v string) (n int64, ok bool) {
	v = strings.Trim(v, " \t\n\v\f\r")
	if !sqlNumberRe.MatchString(v) {
		return 0, false
	}
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// parseSort handles both sort syntaxes and removes their parameters from
// params (they are not filters).
func parseSort(params *multi) ([]imaged.SortKey, error) {
	var keys, dirs []string
	if params.has("sort") {
		if params.has("sort_key") || params.has("sort_dir") {
			return nil, invalid("Old and new sorting syntax cannot be combined")
		}
		s, _ := params.pop("sort")
		for _, sp := range strings.Split(pyStrip(s), ",") {
			k, d, _ := strings.Cut(sp, ":")
			if d == "" {
				d = "desc"
			}
			if err := validSortKey(pyStrip(k)); err != nil {
				return nil, err
			}
			if err := validSortDir(pyStrip(d)); err != nil {
				return nil, err
			}
			keys = append(keys, pyStrip(k))
			dirs = append(dirs, pyStrip(d))
		}
	} else {
		for params.has("sort_key") {
			k, _ := params.pop("sort_key")
			if err := validSortKey(pyStrip(k)); err != nil {
				return nil, err
			}
			keys = append(keys, pyStrip(k))
		}
		for params.has("sort_dir") {
			d, _ := params.pop("sort_dir")
			if err := validSortDir(pyStrip(d)); err != nil {
				return nil, err
			}
			dirs = append(dirs, pyStrip(d))
		}
		if len(dirs) > 1 && len(dirs) != len(keys) {
			return nil, invalid("Number of sort dirs does not match the number of sort keys")
		}
	}
	if len(keys) == 0 {
		keys = []string{"created_at"}
	}
	if len(dirs) == 0 {
		dirs = []string{"desc"}
	}
	out := make([]imaged.SortKey, len(keys))
	for i, k := range keys {
		d := dirs[0] // one direction applies to every key
		if len(dirs) == len(keys) {
			d = dirs[i]
		}
		out[i] = imaged.SortKey{Key: k, Dir: imaged.SortDir(d)}
	}
	return out, nil
}

func validSortKey(k string) error {
	for _, a := range apiSortKeys {
		if a == k {
			return nil
		}
	}
	return invalid("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(apiSortKeys, ", "))
}

func validSortDir(d string) error {
	if d != "asc" && d != "desc" {
		return invalid("Invalid sort direction: %s", d)
	}
	return nil
}

// pyStrip is Python's str.strip(): Unicode white space at both ends.
func pyStrip(s string) string { return strings.TrimFunc(s, unicode.IsSpace) }

// pyInt parses an integer as Python's int() does for a string: white space
// around, an optional sign, digits with single underscores between them
// (ASCII digits only; Python would also take other Unicode digits).
// Values beyond int64 saturate (Glance caps the limit anyway).
func pyInt(s string) (int64, bool) {
	s = pyStrip(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return 0, false
	}
	var n int64
	prevUnderscore := false
	for _, c := range s {
		if c == '_' {
			if prevUnderscore {
				return 0, false
			}
			prevUnderscore = true
			continue
		}
		prevUnderscore = false
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// splitFilterOp is Glance's split_filter_op: "op:value", except that a
// value which is an ISO 8601 time as a whole means equality.
func splitFilterOp(expr string) (op, value string) {
	left, right, found := strings.Cut(expr, ":")
	if !found {
		return "eq", expr
	}
	if _, err := parseISOTime(expr); err == nil {
		return "eq", expr
	}
	return left, right
}

var filterValueRe = regexp.MustCompile(`"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,`)

// splitFilterValueForQuotes splits the list of an "in:" filter by commas,
// honouring double quotes (Glance's split_filter_value_for_quotes).
func splitFilterValueForQuotes(v string) ([]string, error) {
	open := true
	for i := 0; i < len(v); i++ {
		if v[i] != '"' {
			continue
		}
		if i > 0 && v[i-1] == '\\' {
			continue
		}
		if open {
			if i > 0 && v[i-1] != ',' {
				return nil, invalid("Invalid filter value %s. There is no comma before opening quotation mark.", v)
			}
		} else if i+1 != len(v) && v[i+1] != ',' {
			return nil, invalid("Invalid filter value %s. There is no comma after closing quotation mark.", v)
		}
		open = !open
	}
	if !open {
		return nil, invalid("Invalid filter value %s. The quote is not closed.", v)
	}
	ms := filterValueRe.FindAllStringSubmatch(v, -1)
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if m[1] != "" {
			out = append(out, m[1])
		} else {
			out = append(out, m[2])
		}
	}
	return out, nil
}

var isoRe = regexp.MustCompile(`^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?` +
	`(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?)?` +
	`\s*(Z|[+-]\d{2}(?::?\d{2})?)?$`)

// parseISOTime parses an ISO 8601 date-time as oslo's parse_isotime (the
// iso8601 library): dates alone, basic or extended format, optional
// fraction and offset; no offset means UTC. The result is in UTC.
func parseISOTime(s string) (time.Time, error) {
	m := isoRe.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, invalid("bad time %q", s)
	}
	num := func(x string, def int) int {
		if x == "" {
			return def
		}
		n, _ := strconv.Atoi(x)
		return n
	}
	year, month, day := num(m[1], 0), num(m[2], 1), num(m[3], 1)
	hour, minute, sec := num(m[4], 0), num(m[5], 0), num(m[6], 0)
	nsec := 0
	if f := m[7]; f != "" {
		if len(f) > 9 {
			f = f[:9]
		}
		nsec = num(f+strings.Repeat("0", 9-len(f)), 0)
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, invalid("bad time %q", s)
	}
	loc := time.UTC
	if tz := m[8]; tz != "" && tz != "Z" {
		digits := strings.ReplaceAll(tz[1:], ":", "")
		oh, om := num(digits[:2], 0), 0
		if len(digits) > 2 {
			om = num(digits[2:], 0)
		}
		if oh > 23 || om > 59 {
			return time.Time{}, invalid("bad time %q", s)
		}
		off := oh*3600 + om*60
		if tz[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 31 February and friends
		return time.Time{}, invalid("bad time %q", s)
	}
	return t.UTC(), nil
}
