package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imaged/imaged"
)

// Container images (imaged.ContainerStore).
//
// A container image is two rows written in one transaction: its
// container_images row (the container facts) and an images row with the
// same id (the catalog view: what the Glance API shows, with
// container_format "docker"). The catalog fields of a ContainerImage
// (owner, visibility, protection, tags, version) are read from and written
// to the images row only, so a change made through either API is seen by
// the other. A container write rewrites the catalog columns it owns (name,
// status, formats, size, locations, its three properties) and leaves the
// others (os_hidden, min_disk, other properties) as they are.
//
// A container row whose images row was deleted through the Glance API is
// dead: every read joins images and ignores it (its aliases too), and the
// next write that needs its identity (a scan or a restore) removes it with
// its aliases, as DeleteRegistry does for the registry's dead rows.
// container_aliases has no foreign key (see migration 0006): every delete
// of container rows deletes their aliases first.

var _ imaged.ContainerStore = (*Store)(nil)

// Catalog properties a container image's images row carries.
const (
	propArchitecture = "architecture"
	propRegistry     = "container_registry"
	propDigest       = "container_digest"
)

// containerCols are read in scanContainer's order: the container row, then
// the catalog fields of its images row.
const containerCols = `c.image_id, c.reference, c.registry, c.registry_host, c.project, c.repository, c.tag, c.architecture, c.digest, c.index_digest, c.config_digest, c.size, c.labels, c.accelerators, c.type, c.status, c.resource_limits, c.scanned_at, c.created_at, c.updated_at, i.owner, i.visibility, i.protected, i.tags_json, i.version, i.properties_json`

// liveJoin joins each container row to its live catalog row.
const liveJoin = ` FROM container_images c JOIN images i ON i.id = c.image_id AND i.deleted_at IS NULL`

// containerInsertCols are the container_images columns in
// containerRowArgs order.
const containerInsertCols = `image_id, reference, registry, registry_host, project, repository, tag, architecture, digest, index_digest, config_digest, size, labels, accelerators, type, status, resource_limits, customized, scanned_at, created_at, updated_at`

func containerNotFound(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "No container image found with ID %s", id)
}

// scanContainer reads one row of containerCols (plus extra destinations)
// and returns the image and its catalog properties.
func scanContainer(sc rowScanner, extra ...any) (*imaged.ContainerImage, map[string]string, error) {
	var (
		ci                            imaged.ContainerImage
		labels, limits, tags, props   []byte
		accel, owner                  sql.NullString
		typ, status, visibility       string
		scannedAt, createdAt, updated int64
	)
	dest := []any{&ci.ID, &ci.Reference, &ci.Registry, &ci.RegistryHost, &ci.Project, &ci.Repository, &ci.Tag, &ci.Architecture,
		&ci.Digest, &ci.IndexDigest, &ci.ConfigDigest, &ci.Size, &labels, &accel, &typ, &status, &limits,
		&scannedAt, &createdAt, &updated, &owner, &visibility, &ci.Protected, &tags, &ci.Version, &props}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return nil, nil, err
	}
	ci.Type, ci.Status, ci.Visibility = imaged.ContainerImageType(typ), imaged.ContainerStatus(status), imaged.Visibility(visibility)
	ci.Owner = owner.String
	ci.ScannedAt, ci.CreatedAt, ci.UpdatedAt = fromMicros(scannedAt), fromMicros(createdAt), fromMicros(updated)
	ci.Labels = map[string]string{}
	if err := json.Unmarshal(labels, &ci.Labels); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: decode labels of %s: %w", ci.ID, err)
	}
	if accel.Valid {
		if err := json.Unmarshal([]byte(accel.String), &ci.Accelerators); err != nil {
			return nil, nil, fmt.Errorf("sqlstore: decode accelerators of %s: %w", ci.ID, err)
		}
		if ci.Accelerators == nil { // "null" would make "none" read as "any"
			ci.Accelerators = []string{}
		}
	}
	ci.ResourceLimits = map[string]imaged.ResourceLimit{}
	if err := json.Unmarshal(limits, &ci.ResourceLimits); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: decode resource limits of %s: %w", ci.ID, err)
	}
	var err error
	if ci.Tags, err = decodeTags(tags); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: decode tags of %s: %w", ci.ID, err)
	}
	p, err := decodeProperties(props)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: decode properties of %s: %w", ci.ID, err)
	}
	ci.Aliases = []string{}
	return &ci, p, nil
}

