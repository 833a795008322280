package containers_test

import (
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// TestModify covers §6.4 (34-39, with immutable fields refused rather
// than silently changed) and label validation.
func TestModify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := as(adminID)
	img := e.pushScan("bai/python", "3.9", baiLabels(map[string]string{"ai.backend.resource.min.mem": "256m"}))
	got, err := e.svc.ModifyContainerImage(ctx, img.ID, map[string]any{
		"type": "service", "visibility": "community", "protected": true, "tags": []any{"b", "a", "b"},
		"labels":          map[string]any{imaged.LabelKernelspec: "1", imaged.LabelAccelerators: "cuda,rocm", "ai.backend.resource.min.mem": "128m"},
		"resource_limits": map[string]any{"cpu": map[string]any{"min": "3", "max": "5"}, "mem": map[string]any{"min": "256m"}, "cuda.device": map[string]any{"min": 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != imaged.ContainerTypeService || got.Visibility != imaged.VisibilityCommunity || !got.Protected ||
		strings.Join(got.Tags, ",") != "a,b" || got.Labels[imaged.LabelAccelerators] != "cuda,rocm" ||
		strings.Join(got.Accelerators, ",") != "cuda,rocm" || got.ResourceLimits["cpu"] != (imaged.ResourceLimit{Min: "3", Max: "5"}) ||
		got.ResourceLimits["cuda.device"].Min != "1" || got.Reference != img.Reference || got.Digest != img.Digest {
		t.Fatalf("modified: %+v", got)
	}
	eff := imaged.EffectiveLimits(got.Labels, got.ResourceLimits)
	if eff["cpu"].Min != "3" || eff["mem"].Min != "1073741824" && eff["mem"].Min != "256m" {
		t.Errorf("effective limits %v", eff)
	}
	cases := []struct {
		name  string
		patch map[string]any
		msg   string
	}{
		{"immutable", map[string]any{"reference": "x", "digest": "sha256:1", "architecture": "arm64", "type": "compute"}, "architecture, digest, reference"},
		{"unknown", map[string]any{"frobnicate": 1}, "frobnicate"},
		{"empty", map[string]any{}, "empty"},
		{"bad type", map[string]any{"type": "gpu"}, "type must be"},
		{"null type", map[string]any{"type": nil}, "type must be"},
		{"bad visibility", map[string]any{"visibility": "everyone"}, "visibility"},
		{"bad protected", map[string]any{"protected": "yes"}, "protected"},
		{"bad tags", map[string]any{"tags": "a"}, "tags"},
		{"bad kernelspec", map[string]any{"labels": map[string]any{imaged.LabelKernelspec: "2"}}, imaged.LabelKernelspec},
		{"bad owner label", map[string]any{"labels": map[string]any{imaged.LabelKernelspec: "1", imaged.LabelCustomizedOwner: "alice"}}, imaged.LabelCustomizedOwner},
		{"label value", map[string]any{"labels": map[string]any{"x": 1}}, "label x"},
		{"limits shape", map[string]any{"resource_limits": []any{"cpu"}}, "resource_limits"},
		{"limit min missing", map[string]any{"resource_limits": map[string]any{"cpu": map[string]any{"max": "4"}}}, "min is required"},
		{"limit below label", map[string]any{"resource_limits": map[string]any{"mem": map[string]any{"min": "64m"}}}, "below the image's minimum"},
	}
	for _, c := range cases {
		_, err := e.svc.ModifyContainerImage(ctx, img.ID, c.patch)
		if code(err) != imaged.EINVALID || !strings.Contains(imaged.ErrorMessage(err), c.msg) {
			t.Errorf("%s: got %v, want EINVALID containing %q", c.name, err, c.msg)
		}
	}
	// Refused patches changed nothing.
	if now, err := e.svc.GetContainerImage(ctx, img.ID); err != nil || now.Version != got.Version {
		t.Errorf("refused patches changed the image: %v %v", now, err)
	}
	// Null clears labels, limits and tags.
	cleared, err := e.svc.ModifyContainerImage(ctx, img.ID, map[string]any{"labels": nil, "resource_limits": nil, "tags": nil})
	if err != nil || len(cleared.Labels) != 0 || len(cleared.ResourceLimits) != 0 || len(cleared.Tags) != 0 || cleared.Accelerators != nil {
		t.Fatalf("null patch: %+v %v", cleared, err)
	}
	if _, err := e.svc.ModifyContainerImage(ctx, "00000000-0000-0000-0000-000000000000", map[string]any{"type": "compute"}); code(err) != imaged.ENOTFOUND {
		t.Errorf("modify unknown: %v", err)
	}
}

// TestResourceLimits covers §6.7 (50-58), numeric comparison (Backend.AI
// compared cpu as strings: "10" < "2") and the label minimum (#6532).
func TestResourceLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := as(adminID)
	img := e.pushScan("bai/python", "3.9", baiLabels(map[string]string{"ai.backend.resource.min.cuda.device": "1"}))
	set := func(l map[string]imaged.ResourceLimit) (*imaged.ContainerImage, error) {
		return e.svc.SetResourceLimits(ctx, img.ID, l)
	}
	got, err := set(map[string]imaged.ResourceLimit{"cpu": {Min: "2", Max: "10"}})
	if err != nil {
		t.Fatalf("cpu 2..10 (numeric, not string, comparison): %v", err)
	}
	if eff := imaged.EffectiveLimits(got.Labels, got.ResourceLimits); eff["cpu"] != (imaged.ResourceLimit{Min: "2", Max: "10"}) {
		t.Errorf("effective cpu %v", eff["cpu"])
	}
	if _, err := set(map[string]imaged.ResourceLimit{"cpu": {Min: "10", Max: "2"}}); code(err) != imaged.EINVALID {
		t.Errorf("max below min: %v", err)
	}
	// A second set replaces the first.
	got, err = set(map[string]imaged.ResourceLimit{"mem": {Min: "512m", Max: "8g"}, "cuda.device": {Min: "2"}})
	if err != nil || len(got.ResourceLimits) != 2 {
		t.Fatalf("replace: %v %v", got, err)
	}
	eff := imaged.EffectiveLimits(got.Labels, got.ResourceLimits)
	if eff["mem"].Min != "1073741824" || eff["mem"].Max != "8g" || eff["cpu"].Min != "1" {
		t.Errorf("effective mem/cpu: %v", eff)
	}
	// Below the label's minimum: refused (#6532).
	if _, err := set(map[string]imaged.ResourceLimit{"cuda.device": {Min: "0.5"}}); code(err) != imaged.EINVALID || !strings.Contains(imaged.ErrorMessage(err), "ai.backend.resource.min.cuda.device") {
		t.Errorf("below label minimum: %v", err)
	}
	for _, bad := range []map[string]imaged.ResourceLimit{{"cpu": {}}, {"Bad Slot": {Min: "1"}}, {"mem": {Min: "lots"}}} {
		if _, err := set(bad); code(err) != imaged.EINVALID {
			t.Errorf("set %v: %v", bad, err)
		}
	}
	for range 2 { // idempotent
		got, err = e.svc.ClearResourceLimits(ctx, img.ID)
		if err != nil || len(got.ResourceLimits) != 0 {
			t.Fatalf("clear: %v %v", got, err)
		}
	}
	eff = imaged.EffectiveLimits(got.Labels, got.ResourceLimits)
	if len(eff) != 3 || eff["cuda.device"].Min != "1" || eff["mem"].Max != "" {
		t.Errorf("after clear: %v", eff)
	}
	if _, err := e.svc.SetResourceLimits(ctx, "00000000-0000-0000-0000-000000000000", nil); code(err) != imaged.ENOTFOUND {
		t.Errorf("set unknown: %v", err)
	}
	if _, err := e.svc.ClearResourceLimits(ctx, "00000000-0000-0000-0000-000000000000"); code(err) != imaged.ENOTFOUND {
		t.Errorf("clear unknown: %v", err)
	}
	// Custom limits survive a rescan (Backend.AI #3941).
	if _, err := set(map[string]imaged.ResourceLimit{"cpu": {Min: "4"}}); err != nil {
		t.Fatal(err)
	}
	again := e.scan("bai/python:3.9")
	if again[0].ResourceLimits["cpu"].Min != "4" {
		t.Errorf("limits after rescan: %v", again[0].ResourceLimits)
	}
}

// TestAliases covers §6.3 (25-33) and the alias rules.
func TestAliases(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := as(adminID)
	a := e.pushScan("bai/python", "3.9", baiLabels(nil))
	b := e.pushScan("bai/python", "3.10", baiLabels(nil))
	al, err := e.svc.PutAlias(ctx, "python", imaged.AliasTarget{Reference: a.Reference, Architecture: "amd64"})
	if err != nil || al.ImageID != a.ID || al.Alias != "python" {
		t.Fatalf("alias by reference: %v %v", al, err)
	}
	if got, _ := e.svc.GetContainerImage(ctx, a.ID); strings.Join(got.Aliases, ",") != "python" {
		t.Errorf("aliases of the image: %v", got.Aliases)
	}
	// An alias cannot target an alias.
	if _, err := e.svc.PutAlias(ctx, "py", imaged.AliasTarget{Reference: "python", Architecture: "amd64"}); code(err) != imaged.ENOTFOUND {
		t.Errorf("alias of an alias: %v", err)
	}
	// PUT moves an alias.
	if al, err := e.svc.PutAlias(ctx, "python", imaged.AliasTarget{ImageID: b.ID}); err != nil || al.ImageID != b.ID {
		t.Fatalf("move alias: %v %v", al, err)
	}
	if got, err := e.svc.ResolveContainerImage(ctx, "python", "arm64"); err != nil || got.ID != b.ID {
		t.Errorf("resolve alias: %v %v", got, err)
	}
	cases := []struct {
		name   string
		alias  string
		target imaged.AliasTarget
		code   string
	}{
		{"canonical", a.Reference, imaged.AliasTarget{ImageID: b.ID}, imaged.ECONFLICT},
		{"uppercase", "Python", imaged.AliasTarget{ImageID: b.ID}, imaged.EINVALID},
		{"space", "py thon", imaged.AliasTarget{ImageID: b.ID}, imaged.EINVALID},
		{"empty", "", imaged.AliasTarget{ImageID: b.ID}, imaged.EINVALID},
		{"too long", strings.Repeat("a", 256), imaged.AliasTarget{ImageID: b.ID}, imaged.EINVALID},
		{"no target", "x", imaged.AliasTarget{}, imaged.EINVALID},
		{"both targets", "x", imaged.AliasTarget{ImageID: b.ID, Reference: b.Reference}, imaged.EINVALID},
		{"unknown id", "x", imaged.AliasTarget{ImageID: "00000000-0000-0000-0000-000000000000"}, imaged.ENOTFOUND},
		{"unknown ref", "x", imaged.AliasTarget{Reference: e.ref("bai/python:nope")}, imaged.ENOTFOUND},
		{"wrong arch", "x", imaged.AliasTarget{Reference: a.Reference, Architecture: "arm64"}, imaged.ENOTFOUND},
	}
	for _, c := range cases {
		if _, err := e.svc.PutAlias(ctx, c.alias, c.target); code(err) != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
	// A forgotten image cannot be aliased.
	if _, err := e.svc.ForgetContainerImage(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PutAlias(ctx, "old", imaged.AliasTarget{ImageID: a.ID}); code(err) != imaged.ECONFLICT {
		t.Errorf("alias a forgotten image: %v", err)
	}
	list, err := e.svc.ListAliases(ctx, "", "", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := e.svc.ListAliases(as(otherID), "", "", 0); code(err) != imaged.EFORBIDDEN {
		t.Errorf("non-admin lists every alias: %v", err)
	}
	// Forget through the alias, whatever the architecture (33).
	if f, err := e.svc.ForgetContainerImageByReference(ctx, "python", "s390x"); err != nil || f.ID != b.ID || f.Status != imaged.ContainerForgotten {
		t.Fatalf("forget by alias: %v %v", f, err)
	}
	if d, err := e.svc.DeleteAlias(ctx, "python"); err != nil || d.ImageID != b.ID {
		t.Fatalf("dealias: %v %v", d, err)
	}
	if _, err := e.svc.DeleteAlias(ctx, "python"); code(err) != imaged.ENOTFOUND {
		t.Errorf("dealias twice: %v", err)
	}
	if _, err := e.svc.DeleteAlias(as(ownerID), "python"); code(err) != imaged.EFORBIDDEN {
		t.Errorf("non-admin dealias: %v", err)
	}
}

// TestBulk: each id on its own, every outcome reported.
func TestBulk(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a := e.pushScan("bai/a", "1", baiLabels(nil))
	b := e.pushScan("bai/b", "1", baiLabels(nil))
	mine := e.pushScan("custom/alice", "1", customized("alice"))
	unknown := "00000000-0000-0000-0000-000000000000"
	res, err := e.svc.Bulk(as(adminID), "forget", []string{a.ID, unknown, b.ID, a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Successful, ",") != a.ID+","+b.ID || len(res.Failed) != 1 || res.Failed[0].ID != unknown || res.Failed[0].Code != imaged.ENOTFOUND {
		t.Fatalf("bulk forget: %+v", res)
	}
	res, err = e.svc.Bulk(as(ownerID), "purge", []string{a.ID, mine.ID})
	if err != nil || len(res.Successful) != 1 || res.Successful[0] != mine.ID || res.Failed[0].Code != imaged.ENOTFOUND {
		t.Fatalf("owner bulk purge: %+v %v", res, err)
	}
	res, err = e.svc.Bulk(as(adminID), "restore", []string{a.ID, b.ID})
	if err != nil || len(res.Successful) != 2 {
		t.Fatalf("bulk restore: %+v %v", res, err)
	}
	if _, err := e.svc.Bulk(as(adminID), "explode", []string{a.ID}); code(err) != imaged.EINVALID {
		t.Errorf("unknown op: %v", err)
	}
	if _, err := e.svc.Bulk(as(adminID), "forget", make([]string, 1001)); code(err) != imaged.EINVALID {
		t.Errorf("1001 ids: %v", err)
	}
	if _, err := e.svc.Bulk(as(nil), "forget", []string{a.ID}); code(err) != imaged.EUNAUTHORIZED {
		t.Errorf("anonymous: %v", err)
	}
	// Each item is audited.
	audit, err := e.svc.ListAudit(as(adminID), imaged.AuditQuery{Action: "container_image.*", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var forgets, fails int
	for _, a := range audit {
		if a.Action == "container_image.forget" {
			forgets++
			if a.Result == "failure" {
				fails++
			}
			if a.UserID != "adm" || a.RequestID != "req-adm" {
				t.Errorf("audit identity: %+v", a)
			}
		}
	}
	if forgets != 3 || fails != 1 {
		t.Errorf("forget audit: %d entries, %d failures", forgets, fails)
	}
	if _, err := e.svc.ListAudit(as(ownerID), imaged.AuditQuery{}); code(err) != imaged.EFORBIDDEN {
		t.Errorf("non-admin audit: %v", err)
	}
}
