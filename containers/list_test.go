package containers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// countingStore counts the listing queries the service makes and keeps
// the images the store returned to non-admins that the policy would not
// let them read (the service's post-filter would drop them).
type countingStore struct {
	imaged.ContainerStore
	pol *policy.Rules

	mu     sync.Mutex
	lists  int
	leaked []string
}

func (c *countingStore) ListContainerImages(ctx context.Context, q imaged.ContainerImageQuery) ([]*imaged.ContainerImage, error) {
	page, err := c.ContainerStore.ListContainerImages(ctx, q)
	id := imaged.IdentityFromContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists++
	for _, img := range page {
		if see, _, _ := policy.ContainerAccess(id, c.pol.IsAdmin(id), img); !see {
			c.leaked = append(c.leaked, id.UserID+" got "+img.Reference)
		}
	}
	return page, err
}

// take returns and resets the counts.
func (c *countingStore) take() (lists int, leaked []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lists, leaked = c.lists, c.leaked
	c.lists, c.leaked = 0, nil
	return lists, leaked
}

// listEnv is a service over a real SQLite store whose listing queries are
// counted; images are written into the store directly (as a scan would),
// so that large catalogs cost no registry.
type listEnv struct {
	store *sqlstore.Store
	count *countingStore
	svc   *containers.Service
	pol   *policy.Rules
}