// cloneContainer deep-copies ci, so that an update function may change
// the copy freely.
func cloneContainer(ci *imaged.ContainerImage) *imaged.ContainerImage {
	c := *ci
	if ci.Labels != nil {
		c.Labels = make(map[string]string, len(ci.Labels))
		for k, v := range ci.Labels {
			c.Labels[k] = v
		}
	}
	if ci.Accelerators != nil {
		c.Accelerators = append([]string{}, ci.Accelerators...)
	}
	if ci.ResourceLimits != nil {
		c.ResourceLimits = make(map[string]imaged.ResourceLimit, len(ci.ResourceLimits))
		for k, v := range ci.ResourceLimits {
			c.ResourceLimits[k] = v
		}
	}
	c.Aliases = append([]string{}, ci.Aliases...)
	c.Tags = append([]string{}, ci.Tags...)
	return &c
}

// validContainer checks what the store relies on: an identity, and
// enumerations the listings and the catalog row can represent.
func validContainer(ci *imaged.ContainerImage) error {
	switch {
	case ci.Reference == "":
		return imaged.Errorf(imaged.EINVALID, "container image reference is required")
	case ci.Architecture == "":
		return imaged.Errorf(imaged.EINVALID, "container image architecture is required")
	case ci.Status != imaged.ContainerAlive && ci.Status != imaged.ContainerForgotten:
		return imaged.Errorf(imaged.EINVALID, "invalid container image status %q", ci.Status)
	case ci.Type != imaged.ContainerTypeCompute && ci.Type != imaged.ContainerTypeSystem && ci.Type != imaged.ContainerTypeService:
		return imaged.Errorf(imaged.EINVALID, "invalid container image type %q", ci.Type)
	case !imaged.ValidVisibility(string(ci.Visibility)):
		return imaged.Errorf(imaged.EINVALID, "invalid visibility %q", ci.Visibility)
	}
	return nil
}

// containerRowArgs are ci's container_images values in
// containerInsertCols order.
func containerRowArgs(ci *imaged.ContainerImage) ([]any, error) {
	labels, err := json.Marshal(orEmpty(ci.Labels))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode labels: %w", err)
	}
	var accel any
	if ci.Accelerators != nil {
		b, err := json.Marshal(ci.Accelerators)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: encode accelerators: %w", err)
		}
		accel = string(b)
	}
	limits, err := json.Marshal(orEmpty(ci.ResourceLimits))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode resource limits: %w", err)
	}
	var customized any
	if v, ok := ci.Labels[imaged.LabelCustomizedOwner]; ok {
		customized = v
	}
	return []any{ci.ID, ci.Reference, ci.Registry, ci.RegistryHost, ci.Project, ci.Repository, ci.Tag, ci.Architecture,
		ci.Digest, ci.IndexDigest, ci.ConfigDigest, ci.Size, string(labels), accel, string(ci.Type), string(ci.Status),
		string(limits), customized, micros(ci.ScannedAt), micros(ci.CreatedAt), micros(ci.UpdatedAt)}, nil
}

// orEmpty returns m, or an empty map for nil (which JSON renders null).
func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// catalogStatus is the Glance status of a container image's images row.
func catalogStatus(st imaged.ContainerStatus) imaged.ImageStatus {
	if st == imaged.ContainerAlive {
		return imaged.StatusActive
	}
	return imaged.StatusDeactivated
}

// catalogLocations is the location of a container image's bytes: its
// manifest in the registry, by digest when it has one.
func catalogLocations(ci *imaged.ContainerImage) (string, error) {
	u := "docker://" + ci.RegistryHost + "/" + ci.Repository
	if ci.Digest != "" {
		u += "@" + ci.Digest
	} else if ci.Tag != "" {
		u += ":" + ci.Tag
	}
	return encodeLocations([]imaged.Location{{URL: u, Metadata: map[string]string{}}})
}

// catalogProps returns the catalog properties of ci: old (which may hold
// properties set through the Glance API) with the container's own three
// set, and those of the three whose value changed.
func catalogProps(old map[string]string, ci *imaged.ContainerImage) (all, changed map[string]string) {
	all = make(map[string]string, len(old)+3)
	for k, v := range old {
		all[k] = v
	}
	changed = map[string]string{}
	for k, v := range map[string]string{propArchitecture: ci.Architecture, propRegistry: ci.Registry, propDigest: ci.Digest} {
		if ov, ok := old[k]; !ok || ov != v {
			changed[k] = v
		}
		all[k] = v
	}
	return all, changed
}

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isTransient reports whether a transaction failed only because of a
// concurrent one (PostgreSQL's deadlock and serialisation failures), so
// that running it again may succeed.
func isTransient(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// retry runs fn until it succeeds, fails for good or has run attempts
// times; again says which errors are worth another attempt.
func retry(ctx context.Context, again func(error) bool, fn func() error) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := fn()
		if err == nil || i == attempts || !again(err) || ctx.Err() != nil {
			return err
		}
	}
}

