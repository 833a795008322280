package imaged

// Action names an operation that policy rules govern. The names are Glance's
// policy names, so that operators recognise them.
type Action string

// Image actions (Glance's policy names).
const (
	ActionAddImage         Action = "add_image"
	ActionGetImage         Action = "get_image"
	ActionGetImages        Action = "get_images"
	ActionModifyImage      Action = "modify_image"
	ActionPublicizeImage   Action = "publicize_image"
	ActionCommunitizeImage Action = "communitize_image"
	ActionDeleteImage      Action = "delete_image"
	ActionDeactivate       Action = "deactivate"
	ActionReactivate       Action = "reactivate"
	ActionDownloadImage    Action = "download_image"
	ActionUploadImage      Action = "upload_image"
	ActionAddMember        Action = "add_member"
	ActionGetMember        Action = "get_member"
	ActionGetMembers       Action = "get_members"
	ActionModifyMember     Action = "modify_member"
	ActionDeleteMember     Action = "delete_member"
)

// PolicyTarget is what an action applies to, as far as rules need to know.
type PolicyTarget struct {
	Owner      string     // the image's owner project ("" = none)
	Visibility Visibility // the image's visibility
	// MemberID is the project of the member an action concerns (member
	// actions), or the caller's project when the caller is a member of
	// the image (so that rules like "project_id:%(member_id)s" match).
	MemberID string
	// IsMember says the caller's project is a member of the image (any
	// status); rules for shared images use it.
	IsMember bool
}

// Policy decides who may do what. Implementations (policy package) are pure:
// no I/O, so the catalog can call them freely.
type Policy interface {
	// Allow reports whether id may perform action on target.
	Allow(id *Identity, action Action, target PolicyTarget) bool
	// IsAdmin reports whether id has administrative powers (sees every
	// image, may set any owner).
	IsAdmin(id *Identity) bool
	// CheckContainer returns the error code of id performing action (one
	// of the ActionContainer*) on a container image: "" when allowed,
	// EUNAUTHORIZED without identity, ENOTFOUND when id may not see img,
	// EFORBIDDEN when it may see it but not do action. img nil asks about
	// a catalog-wide operation (registries, rescans, the audit log).
	CheckContainer(id *Identity, action Action, img *ContainerImage) string
}

// Container image operations, as the access rules tell them apart (the
// values are the words error messages use).
const (
	ActionContainerRead    Action = "read"
	ActionContainerForget  Action = "forget"
	ActionContainerRestore Action = "restore"
	ActionContainerPurge   Action = "purge"
	ActionContainerUntag   Action = "untag"
	ActionContainerModify  Action = "modify" // also resource limits and aliases
)

// ContainerOwnerAction reports whether the owner of a customized image may
// perform a on it.
func ContainerOwnerAction(a Action) bool {
	switch a {
	case ActionContainerForget, ActionContainerRestore, ActionContainerPurge, ActionContainerUntag:
		return true
	}
	return false
}

// Further Glance image policies, used by the locations and import surfaces.
const (
	ActionGetImageLocation    Action = "get_image_location"
	ActionSetImageLocation    Action = "set_image_location"
	ActionDeleteImageLocation Action = "delete_image_location"
	ActionCopyImage           Action = "copy_image"
)
