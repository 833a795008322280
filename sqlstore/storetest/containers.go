package storetest

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// ContainerImageStore is what the container suite needs: the container
// store and the image store over the same database, so that it can check
// the catalog (Glance) view of container images.
type ContainerImageStore interface {
	imaged.ContainerStore
	imaged.ImageStore
}

// RunContainers runs the conformance suite of imaged.ContainerStore. open
// must return a fresh, empty store; the suite closes it.
func RunContainers(t *testing.T, open func(t *testing.T) ContainerImageStore) {
	fresh := func(t *testing.T) ContainerImageStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s ContainerImageStore)
	}{
		{"Registries", testRegistries},
		{"ScanCreateRefresh", testScanCreateRefresh},
		{"ScanAtomic", testScanAtomic},
		{"Forgotten", testForgotten},
		{"IdentityConflict", testIdentityConflict},
		{"CatalogDeleted", testCatalogDeleted},
		{"CatalogRow", testCatalogRow},
		{"Purge", testPurge},
		{"Aliases", testAliases},
		{"ListModel", testContainerList},
		{"ListReadable", testContainerListReadable},
		{"ConcurrentUpdates", testContainerConcurrentUpdates},
		{"ConcurrentScans", testConcurrentScans},
		{"Audit", testAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, fresh(t))
		})
	}
}

func newRegistry(name string) *imaged.Registry {
	return &imaged.Registry{Name: name, URL: "http://127.0.0.1:5000", Type: imaged.RegistryOCI, Projects: []string{"bai"},
		Username: "robot", Password: "s3cret'\"", VerifyTLS: true}
}

// found returns what a scan of registry host 127.0.0.1:5000 finds for
// repo:tag on arch.
func found(repo, tag, arch string, size int64) *imaged.ContainerImage {
	return &imaged.ContainerImage{
		Reference: "127.0.0.1:5000/" + repo + ":" + tag, RegistryHost: "127.0.0.1:5000",
		Project: strings.SplitN(repo, "/", 2)[0], Repository: repo, Tag: tag, Architecture: arch,
		Digest: "sha256:" + strings.Repeat(fmt.Sprintf("%x", size%16), 64), ConfigDigest: "sha256:c0f", Size: size,
		Labels: map[string]string{imaged.LabelKernelspec: "1", "ai.backend.resource.min.mem": "1g"},
	}
}

func mustScan(t *testing.T, s imaged.ContainerStore, registry string, items ...*imaged.ContainerImage) *imaged.ScanCommit {
	t.Helper()
	res, err := s.CommitScan(context.Background(), registry, items)
	if err != nil {
		t.Fatalf("CommitScan: %v", err)
	}
	return res
}

func mustGetContainer(t *testing.T, s imaged.ContainerStore, id string) *imaged.ContainerImage {
	t.Helper()
	ci, err := s.GetContainerImage(context.Background(), id)
	if err != nil {
		t.Fatalf("GetContainerImage %s: %v", id, err)
	}
	return ci
}

func update(t *testing.T, s imaged.ContainerStore, id string, fn func(*imaged.ContainerImage)) *imaged.ContainerImage {
	t.Helper()
	ci, err := s.UpdateContainerImage(context.Background(), id, func(ci *imaged.ContainerImage) error { fn(ci); return nil })
	if err != nil {
		t.Fatalf("UpdateContainerImage %s: %v", id, err)
	}
	return ci
}

// sameContainer compares two images, nil and empty collections alike
// (except Accelerators, where nil means "any").
func sameContainer(t *testing.T, got, want *imaged.ContainerImage) {
	t.Helper()
	norm := func(ci *imaged.ContainerImage) imaged.ContainerImage {
		c := *ci
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		if len(c.ResourceLimits) == 0 {
			c.ResourceLimits = nil
		}
		if len(c.Tags) == 0 {
			c.Tags = nil
		}
		if len(c.Aliases) == 0 {
			c.Aliases = nil
		}
		return c
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("container image mismatch\n got: %+v\nwant: %+v", g, w)
	}
}

