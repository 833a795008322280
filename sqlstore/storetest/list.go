package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

var (
	projects   = []string{"p1", "p2", "p3"}
	visList    = []imaged.Visibility{imaged.VisibilityPublic, imaged.VisibilityCommunity, imaged.VisibilityShared, imaged.VisibilityPrivate}
	statusList = []imaged.ImageStatus{imaged.StatusQueued, imaged.StatusActive, imaged.StatusDeactivated, imaged.StatusKilled}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// randomImage makes an image whose attributes come from small domains, so
// that filters hit several images and sorts meet many ties and NULLs.
func randomImage(r *rand.Rand, id string) *imaged.Image {
	img := &imaged.Image{
		ID:         id,
		Status:     pick(r, statusList),
		Visibility: pick(r, visList),
		Protected:  r.IntN(4) == 0,
		OSHidden:   r.IntN(5) == 0,
		Owner:      pick(r, []string{"p1", "p2", "p3", ""}),
		MinDisk:    int64(r.IntN(3)),
		MinRAM:     int64(r.IntN(3) * 256),
		CreatedAt:  base.Add(time.Duration(r.IntN(8)) * time.Second),
		Properties: map[string]string{},
	}
	img.UpdatedAt = img.CreatedAt.Add(time.Duration(r.IntN(3)) * time.Microsecond)
	if r.IntN(4) != 0 {
		img.Name = ptr(pick(r, []string{"alpha", "beta", "Beta", "gamma", ""}))
	}
	img.DiskFormat = pick(r, []string{"qcow2", "raw", ""})
	img.ContainerFormat = pick(r, []string{"bare", "ovf", ""})
	if r.IntN(3) != 0 {
		img.Size = ptr(int64(r.IntN(4) * 1000))
	}
	if r.IntN(2) == 0 {
		img.VirtualSize = ptr(int64(r.IntN(3) * 5000))
	}
	for _, tg := range []string{"t1", "t2", "t3"} {
		if r.IntN(2) == 0 {
			img.Tags = append(img.Tags, tg)
		}
	}
	if r.IntN(2) == 0 {
		img.Properties["os_distro"] = pick(r, []string{"ubuntu", "cirros"})
	}
	if r.IntN(3) == 0 {
		img.Properties["hw"] = pick(r, []string{"q35", "pc"})
	}
	if r.IntN(2) == 0 {
		img.Checksum = pick(r, []string{"c1", "c2"})
		img.OSHashAlgo = pick(r, []string{"sha512", "sha256"})
		img.OSHashValue = pick(r, []string{"h1", "h2", "h3"})
	}
	return img
}

// populate fills s with n random images, random members on them and a few
// tombstones, mirrored in a world.
func populate(t *testing.T, s imaged.ImageStore, n int) (*world, *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	r := newRand(t)
	w := newWorld()
	for range n {
		img := randomImage(r, uuid(r))
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		w.images[img.ID] = img
		for _, p := range projects {
			if p == img.Owner || r.IntN(2) == 0 {
				continue
			}
			st := pick(r, []imaged.MemberStatus{imaged.MemberPending, imaged.MemberAccepted, imaged.MemberRejected})
			if err := s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: p, Status: st, CreatedAt: base, UpdatedAt: base}); err != nil {
				t.Fatal(err)
			}
			if w.members[img.ID] == nil {
				w.members[img.ID] = map[string]imaged.MemberStatus{}
			}
			w.members[img.ID][p] = st
		}
	}
	// Tombstones must never show up, whatever the query.
	ids := make([]string, 0, len(w.images))
	for id := range w.images {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids[:n/10] {
		if _, err := s.DeleteImage(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
		delete(w.images, id)
		delete(w.members, id)
	}
	return w, r
}

func ids(imgs []*imaged.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}

// checkQuery compares the store's answer to the model's.
func checkQuery(t *testing.T, s imaged.ImageStore, w *world, q imaged.ImageQuery) []*imaged.Image {
	t.Helper()
	got, err := s.ListImages(context.Background(), q)
	if err != nil {
		t.Fatalf("ListImages(%s): %v", describe(q), err)
	}
	want := w.expect(q)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("ListImages(%s)\n got %d: %v\nwant %d: %v", describe(q), len(got), ids(got), len(want), want)
	}
	for _, img := range got {
		sameImage(t, img, w.images[img.ID])
	}
	return got
}

