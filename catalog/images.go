package catalog

import (
	"context"
	"fmt"
	"sort"

	"github.com/imaged/imaged"
)

// DeleteImage turns an image into a tombstone, unless it is protected.
func (s *Service) DeleteImage(ctx context.Context, imageID string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if _, err := s.load(ctx, id, imageID); err != nil {
		return notFound(err, "Failed to find image %s to delete", imageID)
	}
	// The checks run on the image inside the store's transaction, so a
	// concurrent "protected: true" cannot slip past them.
	old, err := s.store.DeleteImage(ctx, imageID, func(img *imaged.Image) error {
		if err := s.enforce(id, imaged.ActionDeleteImage, img, msgNotOwner); err != nil {
			return err
		}
		if err := imaged.CheckIfMatch(ctx, img); err != nil {
			return err
		}
		if img.Protected {
			return imaged.Errorf(imaged.EFORBIDDEN, "Image %s is protected and cannot be deleted.", img.ID)
		}
		if !imaged.CanTransition(img.Status, imaged.StatusDeleted) {
			return imaged.Errorf(imaged.EINVALID, "Image status transition from %s to %s is not allowed", img.Status, imaged.StatusDeleted)
		}
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return imaged.Errorf(imaged.ENOTFOUND, "Failed to find image %s to delete", imageID)
		}
		return fmt.Errorf("catalog: delete image %s: %w", imageID, err)
	}
	s.deleteData(ctx, old)
	return nil
}

// modifyTags runs fn on the image's tags under Glance's tag rules: the
// image must be visible ("Image %s not found.") and modifiable (legacy:
// "Not allowed to <verb> tags for image %s.").
func (s *Service) modifyTags(ctx context.Context, imageID, verb string, fn func(img *imaged.Image) error) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if _, err := s.load(ctx, id, imageID); err != nil {
		return notFound(err, "Image %s not found.", imageID)
	}
	now := s.clock.Now()
	_, err = s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		if err := s.enforce(id, imaged.ActionModifyImage, img, fmt.Sprintf("Not allowed to %s tags for image %s.", verb, imageID)); err != nil {
			return err
		}
		if err := fn(img); err != nil {
			return err
		}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && imaged.ErrorMessage(err) != errResourceNotFound().Message {
			return imaged.Errorf(imaged.ENOTFOUND, "Image %s not found.", imageID)
		}
		return fmt.Errorf("catalog: tags of %s: %w", imageID, err)
	}
	return nil
}

// AddTag adds a tag; adding a present tag changes nothing but is no error.
func (s *Service) AddTag(ctx context.Context, imageID, tag string) error {
	if err := s.schema.validate("tags", []any{tag}); err != nil {
		return err
	}
	return s.modifyTags(ctx, imageID, "update", func(img *imaged.Image) error {
		i := sort.SearchStrings(img.Tags, tag)
		if i < len(img.Tags) && img.Tags[i] == tag {
			return nil
		}
		if q := s.cfg.ImageTagQuota; q >= 0 && len(img.Tags)+1 > q {
			return imaged.Errorf(imaged.ETOOLARGE, "Image tag limit exceeded for image %s: %s:", imageID, imaged.ErrorMessage(errTagQuota(len(img.Tags)+1, q)))
		}
		tags := make([]string, 0, len(img.Tags)+1)
		tags = append(tags, img.Tags[:i]...)
		tags = append(tags, tag)
		img.Tags = append(tags, img.Tags[i:]...)
		return nil
	})
}

// DeleteTag removes a tag; ENOTFOUND if the image does not have it.
func (s *Service) DeleteTag(ctx context.Context, imageID, tag string) error {
	return s.modifyTags(ctx, imageID, "delete", func(img *imaged.Image) error {
		for i, t := range img.Tags {
			if t == tag {
				img.Tags = append(img.Tags[:i:i], img.Tags[i+1:]...)
				return nil
			}
		}
		return errResourceNotFound()
	})
}

// DeactivateImage hides an active image's data; it is a no-op on a
// deactivated image.
func (s *Service) DeactivateImage(ctx context.Context, imageID string) error {
	return s.setActive(ctx, imageID, imaged.ActionDeactivate, imaged.StatusActive, imaged.StatusDeactivated, "deactivate")
}

