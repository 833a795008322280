package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imaged/imaged"
)

var _ imaged.MetadefStore = (*Store)(nil)

const nsCols = `n.id, n.namespace, n.display_name, n.description, n.visibility, n.protected, n.owner, n.created_at, n.updated_at`

// Glance's messages for missing metadefs (glance.common.exception).
func nsNotFound(name string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "Metadata definition namespace=%s was not found.", name)
}

func itemNotFound(kind imaged.MetadefKind, _, name string) error {
	switch kind {
	case imaged.MetadefObjectKind:
		return imaged.Errorf(imaged.ENOTFOUND, "Could not find metadata object %s", name)
	case imaged.MetadefPropertyKind:
		return imaged.Errorf(imaged.ENOTFOUND, "Could not find property %s", name)
	}
	return imaged.Errorf(imaged.ENOTFOUND, "Could not find metadata tag %s", name)
}

func itemDuplicate(kind imaged.MetadefKind, ns, name string) error {
	switch kind {
	case imaged.MetadefObjectKind:
		return imaged.Errorf(imaged.ECONFLICT, "A metadata definition object with name=%s already exists in namespace=%s.", name, ns)
	case imaged.MetadefPropertyKind:
		return imaged.Errorf(imaged.ECONFLICT, "A metadata definition property with name=%s already exists in namespace=%s.", name, ns)
	}
	return imaged.Errorf(imaged.ECONFLICT, "A metadata tag with name=%s already exists in namespace=%s. (Please note that metadata tag names are case insensitive).", name, ns)
}

// mdIdentityPKeys are the primary keys PostgreSQL fills from identity
// sequences.
var mdIdentityPKeys = map[string]bool{"metadef_namespaces_pkey": true, "metadef_items_pkey": true, "metadef_resource_types_pkey": true}

// mdStaleIdentity reports whether err is PostgreSQL refusing an id its
// identity sequence handed out: rows copied in with their ids (Copy) left
// the sequence behind.
func mdStaleIdentity(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && mdIdentityPKeys[pe.ConstraintName]
}

// mdRetry runs fn, and once more after moving the identity sequences past
// the highest ids when fn failed on a stale one.
func (s *Store) mdRetry(ctx context.Context, fn func() error) error {
	err := fn()
	if s.d.name != Postgres || !mdStaleIdentity(err) {
		return err
	}
	for _, t := range []string{"metadef_namespaces", "metadef_items", "metadef_resource_types"} {
		if _, serr := s.w.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM `+t+`), false)`); serr != nil {
			return fmt.Errorf("sqlstore: resync %s ids: %w", t, serr)
		}
	}
	return fn()
}

// metadefUnique reports whether err is a unique-constraint violation (a
// duplicate name, not a stale identity).
func metadefUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && !mdIdentityPKeys[pe.ConstraintName]
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// mdTime maps the zero time ("never", e.g. updated_at of a loaded
// definition) to NULL.
func mdTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func mdFromNull(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

type nsRow struct {
	id int64
	ns *imaged.MetadefNamespace
}

func scanNamespace(sc rowScanner) (nsRow, error) {
	var (
		n        imaged.MetadefNamespace
		id       int64
		dn, desc sql.NullString
		vis      string
		created  int64
		u        sql.NullInt64
	)
	if err := sc.Scan(&id, &n.Namespace, &dn, &desc, &vis, &n.Protected, &n.Owner, &created, &u); err != nil {
		return nsRow{}, err
	}
	n.DisplayName, n.Description, n.Visibility = dn.String, desc.String, imaged.Visibility(vis)
	n.CreatedAt, n.UpdatedAt = fromMicros(created), mdFromNull(u)
	return nsRow{id, &n}, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// nsID returns the id of a namespace, ENOTFOUND if missing.
func (s *Store) nsID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM metadef_namespaces WHERE namespace = ?`), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nsNotFound(name)
	} else if err != nil {
		return 0, fmt.Errorf("sqlstore: namespace %s: %w", name, err)
	}
	return id, nil
}