func newListEnv(t *testing.T) *listEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tasks := bgtask.New(bgtask.Config{Store: st, PollInterval: 50 * time.Millisecond})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tasks.Close(cctx)
	})
	pol := policy.Secure()
	cs := &countingStore{ContainerStore: st, pol: pol}
	svc, err := containers.New(containers.Config{Store: cs, Images: st, Tasks: tasks, Registry: registry.New(registry.Options{}), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRegistry(ctx, &imaged.Registry{Name: "local", URL: "http://127.0.0.1:5000", Type: imaged.RegistryOCI, Projects: []string{"bai"}}); err != nil {
		t.Fatal(err)
	}
	return &listEnv{store: st, count: cs, svc: svc, pol: pol}
}

// fixture is one image to write: its customized-owner label ("" = stock),
// catalog visibility and owner, and whether it is forgotten.
type fixture struct {
	label     string
	vis       imaged.Visibility
	owner     string
	forgotten bool
}

// add writes the images (tags t0000... in order) and returns them as
// stored.
func (e *listEnv) add(t *testing.T, fx []fixture) []*imaged.ContainerImage {
	t.Helper()
	ctx := context.Background()
	items := make([]*imaged.ContainerImage, len(fx))
	for i, f := range fx {
		tag := fmt.Sprintf("t%04d", i)
		labels := map[string]string{imaged.LabelKernelspec: "1"}
		if f.label != "" {
			labels[imaged.LabelCustomizedOwner] = f.label
		}
		items[i] = &imaged.ContainerImage{
			Reference: "127.0.0.1:5000/bai/python:" + tag, RegistryHost: "127.0.0.1:5000", Project: "bai",
			Repository: "bai/python", Tag: tag, Architecture: "x86_64", Size: int64(i),
			Digest: "sha256:" + strings.Repeat("a", 64), Labels: labels, Visibility: f.vis, Owner: f.owner,
		}
	}
	res, err := e.store.CommitScan(ctx, "local", items)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*imaged.ContainerImage, 0, len(fx))
	for _, ci := range res.Created {
		i := slices.IndexFunc(items, func(it *imaged.ContainerImage) bool { return it.Reference == ci.Reference })
		if fx[i].forgotten {
			if _, err := e.store.UpdateContainerImage(ctx, ci.ID, func(ci *imaged.ContainerImage) error {
				ci.Status = imaged.ContainerForgotten
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := e.store.GetContainerImage(ctx, ci.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

// listAll pages through the caller's listing with markers (a query
// without limit is listed in one call) and checks
// that each page costs one store query and that the store returned
// nothing the caller may not read.
func (e *listEnv) listAll(t *testing.T, id *imaged.Identity, q imaged.ContainerImageQuery) []string {
	t.Helper()
	e.count.take()
	var got []string
	marker := ""
	for {
		page, err := e.svc.ListContainerImages(as(id), q, marker)
		if err != nil {
			t.Fatalf("%s: %v", id.UserID, err)
		}
		lists, leaked := e.count.take()
		if len(leaked) > 0 {
			t.Errorf("the store returned unreadable images: %v", leaked)
		}
		if lists != 1 {
			t.Errorf("%s: one page took %d store queries", id.UserID, lists)
		}
		for _, img := range page {
			got = append(got, img.ID)
		}
		if q.Limit == 0 || len(page) < q.Limit { // no limit: one page of the default size
			return got
		}
		marker = page[len(page)-1].ID
	}
}

// TestListReadableMatchesPolicy: a paged listing (limit 2) returns, in
// order, exactly the images policy.ContainerAccess lets the caller read,
// over every mix of customized label, visibility, catalog owner and
// status, one store query per page.
func TestListReadableMatchesPolicy(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	var fx []fixture
	for _, label := range []string{"", "user:alice", "user:bob", "bogus", "user:"} {
		for _, vis := range []imaged.Visibility{imaged.VisibilityPublic, imaged.VisibilityCommunity, imaged.VisibilityPrivate, imaged.VisibilityShared} {
			for _, owner := range []string{"", "projA", "projB"} {
				for _, forgotten := range []bool{false, true} {
					fx = append(fx, fixture{label, vis, owner, forgotten})
				}
			}
		}
	}
	world := e.add(t, fx)
	slices.SortFunc(world, func(a, b *imaged.ContainerImage) int { return strings.Compare(a.Reference, b.Reference) })
	ids := []*imaged.Identity{
		adminID, ownerID, otherID, readerID,
		{UserID: "dave", Roles: []string{"member"}},                      // no project
		{ProjectID: "projB", Roles: []string{"member"}},                  // no user
		{UserID: "", ProjectID: "", Roles: []string{"member", "reader"}}, // neither
		{UserID: "carol", ProjectID: "projC"},                            // legacy: no roles
	}
	for _, statuses := range [][]imaged.ContainerStatus{nil, {imaged.ContainerAlive, imaged.ContainerForgotten}, {imaged.ContainerForgotten}} {
		for _, id := range ids {
			var want []string
			for _, img := range world {
				st := statuses
				if st == nil {
					st = []imaged.ContainerStatus{imaged.ContainerAlive}
				}
				if see, _, _ := policy.ContainerAccess(id, e.pol.IsAdmin(id), img); see && slices.Contains(st, img.Status) {
					want = append(want, img.ID)
				}
			}
			got := e.listAll(t, id, imaged.ContainerImageQuery{Statuses: statuses, Limit: 2})
			if !slices.Equal(got, want) {
				t.Errorf("%q/%q, statuses %v: lists %d images %v, want %d %v", id.UserID, id.ProjectID, statuses, len(got), got, len(want), want)
			}
		}
	}
}

// TestListSkipsOthersCustomized: a catalog of 500 other users' customized
// images and 3 the caller may read lists in one store query, not by
// paging through the 500.
func TestListSkipsOthersCustomized(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	var fx []fixture
	for i := range 500 {
		fx = append(fx, fixture{label: fmt.Sprintf("user:u%03d", i), vis: imaged.VisibilityPublic})
		switch i {
		case 100:
			fx = append(fx, fixture{vis: imaged.VisibilityPublic})
		case 250:
			fx = append(fx, fixture{label: "user:alice", vis: imaged.VisibilityPrivate, forgotten: true})
		case 499:
			fx = append(fx, fixture{vis: imaged.VisibilityShared, owner: "projA"})
		}
	}
	e.add(t, fx)
	for _, q := range []imaged.ContainerImageQuery{
		{},
		{Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}, Limit: 2},
		{Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}, SortKey: "size", SortDir: imaged.Desc, Limit: 1},
	} {
		want := 2 + len(q.Statuses)/2 // alice's forgotten image only when asked for
		if got := e.listAll(t, ownerID, q); len(got) != want {
			t.Errorf("%+v: alice lists %d images, want %d", q, len(got), want)
		}
	}
}
