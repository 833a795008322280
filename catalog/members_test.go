package catalog_test

import (
	"fmt"
	"testing"

	"github.com/imaged/imaged"
)

func memberIDs(ms []*imaged.Member) string {
	s := ""
	for _, m := range ms {
		s += m.MemberID + ":" + string(m.Status) + " "
	}
	return s
}

func TestMembers(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		img := e.sharedImage(nil)
		secure := mode == "secure"
		pick := func(legacy, sec string) string {
			if secure {
				return sec
			}
			return legacy
		}

		t.Run(mode+"/list", func(t *testing.T) {
			for _, tt := range []struct {
				who  *imaged.Identity
				want string
				code string
			}{
				{owner, "projP:pending projAcc:accepted projR:rejected ", ""},
				{ownerRead, "projP:pending projAcc:accepted projR:rejected ", ""},
				{admin, "projP:pending projAcc:accepted projR:rejected ", ""},
				{pending, "projP:pending ", ""},
				{accepted, "projAcc:accepted ", ""},
				{rejected, "projR:rejected ", ""},
				{other, "", imaged.ENOTFOUND},
			} {
				ms, err := e.svc.ListMembers(as(tt.who), img.ID)
				wantErr(t, err, tt.code, "")
				if err == nil && memberIDs(ms) != tt.want {
					t.Errorf("%s: got %q, want %q", tt.who.UserID, memberIDs(ms), tt.want)
				}
			}
		})

		t.Run(mode+"/get", func(t *testing.T) {
			m, err := e.svc.GetMember(as(owner), img.ID, accepted.ProjectID)
			wantErr(t, err, "", "")
			if m.Status != imaged.MemberAccepted {
				t.Errorf("status %s", m.Status)
			}
			_, err = e.svc.GetMember(as(pending), img.ID, pending.ProjectID)
			wantErr(t, err, "", "")
			_, err = e.svc.GetMember(as(pending), img.ID, accepted.ProjectID)
			wantErr(t, err, imaged.ENOTFOUND, "projAcc not found in the member list of the image "+img.ID+".")
			_, err = e.svc.GetMember(as(owner), img.ID, "projX")
			wantErr(t, err, imaged.ENOTFOUND, "projX not found in the member list of the image "+img.ID+".")
			_, err = e.svc.GetMember(as(other), img.ID, accepted.ProjectID)
			wantErr(t, err, imaged.ENOTFOUND, "Image "+img.ID+" not found.")
		})

		t.Run(mode+"/add", func(t *testing.T) {
			_, err := e.svc.AddMember(as(owner), img.ID, accepted.ProjectID)
			wantErr(t, err, imaged.ECONFLICT, "Member projAcc is duplicated for image "+img.ID)
			_, err = e.svc.AddMember(as(accepted), img.ID, "projZ")
			wantErr(t, err, imaged.EFORBIDDEN, pick("Not allowed to create members for image "+img.ID+".", "You are not authorized to complete add_member action."))
			_, err = e.svc.AddMember(as(other), img.ID, "projZ")
			wantErr(t, err, imaged.ENOTFOUND, "Image "+img.ID+" not found.")
			_, err = e.svc.AddMember(as(ownerRead), img.ID, "projZ")
			wantErr(t, err, pick("", imaged.EFORBIDDEN), "")
			m, err := e.svc.AddMember(as(admin), img.ID, "projY")
			wantErr(t, err, "", "")
			if m.Status != imaged.MemberPending || m.CreatedAt.IsZero() {
				t.Errorf("member %+v", m)
			}
			// The new member project now sees the image, even pending.
			_, err = e.svc.GetImage(as(&imaged.Identity{ProjectID: "projY", Roles: []string{"reader"}}), img.ID)
			wantErr(t, err, "", "")
		})

		t.Run(mode+"/update", func(t *testing.T) {
			m, err := e.svc.UpdateMember(as(pending), img.ID, pending.ProjectID, imaged.MemberAccepted)
			wantErr(t, err, "", "")
			if m.Status != imaged.MemberAccepted {
				t.Errorf("status %s", m.Status)
			}
			_, err = e.svc.UpdateMember(as(pending), img.ID, pending.ProjectID, "bogus")
			wantErr(t, err, imaged.EINVALID, `Incorrect request: Status must be "pending", "accepted" or "rejected".`)
			_, err = e.svc.UpdateMember(as(owner), img.ID, pending.ProjectID, imaged.MemberRejected)
			wantErr(t, err, imaged.EFORBIDDEN, pick("Not allowed to update members for image "+img.ID+".", "You are not authorized to complete modify_member action."))
			_, err = e.svc.UpdateMember(as(accepted), img.ID, pending.ProjectID, imaged.MemberRejected)
			wantErr(t, err, imaged.ENOTFOUND, "projP not found in the member list of the image "+img.ID+".")
			_, err = e.svc.UpdateMember(as(admin), img.ID, pending.ProjectID, imaged.MemberPending)
			wantErr(t, err, "", "")
		})

		t.Run(mode+"/delete", func(t *testing.T) {
			err := e.svc.DeleteMember(as(accepted), img.ID, accepted.ProjectID)
			wantErr(t, err, imaged.EFORBIDDEN, pick("Not allowed to delete members for image "+img.ID+".", "You are not authorized to complete delete_member action."))
			wantErr(t, e.svc.DeleteMember(as(owner), img.ID, "projX"), imaged.ENOTFOUND, "projX not found in the member list of the image "+img.ID+".")
			wantErr(t, e.svc.DeleteMember(as(owner), img.ID, rejected.ProjectID), "", "")
			_, err = e.svc.GetImage(as(rejected), img.ID)
			wantErr(t, err, imaged.ENOTFOUND, "")
			wantErr(t, e.svc.DeleteMember(as(admin), img.ID, "projY"), "", "")
		})

		t.Run(mode+"/not shared", func(t *testing.T) {
			priv := e.create(owner, map[string]any{"visibility": "private"})
			_, err := e.svc.AddMember(as(owner), priv.ID, "projB")
			wantErr(t, err, imaged.EFORBIDDEN, "Not allowed to create members for image "+priv.ID+".")
			_, err = e.svc.ListMembers(as(owner), priv.ID)
			wantErr(t, err, imaged.EFORBIDDEN, "Not allowed to list members for image "+priv.ID+": Only shared images have members.")
			_, err = e.svc.GetMember(as(owner), priv.ID, "projB")
			wantErr(t, err, imaged.ENOTFOUND, "Only shared images have members.")
			// Members of an image that turns private lose sight of it.
			if _, err := e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("replace", "/visibility", "private")}); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.GetImage(as(accepted), img.ID)
			wantErr(t, err, imaged.ENOTFOUND, "")
		})
	}
}

func TestMemberQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "legacy")
	img := e.create(owner, map[string]any{})
	for i := 0; i < 128; i++ {
		if _, err := e.svc.AddMember(as(owner), img.ID, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.svc.AddMember(as(owner), img.ID, "toomany")
	wantErr(t, err, imaged.ETOOLARGE, "Image member limit exceeded for image "+img.ID+": The limit has been exceeded on the number of allowed image members for this image. Attempted: 129, Maximum: 128:")
}
