package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// sortCol describes a sortable column: whether it can be NULL and how to
// read the marker image's value of it (nil = NULL).
type sortCol struct {
	nullable bool
	value    func(*imaged.Image) any
}

var sortCols = map[string]sortCol{
	"name":             {true, func(m *imaged.Image) any { return nullStrPtr(m.Name) }},
	"status":           {false, func(m *imaged.Image) any { return string(m.Status) }},
	"container_format": {true, func(m *imaged.Image) any { return nullStr(m.ContainerFormat) }},
	"disk_format":      {true, func(m *imaged.Image) any { return nullStr(m.DiskFormat) }},
	"size":             {true, func(m *imaged.Image) any { return nullInt(m.Size) }},
	"id":               {false, func(m *imaged.Image) any { return m.ID }},
	"created_at":       {false, func(m *imaged.Image) any { return micros(m.CreatedAt) }},
	"updated_at":       {false, func(m *imaged.Image) any { return micros(m.UpdatedAt) }},
	"visibility":       {false, func(m *imaged.Image) any { return string(m.Visibility) }},
	"owner":            {true, func(m *imaged.Image) any { return nullStr(m.Owner) }},
	"min_disk":         {false, func(m *imaged.Image) any { return m.MinDisk }},
	"min_ram":          {false, func(m *imaged.Image) any { return m.MinRAM }},
	"protected":        {false, func(m *imaged.Image) any { return m.Protected }},
	"os_hidden":        {false, func(m *imaged.Image) any { return m.OSHidden }},
	"virtual_size":     {true, func(m *imaged.Image) any { return nullInt(m.VirtualSize) }},
}

// where accumulates AND-ed conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in adds "col IN (?, ...)" for a non-empty list.
func (w *where) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	if len(vals) == 1 {
		w.add(col+" = ?", vals[0])
		return
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	w.add(col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")", args...)
}

var timeOps = map[string]string{
	imaged.OpEq: "=", imaged.OpNeq: "<>", imaged.OpGt: ">", imaged.OpGte: ">=", imaged.OpLt: "<", imaged.OpLte: "<=",
}

// normSort validates q.Sort and makes it total: default created_at desc,
// and id appended (in the last key's direction) if the caller did not end
// with it.
func normSort(in []imaged.SortKey) ([]imaged.SortKey, error) {
	if len(in) == 0 {
		return []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}, nil
	}
	out := make([]imaged.SortKey, 0, len(in)+1)
	seen := make(map[string]bool, len(in))
	for _, k := range in {
		if _, ok := sortCols[k.Key]; !ok {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid sort key: %s", k.Key)
		}
		if k.Dir == "" {
			k.Dir = imaged.Desc
		}
		if k.Dir != imaged.Asc && k.Dir != imaged.Desc {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid sort direction: %s", k.Dir)
		}
		if seen[k.Key] { // a repeated key cannot change the order
			continue
		}
		seen[k.Key] = true
		out = append(out, k)
		if k.Key == "id" { // id is unique: later keys cannot matter
			return out, nil
		}
	}
	return append(out, imaged.SortKey{Key: "id", Dir: out[len(out)-1].Dir}), nil
}

