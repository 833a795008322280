package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/imaged/imaged"
)

// Counts is the number of rows per table that a Copy moved (and verified).
type Counts map[string]int64

// Tables returns the tables of c in the order Copy copies them (parents
// before the tables that reference them).
func (c Counts) Tables() []string {
	names := make([]string, 0, len(c))
	for t := range c {
		names = append(names, t)
	}
	sortTables(names)
	return names
}

// CopyOption configures Copy.
type CopyOption func(*copyOptions)

type copyOptions struct {
	force     bool
	batchRows int
}

// CopyForce lets Copy replace the rows of a target that is not empty. The
// replacement happens in the same transaction as the copy, so a failed copy
// leaves the target as it was.
func CopyForce() CopyOption { return func(o *copyOptions) { o.force = true } }

// CopyBatch sets how many rows one INSERT statement carries (default: as
// many as fit 500 rows or 30000 parameters, whichever is fewer).
func CopyBatch(rows int) CopyOption { return func(o *copyOptions) { o.batchRows = rows } }

// notCopied are bookkeeping tables each database keeps for itself: the
// target was migrated by Open already.
var notCopied = map[string]bool{"schema_migrations": true}

// sortTables orders tables for copying: images first, because the other
// image tables reference it, then the rest by name.
func sortTables(names []string) {
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "images") != (names[j] == "images") {
			return names[i] == "images"
		}
		return names[i] < names[j]
	})
}

