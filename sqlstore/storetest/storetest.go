// Package storetest is the conformance suite of imaged.ImageStore. Every
// backend runs it: Run(t, func(t) imaged.ImageStore { ... fresh store ... }).
// RunTasks and RunContainers are the suites of imaged.TaskStore and
// imaged.ContainerStore (containers.go), which backends run the same way.
// It uses only the imaged interfaces, and checks listings against a
// brute-force model of ImageQuery's documented (Glance) semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// Run runs the whole suite. open must return a fresh, empty store; the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) imaged.ImageStore) {
	fresh := func(t *testing.T) imaged.ImageStore {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s imaged.ImageStore)
	}{
		{"CreateGetRoundTrip", testRoundTrip},
		{"CreateConflictAndTombstone", testConflict},
		{"GetNotFound", testNotFound},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Members", testMembers},
		{"ListModel", testListModel},
		{"ListSemantics", testListSemantics},
		{"Pagination", testPagination},
		{"PaginationWithInserts", testPaginationInserts},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentCreate", testConcurrentCreate},
		{"Lease", testLease},
		{"LeaseExpired", testLeaseExpired},
		{"Usage", testUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, fresh(t))
		})
	}
}

var base = time.Date(2026, 11, 22, 8, 0, 0, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if imaged.ErrorCode(err) != code {
		t.Fatalf("error = %v (code %q), want code %q", err, imaged.ErrorCode(err), code)
	}
}

func newImage(id string) *imaged.Image {
	return &imaged.Image{ID: id, Name: ptr("img-" + id[:4]), Status: imaged.StatusQueued,
		Visibility: imaged.VisibilityShared, Owner: "proj-a", CreatedAt: base, UpdatedAt: base}
}

var idSeq struct {
	sync.Mutex
	n int
}

// uuid returns a deterministic-looking unique UUID-shaped id.
func uuid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
}

func newRand(t *testing.T) *rand.Rand {
	idSeq.Lock()
	idSeq.n++
	n := idSeq.n
	idSeq.Unlock()
	return rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(n)))
}

// normalise makes nil and empty collections compare equal.
func normalise(img *imaged.Image) *imaged.Image {
	c := img.Clone()
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	if len(c.Properties) == 0 {
		c.Properties = nil
	}
	if len(c.Locations) == 0 {
		c.Locations = nil
	}
	for i := range c.Locations {
		if len(c.Locations[i].Metadata) == 0 {
			c.Locations[i].Metadata = nil
		}
	}
	c.Version = 0
	return c
}

func sameImage(t *testing.T, got, want *imaged.Image) {
	t.Helper()
	g, w := normalise(got), normalise(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("image mismatch\n got: %s\nwant: %s", dump(g), dump(w))
	}
}

func dump(img *imaged.Image) string {
	s := fmt.Sprintf("%+v", *img)
	if img.Name != nil {
		s += " name=" + *img.Name
	}
	if img.Size != nil {
		s += fmt.Sprintf(" size=%d", *img.Size)
	}
	if img.VirtualSize != nil {
		s += fmt.Sprintf(" vsize=%d", *img.VirtualSize)
	}
	return s
}

func testRoundTrip(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	full := &imaged.Image{
		ID: uuid(r), Name: ptr("cirros ünïcode '\" %_"), Status: imaged.StatusActive, Visibility: imaged.VisibilityPublic,
		Protected: true, OSHidden: true, Owner: "proj-a", DiskFormat: "qcow2", ContainerFormat: "bare",
		Size: ptr(int64(1) << 40), VirtualSize: ptr(int64(0)), Checksum: "d41d8cd98f00b204e9800998ecf8427e",
		OSHashAlgo: "sha512", OSHashValue: "abc", MinDisk: 10, MinRAM: 512,
		CreatedAt: base, UpdatedAt: base.Add(time.Second + time.Microsecond),
		Tags:       []string{"b", "a", "b", "ü"},
		Properties: map[string]string{"os_distro": "cirros", "empty": "", "quote": `a"b\c`},
		Locations:  []imaged.Location{{URL: "file:///x", Metadata: map[string]string{"k": "v"}, Store: "fs"}},
	}
	minimal := &imaged.Image{ID: uuid(r), Status: imaged.StatusQueued, Visibility: imaged.VisibilityPrivate,
		CreatedAt: base.Add(-time.Hour), UpdatedAt: base.Add(-time.Hour)}
	for _, img := range []*imaged.Image{full, minimal} {
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := img.Clone()
		want.Tags = slices.Compact(slices.Sorted(slices.Values(want.Tags)))
		sameImage(t, got, want)
		if got.DeletedAt != nil {
			t.Fatalf("live image has DeletedAt %v", got.DeletedAt)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt not UTC: %v", got.CreatedAt.Location())
		}
	}
	// The stored copy is not the caller's: changing it does not leak.
	full.Properties["os_distro"] = "changed"
	got, _ := s.GetImage(ctx, full.ID)
	if got.Properties["os_distro"] != "cirros" {
		t.Fatalf("store kept a reference to the caller's map")
	}
}

