package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// RunMetadefs runs the conformance suite of imaged.MetadefStore. open must
// return a fresh, empty store; the suite closes it if it is an io.Closer.
func RunMetadefs(t *testing.T, open func(t *testing.T) imaged.MetadefStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s imaged.MetadefStore)
	}{
		{"NamespaceRoundTrip", testMDNamespaceRoundTrip},
		{"NamespaceListModel", testMDListModel},
		{"NamespaceUpdateDelete", testMDUpdateDelete},
		{"Items", testMDItems},
		{"Associations", testMDAssociations},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			if c, ok := s.(interface{ Close() error }); ok {
				t.Cleanup(func() { c.Close() })
			}
			tc.fn(t, s)
		})
	}
}

func newNS(name, owner string, vis imaged.Visibility, at time.Time) *imaged.MetadefNamespace {
	return &imaged.MetadefNamespace{Namespace: name, Owner: owner, Visibility: vis, CreatedAt: at, UpdatedAt: at}
}

func testMDNamespaceRoundTrip(t *testing.T, s imaged.MetadefStore) {
	ctx := context.Background()
	full := &imaged.MetadefNamespace{Namespace: "OS::Compute::Ünï 'q\"", DisplayName: "D", Description: "desc %_",
		Visibility: imaged.VisibilityPublic, Protected: true, Owner: "admin", CreatedAt: base, UpdatedAt: base.Add(time.Microsecond)}
	minimal := newNS("min", "p", imaged.VisibilityPrivate, base)
	for _, ns := range []*imaged.MetadefNamespace{full, minimal} {
		if err := s.CreateMetadefNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetMetadefNamespace(ctx, ns.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt not UTC")
		}
		want := ns.Clone()
		if len(got.ResourceTypeAssociations) != 0 {
			t.Fatalf("associations on a new namespace: %+v", got.ResourceTypeAssociations)
		}
		got.ResourceTypeAssociations, want.ResourceTypeAssociations = nil, nil
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
			t.Fatalf("round trip\n got %+v\nwant %+v", *got, *want)
		}
	}
	wantCode(t, s.CreateMetadefNamespace(ctx, newNS("min", "q", imaged.VisibilityPublic, base)), imaged.ECONFLICT)
	_, err := s.GetMetadefNamespace(ctx, "MIN")
	wantCode(t, err, imaged.ENOTFOUND) // names are case-sensitive
}

// mdModel lists namespaces as MetadefNamespaceQuery documents it.
func mdModel(all []*imaged.MetadefNamespace, order map[string]int, assoc map[string][]string, q imaged.MetadefNamespaceQuery) []string {
	var out []*imaged.MetadefNamespace
	for _, n := range all {
		if q.ScopeNone && n.Visibility != imaged.VisibilityPublic {
			continue
		}
		if q.Scope != "" && n.Owner != q.Scope && n.Visibility != imaged.VisibilityPublic {
			continue
		}
		if q.Visibility != "" && n.Visibility != q.Visibility {
			continue
		}
		if len(q.ResourceTypes) > 0 && !slices.ContainsFunc(assoc[n.Namespace], func(rt string) bool { return slices.Contains(q.ResourceTypes, rt) }) {
			continue
		}
		out = append(out, n)
	}
	key := func(n *imaged.MetadefNamespace) string {
		switch q.SortKey {
		case "namespace":
			return n.Namespace
		case "display_name":
			if n.DisplayName == "" {
				return "" // NULL sorts first
			}
			return "\x01" + n.DisplayName
		case "owner":
			return n.Owner
		case "updated_at":
			return n.UpdatedAt.Format(time.RFC3339Nano)
		}
		return n.CreatedAt.Format(time.RFC3339Nano)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		c := strings.Compare(key(a), key(b))
		if c == 0 {
			c = a.CreatedAt.Compare(b.CreatedAt)
		}
		if c == 0 {
			c = order[a.Namespace] - order[b.Namespace]
		}
		if q.SortDesc {
			return c > 0
		}
		return c < 0
	})
	names := make([]string, len(out))
	for i, n := range out {
		names[i] = n.Namespace
	}
	return names
}

