package sqlstore_test

import (
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/sqlstore/storetest"
)

func TestTaskConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunTasks(t, func(t *testing.T) imaged.TaskStore {
		s := openSQLite(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestTaskConformancePostgres(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t)
	storetest.RunTasks(t, func(t *testing.T) imaged.TaskStore {
		s := openPostgres(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
