package sqlstore_test

import (
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/sqlstore/storetest"
)

func TestAgentConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunAgents(t, func(t *testing.T) imaged.AgentStore {
		s := openSQLite(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestAgentConformancePostgres(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t)
	storetest.RunAgents(t, func(t *testing.T) imaged.AgentStore {
		s := openPostgres(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
