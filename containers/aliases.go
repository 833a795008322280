package containers

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/imaged/imaged"
)

// aliasRE is the alias syntax: the characters of references (lowercase
// letters, digits, '.', '_', ':', '/', '-'), 1 to 255 of them, starting
// with a letter or digit.
var aliasRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._:/-]{0,254}$`)

// ListAliases lists aliases sorted by name after marker. Of one image:
// anyone who may see it; of every image (imageID ""): admins only, since
// aliases name images others may not see.
func (s *Service) ListAliases(ctx context.Context, imageID, marker string, limit int) ([]*imaged.ContainerAlias, error) {
	if imageID == "" {
		if _, err := s.admin(ctx, "list every alias"); err != nil {
			return nil, err
		}
	} else if _, _, err := s.load(ctx, imageID, imaged.ActionContainerRead); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultListSize
	} else if limit > maxListLimit {
		limit = maxListLimit
	}
	out, err := s.store.ListAliases(ctx, imageID, marker, limit)
	if err != nil {
		return nil, fmt.Errorf("containers: list aliases: %w", err)
	}
	return out, nil
}

// PutAlias points an alias at an image, creating it or moving it (PUT
// semantics; the audit detail records the previous target) (admins
// only). The target is an image id (alive) or a reference and
// architecture resolved exactly: an alias cannot target an alias. The
// alias must have the alias syntax and may not be, or parse to, the
// canonical reference of a live image (it would shadow nothing and
// confuse everything).
func (s *Service) PutAlias(ctx context.Context, alias string, target imaged.AliasTarget) (out *imaged.ContainerAlias, err error) {
	detail := map[string]any{"image_id": target.ImageID, "reference": target.Reference, "architecture": target.Architecture}
	defer func() { s.audit(ctx, "container_alias.put", alias, err, detail) }()
	if _, err := s.admin(ctx, "manage aliases"); err != nil {
		return nil, err
	}
	if !aliasRE.MatchString(alias) {
		return nil, imaged.Errorf(imaged.EINVALID, "invalid alias %q: 1 to 255 lowercase letters, digits, '.', '_', ':', '/' or '-', starting with a letter or digit", alias)
	}
	var img *imaged.ContainerImage
	switch {
	case target.ImageID != "" && target.Reference != "":
		return nil, imaged.Errorf(imaged.EINVALID, "name the alias target by image id or by reference, not both")
	case target.ImageID != "":
		img, err = s.store.GetContainerImage(ctx, target.ImageID)
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imageNotFound(target.ImageID)
		} else if err != nil {
			return nil, fmt.Errorf("containers: alias target: %w", err)
		}
		if img.Status != imaged.ContainerAlive {
			return nil, imaged.Errorf(imaged.ECONFLICT, "container image %s is forgotten; restore it before aliasing it", img.ID)
		}
	case target.Reference != "":
		ref, _, err := s.parse(ctx, target.Reference)
		if err != nil {
			return nil, err
		}
		arch := s.normArch(target.Architecture)
		img, err = s.store.FindContainerImage(ctx, ref.String(), arch)
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "no live container image %s (%s) to alias (an alias cannot target an alias)", ref.String(), arch)
		} else if err != nil {
			return nil, fmt.Errorf("containers: alias target: %w", err)
		}
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "an alias target (image id, or reference and architecture) is required")
	}
	detail["image_id"] = img.ID
	// The alias may not be a live canonical reference, verbatim or once
	// parsed ("python:3.9" when lablup/python:3.9 exists on Docker Hub).
	names := []string{alias}
	if ref, _, err := s.parse(ctx, alias); err == nil && ref.String() != alias {
		names = append(names, ref.String())
	}
	for _, n := range names {
		live, err := s.store.ListContainerImages(ctx, imaged.ContainerImageQuery{Reference: n, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("containers: alias check: %w", err)
		}
		if len(live) > 0 {
			return nil, imaged.Errorf(imaged.ECONFLICT, "alias %q would shadow the live image %s", alias, n)
		}
	}
	if prev, err := s.store.GetAlias(ctx, alias); err == nil && prev.ImageID != img.ID {
		detail["previous_image_id"] = prev.ImageID
	}
	out, err = s.store.PutAlias(ctx, alias, img.ID)
	if err != nil {
		switch imaged.ErrorCode(err) {
		case imaged.ENOTFOUND:
			return nil, imageNotFound(img.ID)
		case imaged.ECONFLICT:
			return nil, imaged.Errorf(imaged.ECONFLICT, "alias %q would shadow the canonical reference of a live image", alias)
		}
		return nil, fmt.Errorf("containers: put alias: %w", err)
	}
	return out, nil
}

// DeleteAlias removes an alias (admins only); ENOTFOUND if absent.
func (s *Service) DeleteAlias(ctx context.Context, alias string) (out *imaged.ContainerAlias, err error) {
	detail := map[string]any{}
	defer func() { s.audit(ctx, "container_alias.delete", alias, err, detail) }()
	if _, err := s.admin(ctx, "manage aliases"); err != nil {
		return nil, err
	}
	out, err = s.store.DeleteAlias(ctx, alias)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "alias %q not found", alias)
		}
		return nil, fmt.Errorf("containers: delete alias: %w", err)
	}
	detail["image_id"] = out.ImageID
	return out, nil
}

// nativeTaskTypes are the tasks GetTask and WatchTask show (Glance's
// import tasks have their own API).
var nativeTaskTypes = []string{imaged.TaskTypeRegistryRescan, imaged.TaskTypeAgentPurge, imaged.TaskTypeAgentPreload}

// GetTask returns a native background task: admins see every one, other
// callers those they started; anything else is ENOTFOUND.
func (s *Service) GetTask(ctx context.Context, taskID string) (*imaged.Task, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.tasks.Get(ctx, taskID)
	if err != nil && imaged.ErrorCode(err) != imaged.ENOTFOUND {
		return nil, fmt.Errorf("containers: get task: %w", err)
	}
	if err != nil || !slices.Contains(nativeTaskTypes, t.Type) || (!s.pol.IsAdmin(id) && (t.UserID == "" || t.UserID != id.UserID)) {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "task %s not found", taskID)
	}
	return t, nil
}

// WatchTask streams a task's states until it ends or ctx is done (the
// channel is closed then); states written by other processes are seen
// within the poll interval.
func (s *Service) WatchTask(ctx context.Context, taskID string) (<-chan *imaged.Task, error) {
	if _, err := s.GetTask(ctx, taskID); err != nil {
		return nil, err
	}
	return s.tasks.Watch(ctx, taskID)
}