func testRegistries(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	a, b := newRegistry("zeta"), newRegistry("alpha")
	b.Projects, b.VerifyTLS, b.Type = nil, false, imaged.RegistryDockerHub
	for _, r := range []*imaged.Registry{a, b} {
		if err := s.CreateRegistry(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.CreatedAt.IsZero() || !r.UpdatedAt.Equal(r.CreatedAt) {
			t.Fatalf("CreateRegistry did not set the times: %+v", r)
		}
	}
	wantCode(t, s.CreateRegistry(ctx, newRegistry("zeta")), imaged.ECONFLICT)
	wantCode(t, s.CreateRegistry(ctx, newRegistry("")), imaged.EINVALID)
	got, err := s.GetRegistry(ctx, "zeta")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("GetRegistry: %+v, %v; want %+v", got, err, a)
	}
	if got, err := s.GetRegistry(ctx, "alpha"); err != nil || got.Projects == nil || len(got.Projects) != 0 || got.VerifyTLS || got.Type != imaged.RegistryDockerHub {
		t.Fatalf("GetRegistry alpha: %+v, %v", got, err)
	}
	_, err = s.GetRegistry(ctx, "nope")
	wantCode(t, err, imaged.ENOTFOUND)
	list, err := s.ListRegistries(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "zeta" {
		t.Fatalf("ListRegistries: %v, %v", list, err)
	}

	// Updates are serialised: concurrent appends all survive; the name
	// and creation time stay.
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateRegistry(ctx, "zeta", func(r *imaged.Registry) error {
				r.Projects = append(r.Projects, fmt.Sprintf("p%d", i))
				r.Name = "renamed"
				r.CreatedAt = time.Time{}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err = s.GetRegistry(ctx, "zeta")
	if err != nil || len(got.Projects) != n+1 || got.Name != "zeta" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("after concurrent updates: %+v, %v", got, err)
	}
	veto := fmt.Errorf("veto")
	if _, err := s.UpdateRegistry(ctx, "zeta", func(r *imaged.Registry) error { r.URL = "x"; return veto }); err != veto {
		t.Fatalf("vetoed update: %v", err)
	}
	_, err = s.UpdateRegistry(ctx, "nope", func(*imaged.Registry) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)

	// A registry with images (even forgotten ones) cannot go.
	res := mustScan(t, s, "zeta", found("bai/python", "3.9", "x86_64", 100))
	id := res.Created[0].ID
	update(t, s, id, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
	wantCode(t, s.DeleteRegistry(ctx, "zeta"), imaged.ECONFLICT)
	if _, err := s.PurgeContainerImage(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRegistry(ctx, "zeta"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteRegistry(ctx, "zeta"), imaged.ENOTFOUND)
	_, err = s.GetRegistry(ctx, "zeta")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.CommitScan(ctx, "zeta", []*imaged.ContainerImage{found("bai/python", "3.9", "x86_64", 100)})
	wantCode(t, err, imaged.ENOTFOUND)
}

func testScanCreateRefresh(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	py := found("bai/python", "3.9", "x86_64", 100)
	py.Accelerators = []string{} // none
	pyArm := found("bai/python", "3.9", "aarch64", 101)
	tf := found("bai/tensorflow", "2.1", "x86_64", 102)
	tf.Accelerators = []string{"cuda"}
	tf.Type = imaged.ContainerTypeService
	tf.Visibility, tf.Owner = imaged.VisibilityPrivate, "proj-a"
	res := mustScan(t, s, "r1", py, pyArm, tf)
	if len(res.Created) != 3 || len(res.Updated) != 0 || len(res.Forgotten) != 0 {
		t.Fatalf("first scan: %d created, %d updated, %d forgotten", len(res.Created), len(res.Updated), len(res.Forgotten))
	}
	if py.ID != "" || py.Registry != "" {
		t.Fatalf("CommitScan changed the caller's item: %+v", py)
	}
	byRef := map[string]*imaged.ContainerImage{}
	for _, ci := range res.Created {
		byRef[ci.Reference+"|"+ci.Architecture] = ci
		if ci.ID == "" || ci.Status != imaged.ContainerAlive || ci.Registry != "r1" || ci.CreatedAt.Before(start) ||
			!ci.UpdatedAt.Equal(ci.CreatedAt) || ci.ScannedAt.IsZero() {
			t.Fatalf("created image: %+v", ci)
		}
		sameContainer(t, mustGetContainer(t, s, ci.ID), ci)
	}
	gotPy := byRef[py.Reference+"|x86_64"]
	if gotPy.Type != imaged.ContainerTypeCompute || gotPy.Visibility != imaged.VisibilityPublic || gotPy.Accelerators == nil || len(gotPy.Accelerators) != 0 {
		t.Fatalf("defaults / empty accelerators: %+v", gotPy)
	}
	if a := byRef[pyArm.Reference+"|aarch64"]; a.Accelerators != nil {
		t.Fatalf("nil accelerators (any) read back as %#v", a.Accelerators)
	}
	gotTF := byRef[tf.Reference+"|x86_64"]
	if gotTF.Type != imaged.ContainerTypeService || gotTF.Owner != "proj-a" || gotTF.Visibility != imaged.VisibilityPrivate || !slices.Equal(gotTF.Accelerators, []string{"cuda"}) {
		t.Fatalf("template fields: %+v", gotTF)
	}

	// The operator changes what is theirs.
	limits := map[string]imaged.ResourceLimit{"cpu": {Min: "2"}, "mem": {Min: "1g", Max: "4g"}}
	op := update(t, s, gotPy.ID, func(ci *imaged.ContainerImage) {
		ci.Type = imaged.ContainerTypeSystem
		ci.ResourceLimits = limits
		ci.Visibility = imaged.VisibilityShared
		ci.Protected = true
		ci.Tags = []string{"b", "a", "b"}
		ci.Owner = "proj-ops"
	})
	if op.Version != gotPy.Version+1 || !slices.Equal(op.Tags, []string{"a", "b"}) || op.UpdatedAt.Equal(gotPy.UpdatedAt) {
		t.Fatalf("after operator update: %+v", op)
	}
	if _, err := s.PutAlias(ctx, "python", gotPy.ID); err != nil {
		t.Fatal(err)
	}

	// A rescan refreshes the facts and keeps the operator's fields.
	py2 := found("bai/python", "3.9", "x86_64", 200)
	py2.Labels = map[string]string{"new": "label"}
	py2.IndexDigest = "sha256:1dx"
	py2.Type = imaged.ContainerTypeCompute   // ignored on refresh
	py2.Visibility = imaged.VisibilityPublic // ignored on refresh
	py2.ResourceLimits = nil                 // ignored on refresh
	newTF := found("bai/tensorflow", "2.2", "x86_64", 5)
	res = mustScan(t, s, "r1", py2, newTF)
	if len(res.Created) != 1 || len(res.Updated) != 1 || len(res.Forgotten) != 0 {
		t.Fatalf("rescan: %d created, %d updated, %d forgotten", len(res.Created), len(res.Updated), len(res.Forgotten))
	}
	up := res.Updated[0]
	want := *op
	want.Digest, want.IndexDigest, want.Size, want.Labels = py2.Digest, py2.IndexDigest, 200, py2.Labels
	want.Accelerators = nil // the new finding says "any"
	want.Aliases = []string{"python"}
	want.Version = op.Version + 1
	want.UpdatedAt, want.ScannedAt = up.UpdatedAt, up.ScannedAt
	sameContainer(t, up, &want)
	sameContainer(t, mustGetContainer(t, s, op.ID), &want)
	if !up.ScannedAt.After(op.ScannedAt) && !up.ScannedAt.Equal(op.ScannedAt) {
		t.Fatalf("scanned time went back: %v < %v", up.ScannedAt, op.ScannedAt)
	}
	// Untouched images stay as they were.
	sameContainer(t, mustGetContainer(t, s, gotTF.ID), gotTF)
}

// testScanAtomic: a commit with a bad item writes nothing.
func testScanAtomic(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	bad := found("bai/x", "1", "", 1)
	_, err := s.CommitScan(ctx, "r1", []*imaged.ContainerImage{found("bai/ok", "1", "x86_64", 1), bad})
	wantCode(t, err, imaged.EINVALID)
	list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("after a failed commit: %v, %v", list, err)
	}
	// A repeated finding is one image.
	res := mustScan(t, s, "r1", found("bai/ok", "1", "x86_64", 1), found("bai/ok", "1", "x86_64", 2))
	if len(res.Created) != 1 || res.Created[0].Size != 2 {
		t.Fatalf("repeated finding: %+v", res.Created)
	}
	if res, err := s.CommitScan(ctx, "r1", nil); err != nil || len(res.Created)+len(res.Updated)+len(res.Forgotten) != 0 {
		t.Fatalf("empty commit: %+v, %v", res, err)
	}
}

func testForgotten(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	ci := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1)).Created[0]
	update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
	res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 2))
	if len(res.Forgotten) != 1 || len(res.Created) != 0 || len(res.Updated) != 0 {
		t.Fatalf("rescan of a forgotten image: %+v", res)
	}
	if f := res.Forgotten[0]; f.ID != ci.ID || f.Status != imaged.ContainerForgotten || f.Size != 2 {
		t.Fatalf("forgotten image after rescan: %+v", f)
	}
	_, err := s.FindContainerImage(ctx, ci.Reference, "x86_64")
	wantCode(t, err, imaged.ENOTFOUND)
	got, err := s.FindContainerImage(ctx, ci.Reference, "x86_64", imaged.ContainerForgotten, imaged.ContainerAlive)
	if err != nil || got.ID != ci.ID || got.Status != imaged.ContainerForgotten {
		t.Fatalf("find forgotten: %+v, %v", got, err)
	}
	if list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("default listing shows forgotten images: %v, %v", list, err)
	}
	if list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Statuses: []imaged.ContainerStatus{imaged.ContainerForgotten}, Limit: 10}); err != nil || len(list) != 1 {
		t.Fatalf("listing forgotten images: %v, %v", list, err)
	}
	// Restoring brings it back.
	update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerAlive })
	if got, err := s.FindContainerImage(ctx, ci.Reference, "x86_64"); err != nil || got.ID != ci.ID {
		t.Fatalf("find restored: %+v, %v", got, err)
	}
	_, err = s.UpdateContainerImage(ctx, ci.ID, func(ci *imaged.ContainerImage) error { ci.Status = "gone"; return nil })
	wantCode(t, err, imaged.EINVALID)
	_, err = s.UpdateContainerImage(ctx, "00000000-0000-4000-8000-000000000000", func(*imaged.ContainerImage) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)
}

