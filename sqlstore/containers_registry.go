package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imaged/imaged"
)

// Registries and aliases (imaged.ContainerStore).

const registryCols = `name, url, type, projects, username, password, verify_tls, created_at, updated_at`

func registryNotFound(name string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "No registry named %q", name)
}

func scanRegistry(sc rowScanner) (*imaged.Registry, error) {
	var (
		r        imaged.Registry
		typ      string
		projects []byte
		c, u     int64
	)
	if err := sc.Scan(&r.Name, &r.URL, &typ, &projects, &r.Username, &r.Password, &r.VerifyTLS, &c, &u); err != nil {
		return nil, err
	}
	r.Type = imaged.RegistryType(typ)
	r.CreatedAt, r.UpdatedAt = fromMicros(c), fromMicros(u)
	r.Projects = []string{}
	if err := json.Unmarshal(projects, &r.Projects); err != nil {
		return nil, fmt.Errorf("sqlstore: decode projects of registry %s: %w", r.Name, err)
	}
	if r.Projects == nil {
		r.Projects = []string{}
	}
	return &r, nil
}

// registryArgs are r's values in registryCols order.
func registryArgs(r *imaged.Registry) ([]any, error) {
	projects, err := json.Marshal(r.Projects)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: encode projects: %w", err)
	}
	if r.Projects == nil {
		projects = []byte("[]")
	}
	return []any{r.Name, r.URL, string(r.Type), string(projects), r.Username, r.Password, r.VerifyTLS, micros(r.CreatedAt), micros(r.UpdatedAt)}, nil
}

// CreateRegistry inserts a registry; its zero CreatedAt and UpdatedAt are
// set to now (on r too). ECONFLICT if the name is taken.
func (s *Store) CreateRegistry(ctx context.Context, r *imaged.Registry) error {
	if r == nil || r.Name == "" {
		return imaged.Errorf(imaged.EINVALID, "registry name is required")
	}
	now := s.now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	args, err := registryArgs(r)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO registries (`+registryCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`), args...)
	if err != nil {
		return fmt.Errorf("sqlstore: create registry: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: create registry: %w", err)
	} else if n == 0 {
		return imaged.Errorf(imaged.ECONFLICT, "A registry named %q already exists", r.Name)
	}
	return nil
}

// GetRegistry returns one registry.
func (s *Store) GetRegistry(ctx context.Context, name string) (*imaged.Registry, error) {
	r, err := scanRegistry(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+registryCols+` FROM registries WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registryNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get registry: %w", err)
	}
	return r, nil
}

// ListRegistries returns every registry, by name.
func (s *Store) ListRegistries(ctx context.Context) ([]*imaged.Registry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+registryCols+` FROM registries ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list registries: %w", err)
	}
	defer rows.Close()
	out := []*imaged.Registry{}
	for rows.Next() {
		r, err := scanRegistry(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list registries: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list registries: %w", err)
	}
	return out, nil
}

// UpdateRegistry is a read-modify-write of one registry under its row lock
// (or SQLite's single writer). The name and creation time stay; UpdatedAt
// is set to now unless fn set it.
func (s *Store) UpdateRegistry(ctx context.Context, name string, fn func(*imaged.Registry) error) (*imaged.Registry, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: update registry: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if s.d.name == Postgres {
		lock = " FOR UPDATE"
	}
	old, err := scanRegistry(tx.QueryRowContext(ctx, s.d.rebind(`SELECT `+registryCols+` FROM registries WHERE name = ?`+lock), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registryNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: update registry: %w", err)
	}
	r := *old
	r.Projects = append([]string{}, old.Projects...)
	if err := fn(&r); err != nil {
		return nil, err
	}
	r.Name, r.CreatedAt = old.Name, old.CreatedAt
	if r.UpdatedAt.Equal(old.UpdatedAt) {
		r.UpdatedAt = s.now()
	}
	if r.Projects == nil {
		r.Projects = []string{}
	}
	args, err := registryArgs(&r)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE registries SET url = ?, type = ?, projects = ?, username = ?, password = ?, verify_tls = ?, created_at = ?, updated_at = ? WHERE name = ?`),
		append(args[1:], name)...); err != nil {
		return nil, fmt.Errorf("sqlstore: update registry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: update registry: %w", err)
	}
	return &r, nil
}

// DeleteRegistry removes a registry that no live or forgotten container
// image names. Dead container rows (catalog row deleted) of the registry
// go with it.
func (s *Store) DeleteRegistry(ctx context.Context, name string) error {
	return retry(ctx, isTransient, func() error { return s.deleteRegistry(ctx, name) })
}

func (s *Store) deleteRegistry(ctx context.Context, name string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: delete registry: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if s.d.name == Postgres {
		lock = " FOR UPDATE" // waits for scans holding it FOR SHARE
	}
	var n string
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT name FROM registries WHERE name = ?`+lock), name).Scan(&n); errors.Is(err, sql.ErrNoRows) {
		return registryNotFound(name)
	} else if err != nil {
		return fmt.Errorf("sqlstore: delete registry: %w", err)
	}
	var count int64
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT count(*)`+liveJoin+` WHERE c.registry = ?`), name).Scan(&count); err != nil {
		return fmt.Errorf("sqlstore: delete registry: %w", err)
	}
	if count > 0 {
		return imaged.Errorf(imaged.ECONFLICT, "Registry %q still has %d container images; purge them first", name, count)
	}
	for _, q := range []string{
		`DELETE FROM container_aliases WHERE image_id IN (SELECT image_id FROM container_images WHERE registry = ?)`,
		`DELETE FROM container_images WHERE registry = ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), name); err != nil {
			return fmt.Errorf("sqlstore: delete registry: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM registries WHERE name = ?`), name); err != nil {
		return fmt.Errorf("sqlstore: delete registry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: delete registry: %w", err)
	}
	return nil
}