// associations returns the resource type associations of the namespaces
// ids, in association order.
func (s *Store) associations(ctx context.Context, q querier, ids []int64) (map[int64][]*imaged.MetadefResourceTypeAssociation, error) {
	out := map[int64][]*imaged.MetadefResourceTypeAssociation{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, s.d.rebind(`SELECT a.namespace_id, r.name, a.prefix, a.properties_target, a.created_at, a.updated_at
		FROM metadef_namespace_resource_types a JOIN metadef_resource_types r ON r.id = a.resource_type_id
		WHERE a.namespace_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY a.created_at, r.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: associations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id          int64
			a           imaged.MetadefResourceTypeAssociation
			prefix, tgt sql.NullString
			created     int64
			upd         sql.NullInt64
		)
		if err := rows.Scan(&id, &a.Name, &prefix, &tgt, &created, &upd); err != nil {
			return nil, fmt.Errorf("sqlstore: associations: %w", err)
		}
		a.Prefix, a.PropertiesTarget = prefix.String, tgt.String
		a.CreatedAt, a.UpdatedAt = fromMicros(created), mdFromNull(upd)
		out[id] = append(out[id], &a)
	}
	return out, rows.Err()
}

// CreateMetadefNamespace implements imaged.MetadefStore.
func (s *Store) CreateMetadefNamespace(ctx context.Context, ns *imaged.MetadefNamespace) error {
	return s.mdRetry(ctx, func() error { return s.createNamespace(ctx, ns) })
}

func (s *Store) createNamespace(ctx context.Context, ns *imaged.MetadefNamespace) error {
	_, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO metadef_namespaces
		(namespace, display_name, description, visibility, protected, owner, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		ns.Namespace, nullStr(ns.DisplayName), nullStr(ns.Description), string(ns.Visibility), ns.Protected, ns.Owner,
		ns.CreatedAt.UnixMicro(), mdTime(ns.UpdatedAt))
	if metadefUnique(err) {
		return imaged.Errorf(imaged.ECONFLICT, "The metadata definition namespace=%s already exists.", ns.Namespace)
	} else if err != nil {
		return fmt.Errorf("sqlstore: create namespace: %w", err)
	}
	return nil
}

// GetMetadefNamespace implements imaged.MetadefStore.
func (s *Store) GetMetadefNamespace(ctx context.Context, name string) (*imaged.MetadefNamespace, error) {
	row, err := scanNamespace(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+nsCols+` FROM metadef_namespaces n WHERE n.namespace = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nsNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get namespace: %w", err)
	}
	as, err := s.associations(ctx, s.r, []int64{row.id})
	if err != nil {
		return nil, err
	}
	row.ns.ResourceTypeAssociations = as[row.id]
	return row.ns, nil
}

// nsSortCols are the sortable namespace columns (Glance's model columns).
var nsSortCols = map[string]string{
	"namespace": "n.namespace", "display_name": "n.display_name", "description": "n.description",
	"visibility": "n.visibility", "protected": "n.protected", "owner": "n.owner",
	"created_at": "n.created_at", "updated_at": "n.updated_at", "id": "n.id",
}

// ListMetadefNamespaces implements imaged.MetadefStore: keyset pagination
// over (sort key, created_at, id) in one direction, as oslo.db's
// paginate_query.
func (s *Store) ListMetadefNamespaces(ctx context.Context, q imaged.MetadefNamespaceQuery) ([]*imaged.MetadefNamespace, error) {
	key := q.SortKey
	if key == "" {
		key = "created_at"
	}
	col, ok := nsSortCols[key]
	if !ok {
		return nil, imaged.Errorf(imaged.EINVALID, "Invalid sort key: %s", key)
	}
	var where []string
	var args []any
	switch {
	case q.ScopeNone:
		where = append(where, `n.visibility = 'public'`)
	case q.Scope != "":
		where = append(where, `(n.owner = ? OR n.visibility = 'public')`)
		args = append(args, q.Scope)
	}
	if q.Visibility != "" {
		where = append(where, `n.visibility = ?`)
		args = append(args, string(q.Visibility))
	}
	if len(q.ResourceTypes) > 0 {
		where = append(where, `n.id IN (SELECT a.namespace_id FROM metadef_namespace_resource_types a JOIN metadef_resource_types r ON r.id = a.resource_type_id WHERE r.name IN (?`+strings.Repeat(",?", len(q.ResourceTypes)-1)+`))`)
		for _, rt := range q.ResourceTypes {
			args = append(args, rt)
		}
	}
	keys := []string{col}
	for _, k := range []string{"n.created_at", "n.id"} {
		if k != col {
			keys = append(keys, k)
		}
	}
	if q.Marker != "" {
		m, err := scanNamespace(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+nsCols+` FROM metadef_namespaces n WHERE n.namespace = ?`), q.Marker))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nsNotFound(q.Marker)
		} else if err != nil {
			return nil, fmt.Errorf("sqlstore: marker: %w", err)
		}
		vals := map[string]any{
			"n.namespace": m.ns.Namespace, "n.display_name": nullStr(m.ns.DisplayName), "n.description": nullStr(m.ns.Description),
			"n.visibility": string(m.ns.Visibility), "n.protected": m.ns.Protected, "n.owner": m.ns.Owner,
			"n.created_at": m.ns.CreatedAt.UnixMicro(), "n.updated_at": mdTime(m.ns.UpdatedAt), "n.id": m.id,
		}
		op := ">"
		if q.SortDesc {
			op = "<"
		}
		// (k1 op v1) OR (k1 = v1 AND k2 op v2) OR ...; NULL sorts first
		// (as MySQL does), so it is written out for the nullable columns.
		var ors []string
		for i, k := range keys {
			var ands []string
			for _, prev := range keys[:i] {
				if vals[prev] == nil {
					ands = append(ands, prev+` IS NULL`)
				} else {
					ands = append(ands, prev+` = ?`)
					args = append(args, vals[prev])
				}
			}
			v := vals[k]
			switch {
			case v == nil && !q.SortDesc:
				ands = append(ands, k+` IS NOT NULL`)
			case v == nil:
				continue // nothing sorts below NULL
			case q.SortDesc:
				ands = append(ands, `(`+k+` `+op+` ? OR `+k+` IS NULL)`)
				args = append(args, v)
			default:
				ands = append(ands, k+` `+op+` ?`)
				args = append(args, v)
			}
			ors = append(ors, `(`+strings.Join(ands, ` AND `)+`)`)
		}
		if len(ors) == 0 {
			return nil, nil
		}
		where = append(where, `(`+strings.Join(ors, ` OR `)+`)`)
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + nsCols + ` FROM metadef_namespaces n`)
	if len(where) > 0 {
		b.WriteString(` WHERE ` + strings.Join(where, ` AND `))
	}
	b.WriteString(` ORDER BY `)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		nullable := k == "n.display_name" || k == "n.description" || k == "n.updated_at"
		s.d.orderTerm(&b, k, q.SortDesc, nullable)
	}
	if q.Limit > 0 {
		fmt.Fprintf(&b, ` LIMIT %d`, q.Limit)
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list namespaces: %w", err)
	}
	defer rows.Close()
	var out []*imaged.MetadefNamespace
	var ids []int64
	for rows.Next() {
		row, err := scanNamespace(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list namespaces: %w", err)
		}
		out = append(out, row.ns)
		ids = append(ids, row.id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list namespaces: %w", err)
	}
	as, err := s.associations(ctx, s.r, ids)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		out[i].ResourceTypeAssociations = as[id]
	}
	return out, nil
}

