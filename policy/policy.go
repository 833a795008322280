package policy

import (
	"strings"

	imaged "github.com/imaged/imaged"
)

// Role names Glance's default rules test. Glance does not expand implied
// roles itself (Keystone does when it issues a token), so identities must
// carry every role they should have: an admin that should also read needs
// "reader" only where a rule asks for it; "admin" alone passes every rule.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// Mode names accepted by ByName.
const (
	ModeSecure = "secure"
	ModeLegacy = "legacy"
)

// Rules is one of Glance 25.1's two default rule sets. It is immutable and
// safe for concurrent use.
type Rules struct {
	secure bool
}

var _ imaged.Policy = (*Rules)(nil)

// Secure returns Glance 25.1's new defaults, as with enforce_secure_rbac,
// [oslo_policy] enforce_new_defaults and enforce_scope all true.
func Secure() *Rules { return &Rules{secure: true} }

// Legacy returns Glance 25.1's defaults with enforce_new_defaults false (the
// Zed default): every rule that has a deprecated "rule:default" alternative
// is open, and Glance's legacy owner checks apply instead.
func Legacy() *Rules { return &Rules{secure: false} }

// ByName returns the rule set called name ("secure" or "legacy").
func ByName(name string) (*Rules, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case ModeSecure:
		return Secure(), nil
	case ModeLegacy:
		return Legacy(), nil
	}
	return nil, imaged.Errorf(imaged.EINVALID, "unknown policy %q: want %q or %q", name, ModeSecure, ModeLegacy)
}

// Name returns "secure" or "legacy".
func (r *Rules) Name() string {
	if r.secure {
		return ModeSecure
	}
	return ModeLegacy
}

// IsAdmin is Glance's context_is_admin rule, "role:admin", in both modes.
func (r *Rules) IsAdmin(id *imaged.Identity) bool {
	return id != nil && id.HasRole(RoleAdmin)
}

// Allow reports whether id may perform action on target. A nil identity and
// an unknown action are denied.
func (r *Rules) Allow(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) bool {
	if id != nil && IsMetadefAction(action) {
		return r.AllowMetadef(id, action, t)
	}
	if id == nil || !known(action) {
		return false
	}
	if r.secure {
		return r.allowSecure(id, action, t)
	}
	return r.allowLegacy(id, action, t)
}

// known reports whether action is one of the image actions these rules
// decide; anything else is denied, even to admins, so that a typo fails
// closed.
func known(a imaged.Action) bool {
	switch a {
	case imaged.ActionAddImage, imaged.ActionGetImage, imaged.ActionGetImages, imaged.ActionModifyImage,
		imaged.ActionPublicizeImage, imaged.ActionCommunitizeImage, imaged.ActionDeleteImage,
		imaged.ActionDeactivate, imaged.ActionReactivate, imaged.ActionDownloadImage, imaged.ActionUploadImage,
		imaged.ActionAddMember, imaged.ActionGetMember, imaged.ActionGetMembers, imaged.ActionModifyMember,
		imaged.ActionDeleteMember, imaged.ActionGetImageLocation, imaged.ActionSetImageLocation,
		imaged.ActionDeleteImageLocation, imaged.ActionCopyImage,
		imaged.ActionCacheList, imaged.ActionCacheImage, imaged.ActionCacheDelete:
		return true
	}
	return false
}

// projectIs is oslo.policy's "project_id:%(key)s" check. Glance passes None
// for a missing project or owner and oslo.policy compares str() forms, so
// "no project" matches "no owner": "" == "" is true here, deliberately.
func projectIs(id *imaged.Identity, project string) bool {
	return id.ProjectID == project
}

// mutable is Glance's is_image_mutable, which its database layer applies to
// every image update and delete in both modes (and its API layer once more
// in legacy mode): admins, or the owning project; an image without owner
// and a caller without project never match.
func (r *Rules) mutable(id *imaged.Identity, t imaged.PolicyTarget) bool {
	return r.IsAdmin(id) || (t.Owner != "" && id.ProjectID != "" && t.Owner == id.ProjectID)
}

// everyoneCanFind says the visibility lets any project find the image
// (Glance's 'community'/'public'/'shared':%(visibility)s checks; for shared
// images the catalog's visibility filter then requires a membership).
func everyoneCanFind(v imaged.Visibility) bool {
	return v == imaged.VisibilityCommunity || v == imaged.VisibilityPublic || v == imaged.VisibilityShared
}