// Copy copies a whole catalog from one store to another, which may use the
// other dialect: every table the source holds (images including their
// tombstones, leases and locations, tags, properties, members, tasks...),
// row by row, in batched multi-row INSERTs. It reads one consistent
// snapshot of the source and never writes to it; it writes the target in a
// single transaction, so the target gets the whole catalog or nothing.
// Before committing it compares, per table, the rows read, the source's
// count in the snapshot and the target's count, and fails (rolling back)
// on any difference. A target holding any row is refused with ECONFLICT
// unless CopyForce is given. progress, if not nil, is called after each
// batch with the table and the rows copied into it so far.
//
// Both stores must be at the same schema version, which they are when
// both were opened by this build (Open migrates).
func Copy(ctx context.Context, from, to *Store, progress func(table string, n int), opts ...CopyOption) (Counts, error) {
	o := copyOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if from == to {
		return nil, imaged.Errorf(imaged.EINVALID, "sqlstore: copy: source and target are the same store")
	}
	srcTables, err := from.tables(ctx)
	if err != nil {
		return nil, err
	}
	dstTables, err := to.tables(ctx)
	if err != nil {
		return nil, err
	}
	var tables []string
	for t := range srcTables {
		if notCopied[t] {
			continue
		}
		if _, ok := dstTables[t]; !ok {
			return nil, imaged.Errorf(imaged.EINVALID, "sqlstore: copy: target has no table %s (schema versions differ?)", t)
		}
		tables = append(tables, t)
	}
	sortTables(tables)

	// The source: one read-only snapshot (REPEATABLE READ on PostgreSQL;
	// on SQLite a WAL read transaction sees one snapshot from its first
	// read).
	srcOpts := &sql.TxOptions{ReadOnly: true}
	if from.d.name == Postgres {
		srcOpts.Isolation = sql.LevelRepeatableRead
	}
	src, err := from.r.BeginTx(ctx, srcOpts)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: copy: begin source: %w", err)
	}
	defer src.Rollback()
	dst, err := to.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: copy: begin target: %w", err)
	}
	defer dst.Rollback()

	// Emptiness of the target, checked inside the writing transaction.
	var busy []string
	for t := range dstTables {
		if notCopied[t] {
			continue
		}
		n, err := countRows(ctx, dst, t)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("%s (%d rows)", t, n))
		}
	}
	if len(busy) > 0 {
		if !o.force {
			sort.Strings(busy)
			return nil, imaged.Errorf(imaged.ECONFLICT, "target database is not empty: %s", strings.Join(busy, ", "))
		}
		// Children first, so that no reference dangles.
		for i := len(tables) - 1; i >= 0; i-- {
			if _, err := dst.ExecContext(ctx, `DELETE FROM `+quoteIdent(tables[i])); err != nil {
				return nil, fmt.Errorf("sqlstore: copy: empty %s: %w", tables[i], err)
			}
		}
	}

	counts := Counts{}
	for _, t := range tables {
		n, err := copyTable(ctx, to, src, dst, t, srcTables[t], dstTables[t], o.batchRows, progress)
		if err != nil {
			return nil, err
		}
		inSrc, err := countRows(ctx, src, t)
		if err != nil {
			return nil, err
		}
		inDst, err := countRows(ctx, dst, t)
		if err != nil {
			return nil, err
		}
		if n != inSrc || inDst != inSrc {
			return nil, imaged.Errorf(imaged.EINTERNAL, "sqlstore: copy: %s: source has %d rows, read %d, target has %d", t, inSrc, n, inDst)
		}
		counts[t] = n
	}
	if err := dst.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: copy: commit: %w", err)
	}
	if to.d.name == Postgres {
		// The planner of a freshly filled database has no statistics.
		if err := to.analyze(ctx); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

// column is a table column and whether it holds a boolean (PostgreSQL's
// BOOLEAN; SQLite keeps booleans as integers).
type column struct {
	name    string
	boolean bool
}

// tables lists the store's tables with their columns.
func (s *Store) tables(ctx context.Context) (map[string][]column, error) {
	var q string
	switch s.d.name {
	case Postgres:
		q = `SELECT c.table_name, c.column_name, c.data_type = 'boolean'
			FROM information_schema.columns c JOIN information_schema.tables t
			  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
			ORDER BY c.table_name, c.ordinal_position`
	default:
		q = `SELECT m.name, p.name, 0 FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
			ORDER BY m.name, p.cid`
	}
	rows, err := s.w.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string][]column{}
	for rows.Next() {
		var t string
		var c column
		if err := rows.Scan(&t, &c.name, &c.boolean); err != nil {
			return nil, fmt.Errorf("sqlstore: list tables: %w", err)
		}
		out[t] = append(out[t], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list tables: %w", err)
	}
	return out, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func countRows(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count %s: %w", table, err)
	}
	return n, nil
}

// copyTable streams one table from src into dst and returns the rows read.
// Columns are matched by name; values pass through unchanged except
// booleans, which SQLite stores as 0/1.
func copyTable(ctx context.Context, to *Store, src, dst *sql.Tx, table string, srcCols, dstCols []column, batchRows int, progress func(string, int)) (int64, error) {
	dstBool := map[string]bool{}
	for _, c := range dstCols {
		dstBool[c.name] = c.boolean
	}
	names := make([]string, len(srcCols))
	toBool := make([]bool, len(srcCols))
	for i, c := range srcCols {
		b, ok := dstBool[c.name]
		if !ok {
			return 0, imaged.Errorf(imaged.EINVALID, "sqlstore: copy: target table %s has no column %s (schema versions differ?)", table, c.name)
		}
		names[i] = quoteIdent(c.name)
		toBool[i] = b
	}
	if len(srcCols) != len(dstCols) {
		return 0, imaged.Errorf(imaged.EINVALID, "sqlstore: copy: table %s has %d columns in the source, %d in the target", table, len(srcCols), len(dstCols))
	}
	width := len(names)
	if batchRows <= 0 {
		batchRows = min(500, 30000/width)
	}
	// Ordered by the first column (the primary key or its first part) so
	// that the target is filled in index order.
	rows, err := src.QueryContext(ctx, `SELECT `+strings.Join(names, ", ")+` FROM `+quoteIdent(table)+` ORDER BY 1`)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: copy: read %s: %w", table, err)
	}
	defer rows.Close()
	head := `INSERT INTO ` + quoteIdent(table) + ` (` + strings.Join(names, ", ") + `) VALUES `
	var (
		n     int64
		args  = make([]any, 0, batchRows*width)
		vals  = make([]any, width)
		ptrs  = make([]any, width)
		flush = func() error {
			if len(args) == 0 {
				return nil
			}
			if err := multiInsert(ctx, to, dst, head, width, args); err != nil {
				return fmt.Errorf("sqlstore: copy: write %s: %w", table, err)
			}
			args = args[:0]
			if progress != nil {
				progress(table, int(n))
			}
			return nil
		}
	)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("sqlstore: copy: read %s: %w", table, err)
		}
		for i, v := range vals {
			args = append(args, convertValue(v, toBool[i], to.d.name))
		}
		n++
		if len(args) >= batchRows*width {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlstore: copy: read %s: %w", table, err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// convertValue adapts one scanned value to the target's column type.
func convertValue(v any, toBool bool, target Dialect) any {
	switch x := v.(type) {
	case []byte:
		// Text read as bytes: copy, since the driver reuses the buffer.
		return string(x)
	case int64:
		if toBool {
			return x != 0
		}
	case bool:
		if target == SQLite {
			if x {
				return int64(1)
			}
			return int64(0)
		}
	}
	return v
}

// DatabaseVersion reports the schema version recorded in the database named
// by dsn (0 if it has none yet) without migrating or otherwise changing it:
// a tool about to read a database it must not change (the source of a
// copy) checks this against SchemaVersion instead of letting Open migrate.
// A SQLite file that does not exist is ENOTFOUND (it is not created).
func DatabaseVersion(ctx context.Context, dsn string) (int, error) {
	var db *sql.DB
	var err error
	if isPostgresDSN(dsn) {
		db, err = sql.Open("pgx", dsn)
	} else {
		var rdsn string
		if _, rdsn, _, err = sqliteDSNs(dsn); err != nil {
			return 0, err
		}
		path, _, _ := strings.Cut(rdsn, "?")
		if _, serr := os.Stat(path); serr != nil {
			return 0, imaged.Errorf(imaged.ENOTFOUND, "no SQLite database at %s", path)
		}
		// mode=ro: not even the WAL pragma may write to it.
		db, err = sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: open: %w", err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return 0, imaged.Errorf(imaged.EUNAVAILABLE, "metadata database unreachable: %v", err)
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		// No schema_migrations table: nothing was ever migrated. Tell
		// that apart from a database that does not answer.
		if perr := db.PingContext(ctx); perr == nil {
			return 0, nil
		}
		return 0, fmt.Errorf("sqlstore: schema version: %w", err)
	}
	return int(v.Int64), nil
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