func aliasNotFound(alias string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "No alias named %q", alias)
}

func scanAlias(sc rowScanner) (*imaged.ContainerAlias, error) {
	var a imaged.ContainerAlias
	var c int64
	if err := sc.Scan(&a.Alias, &a.ImageID, &c); err != nil {
		return nil, err
	}
	a.CreatedAt = fromMicros(c)
	return &a, nil
}

// PutAlias creates or moves an alias. Moving it keeps nothing of the old
// target: CreatedAt is the time it started naming its image.
func (s *Store) PutAlias(ctx context.Context, alias, imageID string) (*imaged.ContainerAlias, error) {
	if alias == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "alias is required")
	}
	var out *imaged.ContainerAlias
	err := retry(ctx, isTransient, func() (err error) {
		out, err = s.putAlias(ctx, alias, imageID)
		return err
	})
	return out, err
}

func (s *Store) putAlias(ctx context.Context, alias, imageID string) (*imaged.ContainerAlias, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: put alias: %w", err)
	}
	defer tx.Rollback()
	lock := ""
	if s.d.name == Postgres {
		lock = " FOR SHARE OF c" // a concurrent purge waits
	}
	var id string
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT c.image_id`+liveJoin+` WHERE c.image_id = ?`+lock), imageID).Scan(&id); errors.Is(err, sql.ErrNoRows) {
		return nil, containerNotFound(imageID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: put alias: %w", err)
	}
	var taken string
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT c.image_id`+liveJoin+` WHERE c.reference = ? AND c.status = 'alive' LIMIT 1`), alias).Scan(&taken); err == nil {
		return nil, imaged.Errorf(imaged.ECONFLICT, "Alias %q is the reference of a live container image", alias)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: put alias: %w", err)
	}
	a, err := scanAlias(tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO container_aliases (alias, image_id, created_at) VALUES (?, ?, ?)
ON CONFLICT (alias) DO UPDATE SET image_id = excluded.image_id,
  created_at = CASE WHEN container_aliases.image_id = excluded.image_id THEN container_aliases.created_at ELSE excluded.created_at END
RETURNING alias, image_id, created_at`), alias, imageID, micros(s.now())))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: put alias: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: put alias: %w", err)
	}
	return a, nil
}

// aliasJoin keeps the aliases of dead container images out of reads.
const aliasJoin = ` FROM container_aliases a JOIN container_images c ON c.image_id = a.image_id JOIN images i ON i.id = c.image_id AND i.deleted_at IS NULL`

// GetAlias returns one alias.
func (s *Store) GetAlias(ctx context.Context, alias string) (*imaged.ContainerAlias, error) {
	a, err := scanAlias(s.r.QueryRowContext(ctx, s.d.rebind(`SELECT a.alias, a.image_id, a.created_at`+aliasJoin+` WHERE a.alias = ?`), alias))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, aliasNotFound(alias)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: get alias: %w", err)
	}
	return a, nil
}

// DeleteAlias removes an alias and returns it.
func (s *Store) DeleteAlias(ctx context.Context, alias string) (*imaged.ContainerAlias, error) {
	a, err := scanAlias(s.w.QueryRowContext(ctx, s.d.rebind(`DELETE FROM container_aliases WHERE alias = ? RETURNING alias, image_id, created_at`), alias))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, aliasNotFound(alias)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: delete alias: %w", err)
	}
	return a, nil
}

// ListAliases returns aliases by name, of one image or all, after the
// alias named after, at most limit (<= 0: all).
func (s *Store) ListAliases(ctx context.Context, imageID, after string, limit int) ([]*imaged.ContainerAlias, error) {
	q := `SELECT a.alias, a.image_id, a.created_at` + aliasJoin + ` WHERE 1 = 1`
	var args []any
	if imageID != "" {
		q += ` AND a.image_id = ?`
		args = append(args, imageID)
	}
	if after != "" {
		q += ` AND a.alias > ?`
		args = append(args, after)
	}
	q += ` ORDER BY a.alias`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list aliases: %w", err)
	}
	defer rows.Close()
	out := []*imaged.ContainerAlias{}
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list aliases: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list aliases: %w", err)
	}
	return out, nil
}