func describe(q imaged.ImageQuery) string {
	q.After = nil
	return fmt.Sprintf("%+v", q)
}

// withDefaultSort completes a sort the way callers do.
func withDefaultSort(keys ...imaged.SortKey) []imaged.SortKey {
	out := append([]imaged.SortKey(nil), keys...)
	if !slices.ContainsFunc(out, func(k imaged.SortKey) bool { return k.Key == "created_at" }) {
		out = append(out, imaged.SortKey{Key: "created_at", Dir: imaged.Desc})
	}
	return append(out, imaged.SortKey{Key: "id", Dir: out[len(out)-1].Dir})
}

func testListModel(t *testing.T, s imaged.ImageStore) {
	w, _ := populate(t, s, 120)
	scopes := []imaged.Scope{{Admin: true}, {Admin: true, ProjectID: "p1"}, {ProjectID: "p1"}, {ProjectID: "p2"}, {ProjectID: "p9"}, {}}
	sortDef := withDefaultSort()
	// Every scope × visibility × member status.
	for _, sc := range scopes {
		for _, vis := range []string{"", "all", "public", "private", "shared", "community"} {
			for _, ms := range []string{"", "pending", "accepted", "rejected", "all"} {
				checkQuery(t, s, w, imaged.ImageQuery{Scope: sc, Visibility: vis, MemberStatus: ms, Sort: sortDef, Limit: 1000})
			}
		}
	}
	mid := base.Add(4 * time.Second)
	var someIDs []string
	for id := range w.images {
		if len(someIDs) < 5 {
			someIDs = append(someIDs, id)
		}
	}
	filters := []imaged.ImageQuery{
		{IDs: someIDs},
		{IDs: someIDs[:1]},
		{Names: []string{"alpha"}},
		{Names: []string{"beta", "Beta", ""}},
		{Statuses: []string{"active"}},
		{Statuses: []string{"queued", "killed"}},
		{Owners: []string{"p2"}},
		{Owners: []string{"p1", "p3"}},
		{ContainerFormat: []string{"bare"}},
		{DiskFormat: []string{"qcow2", "raw"}},
		{Protected: ptr(true)},
		{Protected: ptr(false)},
		{OSHidden: ptr(true)},
		{OSHidden: ptr(false)},
		{SizeMin: ptr(int64(1000))},
		{SizeMax: ptr(int64(1000))},
		{SizeMin: ptr(int64(1000)), SizeMax: ptr(int64(2000))},
		{Tags: []string{"t1"}},
		{Tags: []string{"t1", "t2"}},
		{Tags: []string{"nope"}},
		{Properties: map[string]string{"os_distro": "ubuntu"}},
		{Properties: map[string]string{"os_distro": "cirros", "hw": "q35"}},
		{CreatedAt: []imaged.TimeFilter{{Op: imaged.OpGt, Value: mid}}},
		{CreatedAt: []imaged.TimeFilter{{Op: imaged.OpGte, Value: mid}, {Op: imaged.OpLt, Value: mid.Add(2 * time.Second)}}},
		{CreatedAt: []imaged.TimeFilter{{Op: imaged.OpEq, Value: mid}}},
		{CreatedAt: []imaged.TimeFilter{{Op: imaged.OpNeq, Value: mid}}},
		{UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpLte, Value: mid.Add(time.Microsecond)}}},
		{UpdatedAt: []imaged.TimeFilter{{Op: imaged.OpEq, Value: mid.Add(time.Microsecond)}}},
		{Statuses: []string{"active"}, Tags: []string{"t3"}, Properties: map[string]string{"os_distro": "ubuntu"}, OSHidden: ptr(false)},
		{Checksum: "c1"},
		{OSHashValue: "h2"},
		{OSHashAlgo: "sha512"},
		{OSHashAlgo: "sha256", OSHashValue: "h3", Checksum: "c2"},
		{MinDisk: ptr(int64(1))},
		{MinRAM: ptr(int64(512))},
		{MinRAM: ptr(int64(0)), MinDisk: ptr(int64(2))},
		{VirtualSize: ptr(int64(5000))},
		{VirtualSize: ptr(int64(0))},
		{VirtualSize: ptr(int64(7))},
	}
	for _, f := range filters {
		for _, sc := range []imaged.Scope{{Admin: true}, {ProjectID: "p1"}} {
			for _, vis := range []string{"", "all"} {
				q := f
				q.Scope, q.Visibility, q.Sort, q.Limit = sc, vis, sortDef, 1000
				checkQuery(t, s, w, q)
			}
		}
	}
	// Every sort key, both directions, alone and followed by another key.
	for _, key := range imaged.SortableKeys {
		for _, dir := range []imaged.SortDir{imaged.Asc, imaged.Desc} {
			checkQuery(t, s, w, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Sort: withDefaultSort(imaged.SortKey{Key: key, Dir: dir}), Limit: 1000})
			// The default visibility, for an admin and for an anonymous scope.
			checkQuery(t, s, w, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Sort: withDefaultSort(imaged.SortKey{Key: key, Dir: dir}), Limit: 1000})
			checkQuery(t, s, w, imaged.ImageQuery{Sort: withDefaultSort(imaged.SortKey{Key: key, Dir: dir}), Limit: 1000})
			checkQuery(t, s, w, imaged.ImageQuery{Scope: imaged.Scope{ProjectID: "p2"}, Sort: withDefaultSort(imaged.SortKey{Key: key, Dir: dir}, imaged.SortKey{Key: "name", Dir: imaged.Asc}), Limit: 1000})
		}
	}
	// Limits cut the ordered result.
	for _, limit := range []int{1, 2, 7} {
		checkQuery(t, s, w, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", Sort: withDefaultSort(imaged.SortKey{Key: "size", Dir: imaged.Asc}), Limit: limit})
	}
}

