package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

func TestParseMigrateFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*migrateConfig) bool
		wantErr string
	}{
		{name: "defaults", want: func(c *migrateConfig) bool {
			return c.Database == filepath.Join("imaged-data", "imaged.db") && c.From == ""
		}},
		{name: "data dir env", env: map[string]string{"IMAGED_DATA_DIR": "/x"}, want: func(c *migrateConfig) bool { return c.Database == "/x/imaged.db" }},
		{name: "database", args: []string{"--database", "postgres://h/db"}, want: func(c *migrateConfig) bool { return c.Database == "postgres://h/db" }},
		{name: "copy", args: []string{"--from", "sqlite:///a.db", "--to", "postgres://h/db", "--force"},
			want: func(c *migrateConfig) bool { return c.From == "sqlite:///a.db" && c.To == "postgres://h/db" && c.Force }},
		{name: "from alone", args: []string{"--from", "a.db"}, wantErr: "go together"},
		{name: "force alone", args: []string{"--force"}, wantErr: "--force only goes with"},
		{name: "copy and database", args: []string{"--from", "a.db", "--to", "b.db", "--database", "c.db"}, wantErr: "do not go with"},
		{name: "same file", args: []string{"--from", "sqlite:///tmp/../tmp/a.db", "--to", "/tmp/a.db"}, wantErr: "same database"},
		{name: "same postgres", args: []string{"--from", "postgres://h/db", "--to", "postgres://h/db"}, wantErr: "same database"},
		{name: "stray", args: []string{"x"}, wantErr: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			c, err := parseMigrateFlags(tc.args, envOf(tc.env), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Errorf("config = %+v", c)
			}
		})
	}
}

func runMigrate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"migrate"}, args...), envOf(nil), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestMigrateOnly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runMigrate(t, "--data-dir", dir)
	want := fmt.Sprintf("schema version %d (was 0; this build: %d)", sqlstore.SchemaVersion(), sqlstore.SchemaVersion())
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	// Idempotent: a second run finds the schema current.
	code, out, _ = runMigrate(t, "--database", filepath.Join(dir, "imaged.db"))
	want = fmt.Sprintf("schema version %d (was %d;", sqlstore.SchemaVersion(), sqlstore.SchemaVersion())
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, stdout %q; want %q", code, out, want)
	}
	if v, err := sqlstore.DatabaseVersion(context.Background(), filepath.Join(dir, "imaged.db")); err != nil || v != sqlstore.SchemaVersion() {
		t.Errorf("DatabaseVersion = %d, %v", v, err)
	}
}

func TestMigrateCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := sqltest.SQLite(t)
	pg := sqltest.Postgres(t)
	s, err := sqlstore.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 25 {
		name := fmt.Sprint("image ", i)
		img := &imaged.Image{ID: fmt.Sprintf("10000000-0000-4000-8000-%012d", i), Name: &name, Status: imaged.StatusQueued,
			Visibility: imaged.VisibilityShared, Owner: "p", CreatedAt: now, UpdatedAt: now, Tags: []string{"a"}, Protected: i%2 == 0}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteImage(ctx, "10000000-0000-4000-8000-000000000003", func(*imaged.Image) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	srcStat, _ := os.Stat(src)

	code, out, errOut := runMigrate(t, "--from", "sqlite://"+src, "--to", pg)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"images               25 rows copied and verified", "image_tags           24 rows", "image_members        0 rows", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "schema_migrations") {
		t.Errorf("schema_migrations listed:\n%s", out)
	}
	// The target serves the catalog, tombstone included.
	p, err := sqlstore.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.GetImage(ctx, "10000000-0000-4000-8000-000000000004")
	if err != nil || !img.Protected || img.Tags[0] != "a" {
		t.Errorf("copied image %+v, %v", img, err)
	}
	if _, err := p.GetImage(ctx, "10000000-0000-4000-8000-000000000003"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Errorf("deleted image: %v", err)
	}
	p.Close()

	code, _, errOut = runMigrate(t, "--from", src, "--to", pg)
	if code != 1 || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "--force") {
		t.Errorf("second copy: exit %d, stderr %q", code, errOut)
	}
	code, out, errOut = runMigrate(t, "--from", src, "--to", pg, "--force")
	if code != 0 || !strings.Contains(out, "images               25 rows") {
		t.Errorf("forced copy: exit %d, %s %s", code, out, errOut)
	}
	// And back into a new SQLite file.
	back := filepath.Join(t.TempDir(), "sub", "back.db")
	code, out, errOut = runMigrate(t, "--from", pg, "--to", back)
	if code != 0 || !strings.Contains(out, "images               25 rows") {
		t.Errorf("copy back: exit %d, %s %s", code, out, errOut)
	}
	if st, _ := os.Stat(src); !st.ModTime().Equal(srcStat.ModTime()) || st.Size() != srcStat.Size() {
		t.Error("the source file changed")
	}

	// A source that does not exist is not created.
	missing := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut = runMigrate(t, "--from", missing, "--to", filepath.Join(t.TempDir(), "t.db"))
	if code != 1 || !strings.Contains(errOut, "no SQLite database") {
		t.Errorf("missing source: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the missing source was created")
	}
}

func TestDBMaxConnsFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		env     map[string]string
		want    int
		wantErr string
	}{
		{want: 0},
		{args: []string{"--db-max-conns", "8"}, want: 8},
		{env: map[string]string{"IMAGED_DB_MAX_CONNS": "5"}, want: 5},
		{args: []string{"--db-max-conns", "-1"}, wantErr: "invalid --db-max-conns"},
	}
	for _, tc := range tests {
		c, err := parseServeFlags(tc.args, envOf(tc.env), io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.DBMaxConns != tc.want {
			t.Errorf("%v %v: %v, %v; want %d", tc.args, tc.env, c, err, tc.want)
		}
	}
}
