package catalog_test

import (
	"context"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// TestTextGuard checks that NUL characters and invalid UTF-8, which
// PostgreSQL cannot store, get the same clear answers on every backend.
func TestTextGuard(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for name, dsn := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			svc := catalog.New(store, policy.Legacy(), catalog.DefaultConfig())
			ctx = imaged.NewContextWithIdentity(ctx, &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}})
			for _, attrs := range []map[string]any{
				{"name": "a\x00b"}, {"os_distro": "a\x00"}, {"tags": []any{"\x00"}}, {"name": "\xff"}, {"k\x00": "v"},
			} {
				if _, err := svc.CreateImage(ctx, attrs); imaged.ErrorCode(err) != imaged.EINVALID {
					t.Errorf("create %q: %v, want EINVALID", attrs, err)
				}
			}
			img, err := svc.CreateImage(ctx, map[string]any{"name": "ok"})
			if err != nil {
				t.Fatal(err)
			}
			ops := []imaged.PatchOp{{Op: "add", Path: "/x", Value: "bad\x00", HasValue: true}}
			if _, err := svc.UpdateImage(ctx, img.ID, ops); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("patch with NUL: %v, want EINVALID", err)
			}
			if err := svc.AddTag(ctx, img.ID, "\xff"); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("tag with invalid UTF-8: %v, want EINVALID", err)
			}
			if _, err := svc.GetImage(ctx, "a\x00b"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
				t.Errorf("get by NUL id: %v, want ENOTFOUND", err)
			}
			for _, q := range []imaged.ImageQuery{
				{Names: []string{"a\x00"}}, {Properties: map[string]string{"x": "\xff"}}, {Tags: []string{"\x00"}},
			} {
				q.Limit = 10
				got, err := svc.ListImages(ctx, q, "")
				if err != nil || len(got) != 0 {
					t.Errorf("list %+v: %d images, %v; want none and no error", q, len(got), err)
				}
			}
			if _, err := svc.AddMember(ctx, img.ID, "proj\x00B"); err == nil {
				t.Error("member id with NUL accepted")
			} else if c := imaged.ErrorCode(err); c == imaged.EINTERNAL {
				t.Errorf("member id with NUL: internal error %v", err)
			}
			got, err := svc.GetImage(ctx, img.ID)
			if err != nil || got.Properties["x"] != "" || len(got.Tags) != 0 {
				t.Fatalf("image changed by refused writes: %+v, %v", got, err)
			}
		})
	}
}