// scopeConds adds Glance's visibility rules (image_get_all) for q.Scope.
// The rules are written so that each visibility filter gets the simplest
// equivalent predicate (e.g. visibility=shared for a project is "owned or
// a member", which the planner can answer from two indexes), and so that a
// listing sorted by visibility ascending can seek past community images.
func scopeConds(w *where, q *imaged.ImageQuery, sortKeys []imaged.SortKey) error {
	p := q.Scope.ProjectID
	switch q.Visibility {
	case "":
		// Default listing: community images only when they are the
		// caller's own.
		switch {
		case p != "":
			w.add("(i.visibility <> 'community' OR i.owner = ?)", p)
		case sortKeys[0].Key == "visibility" && sortKeys[0].Dir == imaged.Asc:
			// 'community' sorts first of the four visibilities, so
			// "> 'community'" says the same as "<> 'community'" but
			// lets the walk of images_visibility start after them.
			w.add("i.visibility > 'community'")
		default:
			w.add("i.visibility <> 'community'")
		}
	case "all":
	default:
		if !imaged.ValidVisibility(q.Visibility) {
			return imaged.Errorf(imaged.EINVALID, "Invalid visibility value: %s", q.Visibility)
		}
		w.add("i.visibility = ?", q.Visibility)
	}
	if q.Scope.Admin {
		return nil
	}
	ms := q.MemberStatus
	if ms == "" {
		ms = string(imaged.MemberAccepted)
	}
	if ms != "all" && !imaged.ValidMemberStatus(ms) {
		return imaged.Errorf(imaged.EINVALID, "Invalid member_status value: %s", ms)
	}
	if p == "" {
		w.add("i.visibility IN ('public', 'community')")
		return nil
	}
	memberIn := "i.id IN (SELECT m.image_id FROM image_members m WHERE m.member = ?"
	memberArgs := []any{p}
	if ms != "all" {
		memberIn += " AND m.status = ?"
		memberArgs = append(memberArgs, ms)
	}
	memberIn += ")"
	switch imaged.Visibility(q.Visibility) {
	case imaged.VisibilityPublic, imaged.VisibilityCommunity:
		// Everyone sees these.
	case imaged.VisibilityPrivate:
		w.add("i.owner = ?", p)
	case imaged.VisibilityShared:
		// Owned or shared with p, as one id set built from two small
		// index ranges: with "owner = ? OR id IN (...)" the planner walked
		// every shared image of the catalog and tested each.
		memberSel := strings.TrimPrefix(memberIn, "i.id IN (") // keeps its ")"
		w.add("i.id IN (SELECT o.id FROM images o WHERE o.owner = ? AND o.deleted_at IS NULL UNION ALL "+memberSel,
			append([]any{p}, memberArgs...)...)
	default:
		w.add("(i.visibility IN ('public', 'community') OR i.owner = ? OR (i.visibility = 'shared' AND "+memberIn+"))",
			append([]any{p}, memberArgs...)...)
	}
	return nil
}

// cond is one SQL condition with its arguments.
type cond struct {
	sql  string
	args []any
}

// keysetAlts returns the alternatives of "strictly after the marker in
// sort order", NULL being the smallest value: alternative i says "keys
// before i equal the marker's, key i after it". first, if not empty,
// replaces key 0's own "after" test.
func keysetAlts(sortKeys []imaged.SortKey, vals []any, first string, firstArgs []any) []cond {
	var alts []cond
	var eqs []string
	var eqArgs []any
	for i, k := range sortKeys {
		col := "i." + k.Key
		v := vals[i]
		var after string
		var afterArgs []any
		switch {
		case i == 0 && first != "":
			after, afterArgs = first, firstArgs
		case k.Dir == imaged.Asc && v == nil:
			after = col + " IS NOT NULL"
		case k.Dir == imaged.Asc:
			after, afterArgs = col+" > ?", []any{v}
		case v == nil: // desc after NULL: nothing is smaller than NULL
		case sortCols[k.Key].nullable:
			after, afterArgs = "("+col+" < ? OR "+col+" IS NULL)", []any{v}
		default:
			after, afterArgs = col+" < ?", []any{v}
		}
		if after != "" {
			alts = append(alts, cond{
				"(" + strings.Join(append(append([]string(nil), eqs...), after), " AND ") + ")",
				append(append([]any(nil), eqArgs...), afterArgs...),
			})
		}
		if v == nil {
			eqs = append(eqs, col+" IS NULL")
		} else {
			eqs = append(eqs, col+" = ?")
			eqArgs = append(eqArgs, v)
		}
	}
	return alts
}

