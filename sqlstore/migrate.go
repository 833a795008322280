package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations of processes starting at the same time ("imaged" in ASCII).
const migrationLockKey = 0x696d61676564

type migration struct {
	version int
	name    string
	body    string
}

// loadMigrations reads the dialect's migrations, named NNNN_what.sql, in
// version order.
func loadMigrations(d *dialect) ([]migration, error) {
	dir := "migrations/" + string(d.name)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s: bad version", e.Name())
		}
		body, err := fs.ReadFile(migrationsFS, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), body: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// SchemaVersion is the highest migration version embedded in this build
// (the same for both dialects).
func SchemaVersion() int {
	ms, err := loadMigrations(sqliteDialect)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// statements splits a migration into statements at semicolons that end a
// line; the migrations contain no procedural code.
func statements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate applies the migrations not yet recorded in schema_migrations,
// each in its own transaction. On PostgreSQL a session advisory lock keeps
// two starting processes from racing; on SQLite the IMMEDIATE write
// transactions do the same.
func migrate(ctx context.Context, d *dialect, db *sql.DB) error {
	ms, err := loadMigrations(d)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if d.name == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockKey)); err != nil {
			return fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLockKey))
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, d, conn, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, d *dialect, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT count(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if n > 0 {
		return nil
	}
	for _, st := range statements(m.body) {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	return nil
}
