// Package sqlstore implements imaged.ImageStore over database/sql, for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx). The two dialects share
// all queries; the differences (placeholders, NULL ordering, JSON
// aggregation, row locks) live in the dialect struct.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/imaged/imaged"
)

// Dialect names the SQL database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Option configures Open.
type Option func(*options)

type options struct {
	clock     imaged.Clock
	readConns int
	pgConns   int
	idleConns int           // 0: as many as the pool holds
	lifetime  time.Duration // 0: connections live forever
}

// WithClock sets the clock used for tombstone times (DeletedAt).
func WithClock(c imaged.Clock) Option { return func(o *options) { o.clock = c } }

// WithReadConns sets the size of the SQLite read pool (default 4). Writes
// always go through a single connection.
func WithReadConns(n int) Option { return func(o *options) { o.readConns = n } }

// WithMaxConns sets the PostgreSQL pool size (default 16).
func WithMaxConns(n int) Option { return func(o *options) { o.pgConns = n } }

// WithMaxIdleConns caps the idle connections kept by the PostgreSQL pool or
// the SQLite read pool (default: the pool size, so none is ever closed for
// idleness).
func WithMaxIdleConns(n int) Option { return func(o *options) { o.idleConns = n } }

// WithConnMaxLifetime closes pooled connections after d (default: never);
// the single SQLite writer connection is kept.
func WithConnMaxLifetime(d time.Duration) Option { return func(o *options) { o.lifetime = d } }

// Store is an imaged.ImageStore over SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	d     *dialect
	w     *sql.DB // writes (and, on PostgreSQL, reads too)
	r     *sql.DB // reads
	clock imaged.Clock

	getStmt *sql.Stmt     // GetImage, prepared once on the read pool
	stmts   *stmtCache    // listing statements on the read pool
	ckpt    *checkpointer // SQLite: background WAL checkpoints
	// wstmts holds SQLite's hot write statements prepared on the single
	// writer connection (preparing took a tenth of a create's CPU);
	// nil on PostgreSQL, whose driver caches prepared statements itself.
	wstmts *stmtCache
}

// maxListStmts bounds the listing statements kept prepared per Store.
const maxListStmts = 256

var _ imaged.ImageStore = (*Store)(nil)

// Open connects to the database named by dsn and applies the embedded
// migrations. A dsn starting with postgres:// or postgresql:// selects
// PostgreSQL; anything else is a SQLite file path, optionally prefixed with
// "sqlite:" or "file:" and optionally followed by "?" and extra driver
// parameters.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{clock: imaged.SystemClock{}, readConns: 4, pgConns: 16}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Store{clock: o.clock}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.d = postgresDialect
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, imaged.Errorf(imaged.EINVALID, "sqlstore: bad PostgreSQL DSN: %v", err)
		}
		// Two pools. Listings are prepared once and run with many
		// parameter values, and their right plan depends on the values
		// (how rare a tag is, where a range falls); a generic plan
		// (PostgreSQL may switch to one after five runs) cannot see that
		// "size <= $1" matches nothing and may walk a million rows to find
		// it out, so the read pool plans every call
		// (plan_cache_mode=force_custom_plan; under a millisecond per
		// listing). Writes and the primary-key lookup of an image keep
		// PostgreSQL's default, which plans them once: planning on every
		// call doubled the database's CPU per show (a show at 2
		// connections: 7.4-7.8k -> 11-13k requests/s). A DSN's own
		// plan_cache_mode applies to both. With a pool of one connection
		// there is one pool, planning every call.
		wn, rn := splitConns(o.pgConns)
		rcfg := cfg.Copy()
		if _, ok := rcfg.RuntimeParams["plan_cache_mode"]; !ok {
			rcfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
		}
		s.r = stdlib.OpenDB(*rcfg)
		s.r.SetMaxOpenConns(rn)
		s.r.SetMaxIdleConns(o.idle(rn))
		s.r.SetConnMaxLifetime(o.lifetime)
		if wn == 0 {
			s.w = s.r
		} else {
			s.w = stdlib.OpenDB(*cfg)
			s.w.SetMaxOpenConns(wn)
			s.w.SetMaxIdleConns(o.idle(wn))
			s.w.SetConnMaxLifetime(o.lifetime)
		}
	} else {
		s.d = sqliteDialect
		wdsn, rdsn, cdsn, err := sqliteDSNs(dsn)
		if err != nil {
			return nil, err
		}
		if s.w, err = sql.Open("sqlite", wdsn); err != nil {
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
		// One writer connection: SQLite has one writer at a time anyway,
		// and queueing in database/sql is cheaper than SQLITE_BUSY retries.
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxLifetime(0)
		s.w.SetConnMaxIdleTime(0)
		if s.r, err = sql.Open("sqlite", rdsn); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
		}
		s.r.SetMaxOpenConns(o.readConns)
		s.r.SetMaxIdleConns(o.idle(o.readConns))
		s.r.SetConnMaxIdleTime(0)
		s.r.SetConnMaxLifetime(o.lifetime)
		if s.ckpt, err = startCheckpointer(cdsn, checkpointEvery); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "metadata database unreachable: %v", err)
	}
	if err := migrate(ctx, s.d, s.w); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.optimize(ctx, true); err != nil {
		s.Close()
		return nil, err
	}
	// GetImage runs on the writer pool on PostgreSQL (planned once, see
	// above) and on the read pool on SQLite (the writer is SQLite's one
	// writing connection).
	getPool := s.r
	if s.d.name == Postgres {
		getPool = s.w
	}
	if s.getStmt, err = getPool.PrepareContext(ctx, s.d.rebind(s.d.getSQL(false))); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: prepare: %w", err)
	}
	s.stmts = newStmtCache(s.r, maxListStmts)
	if s.d.name == SQLite {
		s.wstmts = newStmtCache(s.w, 3)
		if err := s.wstmts.prepareAll(ctx, insertImageSQL, insertTagSQL, upsertPropertySQL); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlstore: prepare: %w", err)
		}
	}
	return s, nil
}