// lockFor is the row-lock clause of a read-modify-write of a container
// image (SQLite's write transactions are serialised anyway).
func (s *Store) lockFor() string {
	if s.d.name == Postgres {
		return ` FOR UPDATE OF c, i`
	}
	return ""
}

func (s *Store) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// aliasesOf returns the aliases of the given images, sorted, with one
// query per chunk of ids.
func (s *Store) aliasesOf(ctx context.Context, q queryer, ids []string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx, s.d.rebind(`SELECT alias, image_id FROM container_aliases WHERE image_id IN (?`+strings.Repeat(", ?", n-1)+`) ORDER BY alias`), args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read aliases: %w", err)
		}
		for rows.Next() {
			var a, id string
			if err := rows.Scan(&a, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlstore: read aliases: %w", err)
			}
			out[id] = append(out[id], a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlstore: read aliases: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// fillAliases sets the Aliases of imgs with one query per chunk.
func (s *Store) fillAliases(ctx context.Context, q queryer, imgs []*imaged.ContainerImage) error {
	if len(imgs) == 0 {
		return nil
	}
	ids := make([]string, len(imgs))
	for i, ci := range imgs {
		ids[i] = ci.ID
	}
	m, err := s.aliasesOf(ctx, q, ids)
	if err != nil {
		return err
	}
	for _, ci := range imgs {
		if a := m[ci.ID]; a != nil {
			ci.Aliases = a
		} else {
			ci.Aliases = []string{}
		}
	}
	return nil
}

// GetContainerImage returns a container image by id, any status.
func (s *Store) GetContainerImage(ctx context.Context, id string) (*imaged.ContainerImage, error) {
	ci, _, err := scanContainer(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+containerCols+liveJoin+` WHERE c.image_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, containerNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get container image: %w", err)
	}
	if err := s.fillAliases(ctx, s.r, []*imaged.ContainerImage{ci}); err != nil {
		return nil, err
	}
	return ci, nil
}

// statusArgs renders a status filter; empty means alive only.
func statusArgs(statuses []imaged.ContainerStatus) (string, []any) {
	if len(statuses) == 0 {
		return `c.status = ?`, []any{string(imaged.ContainerAlive)}
	}
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = string(st)
	}
	return `c.status IN (?` + strings.Repeat(", ?", len(statuses)-1) + `)`, args
}

// FindContainerImage returns the image of an identity among statuses,
// preferring an alive one, then the most recently updated.
func (s *Store) FindContainerImage(ctx context.Context, reference, arch string, statuses ...imaged.ContainerStatus) (*imaged.ContainerImage, error) {
	cond, args := statusArgs(statuses)
	ci, _, err := scanContainer(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+containerCols+liveJoin+
		` WHERE c.reference = ? AND c.architecture = ? AND `+cond+
		` ORDER BY CASE WHEN c.status = 'alive' THEN 0 ELSE 1 END, c.updated_at DESC, c.image_id LIMIT 1`),
		append([]any{reference, arch}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "No container image %s (%s) found", reference, arch)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find container image: %w", err)
	}
	if err := s.fillAliases(ctx, s.r, []*imaged.ContainerImage{ci}); err != nil {
		return nil, err
	}
	return ci, nil
}

// readableCond renders ContainerImageQuery.ReadableBy, the rule of
// policy.ContainerAccess for a non-admin: a customized image only to the
// user its label names, any other only while alive and as its visibility
// allows. Branches whose id is empty are left out rather than compared,
// since an empty id never matches (and a NULL or empty owner must not
// match an empty project).
func readableCond(r *imaged.ContainerReader) (string, []any) {
	var (
		ors  []string
		args []any
	)
	if r.UserID != "" {
		// The column holds the raw label; CustomizedOwner() is X exactly
		// when it is "user:X".
		ors = append(ors, `c.customized = ?`)
		args = append(args, "user:"+r.UserID)
	}
	vis := `i.visibility IN (?, ?)`
	args = append(args, string(imaged.ContainerAlive), string(imaged.VisibilityPublic), string(imaged.VisibilityCommunity))
	if r.ProjectID != "" {
		vis = `(` + vis + ` OR (i.visibility IN (?, ?) AND i.owner = ?))`
		args = append(args, string(imaged.VisibilityPrivate), string(imaged.VisibilityShared), r.ProjectID)
	}
	ors = append(ors, `(c.customized IS NULL AND c.status = ? AND `+vis+`)`)
	return `(` + strings.Join(ors, ` OR `) + `)`, args
}

// containerSortCols maps ContainerImageQuery sort keys to columns.
var containerSortCols = map[string]string{"reference": "c.reference", "created_at": "c.created_at", "updated_at": "c.updated_at", "size": "c.size"}

// ListContainerImages returns one keyset page: the sort column, then id in
// the same direction; then the page's aliases with one more query.
func (s *Store) ListContainerImages(ctx context.Context, q imaged.ContainerImageQuery) ([]*imaged.ContainerImage, error) {
	key := cmp.Or(q.SortKey, "reference")
	col, ok := containerSortCols[key]
	if !ok {
		return nil, imaged.Errorf(imaged.EINVALID, "invalid sort key %q", q.SortKey)
	}
	dir, op := "ASC", ">"
	switch q.SortDir {
	case "", imaged.Asc:
	case imaged.Desc:
		dir, op = "DESC", "<"
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "invalid sort direction %q", q.SortDir)
	}
	cond, args := statusArgs(q.Statuses)
	where := []string{cond}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("c.registry", q.Registry)
	eq("c.project", q.Project)
	eq("c.repository", q.Repository)
	eq("c.tag", q.Tag)
	eq("c.architecture", q.Architecture)
	eq("c.reference", q.Reference)
	eq("i.owner", q.Owner)
	if q.CustomizedOwner != "" {
		// CustomizedOwner() is X exactly when the label is "user:X".
		eq("c.customized", "user:"+q.CustomizedOwner)
	}
	if q.Customized != nil {
		if *q.Customized {
			where = append(where, "c.customized IS NOT NULL")
		} else {
			where = append(where, "c.customized IS NULL")
		}
	}
	if r := q.ReadableBy; r != nil {
		cond, rargs := readableCond(r)
		where = append(where, cond)
		args = append(args, rargs...)
	}
	if a := q.After; a != nil {
		var v any
		switch key {
		case "reference":
			v = a.Reference
		case "created_at":
			v = micros(a.CreatedAt)
		case "updated_at":
			v = micros(a.UpdatedAt)
		case "size":
			v = a.Size
		}
		where = append(where, "("+col+" "+op+" ? OR ("+col+" = ? AND c.image_id "+op+" ?))")
		args = append(args, v, v, a.ID)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	query := `SELECT ` + containerCols + liveJoin + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + col + ` ` + dir + `, c.image_id ` + dir + ` LIMIT ?`
	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list container images: %w", err)
	}
	defer rows.Close()
	out := []*imaged.ContainerImage{}
	for rows.Next() {
		ci, _, err := scanContainer(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list container images: %w", err)
		}
		out = append(out, ci)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list container images: %w", err)
	}
	rows.Close()
	if err := s.fillAliases(ctx, s.r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// sortedDiff returns what to remove from and add to old to get new; both
// are sorted and unique.
func sortedDiff(old, new []string) (del, add []string) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i] < new[j]):
			del = append(del, old[i])
			i++
		case i == len(old) || new[j] < old[i]:
			add = append(add, new[j])
			j++
		default:
			i++
			j++
		}
	}
	return del, add
}

// dropDeadTwins removes the dead rows (catalog row deleted through the
// Glance API) that hold an identity, with their aliases, so that the
// identity can be taken again.
func (s *Store) dropDeadTwins(ctx context.Context, tx *sql.Tx, reference, arch string) error {
	rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT c.image_id FROM container_images c JOIN images i ON i.id = c.image_id WHERE c.reference = ? AND c.architecture = ? AND i.deleted_at IS NOT NULL`),
		reference, arch)
	if err != nil {
		return fmt.Errorf("sqlstore: find dead container images: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("sqlstore: find dead container images: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: find dead container images: %w", err)
	}
	return s.deleteContainerRows(ctx, tx, ids)
}

// UpdateContainerImage is a read-modify-write of both rows of one image,
// serialised by the row locks (PostgreSQL) or SQLite's single IMMEDIATE
// writer, so fn runs once per call. The store keeps the id, the creation
// time and the aliases, counts the version and sets UpdatedAt to now
// unless fn set it.
func (s *Store) UpdateContainerImage(ctx context.Context, id string, fn func(*imaged.ContainerImage) error) (*imaged.ContainerImage, error) {
	var out *imaged.ContainerImage
	err := retry(ctx, isTransient, func() (err error) {
		out, err = s.updateContainerImage(ctx, id, fn)
		return err
	})
	if isUniqueViolation(err) {
		return nil, imaged.Errorf(imaged.ECONFLICT, "Another live container image has the same reference and architecture")
	}
	return out, err
}

func (s *Store) updateContainerImage(ctx context.Context, id string, fn func(*imaged.ContainerImage) error) (*imaged.ContainerImage, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: update container image: %w", err)
	}
	defer tx.Rollback()
	old, oldProps, err := scanContainer(tx.QueryRowContext(ctx, s.d.rebind(`SELECT `+containerCols+liveJoin+` WHERE c.image_id = ?`+s.lockFor()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, containerNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: update container image: %w", err)
	}
	if err := s.fillAliases(ctx, tx, []*imaged.ContainerImage{old}); err != nil {
		return nil, err
	}
	ci := cloneContainer(old)
	if err := fn(ci); err != nil {
		return nil, err
	}
	ci.ID, ci.CreatedAt, ci.Aliases, ci.Version = old.ID, old.CreatedAt, old.Aliases, old.Version+1
	ci.Tags = uniqueSorted(ci.Tags)
	if ci.UpdatedAt.Equal(old.UpdatedAt) {
		ci.UpdatedAt = s.now()
	}
	if err := validContainer(ci); err != nil {
		return nil, err
	}
	if ci.Status == imaged.ContainerAlive && (old.Status != imaged.ContainerAlive || ci.Reference != old.Reference || ci.Architecture != old.Architecture) {
		// A clear error before the unique index would give a raw one
		// (which UpdateContainerImage maps to ECONFLICT too, for races).
		var twin string
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT c.image_id`+liveJoin+` WHERE c.reference = ? AND c.architecture = ? AND c.status = 'alive' AND c.image_id <> ?`),
			ci.Reference, ci.Architecture, ci.ID).Scan(&twin)
		if err == nil {
			return nil, imaged.Errorf(imaged.ECONFLICT, "Container image %s (%s) is already live as %s", ci.Reference, ci.Architecture, twin)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlstore: update container image: %w", err)
		}
		if err := s.dropDeadTwins(ctx, tx, ci.Reference, ci.Architecture); err != nil {
			return nil, err
		}
	}
	args, err := containerRowArgs(ci)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE container_images SET reference = ?, registry = ?, registry_host = ?, project = ?, repository = ?, tag = ?, architecture = ?, digest = ?, index_digest = ?, config_digest = ?, size = ?, labels = ?, accelerators = ?, type = ?, status = ?, resource_limits = ?, customized = ?, scanned_at = ?, created_at = ?, updated_at = ? WHERE image_id = ?`),
		append(args[1:], id)...); err != nil {
		return nil, fmt.Errorf("sqlstore: update container image: %w", err)
	}
	locs, err := catalogLocations(ci)
	if err != nil {
		return nil, err
	}
	props, changed := catalogProps(oldProps, ci)
	tagsJSON, propsJSON, err := encodeChildren(ci.Tags, props)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE images SET name = ?, status = ?, visibility = ?, protected = ?, owner = ?, disk_format = 'raw', container_format = 'docker', size = ?, updated_at = ?, locations = ?, version = ?, tags_json = ?, properties_json = ? WHERE id = ?`),
		ci.Reference, string(catalogStatus(ci.Status)), string(ci.Visibility), ci.Protected, nullStr(ci.Owner), ci.Size,
		micros(ci.UpdatedAt), locs, ci.Version, tagsJSON, propsJSON, id); err != nil {
		return nil, fmt.Errorf("sqlstore: update container image: %w", err)
	}
	del, add := sortedDiff(old.Tags, ci.Tags)
	if err := s.deleteIn(ctx, tx, "image_tags", "value", id, del); err != nil {
		return nil, err
	}
	if err := s.insertTags(ctx, tx, id, add); err != nil {
		return nil, err
	}
	if err := s.upsertProperties(ctx, tx, id, changed); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: update container image: %w", err)
	}
	return ci, nil
}

// PurgeContainerImage deletes the container row and its aliases and turns
// the catalog row into a tombstone, as DeleteImage does.
func (s *Store) PurgeContainerImage(ctx context.Context, id string, fn func(*imaged.ContainerImage) error) (*imaged.ContainerImage, error) {
	var out *imaged.ContainerImage
	err := retry(ctx, isTransient, func() (err error) {
		out, err = s.purgeContainerImage(ctx, id, fn)
		return err
	})
	return out, err
}

func (s *Store) purgeContainerImage(ctx context.Context, id string, fn func(*imaged.ContainerImage) error) (*imaged.ContainerImage, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
	}
	defer tx.Rollback()
	ci, _, err := scanContainer(tx.QueryRowContext(ctx, s.d.rebind(`SELECT `+containerCols+liveJoin+` WHERE c.image_id = ?`+s.lockFor()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, containerNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
	}
	if err := s.fillAliases(ctx, tx, []*imaged.ContainerImage{ci}); err != nil {
		return nil, err
	}
	if fn != nil {
		if err := fn(cloneContainer(ci)); err != nil {
			return nil, err
		}
	}
	for _, table := range []string{"container_aliases", "container_images"} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+table+` WHERE image_id = ?`), id); err != nil {
			return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
		}
	}
	// The catalog row's tombstone, as DeleteImage writes it.
	now := micros(s.now())
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE images SET status = ?, deleted_at = ?, updated_at = ?, version = version + 1, tags_json = '[]', properties_json = '{}', lease_id = NULL, lease_holder = NULL, lease_expires = NULL, lease_reserved = NULL WHERE id = ?`),
		string(imaged.StatusDeleted), now, now, id); err != nil {
		return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
	}
	for _, table := range []string{"image_members", "image_tags", "image_properties"} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+table+` WHERE image_id = ?`), id); err != nil {
			return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: purge container image: %w", err)
	}
	return ci, nil
}

