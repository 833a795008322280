package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// The pool options reach the PostgreSQL pools: the connection budget is
// split between the writer pool (writes, image lookups) and the read pool
// (listings); after a burst that used every connection, only
// WithMaxIdleConns of each stay open. The read pool plans every call
// (plan_cache_mode), since a generic plan of "size <= $1" walked a million
// rows; the writer pool keeps PostgreSQL's default, which plans a lookup
// once.
func TestPoolOptionsPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := sqltest.Postgres(t)
	s, err := sqlstore.Open(ctx, dsn, sqlstore.WithMaxConns(4), sqlstore.WithMaxIdleConns(1), sqlstore.WithConnMaxLifetime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		db   *sql.DB
		mode string
	}{
		{"writer", s.DB(), "auto"},
		{"reader", s.ReadDB(), "force_custom_plan"},
	} {
		var conns []*sql.Conn
		for range 2 {
			c, err := tc.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		var mode string
		if err := conns[0].QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != tc.mode {
			t.Errorf("%s pool: plan_cache_mode %q, want %q", tc.name, mode, tc.mode)
		}
		for _, c := range conns {
			c.Close()
		}
		st := tc.db.Stats()
		if st.MaxOpenConnections != 2 || st.Idle != 1 || st.OpenConnections != 1 {
			t.Errorf("%s pool after a burst: max %d open %d idle %d; want 2, 1, 1", tc.name, st.MaxOpenConnections, st.OpenConnections, st.Idle)
		}
	}

	// A budget of one connection is one pool, planning every call.
	s1, err := sqlstore.Open(ctx, dsn, sqlstore.WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if s1.DB() != s1.ReadDB() || s1.DB().Stats().MaxOpenConnections != 1 {
		t.Errorf("a one-connection budget: separate pools or max %d", s1.DB().Stats().MaxOpenConnections)
	}

	// A DSN's own plan_cache_mode wins, in both pools.
	s2, err := sqlstore.Open(ctx, dsn+"&plan_cache_mode=force_generic_plan")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, db := range []*sql.DB{s2.DB(), s2.ReadDB()} {
		var mode string
		if err := db.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "force_generic_plan" {
			t.Errorf("plan_cache_mode from the DSN: %q, want force_generic_plan", mode)
		}
	}
}