func testConflict(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	dup := newImage(img.ID)
	dup.Name = ptr("other")
	wantCode(t, s.CreateImage(ctx, dup), imaged.ECONFLICT)
	got, err := s.GetImage(ctx, img.ID)
	if err != nil || *got.Name != *img.Name {
		t.Fatalf("conflicting create changed the image: %v %v", got, err)
	}
	if _, err := s.DeleteImage(ctx, img.ID, nil); err != nil {
		t.Fatal(err)
	}
	// The tombstone keeps the id taken.
	wantCode(t, s.CreateImage(ctx, newImage(img.ID)), imaged.ECONFLICT)
	_, err = s.GetImage(ctx, img.ID)
	wantCode(t, err, imaged.ENOTFOUND)
}

func testNotFound(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	id := uuid(r)
	_, err := s.GetImage(ctx, id)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.UpdateImage(ctx, id, func(*imaged.Image) error { t.Error("fn called for a missing image"); return nil })
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.DeleteImage(ctx, id, nil)
	wantCode(t, err, imaged.ENOTFOUND)
	wantCode(t, s.CreateMember(ctx, &imaged.Member{ImageID: id, MemberID: "p", Status: imaged.MemberPending, CreatedAt: base, UpdatedAt: base}), imaged.ENOTFOUND)
}

func testUpdate(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	img.Tags = []string{"keep", "drop"}
	img.Properties = map[string]string{"keep": "1", "change": "old", "drop": "x"}
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetImage(ctx, img.ID)
	later := base.Add(time.Minute)
	got, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.ID = "someone-else" // ignored: the id is the row's identity
		i.Name = nil
		i.Status = imaged.StatusActive
		i.Size = ptr(int64(42))
		i.DiskFormat = "raw"
		i.Owner = ""
		i.UpdatedAt = later
		i.Tags = []string{"new", "keep", "new"}
		delete(i.Properties, "drop")
		i.Properties["change"] = "new"
		i.Properties["add"] = "a"
		i.Locations = []imaged.Location{{URL: "s3://b/k", Metadata: map[string]string{}}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := img.Clone()
	want.Name, want.Status, want.Size, want.DiskFormat, want.Owner, want.UpdatedAt = nil, imaged.StatusActive, ptr(int64(42)), "raw", "", later
	want.Tags = []string{"keep", "new"}
	want.Properties = map[string]string{"keep": "1", "change": "new", "add": "a"}
	want.Locations = []imaged.Location{{URL: "s3://b/k"}}
	sameImage(t, got, want)
	if got.Version != before.Version+1 {
		t.Fatalf("version %d after one update from %d", got.Version, before.Version)
	}
	reread, err := s.GetImage(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, reread, want)
	if reread.Version != got.Version {
		t.Fatalf("returned version %d, stored %d", got.Version, reread.Version)
	}
	if _, err := s.GetImage(ctx, "someone-else"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("fn moved the image id: %v", err)
	}

	// An error from fn aborts everything and comes back as is.
	sentinel := imaged.Errorf(imaged.EFORBIDDEN, "no")
	_, err = s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Name = ptr("should not stick")
		i.Tags = nil
		i.Properties = nil
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("fn's error not returned as is: %v", err)
	}
	after, _ := s.GetImage(ctx, img.ID)
	sameImage(t, after, want)
	if after.Version != got.Version {
		t.Fatalf("aborted update changed version")
	}
	// Clearing everything works too.
	got, err = s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Tags, i.Properties, i.Locations = nil, nil, nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ = s.GetImage(ctx, img.ID)
	if len(after.Tags)+len(after.Properties)+len(after.Locations) != 0 || len(got.Tags) != 0 {
		t.Fatalf("children not cleared: %+v", after)
	}
}

func testDelete(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	img.Tags = []string{"t"}
	img.Properties = map[string]string{"p": "v"}
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "proj-b", Status: imaged.MemberAccepted, CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	// A veto keeps the image.
	veto := imaged.Errorf(imaged.EFORBIDDEN, "protected")
	_, err := s.DeleteImage(ctx, img.ID, func(i *imaged.Image) error {
		if i.ID != img.ID || i.Properties["p"] != "v" {
			t.Errorf("veto fn got %+v", i)
		}
		return veto
	})
	if !errors.Is(err, veto) {
		t.Fatalf("veto not returned: %v", err)
	}
	if _, err := s.GetImage(ctx, img.ID); err != nil {
		t.Fatalf("vetoed delete removed the image: %v", err)
	}
	old, err := s.DeleteImage(ctx, img.ID, func(*imaged.Image) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := img.Clone()
	sameImage(t, old, want) // the image as it was
	_, err = s.GetImage(ctx, img.ID)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.DeleteImage(ctx, img.ID, nil)
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.UpdateImage(ctx, img.ID, func(*imaged.Image) error { return nil })
	wantCode(t, err, imaged.ENOTFOUND)
	if n, err := s.CountMembers(ctx, img.ID); err != nil || n != 0 {
		t.Fatalf("members of a deleted image: %d %v", n, err)
	}
	wantCode(t, s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "proj-c", Status: imaged.MemberPending, CreatedAt: base, UpdatedAt: base}), imaged.ENOTFOUND)
	for _, q := range []imaged.ImageQuery{
		{Scope: imaged.Scope{Admin: true}, Visibility: "all", Limit: 10},
		{Scope: imaged.Scope{Admin: true}, IDs: []string{img.ID}, Limit: 10},
		{Scope: imaged.Scope{Admin: true}, Statuses: []string{"deleted"}, Limit: 10},
		{Scope: imaged.Scope{ProjectID: "proj-a"}, Tags: []string{"t"}, Limit: 10},
	} {
		got, err := s.ListImages(ctx, q)
		if err != nil || len(got) != 0 {
			t.Fatalf("deleted image listed by %+v: %v %v", q, got, err)
		}
	}
}