// testListSemantics pins the documented rules with hand-made images, so
// that the model itself is checked, not only the store against it.
func testListSemantics(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	mk := func(name string, vis imaged.Visibility, owner string, hidden bool) *imaged.Image {
		img := &imaged.Image{ID: uuid(r), Name: ptr(name), Status: imaged.StatusActive, Visibility: vis, Owner: owner,
			OSHidden: hidden, CreatedAt: base, UpdatedAt: base}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		return img
	}
	pub := mk("pub", imaged.VisibilityPublic, "owner", false)
	comm := mk("comm", imaged.VisibilityCommunity, "owner", false)
	myComm := mk("mycomm", imaged.VisibilityCommunity, "me", false)
	priv := mk("priv", imaged.VisibilityPrivate, "owner", false)
	myPriv := mk("mypriv", imaged.VisibilityPrivate, "me", false)
	shAcc := mk("sh-acc", imaged.VisibilityShared, "owner", false)
	shPend := mk("sh-pend", imaged.VisibilityShared, "owner", false)
	shRej := mk("sh-rej", imaged.VisibilityShared, "owner", false)
	shOther := mk("sh-other", imaged.VisibilityShared, "owner", false)
	myShared := mk("myshared", imaged.VisibilityShared, "me", false)
	hidden := mk("hidden", imaged.VisibilityPublic, "owner", true)
	for img, st := range map[*imaged.Image]imaged.MemberStatus{shAcc: imaged.MemberAccepted, shPend: imaged.MemberPending, shRej: imaged.MemberRejected} {
		if err := s.CreateMember(ctx, &imaged.Member{ImageID: img.ID, MemberID: "me", Status: st, CreatedAt: base, UpdatedAt: base}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMember(ctx, &imaged.Member{ImageID: shOther.ID, MemberID: "other", Status: imaged.MemberAccepted, CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	names := func(q imaged.ImageQuery) []string {
		t.Helper()
		q.Limit = 100
		q.Sort = []imaged.SortKey{{Key: "name", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}
		got, err := s.ListImages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, img := range got {
			out = append(out, *img.Name)
		}
		return out
	}
	me := imaged.Scope{ProjectID: "me"}
	admin := imaged.Scope{Admin: true}
	for _, tc := range []struct {
		q    imaged.ImageQuery
		want []string
	}{
		{imaged.ImageQuery{Scope: me}, []string{"mycomm", "mypriv", "myshared", "pub", "sh-acc"}},
		{imaged.ImageQuery{Scope: me, MemberStatus: "pending"}, []string{"mycomm", "mypriv", "myshared", "pub", "sh-pend"}},
		{imaged.ImageQuery{Scope: me, MemberStatus: "rejected", Visibility: "shared"}, []string{"myshared", "sh-rej"}},
		{imaged.ImageQuery{Scope: me, MemberStatus: "all", Visibility: "shared"}, []string{"myshared", "sh-acc", "sh-pend", "sh-rej"}},
		{imaged.ImageQuery{Scope: me, Visibility: "community"}, []string{"comm", "mycomm"}},
		{imaged.ImageQuery{Scope: me, Visibility: "all"}, []string{"comm", "mycomm", "mypriv", "myshared", "pub", "sh-acc"}},
		{imaged.ImageQuery{Scope: me, Visibility: "private"}, []string{"mypriv"}},
		{imaged.ImageQuery{Scope: me, OSHidden: ptr(true)}, []string{"hidden"}},
		{imaged.ImageQuery{Scope: imaged.Scope{}}, []string{"pub"}},
		{imaged.ImageQuery{Scope: imaged.Scope{}, Visibility: "all"}, []string{"comm", "mycomm", "pub"}},
		{imaged.ImageQuery{Scope: admin}, []string{"mypriv", "myshared", "priv", "pub", "sh-acc", "sh-other", "sh-pend", "sh-rej"}},
		{imaged.ImageQuery{Scope: admin, Visibility: "all"}, []string{"comm", "mycomm", "mypriv", "myshared", "priv", "pub", "sh-acc", "sh-other", "sh-pend", "sh-rej"}},
		{imaged.ImageQuery{Scope: imaged.Scope{Admin: true, ProjectID: "me"}}, []string{"mycomm", "mypriv", "myshared", "priv", "pub", "sh-acc", "sh-other", "sh-pend", "sh-rej"}},
	} {
		if got := names(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.q, got, tc.want)
		}
	}
	_ = []*imaged.Image{pub, comm, myComm, priv, myPriv, myShared, hidden} // named for readability above

	// NULLs sort as the smallest value, in both directions.
	nulls := []*imaged.Image{}
	for i, sz := range []*int64{nil, ptr(int64(5)), nil, ptr(int64(1))} {
		img := &imaged.Image{ID: uuid(r), Status: imaged.StatusActive, Visibility: imaged.VisibilityPrivate, Owner: "nulls",
			Size: sz, CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		nulls = append(nulls, img)
	}
	for _, tc := range []struct {
		dir  imaged.SortDir
		want []*imaged.Image
	}{
		{imaged.Asc, []*imaged.Image{nulls[2], nulls[0], nulls[3], nulls[1]}},
		{imaged.Desc, []*imaged.Image{nulls[1], nulls[3], nulls[2], nulls[0]}},
	} {
		got, err := s.ListImages(ctx, imaged.ImageQuery{Scope: admin, Owners: []string{"nulls"}, Limit: 10,
			Sort: []imaged.SortKey{{Key: "size", Dir: tc.dir}, {Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), ids(tc.want)) {
			t.Errorf("size %s: got %v, want %v", tc.dir, ids(got), ids(tc.want))
		}
	}
	// Bad input is EINVALID.
	for _, q := range []imaged.ImageQuery{
		{Scope: admin, Limit: 10, Sort: []imaged.SortKey{{Key: "checksum", Dir: imaged.Asc}}},
		{Scope: admin, Limit: 10, Visibility: "everyone"},
		{Scope: me, Limit: 10, MemberStatus: "maybe"},
		{Scope: admin, Limit: 10, CreatedAt: []imaged.TimeFilter{{Op: "about", Value: base}}},
	} {
		_, err := s.ListImages(ctx, q)
		wantCode(t, err, imaged.EINVALID)
	}
}

var pageSorts = [][]imaged.SortKey{
	withDefaultSort(),
	withDefaultSort(imaged.SortKey{Key: "name", Dir: imaged.Asc}),
	withDefaultSort(imaged.SortKey{Key: "name", Dir: imaged.Desc}),
	withDefaultSort(imaged.SortKey{Key: "size", Dir: imaged.Asc}, imaged.SortKey{Key: "disk_format", Dir: imaged.Desc}),
	withDefaultSort(imaged.SortKey{Key: "size", Dir: imaged.Desc}, imaged.SortKey{Key: "owner", Dir: imaged.Asc}),
	withDefaultSort(imaged.SortKey{Key: "virtual_size", Dir: imaged.Desc}, imaged.SortKey{Key: "container_format", Dir: imaged.Asc}),
	withDefaultSort(imaged.SortKey{Key: "status", Dir: imaged.Asc}, imaged.SortKey{Key: "protected", Dir: imaged.Desc}, imaged.SortKey{Key: "min_ram", Dir: imaged.Asc}),
	withDefaultSort(imaged.SortKey{Key: "updated_at", Dir: imaged.Asc}),
	{{Key: "visibility", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}},
	{{Key: "id", Dir: imaged.Desc}},
}

// page walks a listing with After = the last image of each page.
func walk(t *testing.T, s imaged.ImageStore, q imaged.ImageQuery, between func()) []*imaged.Image {
	t.Helper()
	var all []*imaged.Image
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		got, err := s.ListImages(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		if len(got) < q.Limit {
			return all
		}
		q.After = got[len(got)-1]
		if between != nil {
			between()
		}
	}
}

func testPagination(t *testing.T, s imaged.ImageStore) {
	w, _ := populate(t, s, 90)
	for _, sortKeys := range pageSorts {
		for _, sc := range []imaged.Scope{{Admin: true}, {ProjectID: "p3"}, {}} {
			for _, limit := range []int{1, 4, 13} {
				vis := "all"
				if sc.ProjectID == "" && !sc.Admin {
					vis = "" // default visibility, anonymous
				}
				q := imaged.ImageQuery{Scope: sc, Visibility: vis, Sort: sortKeys, Limit: limit}
				// Each page is exactly what the model expects after the marker...
				got := walk(t, s, q, nil)
				// ...and the pages together are the whole listing.
				full := q
				full.Limit = 10000
				if want := w.expect(full); !slices.Equal(ids(got), want) {
					t.Fatalf("pages of %v limit %d:\n got %v\nwant %v", sortKeys, limit, ids(got), want)
				}
				// Spot-check single pages after arbitrary markers.
				for _, after := range got[:min(3, len(got))] {
					pq := q
					pq.After = after
					checkQuery(t, s, w, pq)
				}
			}
		}
	}
}

func testPaginationInserts(t *testing.T, s imaged.ImageStore) {
	w, r := populate(t, s, 60)
	ctx := context.Background()
	for _, sortKeys := range pageSorts {
		before := imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, Visibility: "all", OSHidden: nil, Sort: sortKeys, Limit: 10000}
		original := w.expect(before)
		var inserted []string
		q := before
		q.Limit = 5
		got := walk(t, s, q, func() {
			// New images land everywhere in the order, also right at the
			// marker's sort values (same created_at, same size...).
			for range 2 {
				img := randomImage(r, uuid(r))
				img.OSHidden = false
				if err := s.CreateImage(ctx, img); err != nil {
					t.Fatal(err)
				}
				w.images[img.ID] = img
				inserted = append(inserted, img.ID)
			}
		})
		seen := map[string]bool{}
		for i, img := range got {
			if seen[img.ID] {
				t.Fatalf("%v: image %s repeated", sortKeys, img.ID)
			}
			seen[img.ID] = true
			if i > 0 && compareImages(got[i-1], img, sortKeys) >= 0 {
				t.Fatalf("%v: pages out of order at %d", sortKeys, i)
			}
		}
		for _, id := range original {
			if !seen[id] {
				t.Fatalf("%v: image %s present before paging was skipped", sortKeys, id)
			}
		}
		if len(got) > len(original)+len(inserted) {
			t.Fatalf("more images than exist")
		}
	}
}