// addOr adds the disjunction of alts (false when there are none).
func (w *where) addOr(alts []cond) {
	if len(alts) == 0 {
		w.add("1 = 0")
		return
	}
	var sqls []string
	var args []any
	for _, a := range alts {
		sqls = append(sqls, a.sql)
		args = append(args, a.args...)
	}
	w.add("("+strings.Join(sqls, " OR ")+")", args...)
}

// keyset turns base into the branches that together select the rows
// after marker m, each an index range: one branch, with a redundant bound
// on the first key so that the index seeks instead of walking from the
// start; or, when the first key is nullable and the rows after the marker
// are both NULL and non-NULL on it, two branches (non-NULL part and NULL
// part, in sort order), since "key < ? OR key IS NULL" cannot seek.
func keyset(base *where, sortKeys []imaged.SortKey, m *imaged.Image) []*where {
	vals := make([]any, len(sortKeys))
	for i, k := range sortKeys {
		vals[i] = sortCols[k.Key].value(m)
	}
	k0, v0 := sortKeys[0], vals[0]
	col0 := "i." + k0.Key
	nullable0 := sortCols[k0.Key].nullable
	branch := func() *where {
		return &where{conds: append([]string(nil), base.conds...), args: append([]any(nil), base.args...)}
	}
	switch {
	case k0.Dir == imaged.Desc && v0 != nil && nullable0:
		nonNull, nulls := branch(), branch()
		nonNull.add(col0+" <= ?", v0)
		nonNull.addOr(keysetAlts(sortKeys, vals, col0+" < ?", []any{v0}))
		nulls.add(col0 + " IS NULL")
		return []*where{nonNull, nulls}
	case k0.Dir == imaged.Asc && v0 == nil:
		nulls, nonNull := branch(), branch()
		nulls.add(col0 + " IS NULL")
		nulls.addOr(keysetAlts(sortKeys, vals, "1 = 0", nil))
		nonNull.add(col0 + " IS NOT NULL")
		return []*where{nulls, nonNull}
	}
	w := branch()
	switch {
	case k0.Dir == imaged.Asc:
		w.add(col0+" >= ?", v0)
	case v0 == nil:
		w.add(col0 + " IS NULL")
	default:
		w.add(col0+" <= ?", v0)
	}
	w.addOr(keysetAlts(sortKeys, vals, "", nil))
	return []*where{w}
}

// denseTag is the number of images matching the tag filters from which a
// listing walks the sort index and probes each image's tags, instead of
// reading all the matching images' ids and sorting those images.
const denseTag = 2000

// tagConds adds the tag filters. SQLite's planner has no per-value
// statistics, so it cannot tell a rare tag (read its few images, sort
// them) from a common one (walk the sort order and keep the tagged images:
// 20 hits come after about 20·N/count rows). Counts capped at denseTag
// (index-only reads of at most denseTag entries) tell them apart. When the
// tags together match fewer than denseTag images, one subquery driven by
// the rarest tag (probing the others on image_tags, so that images rows
// are read only for real matches) yields the ids; otherwise each tag is an
// EXISTS probe on the walk. PostgreSQL gets one semi-join per tag; a
// sparse tag set is found beforehand by sparseIDs.
func (s *Store) tagConds(ctx context.Context, w *where, tags []string) error {
	tags = uniqueSorted(tags)
	if len(tags) == 0 {
		return nil
	}
	if s.d.name == Postgres {
		for _, t := range tags {
			w.add("i.id IN (SELECT t.image_id FROM image_tags t WHERE t.value = ?)", t)
		}
		return nil
	}
	count := func(query string, args ...any) (int, error) {
		n := denseTag
		err := s.stmts.query(ctx, query, append(args, denseTag), func(rows *sql.Rows) error {
			if rows.Next() {
				return rows.Scan(&n)
			}
			return rows.Err()
		})
		if err != nil {
			return 0, fmt.Errorf("sqlstore: count tag: %w", err)
		}
		return n, nil
	}
	driver, least := 0, denseTag+1
	for i, t := range tags {
		n, err := count(`SELECT count(*) FROM (SELECT 1 FROM image_tags WHERE value = ? LIMIT ?)`, t, denseTag)
		if err != nil {
			return err
		}
		if n < least {
			driver, least = i, n
		}
	}
	sel, selArgs := tagIntersection(tags, driver)
	sparse := least < denseTag
	if !sparse && len(tags) > 1 {
		// Counted as an INTERSECT of the tags' own index ranges: two
		// ordered scans, cheaper than probing every image of the
		// driving tag for the others.
		inter := strings.Repeat("SELECT image_id FROM image_tags WHERE value = ? INTERSECT ", len(tags)-1) + "SELECT image_id FROM image_tags WHERE value = ?"
		targs := make([]any, len(tags))
		for i, t := range tags {
			targs[i] = t
		}
		n, err := count("SELECT count(*) FROM ("+inter+" LIMIT ?)", targs...)
		if err != nil {
			return err
		}
		if n == 0 {
			// Common tags that no image has together: SQLite would
			// still walk the sort index through the whole catalog
			// looking for a member of the empty set (80 ms at 1M).
			w.add("0 = 1")
			return nil
		}
		sparse = n < denseTag
	}
	if sparse {
		w.add("i.id IN ("+sel+")", selArgs...)
		return nil
	}
	for _, t := range tags {
		w.add("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.value = ?)", t)
	}
	return nil
}