func testMDListModel(t *testing.T, s imaged.MetadefStore) {
	ctx := context.Background()
	r := newRand(t)
	var all []*imaged.MetadefNamespace
	order := map[string]int{}
	assoc := map[string][]string{}
	rts := []string{"OS::Glance::Image", "OS::Nova::Flavor", "OS::Cinder::Volume"}
	for i := 0; i < 40; i++ {
		vis := imaged.VisibilityPrivate
		if r.IntN(2) == 0 {
			vis = imaged.VisibilityPublic
		}
		// Few distinct timestamps and display names: ties must break by
		// insertion order.
		at := base.Add(time.Duration(r.IntN(4)) * time.Second)
		n := newNS(fmt.Sprintf("ns-%02d-%c", r.IntN(100), 'a'+rune(i%26)), []string{"pa", "pb", "pc"}[r.IntN(3)], vis, at)
		if _, dup := order[n.Namespace]; dup {
			continue
		}
		if r.IntN(3) > 0 {
			n.DisplayName = []string{"x", "y"}[r.IntN(2)]
		}
		n.UpdatedAt = at.Add(time.Duration(r.IntN(3)) * time.Second)
		if err := s.CreateMetadefNamespace(ctx, n); err != nil {
			t.Fatal(err)
		}
		order[n.Namespace] = len(order)
		for _, rt := range rts {
			if r.IntN(3) == 0 {
				a := &imaged.MetadefResourceTypeAssociation{Name: rt, CreatedAt: at, UpdatedAt: at}
				if err := s.AssociateMetadefResourceType(ctx, n.Namespace, a); err != nil {
					t.Fatal(err)
				}
				assoc[n.Namespace] = append(assoc[n.Namespace], rt)
			}
		}
		all = append(all, n)
	}
	queries := []imaged.MetadefNamespaceQuery{
		{SortKey: "created_at", SortDesc: true},
		{SortKey: "namespace"},
		{SortKey: "namespace", SortDesc: true, Scope: "pa"},
		{SortKey: "display_name"},
		{SortKey: "display_name", SortDesc: true},
		{SortKey: "updated_at", Visibility: imaged.VisibilityPublic},
		{SortKey: "owner", ScopeNone: true},
		{SortKey: "created_at", ResourceTypes: []string{"OS::Nova::Flavor", "OS::Cinder::Volume"}},
		{SortKey: "namespace", Scope: "pb", Visibility: imaged.VisibilityPrivate, ResourceTypes: []string{"OS::Glance::Image"}},
	}
	for _, q := range queries {
		want := mdModel(all, order, assoc, q)
		for _, limit := range []int{0, 1, 3} {
			var got []string
			qq := q
			qq.Limit = limit
			for page := 0; page < 100; page++ {
				list, err := s.ListMetadefNamespaces(ctx, qq)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range list {
					got = append(got, n.Namespace)
					if want := assoc[n.Namespace]; len(n.ResourceTypeAssociations) != len(want) {
						t.Fatalf("%s: %d associations, want %d", n.Namespace, len(n.ResourceTypeAssociations), len(want))
					}
				}
				if limit == 0 || len(list) < limit {
					break
				}
				qq.Marker = list[len(list)-1].Namespace
			}
			if !slices.Equal(got, want) {
				t.Fatalf("query %+v limit %d\n got %v\nwant %v", q, limit, got, want)
			}
		}
	}
	_, err := s.ListMetadefNamespaces(ctx, imaged.MetadefNamespaceQuery{Marker: "missing"})
	wantCode(t, err, imaged.ENOTFOUND)
	_, err = s.ListMetadefNamespaces(ctx, imaged.MetadefNamespaceQuery{SortKey: "nope"})
	wantCode(t, err, imaged.EINVALID)
}

