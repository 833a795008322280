package catalog

import (
	"context"
	"fmt"

	"github.com/imaged/imaged"
)

// memberImage looks up the image of a member operation: ENOTFOUND "Image %s
// not found." if the caller cannot see it; then, as Glance's
// MemberAPIPolicy does first, the get_image rule (a 404 if it refuses).
func (s *Service) memberImage(ctx context.Context, imageID string) (*imaged.Identity, *imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, nil, notFound(err, "Image %s not found.", imageID)
	}
	return id, img, nil
}

// memberEnforce is MemberAPIPolicy._enforce: get_image (404), then the
// member rule. A refusal in legacy mode, where the rules are open and the
// refusal comes from Glance's ownership checks, is worded legacyMsg.
func (s *Service) memberEnforce(id *imaged.Identity, img *imaged.Image, action imaged.Action, legacyMsg string) error {
	t := target(id, img)
	if !s.pol.Allow(id, imaged.ActionGetImage, t) {
		return errResourceNotFound()
	}
	if s.pol.Allow(id, action, t) {
		return nil
	}
	if s.secure || legacyMsg == "" {
		return notAuthorized(action)
	}
	return imaged.Errorf(imaged.EFORBIDDEN, "%s", legacyMsg)
}

// memberVisible is Glance's database filter on memberships: admins see all
// of them, the image's owner those of its images, a project its own.
func (s *Service) memberVisible(id *imaged.Identity, img *imaged.Image, memberID string) bool {
	return s.pol.IsAdmin(id) || id.ProjectID != "" && (img.Owner == id.ProjectID || memberID == id.ProjectID)
}

// lookupMember is Glance's _lookup_member: get_member, then the membership
// as the caller may see it.
func (s *Service) lookupMember(ctx context.Context, id *imaged.Identity, img *imaged.Image, memberID string) (*imaged.Member, error) {
	if err := s.memberEnforce(id, img, imaged.ActionGetMember, ""); err != nil {
		return nil, err
	}
	missing := imaged.Errorf(imaged.ENOTFOUND, "%s not found in the member list of the image %s.", memberID, img.ID)
	if !s.memberVisible(id, img, memberID) {
		return nil, missing
	}
	m, err := s.store.GetMember(ctx, img.ID, memberID)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, missing
		}
		return nil, fmt.Errorf("catalog: member %s of %s: %w", memberID, img.ID, err)
	}
	return m, nil
}

// ListMembers returns the memberships the caller may see: all of them for
// the owner and admins, its own for a member project.
func (s *Service) ListMembers(ctx context.Context, imageID string) ([]*imaged.Member, error) {
	id, img, err := s.memberImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	if img.Visibility != imaged.VisibilityShared {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "Not allowed to list members for image %s: Only shared images have members.", imageID)
	}
	if err := s.memberEnforce(id, img, imaged.ActionGetMembers, ""); err != nil {
		return nil, err
	}
	all, err := s.store.ListMembers(ctx, imageID)
	if err != nil {
		return nil, fmt.Errorf("catalog: members of %s: %w", imageID, err)
	}
	out := make([]*imaged.Member, 0, len(all))
	for _, m := range all {
		if s.memberVisible(id, img, m.MemberID) && s.pol.Allow(id, imaged.ActionGetMember, target(id, img)) {
			out = append(out, m)
		}
	}
	return out, nil
}

// GetMember returns one membership. Glance answers every refusal here
// with a 404.
func (s *Service) GetMember(ctx context.Context, imageID, memberID string) (*imaged.Member, error) {
	id, img, err := s.memberImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	if img.Visibility != imaged.VisibilityShared {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "Only shared images have members.")
	}
	m, err := s.lookupMember(ctx, id, img, memberID)
	if imaged.ErrorCode(err) == imaged.EFORBIDDEN {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "%s", imaged.ErrorMessage(err))
	}
	return m, err
}

