package containers_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/registry/registrytest"
)

// TestScanImage covers spec §6.8 and Backend.AI #14640 (a canonical
// without a row can be scanned), architecture filtering with aliases and
// label validation.
func TestScanImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	fx := e.push.BackendAIFixtures(t)
	e.push.PushImage(t, "bai/broken", "1", "amd64", map[string]string{imaged.LabelKernelspec: "2"})
	e.push.PushImage(t, "elsewhere/x", "1", "amd64", nil)

	// An index: one image per architecture, created without a prior row.
	imgs, err := e.svc.ScanImage(as(adminID), e.ref("bai/python:3.11-ubuntu22.04"), "")
	if err != nil {
		t.Fatal(err)
	}
	var archs []string
	for _, img := range imgs {
		archs = append(archs, img.Architecture)
		if img.Reference != e.ref("bai/python:3.11-ubuntu22.04") || img.IndexDigest != fx[1].Digest ||
			img.Status != imaged.ContainerAlive || img.Registry != "local" || img.Project != "bai" || img.Repository != "bai/python" {
			t.Errorf("scanned image %+v", img)
		}
	}
	if !slices.Equal(archs, []string{"aarch64", "x86_64"}) {
		t.Fatalf("architectures %v", archs)
	}
	// Docker's "amd64" selects the stored "x86_64".
	imgs, err = e.svc.ScanImage(as(adminID), e.ref("bai/pytorch:2.1-py310"), "amd64")
	if err != nil || len(imgs) != 1 || imgs[0].Architecture != "x86_64" {
		t.Fatalf("scan amd64: %v %v", imgs, err)
	}
	// Rescanning the same tag refreshes, never duplicates.
	again, err := e.svc.ScanImage(as(adminID), e.ref("bai/pytorch:2.1-py310"), "x86_64")
	if err != nil || len(again) != 1 || again[0].ID != imgs[0].ID {
		t.Fatalf("rescan: %v %v", again, err)
	}

	// A digest reference registers the images under the digest.
	byDigest, err := e.svc.ScanImage(as(adminID), e.ref("bai/python@"+fx[1].Digest), "arm64")
	if err != nil || len(byDigest) != 1 || byDigest[0].Reference != e.ref("bai/python@"+fx[1].Digest) || byDigest[0].Architecture != "aarch64" {
		t.Fatalf("scan by digest: %v %v", byDigest, err)
	}
	if got, err := e.svc.ResolveContainerImage(as(otherID), e.ref("bai/python@"+fx[1].Digest), "arm64"); err != nil || got.ID != byDigest[0].ID {
		t.Fatalf("resolve by digest: %v %v", got, err)
	}

	cases := []struct {
		name, ref, arch string
		id              *imaged.Identity
		code, msg       string
	}{
		{"missing arch", e.ref("bai/pytorch:2.1-py310"), "s390x", adminID, imaged.ENOTFOUND, "no s390x image"},
		{"unknown tag", e.ref("bai/pytorch:nope"), "", adminID, imaged.ENOTFOUND, ""},
		{"unconfigured host", "cr.example.com/bai/python:3.9", "", adminID, imaged.EINVALID, "not a configured registry"},
		{"unconfigured project", e.ref("elsewhere/x:1"), "", adminID, imaged.EINVALID, "not in a configured project"},
		{"invalid label", e.ref("bai/broken:1"), "", adminID, imaged.EINVALID, imaged.LabelKernelspec},
		{"bad reference", "UPPER/Case:!", "", adminID, imaged.EINVALID, ""},
		{"owner", e.ref("bai/python:3.9-ubuntu20.04"), "", ownerID, imaged.EFORBIDDEN, ""},
		{"other", e.ref("bai/python:3.9-ubuntu20.04"), "", otherID, imaged.EFORBIDDEN, ""},
		{"reader", e.ref("bai/python:3.9-ubuntu20.04"), "", readerID, imaged.EFORBIDDEN, ""},
		{"anonymous", e.ref("bai/python:3.9-ubuntu20.04"), "", nil, imaged.EUNAUTHORIZED, ""},
	}
	for _, c := range cases {
		_, err := e.svc.ScanImage(as(c.id), c.ref, c.arch)
		if code(err) != c.code || !strings.Contains(imaged.ErrorMessage(err), c.msg) {
			t.Errorf("%s: got %v, want %s containing %q", c.name, err, c.code, c.msg)
		}
	}
	// Nothing of the invalid image was stored.
	if got, _ := e.store.ListContainerImages(context.Background(), imaged.ContainerImageQuery{Repository: "bai/broken", Limit: 10,
		Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}}); len(got) != 0 {
		t.Fatalf("invalid image stored: %v", got)
	}
	// Every scan is audited, failures too.
	audit, err := e.svc.ListAudit(as(adminID), imaged.AuditQuery{Action: "container_image.scan", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var fails int
	for _, a := range audit {
		if a.Result == "failure" {
			fails++
		}
	}
	if len(audit) != 4+len(cases) || fails != len(cases) {
		t.Fatalf("audit: %d entries, %d failures; want %d, %d", len(audit), fails, 4+len(cases), len(cases))
	}
}

// TestResolve covers §6.9 and architecture aliases: amd64 finds x86_64
// everywhere, "" is the server's architecture, aliases ignore it.
func TestResolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.push.PushIndex(t, "bai/python", "3.9", []string{"amd64", "arm64"}, baiLabels(nil))
	imgs := e.scan("bai/python:3.9")
	byArch := map[string]*imaged.ContainerImage{}
	for _, img := range imgs {
		byArch[img.Architecture] = img
	}
	ctx := as(otherID)
	ref := e.ref("bai/python:3.9")
	for _, arch := range []string{"amd64", "x86_64", "X86-64"} {
		got, err := e.svc.ResolveContainerImage(ctx, ref, arch)
		if err != nil || got.ID != byArch["x86_64"].ID {
			t.Errorf("resolve %s: %v %v", arch, got, err)
		}
	}
	if got, err := e.svc.ResolveContainerImage(ctx, ref, "arm64"); err != nil || got.ID != byArch["aarch64"].ID {
		t.Errorf("resolve arm64: %v %v", got, err)
	}
	native := imaged.NormalizeArch(runtime.GOARCH)
	if got, err := e.svc.ResolveContainerImage(ctx, ref, ""); byArch[native] != nil && (err != nil || got.ID != byArch[native].ID) {
		t.Errorf("resolve server arch: %v %v", got, err)
	}
	if _, err := e.svc.PutAlias(as(adminID), "py", imaged.AliasTarget{Reference: ref, Architecture: "arm64"}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.ResolveContainerImage(ctx, "py", "amd64"); err != nil || got.ID != byArch["aarch64"].ID {
		t.Errorf("alias ignores arch: %v %v", got, err)
	}
	for _, bad := range []string{e.ref("bai/python:nope"), "nope", ""} {
		if _, err := e.svc.ResolveContainerImage(ctx, bad, ""); code(err) != imaged.ENOTFOUND && code(err) != imaged.EINVALID {
			t.Errorf("resolve %q: %v", bad, err)
		}
	}
	// A forgotten image does not resolve, by reference or alias.
	if _, err := e.svc.ForgetContainerImage(as(adminID), byArch["aarch64"].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ResolveContainerImage(ctx, "py", ""); code(err) != imaged.ENOTFOUND {
		t.Errorf("alias of a forgotten image: %v", err)
	}
	if _, err := e.svc.ResolveContainerImage(ctx, ref, "arm64"); code(err) != imaged.ENOTFOUND {
		t.Errorf("forgotten by reference: %v", err)
	}
	if _, err := e.svc.ResolveContainerImage(as(nil), ref, "amd64"); code(err) != imaged.EUNAUTHORIZED {
		t.Errorf("anonymous: %v", err)
	}
}

// TestVisibility: who sees what, by id, by listing and by resolution.
func TestVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	stock := e.pushScan("bai/python", "3.9", baiLabels(nil))
	mine := e.pushScan("custom/alice", "1", customized("alice"))
	private := e.pushScan("bai/private", "1", baiLabels(nil))
	if _, err := e.svc.ModifyContainerImage(as(adminID), private.ID, map[string]any{"visibility": "private"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   *imaged.Identity
		sees []string
	}{
		{adminID, []string{stock.ID, mine.ID, private.ID}},
		{ownerID, []string{stock.ID, mine.ID}},
		{otherID, []string{stock.ID}},
		// rita reads in alice's project, but customized images belong
		// to a user, not a project.
		{readerID, []string{stock.ID}},
	}
	for _, c := range cases {
		list, err := e.svc.ListContainerImages(as(c.id), imaged.ContainerImageQuery{Limit: 1}, "")
		if err != nil {
			t.Fatal(err)
		}
		// Page through one by one: the filter must not lose images.
		got := []string{}
		for len(list) > 0 {
			got = append(got, list[0].ID)
			list, err = e.svc.ListContainerImages(as(c.id), imaged.ContainerImageQuery{Limit: 1}, list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(got)
		want := slices.Clone(c.sees)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v, want %v", c.id.UserID, got, want)
		}
		for _, img := range []*imaged.ContainerImage{stock, mine, private} {
			_, err := e.svc.GetContainerImage(as(c.id), img.ID)
			visible := slices.Contains(c.sees, img.ID)
			if visible != (err == nil) || (!visible && code(err) != imaged.ENOTFOUND) {
				t.Errorf("%s gets %s: %v (visible %v)", c.id.UserID, img.Reference, err, visible)
			}
		}
	}
	if _, err := e.svc.ResolveContainerImage(as(otherID), e.ref("custom/alice:1"), "amd64"); code(err) != imaged.ENOTFOUND {
		t.Errorf("bob resolves alice's image: %v", err)
	}
	if _, err := e.svc.ListContainerImages(as(otherID), imaged.ContainerImageQuery{}, mine.ID); code(err) != imaged.EINVALID {
		t.Errorf("invisible marker: %v", err)
	}
	if _, err := e.svc.ListContainerImages(as(otherID), imaged.ContainerImageQuery{SortKey: "nope"}, ""); code(err) != imaged.EINVALID {
		t.Errorf("bad sort key: %v", err)
	}
}

// opCase is one row of the role tables: the expected error code per
// persona (admin, owner, other, reader).
type opCase struct {
	name string
	op   func(e *env, ctx context.Context, img *imaged.ContainerImage) error
	// stock and custom are the codes on a stock image and on alice's
	// customized image, one per persona: "." = success.
	stock, custom [4]string
}

const ok = "."

// TestRoles runs every image operation as admin, owner, other user and
// reader, on a stock image and on a customized image of the owner (spec
// §6.1-6.7 items 2, 6, 10, 15, 17, 22, 46 and Backend.AI #14601).
func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	N, F := imaged.ENOTFOUND, imaged.EFORBIDDEN
	forgotten := func(e *env, img *imaged.ContainerImage) {
		if _, err := e.svc.ForgetContainerImage(as(adminID), img.ID); err != nil {
			t.Fatal(err)
		}
	}
	cases := []opCase{
		{"get", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.GetContainerImage(ctx, img.ID)
			return err
		}, [4]string{ok, ok, ok, ok}, [4]string{ok, ok, N, N}},
		{"forget", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.ForgetContainerImage(ctx, img.ID)
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, ok, N, N}},
		{"forget by reference", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.ForgetContainerImageByReference(ctx, img.Reference, "amd64")
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, ok, N, N}},
		{"restore", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			forgotten(e, img)
			_, err := e.svc.RestoreContainerImage(ctx, img.ID)
			return err
		}, [4]string{ok, N, N, N}, [4]string{ok, ok, N, N}},
		{"purge", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.PurgeContainerImage(ctx, img.ID, false)
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, ok, N, N}},
		{"purge forgotten", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			forgotten(e, img)
			_, err := e.svc.PurgeContainerImage(ctx, img.ID, false)
			return err
		}, [4]string{ok, N, N, N}, [4]string{ok, ok, N, N}},
		{"untag", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.UntagContainerImage(ctx, img.ID)
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, ok, N, N}},
		{"modify", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.ModifyContainerImage(ctx, img.ID, map[string]any{"type": "service"})
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, F, N, N}},
		{"set limits", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.SetResourceLimits(ctx, img.ID, map[string]imaged.ResourceLimit{"cpu": {Min: "2"}})
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, F, N, N}},
		{"clear limits", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.ClearResourceLimits(ctx, img.ID)
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, F, N, N}},
		{"alias", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.PutAlias(ctx, "a-"+img.Tag, imaged.AliasTarget{ImageID: img.ID})
			return err
		}, [4]string{ok, F, F, F}, [4]string{ok, F, F, F}},
		{"list aliases", func(e *env, ctx context.Context, img *imaged.ContainerImage) error {
			_, err := e.svc.ListAliases(ctx, img.ID, "", 0)
			return err
		}, [4]string{ok, ok, ok, ok}, [4]string{ok, ok, N, N}},
	}
	personas := []*imaged.Identity{adminID, ownerID, otherID, readerID}
	n := 0
	for _, c := range cases {
		for kind, want := range map[string][4]string{"stock": c.stock, "custom": c.custom} {
			for i, p := range personas {
				n++
				tag := fmt.Sprintf("t%d", n)
				var img *imaged.ContainerImage
				if kind == "stock" {
					img = e.pushScan("bai/stock", tag, baiLabels(nil))
				} else {
					img = e.pushScan("custom/alice", tag, customized("alice"))
				}
				err := c.op(e, as(p), img)
				w := want[i]
				if w == ok {
					w = ""
				}
				if code(err) != w {
					t.Errorf("%s on %s image by %s: got %v, want %q", c.name, kind, p.UserID, err, w)
				}
			}
		}
	}
	// Without identity, every operation is EUNAUTHORIZED.
	img := e.pushScan("bai/stock", "anon", baiLabels(nil))
	for _, c := range cases {
		if c.name == "restore" || c.name == "purge forgotten" {
			continue
		}
		if err := c.op(e, as(nil), img); code(err) != imaged.EUNAUTHORIZED {
			t.Errorf("%s without identity: %v", c.name, err)
		}
	}
}

