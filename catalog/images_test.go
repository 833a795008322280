package catalog_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// personas lists every persona with the code each mode gives it for an
// operation on a shared image of projA ("" = allowed).
type personaWant struct {
	who            *imaged.Identity
	legacy, secure string
}

func TestVisibilityGetImage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		shared := e.sharedImage(nil)
		private := e.create(owner, map[string]any{"visibility": "private"})
		community := e.create(owner, map[string]any{"visibility": "community"})
		public := e.create(admin, map[string]any{"visibility": "public", "owner": "projA"})
		tests := []struct {
			img  *imaged.Image
			who  *imaged.Identity
			code string
		}{
			{shared, admin, ""}, {shared, owner, ""}, {shared, ownerRead, ""}, {shared, other, imaged.ENOTFOUND},
			{shared, pending, ""}, {shared, accepted, ""}, {shared, rejected, ""},
			{private, owner, ""}, {private, pending, imaged.ENOTFOUND}, {private, admin, ""},
			{community, other, ""}, {public, other, ""},
		}
		for i, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d-%s", mode, i, tt.who.UserID), func(t *testing.T) {
				_, err := e.svc.GetImage(as(tt.who), tt.img.ID)
				msg := ""
				if tt.code != "" {
					msg = "No image found with ID " + tt.img.ID
				}
				wantErr(t, err, tt.code, msg)
			})
		}
		// A caller without reader role is refused by get_image in secure
		// mode (a 404), allowed in legacy mode.
		noRole := &imaged.Identity{UserID: "n", ProjectID: "projA", Roles: []string{"foo"}}
		_, err := e.svc.GetImage(as(noRole), shared.ID)
		if mode == "secure" {
			wantErr(t, err, imaged.ENOTFOUND, "The resource could not be found.")
		} else {
			wantErr(t, err, "", "")
		}
	}
}

func TestDeleteImage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		for _, pw := range []personaWant{
			{admin, "", ""}, {owner, "", ""}, {ownerRead, "", imaged.EFORBIDDEN},
			{other, imaged.ENOTFOUND, imaged.ENOTFOUND}, {pending, imaged.EFORBIDDEN, imaged.EFORBIDDEN},
			{accepted, imaged.EFORBIDDEN, imaged.EFORBIDDEN}, {rejected, imaged.EFORBIDDEN, imaged.EFORBIDDEN},
		} {
			t.Run(mode+"/"+pw.who.UserID, func(t *testing.T) {
				img := e.sharedImage(nil)
				code := pw.legacy
				msg := map[string]string{imaged.EFORBIDDEN: "You do not own this image", imaged.ENOTFOUND: "Failed to find image " + img.ID + " to delete"}[code]
				if mode == "secure" {
					code = pw.secure
					msg = map[string]string{imaged.EFORBIDDEN: "You are not authorized to complete delete_image action.", imaged.ENOTFOUND: "Failed to find image " + img.ID + " to delete"}[code]
				}
				err := e.svc.DeleteImage(as(pw.who), img.ID)
				wantErr(t, err, code, msg)
				_, gerr := e.svc.GetImage(as(admin), img.ID)
				if (err == nil) != (imaged.ErrorCode(gerr) == imaged.ENOTFOUND) {
					t.Fatalf("delete err %v, get after: %v", err, gerr)
				}
			})
		}
		t.Run(mode+"/protected", func(t *testing.T) {
			img := e.create(owner, map[string]any{"protected": true})
			wantErr(t, e.svc.DeleteImage(as(owner), img.ID), imaged.EFORBIDDEN, "Image "+img.ID+" is protected and cannot be deleted.")
			wantErr(t, e.svc.DeleteImage(as(admin), img.ID), imaged.EFORBIDDEN, "")
			if _, err := e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("replace", "/protected", false)}); err != nil {
				t.Fatal(err)
			}
			wantErr(t, e.svc.DeleteImage(as(owner), img.ID), "", "")
			wantErr(t, e.svc.DeleteImage(as(owner), img.ID), imaged.ENOTFOUND, "Failed to find image "+img.ID+" to delete")
			_, err := e.svc.GetImage(as(owner), img.ID)
			wantErr(t, err, imaged.ENOTFOUND, "No image found with ID "+img.ID)
		})
		t.Run(mode+"/any status", func(t *testing.T) {
			for _, st := range []imaged.ImageStatus{imaged.StatusActive, imaged.StatusDeactivated, imaged.StatusKilled, imaged.StatusSaving} {
				img := e.create(owner, map[string]any{})
				e.setStatus(img.ID, st)
				wantErr(t, e.svc.DeleteImage(as(owner), img.ID), "", "")
			}
		})
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		img := e.sharedImage(nil)
		ctx := as(owner)
		wantErr(t, e.svc.AddTag(ctx, img.ID, "b"), "", "")
		wantErr(t, e.svc.AddTag(ctx, img.ID, "a"), "", "")
		wantErr(t, e.svc.AddTag(ctx, img.ID, "a"), "", "") // idempotent
		got, _ := e.svc.GetImage(ctx, img.ID)
		if strings.Join(got.Tags, ",") != "a,b" {
			t.Fatalf("%s: tags %v", mode, got.Tags)
		}
		wantErr(t, e.svc.DeleteTag(ctx, img.ID, "a"), "", "")
		wantErr(t, e.svc.DeleteTag(ctx, img.ID, "a"), imaged.ENOTFOUND, "The resource could not be found.")
		wantErr(t, e.svc.AddTag(ctx, img.ID, strings.Repeat("t", 256)), imaged.EINVALID, "")
		wantErr(t, e.svc.AddTag(as(other), img.ID, "x"), imaged.ENOTFOUND, "Image "+img.ID+" not found.")
		wantErr(t, e.svc.DeleteTag(as(other), img.ID, "b"), imaged.ENOTFOUND, "Image "+img.ID+" not found.")
		wantMember := "Not allowed to update tags for image " + img.ID + "."
		wantDel := "Not allowed to delete tags for image " + img.ID + "."
		if mode == "secure" {
			wantMember = "You are not authorized to complete modify_image action."
			wantDel = wantMember
		}
		wantErr(t, e.svc.AddTag(as(accepted), img.ID, "x"), imaged.EFORBIDDEN, wantMember)
		wantErr(t, e.svc.DeleteTag(as(pending), img.ID, "b"), imaged.EFORBIDDEN, wantDel)
		if mode == "secure" {
			wantErr(t, e.svc.AddTag(as(ownerRead), img.ID, "x"), imaged.EFORBIDDEN, wantMember)
		} else {
			wantErr(t, e.svc.AddTag(as(ownerRead), img.ID, "x"), "", "")
		}
		wantErr(t, e.svc.AddTag(as(admin), img.ID, "adm"), "", "")

		// Quota: adding a new tag past it fails, re-adding one does not.
		tags := make([]any, 128)
		for i := range tags {
			tags[i] = fmt.Sprintf("t%d", i)
		}
		full := e.create(owner, map[string]any{"tags": tags})
		wantErr(t, e.svc.AddTag(ctx, full.ID, "t1"), "", "")
		wantErr(t, e.svc.AddTag(ctx, full.ID, "new"), imaged.ETOOLARGE, "Image tag limit exceeded for image "+full.ID+": The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128:")
	}
}

