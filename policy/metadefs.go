package policy

import imaged "github.com/imaged/imaged"

// Glance 25.1's metadef rules (glance/policies/metadef.py):
//
//   - every change is "rule:metadef_admin" = "role:admin", in both modes
//     (these rules have no deprecated open alternative);
//   - get_metadef_namespaces is ADMIN_OR_PROJECT_READER, checked against
//     the caller's own project;
//   - every other read is ADMIN_OR_PROJECT_READER_GET_NAMESPACE:
//     "role:admin or (role:reader and (project_id:%(project_id)s or
//     'public':%(visibility)s))", the target being the namespace's owner
//     and visibility;
//   - in legacy mode (enforce_new_defaults false) the reads' deprecated
//     alternative "rule:metadef_default" (empty: anyone) makes them open;
//     the database's visibility filter still hides other projects'
//     private namespaces.

// metadefWrite reports whether a is a metadef change (admin only).
func metadefWrite(a imaged.Action) bool {
	switch a {
	case imaged.ActionModifyMetadefNamespace, imaged.ActionAddMetadefNamespace, imaged.ActionDeleteMetadefNamespace,
		imaged.ActionModifyMetadefObject, imaged.ActionAddMetadefObject, imaged.ActionDeleteMetadefObject,
		imaged.ActionAddMetadefRTAssociation, imaged.ActionDelMetadefRTAssociation,
		imaged.ActionModifyMetadefProperty, imaged.ActionAddMetadefProperty, imaged.ActionRemoveMetadefProperty,
		imaged.ActionModifyMetadefTag, imaged.ActionAddMetadefTag, imaged.ActionAddMetadefTags,
		imaged.ActionDeleteMetadefTag, imaged.ActionDeleteMetadefTags:
		return true
	}
	return false
}

// metadefRead reports whether a is a metadef read.
func metadefRead(a imaged.Action) bool {
	switch a {
	case imaged.ActionGetMetadefNamespace, imaged.ActionGetMetadefNamespaces,
		imaged.ActionGetMetadefObject, imaged.ActionGetMetadefObjects,
		imaged.ActionListMetadefResourceType, imaged.ActionGetMetadefResourceType,
		imaged.ActionGetMetadefProperty, imaged.ActionGetMetadefProperties,
		imaged.ActionGetMetadefTag, imaged.ActionGetMetadefTags:
		return true
	}
	return false
}

// IsMetadefAction reports whether a is one of Glance's metadef policies.
func IsMetadefAction(a imaged.Action) bool { return metadefWrite(a) || metadefRead(a) }

// AllowMetadef decides a metadef action. The target is the namespace's
// owner and visibility (for get_metadef_namespaces and the creation of a
// namespace: the caller's project, visibility ""). A nil identity and a
// non-metadef action are denied.
func (r *Rules) AllowMetadef(id *imaged.Identity, action imaged.Action, t imaged.PolicyTarget) bool {
	if id == nil {
		return false
	}
	switch {
	case metadefWrite(action):
		return r.IsAdmin(id)
	case !metadefRead(action):
		return false
	case !r.secure || r.IsAdmin(id):
		return true
	case !id.HasRole(RoleReader):
		return false
	case action == imaged.ActionGetMetadefNamespaces:
		return projectIs(id, t.Owner)
	}
	return projectIs(id, t.Owner) || t.Visibility == imaged.VisibilityPublic
}