// ReactivateImage undoes DeactivateImage; it is a no-op on an active image.
func (s *Service) ReactivateImage(ctx context.Context, imageID string) error {
	return s.setActive(ctx, imageID, imaged.ActionReactivate, imaged.StatusDeactivated, imaged.StatusActive, "reactivate")
}

func (s *Service) setActive(ctx context.Context, imageID string, action imaged.Action, from, to imaged.ImageStatus, verb string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if _, err := s.load(ctx, id, imageID); err != nil {
		return notFound(err, "No image found with ID %s", imageID)
	}
	now := s.clock.Now()
	_, err = s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		if err := s.enforce(id, action, img, msgNotOwner); err != nil {
			return err
		}
		switch img.Status {
		case to:
			// Glance saves anyway, which bumps updated_at.
		case from:
			if !imaged.CanTransition(from, to) {
				return imaged.Errorf(imaged.EINVALID, "Image status transition from %s to %s is not allowed", from, to)
			}
			img.Status = to
		default:
			return imaged.Errorf(imaged.EFORBIDDEN, "Not allowed to %s image in status '%s'", verb, img.Status)
		}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && imaged.ErrorMessage(err) != errResourceNotFound().Message {
			return imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", imageID)
		}
		return fmt.Errorf("catalog: %s image %s: %w", verb, imageID, err)
	}
	return nil
}

// ListImages returns one page of the images the caller may see.
func (s *Service) ListImages(ctx context.Context, q imaged.ImageQuery, marker string) ([]*imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// get_images is checked against the caller's own project.
	if !s.pol.Allow(id, imaged.ActionGetImages, imaged.PolicyTarget{Owner: id.ProjectID, Visibility: imaged.VisibilityPrivate}) {
		return nil, notAuthorized(imaged.ActionGetImages)
	}
	switch {
	case q.Limit < 0:
		return nil, imaged.Errorf(imaged.EINVALID, "limit param must be positive")
	case q.Limit == 0:
		q.Limit = s.cfg.LimitParamDefault
	}
	if q.Limit > s.cfg.APILimitMax {
		q.Limit = s.cfg.APILimitMax
	}
	sortKeys, err := completeSort(q.Sort)
	if err != nil {
		return nil, err
	}
	q.Sort = sortKeys
	q.Scope = imaged.Scope{ProjectID: id.ProjectID, Admin: s.pol.IsAdmin(id)}
	q.After = nil
	if marker != "" {
		m, err := s.store.GetImage(ctx, marker)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.ENOTFOUND {
				return nil, imaged.Errorf(imaged.EINVALID, "No image found with ID %s", marker)
			}
			return nil, fmt.Errorf("catalog: marker %s: %w", marker, err)
		}
		ok, err := s.visible(ctx, id, m)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, imaged.Errorf(imaged.EFORBIDDEN, "Forbidding request, image %s not visible", marker)
		}
		q.After = m
	}
	imgs, err := s.store.ListImages(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("catalog: list images: %w", err)
	}
	// Glance checks get_image on every listed image.
	out := imgs[:0]
	for _, img := range imgs {
		if s.pol.Allow(id, imaged.ActionGetImage, target(id, img)) {
			out = append(out, img)
		}
	}
	return out, nil
}

// completeSort validates a listing's order and completes it as Glance's
// image_get_all does: created_at and id are appended (in the direction of
// the only given key, else desc) so that the order is total; keys after id
// cannot change the order and are dropped, so that id is last.
func completeSort(keys []imaged.SortKey) ([]imaged.SortKey, error) {
	out := make([]imaged.SortKey, 0, len(keys)+2)
	seen := map[string]bool{}
	for _, k := range keys {
		if !contains(imaged.SortableKeys, k.Key) {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid sort key: %s.", k.Key)
		}
		if k.Dir == "" {
			k.Dir = imaged.Desc
		}
		if k.Dir != imaged.Asc && k.Dir != imaged.Desc {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid sort direction: %s", k.Dir)
		}
		if seen[k.Key] {
			continue
		}
		seen[k.Key] = true
		out = append(out, k)
		if k.Key == "id" {
			return out, nil
		}
	}
	dir := imaged.Desc
	if len(keys) == 1 && keys[0].Dir != "" {
		dir = keys[0].Dir
	}
	if !seen["created_at"] {
		out = append(out, imaged.SortKey{Key: "created_at", Dir: dir})
	}
	return append(out, imaged.SortKey{Key: "id", Dir: dir}), nil
}