// tagIntersection selects the ids of the images having every tag, driven
// by tags[driver] (t) and probing the others per tagged image.
func tagIntersection(tags []string, driver int) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT t.image_id FROM image_tags t WHERE t.value = ?")
	args := []any{tags[driver]}
	for i, t := range tags {
		if i != driver {
			b.WriteString(" AND EXISTS (SELECT 1 FROM image_tags t2 WHERE t2.image_id = t.image_id AND t2.value = ?)")
			args = append(args, t)
		}
	}
	return b.String(), args
}

// renumber shifts the $n placeholders of a rebound PostgreSQL query by
// shift, for a query that repeats it with its arguments again.
func renumber(q string, shift int) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		b.WriteByte(q[i])
		if q[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(q[i+1 : j]); err == nil {
			b.WriteString(strconv.Itoa(n + shift))
			i = j - 1
		}
	}
	return b.String()
}

// tagsProbeSQL selects the live images having every tag of a JSON array,
// through images_tags_gin (PostgreSQL, migration 0008), whose expression it
// repeats.
const tagsProbeSQL = `SELECT i.id FROM images i WHERE i.deleted_at IS NULL AND (i.tags_json::jsonb) @> ?::jsonb`

// sparseIDs finds, on PostgreSQL, a filter of q that matches fewer than
// denseTag images and returns all their ids (ok false: every filter is
// dense, or q has none that the planner misjudges).
//
// PostgreSQL plans a page as either "walk the sort index and keep the
// matching rows until the limit" or "read every matching row and sort";
// which one is cheap depends on how many rows match, and for tag
// intersections (it multiplies the tags' frequencies), property pairs and
// ranges at the edge of a histogram or correlated with the sort order
// (updated_at under a created_at sort) its estimate can be off by orders of
// magnitude: an empty intersection of two common tags walked the whole
// catalog in seconds. So, as on SQLite, a capped read through each such
// filter's own index (at most denseTag+1 index entries) settles it: a
// filter with fewer matches hands its complete id set to the page query
// ("id = ANY(ids)", primary key lookups and a sort of at most denseTag
// rows); otherwise the walk is right, since a dense filter fills a page
// after a few thousand rows of the walk at most (unless the filter is
// correlated with the sort order: see docs/benchmarks-store.md).
func (s *Store) sparseIDs(ctx context.Context, q *imaged.ImageQuery, sortKeys []imaged.SortKey) ([]string, bool, error) {
	if s.d.name != Postgres || len(q.IDs) > 0 || len(q.Names) > 0 || q.Checksum != "" || q.OSHashValue != "" {
		return nil, false, nil // already a handful of rows through a unique-ish index
	}
	type probe struct {
		sql  string
		args []any
	}
	var probes []probe
	switch tags := uniqueSorted(q.Tags); len(tags) {
	case 0:
	case 1:
		probes = append(probes, probe{"SELECT t.image_id FROM image_tags t WHERE t.value = ?", []any{tags[0]}})
	default:
		// The intersection itself, through the GIN index of migration
		// 0008 (it intersects the tags' posting lists): it is never
		// larger than a tag's own set, and it is the case the planner
		// gets most wrong (it multiplies the tags' frequencies), as in
		// two common tags that no image has both of.
		all, err := json.Marshal(tags)
		if err != nil {
			return nil, false, err
		}
		probes = append(probes, probe{tagsProbeSQL, []any{string(all)}})
	}
	props := make([]string, 0, len(q.Properties))
	for k := range q.Properties {
		props = append(props, k)
	}
	sort.Strings(props)
	for _, k := range props {
		probes = append(probes, probe{"SELECT p.image_id FROM image_properties p WHERE p.name = ? AND p.value = ?", []any{k, q.Properties[k]}})
	}
	// A range on the sort's first key is the walk's own bound; any other
	// range is read in its index's order, so that the probe is a seek and
	// a scan of at most denseTag+1 entries whatever the planner believes.
	rangeProbe := func(col string, nullable bool, conds []string, args []any) {
		if len(conds) == 0 || sortKeys[0].Key == col {
			return
		}
		var order strings.Builder
		s.d.orderTerm(&order, "i."+col, false, nullable)
		probes = append(probes, probe{"SELECT i.id FROM images i WHERE i.deleted_at IS NULL AND " + strings.Join(conds, " AND ") + " ORDER BY " + order.String(), args})
	}
	var conds []string
	var args []any
	if q.SizeMin != nil {
		conds, args = append(conds, "i.size >= ?"), append(args, *q.SizeMin)
	}
	if q.SizeMax != nil {
		conds, args = append(conds, "i.size <= ?"), append(args, *q.SizeMax)
	}
	rangeProbe("size", true, conds, args)
	for _, tf := range []struct {
		col     string
		filters []imaged.TimeFilter
	}{{"created_at", q.CreatedAt}, {"updated_at", q.UpdatedAt}} {
		conds, args = nil, nil
		for _, f := range tf.filters {
			op, ok := timeOps[f.Op]
			if !ok {
				return nil, false, imaged.Errorf(imaged.EINVALID, "Invalid operator %s for %s", f.Op, tf.col)
			}
			conds, args = append(conds, "i."+tf.col+" "+op+" ?"), append(args, micros(f.Value))
		}
		rangeProbe(tf.col, false, conds, args)
	}
	// read returns the ids a probe selects, or dense. A dense filter
	// costs a scan of denseTag+1 index entries on the server and nothing
	// on the wire; the ids are gathered (as one JSON array) only when
	// there are at most denseTag of them: PostgreSQL evaluates the ELSE
	// subquery only when the CASE reaches it.
	read := func(query string, args []any) (ids []string, dense bool, err error) {
		q := s.d.rebind(query)
		text := fmt.Sprintf("SELECT CASE WHEN EXISTS (%s OFFSET %d) THEN NULL ELSE (SELECT coalesce(json_agg(p.id), '[]') FROM (%s LIMIT %d) p(id)) END",
			q, denseTag, renumber(q, len(args)), denseTag)
		err = s.stmts.query(ctx, text, append(append([]any(nil), args...), args...), func(rows *sql.Rows) error {
			var list sql.NullString
			if !rows.Next() {
				return rows.Err()
			}
			if err := rows.Scan(&list); err != nil {
				return err
			}
			if dense = !list.Valid; dense {
				return nil
			}
			return json.Unmarshal([]byte(list.String), &ids)
		})
		if err != nil {
			return nil, false, fmt.Errorf("sqlstore: probe filter: %w", err)
		}
		return ids, dense, nil
	}
	best := []string{} // never nil: pgx would send NULL, not an empty array
	found := false
	for _, p := range probes {
		ids, dense, err := read(p.sql, p.args)
		if err != nil {
			return nil, false, err
		}
		if !dense && (!found || len(ids) < len(best)) {
			best, found = append(best[:0:0], ids...), true
			if len(ids) == 0 {
				break
			}
		}
	}
	return best, found, nil
}