func testIdentityConflict(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1), found("bai/python", "3.10", "x86_64", 1))
	a, b := res.Created[0], res.Created[1] // sorted by reference: 3.10 < 3.9
	// Two live images cannot share an identity.
	_, err := s.UpdateContainerImage(ctx, a.ID, func(ci *imaged.ContainerImage) error { ci.Reference = b.Reference; return nil })
	wantCode(t, err, imaged.ECONFLICT)
	// Forget b, give a its identity, then restoring b collides.
	update(t, s, b.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
	update(t, s, a.ID, func(ci *imaged.ContainerImage) { ci.Reference, ci.Tag = b.Reference, b.Tag })
	_, err = s.UpdateContainerImage(ctx, b.ID, func(ci *imaged.ContainerImage) error { ci.Status = imaged.ContainerAlive; return nil })
	wantCode(t, err, imaged.ECONFLICT)
	if got := mustGetContainer(t, s, b.ID); got.Status != imaged.ContainerForgotten {
		t.Fatalf("failed restore changed the image: %+v", got)
	}
	// A scan of that identity refreshes the live one, not the forgotten.
	res = mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 7))
	if len(res.Updated) != 1 || res.Updated[0].ID != a.ID || len(res.Forgotten) != 0 {
		t.Fatalf("scan with a live and a forgotten twin: %+v", res)
	}
	// Same reference, other architecture: no conflict.
	if _, err := s.UpdateContainerImage(ctx, b.ID, func(ci *imaged.ContainerImage) error {
		ci.Status, ci.Architecture = imaged.ContainerAlive, "aarch64"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// testCatalogDeleted: an image deleted through the Glance API leaves the
// container views, and its identity can be scanned again.
func testCatalogDeleted(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	ci := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1)).Created[0]
	if _, err := s.PutAlias(ctx, "py", ci.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteImage(ctx, ci.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetContainerImage(ctx, ci.ID)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.FindContainerImage(ctx, ci.Reference, "x86_64", imaged.ContainerAlive, imaged.ContainerForgotten)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.GetAlias(ctx, "py")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.UpdateContainerImage(ctx, ci.ID, func(*imaged.ContainerImage) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)
	if list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("listing shows a deleted image: %v, %v", list, err)
	}
	res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1))
	if len(res.Created) != 1 || res.Created[0].ID == ci.ID {
		t.Fatalf("rescan after a catalog delete: %+v", res)
	}
	if got := mustGetContainer(t, s, res.Created[0].ID); len(got.Aliases) != 0 {
		t.Fatalf("new image inherited aliases: %v", got.Aliases)
	}
	// The registry is no longer held by the dead row.
	if _, err := s.PurgeContainerImage(ctx, res.Created[0].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRegistry(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
}

func testCatalogRow(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	item := found("bai/python", "3.9", "x86_64", 1234)
	item.Owner, item.Tags = "proj-a", []string{"gpu"}
	ci := mustScan(t, s, "r1", item).Created[0]
	img, err := s.GetImage(ctx, ci.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantLoc := "docker://127.0.0.1:5000/bai/python@" + ci.Digest
	if img.Name == nil || *img.Name != ci.Reference || img.Status != imaged.StatusActive || img.ContainerFormat != imaged.ContainerFormatDocker ||
		img.DiskFormat != "raw" || img.Size == nil || *img.Size != 1234 || img.Visibility != imaged.VisibilityPublic || img.Owner != "proj-a" ||
		!slices.Equal(img.Tags, []string{"gpu"}) || img.Checksum != "" || img.OSHashValue != "" ||
		len(img.Locations) != 1 || img.Locations[0].URL != wantLoc ||
		!reflect.DeepEqual(img.Properties, map[string]string{"architecture": "x86_64", "container_registry": "r1", "container_digest": ci.Digest}) {
		t.Fatalf("catalog row: %s", dump(img))
	}
	// Changes through the Glance API are the container image's too.
	if _, err := s.UpdateImage(ctx, ci.ID, func(i *imaged.Image) error {
		i.Tags = append(i.Tags, "glance")
		i.Properties["os_distro"] = "ubuntu"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustGetContainer(t, s, ci.ID); !slices.Equal(got.Tags, []string{"glance", "gpu"}) || got.Version <= ci.Version {
		t.Fatalf("container view after a Glance update: %+v", got)
	}
	// Forgetting deactivates; a rescan refreshes the row and keeps the
	// Glance-set property.
	update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
	item.Size = 99
	mustScan(t, s, "r1", item)
	img, err = s.GetImage(ctx, ci.ID)
	if err != nil || img.Status != imaged.StatusDeactivated || *img.Size != 99 || img.Properties["os_distro"] != "ubuntu" ||
		img.Properties["container_digest"] != item.Digest {
		t.Fatalf("catalog row of a forgotten image: %v %v", img, err)
	}
	update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerAlive })
	if img, err := s.GetImage(ctx, ci.ID); err != nil || img.Status != imaged.StatusActive {
		t.Fatalf("catalog row of a restored image: %v %v", img, err)
	}
	// Glance listings see it as a docker image.
	list, err := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, ContainerFormat: []string{"docker"},
		Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}, Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != ci.ID {
		t.Fatalf("Glance listing: %v, %v", list, err)
	}
}

func testPurge(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1), found("bai/r", "4", "x86_64", 1))
	ci, other := res.Created[0], res.Created[1]
	for _, a := range []string{"py", "python"} {
		if _, err := s.PutAlias(ctx, a, ci.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutAlias(ctx, "r", other.ID); err != nil {
		t.Fatal(err)
	}
	veto := fmt.Errorf("protected")
	if _, err := s.PurgeContainerImage(ctx, ci.ID, func(*imaged.ContainerImage) error { return veto }); err != veto {
		t.Fatalf("vetoed purge: %v", err)
	}
	mustGetContainer(t, s, ci.ID)
	old, err := s.PurgeContainerImage(ctx, ci.ID, func(c *imaged.ContainerImage) error {
		if !slices.Equal(c.Aliases, []string{"py", "python"}) {
			return fmt.Errorf("fn saw aliases %v", c.Aliases)
		}
		return nil
	})
	if err != nil || old.ID != ci.ID || !slices.Equal(old.Aliases, []string{"py", "python"}) {
		t.Fatalf("purge: %+v, %v", old, err)
	}
	_, err = s.GetContainerImage(ctx, ci.ID)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.GetImage(ctx, ci.ID)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.GetAlias(ctx, "py")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.PurgeContainerImage(ctx, ci.ID, nil)
	wantCode(t, err, imaged.ENOTFOUND)
	// The catalog tombstone keeps the id taken.
	wantCode(t, s.CreateImage(ctx, &imaged.Image{ID: ci.ID, Status: imaged.StatusQueued, Visibility: imaged.VisibilityPrivate}), imaged.ECONFLICT)
	if as, err := s.ListAliases(ctx, "", "", 0); err != nil || len(as) != 1 || as[0].Alias != "r" {
		t.Fatalf("aliases after purge: %v, %v", as, err)
	}
	// The identity is free again.
	if res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1)); len(res.Created) != 1 {
		t.Fatalf("rescan after purge: %+v", res)
	}
}

