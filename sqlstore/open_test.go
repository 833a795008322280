package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

func TestOpenDSNs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct{ dsn, file string }{
		{filepath.Join(dir, "a.db"), "a.db"},
		{"sqlite:" + filepath.Join(dir, "b.db"), "b.db"},
		{"file:" + filepath.Join(dir, "c.db"), "c.db"},
		{"sqlite:" + filepath.Join(dir, "d.db") + "?_pragma=cache_size(-2000)", "d.db"},
	} {
		s, err := sqlstore.Open(ctx, tc.dsn)
		if err != nil {
			t.Fatalf("%s: %v", tc.dsn, err)
		}
		if s.Dialect() != sqlstore.SQLite {
			t.Fatalf("%s: dialect %s", tc.dsn, s.Dialect())
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		var mode string
		if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("%s: journal_mode %q %v", tc.dsn, mode, err)
		}
		var fk int
		if err := s.DB().QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("%s: foreign_keys %d %v", tc.dsn, fk, err)
		}
		s.Close()
		// The file is where the DSN said.
		s2, err := sqlstore.Open(ctx, filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s2.DB().QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&n); err != nil || n != sqlstore.SchemaVersion() {
			t.Fatalf("%s: newest migration recorded is %d, %v", tc.dsn, n, err)
		}
		s2.Close()
	}
	if _, err := sqlstore.Open(ctx, "sqlite:"); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("empty path: %v", err)
	}
}

// TestReopenKeepsData checks that migrations are applied once and data
// survives a restart.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := sqltest.SQLite(t)
	s, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	img := &imaged.Image{ID: "11111111-1111-4111-8111-111111111111", Status: imaged.StatusQueued, Visibility: imaged.VisibilityPrivate}
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresConcurrentOpen starts several stores on one empty database at
// once: the advisory lock must let exactly one migrate.
func TestPostgresConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := sqltest.Postgres(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := sqlstore.Open(ctx, dsn)
			if err == nil {
				if s.Dialect() != sqlstore.Postgres {
					t.Errorf("dialect %s", s.Dialect())
				}
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.DB().QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&n); err != nil || n != sqlstore.SchemaVersion() {
		t.Fatalf("newest migration recorded is %d, %v", n, err)
	}
}
