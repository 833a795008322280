package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanImage reads one row of imageCols followed by the tags and properties
// aggregates.
func scanImage(sc rowScanner) (*imaged.Image, error) {
	var (
		img                                   imaged.Image
		name, owner, df, cf, cks, hAlgo, hVal sql.NullString
		size, vsize, deletedAt, leaseExp      sql.NullInt64
		leaseReserved                         sql.NullInt64
		leaseID, leaseHolder                  sql.NullString
		createdAt, updatedAt                  int64
		locs, tags, props                     []byte
		status, visibility                    string
		err                                   error
	)
	if err = sc.Scan(&img.ID, &name, &status, &visibility, &img.Protected, &img.OSHidden, &owner, &df, &cf,
		&size, &vsize, &cks, &hAlgo, &hVal, &img.MinDisk, &img.MinRAM, &createdAt, &updatedAt, &deletedAt,
		&locs, &img.Version, &tags, &props, &leaseID, &leaseHolder, &leaseExp, &leaseReserved); err != nil {
		return nil, err
	}
	img.Status = imaged.ImageStatus(status)
	img.Visibility = imaged.Visibility(visibility)
	if name.Valid {
		img.Name = &name.String
	}
	img.Owner, img.DiskFormat, img.ContainerFormat = owner.String, df.String, cf.String
	img.Checksum, img.OSHashAlgo, img.OSHashValue = cks.String, hAlgo.String, hVal.String
	if size.Valid {
		img.Size = &size.Int64
	}
	if vsize.Valid {
		img.VirtualSize = &vsize.Int64
	}
	img.CreatedAt = fromMicros(createdAt)
	img.UpdatedAt = fromMicros(updatedAt)
	if deletedAt.Valid {
		t := fromMicros(deletedAt.Int64)
		img.DeletedAt = &t
	}
	if leaseID.Valid {
		img.Lease = &imaged.Lease{ID: leaseID.String, Holder: leaseHolder.String, Expires: fromMicros(leaseExp.Int64), Reserved: leaseReserved.Int64}
	}
	if img.Tags, err = decodeTags(tags); err != nil {
		return nil, fmt.Errorf("sqlstore: decode tags of %s: %w", img.ID, err)
	}
	if img.Properties, err = decodeProperties(props); err != nil {
		return nil, fmt.Errorf("sqlstore: decode properties of %s: %w", img.ID, err)
	}
	img.Locations = []imaged.Location{}
	if len(locs) > 2 {
		if err := json.Unmarshal(locs, &img.Locations); err != nil {
			return nil, fmt.Errorf("sqlstore: decode locations of %s: %w", img.ID, err)
		}
	}
	return &img, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullStr maps the domain's "" = null convention to SQL NULL.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullStrPtr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// leaseArgs maps an image's lease to its four columns (all NULL when
// there is none).
func leaseArgs(l *imaged.Lease) (id, holder, expires, reserved any) {
	if l == nil {
		return nil, nil, nil, nil
	}
	return l.ID, l.Holder, micros(l.Expires), l.Reserved
}

func encodeLocations(ls []imaged.Location) (string, error) {
	if len(ls) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ls)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode locations: %w", err)
	}
	return string(b), nil
}

// uniqueSorted returns the tags sorted and without duplicates, as the domain
// promises them.
func uniqueSorted(tags []string) []string {
	out := append([]string(nil), tags...)
	sort.Strings(out)
	j := 0
	for i, t := range out {
		if i > 0 && t == out[j-1] {
			continue
		}
		out[j] = t
		j++
	}
	return out[:j]
}

func notFound(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", id)
}