func testAliases(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	res := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1), found("bai/r", "4", "aarch64", 1))
	a, b := res.Created[0], res.Created[1]
	pa, err := s.PutAlias(ctx, "python", a.ID)
	if err != nil || pa.Alias != "python" || pa.ImageID != a.ID || pa.CreatedAt.IsZero() {
		t.Fatalf("PutAlias: %+v, %v", pa, err)
	}
	if got, err := s.GetAlias(ctx, "python"); err != nil || !reflect.DeepEqual(got, pa) {
		t.Fatalf("GetAlias: %+v, %v; want %+v", got, err, pa)
	}
	_, err = s.PutAlias(ctx, "x", "00000000-0000-4000-8000-000000000000")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.PutAlias(ctx, "", a.ID)
	wantCode(t, err, imaged.EINVALID)
	// An alias may not shadow a live reference, of any architecture.
	_, err = s.PutAlias(ctx, b.Reference, a.ID)
	wantCode(t, err, imaged.ECONFLICT)
	// Re-putting is idempotent; moving is allowed.
	if again, err := s.PutAlias(ctx, "python", a.ID); err != nil || !again.CreatedAt.Equal(pa.CreatedAt) {
		t.Fatalf("re-put: %+v, %v", again, err)
	}
	if moved, err := s.PutAlias(ctx, "python", b.ID); err != nil || moved.ImageID != b.ID {
		t.Fatalf("move: %+v, %v", moved, err)
	}
	for _, al := range []string{"a1", "a2", "a3", "z"} {
		if _, err := s.PutAlias(ctx, al, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A forgotten image may be aliased; its reference is then free as an alias.
	update(t, s, b.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
	if _, err := s.PutAlias(ctx, b.Reference, b.ID); err != nil {
		t.Fatal(err)
	}
	names := func(as []*imaged.ContainerAlias) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Alias)
		}
		return out
	}
	for _, tc := range []struct {
		image, after string
		limit        int
		want         []string
	}{
		{"", "", 0, []string{"127.0.0.1:5000/bai/r:4", "a1", "a2", "a3", "python", "z"}},
		{a.ID, "", 0, []string{"a1", "a2", "a3", "z"}},
		{a.ID, "a1", 2, []string{"a2", "a3"}},
		{a.ID, "a3", 2, []string{"z"}},
		{b.ID, "", 0, []string{"127.0.0.1:5000/bai/r:4", "python"}},
		{"", "python", 10, []string{"z"}},
	} {
		got, err := s.ListAliases(ctx, tc.image, tc.after, tc.limit)
		if err != nil || !slices.Equal(names(got), tc.want) {
			t.Fatalf("ListAliases(%q, %q, %d) = %v, %v; want %v", tc.image, tc.after, tc.limit, names(got), err, tc.want)
		}
	}
	if got := mustGetContainer(t, s, a.ID); !slices.Equal(got.Aliases, []string{"a1", "a2", "a3", "z"}) {
		t.Fatalf("image aliases: %v", got.Aliases)
	}
	del, err := s.DeleteAlias(ctx, "a2")
	if err != nil || del.Alias != "a2" || del.ImageID != a.ID {
		t.Fatalf("DeleteAlias: %+v, %v", del, err)
	}
	_, err = s.DeleteAlias(ctx, "a2")
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.GetAlias(ctx, "a2")
	wantCode(t, err, imaged.ENOTFOUND)
}

