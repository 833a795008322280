package sqlstore_test

import (
	"context"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/sqlstore/storetest"
)

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openPostgres(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), sqltest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) imaged.ImageStore { return openSQLite(t) })
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t) // skip (or fail in CI) once, before the subtests
	storetest.Run(t, func(t *testing.T) imaged.ImageStore { return openPostgres(t) })
}