// splitConns divides PostgreSQL's connection budget between the writer
// pool (writes and image lookups) and the read pool (listings): half each,
// the read pool taking the odd one. A budget of one connection is not
// split (writer 0: the writer uses the read pool).
func splitConns(n int) (writer, reader int) {
	if n <= 1 {
		return 0, max(n, 1)
	}
	return n / 2, n - n/2
}

// idle is the idle-connection cap of a pool of size n.
func (o *options) idle(n int) int {
	if o.idleConns > 0 && o.idleConns < n {
		return o.idleConns
	}
	return n
}

// sqliteDSNs turns a SQLite path into the writer's, the readers' and the
// background checkpointer's DSNs.
func sqliteDSNs(dsn string) (w, r, ckpt string, err error) {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	path = strings.TrimPrefix(path, "//")
	extra := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, extra = path[:i], path[i+1:]
	}
	if path == "" {
		return "", "", "", imaged.Errorf(imaged.EINVALID, "sqlstore: empty SQLite path")
	}
	if _, err := url.ParseQuery(extra); err != nil {
		return "", "", "", imaged.Errorf(imaged.EINVALID, "sqlstore: bad SQLite parameters: %v", err)
	}
	common := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if extra != "" {
		common += "&" + extra
	}
	// The writer begins every transaction IMMEDIATE so that a
	// read-modify-write never has to upgrade a read lock (which is what
	// produces SQLITE_BUSY under concurrency); readers are query-only.
	// The writer leaves checkpoints to the background checkpointer
	// (checkpoint.go), keeping its own automatic one only as a safety net.
	writer := fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)&_txlock=immediate", walAutocheckpointPages, walSizeLimit)
	return path + "?" + common + writer, path + "?" + common + "&_pragma=query_only(1)", path + "?" + common, nil
}

// Dialect reports which database the store uses.
func (s *Store) Dialect() Dialect { return s.d.name }

// DB returns the pool used for writes, for tools and tests that need raw
// access (e.g. EXPLAIN). Do not use it to bypass the store's invariants.
func (s *Store) DB() *sql.DB { return s.w }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return imaged.Errorf(imaged.EUNAVAILABLE, "metadata database unreachable: %v", err)
	}
	return nil
}

// Close releases the pools.
func (s *Store) Close() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	if s.stmts != nil {
		errs = append(errs, s.stmts.close())
	}
	if s.wstmts != nil {
		errs = append(errs, s.wstmts.close())
	}
	if s.w != nil && s.d.name == SQLite {
		// SQLite's advice: let PRAGMA optimize refresh statistics
		// that have gone stale before closing.
		errs = append(errs, s.optimize(context.Background(), false))
	}
	if s.getStmt != nil {
		errs = append(errs, s.getStmt.Close())
	}
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// optimize keeps the planner's statistics useful. At open it runs SQLite's
// PRAGMA optimize=0x10002 (analyse every table that needs it, with
// SQLite's built-in row limit, so it stays fast on a large catalog; only
// once the catalog is larger than the one migration 0002 describes) or
// PostgreSQL's ANALYZE of the tables whose statistics are missing; at
// close, SQLite's plain PRAGMA optimize. The listing queries are written to
// plan well without statistics too (see the EXPLAIN tests); statistics let
// the planner pick the more selective of two filters.
func (s *Store) optimize(ctx context.Context, atOpen bool) error {
	var err error
	switch s.d.name {
	case SQLite:
		// Migration 0002 wrote statistics for a catalog of 10,000
		// images; optimize would replace them with those of a nearly
		// empty table (and then the planner guesses again), so leave
		// small catalogs alone. max(rowid) is an O(log n) size estimate.
		var rows int64
		if err = s.w.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM images`).Scan(&rows); err != nil || rows < 10000 {
			break
		}
		if atOpen {
			_, err = s.w.ExecContext(ctx, `PRAGMA optimize=0x10002`)
		} else {
			_, err = s.w.ExecContext(ctx, `PRAGMA optimize`)
		}
	default:
		var stale bool
		err = s.w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_user_tables WHERE relname = 'images' AND schemaname = current_schema() AND last_analyze IS NULL AND last_autoanalyze IS NULL)`).Scan(&stale)
		if err == nil && stale {
			_, err = s.w.ExecContext(ctx, `ANALYZE images, image_tags, image_properties, image_members`)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: optimize: %w", err)
	}
	return nil
}