// containerMatches is the model of ContainerImageQuery's filters.
func containerMatches(ci *imaged.ContainerImage, q *imaged.ContainerImageQuery) bool {
	statuses := q.Statuses
	if len(statuses) == 0 {
		statuses = []imaged.ContainerStatus{imaged.ContainerAlive}
	}
	_, customized := ci.Labels[imaged.LabelCustomizedOwner]
	return slices.Contains(statuses, ci.Status) &&
		(q.Registry == "" || ci.Registry == q.Registry) && (q.Project == "" || ci.Project == q.Project) &&
		(q.Repository == "" || ci.Repository == q.Repository) && (q.Tag == "" || ci.Tag == q.Tag) &&
		(q.Architecture == "" || ci.Architecture == q.Architecture) && (q.Reference == "" || ci.Reference == q.Reference) &&
		(q.Owner == "" || ci.Owner == q.Owner) &&
		(q.CustomizedOwner == "" || ci.CustomizedOwner() == q.CustomizedOwner) &&
		(q.Customized == nil || *q.Customized == customized)
}

func compareContainers(a, b *imaged.ContainerImage, key string) int {
	var c int
	switch key {
	case "created_at":
		c = a.CreatedAt.Compare(b.CreatedAt)
	case "updated_at":
		c = a.UpdatedAt.Compare(b.UpdatedAt)
	case "size":
		c = cmp.Compare(a.Size, b.Size)
	default:
		c = strings.Compare(a.Reference, b.Reference)
	}
	return cmp.Or(c, strings.Compare(a.ID, b.ID))
}

