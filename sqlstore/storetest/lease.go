package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// testLease checks that an image's lease survives create, get, update (set,
// renew, clear), list and delete.
func testLease(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	img := newImage(uuid(r))
	img.Status = imaged.StatusSaving
	img.Lease = &imaged.Lease{ID: uuid(r), Holder: "host-a:4242", Expires: base.Add(time.Minute)}
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetImage(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, img)

	// Renew: only Expires changes.
	renewed := base.Add(2 * time.Minute)
	upd, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		if i.Lease == nil || i.Lease.ID != img.Lease.ID {
			t.Errorf("fn sees lease %+v, want %+v", i.Lease, img.Lease)
		}
		i.Lease.Expires = renewed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img.Lease.Expires = renewed
	sameImage(t, upd, img)
	if got, err = s.GetImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	sameImage(t, got, img)
	page, err := s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, IDs: []string{img.ID}, Limit: 5,
		Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 {
		t.Fatalf("listed %d images, want 1", len(page))
	}
	sameImage(t, page[0], img)

	// Clear.
	if _, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Lease = nil
		i.Status = imaged.StatusQueued
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	if got.Lease != nil {
		t.Fatalf("lease after clearing = %+v, want nil", got.Lease)
	}

	// Set on an image created without one, then delete: the tombstone
	// keeps no lease and the id stays taken.
	if _, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
		i.Lease = &imaged.Lease{ID: "second", Holder: "h:1", Expires: base}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteImage(ctx, img.ID, nil); err != nil {
		t.Fatal(err)
	}
	exp := base.Add(time.Hour)
	page, err = s.ListImages(ctx, imaged.ImageQuery{Scope: imaged.Scope{Admin: true}, LeaseExpiredBefore: &exp, Limit: 5,
		Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Desc}, {Key: "id", Dir: imaged.Desc}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 0 {
		t.Fatalf("a deleted image's lease is listed: %+v", page[0])
	}
}

// testLeaseExpired checks ImageQuery.LeaseExpiredBefore: only images with
// a lease that expired strictly before the time are selected.
func testLeaseExpired(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	cases := []struct {
		lease *imaged.Lease
		want  bool // expired before base
	}{
		{nil, false},
		{&imaged.Lease{ID: "a", Holder: "h:1", Expires: base.Add(-time.Hour)}, true},
		{&imaged.Lease{ID: "b", Holder: "h:1", Expires: base.Add(-time.Microsecond)}, true},
		{&imaged.Lease{ID: "c", Holder: "h:2", Expires: base}, false},
		{&imaged.Lease{ID: "d", Holder: "h:2", Expires: base.Add(time.Second)}, false},
	}
	want := map[string]bool{}
	for i, c := range cases {
		img := newImage(uuid(r))
		img.CreatedAt = base.Add(time.Duration(i) * time.Second)
		img.Lease = c.lease
		if c.lease != nil {
			img.Status = imaged.StatusSaving
		}
		if err := s.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
		if c.want {
			want[img.ID] = true
		}
	}
	for _, scope := range []imaged.Scope{{Admin: true}, {ProjectID: "proj-a"}} {
		got, err := s.ListImages(ctx, imaged.ImageQuery{Scope: scope, LeaseExpiredBefore: ptr(base), Limit: 10,
			Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("scope %+v: listed %d images, want %d", scope, len(got), len(want))
		}
		for _, img := range got {
			if !want[img.ID] {
				t.Errorf("scope %+v: listed %s (lease %+v), whose lease has not expired", scope, img.ID, img.Lease)
			}
			if img.Lease == nil {
				t.Errorf("listed %s without its lease", img.ID)
			}
		}
	}
}
