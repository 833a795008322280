package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func statusOf(err error) int {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		return e.Actual
	}
	return 0
}

func TestGophercloudImageLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t)
	c := s.client(t, tokAlice)

	protected := true
	img, err := images.Create(ctx, c, images.CreateOpts{
		Name: "cirros", DiskFormat: "qcow2", ContainerFormat: "bare", MinDisk: 1,
		Tags: []string{"b", "a"}, Protected: &protected,
		Properties: map[string]string{"os_distro": "cirros", "hw_disk_bus": "scsi"},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusQueued || img.Owner != "projA" || img.Visibility != images.ImageVisibilityShared {
		t.Fatalf("created %+v", img)
	}
	if img.Properties["os_distro"] != "cirros" {
		t.Fatalf("properties %v", img.Properties)
	}

	got, err := images.Get(ctx, c, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got.Tags)
	if got.Name != "cirros" || len(got.Tags) != 2 || got.Tags[0] != "a" || got.MinDiskGigabytes != 1 || !got.Protected {
		t.Fatalf("got %+v", got)
	}

	upd, err := images.Update(ctx, c, img.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "cirros-0.6"},
		images.UpdateImageProperty{Op: images.AddOp, Name: "os_version", Value: "0.6"},
		images.UpdateImageProperty{Op: images.RemoveOp, Name: "hw_disk_bus"},
		images.ReplaceImageTags{NewTags: []string{"c"}},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "cirros-0.6" || upd.Properties["os_version"] != "0.6" || upd.Properties["hw_disk_bus"] != nil ||
		len(upd.Tags) != 1 || upd.Tags[0] != "c" {
		t.Fatalf("updated %+v", upd)
	}

	if err := images.Delete(ctx, c, img.ID).ExtractErr(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("deleting a protected image: %v, want 403", err)
	}
	if _, err := images.Update(ctx, c, img.ID, images.UpdateOpts{images.ReplaceImageProtected{NewProtected: false}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := images.Delete(ctx, c, img.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Get(ctx, c, img.ID).Extract(); statusOf(err) != http.StatusNotFound {
		t.Fatalf("get after delete: %v, want 404", err)
	}
	// A deleted image's id stays taken.
	if _, err := images.Create(ctx, c, images.CreateOpts{ID: img.ID, Name: "again"}).Extract(); statusOf(err) != http.StatusConflict {
		t.Fatalf("re-create with a deleted id: %v, want 409", err)
	}
}

func TestGophercloudListPagingAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t)
	c := s.client(t, tokAlice)
	want := map[string]bool{}
	for i := range 11 {
		opts := images.CreateOpts{Name: fmt.Sprintf("img-%02d", i%4), DiskFormat: "raw", ContainerFormat: "bare"}
		if i%2 == 0 {
			opts.Tags = []string{"even"}
		}
		img, err := images.Create(ctx, c, opts).Extract()
		if err != nil {
			t.Fatal(err)
		}
		want[img.ID] = true
	}
	for _, sortSpec := range []images.ListOpts{
		{Limit: 3},
		{Limit: 4, Sort: "name:asc"},
		{Limit: 2, SortKey: "name", SortDir: "desc"},
		{Limit: 5, Sort: "disk_format:asc,name:desc"},
	} {
		seen := map[string]bool{}
		pages := 0
		err := images.List(c, sortSpec).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			pages++
			list, err := images.ExtractImages(p)
			if err != nil {
				return false, err
			}
			for _, img := range list {
				if seen[img.ID] {
					return false, fmt.Errorf("image %s repeated", img.ID)
				}
				seen[img.ID] = true
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("%+v: %v", sortSpec, err)
		}
		if len(seen) != len(want) {
			t.Fatalf("%+v: paged through %d images in %d pages, want %d", sortSpec, len(seen), pages, len(want))
		}
	}

	all, err := images.List(c, images.ListOpts{Name: "img-01", Tags: []string{"even"}}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := images.ExtractImages(all)
	if len(list) != 0 { // img-01 is i=1,5,9: never even
		t.Fatalf("name=img-01&tag=even gave %d images", len(list))
	}
	all, err = images.List(c, images.ListOpts{Name: "img-00"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ = images.ExtractImages(all)
	if len(list) != 3 { // i=0,4,8
		t.Fatalf("name=img-00 gave %d images, want 3", len(list))
	}

	// Another project sees none of projA's shared images (no membership).
	all, err = images.List(s.client(t, tokBob), images.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ = images.ExtractImages(all); len(list) != 0 {
		t.Fatalf("projB sees %d of projA's images", len(list))
	}
}

func TestGophercloudMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t)
	alice, bob, dave := s.client(t, tokAlice), s.client(t, tokBob), s.client(t, tokDave)
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "shared-one"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	m, err := members.Create(ctx, alice, img.ID, "projB").Extract()
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "pending" || m.MemberID != "projB" || m.ImageID != img.ID {
		t.Fatalf("member %+v", m)
	}
	if _, err := members.Create(ctx, alice, img.ID, "projB").Extract(); statusOf(err) != http.StatusConflict {
		t.Fatalf("duplicate member: %v, want 409", err)
	}

	count := func(c *gophercloud.ServiceClient, opts images.ListOpts) int {
		all, err := images.List(c, opts).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := images.ExtractImages(all)
		return len(l)
	}
	if n := count(bob, images.ListOpts{}); n != 0 {
		t.Fatalf("a pending member lists %d images by default, want 0", n)
	}
	if n := count(bob, images.ListOpts{MemberStatus: images.ImageMemberStatusPending}); n != 1 {
		t.Fatalf("member_status=pending lists %d, want 1", n)
	}
	if _, err := images.Get(ctx, dave, img.ID).Extract(); statusOf(err) != http.StatusNotFound {
		t.Fatalf("a non-member sees the shared image: %v", err)
	}
	// The owner may not answer for the member.
	if _, err := members.Update(ctx, alice, img.ID, "projB", members.UpdateOpts{Status: "accepted"}).Extract(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("owner accepting for the member: %v, want 403", err)
	}
	if _, err := members.Update(ctx, bob, img.ID, "projB", members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatal(err)
	}
	if n := count(bob, images.ListOpts{}); n != 1 {
		t.Fatalf("an accepted member lists %d images, want 1", n)
	}
	if err := images.Delete(ctx, bob, img.ID).ExtractErr(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("member deleting the owner's image: %v, want 403", err)
	}
	all, err := members.List(alice, img.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := members.ExtractMembers(all)
	if len(ms) != 1 || ms[0].Status != "accepted" {
		t.Fatalf("members %+v", ms)
	}
	if err := members.Delete(ctx, alice, img.ID, "projB").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Get(ctx, bob, img.ID).Extract(); statusOf(err) != http.StatusNotFound {
		t.Fatalf("a removed member still sees the image: %v", err)
	}
}

func TestSecurePolicyPersonas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startServer(t, "--policy", "secure")
	public := images.ImageVisibilityPublic
	if _, err := images.Create(ctx, s.client(t, tokCarol), images.CreateOpts{Name: "by-reader"}).Extract(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("reader creating: %v, want 403", err)
	}
	if _, err := images.Create(ctx, s.client(t, tokAlice), images.CreateOpts{Name: "pub", Visibility: &public}).Extract(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("member publicizing: %v, want 403", err)
	}
	img, err := images.Create(ctx, s.client(t, tokAdmin), images.CreateOpts{Name: "pub", Visibility: &public}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	// Everyone reads a public image; only admin changes it.
	if _, err := images.Get(ctx, s.client(t, tokCarol), img.ID).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Update(ctx, s.client(t, tokBob), img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "x"}}).Extract(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("other project renaming a public image: %v, want 403", err)
	}
	if code, _, _ := s.do(t, "GET", "/v2/images", "", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _, _ := s.do(t, "GET", "/v2/images", "not-a-token", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", code)
	}
}

// TestConcurrentPatchesKeepEveryChange is the lost-update test: Glance keeps
// only a few of 200 concurrent property PATCHes; imaged must keep all.
func TestConcurrentPatchesKeepEveryChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// 200 properties exceed Glance's default image_property_quota of 128.
	s := startServer(t, "--image-property-quota", "256")
	c := s.client(t, tokAlice)
	img, err := images.Create(ctx, c, images.CreateOpts{Name: "contended"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			body := fmt.Sprintf(`[{"op":"add","path":"/prop_%03d","value":"v%d"}]`, i, i)
			code, _, resp := s.do(t, "PATCH", "/v2/images/"+img.ID, tokAlice, "application/openstack-images-v2.1-json-patch", body)
			if code != http.StatusOK {
				errs <- fmt.Errorf("patch %d: %d %s", i, code, resp)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := images.Get(ctx, c, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range n {
		if got.Properties[fmt.Sprintf("prop_%03d", i)] == fmt.Sprintf("v%d", i) {
			kept++
		}
	}
	if kept != n {
		t.Fatalf("kept %d of %d concurrent property patches", kept, n)
	}
}
