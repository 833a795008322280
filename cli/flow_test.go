package cli_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/imaged/imaged/registry/registrytest"
)

type image struct {
	ID             string            `json:"id"`
	Reference      string            `json:"reference"`
	Architecture   string            `json:"architecture"`
	Status         string            `json:"status"`
	Aliases        []string          `json:"aliases"`
	Tags           []string          `json:"tags"`
	Labels         map[string]string `json:"labels"`
	ResourceLimits struct {
		Custom map[string]struct{ Min, Max string } `json:"custom"`
	} `json:"resource_limits"`
}

// The container catalog end to end: add a registry, rescan it following
// the task, then list, show, scan, alias, modify, limit, forget, restore
// and purge its images, and read the audit log.
func TestContainerFlow(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	fixtures := reg.Pusher().BackendAIFixtures(t)
	s := newServer(t, nil)

	s.run(t, "registry", "add", "local", "--registry-url", reg.URL, "--project", "bai", "--project", "other").ok(t)
	r := s.run(t, "registry", "list", "--output", "table").ok(t)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^NAME +TYPE +URL +PROJECTS +USERNAME$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^local +oci +`+regexp.QuoteMeta(reg.URL)+` +bai,other +-$`).MatchString(lines[1]) {
		t.Errorf("registry list table:\n%s", r.stdout)
	}

	// rescan --follow: plain progress lines on stderr (not a terminal),
	// the final task as JSON on stdout.
	r = s.run(t, "registry", "rescan", "local", "--follow").ok(t)
	var tk struct {
		ID, Status string
		Progress   struct{ Done, Total int64 }
	}
	r.json(t, &tk)
	if tk.Status != "success" || tk.Progress.Done != tk.Progress.Total || tk.Progress.Total == 0 {
		t.Errorf("rescan task %+v", tk)
	}
	if !strings.Contains(r.stderr, "rescan local: success") || strings.Contains(r.stderr, "\r") {
		t.Errorf("follow lines:\n%q", r.stderr)
	}
	s.run(t, "task", "show", tk.ID).ok(t)

	var list struct {
		Images []image `json:"images"`
		Next   string  `json:"next"`
	}
	want := 0
	for _, f := range fixtures {
		want += len(f.Archs)
	}
	s.run(t, "image", "list", "--registry", "local", "--limit", "3", "--all").ok(t).json(t, &list)
	if len(list.Images) != want || list.Next != "" {
		t.Fatalf("image list --all: %d images (next %q), want %d", len(list.Images), list.Next, want)
	}
	// One page without --all says there is more.
	r = s.run(t, "image", "list", "--limit", "3", "--output", "table").ok(t)
	if n := strings.Count(r.stdout, "\n"); n != 4 || !strings.Contains(r.stderr, "--all") {
		t.Errorf("one page: %d lines, stderr %q\n%s", n, r.stderr, r.stdout)
	}
	if !regexp.MustCompile(`(?m)^ID +REFERENCE +ARCH +STATUS +SIZE +ALIASES$`).MatchString(r.stdout) {
		t.Errorf("image table header:\n%s", r.stdout)
	}

	py := reg.Host + "/bai/python:3.11-ubuntu22.04"
	var arm image
	s.run(t, "image", "show", py, "--arch", "aarch64").ok(t).json(t, &arm)
	if arm.Architecture != "aarch64" || arm.Reference != py {
		t.Fatalf("show by reference: %+v", arm)
	}
	r = s.run(t, "image", "show", arm.ID, "--output", "table").ok(t)
	for _, w := range []string{"id:", arm.ID, "architecture:", "aarch64", "status:", "alive"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("show table lacks %q:\n%s", w, r.stdout)
		}
	}
	var scanned struct{ Images []image }
	s.run(t, "image", "scan", py).ok(t).json(t, &scanned)
	if len(scanned.Images) != 2 {
		t.Errorf("scan: %d images", len(scanned.Images))
	}

	// Aliases.
	s.run(t, "image", "alias", "py311-arm", arm.ID).ok(t)
	s.run(t, "image", "alias", "bai/py311", "--ref", py, "--arch", "x86_64").ok(t)
	r = s.run(t, "image", "aliases", "--output", "table").ok(t)
	if !regexp.MustCompile(`(?m)^py311-arm +`+arm.ID).MatchString(r.stdout) || !strings.Contains(r.stdout, "bai/py311") {
		t.Errorf("aliases table:\n%s", r.stdout)
	}
	var viaAlias image
	s.run(t, "image", "show", "py311-arm").ok(t).json(t, &viaAlias)
	if viaAlias.ID != arm.ID {
		t.Errorf("show by alias: %s, want %s", viaAlias.ID, arm.ID)
	}
	s.run(t, "image", "dealias", "bai/py311").ok(t)
	if r := s.run(t, "image", "dealias", "bai/py311"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("second dealias: exit %d %s", r.code, r.stderr)
	}

	// Modify, limits.
	var mod image
	s.run(t, "image", "modify", arm.ID, "label.team=ml", "tags=a,b").ok(t).json(t, &mod)
	if mod.Labels["team"] != "ml" || strings.Join(mod.Tags, ",") != "a,b" {
		t.Errorf("modify: labels %v tags %v", mod.Labels, mod.Tags)
	}
	if mod.Labels["ai.backend.kernelspec"] != "1" {
		t.Errorf("label.team=ml lost the other labels: %v", mod.Labels)
	}
	mod = image{} // json.Unmarshal merges into existing maps
	s.run(t, "image", "modify", arm.ID, "label.team=").ok(t).json(t, &mod)
	if _, ok := mod.Labels["team"]; ok || mod.Labels["ai.backend.kernelspec"] != "1" {
		t.Errorf("label.team= did not remove just that label: %v", mod.Labels)
	}
	var prot struct{ Protected bool }
	s.run(t, "image", "modify", arm.ID, "--patch", `{"protected":true}`).ok(t).json(t, &prot)
	if !prot.Protected {
		t.Errorf("--patch protected: %+v", prot)
	}
	s.run(t, "image", "modify", arm.ID, "protected=false").ok(t).json(t, &prot)
	s.run(t, "image", "set-limits", arm.ID, "cpu=2:4", "mem=2g:8g").ok(t).json(t, &mod)
	if l := mod.ResourceLimits.Custom["cpu"]; l.Min != "2" || l.Max != "4" {
		t.Errorf("set-limits: %+v", mod.ResourceLimits.Custom)
	}
	mod = image{}
	s.run(t, "image", "clear-limits", arm.ID).ok(t).json(t, &mod)
	if len(mod.ResourceLimits.Custom) != 0 {
		t.Errorf("clear-limits: %+v", mod.ResourceLimits.Custom)
	}

	// Forget by id and by reference, restore, bulk with a failure.
	var f image
	s.run(t, "image", "forget", arm.ID).ok(t).json(t, &f)
	if f.Status != "forgotten" {
		t.Errorf("forget: %s", f.Status)
	}
	s.run(t, "image", "restore", arm.ID).ok(t)
	busybox := reg.Host + "/other/busybox:latest"
	s.run(t, "image", "forget", "--ref", busybox).ok(t).json(t, &f)
	if f.Status != "forgotten" || f.Reference != busybox {
		t.Errorf("forget --ref: %+v", f)
	}
	var forgotten struct{ Images []image }
	s.run(t, "image", "list", "--status", "forgotten").ok(t).json(t, &forgotten)
	if len(forgotten.Images) != 1 || forgotten.Images[0].ID != f.ID {
		t.Errorf("forgotten list: %+v", forgotten.Images)
	}
	missing := "0f6c8f5e-3f4c-4f7c-9a2e-111111111111"
	r = s.run(t, "image", "forget", list.Images[0].ID, missing, list.Images[1].ID, "--output", "table")
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 3 failed") {
		t.Fatalf("bulk forget: exit %d, stderr %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^`+missing+` +failed +not_found +`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^`+list.Images[0].ID+` +forget +- +-$`).MatchString(r.stdout) {
		t.Errorf("bulk table:\n%s", r.stdout)
	}
	s.run(t, "image", "restore", list.Images[0].ID, list.Images[1].ID).ok(t)

	// Purge: one image, then gone.
	s.run(t, "image", "purge", f.ID).ok(t)
	if r := s.run(t, "image", "show", f.ID); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("show after purge: exit %d %s", r.code, r.stderr)
	}

	// purge --untag of several images goes one by one, each untagged
	// in the registry first.
	var cuda, vllm image
	s.run(t, "image", "show", reg.Host+"/bai/cuda:12.1-py311").ok(t).json(t, &cuda)
	s.run(t, "image", "show", reg.Host+"/bai/vllm:0.4-inference").ok(t).json(t, &vllm)
	r = s.run(t, "image", "purge", cuda.ID, vllm.ID, "--untag", "--output", "table").ok(t)
	if !regexp.MustCompile(`(?m)^` + cuda.ID + ` +purge +- +-$`).MatchString(r.stdout) {
		t.Errorf("purge --untag table:\n%s", r.stdout)
	}
	if res, _, err := reg.Get(t.Context(), "/v2/bai/cuda/manifests/12.1-py311", nil); err != nil {
		t.Error(err)
	} else if res.StatusCode != 404 {
		t.Errorf("the cuda tag is still in the registry: %d", res.StatusCode)
	}

	// The audit log has the forget, with the admin as user.
	r = s.run(t, "audit", "--action", "container_image.forget", "--since", "1h", "--output", "table").ok(t)
	if !regexp.MustCompile(`(?m)^\d+ +\S+ \S+ +admin +container_image.forget +` + arm.ID + ` +success`).MatchString(r.stdout) {
		t.Errorf("audit table:\n%s", r.stdout)
	}
	// The registry's rescan of an unreachable registry fails: exit 1.
	s.run(t, "registry", "add", "dead", "--registry-url", "http://127.0.0.1:1", "--project", "x").ok(t)
	r = s.run(t, "registry", "rescan", "dead", "--follow")
	if r.code != 1 || !strings.Contains(r.stderr, "failure") {
		t.Errorf("failed rescan: exit %d, stderr %s", r.code, r.stderr)
	}
	s.run(t, "registry", "update", "dead", "--registry-url", "http://127.0.0.1:2").ok(t)
	// Credentials: the password comes from an environment variable and
	// never shows.
	r = s.runEnv(t, context.Background(), map[string]string{"IMAGED_TOKEN": adminToken, "REG_PW": "hunter2-pw"},
		"registry", "update", "dead", "--username", "bot", "--password-env", "REG_PW", "--insecure", "--output", "table").ok(t)
	for _, w := range []string{"username:     bot", "has_password: true", "verify_tls:   false"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("registry update table lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "hunter2-pw") {
		t.Error("the password was printed")
	}
	var rg struct {
		HasPassword bool `json:"has_password"`
	}
	s.run(t, "registry", "update", "dead", "--no-password").ok(t).json(t, &rg)
	if rg.HasPassword {
		t.Error("--no-password kept the password")
	}
	s.run(t, "registry", "delete", "dead").ok(t)
}
