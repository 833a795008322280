package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/sqlstore/storetest"
)

func TestContainerConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunContainers(t, func(t *testing.T) storetest.ContainerImageStore { return openSQLite(t) })
}

func TestContainerConformancePostgres(t *testing.T) {
	t.Parallel()
	sqltest.PostgresServer(t)
	storetest.RunContainers(t, func(t *testing.T) storetest.ContainerImageStore { return openPostgres(t) })
}

// scanItems is what a scan of a registry with n tags finds.
func scanItems(n, size int) []*imaged.ContainerImage {
	out := make([]*imaged.ContainerImage, n)
	for i := range out {
		out[i] = &imaged.ContainerImage{
			Reference: fmt.Sprintf("127.0.0.1:5000/bai/img%03d:%d", i/10, i%10), RegistryHost: "127.0.0.1:5000", Project: "bai",
			Repository: fmt.Sprintf("bai/img%03d", i/10), Tag: fmt.Sprint(i % 10), Architecture: "x86_64",
			Digest: fmt.Sprintf("sha256:%064d", i+size), ConfigDigest: "sha256:c", Size: int64(size + i),
			Labels: map[string]string{imaged.LabelKernelspec: "1", "ai.backend.resource.min.mem": "1g"},
		}
	}
	return out
}

// testScanTiming commits a 2,000-tag scan, then the same scan again (every
// image refreshed), checks the result and logs how long each took.
func testScanTiming(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	if testing.Short() {
		t.Skip("a 2,000-image scan, twice")
	}
	if err := s.CreateRegistry(ctx, &imaged.Registry{Name: "r", URL: "http://127.0.0.1:5000", Type: imaged.RegistryOCI}); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i, label := range []string{"create", "refresh"} {
		items := scanItems(n, i)
		start, cpu := time.Now(), processCPU()
		res, err := s.CommitScan(ctx, "r", items)
		took, cpu := time.Since(start), processCPU()-cpu
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Created) + len(res.Updated); got != n {
			t.Fatalf("%s: %d images, want %d", label, got, n)
		}
		// CPU is the whole test process's (this client's side only; run
		// the test alone for a clean figure).
		// Logged, not asserted: speed goals live in benchmarks, and this
		// also runs under the race detector on a shared machine.
		t.Logf("%s: CommitScan of %d items (%s) took %v (process CPU %v)", s.Dialect(), n, label, took, cpu)
	}
	list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Limit: n + 1})
	if err != nil || len(list) != n || list[0].Size != 1 {
		t.Fatalf("after refresh: %d images, %v", len(list), err)
	}
}

func TestScanTimingSQLite(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	defer s.Close()
	testScanTiming(t, s)
}

func TestScanTimingPostgres(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	defer s.Close()
	testScanTiming(t, s)
}

// TestContainerCopy: sqlstore.Copy carries registries, container images,
// aliases and the audit log across dialects, and the target keeps working
// (new audit ids follow the copied ones; aliases still resolve).
func TestContainerCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from, to := openSQLite(t), openPostgres(t)
	defer from.Close()
	defer to.Close()
	if err := from.CreateRegistry(ctx, &imaged.Registry{Name: "r", URL: "http://127.0.0.1:5000", Type: imaged.RegistryOCI, VerifyTLS: true}); err != nil {
		t.Fatal(err)
	}
	res, err := from.CommitScan(ctx, "r", scanItems(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Created[0].ID
	if _, err := from.PutAlias(ctx, "first", id); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := from.AppendAudit(ctx, &imaged.AuditEntry{Action: "registry.create", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := from.GetContainerImage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlstore.Copy(ctx, from, to, nil); err != nil {
		t.Fatal(err)
	}
	got, err := to.GetContainerImage(ctx, id)
	if err != nil || got.Digest != want.Digest || len(got.Aliases) != 1 || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("copied image: %+v, %v; want %+v", got, err, want)
	}
	if r, err := to.GetRegistry(ctx, "r"); err != nil || !r.VerifyTLS {
		t.Fatalf("copied registry: %+v, %v", r, err)
	}
	e := &imaged.AuditEntry{Action: "registry.delete"}
	if err := to.AppendAudit(ctx, e); err != nil || e.ID != 4 {
		t.Fatalf("audit after copy: id %d, %v", e.ID, err)
	}
}