// listSQL builds the listing query for q (exported to tests through
// export_test.go so that EXPLAIN can look at exactly what ListImages runs).
// The page is one read of images: each row carries its tags and properties
// as JSON, so there is no per-row subquery or follow-up query.
func (s *Store) listSQL(ctx context.Context, q *imaged.ImageQuery) (string, []any, error) {
	if q.Limit <= 0 {
		return "", nil, imaged.Errorf(imaged.EINVALID, "limit must be positive")
	}
	sortKeys, err := normSort(q.Sort)
	if err != nil {
		return "", nil, err
	}
	// os_hidden is always filtered by equality (false unless asked), so
	// as a sort key it is constant: ordering by it would only make the
	// walk of images_os_hidden skip the other value's rows first.
	sortKeys = slices.DeleteFunc(sortKeys, func(k imaged.SortKey) bool { return k.Key == "os_hidden" })
	w := &where{}
	w.add("i.deleted_at IS NULL")
	if err := scopeConds(w, q, sortKeys); err != nil {
		return "", nil, err
	}
	w.in("i.id", q.IDs)
	w.in("i.name", q.Names)
	w.in("i.status", q.Statuses)
	w.in("i.owner", q.Owners)
	w.in("i.container_format", q.ContainerFormat)
	w.in("i.disk_format", q.DiskFormat)
	if q.Protected != nil {
		w.add("i.protected = ?", *q.Protected)
	}
	if q.OSHidden != nil {
		w.add("i.os_hidden = ?", *q.OSHidden)
	} else {
		w.add(s.d.notHidden)
	}
	if q.SizeMin != nil {
		w.add("i.size >= ?", *q.SizeMin)
	}
	if q.SizeMax != nil {
		w.add("i.size <= ?", *q.SizeMax)
	}
	if q.Checksum != "" {
		w.add("i.checksum = ?", q.Checksum)
	}
	if q.OSHashValue != "" {
		w.add("i.os_hash_value = ?", q.OSHashValue)
	}
	if q.OSHashAlgo != "" {
		w.add("i.os_hash_algo = ?", q.OSHashAlgo)
	}
	if q.MinDisk != nil {
		w.add("i.min_disk = ?", *q.MinDisk)
	}
	if q.MinRAM != nil {
		w.add("i.min_ram = ?", *q.MinRAM)
	}
	if q.VirtualSize != nil {
		w.add("i.virtual_size = ?", *q.VirtualSize)
	}
	if q.LeaseExpiredBefore != nil {
		// The IS NOT NULL term matches the partial index images_lease_expires
		// word for word, so both planners may use it.
		w.add("i.lease_expires IS NOT NULL")
		w.add("i.lease_expires < ?", micros(*q.LeaseExpiredBefore))
	}
	if err := s.tagConds(ctx, w, q.Tags); err != nil {
		return "", nil, err
	}
	ids, sparse, err := s.sparseIDs(ctx, q, sortKeys)
	if err != nil {
		return "", nil, err
	}
	if sparse {
		// The other filters stay: they are checked on these few rows.
		w.add("i.id = ANY(?)", ids)
	}
	if len(q.Properties) > 0 {
		names := make([]string, 0, len(q.Properties))
		for k := range q.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			w.add("i.id IN (SELECT p.image_id FROM image_properties p WHERE p.name = ? AND p.value = ?)", k, q.Properties[k])
		}
	}
	for _, f := range q.CreatedAt {
		op, ok := timeOps[f.Op]
		if !ok {
			return "", nil, imaged.Errorf(imaged.EINVALID, "Invalid operator %s for created_at", f.Op)
		}
		w.add("i.created_at "+op+" ?", micros(f.Value))
	}
	for _, f := range q.UpdatedAt {
		op, ok := timeOps[f.Op]
		if !ok {
			return "", nil, imaged.Errorf(imaged.EINVALID, "Invalid operator %s for updated_at", f.Op)
		}
		w.add("i.updated_at "+op+" ?", micros(f.Value))
	}
	branches := []*where{w}
	if q.After != nil {
		branches = keyset(w, sortKeys, q.After)
	}

	var order, outer strings.Builder
	for i, k := range sortKeys {
		if i > 0 {
			order.WriteString(", ")
			outer.WriteString(", ")
		}
		nullable := sortCols[k.Key].nullable
		s.d.orderTerm(&order, "i."+k.Key, k.Dir == imaged.Desc, nullable)
		s.d.orderTerm(&outer, k.Key, k.Dir == imaged.Desc, nullable)
	}
	var b strings.Builder
	var args []any
	if sparse {
		// A MATERIALIZED CTE is planned on its own, for all its rows and
		// without the page's LIMIT, so PostgreSQL reads the few ids by
		// primary key instead of walking the sort index in the hope of
		// meeting them early (it would when the ids are old images
		// under a newest-first sort). The keyset test and the sort
		// then apply to at most denseTag rows.
		b.WriteString("WITH m AS MATERIALIZED (SELECT ")
		b.WriteString(imageCols)
		b.WriteString(" FROM images i WHERE ")
		b.WriteString(strings.Join(w.conds, " AND "))
		b.WriteString(") SELECT * FROM m i")
		args = append(args, w.args...)
		if q.After != nil {
			var alts []cond
			for _, br := range keyset(&where{}, sortKeys, q.After) {
				alts = append(alts, cond{"(" + strings.Join(br.conds, " AND ") + ")", br.args})
			}
			var after where
			after.addOr(alts)
			b.WriteString(" WHERE ")
			b.WriteString(after.conds[0])
			args = append(args, after.args...)
		}
		b.WriteString(" ORDER BY ")
		b.WriteString(order.String())
		fmt.Fprintf(&b, " LIMIT %d", q.Limit)
		return s.d.rebind(b.String()), args, nil
	}
	page := func(w *where) {
		b.WriteString("SELECT ")
		b.WriteString(imageCols)
		b.WriteString(" FROM images i WHERE ")
		b.WriteString(strings.Join(w.conds, " AND "))
		b.WriteString(" ORDER BY ")
		b.WriteString(order.String())
		// The limit is part of the text, not a parameter: PostgreSQL's
		// generic plans would otherwise not know that a page is small.
		fmt.Fprintf(&b, " LIMIT %d", q.Limit)
		args = append(args, w.args...)
	}
	if len(branches) == 1 {
		page(branches[0])
		return s.d.rebind(b.String()), args, nil
	}
	// Each branch is an ordered index range with its own limit; the
	// union of the two pages is at most 2·limit rows to sort.
	for i, br := range branches {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT * FROM (")
		page(br)
		fmt.Fprintf(&b, ") b%d", i)
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(outer.String())
	fmt.Fprintf(&b, " LIMIT %d", q.Limit)
	return s.d.rebind(b.String()), args, nil
}

// ListImages returns at most q.Limit live images matching q in q.Sort order,
// starting after q.After.
func (s *Store) ListImages(ctx context.Context, q imaged.ImageQuery) ([]*imaged.Image, error) {
	query, args, err := s.listSQL(ctx, &q)
	if err != nil {
		return nil, err
	}
	out := make([]*imaged.Image, 0, min(q.Limit, 64))
	err = s.stmts.query(ctx, query, args, func(rows *sql.Rows) error {
		for rows.Next() {
			img, err := scanImage(rows)
			if err != nil {
				return err
			}
			out = append(out, img)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list images: %w", err)
	}
	return out, nil
}
