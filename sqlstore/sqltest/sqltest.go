// Package sqltest gives tests fresh databases: a SQLite file in a temp dir
// or a uniquely named PostgreSQL database that is dropped at cleanup.
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

// DefaultPostgres is the server tests use unless IMAGED_TEST_POSTGRES says
// otherwise.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// SQLite returns the path of a SQLite file (not yet created) in a
// directory removed at cleanup.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "imaged.db")
}

// PostgresRequired reports whether a missing PostgreSQL must fail the test
// run rather than skip it (in CI, so that it cannot silently pass).
func PostgresRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("IMAGED_REQUIRE_POSTGRES") == "1"
}

// PostgresServer returns the DSN of the server's maintenance database
// (IMAGED_TEST_POSTGRES or DefaultPostgres), skipping the test if it does
// not answer (failing it when PostgresRequired).
func PostgresServer(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("IMAGED_TEST_POSTGRES")
	if dsn == "" {
		dsn = DefaultPostgres
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		if PostgresRequired() {
			t.Fatalf("PostgreSQL at %s is required (CI/IMAGED_REQUIRE_POSTGRES) but unreachable: %v", redact(dsn), err)
		}
		t.Skipf("PostgreSQL at %s unreachable, skipping: %v", redact(dsn), err)
	}
	return dsn
}

// Postgres creates a uniquely named database on the test server and
// returns its DSN; the database is dropped at cleanup.
func Postgres(t testing.TB) string {
	t.Helper()
	server := PostgresServer(t)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "imaged_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		// FORCE ends sessions a test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return WithDatabase(server, name)
}

// WithDatabase returns dsn pointed at another database on the same server.
func WithDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
