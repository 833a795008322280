package containers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/registry/registrytest"
)

// waitTask watches a task to its end through the service.
func waitTask(t testing.TB, e *env, id string) (*imaged.Task, []*imaged.Task) {
	t.Helper()
	ctx, cancel := context.WithTimeout(as(adminID), 2*time.Minute)
	defer cancel()
	ch, err := e.svc.WatchTask(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var seen []*imaged.Task
	for tk := range ch {
		seen = append(seen, tk)
	}
	if len(seen) == 0 {
		t.Fatal("no task state")
	}
	last := seen[len(seen)-1]
	if last.Status != imaged.TaskSuccess && last.Status != imaged.TaskFailure {
		t.Fatalf("watch ended at %s", last.Status)
	}
	return last, seen
}

func num(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	case int64:
		return int(n)
	}
	return -1
}

// TestRescan covers §6.8 (64, 66), per-tag errors, progress, atomic
// commit and the decision that a rescan never revives a forgotten image.
func TestRescan(t *testing.T) {
	t.Parallel()
	rescanScenario(t, newEnv(t, envOpts{conc: 3}))
}

func rescanScenario(t *testing.T, e *env) {
	e.push.BackendAIFixtures(t)                                                                     // 6 tags, 8 images
	e.push.PushImage(t, "bai/broken", "1", "amd64", map[string]string{imaged.LabelKernelspec: "2"}) // invalid
	e.push.PushImage(t, "bai/broken", "ok", "amd64", baiLabels(nil))
	e.push.PushImage(t, "elsewhere/x", "1", "amd64", nil) // not in a configured project

	tk, err := e.svc.RescanRegistry(as(adminID), "local", "")
	if err != nil {
		t.Fatal(err)
	}
	if tk.Type != imaged.TaskTypeRegistryRescan || tk.Status != imaged.TaskPending || tk.UserID != "adm" {
		t.Fatalf("started: %+v", tk)
	}
	end, _ := waitTask(t, e, tk.ID)
	if end.Status != imaged.TaskSuccess {
		t.Fatalf("rescan: %s %q %v", end.Status, end.Message, end.Errors)
	}
	if end.Progress.Done != 8 || end.Progress.Total != 8 {
		t.Errorf("progress %+v, want 8/8 tags", end.Progress)
	}
	if len(end.Errors) != 1 || !strings.HasPrefix(end.Errors[0], "bai/broken:1") || !strings.Contains(end.Errors[0], imaged.LabelKernelspec) {
		t.Errorf("errors %q", end.Errors)
	}
	if num(end.Result["created"]) != 9 || num(end.Result["updated"]) != 0 || num(end.Result["forgotten_skipped"]) != 0 {
		t.Errorf("result %v", end.Result)
	}
	if ids, _ := end.Result["image_ids"].([]any); len(ids) != 9 {
		t.Errorf("image ids %v", end.Result["image_ids"])
	}
	// Spec item 64: a foreign image gets accelerators "*" (nil), labels as
	// they are and effective limits cpu 1 / mem 1 GiB.
	busy, err := e.svc.ResolveContainerImage(as(otherID), e.ref("other/busybox:latest"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	eff := imaged.EffectiveLimits(busy.Labels, busy.ResourceLimits)
	if busy.Accelerators != nil || busy.Project != "other" || eff["cpu"].Min != "1" || eff["mem"].Min != "1073741824" {
		t.Errorf("busybox: %+v %v", busy, eff)
	}

	// Forget one image; the next rescan refreshes it but leaves it
	// forgotten (Backend.AI silently revived it).
	py, err := e.svc.ResolveContainerImage(as(adminID), e.ref("bai/python:3.9-ubuntu20.04"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ForgetContainerImage(as(adminID), py.ID); err != nil {
		t.Fatal(err)
	}
	tk, err = e.svc.RescanRegistry(as(adminID), "local", "")
	if err != nil {
		t.Fatal(err)
	}
	end, _ = waitTask(t, e, tk.ID)
	if end.Status != imaged.TaskSuccess || num(end.Result["created"]) != 0 || num(end.Result["updated"]) != 8 || num(end.Result["forgotten_skipped"]) != 1 {
		t.Errorf("second rescan: %s %v", end.Status, end.Result)
	}
	if got, _ := e.svc.GetContainerImage(as(adminID), py.ID); got.Status != imaged.ContainerForgotten {
		t.Errorf("rescan revived a forgotten image: %s", got.Status)
	}

	// One project only, and the client goes away at once: the task
	// outlives the request.
	reqCtx, cancelReq := context.WithCancel(as(adminID))
	tk, err = e.svc.RescanRegistry(reqCtx, "local", "other")
	cancelReq()
	if err != nil {
		t.Fatal(err)
	}
	if end, _ = waitTask(t, e, tk.ID); end.Progress.Total != 1 || num(end.Result["updated"]) != 1 {
		t.Errorf("project rescan: %+v %v", end.Progress, end.Result)
	}

	// Refusals.
	for _, c := range []struct {
		name, reg, project string
		id                 *imaged.Identity
		code               string
	}{
		{"owner", "local", "", ownerID, imaged.EFORBIDDEN},
		{"reader", "local", "", readerID, imaged.EFORBIDDEN},
		{"anonymous", "local", "", nil, imaged.EUNAUTHORIZED},
		{"unknown registry", "nope", "", adminID, imaged.ENOTFOUND},
		{"unconfigured project", "local", "elsewhere", adminID, imaged.EINVALID},
	} {
		if _, err := e.svc.RescanRegistry(as(c.id), c.reg, c.project); code(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	// Tasks are visible to admins and to whoever started them only.
	if _, err := e.svc.GetTask(as(otherID), tk.ID); code(err) != imaged.ENOTFOUND {
		t.Errorf("other user gets the task: %v", err)
	}
	if _, err := e.svc.WatchTask(as(otherID), tk.ID); code(err) != imaged.ENOTFOUND {
		t.Errorf("other user watches the task: %v", err)
	}
	audit, err := e.svc.ListAudit(as(adminID), imaged.AuditQuery{Action: "registry.rescan*", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var starts, ends int
	for _, a := range audit {
		switch a.Action {
		case "registry.rescan":
			starts++
		case "registry.rescan_end":
			ends++
		}
	}
	if starts != 8 || ends != 3 {
		t.Errorf("audit: %d starts (5 refused), %d ends", starts, ends)
	}
}

// TestRescanEnumerationFails: a registry that cannot be listed fails the
// task and commits nothing; a Docker Hub registry cannot be enumerated.
func TestRescanEnumerationFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := as(adminID)
	if _, err := e.svc.CreateRegistry(ctx, &imaged.Registry{Name: "down", URL: "http://127.0.0.1:1", Type: imaged.RegistryOCI}); err != nil {
		t.Fatal(err)
	}
	tk, err := e.svc.RescanRegistry(ctx, "down", "")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := waitTask(t, e, tk.ID)
	if end.Status != imaged.TaskFailure || !strings.Contains(end.Message, "cannot list the repositories") {
		t.Errorf("down registry: %s %q", end.Status, end.Message)
	}
	if _, err := e.svc.CreateRegistry(ctx, &imaged.Registry{Name: "hub", URL: "https://index.docker.io", Type: imaged.RegistryDockerHub}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RescanRegistry(ctx, "hub", ""); code(err) != imaged.EREFUSED {
		t.Errorf("docker hub rescan: %v", err)
	}
}

// TestRegistries: CRUD, validation, write-only encrypted passwords that
// still work for the registry client, and the audit log never holding
// them.
func TestRegistries(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pa55"
	e := newEnv(t, envOpts{registry: registrytest.Options{Username: "bai", Password: password}, secret: []byte("test key")})
	ctx := as(adminID)
	// The registry was created with credentials: the stored password is
	// sealed, the service never returns it, and scans still authenticate.
	stored, err := e.store.GetRegistry(context.Background(), "local")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Password == password || !strings.HasPrefix(stored.Password, "aesgcm:v1:") {
		t.Fatalf("stored password %q is not sealed", stored.Password)
	}
	got, err := e.svc.GetRegistry(ctx, "local")
	if err != nil || got.Password != "" || got.Username != "bai" {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := e.svc.ListRegistries(ctx)
	if err != nil || len(list) != 1 || list[0].Password != "" {
		t.Fatalf("list: %v %v", list, err)
	}
	img := e.pushScan("bai/python", "3.9", baiLabels(nil))

	for _, c := range []struct {
		name string
		r    *imaged.Registry
		code string
	}{
		{"duplicate", &imaged.Registry{Name: "local", URL: "http://127.0.0.1:5000"}, imaged.ECONFLICT},
		{"bad name", &imaged.Registry{Name: "bad name", URL: "http://127.0.0.1:5000"}, imaged.EINVALID},
		{"bad url", &imaged.Registry{Name: "x", URL: "ftp://h"}, imaged.EINVALID},
		{"url with path", &imaged.Registry{Name: "x", URL: "http://h/v2/"}, imaged.EINVALID},
		{"bad type", &imaged.Registry{Name: "x", URL: "http://h", Type: "quay"}, imaged.EINVALID},
		{"bad project", &imaged.Registry{Name: "x", URL: "http://h", Projects: []string{"Bad"}}, imaged.EINVALID},
		{"harbor without project", &imaged.Registry{Name: "x", URL: "http://h", Type: imaged.RegistryHarbor2}, imaged.EINVALID},
		{"nil", nil, imaged.EINVALID},
	} {
		if _, err := e.svc.CreateRegistry(ctx, c.r); code(err) != c.code {
			t.Errorf("create %s: %v, want %s", c.name, err, c.code)
		}
	}
	for _, id := range []*imaged.Identity{ownerID, otherID, readerID} {
		if _, err := e.svc.CreateRegistry(as(id), &imaged.Registry{Name: "x", URL: "http://h"}); code(err) != imaged.EFORBIDDEN {
			t.Errorf("create as %s: %v", id.UserID, err)
		}
		if _, err := e.svc.ListRegistries(as(id)); code(err) != imaged.EFORBIDDEN {
			t.Errorf("list as %s: %v", id.UserID, err)
		}
	}
	// Update: a new password is sealed too and still works.
	up, err := e.svc.UpdateRegistry(ctx, "local", map[string]any{"password": password, "projects": []any{"bai", "other", "custom", "more"}})
	if err != nil || up.Password != "" || len(up.Projects) != 4 {
		t.Fatalf("update: %+v %v", up, err)
	}
	if again := e.scan("bai/python:3.9"); again[0].ID != img.ID {
		t.Fatal("rescan after password update")
	}
	for _, c := range []struct {
		name  string
		patch map[string]any
		code  string
	}{
		{"rename", map[string]any{"name": "other"}, imaged.EINVALID},
		{"bad verify", map[string]any{"verify_tls": "yes"}, imaged.EINVALID},
		{"bad url", map[string]any{"url": "nope"}, imaged.EINVALID},
		{"host change with images", map[string]any{"url": "http://127.0.0.1:1"}, imaged.ECONFLICT},
		{"empty", map[string]any{}, imaged.EINVALID},
	} {
		if _, err := e.svc.UpdateRegistry(ctx, "local", c.patch); code(err) != c.code {
			t.Errorf("update %s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, err := e.svc.UpdateRegistry(ctx, "nope", map[string]any{"verify_tls": true}); code(err) != imaged.ENOTFOUND {
		t.Errorf("update unknown: %v", err)
	}
	if err := e.svc.DeleteRegistry(ctx, "local"); code(err) != imaged.ECONFLICT {
		t.Errorf("delete with images: %v", err)
	}
	if _, err := e.svc.PurgeContainerImage(ctx, img.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRegistry(ctx, "local"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := e.svc.DeleteRegistry(ctx, "local"); code(err) != imaged.ENOTFOUND {
		t.Errorf("delete twice: %v", err)
	}
	// Seeding creates, then updates.
	seed := []*imaged.Registry{{Name: "seeded", URL: "https://cr.example.com", Projects: []string{"bai"}, Username: "u", Password: "p"}}
	if err := e.svc.SeedRegistries(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	seed[0].Projects = []string{"bai", "ml"}
	if err := e.svc.SeedRegistries(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	if r, err := e.svc.GetRegistry(ctx, "seeded"); err != nil || len(r.Projects) != 2 || r.Password != "" {
		t.Errorf("seeded: %+v %v", r, err)
	}
	if err := e.svc.SeedRegistries(context.Background(), []*imaged.Registry{{Name: "bad", URL: "nope"}}); code(err) != imaged.EINVALID {
		t.Errorf("seed invalid: %v", err)
	}
	// No password anywhere in the audit log.
	audit, err := e.svc.ListAudit(ctx, imaged.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(audit)
	if strings.Contains(string(b), password) || strings.Contains(string(b), "aesgcm") {
		t.Error("the audit log holds a password")
	}
	if !strings.Contains(string(b), "registry.create") || !strings.Contains(string(b), "registry.seed_create") {
		t.Error("registry changes missing from the audit log")
	}
}

// TestPostgres runs the scenarios that lean most on the store's
// transactions (forget/restore, purge with untag, the atomic rescan
// commit) on PostgreSQL (skipped when it is not reachable, required in
// CI).
func TestPostgres(t *testing.T) {
	t.Parallel()
	for name, run := range map[string]func(*testing.T, *env){
		"forget-restore": forgetRestoreScenario, "purge": purgeScenario, "rescan": rescanScenario,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t, newEnv(t, envOpts{postgres: true, conc: 3}))
		})
	}
}

// TestConcurrentRescans: two rescans of one registry at once both
// succeed and create each image once.
func TestConcurrentRescans(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.push.PushMany(t, 5, 4)
	if _, err := e.svc.UpdateRegistry(as(adminID), "local", map[string]any{"projects": []any{"many"}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 2 {
		tk, err := e.svc.RescanRegistry(as(adminID), "local", "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	created := 0
	for _, id := range ids {
		end, _ := waitTask(t, e, id)
		if end.Status != imaged.TaskSuccess || end.Progress.Done != 20 {
			t.Fatalf("rescan: %s %q %+v", end.Status, end.Message, end.Progress)
		}
		created += num(end.Result["created"])
	}
	list, err := e.svc.ListContainerImages(as(adminID), imaged.ContainerImageQuery{Limit: 100}, "")
	if err != nil || len(list) != 20 || created != 20 {
		t.Fatalf("%d images, %d created (want 20, 20): %v", len(list), created, err)
	}
}
