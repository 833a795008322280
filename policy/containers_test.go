package policy

import (
	"testing"

	imaged "github.com/imaged/imaged"
)

func TestContainerCheck(t *testing.T) {
	t.Parallel()
	ids := []struct {
		name  string
		id    *imaged.Identity
		admin bool
	}{
		{"admin", &imaged.Identity{UserID: "adm", ProjectID: "admin", Roles: []string{"admin"}}, true},
		{"owner", &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}, false},
		{"other", &imaged.Identity{UserID: "bob", ProjectID: "projB", Roles: []string{"member", "reader"}}, false},
		{"reader", &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"reader"}}, false},
		{"legacy", &imaged.Identity{UserID: "alice", ProjectID: "projA"}, false},
		{"nobody", nil, false},
	}
	custom := map[string]string{imaged.LabelCustomizedOwner: "user:alice"}
	images := map[string]*imaged.ContainerImage{
		"public":      {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic},
		"community":   {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityCommunity},
		"privateA":    {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPrivate, Owner: "projA"},
		"sharedA":     {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityShared, Owner: "projA"},
		"privateNone": {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPrivate},
		"forgotten":   {Status: imaged.ContainerForgotten, Visibility: imaged.VisibilityPublic},
		"custom":      {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic, Labels: custom},
		"customGone":  {Status: imaged.ContainerForgotten, Visibility: imaged.VisibilityPublic, Labels: custom},
		"malformed":   {Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic, Labels: map[string]string{imaged.LabelCustomizedOwner: "alice"}},
	}
	// Expected codes per (image, op) for each identity in ids' order:
	// "." allowed, N not found, F forbidden, U unauthorized.
	cases := []struct {
		image string
		op    ContainerOp
		want  string // admin owner other reader legacy nobody
	}{
		{"public", ContainerRead, ".....U"},
		{"public", ContainerForget, ".FFFFU"},
		{"public", ContainerPurge, ".FFFFU"},
		{"public", ContainerModify, ".FFFFU"},
		{"community", ContainerRead, ".....U"},
		{"privateA", ContainerRead, "..N..U"},
		{"privateA", ContainerModify, ".FNFFU"},
		{"sharedA", ContainerRead, "..N..U"},
		{"privateNone", ContainerRead, ".NNNNU"},
		{"forgotten", ContainerRead, ".NNNNU"},
		{"forgotten", ContainerRestore, ".NNNNU"},
		{"custom", ContainerRead, "..N..U"},
		{"custom", ContainerForget, "..NF.U"},
		{"custom", ContainerRestore, "..NF.U"},
		{"custom", ContainerPurge, "..NF.U"},
		{"custom", ContainerUntag, "..NF.U"},
		{"custom", ContainerModify, ".FNFFU"},
		{"customGone", ContainerRead, "..N..U"},
		{"customGone", ContainerRestore, "..NF.U"},
		{"malformed", ContainerRead, ".NNNNU"},
		{"malformed", ContainerForget, ".NNNNU"},
	}
	codes := map[byte]string{'.': "", 'N': imaged.ENOTFOUND, 'F': imaged.EFORBIDDEN, 'U': imaged.EUNAUTHORIZED}
	for _, c := range cases {
		for i, p := range ids {
			want := codes[c.want[i]]
			if got := ContainerCheck(p.id, p.admin, images[c.image], c.op); got != want {
				t.Errorf("%s %s by %s: got %q, want %q", c.op, c.image, p.name, got, want)
			}
		}
	}
}

func TestContainerAccessNil(t *testing.T) {
	t.Parallel()
	img := &imaged.ContainerImage{Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic}
	if a, b, c := ContainerAccess(nil, true, img); a || b || c {
		t.Fatal("a nil identity must get nothing, even flagged admin")
	}
	if a, b, c := ContainerAccess(&imaged.Identity{UserID: "u"}, false, nil); a || b || c {
		t.Fatal("a nil image must give nothing")
	}
}

func TestContainerAdmin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id    *imaged.Identity
		admin bool
		want  string
	}{
		{nil, false, imaged.EUNAUTHORIZED},
		{&imaged.Identity{UserID: "u"}, false, imaged.EFORBIDDEN},
		{&imaged.Identity{UserID: "a", Roles: []string{"admin"}}, true, ""},
	} {
		if got := ContainerAdmin(c.id, c.admin); got != c.want {
			t.Errorf("ContainerAdmin(%v, %v) = %q, want %q", c.id, c.admin, got, c.want)
		}
	}
}
