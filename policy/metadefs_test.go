package policy_test

import (
	"testing"

	imaged "github.com/imaged/imaged"
	"github.com/imaged/imaged/policy"
)

func TestAllowMetadef(t *testing.T) {
	t.Parallel()
	admin := &imaged.Identity{ProjectID: "admin", Roles: []string{"admin"}}
	reader := &imaged.Identity{ProjectID: "pa", Roles: []string{"reader"}}
	member := &imaged.Identity{ProjectID: "pa", Roles: []string{"member"}}
	pub := imaged.PolicyTarget{Owner: "pb", Visibility: imaged.VisibilityPublic}
	own := imaged.PolicyTarget{Owner: "pa", Visibility: imaged.VisibilityPrivate}
	other := imaged.PolicyTarget{Owner: "pb", Visibility: imaged.VisibilityPrivate}
	self := imaged.PolicyTarget{Owner: "pa"}
	for _, tc := range []struct {
		rules  *policy.Rules
		id     *imaged.Identity
		action imaged.Action
		t      imaged.PolicyTarget
		want   bool
	}{
		{policy.Secure(), admin, imaged.ActionAddMetadefNamespace, self, true},
		{policy.Secure(), reader, imaged.ActionAddMetadefNamespace, self, false},
		{policy.Legacy(), member, imaged.ActionDeleteMetadefTags, own, false},
		{policy.Legacy(), admin, imaged.ActionModifyMetadefProperty, other, true},
		{policy.Secure(), reader, imaged.ActionGetMetadefNamespace, pub, true},
		{policy.Secure(), reader, imaged.ActionGetMetadefNamespace, own, true},
		{policy.Secure(), reader, imaged.ActionGetMetadefObject, other, false},
		{policy.Secure(), member, imaged.ActionGetMetadefNamespace, pub, false},
		{policy.Secure(), reader, imaged.ActionGetMetadefNamespaces, self, true},
		{policy.Secure(), reader, imaged.ActionGetMetadefNamespaces, imaged.PolicyTarget{Owner: "pb", Visibility: imaged.VisibilityPublic}, false},
		{policy.Secure(), member, imaged.ActionListMetadefResourceType, self, false},
		{policy.Legacy(), member, imaged.ActionGetMetadefNamespace, other, true},
		{policy.Legacy(), member, imaged.ActionGetMetadefTags, pub, true},
		{policy.Secure(), nil, imaged.ActionGetMetadefNamespace, pub, false},
		{policy.Secure(), admin, imaged.ActionGetImage, pub, false}, // not a metadef action
	} {
		if got := tc.rules.AllowMetadef(tc.id, tc.action, tc.t); got != tc.want {
			t.Errorf("%s %v %s %+v = %v, want %v", tc.rules.Name(), tc.id, tc.action, tc.t, got, tc.want)
		}
	}
	if !policy.IsMetadefAction(imaged.ActionAddMetadefTags) || policy.IsMetadefAction(imaged.ActionAddImage) {
		t.Error("IsMetadefAction")
	}
}
