package agents_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent/runtimetest"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/policy"
)

// TestPurgeAndPreloadWithRealAgents drives three real `imaged agent`
// processes (dir runtimes) through preload, purge by alias, partial
// holdings, inventory correction and a killed agent.
func TestPurgeAndPreloadWithRealAgents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{agentTimeout: 5 * time.Second})
	py := e.pushScan("bai/python", "3.9")
	tool := e.pushScan("bai/tool", "1")
	if _, err := e.csvc.PutAlias(as(adminID), "python", imaged.AliasTarget{ImageID: py.ID}); err != nil {
		t.Fatal(err)
	}
	hb := 300 * time.Millisecond
	n1, _, n3 := e.startAgent("n1", hb), e.startAgent("n2", hb), e.startAgent("n3", hb)
	_ = n1

	// Preload python on n1..n3, tool on n1 only.
	id := e.startFanOut("preload-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{
		{AgentID: "n1", Images: []imaged.AgentImageName{{Name: py.Reference, Architecture: "x86_64"}, {Name: tool.Reference, Architecture: "amd64"}}},
		{AgentID: "n2", Images: img("python")},
		{AgentID: "n3", Images: img(py.Reference)},
	}})
	task, res := e.waitTask(id)
	if task.Type != imaged.TaskTypeAgentPreload || len(res.Errors) != 0 || len(res.Preloaded) != 3 {
		t.Fatalf("preload: type %s errors %+v preloaded %+v", task.Type, res.Errors, res.Preloaded)
	}
	if n := len(res.Preloaded[0].Images); n != 2 || res.Preloaded[0].AgentID != "n1" {
		t.Fatalf("n1 preloaded %+v", res.Preloaded[0])
	}
	if task.Progress.Done != 3 || task.Progress.Total != 3 {
		t.Fatalf("progress %+v", task.Progress)
	}
	installed, err := e.svc.InstalledAgents(as(memberID), []string{py.ID, tool.ID, "no-such-id"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(installed[py.ID], []string{"n1", "n2", "n3"}) || !slices.Equal(installed[tool.ID], []string{"n1"}) || len(installed) != 2 {
		t.Fatalf("installed agents = %v", installed)
	}

	t.Run("ListAndShow", func(t *testing.T) {
		status, raw := e.call(http.MethodGet, "/api/v1/agents", "admin-token", nil)
		var list struct {
			Agents []struct {
				ID         string `json:"id"`
				Status     string `json:"status"`
				Runtime    string `json:"runtime"`
				ImageCount int    `json:"image_count"`
				ImagesSize int64  `json:"images_size"`
			} `json:"agents"`
			Online int `json:"online"`
		}
		if status != 200 || json.Unmarshal(raw, &list) != nil || len(list.Agents) != 3 || list.Online != 3 {
			t.Fatalf("GET /agents = %d %s", status, raw)
		}
		if a := list.Agents[0]; a.ID != "n1" || a.Status != "online" || a.Runtime != "dir" || a.ImageCount != 2 || a.ImagesSize <= 0 {
			t.Fatalf("n1 = %+v", a)
		}
		status, raw = e.call(http.MethodGet, "/api/v1/agents/n1", "admin-token", nil)
		if status != 200 || !strings.Contains(string(raw), py.Reference) || !strings.Contains(string(raw), tool.Reference) {
			t.Fatalf("GET /agents/n1 = %d %s", status, raw)
		}
		if status, raw := e.call(http.MethodGet, "/api/v1/agents/nope", "admin-token", nil); status != 404 || !strings.Contains(string(raw), `"code":"not_found"`) {
			t.Fatalf("GET unknown agent = %d %s", status, raw)
		}
	})

	// Purge python by alias on n1 and n2 and on n4 (registered, holds
	// nothing: not present) — n3 keeps it.
	e.fakeAgentReal(t, "n4")
	id = e.startFanOut("purge-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{
		{AgentID: "n1", Images: img("python")},
		{AgentID: "n2", Images: img("python")},
		{AgentID: "n4", Images: img("python")},
	}})
	task, res = e.waitTask(id)
	if task.Type != imaged.TaskTypeAgentPurge || len(res.Purged) != 3 {
		t.Fatalf("purge: %+v", res)
	}
	for i, want := range []string{"n1", "n2", "n4"} {
		if res.Purged[i].AgentID != want {
			t.Fatalf("per-agent results out of order: %+v", res.Purged)
		}
	}
	for _, p := range res.Purged[:2] {
		if len(p.Images) != 1 || p.Images[0].Reference != py.Reference || p.BytesFreed <= 0 {
			t.Fatalf("%s purged %+v", p.AgentID, p)
		}
	}
	if res.BytesFreed != res.Purged[0].BytesFreed+res.Purged[1].BytesFreed {
		t.Fatalf("bytes_freed %d is not the sum of the agents'", res.BytesFreed)
	}
	if errs := res.errorsOf("n4"); len(errs) != 1 || errs[0].Reason != "not_present" || errs[0].Image != "python" || errs[0].Reference != py.Reference {
		t.Fatalf("n4 errors = %+v (all: %+v)", errs, res.Errors)
	}
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %+v", res.Errors)
	}
	// The inventory is right at once, before the agents' next heartbeat.
	installed, _ = e.svc.InstalledAgents(as(memberID), []string{py.ID})
	if !slices.Equal(installed[py.ID], []string{"n3"}) {
		t.Fatalf("after purge installed = %v", installed)
	}
	// And the agents' own heartbeats agree.
	time.Sleep(2 * hb)
	installed, _ = e.svc.InstalledAgents(as(memberID), []string{py.ID, tool.ID})
	if !slices.Equal(installed[py.ID], []string{"n3"}) || !slices.Equal(installed[tool.ID], []string{"n1"}) {
		t.Fatalf("after heartbeats installed = %v", installed)
	}

	t.Run("UnknownImageIsReported", func(t *testing.T) {
		id := e.startFanOut("purge-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{
			{AgentID: "n1", Images: []imaged.AgentImageName{{Name: "no-such-alias", Architecture: "x86_64"}, {Name: tool.Reference, Architecture: "x86_64"}}},
		}})
		_, res := e.waitTask(id)
		if len(res.Purged) != 1 || len(res.Purged[0].Images) != 1 || res.Purged[0].Images[0].Reference != tool.Reference {
			t.Fatalf("purged %+v", res.Purged)
		}
		if len(res.Errors) != 1 || res.Errors[0].Reason != "unknown_image" || res.Errors[0].Image != "no-such-alias" {
			t.Fatalf("errors %+v", res.Errors)
		}
	})

	t.Run("AgentKilledMidPurge", func(t *testing.T) {
		// One agent at a time, a hanging agent first: n3 is killed while
		// the purge waits on the hanging one, before n3's turn.
		tokens := map[string]string{"hang": imaged.AgentTokenDigest("hang-token-0123456789")}
		for id, d := range e.digests {
			tokens[id] = d
		}
		serial, err := agents.New(agents.Config{Store: e.store, Resolver: e.csvc, Catalog: e.store, Tasks: e.tasks,
			Policy: policy.Secure(), Tokens: tokens, Concurrency: 1, AgentTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		reached := make(chan struct{}, 1)
		release := make(chan struct{})
		e.fakeAgent("hang", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(func() { close(release) })
		task, err := serial.PurgeImages(as(adminID), imaged.AgentImagesRequest{Force: true, Keys: []imaged.AgentImagesKey{
			{AgentID: "hang", Images: img("python")},
			{AgentID: "n3", Images: img("python")},
			{AgentID: "n2", Images: img("python")},
			{AgentID: "ghost", Images: img("python")},
		}})
		if err != nil {
			t.Fatal(err)
		}
		<-reached
		n3.kill()
		_, res := e.waitTask(task.ID)
		if len(res.Purged) != 4 {
			t.Fatalf("per-agent results missing: %+v", res.Purged)
		}
		if errs := res.errorsOf("hang"); len(errs) != 1 || errs[0].Reason != "timeout" {
			t.Fatalf("hanging agent's errors = %+v", errs)
		}
		// Unreachable (connection refused); offline only if the machine is
		// so slow that three heartbeats passed since the kill.
		if errs := res.errorsOf("n3"); len(errs) != 1 || (errs[0].Reason != "unreachable" && errs[0].Reason != "offline") ||
			errs[0].Image != "" || !strings.Contains(errs[0].Message, "agent") {
			t.Fatalf("killed agent's errors = %+v", errs)
		} else {
			t.Logf("killed agent: %s: %s", errs[0].Reason, errs[0].Message)
		}
		if errs := res.errorsOf("n2"); len(errs) != 1 || errs[0].Reason != "not_present" {
			t.Fatalf("n2 errors = %+v", errs)
		}
		if errs := res.errorsOf("ghost"); len(errs) != 1 || errs[0].Reason != "unknown_agent" {
			t.Fatalf("ghost errors = %+v", errs)
		}
		// Missing heartbeats make it offline.
		time.Sleep(4 * hb)
		a, err := e.svc.GetAgent(as(adminID), "n3")
		if err != nil || a.Status != imaged.AgentOffline {
			t.Fatalf("killed agent: %+v %v", a, err)
		}
	})

	t.Run("Audited", func(t *testing.T) {
		entries, err := e.store.ListAudit(context.Background(), imaged.AuditQuery{Action: "agents.*", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		starts := 0
		for _, en := range entries {
			if (en.Action == "agents.purge" || en.Action == "agents.preload") && en.Result == "success" && en.UserID == "adm" && en.Target != "" {
				starts++
			}
		}
		if starts < 3 {
			t.Fatalf("audit has %d purge/preload starts: %+v", starts, entries)
		}
	})
}

// fakeAgentReal registers a real agent process without images.
func (e *env) fakeAgentReal(t *testing.T, id string) {
	t.Helper()
	e.startAgent(id, 300*time.Millisecond)
}

// TestHangingAndOfflineAgents checks that a hanging agent times out
// without holding up the others and that an offline agent is reported at
// once.
func TestHangingAndOfflineAgents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{agentTimeout: time.Second})
	py := e.pushScan("bai/python", "3.9")
	e.startAgent("n1", 300*time.Millisecond)
	release := make(chan struct{})
	e.fakeAgent("n2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the caller gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Registered after the fake's server, so it runs before that server's
	// Close, which waits for the hanging handler.
	t.Cleanup(func() { close(release) })
	e.fakeAgent("n3", http.NotFoundHandler())
	if err := e.store.UpsertAgent(context.Background(), &imaged.Agent{ID: "n3", Addr: "http://127.0.0.1:1", Runtime: "dir",
		HeartbeatInterval: time.Second, LastHeartbeat: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id := e.startFanOut("preload-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{
		{AgentID: "n2", Images: img(py.Reference)},
		{AgentID: "n3", Images: img(py.Reference)},
		{AgentID: "n1", Images: img(py.Reference)},
	}})
	_, res := e.waitTask(id)
	took := time.Since(start)
	if errs := res.errorsOf("n2"); len(errs) != 1 || errs[0].Reason != "timeout" || !strings.Contains(errs[0].Message, "n2") {
		t.Fatalf("hanging agent errors = %+v", errs)
	}
	if errs := res.errorsOf("n3"); len(errs) != 1 || errs[0].Reason != "offline" {
		t.Fatalf("offline agent errors = %+v", errs)
	}
	if len(res.errorsOf("n1")) != 0 || len(res.Preloaded) != 3 || len(res.Preloaded[2].Images) != 1 {
		t.Fatalf("the healthy agent did not preload: %+v %+v", res.Preloaded, res.Errors)
	}
	if took > 20*time.Second {
		t.Fatalf("the task took %s with a 1 s agent timeout", took)
	}
	status, raw := e.call(http.MethodGet, "/api/v1/agents", "admin-token", nil)
	if status != 200 || !strings.Contains(string(raw), `"id":"n3"`) || !strings.Contains(string(raw), `"status":"offline"`) {
		t.Fatalf("GET /agents = %d %s", status, raw)
	}
}

// TestPodmanAgent runs a real agent with the docker runtime against
// podman's Docker-compatible service: preload, purge by alias, purge of
// an image it no longer holds.
func TestPodmanAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{agentTimeout: time.Minute})
	host := runtimetest.StartPodman(t, e.reg.Host)
	py := e.pushScan("bai/python", "3.9")
	if _, err := e.csvc.PutAlias(as(adminID), "python", imaged.AliasTarget{ImageID: py.ID}); err != nil {
		t.Fatal(err)
	}
	e.startAgentWith("n1", 500*time.Millisecond, "--runtime", "docker", "--docker-host", host)
	_, res := e.waitTask(e.startFanOut("preload-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{{AgentID: "n1", Images: img("python")}}}))
	if len(res.Errors) != 0 || len(res.Preloaded) != 1 || len(res.Preloaded[0].Images) != 1 || res.Preloaded[0].Images[0].Size <= 0 {
		t.Fatalf("preload on podman: %+v", res)
	}
	// The agent's own heartbeat reports what podman holds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := e.svc.GetAgent(as(adminID), "n1")
		if err != nil {
			t.Fatal(err)
		}
		if a.Runtime == "docker" && len(a.Images) == 1 && a.Images[0].Reference == py.Reference && a.Images[0].Architecture == "x86_64" &&
			a.Images[0].Digest == py.Digest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman inventory never reported: %+v", a.Images)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, res = e.waitTask(e.startFanOut("purge-images", imaged.AgentImagesRequest{Force: true, Keys: []imaged.AgentImagesKey{{AgentID: "n1", Images: img("python")}}}))
	if len(res.Errors) != 0 || len(res.Purged) != 1 || len(res.Purged[0].Images) != 1 || res.BytesFreed <= 0 {
		t.Fatalf("purge on podman: %+v", res)
	}
	_, res = e.waitTask(e.startFanOut("purge-images", imaged.AgentImagesRequest{Keys: []imaged.AgentImagesKey{{AgentID: "n1", Images: img("python")}}}))
	if len(res.Errors) != 1 || res.Errors[0].Reason != "not_present" {
		t.Fatalf("second purge on podman: %+v", res)
	}
}