// testContainerList checks filters, sort keys, directions and keyset
// paging (with many equal sort values) against a model.
func testContainerList(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	for _, r := range []string{"r1", "r2"} {
		if err := s.CreateRegistry(ctx, newRegistry(r)); err != nil {
			t.Fatal(err)
		}
	}
	var items []*imaged.ContainerImage
	for i := range 36 {
		repo := []string{"bai/python", "bai/r", "other/tf"}[i%3]
		it := found(repo, fmt.Sprintf("t%d", i/6), []string{"x86_64", "aarch64"}[i%2], int64(i%4)) // few sizes: ties
		switch i % 5 {
		case 0:
			it.Labels[imaged.LabelCustomizedOwner] = "user:alice"
		case 1:
			it.Labels[imaged.LabelCustomizedOwner] = "user:bob"
		case 2:
			it.Labels[imaged.LabelCustomizedOwner] = "bogus" // customized, but nobody's
		}
		items = append(items, it)
	}
	// Three commits: created_at takes three values, each shared by many.
	mustScan(t, s, "r1", items[:12]...)
	mustScan(t, s, "r2", items[12:24]...)
	mustScan(t, s, "r1", items[24:]...)
	all, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Limit: 1000})
	if err != nil || len(all) != 36 {
		t.Fatalf("list all: %d, %v", len(all), err)
	}
	for i, ci := range all {
		switch {
		case i%7 == 0:
			update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
		case i%4 == 1:
			update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Owner = "proj-a" })
		}
		if i%6 == 0 {
			if _, err := s.PutAlias(ctx, fmt.Sprintf("alias-%02d", i), ci.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The model's copy of every image, as stored.
	var world []*imaged.ContainerImage
	for _, ci := range all {
		world = append(world, mustGetContainer(t, s, ci.ID))
	}
	yes, no := true, false
	queries := []imaged.ContainerImageQuery{
		{},
		{Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}},
		{Statuses: []imaged.ContainerStatus{imaged.ContainerForgotten}},
		{Registry: "r2"},
		{Project: "bai", Architecture: "aarch64"},
		{Repository: "bai/r", Tag: "t2"},
		{Reference: world[3].Reference, Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}},
		{Owner: "proj-a"},
		{CustomizedOwner: "alice"},
		{Customized: &yes},
		{Customized: &no, Registry: "r1"},
	}
	for _, key := range []string{"", "reference", "created_at", "updated_at", "size"} {
		for _, dir := range []imaged.SortDir{"", imaged.Asc, imaged.Desc} {
			for _, q := range queries {
				q.SortKey, q.SortDir = key, dir
				var want []*imaged.ContainerImage
				for _, ci := range world {
					if containerMatches(ci, &q) {
						want = append(want, ci)
					}
				}
				slices.SortFunc(want, func(a, b *imaged.ContainerImage) int { return compareContainers(a, b, key) })
				if dir == imaged.Desc {
					slices.Reverse(want)
				}
				var got []*imaged.ContainerImage
				q.Limit = 4
				for {
					page, err := s.ListContainerImages(ctx, q)
					if err != nil {
						t.Fatalf("%+v: %v", q, err)
					}
					got = append(got, page...)
					if len(page) < q.Limit || len(got) > len(world) {
						break
					}
					q.After = page[len(page)-1]
				}
				if len(got) != len(want) {
					t.Fatalf("sort %q %q %+v: got %d images, want %d", key, dir, q, len(got), len(want))
				}
				for i := range want {
					sameContainer(t, got[i], want[i])
				}
			}
		}
	}
	_, err = s.ListContainerImages(ctx, imaged.ContainerImageQuery{SortKey: "name", Limit: 1})
	wantCode(t, err, imaged.EINVALID)
	_, err = s.ListContainerImages(ctx, imaged.ContainerImageQuery{SortDir: "up", Limit: 1})
	wantCode(t, err, imaged.EINVALID)
}