func testMembers(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.ListMembers(ctx, img.ID); err != nil || len(ms) != 0 {
		t.Fatalf("fresh image has members: %v %v", ms, err)
	}
	var want []*imaged.Member
	for i, p := range []string{"proj-z", "proj-b", "proj-c"} {
		at := base.Add(time.Duration(i) * time.Second)
		m := &imaged.Member{ImageID: img.ID, MemberID: p, Status: imaged.MemberPending, CreatedAt: at, UpdatedAt: at}
		if err := s.CreateMember(ctx, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	wantCode(t, s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "proj-b", Status: imaged.MemberAccepted, CreatedAt: base, UpdatedAt: base}), imaged.ECONFLICT)
	got, err := s.ListMembers(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListMembers (oldest first) = %+v, want %+v", got, want)
	}
	m, err := s.GetMember(ctx, img.ID, "proj-b")
	if err != nil || !reflect.DeepEqual(m, want[1]) {
		t.Fatalf("GetMember = %+v %v", m, err)
	}
	_, err = s.GetMember(ctx, img.ID, "nobody")
	wantCode(t, err, imaged.ENOTFOUND)
	upd := &imaged.Member{ImageID: img.ID, MemberID: "proj-b", Status: imaged.MemberAccepted, UpdatedAt: base.Add(time.Hour)}
	if err := s.UpdateMember(ctx, upd); err != nil {
		t.Fatal(err)
	}
	m, _ = s.GetMember(ctx, img.ID, "proj-b")
	if m.Status != imaged.MemberAccepted || !m.UpdatedAt.Equal(upd.UpdatedAt) || !m.CreatedAt.Equal(want[1].CreatedAt) {
		t.Fatalf("after update: %+v", m)
	}
	wantCode(t, s.UpdateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "nobody", Status: imaged.MemberRejected}), imaged.ENOTFOUND)
	if n, err := s.CountMembers(ctx, img.ID); err != nil || n != 3 {
		t.Fatalf("CountMembers = %d %v", n, err)
	}
	if err := s.DeleteMember(ctx, img.ID, "proj-z"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteMember(ctx, img.ID, "proj-z"), imaged.ENOTFOUND)
	if n, _ := s.CountMembers(ctx, img.ID); n != 2 {
		t.Fatalf("CountMembers after delete = %d", n)
	}
	got, _ = s.ListMembers(ctx, img.ID)
	if len(got) != 2 || got[0].MemberID != "proj-b" || got[1].MemberID != "proj-c" {
		t.Fatalf("ListMembers after delete = %+v", got)
	}
}

func testConcurrentUpdates(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			_, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
				i.Properties[fmt.Sprintf("p%03d", g)] = fmt.Sprint(g)
				if g%2 == 0 {
					i.Tags = append(i.Tags, fmt.Sprintf("t%03d", g))
				}
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetImage(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Properties) != n || len(got.Tags) != n/2 {
		t.Fatalf("lost updates: %d properties, %d tags, want %d and %d", len(got.Properties), len(got.Tags), n, n/2)
	}
	for g := range n {
		if got.Properties[fmt.Sprintf("p%03d", g)] != fmt.Sprint(g) {
			t.Fatalf("property p%03d lost", g)
		}
	}
	created, _ := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, IDs: []string{img.ID}, Limit: 1})
	if len(created) != 1 || created[0].Version != got.Version {
		t.Fatalf("list and get disagree on version")
	}
	if got.Version < n {
		t.Fatalf("version %d after %d updates", got.Version, n)
	}
}

func testConcurrentCreate(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	id := uuid(r)
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, conflicts := 0, 0
	for g := range n {
		wg.Go(func() {
			img := newImage(id)
			img.Name = ptr(fmt.Sprint(g))
			err := s.CreateImage(ctx, img)
			mu.Lock()
			defer mu.Unlock()
			switch imaged.ErrorCode(err) {
			case "":
				ok++
			case imaged.ECONFLICT:
				conflicts++
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("%d creates succeeded, %d conflicted; want 1 and %d", ok, conflicts, n-1)
	}
}
