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
	"github.com/imaged/imaged/metadefs"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
)

const metadefsUsage = `Usage:
  imaged metadefs load [--database DSN | --data-dir DIR] DIR
      import the metadata definition files (Glance's etc/metadefs/*.json
      format) of DIR; namespaces that already exist are left alone

`

// metadefsCmd runs `imaged metadefs`.
func metadefsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "load" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, metadefsUsage)
			return 0
		}
		fmt.Fprint(stderr, metadefsUsage)
		return 2
	}
	fs := flag.NewFlagSet("imaged metadefs load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, metadefsUsage)
		fs.PrintDefaults()
	}
	env := func(name, def string) string {
		if v := getenv("IMAGED_" + name); v != "" {
			return v
		}
		return def
	}
	database := fs.String("database", env("DATABASE", ""), "metadata database: a SQLite file path or postgres://... (default: imaged.db in the data dir) (IMAGED_DATABASE)")
	dataDir := fs.String("data-dir", env("DATA_DIR", "./imaged-data"), "data directory whose imaged.db to load into (IMAGED_DATA_DIR)")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "imaged metadefs load: want one directory, got %d arguments\n\n%s", fs.NArg(), metadefsUsage)
		return 2
	}
	dsn := *database
	if dsn == "" {
		dsn = filepath.Join(*dataDir, "imaged.db")
	}
	if err := loadMetadefs(ctx, dsn, fs.Arg(0), stdout); err != nil {
		fmt.Fprintf(stderr, "imaged metadefs load: %s\n", describeErr(err))
		return 1
	}
	return 0
}

// describeErr shows an *imaged.Error's message, any other error whole.
func describeErr(err error) string {
	var ie *imaged.Error
	if errors.As(err, &ie) {
		return strings.Replace(err.Error(), ie.Error(), ie.Message, 1)
	}
	return err.Error()
}

func loadMetadefs(ctx context.Context, dsn, dir string, stdout io.Writer) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if !strings.HasPrefix(dsn, "postgres") {
		if err := os.MkdirAll(filepath.Dir(sqlitePath(dsn)), 0o750); err != nil {
			return err
		}
	}
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("cannot open database %s: %w", redactDSN(dsn), err)
	}
	defer store.Close()
	res, err := metadefs.New(store, policy.Secure(), nil).Load(ctx, dir)
	created := 0
	for _, r := range res {
		if r.Created {
			created++
			fmt.Fprintf(stdout, "loaded %s (%s)\n", r.Namespace, filepath.Base(r.File))
		} else {
			fmt.Fprintf(stdout, "skipped %s (%s): it already exists\n", r.Namespace, filepath.Base(r.File))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d namespaces loaded, %d skipped\n", created, len(res)-created)
	return nil
}
