package sqlstore_test

import (
	"context"
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
		"created_at":           {Scope: admin, CreatedAt: []imaged.TimeFilter{{Op: imaged.OpGte, Value: t0}}},
		"updated_at":           {Scope: admin, UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpLt, Value: t0}}},
		"visibility":           {Scope: admin, Visibility: "community"},
		"user scope":           {Scope: imaged.Scope{ProjectID: "project-0042"}},
		"user shared pending":  {Scope: imaged.Scope{ProjectID: "project-0042"}, Visibility: "shared", MemberStatus: "pending"},
		"user all":             {Scope: imaged.Scope{ProjectID: "project-0042"}, Visibility: "all", MemberStatus: "all"},
		"keyset default":       {Scope: admin, After: marker},
		"keyset name asc":      {Scope: admin, After: marker, Sort: []imaged.SortKey{{Key: "name", Dir: imaged.Asc}, {Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}},
		"keyset size desc":     {Scope: admin, After: marker, Sort: []imaged.SortKey{{Key: "size", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}},
		"keyset status filter": {Scope: admin, After: marker, Statuses: []string{"active"}},
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