// identity keys a container image by (reference, architecture).
func identity(reference, arch string) string { return reference + "\x00" + arch }

// CommitScan writes a scan's findings in one transaction: one lookup per
// chunk of references, multi-row inserts for new images, and multi-row
// UPDATE ... FROM (VALUES ...) for refreshed ones, so that a scan of
// thousands of tags costs tens of statements, not thousands. Items are
// processed in (reference, architecture) order, which keeps the row-lock
// order of concurrent scans the same; a scan that still loses a race
// (a deadlock, or an identity created meanwhile) is run again.
func (s *Store) CommitScan(ctx context.Context, registry string, found []*imaged.ContainerImage) (*imaged.ScanCommit, error) {
	now := s.now()
	byID := make(map[string]*imaged.ContainerImage, len(found))
	items := make([]*imaged.ContainerImage, 0, len(found))
	for _, f := range found {
		if f == nil {
			continue
		}
		ci := cloneContainer(f)
		ci.Registry = registry
		ci.Status = imaged.ContainerAlive
		ci.Type = cmp.Or(ci.Type, imaged.ContainerTypeCompute)
		ci.Visibility = cmp.Or(ci.Visibility, imaged.VisibilityPublic)
		if ci.ScannedAt.IsZero() {
			ci.ScannedAt = now
		}
		ci.ScannedAt = ci.ScannedAt.UTC().Truncate(time.Microsecond)
		if err := validContainer(ci); err != nil {
			return nil, err
		}
		k := identity(ci.Reference, ci.Architecture)
		if prev, ok := byID[k]; ok {
			*prev = *ci // a repeated finding: the last one wins
			continue
		}
		byID[k] = ci
		items = append(items, ci)
	}
	slices.SortFunc(items, func(a, b *imaged.ContainerImage) int {
		return cmp.Or(cmp.Compare(a.Reference, b.Reference), cmp.Compare(a.Architecture, b.Architecture))
	})
	var out *imaged.ScanCommit
	err := retry(ctx, func(err error) bool { return isTransient(err) || isUniqueViolation(err) }, func() (err error) {
		out, err = s.commitScan(ctx, registry, items, now)
		return err
	})
	if isUniqueViolation(err) {
		return nil, imaged.Errorf(imaged.ECONFLICT, "A concurrent scan keeps creating the same container images; try again")
	}
	return out, err
}

