package sqlstore_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
)

// pathImages is a catalog large enough for both sides of the sparse/dense
// choice of tag and range filters (a set is sparse under 2,000 images):
// "common" is on 5,400 images (2,250 of them with "pair-b"), "pair-a" and "pair-b" on 2,500 each with no
// image in common, "pair-c" on 2,500 of which 100 also have "pair-a", and a
// few images have a tiny size or an early update time.
func pathImages() []*imaged.Image {
	imgs, _ := genImages(11, 0, 6000)
	for i, img := range imgs {
		img.Visibility = imaged.VisibilityPublic
		if i%10 != 0 {
			img.Tags = append(img.Tags, "common")
		}
		if i < 2500 {
			img.Tags = append(img.Tags, "pair-a")
		}
		if i >= 3000 && i < 5500 {
			img.Tags = append(img.Tags, "pair-b")
		}
		if i >= 2400 && i < 4900 {
			img.Tags = append(img.Tags, "pair-c")
		}
		if i%500 == 7 {
			img.Size = ptr(int64(i))
		}
		if i%700 == 3 {
			img.UpdatedAt = genBase.Add(-time.Hour)
		}
		slices.Sort(img.Tags)
	}
	return imgs
}

// pathQueries are the listings whose plan depends on the sparse/dense
// choice, with the rule each listed image must satisfy.
func pathQueries() []struct {
	name  string
	q     imaged.ImageQuery
	match func(*imaged.Image) bool
} {
	has := func(img *imaged.Image, tags ...string) bool {
		for _, t := range tags {
			if !slices.Contains(img.Tags, t) {
				return false
			}
		}
		return true
	}
	admin := imaged.Scope{Admin: true}
	early := genBase.Add(-time.Minute)
	mid := genBase.Add(3000 * time.Second)
	return []struct {
		name  string
		q     imaged.ImageQuery
		match func(*imaged.Image) bool
	}{
		{"dense tag", imaged.ImageQuery{Scope: admin, Tags: []string{"common"}}, func(i *imaged.Image) bool { return has(i, "common") }},
		{"dense tags, empty intersection", imaged.ImageQuery{Scope: admin, Tags: []string{"pair-a", "pair-b"}}, func(i *imaged.Image) bool { return has(i, "pair-a", "pair-b") }},
		{"dense tags, sparse intersection", imaged.ImageQuery{Scope: admin, Tags: []string{"pair-a", "pair-c"}}, func(i *imaged.Image) bool { return has(i, "pair-a", "pair-c") }},
		{"dense tags, dense intersection", imaged.ImageQuery{Scope: admin, Tags: []string{"common", "pair-b"}}, func(i *imaged.Image) bool { return has(i, "common", "pair-b") }},
		{"sparse and dense tag", imaged.ImageQuery{Scope: admin, Tags: []string{"common", "tag-07"}}, func(i *imaged.Image) bool { return has(i, "common", "tag-07") }},
		{"size_max", imaged.ImageQuery{Scope: admin, SizeMax: ptr(int64(6000))}, func(i *imaged.Image) bool { return i.Size != nil && *i.Size <= 6000 }},
		{"size range, dense", imaged.ImageQuery{Scope: admin, SizeMin: ptr(int64(1 << 20)), SizeMax: ptr(int64(1 << 29))}, func(i *imaged.Image) bool {
			return i.Size != nil && *i.Size >= 1<<20 && *i.Size <= 1<<29
		}},
		{"updated_at lt", imaged.ImageQuery{Scope: admin, UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpLt, Value: early}}}, func(i *imaged.Image) bool { return i.UpdatedAt.Before(early) }},
		{"updated_at gte, dense", imaged.ImageQuery{Scope: admin, UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpGte, Value: mid}}}, func(i *imaged.Image) bool { return !i.UpdatedAt.Before(mid) }},
		{"created_at lte, name sort", imaged.ImageQuery{Scope: admin, CreatedAt: []imaged.TimeFilter{{Op: imaged.OpLte, Value: genBase.Add(100 * time.Second)}},
			Sort: []imaged.SortKey{{Key: "name", Dir: imaged.Asc}, {Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}}, func(i *imaged.Image) bool { return !i.CreatedAt.After(genBase.Add(100 * time.Second)) }},
		{"property and dense tag", imaged.ImageQuery{Scope: admin, Tags: []string{"common"}, Properties: map[string]string{"build": "42"}}, func(i *imaged.Image) bool {
			return has(i, "common") && i.Properties["build"] == "42"
		}},
		{"size_max, size desc", imaged.ImageQuery{Scope: admin, SizeMax: ptr(int64(6000)), Sort: []imaged.SortKey{{Key: "size", Dir: imaged.Desc}, {Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}}, func(i *imaged.Image) bool {
			return i.Size != nil && *i.Size <= 6000
		}},
	}
}

