package policy

import (
	"testing"

	imaged "github.com/imaged/imaged"
)

// personas, in the column order of the expectation strings below. The image
// acted on is owned by projA and shared with projC.
var personas = []struct {
	name string
	id   imaged.Identity
}{
	{"admin", imaged.Identity{UserID: "adm", ProjectID: "admin", Roles: []string{"admin"}}},
	{"reader", imaged.Identity{UserID: "rita", ProjectID: "projA", Roles: []string{"reader"}}},
	{"member", imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}},
	{"other", imaged.Identity{UserID: "bob", ProjectID: "projB", Roles: []string{"member", "reader"}}},
	{"shared", imaged.Identity{UserID: "carol", ProjectID: "projC", Roles: []string{"member", "reader"}}},
	{"noproject", imaged.Identity{UserID: "nobody", Roles: []string{"member", "reader"}}},
}

var sharedImage = &imaged.Image{ID: "i1", Owner: "projA", Visibility: imaged.VisibilityShared}

// target builds the target the catalog builds for each action: the create
// target for add_image (own project, no visibility), the list target for
// get_images and the image target otherwise.
func target(id *imaged.Identity, action imaged.Action) imaged.PolicyTarget {
	switch action {
	case imaged.ActionAddImage:
		return CreateTarget(id, nil, "")
	case imaged.ActionGetImages:
		return ListTarget(id)
	}
	return ImageTarget(id, sharedImage)
}

// Expectations per action: one letter per persona (admin, reader, member,
// other, shared, noproject), Y = allowed. They restate Glance 25.1's
// defaults (glance/policies/*.py plus its legacy owner checks), as observed
// on a Glance 25.1 peer in each mode; see doc.go.
func TestAllowMatrix(t *testing.T) {
	t.Parallel()
	modes := []struct {
		rules *Rules
		want  map[imaged.Action]string
	}{
		{Secure(), map[imaged.Action]string{
			imaged.ActionAddImage:            "Y.YYYY",
			imaged.ActionGetImage:            "YYYYYY", // shared passes; visibility hides
			imaged.ActionGetImages:           "YYYYYY",
			imaged.ActionModifyImage:         "Y.Y...",
			imaged.ActionDeleteImage:         "Y.Y...",
			imaged.ActionUploadImage:         "Y.Y...",
			imaged.ActionDeactivate:          "Y.Y...",
			imaged.ActionReactivate:          "Y.Y...",
			imaged.ActionSetImageLocation:    "Y.Y...",
			imaged.ActionCommunitizeImage:    "Y.Y...",
			imaged.ActionPublicizeImage:      "Y.....",
			imaged.ActionDeleteImageLocation: "Y.....",
			imaged.ActionCopyImage:           "Y.....",
			imaged.ActionCacheList:           "Y.....",
			imaged.ActionCacheImage:          "Y.....",
			imaged.ActionCacheDelete:         "Y.....",
			imaged.ActionDownloadImage:       "Y.YYYY", // reader-only may not download
			imaged.ActionGetImageLocation:    "YYY...",
			imaged.ActionAddMember:           "Y.Y...",
			imaged.ActionDeleteMember:        "Y.Y...",
			imaged.ActionGetMember:           "YYYYYY",
			imaged.ActionGetMembers:          "YYYYYY",
			imaged.ActionModifyMember:        "Y..YYY", // the owner may not accept for others
		}},
		{Legacy(), map[imaged.Action]string{
			imaged.ActionAddImage:            "YYYYYY",
			imaged.ActionGetImage:            "YYYYYY",
			imaged.ActionGetImages:           "YYYYYY",
			imaged.ActionModifyImage:         "YYY...",
			imaged.ActionDeleteImage:         "YYY...",
			imaged.ActionUploadImage:         "YYY...",
			imaged.ActionDeactivate:          "YYY...",
			imaged.ActionReactivate:          "YYY...",
			imaged.ActionSetImageLocation:    "YYY...",
			imaged.ActionDeleteImageLocation: "YYY...",
			imaged.ActionCommunitizeImage:    "YYYYYY", // modify_image is checked too
			imaged.ActionPublicizeImage:      "Y.....",
			imaged.ActionCopyImage:           "Y.....",
			imaged.ActionCacheList:           "Y.....",
			imaged.ActionCacheImage:          "Y.....",
			imaged.ActionCacheDelete:         "Y.....",
			imaged.ActionDownloadImage:       "YYYYYY",
			imaged.ActionGetImageLocation:    "YYYYYY",
			imaged.ActionAddMember:           "YYY...",
			imaged.ActionDeleteMember:        "YYY...",
			imaged.ActionGetMember:           "YYYYYY",
			imaged.ActionGetMembers:          "YYYYYY",
			imaged.ActionModifyMember:        "Y..YYY",
		}},
	}
	for _, m := range modes {
		for action, want := range m.want {
			if len(want) != len(personas) {
				t.Fatalf("%s %s: expectation %q has %d columns", m.rules.Name(), action, want, len(want))
			}
			for i, p := range personas {
				id := p.id
				got := m.rules.Allow(&id, action, target(&id, action))
				if got != (want[i] == 'Y') {
					t.Errorf("%s: %s by %s = %v, want %v", m.rules.Name(), action, p.name, got, !got)
				}
			}
		}
	}
}

