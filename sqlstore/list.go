package sqlstore

import (
	"context"
	"fmt"
	"sort"
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
func scopeConds(w *where, q *imaged.ImageQuery) error {
	p := q.Scope.ProjectID
	switch q.Visibility {
	case "":
		// Default listing: community images only when they are the
		// caller's own.
		if p == "" {
			w.add("i.visibility <> 'community'")
		} else {
			w.add("(i.visibility <> 'community' OR i.owner = ?)", p)
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
	memberCond := "i.visibility = 'shared' AND i.id IN (SELECT m.image_id FROM image_members m WHERE m.member = ?"
	args := []any{p, p}
	if ms != "all" {
		memberCond += " AND m.status = ?"
		args = append(args, ms)
	}
	w.add("(i.visibility IN ('public', 'community') OR i.owner = ? OR ("+memberCond+")))", args...)
	return nil
}

// keyset adds the predicate "strictly after the marker in sort order", with
// NULL as the smallest value: OR over i of (keys before i equal AND key i
// after). A redundant bound on the first key lets the index seek instead of
// walking from the start.
func keyset(w *where, sortKeys []imaged.SortKey, m *imaged.Image) {
	vals := make([]any, len(sortKeys))
	for i, k := range sortKeys {
		vals[i] = sortCols[k.Key].value(m)
	}
	var ors []string
	var args []any
	var eqs []string
	var eqArgs []any
	for i, k := range sortKeys {
		col := "i." + k.Key
		v := vals[i]
		nullable := sortCols[k.Key].nullable
		var after string
		var afterArgs []any
		switch {
		case k.Dir == imaged.Asc && v == nil:
			after = col + " IS NOT NULL"
		case k.Dir == imaged.Asc:
			after, afterArgs = col+" > ?", []any{v}
		case v == nil: // desc after NULL: nothing is smaller than NULL
		case nullable:
			after, afterArgs = "("+col+" < ? OR "+col+" IS NULL)", []any{v}
		default:
			after, afterArgs = col+" < ?", []any{v}
		}
		if after != "" {
			ors = append(ors, "("+strings.Join(append(append([]string(nil), eqs...), after), " AND ")+")")
			args = append(append(args, eqArgs...), afterArgs...)
		}
		if v == nil {
			eqs = append(eqs, col+" IS NULL")
		} else {
			eqs = append(eqs, col+" = ?")
			eqArgs = append(eqArgs, v)
		}
	}
	if len(ors) == 0 {
		w.add("1 = 0")
		return
	}
	k0, v0 := sortKeys[0], vals[0]
	col0 := "i." + k0.Key
	switch {
	case k0.Dir == imaged.Asc && v0 != nil:
		w.add(col0+" >= ?", v0)
	case k0.Dir == imaged.Desc && v0 == nil:
		w.add(col0 + " IS NULL")
	case k0.Dir == imaged.Desc && !sortCols[k0.Key].nullable:
		w.add(col0+" <= ?", v0)
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
}

// listSQL builds the listing query for q (exported to tests through
// export_test.go so that EXPLAIN can look at exactly what ListImages runs).
func (s *Store) listSQL(q *imaged.ImageQuery) (string, []any, error) {
	if q.Limit <= 0 {
		return "", nil, imaged.Errorf(imaged.EINVALID, "limit must be positive")
	}
	sortKeys, err := normSort(q.Sort)
	if err != nil {
		return "", nil, err
	}
	w := &where{}
	w.add("i.deleted_at IS NULL")
	if err := scopeConds(w, q); err != nil {
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
		w.add("i.os_hidden = ?", false)
	}
	if q.SizeMin != nil {
		w.add("i.size >= ?", *q.SizeMin)
	}
	if q.SizeMax != nil {
		w.add("i.size <= ?", *q.SizeMax)
	}
	for _, t := range uniqueSorted(q.Tags) {
		w.add("i.id IN (SELECT t.image_id FROM image_tags t WHERE t.value = ?)", t)
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
	if q.After != nil {
		keyset(w, sortKeys, q.After)
	}

	var order strings.Builder
	for i, k := range sortKeys {
		if i > 0 {
			order.WriteString(", ")
		}
		s.d.orderTerm(&order, "i."+k.Key, k.Dir == imaged.Desc)
	}
	// The inner query picks the page through the indexes; the outer one
	// adds each page row's tags and properties with correlated subqueries,
	// so children are read for the page only, in the same round trip and
	// the same snapshot (instead of one or two follow-up queries).
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(pageCols)
	b.WriteString(", ")
	b.WriteString(onPage(s.d.tagsAgg))
	b.WriteString(", ")
	b.WriteString(onPage(s.d.propsAgg))
	b.WriteString(" FROM (SELECT ")
	b.WriteString(imageCols)
	b.WriteString(" FROM images i WHERE ")
	b.WriteString(strings.Join(w.conds, " AND "))
	b.WriteString(" ORDER BY ")
	b.WriteString(order.String())
	fmt.Fprintf(&b, " LIMIT %d) pg ORDER BY ", q.Limit)
	b.WriteString(onPage(order.String()))
	return s.d.rebind(b.String()), w.args, nil
}

// pageCols are imageCols read from the derived table "pg" (the page).
var pageCols = onPage(imageCols)

// onPage rewrites references to the images alias "i." to the page alias
// "pg.". Only column prefixes contain "i." in these snippets.
func onPage(sql string) string { return strings.ReplaceAll(sql, "i.", "pg.") }

// ListImages returns at most q.Limit live images matching q in q.Sort order,
// starting after q.After.
func (s *Store) ListImages(ctx context.Context, q imaged.ImageQuery) ([]*imaged.Image, error) {
	query, args, err := s.listSQL(&q)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list images: %w", err)
	}
	defer rows.Close()
	out := make([]*imaged.Image, 0, min(q.Limit, 64))
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list images: %w", err)
		}
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list images: %w", err)
	}
	return out, nil
}