func (r *Rules) allowSecure(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) bool {
	if r.IsAdmin(id) {
		// Every default rule starts with "role:admin or".
		return true
	}
	member := id.HasRole(RoleMember)
	reader := id.HasRole(RoleReader)
	owner := projectIs(id, t.Owner)
	imageMember := projectIs(id, t.MemberID)
	switch action {
	case imaged.ActionAddImage:
		// role:member and project_id:%(project_id)s and project_id:%(owner)s
		return member && owner
	case imaged.ActionGetImage:
		return reader && (owner || imageMember || everyoneCanFind(t.Visibility))
	case imaged.ActionDownloadImage:
		return member && (owner || imageMember || everyoneCanFind(t.Visibility))
	case imaged.ActionGetImages, imaged.ActionGetImageLocation:
		return reader && owner
	case imaged.ActionModifyImage, imaged.ActionDeleteImage, imaged.ActionUploadImage,
		imaged.ActionDeactivate, imaged.ActionReactivate, imaged.ActionSetImageLocation:
		// The rule, then the database layer's is_image_mutable.
		return member && owner && r.mutable(id, t)
	case imaged.ActionCommunitizeImage, imaged.ActionAddMember, imaged.ActionDeleteMember:
		return member && owner
	case imaged.ActionGetMember, imaged.ActionGetMembers:
		return reader && (owner || imageMember)
	case imaged.ActionModifyMember:
		return member && imageMember
	case imaged.ActionPublicizeImage, imaged.ActionDeleteImageLocation, imaged.ActionCopyImage,
		imaged.ActionCacheList, imaged.ActionCacheImage, imaged.ActionCacheDelete:
		return false // role:admin
	}
	return false
}

func (r *Rules) allowLegacy(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) bool {
	admin := r.IsAdmin(id)
	switch action {
	case imaged.ActionPublicizeImage, imaged.ActionCopyImage,
		imaged.ActionCacheList, imaged.ActionCacheImage, imaged.ActionCacheDelete:
		// The only image rules without a deprecated open alternative
		// (the cache rules are role:admin in both sets).
		return admin
	case imaged.ActionAddImage:
		// check_admin_or_same_owner: a requested owner must be the
		// caller's project (both may be none).
		return admin || projectIs(id, t.Owner)
	case imaged.ActionModifyImage, imaged.ActionDeleteImage, imaged.ActionUploadImage,
		imaged.ActionDeactivate, imaged.ActionReactivate,
		imaged.ActionSetImageLocation, imaged.ActionDeleteImageLocation:
		// check_is_image_mutable ("You do not own this image").
		return r.mutable(id, t)
	case imaged.ActionAddMember:
		// "You are not permitted to create image members for the image."
		return admin || (t.Owner != "" && projectIs(id, t.Owner))
	case imaged.ActionModifyMember:
		// "You are not permitted to modify 'status' on this image member."
		return admin || !projectIs(id, t.Owner)
	case imaged.ActionDeleteMember:
		// "You cannot delete image member."
		return admin || projectIs(id, t.Owner)
	case imaged.ActionCommunitizeImage, imaged.ActionGetImage, imaged.ActionGetImages, imaged.ActionDownloadImage,
		imaged.ActionGetMember, imaged.ActionGetMembers, imaged.ActionGetImageLocation:
		return true
	}
	return false
}

// ImageTarget returns the target Glance's rules see for an existing image
// acted on by id: Owner and Visibility are the image's, and MemberID is
// Glance's image.member, the caller's project when the image is shared and
// the caller does not own it (Glance found it through a membership), else
// "". IsMember is left false: neither rule set reads it.
func ImageTarget(id *imaged.Identity, img *imaged.Image) imaged.PolicyTarget {
	t := imaged.PolicyTarget{Owner: img.Owner, Visibility: img.Visibility}
	if id != nil && img.Visibility == imaged.VisibilityShared && id.ProjectID != img.Owner {
		t.MemberID = id.ProjectID
	}
	return t
}

// CreateTarget returns the target of add_image (and of the publicize or
// communitize check on create): owner is the requested owner or nil for
// "not given" (then the caller's project), visibility the requested one or
// "" for "not given" (then private, as Glance's create-time target says,
// although the image is then stored as shared).
func CreateTarget(id *imaged.Identity, owner *string, visibility imaged.Visibility) imaged.PolicyTarget {
	t := imaged.PolicyTarget{Visibility: visibility}
	if owner != nil {
		t.Owner = *owner
	} else if id != nil {
		t.Owner = id.ProjectID
	}
	if t.Visibility == "" {
		t.Visibility = imaged.VisibilityPrivate
	}
	return t
}

// ListTarget returns the target of get_images: Glance checks the listing
// against the caller's own project.
func ListTarget(id *imaged.Identity) imaged.PolicyTarget {
	t := imaged.PolicyTarget{Visibility: imaged.VisibilityPrivate}
	if id != nil {
		t.Owner = id.ProjectID
	}
	return t
}

// VisibilityAction returns the extra action Glance checks when an image is
// created with, or patched to, visibility v: publicize_image for public,
// communitize_image for community, and "" (no extra check) otherwise.
func VisibilityAction(v imaged.Visibility) imaged.Action {
	switch v {
	case imaged.VisibilityPublic:
		return imaged.ActionPublicizeImage
	case imaged.VisibilityCommunity:
		return imaged.ActionCommunitizeImage
	}
	return ""
}