// CreateImage inserts img with its tags and properties in one transaction.
func (s *Store) CreateImage(ctx context.Context, img *imaged.Image) error {
	if img == nil || img.ID == "" {
		return imaged.Errorf(imaged.EINVALID, "image id is required")
	}
	locs, err := encodeLocations(img.Locations)
	if err != nil {
		return err
	}
	tags := uniqueSorted(img.Tags)
	tagsJSON, propsJSON, err := encodeChildren(tags, img.Properties)
	if err != nil {
		return err
	}
	lid, lholder, lexp, lres := leaseArgs(img.Lease)
	args := []any{img.ID, nullStrPtr(img.Name), string(img.Status), string(img.Visibility), img.Protected, img.OSHidden,
		nullStr(img.Owner), nullStr(img.DiskFormat), nullStr(img.ContainerFormat), nullInt(img.Size), nullInt(img.VirtualSize),
		nullStr(img.Checksum), nullStr(img.OSHashAlgo), nullStr(img.OSHashValue), img.MinDisk, img.MinRAM,
		micros(img.CreatedAt), micros(img.UpdatedAt), nullTime(img.DeletedAt), locs, img.Version, tagsJSON, propsJSON, lid, lholder, lexp, lres}
	if s.d.name == Postgres {
		return s.createImagePostgres(ctx, img.ID, args, tags, img.Properties)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: create image: %w", err)
	}
	defer tx.Rollback()
	// SQLite from here (PostgreSQL returned above): the statement
	// prepared at open.
	res, err := s.wstmts.execTx(ctx, tx, insertImageSQL, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: create image: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create image: %w", err)
	} else if n == 0 {
		return imaged.Errorf(imaged.ECONFLICT, "Image with identifier %s already exists!", img.ID)
	}
	if err := s.insertTags(ctx, tx, img.ID, tags); err != nil {
		return err
	}
	if err := s.upsertProperties(ctx, tx, img.ID, img.Properties); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: create image: %w", err)
	}
	return nil
}

// The statements of the create path. insertImageSQL uses ON CONFLICT DO
// NOTHING instead of catching a driver-specific unique-violation error:
// both dialects report 0 rows affected. On SQLite they are prepared once on
// the writer (see Store.wstmts), and tags and properties are written one
// row per execution of a prepared statement (no round trips to save);
// PostgreSQL writes them in multi-row statements.
const (
	insertImageSQL = `INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, disk_format, container_format, size, virtual_size, checksum, os_hash_algo, os_hash_value, min_disk, min_ram, created_at, updated_at, deleted_at, locations, version, tags_json, properties_json, lease_id, lease_holder, lease_expires, lease_reserved)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	insertTagSQL      = `INSERT INTO image_tags (image_id, value) VALUES (?, ?) ON CONFLICT (image_id, value) DO NOTHING`
	upsertPropertySQL = `INSERT INTO image_properties (image_id, name, value) VALUES (?, ?, ?) ON CONFLICT (image_id, name) DO UPDATE SET value = excluded.value`
)

// createImagePostgresSQL creates an image row with its tags and
// properties in one statement, so one round trip: each statement is atomic
// on its own, the child rows are inserted only when the image row was (a
// conflicting id inserts nothing), and the foreign keys are checked at the
// statement's end, when the image row exists. $28 holds the tags, $29 and
// $30 the property names and values in the same order.
const createImagePostgresSQL = `WITH ins AS (` + insertImageSQL + ` RETURNING id),
t AS (INSERT INTO image_tags (image_id, value) SELECT ins.id, u.value FROM ins, unnest(?::text[]) AS u(value)),
p AS (INSERT INTO image_properties (image_id, name, value) SELECT ins.id, u.name, u.value FROM ins, unnest(?::text[], ?::text[]) AS u(name, value))
SELECT count(*) FROM ins`

// createImagePostgres is CreateImage on PostgreSQL: one statement instead
// of a transaction of five round trips (begin, image, tags, properties,
// commit).
func (s *Store) createImagePostgres(ctx context.Context, id string, args []any, tags []string, props map[string]string) error {
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	values := make([]string, len(names))
	for i, k := range names {
		values[i] = props[k]
	}
	var n int
	err := s.w.QueryRowContext(ctx, s.d.rebind(createImagePostgresSQL), append(args, tags, names, values)...).Scan(&n)
	if err != nil {
		return fmt.Errorf("sqlstore: create image: %w", err)
	}
	if n == 0 {
		return imaged.Errorf(imaged.ECONFLICT, "Image with identifier %s already exists!", id)
	}
	return nil
}

// chunk bounds the rows of one multi-row statement, well under both
// databases' placeholder limits.
const chunk = 400

func (s *Store) insertTags(ctx context.Context, tx *sql.Tx, id string, tags []string) error {
	if s.wstmts != nil {
		for _, t := range tags {
			if _, err := s.wstmts.execTx(ctx, tx, insertTagSQL, id, t); err != nil {
				return fmt.Errorf("sqlstore: insert tags: %w", err)
			}
		}
		return nil
	}
	for len(tags) > 0 {
		n := min(len(tags), chunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO image_tags (image_id, value) VALUES `)
		args := make([]any, 0, 2*n)
		for i, t := range tags[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?)")
			args = append(args, id, t)
		}
		b.WriteString(` ON CONFLICT (image_id, value) DO NOTHING`)
		if _, err := tx.ExecContext(ctx, s.d.rebind(b.String()), args...); err != nil {
			return fmt.Errorf("sqlstore: insert tags: %w", err)
		}
		tags = tags[n:]
	}
	return nil
}