// readableModel is ContainerImageQuery.ReadableBy's rule, the one
// policy.ContainerAccess applies to a non-admin, written out here because
// the suite must not depend on the policy package.
func readableModel(ci *imaged.ContainerImage, r *imaged.ContainerReader) bool {
	if r == nil {
		return true
	}
	if _, customized := ci.Labels[imaged.LabelCustomizedOwner]; customized {
		owner := ci.CustomizedOwner()
		return owner != "" && owner == r.UserID
	}
	if ci.Status != imaged.ContainerAlive {
		return false
	}
	switch ci.Visibility {
	case imaged.VisibilityPublic, imaged.VisibilityCommunity:
		return true
	case imaged.VisibilityPrivate, imaged.VisibilityShared:
		return ci.Owner != "" && ci.Owner == r.ProjectID
	}
	return false
}

// testContainerListReadable checks ReadableBy over every mix of
// customized label, visibility, catalog owner and status, for readers
// with and without user and project ids, alone and with other filters,
// paged.
func testContainerListReadable(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	// "" = stock; "bogus" and "user:" are customized images nobody owns;
	// "user:alice:x" is owned by user "alice:x", not by alice.
	customizedLabels := []string{"", "user:alice", "user:bob", "bogus", "user:", "user:alice:x"}
	visibilities := []imaged.Visibility{imaged.VisibilityPublic, imaged.VisibilityCommunity, imaged.VisibilityPrivate, imaged.VisibilityShared}
	owners := []string{"", "proj-p", "proj-q"}
	var items []*imaged.ContainerImage
	for _, label := range customizedLabels {
		for _, vis := range visibilities {
			for _, owner := range owners {
				for range 2 { // one stays alive, the other is forgotten below
					it := found([]string{"bai/python", "other/tf"}[len(items)%2], fmt.Sprintf("t%03d", len(items)), "x86_64", int64(len(items)%5))
					if label != "" {
						it.Labels[imaged.LabelCustomizedOwner] = label
					}
					it.Visibility, it.Owner = vis, owner
					items = append(items, it)
				}
			}
		}
	}
	byRef := map[string]int{}
	for i, it := range items {
		byRef[it.Reference] = i
	}
	res := mustScan(t, s, "r1", items...)
	if len(res.Created) != len(items) {
		t.Fatalf("created %d images, want %d", len(res.Created), len(items))
	}
	var world []*imaged.ContainerImage
	for _, ci := range res.Created {
		i := byRef[ci.Reference]
		if i%2 == 1 {
			update(t, s, ci.ID, func(ci *imaged.ContainerImage) { ci.Status = imaged.ContainerForgotten })
		}
		got := mustGetContainer(t, s, ci.ID)
		if got.Visibility != items[i].Visibility || got.Owner != items[i].Owner {
			t.Fatalf("%s stored as %s/%q, want %s/%q", got.Reference, got.Visibility, got.Owner, items[i].Visibility, items[i].Owner)
		}
		world = append(world, got)
	}
	// total is how many images each reader may read in any status,
	// counted by hand as an anchor for the model: 24 customized images
	// per owner label (4 visibilities x 3 owners x 2 statuses), 6 alive
	// public or community ones, 2 alive private or shared ones per
	// project.
	readers := []struct {
		r     *imaged.ContainerReader
		total int
	}{
		{&imaged.ContainerReader{UserID: "alice", ProjectID: "proj-p"}, 24 + 6 + 2},
		{&imaged.ContainerReader{UserID: "bob", ProjectID: "proj-q"}, 24 + 6 + 2},
		{&imaged.ContainerReader{UserID: "alice", ProjectID: ""}, 24 + 6},
		{&imaged.ContainerReader{UserID: "", ProjectID: "proj-p"}, 6 + 2},
		{&imaged.ContainerReader{UserID: "", ProjectID: ""}, 6},
		{&imaged.ContainerReader{UserID: "carol", ProjectID: "proj-r"}, 6},
		{&imaged.ContainerReader{UserID: "alice:x", ProjectID: "proj-q"}, 24 + 6 + 2},
		{nil, len(world)}, // admins
	}
	both := []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}
	yes, no := true, false
	queries := []imaged.ContainerImageQuery{
		{},
		{Statuses: both},
		{Statuses: []imaged.ContainerStatus{imaged.ContainerForgotten}},
		{Statuses: both, Owner: "proj-p"},
		{Statuses: both, Customized: &yes},
		{Customized: &no, Repository: "other/tf"},
		{Statuses: both, CustomizedOwner: "alice", SortKey: "size", SortDir: imaged.Desc},
		{Statuses: both, SortKey: "created_at", SortDir: imaged.Desc},
	}
	for _, rc := range readers {
		r := rc.r
		for _, q := range queries {
			q.ReadableBy = r
			var want []*imaged.ContainerImage
			for _, ci := range world {
				if containerMatches(ci, &q) && readableModel(ci, r) {
					want = append(want, ci)
				}
			}
			slices.SortFunc(want, func(a, b *imaged.ContainerImage) int { return compareContainers(a, b, q.SortKey) })
			if q.SortDir == imaged.Desc {
				slices.Reverse(want)
			}
			var got []*imaged.ContainerImage
			q.Limit = 5
			for {
				page, err := s.ListContainerImages(ctx, q)
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				got = append(got, page...)
				if len(page) < q.Limit || len(got) > len(world) {
					break
				}
				q.After = page[len(page)-1]
			}
			if len(got) != len(want) {
				t.Fatalf("reader %+v, query %+v: got %d images, want %d", r, q, len(got), len(want))
			}
			for i := range want {
				sameContainer(t, got[i], want[i])
			}
			if len(q.Statuses) == 2 && q.Owner == "" && q.Customized == nil && q.CustomizedOwner == "" && len(got) != rc.total {
				t.Errorf("reader %+v reads %d images in all, want %d", r, len(got), rc.total)
			}
		}
	}
}

