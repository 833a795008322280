package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
)

// planQueries are representative listings: every filter with the default
// order, every sort key in both directions, scopes and a keyset page.
func planQueries(marker *imaged.Image) map[string]imaged.ImageQuery {
	admin := imaged.Scope{Admin: true}
	def := []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}
	t0 := genBase.Add(1000 * time.Second)
	qs := map[string]imaged.ImageQuery{
		"default":              {Scope: admin},
		"ids":                  {Scope: admin, IDs: []string{marker.ID, "x"}},
		"name":                 {Scope: admin, Names: []string{"image-0000042"}},
		"status":               {Scope: admin, Statuses: []string{"killed"}},
		"owner":                {Scope: admin, Owners: []string{"project-0042"}},
		"container_format":     {Scope: admin, ContainerFormat: []string{"docker"}},
		"disk_format":          {Scope: admin, DiskFormat: []string{"iso"}},
		"protected":            {Scope: admin, Protected: ptr(true)},
		"os_hidden":            {Scope: admin, OSHidden: ptr(true)},
		"size_min":             {Scope: admin, SizeMin: ptr(int64(1 << 29))},
		"size_max":             {Scope: admin, SizeMax: ptr(int64(1000))},
		"tag":                  {Scope: admin, Tags: []string{"tag-07"}},
		"tags":                 {Scope: admin, Tags: []string{"tag-07", "tag-08"}},
		"property":             {Scope: admin, Properties: map[string]string{"build": "42"}},
		"checksum":             {Scope: admin, Checksum: "0123456789abcdef0123456789abcdef"},
		"os_hash_value":        {Scope: admin, OSHashValue: "abc"},
		"os_hash_algo":         {Scope: admin, OSHashAlgo: "sha512"},
		"min_ram":              {Scope: admin, MinRAM: ptr(int64(512))},
		"min_disk":             {Scope: admin, MinDisk: ptr(int64(7))},
		"virtual_size":         {Scope: admin, VirtualSize: ptr(int64(1 << 30))},
		"user shared":          {Scope: imaged.Scope{ProjectID: "project-0042"}, Visibility: "shared"},
		"created_at":           {Scope: admin, CreatedAt: []imaged.TimeFilter{{Op: imaged.OpGte, Value: t0}}},
		"updated_at":           {Scope: admin, UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpLt, Value: t0}}},
		"visibility":           {Scope: admin, Visibility: "community"},
		"user scope":           {Scope: imaged.Scope{ProjectID: "project-0042"}},
		"user shared pending":  {Scope: imaged.Scope{ProjectID: "project-0042"}, Visibility: "shared", MemberStatus: "pending"},
		"user all":             {Scope: imaged.Scope{ProjectID: "project-0042"}, Visibility: "all", MemberStatus: "all"},
		"keyset default":       {Scope: admin, After: marker},
		"keyset name asc":      {Scope: admin, After: marker, Sort: []imaged.SortKey{{Key: "name", Dir: imaged.Asc}, {Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}},
		"keyset size desc":     {Scope: admin, After: marker, Sort: []imaged.SortKey{{Key: "size", Dir: imaged.Desc}, {Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}},
		"keyset status filter": {Scope: admin, After: marker, Statuses: []string{"active"}},
		"lease expired":        {Scope: admin, LeaseExpiredBefore: &t0},
	}
	for _, k := range imaged.SortableKeys {
		for _, d := range []imaged.SortDir{imaged.Asc, imaged.Desc} {
			// As the catalog completes a single sort key: created_at
			// and id follow in the same direction.
			sortKeys := []imaged.SortKey{{Key: k, Dir: d}}
			if k != "created_at" && k != "id" {
				sortKeys = append(sortKeys, imaged.SortKey{Key: "created_at", Dir: d})
			}
			if k != "id" {
				sortKeys = append(sortKeys, imaged.SortKey{Key: "id", Dir: d})
			}
			qs["sort "+k+" "+string(d)] = imaged.ImageQuery{Scope: admin, Sort: sortKeys}
		}
	}
	for name, q := range qs {
		if q.Sort == nil {
			q.Sort = def
		}
		q.Limit = 20
		qs[name] = q
	}
	return qs
}