// TestForgetRestore covers §6.1 (items 1, 3-8, 12-14) and the decisions
// on forgetting twice and restoring.
func TestForgetRestore(t *testing.T) {
	t.Parallel()
	forgetRestoreScenario(t, newEnv(t, envOpts{}))
}

func forgetRestoreScenario(t *testing.T, e *env) {
	img := e.pushScan("bai/python", "3.9-ubuntu20.04", baiLabels(nil))
	ctx := as(adminID)
	got, err := e.svc.ForgetContainerImageByReference(ctx, img.Reference, "amd64")
	if err != nil || got.Status != imaged.ContainerForgotten || got.ID != img.ID {
		t.Fatalf("forget: %v %v", got, err)
	}
	// The row stays, found with the forgotten status (item 4, 8).
	if f, err := e.store.FindContainerImage(context.Background(), img.Reference, "x86_64", imaged.ContainerForgotten); err != nil || f.ID != img.ID {
		t.Fatalf("forgotten row: %v %v", f, err)
	}
	if g, err := e.svc.GetContainerImage(ctx, img.ID); err != nil || g.Status != imaged.ContainerForgotten {
		t.Fatalf("admin gets forgotten: %v %v", g, err)
	}
	// Again: by reference it does not resolve, by id it is a conflict.
	if _, err := e.svc.ForgetContainerImageByReference(ctx, img.Reference, "amd64"); code(err) != imaged.ENOTFOUND {
		t.Errorf("forget twice by reference: %v", err)
	}
	if _, err := e.svc.ForgetContainerImage(ctx, img.ID); code(err) != imaged.ECONFLICT || !strings.Contains(imaged.ErrorMessage(err), "already forgotten") {
		t.Errorf("forget twice by id: %v", err)
	}
	for _, bad := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
		if _, err := e.svc.ForgetContainerImage(ctx, bad); code(err) != imaged.ENOTFOUND {
			t.Errorf("forget %s: %v", bad, err)
		}
	}
	if _, err := e.svc.ForgetContainerImageByReference(ctx, "wrong-image", ""); code(err) != imaged.ENOTFOUND {
		t.Errorf("forget wrong-image: %v", err)
	}
	r, err := e.svc.RestoreContainerImage(ctx, img.ID)
	if err != nil || r.Status != imaged.ContainerAlive {
		t.Fatalf("restore: %v %v", r, err)
	}
	if _, err := e.svc.RestoreContainerImage(ctx, img.ID); code(err) != imaged.ECONFLICT {
		t.Errorf("restore alive: %v", err)
	}
	// Protected images cannot be forgotten.
	if _, err := e.svc.ModifyContainerImage(ctx, img.ID, map[string]any{"protected": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ForgetContainerImage(ctx, img.ID); code(err) != imaged.EFORBIDDEN {
		t.Errorf("forget protected: %v", err)
	}
	if _, err := e.svc.PurgeContainerImage(ctx, img.ID, false); code(err) != imaged.EFORBIDDEN {
		t.Errorf("purge protected: %v", err)
	}

	// The owner of a customized image forgets and restores it (#14601);
	// a forgotten one is listed to them when they ask.
	mine := e.pushScan("custom/alice", "1", customized("alice"))
	if _, err := e.svc.ForgetContainerImage(as(ownerID), mine.ID); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.ListContainerImages(as(ownerID), imaged.ContainerImageQuery{Statuses: []imaged.ContainerStatus{imaged.ContainerForgotten}}, "")
	if err != nil || len(list) != 1 || list[0].ID != mine.ID {
		t.Fatalf("owner lists forgotten: %v %v", list, err)
	}
	if list, _ := e.svc.ListContainerImages(as(otherID), imaged.ContainerImageQuery{Statuses: []imaged.ContainerStatus{imaged.ContainerForgotten}}, ""); len(list) != 0 {
		t.Fatalf("other lists forgotten: %v", list)
	}
	if r, err := e.svc.RestoreContainerImage(as(ownerID), mine.ID); err != nil || r.Status != imaged.ContainerAlive {
		t.Fatalf("owner restores: %v %v", r, err)
	}
}

// TestPurge covers §6.2 (16, 19, 23, 24) and the Backend.AI #5204 bug:
// purge with untag deletes the manifest, then the row.
func TestPurge(t *testing.T) {
	t.Parallel()
	purgeScenario(t, newEnv(t, envOpts{}))
}

func purgeScenario(t *testing.T, e *env) {
	ctx := as(adminID)
	digest := e.push.PushImage(t, "bai/python", "3.9", "amd64", baiLabels(nil))
	img := e.scan("bai/python:3.9")[0]
	for _, a := range []string{"py39", "python"} {
		if _, err := e.svc.PutAlias(ctx, a, imaged.AliasTarget{ImageID: img.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if e.manifestStatus("bai/python", digest) != http.StatusOK {
		t.Fatal("fixture manifest missing")
	}
	got, err := e.svc.PurgeContainerImage(ctx, img.ID, true)
	if err != nil || got.ID != img.ID || got.Reference != img.Reference {
		t.Fatalf("purge: %v %v", got, err)
	}
	if s := e.manifestStatus("bai/python", digest); s != http.StatusNotFound {
		t.Errorf("manifest after purge with untag: HTTP %d, want 404", s)
	}
	if _, err := e.svc.GetContainerImage(ctx, img.ID); code(err) != imaged.ENOTFOUND {
		t.Errorf("get after purge: %v", err)
	}
	if al, err := e.svc.ListAliases(ctx, "", "", 0); err != nil || len(al) != 0 {
		t.Errorf("aliases after purge: %v %v", al, err)
	}
	if _, err := e.svc.PurgeContainerImage(ctx, img.ID, false); code(err) != imaged.ENOTFOUND {
		t.Errorf("purge twice: %v", err)
	}

	// A multi-arch image: untag deletes the index (every architecture).
	idx := e.push.PushIndex(t, "bai/multi", "1", []string{"amd64", "arm64"}, baiLabels(nil))
	imgs := e.scan("bai/multi:1")
	if _, err := e.svc.PurgeContainerImage(ctx, imgs[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if s := e.manifestStatus("bai/multi", idx); s != http.StatusNotFound {
		t.Errorf("index after purge: HTTP %d", s)
	}
	// The other architecture's row stays; purging it with untag succeeds
	// (the manifest is already gone).
	if _, err := e.svc.PurgeContainerImage(ctx, imgs[1].ID, true); err != nil {
		t.Errorf("purge sibling: %v", err)
	}

	// A forgotten image can be purged (Backend.AI could not).
	f := e.pushScan("bai/old", "1", baiLabels(nil))
	if _, err := e.svc.ForgetContainerImage(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PurgeContainerImage(ctx, f.ID, false); err != nil {
		t.Errorf("purge forgotten: %v", err)
	}
}

// TestPurgeRegistryRefuses: a registry with deletion disabled refuses the
// untag (HTTP 405), the purge is EREFUSED and the row stays; untag
// alone reports the same and changes nothing.
func TestPurgeRegistryRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{registry: registrytest.Options{DisableDelete: true}})
	ctx := as(adminID)
	digest := e.push.PushImage(t, "bai/python", "3.9", "amd64", baiLabels(nil))
	img := e.scan("bai/python:3.9")[0]
	if _, err := e.svc.PurgeContainerImage(ctx, img.ID, true); code(err) != imaged.EREFUSED {
		t.Fatalf("purge with untag on a registry without delete: %v", err)
	}
	if g, err := e.svc.GetContainerImage(ctx, img.ID); err != nil || g.Status != imaged.ContainerAlive {
		t.Fatalf("row after refused purge: %v %v", g, err)
	}
	if e.manifestStatus("bai/python", digest) != http.StatusOK {
		t.Fatal("manifest gone although the registry refused")
	}
	_, err := e.svc.UntagContainerImage(ctx, img.ID)
	if code(err) != imaged.EREFUSED {
		t.Fatalf("untag: %v", err)
	}
	t.Logf("untag refusal: %s", imaged.ErrorMessage(err))
	// Without untag the purge does not touch the registry and works.
	if _, err := e.svc.PurgeContainerImage(ctx, img.ID, false); err != nil {
		t.Fatal(err)
	}
}

// TestUntag covers §6.6 (45, 47, 49): the manifest is deleted on any
// registry type, the row is unchanged, an absent manifest is success.
func TestUntag(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := as(adminID)
	digest := e.push.PushImage(t, "bai/python", "3.9", "amd64", baiLabels(nil))
	img := e.scan("bai/python:3.9")[0]
	got, err := e.svc.UntagContainerImage(ctx, img.ID)
	if err != nil || got.ID != img.ID || got.Status != imaged.ContainerAlive {
		t.Fatalf("untag: %v %v", got, err)
	}
	if s := e.manifestStatus("bai/python", digest); s != http.StatusNotFound {
		t.Errorf("manifest after untag: HTTP %d", s)
	}
	if g, err := e.svc.GetContainerImage(ctx, img.ID); err != nil || g.Version != img.Version {
		t.Errorf("row changed by untag: %v %v", g, err)
	}
	if _, err := e.svc.UntagContainerImage(ctx, img.ID); err != nil {
		t.Errorf("untag an absent manifest: %v", err)
	}
	if _, err := e.svc.UntagContainerImage(ctx, "00000000-0000-0000-0000-000000000000"); code(err) != imaged.ENOTFOUND {
		t.Errorf("untag unknown: %v", err)
	}
}