// TestEveryActionCovered makes sure a new Action constant gets a row above
// by checking that every known action is decided by at least one persona.
func TestEveryActionCovered(t *testing.T) {
	t.Parallel()
	admin := &imaged.Identity{ProjectID: "admin", Roles: []string{"admin"}}
	for _, a := range allActions {
		for _, r := range []*Rules{Secure(), Legacy()} {
			if !r.Allow(admin, a, ImageTarget(admin, sharedImage)) {
				t.Errorf("%s: admin denied %s", r.Name(), a)
			}
		}
	}
}

var allActions = []imaged.Action{
	imaged.ActionAddImage, imaged.ActionGetImage, imaged.ActionGetImages, imaged.ActionModifyImage,
	imaged.ActionPublicizeImage, imaged.ActionCommunitizeImage, imaged.ActionDeleteImage,
	imaged.ActionDeactivate, imaged.ActionReactivate, imaged.ActionDownloadImage, imaged.ActionUploadImage,
	imaged.ActionAddMember, imaged.ActionGetMember, imaged.ActionGetMembers, imaged.ActionModifyMember,
	imaged.ActionDeleteMember, imaged.ActionGetImageLocation, imaged.ActionSetImageLocation,
	imaged.ActionDeleteImageLocation, imaged.ActionCopyImage,
	imaged.ActionCacheList, imaged.ActionCacheImage, imaged.ActionCacheDelete,
}

func ptr(s string) *string { return &s }

// TestScenarios covers the situations the brief names, each checked against
// the Glance peer in both modes (status noted in the comment).
func TestScenarios(t *testing.T) {
	t.Parallel()
	member := &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}
	memberOnly := &imaged.Identity{UserID: "al2", ProjectID: "projA", Roles: []string{"member"}}
	reader := &imaged.Identity{UserID: "rita", ProjectID: "projA", Roles: []string{"reader"}}
	other := &imaged.Identity{UserID: "bob", ProjectID: "projB", Roles: []string{"member", "reader"}}
	sharedReader := &imaged.Identity{UserID: "cr", ProjectID: "projC", Roles: []string{"reader"}}
	admin := &imaged.Identity{UserID: "adm", ProjectID: "admin", Roles: []string{"ADMIN"}}
	noProject := &imaged.Identity{UserID: "nobody", Roles: []string{"member", "reader"}}
	public := &imaged.Image{Owner: "admin", Visibility: imaged.VisibilityPublic}
	community := &imaged.Image{Owner: "projA", Visibility: imaged.VisibilityCommunity}
	ownerless := &imaged.Image{Visibility: imaged.VisibilityShared}

	tests := []struct {
		name           string
		id             *imaged.Identity
		action         imaged.Action
		target         imaged.PolicyTarget
		secure, legacy bool
	}{
		// POST /v2/images by a reader: legacy 201, secure 403.
		{"reader creates", reader, imaged.ActionAddImage, CreateTarget(reader, nil, ""), false, true},
		// POST with owner of another project: 403 in both.
		{"member creates for projB", member, imaged.ActionAddImage, CreateTarget(member, ptr("projB"), ""), false, false},
		{"admin creates for projZ", admin, imaged.ActionAddImage, CreateTarget(admin, ptr("projZ"), ""), true, true},
		// POST with visibility public / PATCH to public by a member: 403 in both.
		{"member publicizes", member, imaged.ActionPublicizeImage, ImageTarget(member, sharedImage), false, false},
		{"member creates community", member, imaged.ActionCommunitizeImage, CreateTarget(member, nil, imaged.VisibilityCommunity), true, true},
		// Deactivate own image: 204 in both; by reader: legacy 204, secure 403.
		{"member deactivates own", member, imaged.ActionDeactivate, ImageTarget(member, sharedImage), true, true},
		{"reader deactivates", reader, imaged.ActionDeactivate, ImageTarget(reader, sharedImage), false, true},
		// Someone else's public or community image: 403 in both.
		{"other modifies public", other, imaged.ActionModifyImage, ImageTarget(other, public), false, false},
		{"other deletes public", other, imaged.ActionDeleteImage, ImageTarget(other, public), false, false},
		{"other deactivates community", other, imaged.ActionDeactivate, ImageTarget(other, community), false, false},
		{"admin deactivates other's", admin, imaged.ActionDeactivate, ImageTarget(admin, sharedImage), true, true},
		// member role without reader: GET is 404 in secure (get_image denied).
		{"member-only gets", memberOnly, imaged.ActionGetImage, ImageTarget(memberOnly, sharedImage), false, true},
		{"member-only lists", memberOnly, imaged.ActionGetImages, ListTarget(memberOnly), false, true},
		// Adding members: a reader of the owner: legacy 200, secure 403;
		// an image member: 403 in both.
		{"reader adds member", reader, imaged.ActionAddMember, ImageTarget(reader, sharedImage), false, true},
		{"shared member adds member", sharedReader, imaged.ActionAddMember, ImageTarget(sharedReader, sharedImage), false, false},
		// Member status: the owner may not set it (403 both); the member
		// project may (200), in secure only with the member role.
		{"owner sets member status", member, imaged.ActionModifyMember, ImageTarget(member, sharedImage), false, false},
		{"shared reader sets own status", sharedReader, imaged.ActionModifyMember, ImageTarget(sharedReader, sharedImage), false, true},
		{"shared reader downloads", sharedReader, imaged.ActionDownloadImage, ImageTarget(sharedReader, sharedImage), false, true},
		// Ownerless images are nobody's to change (403 both), but in secure
		// mode a caller without project passes project checks on them.
		{"noproject modifies ownerless", noProject, imaged.ActionModifyImage, ImageTarget(noProject, ownerless), false, false},
		{"noproject adds member to ownerless", noProject, imaged.ActionAddMember, ImageTarget(noProject, ownerless), true, false},
		{"noproject creates", noProject, imaged.ActionAddImage, CreateTarget(noProject, nil, ""), true, true},
		{"noproject creates community", noProject, imaged.ActionCommunitizeImage, CreateTarget(noProject, nil, imaged.VisibilityCommunity), true, true},
		{"nil identity", nil, imaged.ActionGetImage, ImageTarget(nil, public), false, false},
		{"unknown action", admin, imaged.Action("frobnicate"), ImageTarget(admin, public), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Secure().Allow(tc.id, tc.action, tc.target); got != tc.secure {
				t.Errorf("secure: got %v, want %v", got, tc.secure)
			}
			if got := Legacy().Allow(tc.id, tc.action, tc.target); got != tc.legacy {
				t.Errorf("legacy: got %v, want %v", got, tc.legacy)
			}
		})
	}
}

