package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
)

// migrateConfig is the configuration of `imaged migrate`.
type migrateConfig struct {
	Database string // the database to migrate (default: imaged.db in DataDir)
	DataDir  string
	From, To string // copy mode: both set
	Force    bool
}

const migrateUsage = `Usage:
  imaged migrate [--database DSN | --data-dir DIR]
      apply the schema migrations of this build and print the schema version
  imaged migrate --from DSN --to DSN [--force]
      copy a whole catalog (e.g. sqlite:///var/lib/imaged/imaged.db to
      postgres://...) into an empty target, then verify row counts per table

`

func parseMigrateFlags(args []string, getenv func(string) string, stderr io.Writer) (*migrateConfig, error) {
	fs := flag.NewFlagSet("imaged migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		fs.PrintDefaults()
	}
	env := func(name, def string) string {
		if v := getenv("IMAGED_" + name); v != "" {
			return v
		}
		return def
	}
	var c migrateConfig
	fs.StringVar(&c.Database, "database", env("DATABASE", ""), "metadata database to migrate: a SQLite file path or postgres://... (default: imaged.db in the data dir) (IMAGED_DATABASE)")
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", "./imaged-data"), "data directory whose imaged.db to migrate (IMAGED_DATA_DIR)")
	fs.StringVar(&c.From, "from", "", "copy mode: the source database (never changed); must be at this build's schema version")
	fs.StringVar(&c.To, "to", "", "copy mode: the target database (migrated, then filled); must be empty unless --force")
	fs.BoolVar(&c.Force, "force", false, "copy mode: replace the rows of a non-empty target")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (c.From == "") != (c.To == "") {
		return nil, errors.New("--from and --to go together")
	}
	if c.From != "" && (isSet(fs, "database") || isSet(fs, "data-dir")) {
		return nil, errors.New("--database and --data-dir do not go with --from/--to")
	}
	if c.Force && c.From == "" {
		return nil, errors.New("--force only goes with --from/--to")
	}
	if c.From != "" && sameDatabase(c.From, c.To) {
		return nil, errors.New("--from and --to name the same database")
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.DataDir, "imaged.db")
	}
	return &c, nil
}

// sameDatabase reports whether two DSNs obviously name one database (the
// same PostgreSQL URL, or the same SQLite file), so that a --force copy
// cannot wipe its own source.
func sameDatabase(a, b string) bool {
	file := func(dsn string) string {
		p := sqlitePath(dsn)
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return p
	}
	pg := func(s string) bool {
		return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
	}
	switch {
	case pg(a) && pg(b):
		return a == b
	case pg(a) || pg(b):
		return false
	}
	return file(a) == file(b)
}

// migrateCmd runs `imaged migrate`.
func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseMigrateFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintf(stderr, "imaged migrate: %v\n", err)
		return 2
	}
	if c.From != "" {
		err = copyCatalog(ctx, c, stdout)
	} else {
		err = migrateOnly(ctx, c.Database, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "imaged migrate: %v\n", err)
		return 1
	}
	return 0
}

func migrateOnly(ctx context.Context, dsn string, stdout io.Writer) error {
	if !strings.HasPrefix(dsn, "postgres") {
		// A new SQLite file needs its directory.
		if err := os.MkdirAll(filepath.Dir(sqlitePath(dsn)), 0o750); err != nil {
			return err
		}
	}
	before, err := sqlstore.DatabaseVersion(ctx, dsn)
	if err != nil && imaged.ErrorCode(err) != imaged.ENOTFOUND {
		return fmt.Errorf("database %s: %w", redactDSN(dsn), err)
	}
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("cannot open database %s: %w", redactDSN(dsn), err)
	}
	if err := store.Close(); err != nil {
		return err
	}
	after, err := sqlstore.DatabaseVersion(ctx, dsn)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s: schema version %d (was %d; this build: %d)\n", redactDSN(dsn), after, before, sqlstore.SchemaVersion())
	return nil
}

func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	p = strings.TrimPrefix(p, "//")
	p, _, _ = strings.Cut(p, "?")
	return p
}

func copyCatalog(ctx context.Context, c *migrateConfig, stdout io.Writer) error {
	// The source is never migrated (Open would): it must already be at
	// this build's version.
	v, err := sqlstore.DatabaseVersion(ctx, c.From)
	if err != nil {
		return fmt.Errorf("source %s: %w", redactDSN(c.From), err)
	}
	if want := sqlstore.SchemaVersion(); v != want {
		return fmt.Errorf("source %s has schema version %d, this build copies version %d: run `imaged migrate --database` on it first (with this build), then copy", redactDSN(c.From), v, want)
	}
	from, err := sqlstore.Open(ctx, c.From)
	if err != nil {
		return fmt.Errorf("cannot open source %s: %w", redactDSN(c.From), err)
	}
	defer from.Close()
	if !strings.HasPrefix(c.To, "postgres") {
		if err := os.MkdirAll(filepath.Dir(sqlitePath(c.To)), 0o750); err != nil {
			return err
		}
	}
	to, err := sqlstore.Open(ctx, c.To)
	if err != nil {
		return fmt.Errorf("cannot open target %s: %w", redactDSN(c.To), err)
	}
	defer to.Close()
	var opts []sqlstore.CopyOption
	if c.Force {
		opts = append(opts, sqlstore.CopyForce())
	}
	fmt.Fprintf(stdout, "copying %s to %s (schema version %d)\n", redactDSN(c.From), redactDSN(c.To), v)
	last := ""
	counts, err := sqlstore.Copy(ctx, from, to, func(table string, n int) {
		if table != last {
			last = table
			fmt.Fprintf(stdout, "  %s...\n", table)
		}
	}, opts...)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ECONFLICT {
			return fmt.Errorf("%w (use --force to replace its rows)", err)
		}
		return err
	}
	for _, t := range counts.Tables() {
		fmt.Fprintf(stdout, "%-20s %d rows copied and verified\n", t, counts[t])
	}
	fmt.Fprintln(stdout, "done")
	return nil
}