func TestDeactivateReactivate(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		img := e.sharedImage(nil)
		// Only active and deactivated images qualify.
		wantErr(t, e.svc.DeactivateImage(as(owner), img.ID), imaged.EFORBIDDEN, "Not allowed to deactivate image in status 'queued'")
		wantErr(t, e.svc.ReactivateImage(as(owner), img.ID), imaged.EFORBIDDEN, "Not allowed to reactivate image in status 'queued'")
		e.setStatus(img.ID, imaged.StatusActive)
		for _, step := range []struct {
			who    *imaged.Identity
			deact  bool
			code   string
			status imaged.ImageStatus
		}{
			{owner, true, "", imaged.StatusDeactivated},
			{owner, true, "", imaged.StatusDeactivated}, // idempotent
			{other, false, imaged.ENOTFOUND, imaged.StatusDeactivated},
			{accepted, false, imaged.EFORBIDDEN, imaged.StatusDeactivated},
			{owner, false, "", imaged.StatusActive},
			{owner, false, "", imaged.StatusActive},
			{admin, true, "", imaged.StatusDeactivated},
			{admin, false, "", imaged.StatusActive},
		} {
			var err error
			if step.deact {
				err = e.svc.DeactivateImage(as(step.who), img.ID)
			} else {
				err = e.svc.ReactivateImage(as(step.who), img.ID)
			}
			wantErr(t, err, step.code, "")
			got, _ := e.store.GetImage(t.Context(), img.ID)
			if got.Status != step.status {
				t.Fatalf("%s: %s deact=%v: status %s, want %s", mode, step.who.UserID, step.deact, got.Status, step.status)
			}
		}
		msg := "You do not own this image"
		if mode == "secure" {
			msg = "You are not authorized to complete deactivate action."
		}
		wantErr(t, e.svc.DeactivateImage(as(pending), img.ID), imaged.EFORBIDDEN, msg)
		if mode == "secure" {
			wantErr(t, e.svc.DeactivateImage(as(ownerRead), img.ID), imaged.EFORBIDDEN, msg)
		}
	}
}