func testContainerConcurrentUpdates(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	ci := mustScan(t, s, "r1", found("bai/python", "3.9", "x86_64", 1)).Created[0]
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateContainerImage(ctx, ci.ID, func(c *imaged.ContainerImage) error {
				c.Tags = append(c.Tags, fmt.Sprintf("tag-%02d", i))
				c.ResourceLimits[fmt.Sprintf("slot%02d", i)] = imaged.ResourceLimit{Min: "1"}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := mustGetContainer(t, s, ci.ID)
	if len(got.Tags) != n || len(got.ResourceLimits) != n || got.Version != ci.Version+n {
		t.Fatalf("lost updates: %d tags, %d limits, version %d (from %d)", len(got.Tags), len(got.ResourceLimits), got.Version, ci.Version)
	}
	if img, err := s.GetImage(ctx, ci.ID); err != nil || !slices.Equal(img.Tags, got.Tags) {
		t.Fatalf("catalog tags %v, container tags %v (%v)", img.Tags, got.Tags, err)
	}
}

func testAudit(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	actions := []string{"registry.create", "container_image.forget", "container_image.purge", "agents.purge", "container_images"}
	var entries []*imaged.AuditEntry
	for i := range 25 {
		e := &imaged.AuditEntry{RequestID: fmt.Sprintf("req-%d", i), UserID: []string{"alice", "bob"}[i%2], ProjectID: "proj-a",
			Action: actions[i%len(actions)], Target: fmt.Sprintf("t%d", i%3), Result: []string{"success", "failure"}[i%3/2],
			Detail: map[string]any{"i": float64(i), "s": "ü\"", "nested": map[string]any{"ok": true}}}
		if i%4 == 0 {
			e.Time = base.Add(time.Duration(i) * time.Minute)
			e.Detail = nil
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.ID <= 0 || (len(entries) > 0 && e.ID <= entries[len(entries)-1].ID) || e.Time.IsZero() {
			t.Fatalf("entry %d: id %d, time %v", i, e.ID, e.Time)
		}
		entries = append(entries, e)
	}
	wantCode(t, s.AppendAudit(ctx, &imaged.AuditEntry{}), imaged.EINVALID)
	since, until := base.Add(4*time.Minute), base.Add(16*time.Minute)
	for _, q := range []imaged.AuditQuery{
		{},
		{Action: "container_image.forget"},
		{Action: "container_image.*"},
		{Action: "container_image*"},
		{Action: "*"},
		{Target: "t1", UserID: "bob"},
		{Result: "failure"},
		{Since: &since, Until: &until},
		{UserID: "alice", Action: "agents.*"},
	} {
		var want []*imaged.AuditEntry
		for _, e := range slices.Backward(entries) {
			prefix, isPrefix := strings.CutSuffix(q.Action, "*")
			if (q.Action == "" || e.Action == q.Action || (isPrefix && strings.HasPrefix(e.Action, prefix))) &&
				(q.Target == "" || e.Target == q.Target) && (q.UserID == "" || e.UserID == q.UserID) &&
				(q.Result == "" || e.Result == q.Result) && (q.Since == nil || !e.Time.Before(*q.Since)) &&
				(q.Until == nil || e.Time.Before(*q.Until)) {
				want = append(want, e)
			}
		}
		var got []*imaged.AuditEntry
		q.Limit = 4
		for {
			page, err := s.ListAudit(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < q.Limit || len(got) > len(entries) {
				break
			}
			q.BeforeID = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ListAudit %+v: got %d entries, want %d\n got %v\nwant %v", q, len(got), len(want), got, want)
		}
	}
}

// testConcurrentScans: scans of the same registry racing each other (a
// rescan and a single-image scan, say) create each image once and fail
// none.
func testConcurrentScans(t *testing.T, s ContainerImageStore) {
	ctx := context.Background()
	if err := s.CreateRegistry(ctx, newRegistry("r1")); err != nil {
		t.Fatal(err)
	}
	const scans, n = 6, 40
	var wg sync.WaitGroup
	for k := range scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var items []*imaged.ContainerImage
			for i := range n {
				// Each scan lists the images in another order.
				j := (i*7 + k*11) % n
				items = append(items, found("bai/img", fmt.Sprint(j), []string{"x86_64", "aarch64"}[j%2], int64(k)))
			}
			if _, err := s.CommitScan(ctx, "r1", items); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	list, err := s.ListContainerImages(ctx, imaged.ContainerImageQuery{Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}, Limit: 1000})
	if err != nil || len(list) != n {
		t.Fatalf("after concurrent scans: %d images, %v", len(list), err)
	}
	for _, ci := range list {
		if ci.Version < 1 || ci.Version > scans {
			t.Fatalf("image %s has version %d after %d scans", ci.Reference, ci.Version, scans)
		}
	}
}