// AddMember shares an image with a project (status pending).
func (s *Service) AddMember(ctx context.Context, imageID, memberID string) (*imaged.Member, error) {
	if memberID == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "Member can't be empty")
	}
	id, img, err := s.memberImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	generic := fmt.Sprintf("Not allowed to create members for image %s.", imageID)
	if img.Visibility != imaged.VisibilityShared {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	if !s.secure && !s.pol.IsAdmin(id) && (img.Owner == "" || img.Owner != id.ProjectID) {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	if err := s.memberEnforce(id, img, imaged.ActionAddMember, generic); err != nil {
		return nil, err
	}
	if q := s.cfg.ImageMemberQuota; q >= 0 {
		n, err := s.store.CountMembers(ctx, imageID)
		if err != nil {
			return nil, fmt.Errorf("catalog: count members of %s: %w", imageID, err)
		}
		if n+1 > q {
			return nil, imaged.Errorf(imaged.ETOOLARGE, "Image member limit exceeded for image %s: The limit has been exceeded on the number of allowed image members for this image. Attempted: %d, Maximum: %d:", imageID, n+1, q)
		}
	}
	now := s.clock.Now()
	m := &imaged.Member{ImageID: imageID, MemberID: memberID, Status: imaged.MemberPending, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateMember(ctx, m); err != nil {
		switch imaged.ErrorCode(err) {
		case imaged.ECONFLICT:
			return nil, imaged.Errorf(imaged.ECONFLICT, "Member %s is duplicated for image %s", memberID, imageID)
		case imaged.ENOTFOUND:
			return nil, imaged.Errorf(imaged.ENOTFOUND, "Image %s not found.", imageID)
		}
		return nil, fmt.Errorf("catalog: add member %s to %s: %w", memberID, imageID, err)
	}
	return m, nil
}

// UpdateMember sets a membership's status; only the member project (or an
// admin) may.
func (s *Service) UpdateMember(ctx context.Context, imageID, memberID string, status imaged.MemberStatus) (*imaged.Member, error) {
	id, img, err := s.memberImage(ctx, imageID)
	if err != nil {
		return nil, err
	}
	generic := fmt.Sprintf("Not allowed to update members for image %s.", imageID)
	if img.Visibility != imaged.VisibilityShared {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	if !s.secure && !s.pol.IsAdmin(id) && id.ProjectID == img.Owner {
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	m, err := s.lookupMember(ctx, id, img, memberID)
	if err != nil {
		return nil, err
	}
	if err := s.memberEnforce(id, img, imaged.ActionModifyMember, generic); err != nil {
		return nil, err
	}
	if !imaged.ValidMemberStatus(string(status)) {
		return nil, imaged.Errorf(imaged.EINVALID, "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\".")
	}
	m.Status = status
	m.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateMember(ctx, m); err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "%s not found in the member list of the image %s.", memberID, imageID)
		}
		return nil, fmt.Errorf("catalog: update member %s of %s: %w", memberID, imageID, err)
	}
	return m, nil
}

// DeleteMember stops sharing an image with a project; the owner (or an
// admin) may.
func (s *Service) DeleteMember(ctx context.Context, imageID, memberID string) error {
	id, img, err := s.memberImage(ctx, imageID)
	if err != nil {
		return err
	}
	generic := fmt.Sprintf("Not allowed to delete members for image %s.", imageID)
	if img.Visibility != imaged.VisibilityShared {
		return imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	if !s.secure && !s.pol.IsAdmin(id) && id.ProjectID != img.Owner {
		return imaged.Errorf(imaged.EFORBIDDEN, "%s", generic)
	}
	if _, err := s.lookupMember(ctx, id, img, memberID); err != nil {
		return err
	}
	if err := s.memberEnforce(id, img, imaged.ActionDeleteMember, generic); err != nil {
		return err
	}
	if err := s.store.DeleteMember(ctx, imageID, memberID); err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return imaged.Errorf(imaged.ENOTFOUND, "%s not found in the member list of the image %s.", memberID, imageID)
		}
		return fmt.Errorf("catalog: delete member %s of %s: %w", memberID, imageID, err)
	}
	return nil
}
