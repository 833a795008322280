package sqlstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/sqlstore/storetest"
)

func TestMetadefConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunMetadefs(t, func(t *testing.T) imaged.MetadefStore { return openSQLite(t) })
}

func TestMetadefConformancePostgres(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t) // skip (or fail in CI) once, before the subtests
	storetest.RunMetadefs(t, func(t *testing.T) imaged.MetadefStore { return openPostgres(t) })
}

// TestMetadefCopy copies a catalog with metadefs (children before parents
// in Copy's table order: the foreign keys are deferred) and keeps writing
// to the copy, which on PostgreSQL needs its identity sequences moved past
// the copied ids.
func TestMetadefCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openSQLite(t)
	defer src.Close()
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	for i, name := range []string{"ns1", "ns2"} {
		if err := src.CreateMetadefNamespace(ctx, &imaged.MetadefNamespace{Namespace: name, Owner: "p", Visibility: imaged.VisibilityPublic, CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		items := []*imaged.MetadefItem{{Name: "t" + strconv.Itoa(i), CreatedAt: at}, {Name: "u", CreatedAt: at}}
		if err := src.CreateMetadefItems(ctx, name, imaged.MetadefTagKind, items, false); err != nil {
			t.Fatal(err)
		}
		if err := src.AssociateMetadefResourceType(ctx, name, &imaged.MetadefResourceTypeAssociation{Name: "RT" + strconv.Itoa(i), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	// openPostgres skips (or, in CI, fails) without a server.
	for name, open := range map[string]func(*testing.T) *sqlstore.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			dst := open(t)
			defer dst.Close()
			counts, err := sqlstore.Copy(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if counts["metadef_items"] != 4 || counts["metadef_namespaces"] != 2 || counts["metadef_namespace_resource_types"] != 2 {
				t.Fatalf("counts: %v", counts)
			}
			ns, err := dst.GetMetadefNamespace(ctx, "ns2")
			if err != nil || len(ns.ResourceTypeAssociations) != 1 || ns.ResourceTypeAssociations[0].Name != "RT1" {
				t.Fatalf("copied ns2: %+v %v", ns, err)
			}
			if err := dst.CreateMetadefNamespace(ctx, &imaged.MetadefNamespace{Namespace: "ns3", Owner: "p", Visibility: imaged.VisibilityPrivate, CreatedAt: at}); err != nil {
				t.Fatalf("create after copy: %v", err)
			}
			if err := dst.CreateMetadefItems(ctx, "ns3", imaged.MetadefTagKind, []*imaged.MetadefItem{{Name: "x", CreatedAt: at}}, false); err != nil {
				t.Fatalf("tag after copy: %v", err)
			}
			if err := dst.AssociateMetadefResourceType(ctx, "ns3", &imaged.MetadefResourceTypeAssociation{Name: "RT9", CreatedAt: at}); err != nil {
				t.Fatalf("associate after copy: %v", err)
			}
			err = dst.CreateMetadefNamespace(ctx, &imaged.MetadefNamespace{Namespace: "ns1", Owner: "p", Visibility: imaged.VisibilityPrivate, CreatedAt: at})
			if imaged.ErrorCode(err) != imaged.ECONFLICT {
				t.Fatalf("duplicate after copy: %v", err)
			}
		})
	}
}
