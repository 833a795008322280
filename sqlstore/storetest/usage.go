package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// modelUsage is imaged.Usage's documented rule, applied to the live images
// the test created (brute force, as the listing model does).
func modelUsage(imgs []*imaged.Image, owner string) imaged.Usage {
	var u imaged.Usage
	for _, img := range imgs {
		if img.Owner != owner || img.Status == imaged.StatusDeleted || img.DeletedAt != nil {
			continue
		}
		var size, reserved int64
		if img.Size != nil {
			size = *img.Size
		}
		if img.Lease != nil {
			reserved = img.Lease.Reserved
		}
		switch img.Status {
		case imaged.StatusKilled:
			continue
		case imaged.StatusUploading:
			u.StageSize += size + reserved
			u.Uploading++
		case imaged.StatusImporting:
			u.StageSize += size
			u.Uploading++
		case imaged.StatusSaving:
			u.ImageSize += size + reserved
			u.Uploading++
		default:
			u.ImageSize += size
		}
		u.ImageCount++
	}
	return u
}

// testUsage checks Usage against the model over images of every status,
// with and without sizes and reservations, of two owners, before and after
// updates and deletes; and that a lease's reservation round-trips.
func testUsage(t *testing.T, s imaged.ImageStore) {
	ctx := context.Background()
	r := newRand(t)
	check := func(t *testing.T, imgs []*imaged.Image) {
		t.Helper()
		for _, owner := range []string{"proj-a", "proj-b", "proj-none"} {
			got, err := s.Usage(ctx, owner)
			if err != nil {
				t.Fatal(err)
			}
			if want := modelUsage(imgs, owner); got != want {
				t.Fatalf("Usage(%s) = %+v, want %+v", owner, got, want)
			}
		}
	}
	check(t, nil) // an empty store: all zero

	statuses := []imaged.ImageStatus{imaged.StatusQueued, imaged.StatusSaving, imaged.StatusUploading,
		imaged.StatusImporting, imaged.StatusActive, imaged.StatusDeactivated, imaged.StatusKilled,
		imaged.StatusPendingDel}
	var imgs []*imaged.Image
	for i, st := range statuses {
		for j, owner := range []string{"proj-a", "proj-b"} {
			img := newImage(uuid(r))
			img.Owner = owner
			img.Status = st
			// Sizes large enough to overflow 32 bits, distinct per image.
			if st != imaged.StatusQueued && st != imaged.StatusSaving {
				img.Size = ptr(int64(5<<30) + int64(i*10+j))
			}
			if st == imaged.StatusSaving || st == imaged.StatusUploading {
				img.Lease = &imaged.Lease{ID: uuid(r), Holder: "h:1", Expires: base.Add(time.Minute), Reserved: int64(1000*(i+1) + j)}
			}
			if err := s.CreateImage(ctx, img); err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
	}
	check(t, imgs)

	// A reservation round-trips with its lease.
	for _, img := range imgs {
		if img.Lease == nil {
			continue
		}
		got, err := s.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, got, img)
	}

	// Growing a reservation, finishing an upload (reservation becomes
	// size) and deleting an image all show in the next Usage.
	for _, img := range imgs {
		if img.Status != imaged.StatusSaving || img.Owner != "proj-a" {
			continue
		}
		upd, err := s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
			i.Lease.Reserved += 7 << 30
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		*img = *upd
		check(t, imgs)
		upd, err = s.UpdateImage(ctx, img.ID, func(i *imaged.Image) error {
			i.Status = imaged.StatusActive
			i.Size = ptr(i.Lease.Reserved)
			i.Lease = nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		*img = *upd
		check(t, imgs)
	}
	for _, img := range imgs {
		if img.Status != imaged.StatusActive && img.Status != imaged.StatusUploading {
			continue
		}
		old, err := s.DeleteImage(ctx, img.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if old.ID != img.ID {
			t.Fatalf("deleted %s, want %s", old.ID, img.ID)
		}
		img.Status = imaged.StatusDeleted
		check(t, imgs)
	}
}
