package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// benchImages is the catalog size of the listing benchmarks.
const benchImages = 1_000_000

// genVersion changes whenever genImages changes, so cached databases are
// rebuilt.
const genVersion = 1

// seedBench loads the benchmark catalog in transactions of 20,000 images.
func seedBench(b *testing.B, s *sqlstore.Store) {
	ctx := context.Background()
	start := time.Now()
	const per = 20_000
	for i := 0; i < benchImages; i += per {
		imgs, members := genImages(7, i, per)
		if err := s.BulkInsert(ctx, imgs); err != nil {
			b.Fatal(err)
		}
		if err := s.BulkMembers(ctx, members); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Analyze(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d images in %v", benchImages, time.Since(start).Round(time.Second))
}

// benchSQLite opens the cached SQLite catalog under os.TempDir, building it
// on first use (keyed by the generator version).
func benchSQLite(b *testing.B) *sqlstore.Store {
	ctx := context.Background()
	// Keyed by generator only: Open migrates an older file forward, which
	// for new indexes takes seconds where rebuilding takes ten minutes.
	path := filepath.Join(os.TempDir(), fmt.Sprintf("imaged-bench-g%d-%d.db", genVersion, benchImages))
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".building"
		os.Remove(tmp)
		s, err := sqlstore.Open(ctx, tmp)
		if err != nil {
			b.Fatal(err)
		}
		seedBench(b, s)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
	}
	s, err := sqlstore.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchPostgres opens (building on first use) a database kept on the test
// server between runs.
func benchPostgres(b *testing.B) *sqlstore.Store {
	ctx := context.Background()
	server := sqltest.PostgresServer(b)
	// Keyed by generator only, as for SQLite: Open migrates it forward.
	name := fmt.Sprintf("imaged_bench_g%d_%d", genVersion, benchImages)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	dsn := sqltest.WithDatabase(server, name)
	if exists {
		s, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM images`).Scan(&n); err == nil && n == benchImages {
			return s
		}
		s.Close()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		b.Fatal(err)
	}
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	seedBench(b, s)
	// What autovacuum does to a catalog after a bulk load (its insert
	// threshold triggers it): without the visibility map no index-only
	// scan is possible, and every tag or member probe reads heap pages.
	if _, err := s.DB().ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkListSQLite(b *testing.B) {
	s := benchSQLite(b)
	defer s.Close()
	benchList(b, s, nil)
}

func BenchmarkListPostgres(b *testing.B) {
	s := benchPostgres(b)
	defer s.Close()
	benchList(b, s, explainPostgres)
}

// slowP99 is the latency target of a listing; a query whose p99 misses it
// gets its plan logged (with -v) so that the miss can be explained.
const slowP99 = 20 * time.Millisecond

// explainPostgres logs EXPLAIN (ANALYZE, BUFFERS) of a listing query.
func explainPostgres(b *testing.B, s *sqlstore.Store, q imaged.ImageQuery) {
	query, args, err := s.ListSQL(q)
	if err != nil {
		b.Fatal(err)
	}
	rows, err := s.DB().QueryContext(context.Background(), "EXPLAIN (ANALYZE, BUFFERS) "+query, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	b.Logf("p99 over %v; args %v\n%s\n%s", slowP99, args, query, strings.Join(plan, "\n"))
}

// benchList lists 20 images with each filter and each sort key of
// planQueries and reports p50/p99 latencies; explain, if not nil, is called
// for each listing whose p99 is over slowP99.
func benchList(b *testing.B, s *sqlstore.Store, explain func(*testing.B, *sqlstore.Store, imaged.ImageQuery)) {
	ctx := context.Background()
	// The marker of the keyset queries sits in the middle of the catalog
	// and has a size (so that "keyset size desc" has NULL and non-NULL
	// sizes after it).
	page, err := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Limit: 1, SizeMin: ptr(int64(0)),
		CreatedAt: []imaged.TimeFilter{{Op: imaged.OpLte, Value: genBase.Add(benchImages / 2 * time.Second)}},
		Sort:      []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}})
	if err != nil || len(page) == 0 {
		b.Fatal("no marker image", err)
	}
	marker := page[0]
	qs := planQueries(marker)
	names := make([]string, 0, len(qs))
	for n := range qs {
		names = append(names, n)
	}
	sort.Strings(names)
	b.Run("GetImage", func(b *testing.B) {
		measure(b, func() error { _, err := s.GetImage(ctx, marker.ID); return err })
	})
	for _, name := range names {
		q := qs[name]
		b.Run(name, func(b *testing.B) {
			p99 := measure(b, func() error { _, err := s.ListImages(ctx, q); return err })
			if explain != nil && p99 > slowP99 {
				explain(b, s, q)
			}
		})
	}
}

// measure runs fn b.N times, reports p50 and p99 in ms and returns p99.
func measure(b *testing.B, fn func() error) time.Duration {
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	return lat[min(len(lat)-1, int(0.99*float64(len(lat))))]
}