// UpdateMetadefNamespace implements imaged.MetadefStore.
func (s *Store) UpdateMetadefNamespace(ctx context.Context, name string, ns *imaged.MetadefNamespace) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind(`UPDATE metadef_namespaces SET namespace = ?, display_name = ?, description = ?,
		visibility = ?, protected = ?, owner = ?, updated_at = ? WHERE namespace = ?`),
		ns.Namespace, nullStr(ns.DisplayName), nullStr(ns.Description), string(ns.Visibility), ns.Protected, ns.Owner,
		mdTime(ns.UpdatedAt), name)
	if metadefUnique(err) {
		return imaged.Errorf(imaged.ECONFLICT, "The metadata definition namespace=%s already exists.", ns.Namespace)
	} else if err != nil {
		return fmt.Errorf("sqlstore: update namespace: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nsNotFound(name)
	}
	return nil
}

// DeleteMetadefNamespace implements imaged.MetadefStore.
func (s *Store) DeleteMetadefNamespace(ctx context.Context, name string) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, name)
		if err != nil {
			return err
		}
		// Children first: not every deployment's SQLite enforces the
		// cascade (foreign_keys is a per-connection pragma).
		for _, q := range []string{
			`DELETE FROM metadef_items WHERE namespace_id = ?`,
			`DELETE FROM metadef_namespace_resource_types WHERE namespace_id = ?`,
			`DELETE FROM metadef_namespaces WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.d.rebind(q), id); err != nil {
				return fmt.Errorf("sqlstore: delete namespace: %w", err)
			}
		}
		return nil
	})
}

// metadefTx runs fn in a write transaction.
func (s *Store) metadefTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

func nullData(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// CreateMetadefItems implements imaged.MetadefStore.
func (s *Store) CreateMetadefItems(ctx context.Context, ns string, kind imaged.MetadefKind, items []*imaged.MetadefItem, replace bool) error {
	return s.mdRetry(ctx, func() error { return s.createItems(ctx, ns, kind, items, replace) })
}

func (s *Store) createItems(ctx context.Context, ns string, kind imaged.MetadefKind, items []*imaged.MetadefItem, replace bool) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		if replace {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ?`), id, string(kind)); err != nil {
				return fmt.Errorf("sqlstore: replace %s: %w", kind, err)
			}
		}
		for _, it := range items {
			_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO metadef_items (namespace_id, kind, name, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
				id, string(kind), it.Name, nullData(it.Data), it.CreatedAt.UnixMicro(), mdTime(it.UpdatedAt))
			if metadefUnique(err) {
				return itemDuplicate(kind, ns, it.Name)
			} else if err != nil {
				return fmt.Errorf("sqlstore: create %s: %w", kind, err)
			}
		}
		return nil
	})
}