func (s *Store) commitScan(ctx context.Context, registry string, items []*imaged.ContainerImage, now time.Time) (*imaged.ScanCommit, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
	}
	defer tx.Rollback()
	// The registry must exist; on PostgreSQL the share lock keeps a
	// concurrent DeleteRegistry waiting until the scan's rows are in.
	share := ""
	if s.d.name == Postgres {
		share = " FOR SHARE"
	}
	var name string
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT name FROM registries WHERE name = ?`+share), registry).Scan(&name); errors.Is(err, sql.ErrNoRows) {
		return nil, registryNotFound(registry)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
	}

	// Look every identity up, dead rows included.
	type existing struct {
		ci    *imaged.ContainerImage
		props map[string]string
	}
	have := map[string]existing{}
	var dead []string
	refs := make([]any, 0, len(items))
	for i, ci := range items {
		if i == 0 || ci.Reference != items[i-1].Reference {
			refs = append(refs, ci.Reference)
		}
	}
	for start := 0; start < len(refs); start += chunk {
		part := refs[start:min(start+chunk, len(refs))]
		rows, err := tx.QueryContext(ctx, s.d.rebind(`SELECT `+containerCols+`, i.deleted_at FROM container_images c JOIN images i ON i.id = c.image_id WHERE c.reference IN (?`+strings.Repeat(", ?", len(part)-1)+`)`+s.lockFor()), part...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
		}
		for rows.Next() {
			var deletedAt sql.NullInt64
			ci, props, err := scanContainer(rows, &deletedAt)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
			}
			if deletedAt.Valid {
				dead = append(dead, ci.ID)
				continue
			}
			k := identity(ci.Reference, ci.Architecture)
			// Prefer the alive row, then the latest forgotten one.
			if e, ok := have[k]; ok && (e.ci.Status == imaged.ContainerAlive ||
				(ci.Status != imaged.ContainerAlive && !ci.UpdatedAt.After(e.ci.UpdatedAt))) {
				continue
			}
			have[k] = existing{ci, props}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
		}
	}
	if err := s.deleteContainerRows(ctx, tx, dead); err != nil {
		return nil, err
	}

	res := &imaged.ScanCommit{Created: []*imaged.ContainerImage{}, Updated: []*imaged.ContainerImage{}, Forgotten: []*imaged.ContainerImage{}}
	var created, refreshed []*imaged.ContainerImage
	var refreshedProps []map[string]string
	var propArgs []any // properties to write, for both
	for _, ci := range items {
		e, ok := have[identity(ci.Reference, ci.Architecture)]
		if !ok {
			ci.ID = uuid.NewString()
			ci.CreatedAt, ci.UpdatedAt, ci.Version = now, now, 1
			ci.Tags = uniqueSorted(ci.Tags)
			ci.Aliases = []string{}
			created = append(created, ci)
			_, props := catalogProps(nil, ci)
			for _, k := range []string{propArchitecture, propDigest, propRegistry} {
				propArgs = append(propArgs, ci.ID, k, props[k])
			}
			res.Created = append(res.Created, ci)
			continue
		}
		// Refresh the facts; keep everything the operator owns.
		r := e.ci
		r.Digest, r.IndexDigest, r.ConfigDigest, r.Size = ci.Digest, ci.IndexDigest, ci.ConfigDigest, ci.Size
		r.Labels, r.Accelerators, r.ScannedAt = orEmpty(ci.Labels), ci.Accelerators, ci.ScannedAt
		r.UpdatedAt, r.Version = now, r.Version+1
		props, changed := catalogProps(e.props, r)
		for k, v := range changed {
			propArgs = append(propArgs, r.ID, k, v)
		}
		refreshed = append(refreshed, r)
		refreshedProps = append(refreshedProps, props)
		if r.Status == imaged.ContainerAlive {
			res.Updated = append(res.Updated, r)
		} else {
			res.Forgotten = append(res.Forgotten, r)
		}
	}
	if err := s.insertContainers(ctx, tx, created); err != nil {
		return nil, err
	}
	if err := s.refreshContainers(ctx, tx, refreshed, refreshedProps); err != nil {
		return nil, err
	}
	if err := upsertRows(ctx, s, tx, `INSERT INTO image_properties (image_id, name, value) VALUES `, 3, propArgs,
		` ON CONFLICT (image_id, name) DO UPDATE SET value = excluded.value`); err != nil {
		return nil, err
	}
	if err := s.fillAliases(ctx, tx, refreshed); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: commit scan: %w", err)
	}
	return res, nil
}

// deleteContainerRows removes container rows (dead ones) and their aliases.
func (s *Store) deleteContainerRows(ctx context.Context, tx *sql.Tx, ids []string) error {
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		in := ` WHERE image_id IN (?` + strings.Repeat(", ?", n-1) + `)`
		for _, table := range []string{"container_aliases", "container_images"} {
			if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM `+table+in), args...); err != nil {
				return fmt.Errorf("sqlstore: remove dead container images: %w", err)
			}
		}
		ids = ids[n:]
	}
	return nil
}

