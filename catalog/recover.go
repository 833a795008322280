package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/imaged/imaged"
)

// recoverPage is how many abandoned images one listing of RecoverAbandoned
// reads.
const recoverPage = 100

// RecoverAbandoned puts back to queued every image whose upload lease has
// expired (its uploader crashed, hung or lost the database) and deletes the
// bytes that upload was writing, so that the image can be uploaded again.
// Each image is recovered in one conditional update (still the same expired
// lease), so several processes may run it at once: each image is recovered
// once. It returns how many images it recovered. It also fails the legacy
// import tasks (POST /v2/tasks) whose process died.
func (s *Service) RecoverAbandoned(ctx context.Context) (int, error) {
	now := s.clock.Now()
	recovered := 0
	for _, hidden := range []bool{false, true} {
		q := imaged.ImageQuery{
			Scope:              imaged.Scope{Admin: true},
			Visibility:         "all",
			MemberStatus:       "all",
			OSHidden:           &hidden,
			LeaseExpiredBefore: &now,
			Sort:               []imaged.SortKey{{Key: "created_at", Dir: imaged.Asc}, {Key: "id", Dir: imaged.Asc}},
			Limit:              recoverPage,
		}
		for {
			page, err := s.store.ListImages(ctx, q)
			if err != nil {
				return recovered, fmt.Errorf("catalog: list abandoned uploads: %w", err)
			}
			for _, img := range page {
				ok, err := s.recoverOne(ctx, img, now)
				if err != nil {
					return recovered, err
				}
				if ok {
					recovered++
				}
			}
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1]
		}
	}
	if _, err := s.failAbandonedLegacyTasks(ctx); err != nil {
		return recovered, err
	}
	return recovered, nil
}

// recoverOne recovers img if it still holds the expired lease it was listed
// with.
func (s *Service) recoverOne(ctx context.Context, img *imaged.Image, now time.Time) (bool, error) {
	lease := *img.Lease
	t := s.clock.Now()
	var staged bool   // a stage or an import was abandoned: its staged bytes go
	var taskID string // the abandoned import's task
	_, err := s.store.UpdateImage(ctx, img.ID, func(cur *imaged.Image) error {
		if cur.Lease == nil || cur.Lease.ID != lease.ID || !cur.Lease.Expires.Before(now) {
			return errLostLease(img.ID) // renewed, finished or recovered meanwhile
		}
		staged, taskID = false, ""
		switch cur.Status {
		case imaged.StatusUploading, imaged.StatusImporting:
			staged = true
			taskID = recoverImport(cur)
			cur.Status = imaged.StatusQueued
		case imaged.StatusSaving:
			cur.Status = imaged.StatusQueued
		case imaged.StatusActive:
			taskID = recoverImport(cur) // an abandoned copy-image
		}
		cur.Lease = nil
		cur.UpdatedAt = t
		return nil
	})
	switch imaged.ErrorCode(err) {
	case "":
	case imaged.ENOTFOUND, imaged.ECONFLICT:
		return false, nil
	default:
		return false, fmt.Errorf("catalog: recover image %s: %w", img.ID, err)
	}
	s.log.Warn("recovered an abandoned upload: image back to queued", "image", img.ID, "lease", lease.ID,
		"holder", lease.Holder, "expired", lease.Expires)
	if s.blobs != nil {
		// The abandoned transfer may have written into any store.
		s.deleteKeyEverywhere(ctx, img.ID, blobKey(img.ID, lease.ID))
		if staged {
			if err := s.blobs.Delete(ctx, stagingKey(img.ID)); err != nil {
				s.log.Warn("deleting the staged bytes of an abandoned import", "image", img.ID, "err", err)
			}
		}
	}
	s.failRecoveredTask(ctx, taskID)
	return true, nil
}

// SweepOrphans deletes blobs under images/ that nothing refers to: their
// image is gone, or the key is neither the image's current data nor the
// upload its live lease is writing. Blobs younger than the lease TTL are
// left alone: an upload commits its blob just before the update that
// records it. It returns how many blobs it deleted.
func (s *Service) SweepOrphans(ctx context.Context) (int, error) {
	deleted := 0
	for _, t := range s.allTargets() {
		n, err := s.sweepStore(ctx, t)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// sweepStore is SweepOrphans in one store: a blob is kept when a location
// of its image names this store and key, or its image's lease writes it.
func (s *Service) sweepStore(ctx context.Context, t blobTarget) (int, error) {
	cutoff := s.clock.Now().Add(-s.cfg.UploadLease)
	var candidates []string
	err := t.blobs.List(ctx, blobPrefix, func(b imaged.BlobInfo) error {
		if b.ModTime.Before(cutoff) {
			candidates = append(candidates, b.Key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: list blobs of store %q: %w", t.name, err)
	}
	deleted := 0
	for _, key := range candidates {
		imageID, leaseID, ok := parseBlobKey(key)
		if !ok {
			continue // not ours to judge
		}
		img, err := s.store.GetImage(ctx, imageID)
		switch {
		case imaged.ErrorCode(err) == imaged.ENOTFOUND:
		case err != nil:
			return deleted, fmt.Errorf("catalog: sweep %s: %w", key, err)
		case hasLocation(img, t.name, s.defaultTarget().name, key), img.Lease != nil && img.Lease.ID == leaseID:
			continue
		}
		if err := t.blobs.Delete(ctx, key); err != nil {
			return deleted, fmt.Errorf("catalog: sweep %s: %w", key, err)
		}
		s.log.Info("deleted an orphaned blob", "store", t.name, "key", key)
		deleted++
	}
	return deleted, nil
}

// hasLocation reports whether img has a location with key in store; a
// location naming no store (written before stores were named) is in the
// default store def.
func hasLocation(img *imaged.Image, store, def, key string) bool {
	for _, l := range img.Locations {
		ls := locationStore(l)
		if ls == "" {
			ls = def
		}
		if l.URL == locationURL+key && ls == store {
			return true
		}
	}
	return false
}
