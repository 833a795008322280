package catalog_test

import (
	"testing"

	"github.com/imaged/imaged"
)

func ids(imgs []*imaged.Image) map[string]bool {
	m := map[string]bool{}
	for _, i := range imgs {
		m[i.ID] = true
	}
	return m
}

func TestListImages(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		shared := e.sharedImage(nil)
		private := e.create(owner, map[string]any{"visibility": "private"})
		public := e.create(admin, map[string]any{"visibility": "public"})
		community := e.create(other, map[string]any{"visibility": "community"})
		otherPriv := e.create(other, map[string]any{"visibility": "private"})

		t.Run(mode+"/scope", func(t *testing.T) {
			for _, tt := range []struct {
				who        *imaged.Identity
				want, not_ []*imaged.Image
			}{
				{owner, []*imaged.Image{shared, private, public}, []*imaged.Image{community, otherPriv}},
				{other, []*imaged.Image{public, community, otherPriv}, []*imaged.Image{shared, private}},
				{accepted, []*imaged.Image{shared, public}, []*imaged.Image{private, community}},
				{pending, []*imaged.Image{public}, []*imaged.Image{shared, private}},
				{admin, []*imaged.Image{shared, private, public, otherPriv}, nil},
			} {
				got, err := e.svc.ListImages(as(tt.who), imaged.ImageQuery{}, "")
				if err != nil {
					t.Fatal(err)
				}
				g := ids(got)
				for _, w := range tt.want {
					if !g[w.ID] {
						t.Errorf("%s: missing %s", tt.who.UserID, w.ID)
					}
				}
				for _, n := range tt.not_ {
					if g[n.ID] {
						t.Errorf("%s: unexpected %s", tt.who.UserID, n.ID)
					}
				}
			}
		})

		t.Run(mode+"/order and paging", func(t *testing.T) {
			all, err := e.svc.ListImages(as(admin), imaged.ImageQuery{}, "")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(all); i++ {
				if all[i-1].CreatedAt.Before(all[i].CreatedAt) {
					t.Fatalf("not created_at desc: %v before %v", all[i-1].CreatedAt, all[i].CreatedAt)
				}
			}
			var paged []*imaged.Image
			marker := ""
			for {
				page, err := e.svc.ListImages(as(admin), imaged.ImageQuery{Limit: 2}, marker)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 2 {
					t.Fatalf("page of %d", len(page))
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				marker = page[len(page)-1].ID
			}
			if len(paged) != len(all) {
				t.Fatalf("paged %d, all %d", len(paged), len(all))
			}
			for i := range all {
				if paged[i].ID != all[i].ID {
					t.Fatalf("page order differs at %d", i)
				}
			}
			asc, err := e.svc.ListImages(as(admin), imaged.ImageQuery{Sort: []imaged.SortKey{{Key: "created_at", Dir: imaged.Asc}}}, "")
			if err != nil {
				t.Fatal(err)
			}
			if asc[0].ID != all[len(all)-1].ID {
				t.Fatalf("asc first %s, want %s", asc[0].ID, all[len(all)-1].ID)
			}
		})

		t.Run(mode+"/markers and limits", func(t *testing.T) {
			_, err := e.svc.ListImages(as(owner), imaged.ImageQuery{}, "00000000-0000-0000-0000-000000000000")
			wantErr(t, err, imaged.EINVALID, "No image found with ID 00000000-0000-0000-0000-000000000000")
			_, err = e.svc.ListImages(as(pending), imaged.ImageQuery{}, private.ID)
			wantErr(t, err, imaged.EFORBIDDEN, "Forbidding request, image "+private.ID+" not visible")
			_, err = e.svc.ListImages(as(owner), imaged.ImageQuery{Limit: -1}, "")
			wantErr(t, err, imaged.EINVALID, "limit param must be positive")
			_, err = e.svc.ListImages(as(owner), imaged.ImageQuery{Sort: []imaged.SortKey{{Key: "bogus"}}}, "")
			wantErr(t, err, imaged.EINVALID, "")
			got, err := e.svc.ListImages(as(admin), imaged.ImageQuery{Limit: 100000}, "")
			wantErr(t, err, "", "")
			if len(got) != 4 { // community images of others are left out by default
				t.Fatalf("got %d", len(got))
			}
		})

		t.Run(mode+"/get_images policy", func(t *testing.T) {
			noRole := &imaged.Identity{UserID: "n", ProjectID: "projA", Roles: []string{"foo"}}
			_, err := e.svc.ListImages(as(noRole), imaged.ImageQuery{}, "")
			if mode == "secure" {
				wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete get_images action.")
			} else {
				wantErr(t, err, "", "")
			}
		})
	}
}