func TestIsAdmin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   *imaged.Identity
		want bool
	}{
		{&imaged.Identity{Roles: []string{"Admin"}}, true},
		{&imaged.Identity{ProjectID: "admin", Roles: []string{"member", "reader"}}, false},
		{nil, false},
	}
	for _, tc := range tests {
		for _, r := range []*Rules{Secure(), Legacy()} {
			if got := r.IsAdmin(tc.id); got != tc.want {
				t.Errorf("%s IsAdmin(%+v) = %v", r.Name(), tc.id, got)
			}
		}
	}
}

func TestByName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"secure", "legacy", " Secure "} {
		r, err := ByName(name)
		if err != nil {
			t.Fatalf("ByName(%q): %v", name, err)
		}
		var p imaged.Policy = r
		_ = p
	}
	if r, _ := ByName("legacy"); r.Name() != ModeLegacy {
		t.Errorf("legacy name = %q", r.Name())
	}
	_, err := ByName("open")
	if imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("ByName(open) = %v, want EINVALID", err)
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	owner := &imaged.Identity{ProjectID: "projA"}
	carol := &imaged.Identity{ProjectID: "projC"}
	private := &imaged.Image{Owner: "projA", Visibility: imaged.VisibilityPrivate}
	tests := []struct {
		name string
		got  imaged.PolicyTarget
		want imaged.PolicyTarget
	}{
		{"owner of shared", ImageTarget(owner, sharedImage), imaged.PolicyTarget{Owner: "projA", Visibility: "shared"}},
		{"member of shared", ImageTarget(carol, sharedImage), imaged.PolicyTarget{Owner: "projA", Visibility: "shared", MemberID: "projC"}},
		{"non-owner of private", ImageTarget(carol, private), imaged.PolicyTarget{Owner: "projA", Visibility: "private"}},
		{"create default", CreateTarget(carol, nil, ""), imaged.PolicyTarget{Owner: "projC", Visibility: "private"}},
		{"create owner", CreateTarget(carol, ptr("projX"), "public"), imaged.PolicyTarget{Owner: "projX", Visibility: "public"}},
		{"list", ListTarget(carol), imaged.PolicyTarget{Owner: "projC", Visibility: "private"}},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	for v, want := range map[imaged.Visibility]imaged.Action{
		"public": imaged.ActionPublicizeImage, "community": imaged.ActionCommunitizeImage, "shared": "", "private": "",
	} {
		if got := VisibilityAction(v); got != want {
			t.Errorf("VisibilityAction(%s) = %q, want %q", v, got, want)
		}
	}
}