// seedForPlans loads enough rows for the planner's statistics to be those
// of a real catalog.
func seedForPlans(t *testing.T, s *sqlstore.Store) *imaged.Image {
	t.Helper()
	ctx := context.Background()
	imgs, members := genImages(1, 0, 5000)
	if err := s.BulkInsert(ctx, imgs); err != nil {
		t.Fatal(err)
	}
	if err := s.BulkMembers(ctx, members); err != nil {
		t.Fatal(err)
	}
	if err := s.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	return imgs[2500]
}

func TestPlansUseIndexesSQLite(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	defer s.Close()
	marker := seedForPlans(t, s)
	for name, q := range planQueries(marker) {
		query, args, err := s.ListSQL(q)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.DB().Query("EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, line := range plan {
			// "SCAN i" without "USING ... INDEX" reads every row of
			// images (alias i) or of a child table (t, p, m).
			switch strings.TrimSpace(line) {
			case "SCAN i", "SCAN t", "SCAN p", "SCAN m":
				t.Errorf("%s: full table scan:\n%s", name, strings.Join(plan, "\n"))
			}
		}
		if testing.Verbose() {
			t.Logf("%s:\n  %s", name, strings.Join(plan, "\n  "))
		}
	}
}

func TestPlansUseIndexesPostgres(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	defer s.Close()
	marker := seedForPlans(t, s)
	ctx := context.Background()
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// With 5000 rows a sequential scan can be cheapest; forbidding it
	// shows whether an index can serve the query at all.
	if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	for name, q := range planQueries(marker) {
		query, args, err := s.ListSQL(q)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.QueryContext(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan on image") {
			t.Errorf("%s: sequential scan:\n%s", name, text)
		}
		if testing.Verbose() {
			t.Logf("%s:\n%s", name, text)
		}
	}
}

// sqlitePlan returns EXPLAIN QUERY PLAN's lines for q.
func sqlitePlan(t *testing.T, s *sqlstore.Store, q imaged.ImageQuery) []string {
	t.Helper()
	query, args, err := s.ListSQL(q)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB().Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, strings.TrimSpace(detail))
	}
	return plan
}

// A new database has no measured statistics (nobody ran ANALYZE, and
// PRAGMA optimize leaves small catalogs alone); the listings of the
// benchmark must still read only the page through the right index, not
// sort the catalog.
func TestPlansWithoutAnalyzeSQLite(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	defer s.Close()
	imgs, _ := genImages(3, 0, 1000)
	if err := s.BulkInsert(context.Background(), imgs); err != nil {
		t.Fatal(err)
	}
	scope := imaged.Scope{Admin: true, ProjectID: "project-0001"}
	asc := func(k string) []imaged.SortKey {
		return []imaged.SortKey{{Key: k, Dir: imaged.Asc}, {Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}
	}
	for _, tc := range []struct {
		name  string
		q     imaged.ImageQuery
		index string
	}{
		{"default", imaged.ImageQuery{Scope: scope, Limit: 20}, "images_created_at"},
		{"name+status by name", imaged.ImageQuery{Scope: scope, Limit: 20, Names: []string{"image-0000007"}, Statuses: []string{"queued"}, Sort: asc("name")}, "images_name"},
		{"checksum", imaged.ImageQuery{Scope: scope, Limit: 20, Checksum: "x", Statuses: []string{"active"}}, "images_checksum"},
		{"os_hash_value", imaged.ImageQuery{Scope: scope, Limit: 20, OSHashValue: "x", Statuses: []string{"active"}}, "images_os_hash_value"},
	} {
		plan := sqlitePlan(t, s, tc.q)
		text := strings.Join(plan, "\n") + "\n"
		uses := strings.Contains(text, "INDEX "+tc.index+" ") || strings.Contains(text, "INDEX "+tc.index+"\n")
		if !uses || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: want a walk of %s without sorting:\n%s", tc.name, tc.index, text)
		}
	}
}