func (s *Store) upsertProperties(ctx context.Context, tx *sql.Tx, id string, props map[string]string) error {
	if len(props) == 0 {
		return nil
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names) // a stable order keeps lock order stable too
	if s.wstmts != nil {
		for _, k := range names {
			if _, err := s.wstmts.execTx(ctx, tx, upsertPropertySQL, id, k, props[k]); err != nil {
				return fmt.Errorf("sqlstore: write properties: %w", err)
			}
		}
		return nil
	}
	for len(names) > 0 {
		n := min(len(names), chunk)
		var b strings.Builder
		b.WriteString(`INSERT INTO image_properties (image_id, name, value) VALUES `)
		args := make([]any, 0, 3*n)
		for i, k := range names[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, id, k, props[k])
		}
		b.WriteString(` ON CONFLICT (image_id, name) DO UPDATE SET value = excluded.value`)
		if _, err := tx.ExecContext(ctx, s.d.rebind(b.String()), args...); err != nil {
			return fmt.Errorf("sqlstore: write properties: %w", err)
		}
		names = names[n:]
	}
	return nil
}

// deleteIn runs "DELETE FROM table WHERE image_id = ? AND col IN (...)".
func (s *Store) deleteIn(ctx context.Context, tx *sql.Tx, table, col, id string, vals []string) error {
	for len(vals) > 0 {
		n := min(len(vals), chunk)
		args := make([]any, 0, n+1)
		args = append(args, id)
		for _, v := range vals[:n] {
			args = append(args, v)
		}
		q := `DELETE FROM ` + table + ` WHERE image_id = ? AND ` + col + ` IN (?` + strings.Repeat(", ?", n-1) + `)`
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), args...); err != nil {
			return fmt.Errorf("sqlstore: delete from %s: %w", table, err)
		}
		vals = vals[n:]
	}
	return nil
}

// GetImage returns a live image with one query.
func (s *Store) GetImage(ctx context.Context, id string) (*imaged.Image, error) {
	img, err := scanImage(s.getStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get image: %w", err)
	}
	return img, nil
}