// upsertRows is multiInsert with a conflict clause: rows of width columns
// from flat args, a bounded number of rows per statement. The statement
// of a full batch is prepared once and reused: parsing a statement of
// thousands of placeholders costs about as much as running it.
func upsertRows(ctx context.Context, s *Store, tx *sql.Tx, head string, width int, args []any, tail string) error {
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	per := 6000 / width // under both databases' placeholder limits
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for len(args) > 0 {
		n := min(len(args)/width, per)
		q := s.d.rebind(head + row + strings.Repeat(", "+row, n-1) + tail)
		var err error
		switch {
		case n == per && full == nil && len(args) >= 2*per*width:
			if full, err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("sqlstore: write rows: %w", err)
			}
			fallthrough
		case n == per && full != nil:
			_, err = full.ExecContext(ctx, args[:n*width]...)
		default:
			_, err = tx.ExecContext(ctx, q, args[:n*width]...)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: write rows: %w", err)
		}
		args = args[n*width:]
	}
	return nil
}

// insertContainers inserts new container images: their catalog rows, tags
// and container rows (properties are written by the caller).
func (s *Store) insertContainers(ctx context.Context, tx *sql.Tx, cis []*imaged.ContainerImage) error {
	if len(cis) == 0 {
		return nil
	}
	var imgArgs, tagArgs, cArgs []any
	for _, ci := range cis {
		locs, err := catalogLocations(ci)
		if err != nil {
			return err
		}
		props, _ := catalogProps(nil, ci)
		tagsJSON, propsJSON, err := encodeChildren(ci.Tags, props)
		if err != nil {
			return err
		}
		imgArgs = append(imgArgs, ci.ID, ci.Reference, string(catalogStatus(ci.Status)), string(ci.Visibility), ci.Protected, false,
			nullStr(ci.Owner), "raw", imaged.ContainerFormatDocker, ci.Size, 0, 0,
			micros(ci.CreatedAt), micros(ci.UpdatedAt), locs, ci.Version, tagsJSON, propsJSON)
		for _, t := range ci.Tags {
			tagArgs = append(tagArgs, ci.ID, t)
		}
		row, err := containerRowArgs(ci)
		if err != nil {
			return err
		}
		cArgs = append(cArgs, row...)
	}
	if err := upsertRows(ctx, s, tx, `INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, disk_format, container_format, size, min_disk, min_ram, created_at, updated_at, locations, version, tags_json, properties_json) VALUES `, 18, imgArgs, ""); err != nil {
		return err
	}
	if err := upsertRows(ctx, s, tx, `INSERT INTO image_tags (image_id, value) VALUES `, 2, tagArgs, ""); err != nil {
		return err
	}
	return upsertRows(ctx, s, tx, `INSERT INTO container_images (`+containerInsertCols+`) VALUES `, 21, cArgs, "")
}