func scanItem(sc rowScanner, kind imaged.MetadefKind) (*imaged.MetadefItem, error) {
	var (
		it   = imaged.MetadefItem{Kind: kind}
		data sql.NullString
		c    int64
		upd  sql.NullInt64
	)
	if err := sc.Scan(&it.Name, &data, &c, &upd); err != nil {
		return nil, err
	}
	if data.Valid {
		it.Data = []byte(data.String)
	}
	it.CreatedAt, it.UpdatedAt = fromMicros(c), mdFromNull(upd)
	return &it, nil
}

// GetMetadefItem implements imaged.MetadefStore.
func (s *Store) GetMetadefItem(ctx context.Context, ns string, kind imaged.MetadefKind, name string) (*imaged.MetadefItem, error) {
	id, err := s.nsID(ctx, s.r, ns)
	if err != nil {
		return nil, err
	}
	it, err := scanItem(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT name, data, created_at, updated_at FROM metadef_items WHERE namespace_id = ? AND kind = ? AND name = ?`),
		id, string(kind), name), kind)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, itemNotFound(kind, ns, name)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get %s: %w", kind, err)
	}
	return it, nil
}

// ListMetadefItems implements imaged.MetadefStore.
func (s *Store) ListMetadefItems(ctx context.Context, ns string, kind imaged.MetadefKind) ([]*imaged.MetadefItem, error) {
	id, err := s.nsID(ctx, s.r, ns)
	if err != nil {
		return nil, err
	}
	// Glance lists objects and properties by name (the order of its
	// unique index), tags newest first.
	order := `name`
	if kind == imaged.MetadefTagKind {
		order = `created_at DESC, id DESC`
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(`SELECT name, data, created_at, updated_at FROM metadef_items WHERE namespace_id = ? AND kind = ? ORDER BY `+order), id, string(kind))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list %s: %w", kind, err)
	}
	defer rows.Close()
	var out []*imaged.MetadefItem
	for rows.Next() {
		it, err := scanItem(rows, kind)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list %s: %w", kind, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// UpdateMetadefItem implements imaged.MetadefStore.
func (s *Store) UpdateMetadefItem(ctx context.Context, ns string, kind imaged.MetadefKind, name string, it *imaged.MetadefItem) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE metadef_items SET name = ?, data = ?, updated_at = ? WHERE namespace_id = ? AND kind = ? AND name = ?`),
			it.Name, nullData(it.Data), mdTime(it.UpdatedAt), id, string(kind), name)
		if metadefUnique(err) {
			return itemDuplicate(kind, ns, it.Name)
		} else if err != nil {
			return fmt.Errorf("sqlstore: update %s: %w", kind, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return itemNotFound(kind, ns, name)
		}
		return nil
	})
}