// getForUpdate reads a live image inside tx, locking its row on PostgreSQL.
func (s *Store) getForUpdate(ctx context.Context, tx *sql.Tx, id string) (*imaged.Image, error) {
	img, err := scanImage(tx.QueryRowContext(ctx, s.d.rebind(s.d.getSQL(true)), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: read image: %w", err)
	}
	return img, nil
}

// UpdateImage runs fn on a copy of the live image inside one transaction
// and writes back the row plus only the tags and properties that changed.
// Transactions are serialised by the row lock (PostgreSQL) or by SQLite's
// single IMMEDIATE writer, so fn is called once per call.
func (s *Store) UpdateImage(ctx context.Context, id string, fn func(*imaged.Image) error) (*imaged.Image, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: update image: %w", err)
	}
	defer tx.Rollback()
	old, err := s.getForUpdate(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	img := old.Clone()
	if err := fn(img); err != nil {
		return nil, err
	}
	img.ID = old.ID // the id is the row's identity; fn may not move it
	img.Version = old.Version + 1
	img.Tags = uniqueSorted(img.Tags)
	locs, err := encodeLocations(img.Locations)
	if err != nil {
		return nil, err
	}
	tagsJSON, propsJSON, err := encodeChildren(img.Tags, img.Properties)
	if err != nil {
		return nil, err
	}
	lid, lholder, lexp, lres := leaseArgs(img.Lease)
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE images SET name = ?, status = ?, visibility = ?, protected = ?, os_hidden = ?, owner = ?, disk_format = ?, container_format = ?, size = ?, virtual_size = ?, checksum = ?, os_hash_algo = ?, os_hash_value = ?, min_disk = ?, min_ram = ?, created_at = ?, updated_at = ?, locations = ?, version = ?, tags_json = ?, properties_json = ?, lease_id = ?, lease_holder = ?, lease_expires = ?, lease_reserved = ? WHERE id = ?`),
		nullStrPtr(img.Name), string(img.Status), string(img.Visibility), img.Protected, img.OSHidden,
		nullStr(img.Owner), nullStr(img.DiskFormat), nullStr(img.ContainerFormat), nullInt(img.Size), nullInt(img.VirtualSize),
		nullStr(img.Checksum), nullStr(img.OSHashAlgo), nullStr(img.OSHashValue), img.MinDisk, img.MinRAM,
		micros(img.CreatedAt), micros(img.UpdatedAt), locs, img.Version, tagsJSON, propsJSON, lid, lholder, lexp, lres, id); err != nil {
		return nil, fmt.Errorf("sqlstore: update image: %w", err)
	}
	// Tags: both lists are sorted and unique, so one merge pass diffs them.
	var addTags, delTags []string
	i, j := 0, 0
	for i < len(old.Tags) || j < len(img.Tags) {
		switch {
		case j == len(img.Tags) || (i < len(old.Tags) && old.Tags[i] < img.Tags[j]):
			delTags = append(delTags, old.Tags[i])
			i++
		case i == len(old.Tags) || img.Tags[j] < old.Tags[i]:
			addTags = append(addTags, img.Tags[j])
			j++
		default:
			i++
			j++
		}
	}
	if err := s.deleteIn(ctx, tx, "image_tags", "value", id, delTags); err != nil {
		return nil, err
	}
	if err := s.insertTags(ctx, tx, id, addTags); err != nil {
		return nil, err
	}
	var delProps []string
	var setProps map[string]string
	for k := range old.Properties {
		if _, ok := img.Properties[k]; !ok {
			delProps = append(delProps, k)
		}
	}
	for k, v := range img.Properties {
		if ov, ok := old.Properties[k]; !ok || ov != v {
			if setProps == nil {
				setProps = make(map[string]string)
			}
			setProps[k] = v
		}
	}
	sort.Strings(delProps)
	if err := s.deleteIn(ctx, tx, "image_properties", "name", id, delProps); err != nil {
		return nil, err
	}
	if err := s.upsertProperties(ctx, tx, id, setProps); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: update image: %w", err)
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	if img.Locations == nil {
		img.Locations = []imaged.Location{}
	}
	return img, nil
}

// DeleteImage turns a live image into a tombstone: status deleted,
// deleted_at set, members, tags and properties removed (nothing reads them
// again; the row itself keeps the id taken).
func (s *Store) DeleteImage(ctx context.Context, id string, fn func(*imaged.Image) error) (*imaged.Image, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delete image: %w", err)
	}
	defer tx.Rollback()
	img, err := s.getForUpdate(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if fn != nil {
		if err := fn(img.Clone()); err != nil {
			return nil, err
		}
	}
	now := micros(s.clock.Now())
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE images SET status = ?, deleted_at = ?, updated_at = ?, version = version + 1, tags_json = '[]', properties_json = '{}', lease_id = NULL, lease_holder = NULL, lease_expires = NULL, lease_reserved = NULL WHERE id = ?`),
		string(imaged.StatusDeleted), now, now, id); err != nil {
		return nil, fmt.Errorf("sqlstore: delete image: %w", err)
	}
	for _, table := range []string{"image_members", "image_tags", "image_properties"} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+table+` WHERE image_id = ?`), id); err != nil {
			return nil, fmt.Errorf("sqlstore: delete image: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: delete image: %w", err)
	}
	return img, nil
}