// refreshContainers writes the refreshed facts of existing images (and
// the catalog columns that follow them) with multi-row UPDATE ... FROM
// (VALUES ...), which both dialects run.
func (s *Store) refreshContainers(ctx context.Context, tx *sql.Tx, cis []*imaged.ContainerImage, props []map[string]string) error {
	const per = 300
	for start := 0; start < len(cis); start += per {
		part := cis[start:min(start+per, len(cis))]
		var cArgs, iArgs []any
		for k, ci := range part {
			row, err := containerRowArgs(ci)
			if err != nil {
				return err
			}
			// image_id, digest, index_digest, config_digest, size, labels, accelerators, customized, scanned_at, updated_at
			cArgs = append(cArgs, row[0], row[8], row[9], row[10], row[11], row[12], row[13], row[17], row[18], row[20])
			locs, err := catalogLocations(ci)
			if err != nil {
				return err
			}
			_, propsJSON, err := encodeChildren(nil, props[start+k])
			if err != nil {
				return err
			}
			iArgs = append(iArgs, ci.ID, ci.Size, locs, propsJSON, micros(ci.UpdatedAt))
		}
		big := "CAST(? AS BIGINT)"
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE container_images SET digest = v.column2, index_digest = v.column3, config_digest = v.column4, size = v.column5, labels = v.column6, accelerators = v.column7, customized = v.column8, scanned_at = v.column9, updated_at = v.column10 FROM `+
			valuesOf("(?, ?, ?, ?, "+big+", ?, ?, ?, "+big+", "+big+")", len(part))+` WHERE container_images.image_id = v.column1`), cArgs...); err != nil {
			return fmt.Errorf("sqlstore: refresh container images: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE images SET size = v.column2, locations = v.column3, properties_json = v.column4, updated_at = v.column5, version = images.version + 1 FROM `+
			valuesOf("(?, "+big+", ?, ?, "+big+")", len(part))+` WHERE images.id = v.column1`), iArgs...); err != nil {
			return fmt.Errorf("sqlstore: refresh container images: %w", err)
		}
	}
	return nil
}

// valuesOf renders "(VALUES row, row...) AS v" whose columns are named
// column1, column2... in both dialects. PostgreSQL types a VALUES
// parameter as text unless told, hence the casts in the rows of numbers.
func valuesOf(row string, n int) string {
	return "(VALUES " + row + strings.Repeat(", "+row, n-1) + ") AS v"
}