// Keyset pages on a nullable key whose rest spans NULL and non-NULL values
// are two index ranges, not a walk from the start of the index.
func TestPlansKeysetNullableSQLite(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	defer s.Close()
	marker := seedForPlans(t, s)
	sized, named := *marker, *marker
	sized.Size = ptr(int64(1 << 20))
	named.Name = nil
	desc := []imaged.SortKey{{Key: "size", Dir: imaged.Desc}, {Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}
	asc := []imaged.SortKey{{Key: "name", Dir: imaged.Asc}, {Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}
	for _, tc := range []struct {
		name  string
		q     imaged.ImageQuery
		index string
	}{
		{"size desc after a size", imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Limit: 20, Sort: desc, After: &sized}, "images_size"},
		{"name asc after a NULL name", imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Limit: 20, Sort: asc, After: &named}, "images_name"},
	} {
		plan := sqlitePlan(t, s, tc.q)
		text := strings.Join(plan, "\n")
		if n := strings.Count(text, "SEARCH i USING INDEX "+tc.index+" ("); n != 2 || !strings.Contains(text, "UNION ALL") {
			t.Errorf("%s: want two searches of %s in a UNION ALL:\n%s", tc.name, tc.index, text)
		}
	}
}

// Recovery's lookup of expired leases must read only the few leased rows
// (the partial index images_lease_expires), never walk the catalog, with or
// without statistics.
func TestPlanLeaseExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := genBase.Add(time.Hour)
	// As recovery asks: every visibility (the default leaves out community
	// images), and hidden images in a second query like this one.
	q := imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", LeaseExpiredBefore: &now, Limit: 100,
		Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}}
	for _, tc := range []struct {
		name    string
		open    func(*testing.T) *sqlstore.Store
		analyze bool
	}{
		{"sqlite", openSQLite, false},
		{"sqlite analyzed", openSQLite, true},
		{"postgres", openPostgres, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.open(t)
			defer s.Close()
			imgs, _ := genImages(5, 0, 3000)
			for i, img := range imgs[:30] {
				img.Status = imaged.StatusSaving
				img.Lease = &imaged.Lease{ID: fmt.Sprint("lease-", i), Holder: "h:1", Expires: genBase.Add(time.Duration(i) * time.Minute)}
			}
			if err := s.BulkInsert(ctx, imgs); err != nil {
				t.Fatal(err)
			}
			for _, img := range imgs[:30] {
				l := img.Lease
				if _, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error { i.Lease = l; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if tc.analyze {
				if err := s.Analyze(ctx); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.ListImages(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, img := range imgs[:30] {
				if !img.OSHidden && img.DeletedAt == nil {
					want++
				}
			}
			if len(got) != want {
				t.Errorf("listed %d expired leases, want %d", len(got), want)
			}
			var text string
			if s.Dialect() == sqlstore.SQLite {
				text = strings.Join(sqlitePlan(t, s, q), "\n")
			} else {
				text = postgresPlan(t, s, q)
			}
			if !strings.Contains(text, "images_lease_expires") {
				t.Errorf("want a read of images_lease_expires:\n%s", text)
			}
		})
	}
}

// postgresPlan returns EXPLAIN's text for q, with sequential scans
// discouraged so that the plan shows whether an index can serve q.
func postgresPlan(t *testing.T, s *sqlstore.Store, q imaged.ImageQuery) string {
	t.Helper()
	ctx := context.Background()
	query, args, err := s.ListSQL(q)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	return strings.Join(plan, "\n")
}