func testMDUpdateDelete(t *testing.T, s imaged.MetadefStore) {
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if err := s.CreateMetadefNamespace(ctx, newNS(n, "p", imaged.VisibilityPrivate, base)); err != nil {
			t.Fatal(err)
		}
	}
	it := &imaged.MetadefItem{Name: "t", CreatedAt: base, UpdatedAt: base}
	if err := s.CreateMetadefItems(ctx, "a", imaged.MetadefTagKind, []*imaged.MetadefItem{it}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AssociateMetadefResourceType(ctx, "a", &imaged.MetadefResourceTypeAssociation{Name: "RT", CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	up := newNS("a2", "q", imaged.VisibilityPublic, base.Add(time.Hour))
	up.Description = "renamed"
	if err := s.UpdateMetadefNamespace(ctx, "a", up); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMetadefNamespace(ctx, "a2")
	if err != nil || got.Description != "renamed" || got.Owner != "q" || !got.CreatedAt.Equal(base) || !got.UpdatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if len(got.ResourceTypeAssociations) != 1 {
		t.Fatalf("rename lost the associations: %+v", got.ResourceTypeAssociations)
	}
	if items, err := s.ListMetadefItems(ctx, "a2", imaged.MetadefTagKind); err != nil || len(items) != 1 {
		t.Fatalf("rename lost the tags: %v %v", items, err)
	}
	_, err = s.GetMetadefNamespace(ctx, "a")
	wantCode(t, err, imaged.ENOTFOUND)
	wantCode(t, s.UpdateMetadefNamespace(ctx, "a2", newNS("b", "p", imaged.VisibilityPrivate, base)), imaged.ECONFLICT)
	wantCode(t, s.UpdateMetadefNamespace(ctx, "zz", newNS("zz", "p", imaged.VisibilityPrivate, base)), imaged.ENOTFOUND)

	if err := s.DeleteMetadefNamespace(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteMetadefNamespace(ctx, "a2"), imaged.ENOTFOUND)
	// A namespace created again under the name starts empty.
	if err := s.CreateMetadefNamespace(ctx, newNS("a2", "p", imaged.VisibilityPrivate, base)); err != nil {
		t.Fatal(err)
	}
	if items, err := s.ListMetadefItems(ctx, "a2", imaged.MetadefTagKind); err != nil || len(items) != 0 {
		t.Fatalf("delete left tags: %v %v", items, err)
	}
	if got, _ := s.GetMetadefNamespace(ctx, "a2"); len(got.ResourceTypeAssociations) != 0 {
		t.Fatalf("delete left associations")
	}
	// The resource type itself stays (Glance never deletes those).
	rts, err := s.ListMetadefResourceTypes(ctx)
	if err != nil || len(rts) != 1 || rts[0].Name != "RT" {
		t.Fatalf("resource types: %v %v", rts, err)
	}
}

func testMDItems(t *testing.T, s imaged.MetadefStore) {
	ctx := context.Background()
	if err := s.CreateMetadefNamespace(ctx, newNS("ns", "p", imaged.VisibilityPublic, base)); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, at time.Time, data string) *imaged.MetadefItem {
		it := &imaged.MetadefItem{Name: name, CreatedAt: at, UpdatedAt: at}
		if data != "" {
			it.Data = json.RawMessage(data)
		}
		return it
	}
	objs := []*imaged.MetadefItem{mk("b", base, `{"description":"ü <&>"}`), mk("a", base.Add(time.Second), `{}`)}
	if err := s.CreateMetadefItems(ctx, "ns", imaged.MetadefObjectKind, objs, false); err != nil {
		t.Fatal(err)
	}
	// Kinds are separate name spaces.
	if err := s.CreateMetadefItems(ctx, "ns", imaged.MetadefPropertyKind, []*imaged.MetadefItem{mk("a", base, `{"type":"string"}`)}, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "b")
	if err != nil || string(got.Data) != `{"description":"ü <&>"}` || !got.CreatedAt.Equal(base) {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := s.ListMetadefItems(ctx, "ns", imaged.MetadefObjectKind)
	if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("objects not by name: %v %v", list, err)
	}
	// A duplicate within a batch adds nothing.
	err = s.CreateMetadefItems(ctx, "ns", imaged.MetadefObjectKind, []*imaged.MetadefItem{mk("c", base, ""), mk("a", base, "")}, false)
	wantCode(t, err, imaged.ECONFLICT)
	if _, err := s.GetMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "c"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("a failed batch left c behind: %v", err)
	}
	_, err = s.GetMetadefItem(ctx, "missing", imaged.MetadefObjectKind, "a")
	wantCode(t, err, imaged.ENOTFOUND)
	wantCode(t, s.CreateMetadefItems(ctx, "missing", imaged.MetadefTagKind, nil, false), imaged.ENOTFOUND)

	// Tags: newest first, ties by insertion, newest last.
	tags := []*imaged.MetadefItem{mk("t1", base, ""), mk("t2", base, ""), mk("t0", base.Add(time.Minute), "")}
	if err := s.CreateMetadefItems(ctx, "ns", imaged.MetadefTagKind, tags, false); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		l, err := s.ListMetadefItems(ctx, "ns", imaged.MetadefTagKind)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range l {
			out = append(out, it.Name)
			if it.Data != nil {
				t.Fatalf("tag %s has data %s", it.Name, it.Data)
			}
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"t0", "t2", "t1"}) {
		t.Fatalf("tags = %v", got)
	}
	if err := s.CreateMetadefItems(ctx, "ns", imaged.MetadefTagKind, []*imaged.MetadefItem{mk("r", base, "")}, true); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("after replace: %v", got)
	}
	// A failed replace keeps the old tags.
	wantCode(t, s.CreateMetadefItems(ctx, "ns", imaged.MetadefTagKind, []*imaged.MetadefItem{mk("x", base, ""), mk("x", base, "")}, true), imaged.ECONFLICT)
	if got := names(); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("after failed replace: %v", got)
	}

	// Update renames and keeps created_at; conflicts and misses are reported.
	if err := s.UpdateMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "b", mk("z", base.Add(time.Hour), `{"description":"new"}`)); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "z")
	if err != nil || !got.CreatedAt.Equal(base) || !got.UpdatedAt.Equal(base.Add(time.Hour)) || string(got.Data) != `{"description":"new"}` {
		t.Fatalf("after update: %+v %v", got, err)
	}
	wantCode(t, s.UpdateMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "z", mk("a", base, "")), imaged.ECONFLICT)
	wantCode(t, s.UpdateMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "nope", mk("q", base, "")), imaged.ENOTFOUND)

	if err := s.DeleteMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "z"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteMetadefItem(ctx, "ns", imaged.MetadefObjectKind, "z"), imaged.ENOTFOUND)
	if err := s.DeleteMetadefItems(ctx, "ns", imaged.MetadefObjectKind); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListMetadefItems(ctx, "ns", imaged.MetadefObjectKind); len(l) != 0 {
		t.Fatalf("objects left: %v", l)
	}
	if l, _ := s.ListMetadefItems(ctx, "ns", imaged.MetadefPropertyKind); len(l) != 1 {
		t.Fatalf("deleting objects touched properties: %v", l)
	}
}

