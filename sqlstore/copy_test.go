package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// fillCatalog puts every kind of row into s: live images with tags,
// properties, locations and a lease, a tombstone, members and tasks.
func fillCatalog(t *testing.T, s *sqlstore.Store, n int) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i := range n {
		name := fmt.Sprintf("img-%03d ünïcode", i)
		size := int64(i * 1000)
		img := &imaged.Image{
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: &name,
			Status: imaged.StatusQueued, Visibility: imaged.VisibilityPublic,
			Protected: i%3 == 0, OSHidden: i%4 == 0, Owner: "proj-" + fmt.Sprint(i%5),
			DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: int64(i), MinRAM: 1 << 40,
			CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base.Add(time.Duration(i) * time.Second),
			Tags:       []string{"t1", fmt.Sprintf("t-%d", i%7)},
			Properties: map[string]string{"os_distro": "debian", "n": fmt.Sprint(i)},
		}
		if i%2 == 0 {
			img.Status, img.Size, img.Checksum = imaged.StatusActive, &size, "abc"
			img.Locations = []imaged.Location{{URL: fmt.Sprintf("file:///x/%d", i), Metadata: map[string]string{"k": "v"}, Store: "fs"}}
		}
		if i%5 == 1 {
			img.Status = imaged.StatusSaving
			img.Lease = &imaged.Lease{ID: fmt.Sprintf("lease-%d", i), Holder: "host:1", Expires: base.Add(time.Hour), Reserved: 42}
		}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			if err := s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "other", Status: imaged.MemberPending, CreatedAt: base, UpdatedAt: base}); err != nil {
				t.Fatal(err)
			}
		}
		if i%6 == 5 {
			if _, err := s.DeleteImage(ctx, img.ID, func(*imaged.Image) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 2 {
			exp := base.Add(48 * time.Hour)
			task := &imaged.Task{ID: fmt.Sprintf("task-%d", i), Type: "api_image_import", Status: imaged.TaskSuccess,
				Input: map[string]any{"image_id": img.ID}, Result: map[string]any{"ok": true}, Owner: img.Owner,
				ImageID: img.ID, CreatedAt: base, UpdatedAt: base, ExpiresAt: &exp}
			if err := s.CreateTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// dump reads every row of the catalog's tables, values normalised across
// dialects (booleans as 0/1, text as strings), sorted.
func dump(t *testing.T, s *sqlstore.Store) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, table := range []string{"images", "image_tags", "image_properties", "image_members", "tasks"} {
		rows, err := s.DB().QueryContext(ctx, `SELECT * FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				switch x := v.(type) {
				case bool:
					if x {
						v = int64(1)
					} else {
						v = int64(0)
					}
				case []byte:
					v = string(x)
				}
				fmt.Fprintf(&b, "%s=%#v;", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		sort.Strings(out[table])
	}
	return out
}

func TestCopy(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t)
	tests := []struct {
		name     string
		from, to func(*testing.T) *sqlstore.Store
		batch    int
	}{
		{"sqlite to postgres", openSQLite, openPostgres, 0},
		{"postgres to sqlite", openPostgres, openSQLite, 0},
		{"sqlite to postgres, small batches", openSQLite, openPostgres, 7},
		{"postgres to postgres", openPostgres, openPostgres, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			from, to := tc.from(t), tc.to(t)
			defer from.Close()
			defer to.Close()
			fillCatalog(t, from, 60)
			before := dump(t, from)
			progressed := map[string]int{}
			var opts []sqlstore.CopyOption
			if tc.batch > 0 {
				opts = append(opts, sqlstore.CopyBatch(tc.batch))
			}
			counts, err := sqlstore.Copy(ctx, from, to, func(table string, n int) {
				if n <= progressed[table] {
					t.Errorf("progress for %s went from %d to %d", table, progressed[table], n)
				}
				progressed[table] = n
			}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			want := sqlstore.Counts{}
			for table, rows := range before {
				want[table] = int64(len(rows))
				if int64(progressed[table]) != want[table] {
					t.Errorf("progress for %s ended at %d, want %d", table, progressed[table], want[table])
				}
			}
			// Tables this fixture leaves empty (containers, agents,
			// metadefs, ...) are copied too; only rows are compared.
			if !reflect.DeepEqual(nonZero(counts), nonZero(want)) {
				t.Errorf("counts = %v, want %v", counts, want)
			}
			if want["images"] != 60 || want["tasks"] == 0 || want["image_members"] == 0 {
				t.Fatalf("fixture too small: %v", want)
			}
			if got := dump(t, to); !reflect.DeepEqual(got, before) {
				for table := range before {
					if !reflect.DeepEqual(got[table], before[table]) {
						t.Errorf("%s differs:\n got %q\nwant %q", table, got[table], before[table])
					}
				}
			}
			if after := dump(t, from); !reflect.DeepEqual(after, before) {
				t.Error("the source changed")
			}
			// The copy is a working store: reads, listings and writes.
			img, err := to.GetImage(ctx, "00000000-0000-4000-8000-000000000001")
			if err != nil {
				t.Fatal(err)
			}
			if img.Lease == nil || img.Lease.Reserved != 42 || len(img.Tags) != 2 || img.Properties["n"] != "1" {
				t.Errorf("copied image = %+v", img)
			}
			if _, err := to.GetImage(ctx, "00000000-0000-4000-8000-000000000005"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
				t.Errorf("tombstone readable after copy: %v", err)
			}
			if _, err := to.UpdateImage(ctx, img.ID, func(i *imaged.Image) error { i.MinDisk = 9; return nil }); err != nil {
				t.Fatal(err)
			}

			// A second copy into the now non-empty target is refused and
			// changes nothing; with CopyForce it replaces the target.
			_, err = sqlstore.Copy(ctx, from, to, nil)
			if imaged.ErrorCode(err) != imaged.ECONFLICT {
				t.Fatalf("copy into non-empty target: %v, want conflict", err)
			}
			if counts, err = sqlstore.Copy(ctx, from, to, nil, sqlstore.CopyForce()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(nonZero(counts), nonZero(want)) {
				t.Errorf("forced counts = %v, want %v", nonZero(counts), nonZero(want))
			}
			if got := dump(t, to); !reflect.DeepEqual(got, before) {
				t.Error("forced copy differs from the source")
			}
		})
	}
}

func TestCopyEmptyAndSame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := openSQLite(t), openSQLite(t)
	defer a.Close()
	defer b.Close()
	counts, err := sqlstore.Copy(ctx, a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range counts {
		if n != 0 {
			t.Errorf("%s: %d rows from an empty catalog", table, n)
		}
	}
	if _, ok := counts["schema_migrations"]; ok {
		t.Error("schema_migrations was copied")
	}
	if got := counts.Tables(); len(got) == 0 || got[0] != "images" {
		t.Errorf("tables = %v, want images first", got)
	}
	if _, err := sqlstore.Copy(ctx, a, a, nil, sqlstore.CopyForce()); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Errorf("copy onto itself: %v", err)
	}
}

// TestCopyRollsBack checks that a failing copy leaves the target as it
// was: a cancelled context stops the copy halfway.
func TestCopyRollsBack(t *testing.T) {
	t.Parallel()
	from, to := openSQLite(t), openSQLite(t)
	defer from.Close()
	defer to.Close()
	fillCatalog(t, from, 30)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := sqlstore.Copy(ctx, from, to, func(table string, n int) {
		if table == "image_properties" {
			cancel()
		}
	}, sqlstore.CopyBatch(5))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var n int
	if err := to.DB().QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("target kept %d images of a failed copy", n)
	}
}

func TestDatabaseVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sqliteDSN := sqltest.SQLite(t)
	if _, err := sqlstore.DatabaseVersion(ctx, sqliteDSN); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Errorf("missing SQLite file: %v, want not found", err)
	}
	if _, err := os.Stat(sqliteDSN); err == nil {
		t.Error("DatabaseVersion created the SQLite file")
	}
	tests := []struct {
		name string
		dsn  func(*testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "sqlite://" + sqliteDSN }},
		{"postgres", func(t *testing.T) string { return sqltest.Postgres(t) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dsn := tc.dsn(t)
			if tc.name == "sqlite" {
				// An empty file: a database nothing migrated yet.
				if err := os.WriteFile(sqliteDSN, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := sqlstore.DatabaseVersion(ctx, dsn); err != nil || v != 0 {
				t.Fatalf("fresh database: %d, %v", v, err)
			}
			s, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if v, err := sqlstore.DatabaseVersion(ctx, dsn); err != nil || v != sqlstore.SchemaVersion() {
				t.Errorf("migrated database: %d, %v; want %d", v, err, sqlstore.SchemaVersion())
			}
		})
	}
}

// nonZero drops the tables without rows: the fixture leaves the tables of
// later features (containers, agents, metadefs, ...) empty, and Copy
// reports them with 0.
func nonZero(c sqlstore.Counts) sqlstore.Counts {
	out := sqlstore.Counts{}
	for t, n := range c {
		if n != 0 {
			out[t] = n
		}
	}
	return out
}
