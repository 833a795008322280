package metadefs_test

import (
	"context"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/metadefs"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

func as(id *imaged.Identity) context.Context {
	return imaged.NewContextWithIdentity(context.Background(), id)
}

// TestPolicyModes: Glance's legacy defaults open metadef reads to any role
// (visibility still applies); its secure ones need reader. Changes are
// admin-only in both.
func TestPolicyModes(t *testing.T) {
	t.Parallel()
	store, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	admin := as(&imaged.Identity{ProjectID: "admin", Roles: []string{"admin"}})
	member := as(&imaged.Identity{ProjectID: "pa", Roles: []string{"member"}})
	other := as(&imaged.Identity{ProjectID: "pb", Roles: []string{"member", "reader"}})
	setup := metadefs.New(store, policy.Secure(), nil)
	for _, in := range []*imaged.MetadefNamespaceInput{
		{Namespace: imaged.MetadefNamespace{Namespace: "pub", Visibility: imaged.VisibilityPublic}, Tags: []*imaged.MetadefTag{{Name: "t"}}},
		{Namespace: imaged.MetadefNamespace{Namespace: "priv", Owner: "pa"}},
	} {
		if _, err := setup.CreateNamespace(admin, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		rules *policy.Rules
		ctx   context.Context
		ns    string
		code  string
	}{
		{policy.Legacy(), member, "pub", ""},
		{policy.Legacy(), member, "priv", ""},
		{policy.Legacy(), other, "priv", imaged.ENOTFOUND},
		{policy.Secure(), member, "pub", imaged.ENOTFOUND},
		{policy.Secure(), other, "pub", ""},
		{policy.Secure(), other, "priv", imaged.ENOTFOUND},
	} {
		svc := metadefs.New(store, tc.rules, nil)
		_, err := svc.GetNamespace(tc.ctx, tc.ns, "")
		if imaged.ErrorCode(err) != tc.code {
			t.Errorf("%s get %s: %v, want %q", tc.rules.Name(), tc.ns, err, tc.code)
		}
		if _, err := svc.ListTags(tc.ctx, tc.ns); imaged.ErrorCode(err) != tc.code {
			t.Errorf("%s tags of %s: %v, want %q", tc.rules.Name(), tc.ns, err, tc.code)
		}
	}
	legacy := metadefs.New(store, policy.Legacy(), nil)
	if _, err := legacy.CreateTag(member, "priv", "x"); imaged.ErrorCode(err) != imaged.EFORBIDDEN {
		t.Errorf("legacy member adds a tag: %v", err)
	}
	list, err := legacy.ListNamespaces(member, imaged.MetadefNamespaceQuery{SortKey: "namespace"})
	if err != nil || len(list) != 2 {
		t.Errorf("legacy member lists: %v %v", list, err)
	}
	list, err = legacy.ListNamespaces(other, imaged.MetadefNamespaceQuery{SortKey: "namespace"})
	if err != nil || len(list) != 1 || list[0].Namespace != "pub" {
		t.Errorf("other project lists: %v %v", list, err)
	}
}
