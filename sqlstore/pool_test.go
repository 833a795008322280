package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// The pool options reach the PostgreSQL pool: after a burst that used
// every connection, only WithMaxIdleConns of them stay open; and every
// connection plans listings per call (plan_cache_mode), since a generic
// plan of "size <= $1" walked a million rows.
func TestPoolOptionsPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := sqltest.Postgres(t)
	s, err := sqlstore.Open(ctx, dsn, sqlstore.WithMaxConns(4), sqlstore.WithMaxIdleConns(1), sqlstore.WithConnMaxLifetime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	var conns []*sql.Conn
	for range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	var mode string
	if err := conns[0].QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Errorf("plan_cache_mode %q, want force_custom_plan", mode)
	}
	for _, c := range conns {
		c.Close()
	}
	st := db.Stats()
	if st.MaxOpenConnections != 4 || st.Idle != 1 || st.OpenConnections != 1 {
		t.Errorf("after a burst: max %d open %d idle %d; want 4, 1, 1", st.MaxOpenConnections, st.OpenConnections, st.Idle)
	}

	// A DSN's own plan_cache_mode wins.
	s2, err := sqlstore.Open(ctx, dsn+"&plan_cache_mode=auto")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.DB().QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "auto" {
		t.Errorf("plan_cache_mode from the DSN: %q, want auto", mode)
	}
}
