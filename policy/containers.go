package policy

import imaged "github.com/imaged/imaged"

// Container image access rules. Glance's rule sets know nothing of
// container images, so these are imaged's own, decided from Backend.AI's
// behaviour and its users' complaints (docs/containers.md):
//
//   - An admin (IsAdmin) sees and may change everything, forgotten images
//     included.
//   - A customized image (one carrying the ai.backend.customized-image.owner
//     label) belongs to the user the label names. Its owner sees it in any
//     status (so that a forgotten one can be restored: Backend.AI #14601,
//     #14594) and may forget, restore, purge and untag it. Every other
//     non-admin is told it does not exist (ENOTFOUND), never that it is
//     forbidden, so that customized images do not leak (Backend.AI #3938).
//     A malformed owner label makes nobody the owner: such an image is
//     for admins only.
//   - A stock (non-customized) image is seen by non-admins only while alive
//     and only as its catalog visibility allows: public and community to
//     everyone, private and shared to the owning project only (container
//     images have no member lists).
//   - Modify, resource limits, aliases, registries and rescans are admin
//     only: a non-admin asking to change an image they can see gets
//     EFORBIDDEN, one they cannot see ENOTFOUND.
//   - A read-only identity (role reader without member) may see what a
//     member sees but never change anything, its own customized images
//     included; identities without any role (legacy deployments) count as
//     members.

// ContainerOp is an operation on one container image (the core's
// ActionContainer* actions).
type ContainerOp = imaged.Action

// Container image operations.
const (
	ContainerRead    = imaged.ActionContainerRead
	ContainerForget  = imaged.ActionContainerForget
	ContainerRestore = imaged.ActionContainerRestore
	ContainerPurge   = imaged.ActionContainerPurge
	ContainerUntag   = imaged.ActionContainerUntag
	ContainerModify  = imaged.ActionContainerModify
)

// ReadOnly reports whether id may only read: it has the reader role and
// neither member nor admin.
func ReadOnly(id *imaged.Identity) bool {
	return id != nil && id.HasRole(RoleReader) && !id.HasRole(RoleMember) && !id.HasRole(RoleAdmin)
}

// ContainerAccess decides what id may do with img: canSee (reads, and the
// difference between ENOTFOUND and EFORBIDDEN), canChange (the admin-only
// changes: modify, limits, aliases) and canOwnerOps (forget, restore,
// purge, untag). isAdmin is the Policy's IsAdmin(id). A nil identity may do
// nothing.
func ContainerAccess(id *imaged.Identity, isAdmin bool, img *imaged.ContainerImage) (canSee, canChange, canOwnerOps bool) {
	if id == nil || img == nil {
		return false, false, false
	}
	if isAdmin {
		return true, true, true
	}
	if _, customized := img.Labels[imaged.LabelCustomizedOwner]; customized {
		owner := img.CustomizedOwner()
		if owner == "" || id.UserID == "" || owner != id.UserID {
			return false, false, false
		}
		return true, false, !ReadOnly(id)
	}
	if img.Status != imaged.ContainerAlive {
		return false, false, false
	}
	switch img.Visibility {
	case imaged.VisibilityPublic, imaged.VisibilityCommunity:
		canSee = true
	case imaged.VisibilityPrivate, imaged.VisibilityShared:
		canSee = img.Owner != "" && img.Owner == id.ProjectID
	}
	return canSee, false, false
}

// ContainerCheck returns the error code of id performing op on img: ""
// when allowed, EUNAUTHORIZED without identity, ENOTFOUND when id cannot
// see img, EFORBIDDEN when it can see it but not do op.
func ContainerCheck(id *imaged.Identity, isAdmin bool, img *imaged.ContainerImage, op ContainerOp) string {
	if id == nil {
		return imaged.EUNAUTHORIZED
	}
	see, change, owner := ContainerAccess(id, isAdmin, img)
	switch {
	case !see:
		return imaged.ENOTFOUND
	case op == ContainerRead:
		return ""
	case imaged.ContainerOwnerAction(op) && owner:
		return ""
	case !imaged.ContainerOwnerAction(op) && change:
		return ""
	}
	return imaged.EFORBIDDEN
}

// ContainerAdmin returns the error code of id performing a catalog-wide
// container operation (registries, rescans, aliases listing changes, the
// audit log): "" for admins, EUNAUTHORIZED without identity, EFORBIDDEN
// otherwise.
func ContainerAdmin(id *imaged.Identity, isAdmin bool) string {
	switch {
	case id == nil:
		return imaged.EUNAUTHORIZED
	case !isAdmin:
		return imaged.EFORBIDDEN
	}
	return ""
}

// CheckContainer implements imaged.Policy with the rules above.
func (r *Rules) CheckContainer(id *imaged.Identity, action imaged.Action, img *imaged.ContainerImage) string {
	if img == nil {
		return ContainerAdmin(id, r.IsAdmin(id))
	}
	return ContainerCheck(id, r.IsAdmin(id), img, action)
}