// DeleteMetadefItem implements imaged.MetadefStore.
func (s *Store) DeleteMetadefItem(ctx context.Context, ns string, kind imaged.MetadefKind, name string) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ? AND name = ?`), id, string(kind), name)
		if err != nil {
			return fmt.Errorf("sqlstore: delete %s: %w", kind, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return itemNotFound(kind, ns, name)
		}
		return nil
	})
}

// DeleteMetadefItems implements imaged.MetadefStore.
func (s *Store) DeleteMetadefItems(ctx context.Context, ns string, kind imaged.MetadefKind) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM metadef_items WHERE namespace_id = ? AND kind = ?`), id, string(kind)); err != nil {
			return fmt.Errorf("sqlstore: delete %s: %w", kind, err)
		}
		return nil
	})
}

// ListMetadefResourceTypes implements imaged.MetadefStore.
func (s *Store) ListMetadefResourceTypes(ctx context.Context) ([]*imaged.MetadefResourceType, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, protected, created_at, updated_at FROM metadef_resource_types ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list resource types: %w", err)
	}
	defer rows.Close()
	var out []*imaged.MetadefResourceType
	for rows.Next() {
		var rt imaged.MetadefResourceType
		var c int64
		var u sql.NullInt64
		if err := rows.Scan(&rt.Name, &rt.Protected, &c, &u); err != nil {
			return nil, fmt.Errorf("sqlstore: list resource types: %w", err)
		}
		rt.CreatedAt, rt.UpdatedAt = fromMicros(c), mdFromNull(u)
		out = append(out, &rt)
	}
	return out, rows.Err()
}

// AssociateMetadefResourceType implements imaged.MetadefStore.
func (s *Store) AssociateMetadefResourceType(ctx context.Context, ns string, a *imaged.MetadefResourceTypeAssociation) error {
	return s.mdRetry(ctx, func() error { return s.associate(ctx, ns, a) })
}

func (s *Store) associate(ctx context.Context, ns string, a *imaged.MetadefResourceTypeAssociation) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		var rtID int64
		err = tx.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM metadef_resource_types WHERE name = ?`), a.Name).Scan(&rtID)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id`),
				a.Name, false, a.CreatedAt.UnixMicro(), mdTime(a.UpdatedAt)).Scan(&rtID)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: resource type %s: %w", a.Name, err)
		}
		_, err = tx.ExecContext(ctx, s.d.rebind(`INSERT INTO metadef_namespace_resource_types (namespace_id, resource_type_id, prefix, properties_target, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
			id, rtID, nullStr(a.Prefix), nullStr(a.PropertiesTarget), a.CreatedAt.UnixMicro(), mdTime(a.UpdatedAt))
		if metadefUnique(err) {
			return imaged.Errorf(imaged.ECONFLICT, "The metadata definition resource-type association of resource-type=%s to namespace=%s already exists.", a.Name, ns)
		} else if err != nil {
			return fmt.Errorf("sqlstore: associate: %w", err)
		}
		return nil
	})
}

// DissociateMetadefResourceType implements imaged.MetadefStore.
func (s *Store) DissociateMetadefResourceType(ctx context.Context, ns, rt string) error {
	return s.metadefTx(ctx, func(tx *sql.Tx) error {
		id, err := s.nsID(ctx, tx, ns)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM metadef_namespace_resource_types WHERE namespace_id = ? AND resource_type_id IN (SELECT id FROM metadef_resource_types WHERE name = ?)`), id, rt)
		if err != nil {
			return fmt.Errorf("sqlstore: dissociate: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return imaged.Errorf(imaged.ENOTFOUND, "The metadata definition resource-type association of resource-type=%s to namespace=%s, was not found.", rt, ns)
		}
		return nil
	})
}