// listAll pages through q 40 images at a time (keyset pages after the
// last image) and returns the ids in order.
func listAll(t *testing.T, s *sqlstore.Store, q imaged.ImageQuery) []string {
	t.Helper()
	q.Limit = 40
	var ids []string
	for range 1000 {
		page, err := s.ListImages(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range page {
			ids = append(ids, img.ID)
		}
		if len(page) < q.Limit {
			return ids
		}
		q.After = page[len(page)-1]
	}
	t.Fatal("listing does not end")
	return nil
}

// The sparse (ids read first) and dense (walk of the sort index) plans of
// tag and range filters list the same images in the same order on both
// databases as a plain filter and sort of the catalog in Go.
func TestListPathsAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	imgs := pathImages()
	stores := map[string]*sqlstore.Store{"sqlite": openSQLite(t), "postgres": openPostgres(t)}
	for _, s := range stores {
		defer s.Close()
		if err := s.BulkInsert(ctx, imgs); err != nil {
			t.Fatal(err)
		}
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range pathQueries() {
		var want []*imaged.Image
		for _, img := range imgs {
			if !img.OSHidden && tc.match(img) {
				want = append(want, img)
			}
		}
		bySize := len(tc.q.Sort) > 0 && tc.q.Sort[0].Key == "size"
		byName := len(tc.q.Sort) > 0 && tc.q.Sort[0].Key == "name"
		slices.SortFunc(want, func(a, b *imaged.Image) int {
			// NULL sorts first; ties by created_at then id, in the
			// first key's direction, as the catalog completes a sort.
			switch {
			case bySize:
				if c := cmpNullable(a.Size, b.Size); c != 0 {
					return -c
				}
			case byName:
				if c := cmpNullable(a.Name, b.Name); c != 0 {
					return c
				}
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
			}
			return -cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
		wantIDs := make([]string, len(want))
		for i, img := range want {
			wantIDs[i] = img.ID
		}
		for name, s := range stores {
			q := tc.q
			q.Visibility = "all"
			if got := listAll(t, s, q); !slices.Equal(got, wantIDs) {
				t.Errorf("%s on %s: %d images, want %d (first differences: %v)", tc.name, name, len(got), len(wantIDs), firstDiff(got, wantIDs))
			}
		}
	}
}

func cmpNullable[T cmp.Ordered](a, b *T) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			return fmt.Sprintf("at %d: got %v, want %v", i, got[i:min(len(got), i+3)], want[i:min(len(want), i+3)])
		}
	}
	return "none"
}

// On PostgreSQL a sparse filter's ids are read first and the page is read
// from them in a MATERIALIZED CTE (planned for all its rows, so never a
// walk of the sort index hoping to meet them), whatever the planner
// believes of the filter; dense filters walk the sort index. On SQLite
// every one of these listings reads through an index, never the table.
func TestPlansSparseDense(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	imgs := pathImages()
	// The plan each listing must have on PostgreSQL: "ids" (the sparse
	// filter's id set, in the CTE) or the sort index walked backwards.
	want := map[string]string{
		"dense tag":                       "images_created_at",
		"dense tags, empty intersection":  "ids",
		"dense tags, sparse intersection": "ids",
		"dense tags, dense intersection":  "images_created_at",
		"sparse and dense tag":            "ids",
		"size_max":                        "ids",
		"size range, dense":               "images_created_at",
		"updated_at lt":                   "ids",
		"updated_at gte, dense":           "images_created_at",
		"created_at lte, name sort":       "ids",
		"property and dense tag":          "ids",
		"size_max, size desc":             "images_size",
	}
	for _, open := range []func(*testing.T) *sqlstore.Store{openSQLite, openPostgres} {
		s := open(t)
		defer s.Close()
		if err := s.BulkInsert(ctx, imgs); err != nil {
			t.Fatal(err)
		}
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == sqlstore.Postgres {
			// Two common tags are intersected through the GIN index.
			conn, err := s.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			_, err = conn.ExecContext(ctx, "SET enable_seqscan = off")
			if err == nil {
				var rows *sql.Rows
				rows, err = conn.QueryContext(ctx, "EXPLAIN "+strings.Replace(sqlstore.TagsProbeSQL, "?", "$1", 1)+" LIMIT 2001", `["pair-a","pair-b"]`)
				for err == nil && rows.Next() {
					var line string
					err = rows.Scan(&line)
					plan = append(plan, line)
				}
			}
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if text := strings.Join(plan, "\n"); !strings.Contains(text, "images_tags_gin") {
				t.Errorf("tag intersection probe: want images_tags_gin:\n%s", text)
			}
		}
		for _, tc := range pathQueries() {
			q := tc.q
			q.Limit = 20
			if s.Dialect() == sqlstore.SQLite {
				plan := sqlitePlan(t, s, q)
				for _, line := range plan {
					if line == "SCAN i" || line == "SCAN t" || line == "SCAN p" {
						t.Errorf("sqlite %s: full table scan:\n%s", tc.name, strings.Join(plan, "\n"))
					}
				}
				continue
			}
			plan := postgresPlan(t, s, q)
			byIDs := strings.Contains(plan, "CTE m") && strings.Contains(plan, "= ANY")
			switch w := want[tc.name]; {
			case w == "":
				t.Errorf("%s: no expected plan", tc.name)
			case strings.Contains(plan, "Seq Scan"):
				t.Errorf("postgres %s: sequential scan:\n%s", tc.name, plan)
			case w == "ids" && !byIDs:
				t.Errorf("postgres %s: sparse filter, want its id set read first:\n%s", tc.name, plan)
			case w != "ids" && (byIDs || !strings.Contains(plan, "Index Scan Backward using "+w+" ")):
				t.Errorf("postgres %s: dense filters, want a walk of %s:\n%s", tc.name, w, plan)
			}
			if testing.Verbose() {
				t.Logf("%s:\n%s", tc.name, plan)
			}
		}
	}
}