func testMDAssociations(t *testing.T, s imaged.MetadefStore) {
	ctx := context.Background()
	for _, n := range []string{"n1", "n2"} {
		if err := s.CreateMetadefNamespace(ctx, newNS(n, "p", imaged.VisibilityPublic, base)); err != nil {
			t.Fatal(err)
		}
	}
	a := &imaged.MetadefResourceTypeAssociation{Name: "OS::Nova::Flavor", Prefix: "hw:", PropertiesTarget: "", CreatedAt: base, UpdatedAt: base}
	b := &imaged.MetadefResourceTypeAssociation{Name: "OS::Cinder::Volume", Prefix: "hw_", PropertiesTarget: "image", CreatedAt: base.Add(time.Second), UpdatedAt: base.Add(time.Second)}
	for _, x := range []*imaged.MetadefResourceTypeAssociation{a, b} {
		if err := s.AssociateMetadefResourceType(ctx, "n1", x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AssociateMetadefResourceType(ctx, "n2", a); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.AssociateMetadefResourceType(ctx, "n1", a), imaged.ECONFLICT)
	wantCode(t, s.AssociateMetadefResourceType(ctx, "missing", a), imaged.ENOTFOUND)
	ns, err := s.GetMetadefNamespace(ctx, "n1")
	if err != nil || len(ns.ResourceTypeAssociations) != 2 {
		t.Fatalf("n1: %+v %v", ns, err)
	}
	if g := ns.ResourceTypeAssociations[1]; *g != *b {
		t.Fatalf("association round trip: %+v want %+v", *g, *b)
	}
	rts, err := s.ListMetadefResourceTypes(ctx)
	if err != nil || len(rts) != 2 || rts[0].Name != "OS::Nova::Flavor" {
		t.Fatalf("resource types (in creation order): %+v %v", rts, err)
	}
	if err := s.DissociateMetadefResourceType(ctx, "n1", "OS::Nova::Flavor"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DissociateMetadefResourceType(ctx, "n1", "OS::Nova::Flavor"), imaged.ENOTFOUND)
	if ns, _ := s.GetMetadefNamespace(ctx, "n2"); len(ns.ResourceTypeAssociations) != 1 {
		t.Fatalf("dissociating n1 touched n2")
	}
}
