package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// RunAgents runs the conformance suite of imaged.AgentStore. open must
// return a fresh, empty store; the suite does not close it.
func RunAgents(t *testing.T, open func(t *testing.T) imaged.AgentStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s imaged.AgentStore)
	}{
		{"Tokens", testAgentTokens},
		{"UpsertAndInventory", testAgentUpsert},
		{"UpdateImages", testAgentUpdateImages},
		{"Holding", testAgentsHolding},
		{"ConcurrentHeartbeats", testAgentConcurrentHeartbeats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func testAgentTokens(t *testing.T, s imaged.AgentStore) {
	ctx := context.Background()
	_, err := s.GetAgentToken(ctx, "n1")
	wantCode(t, err, imaged.ENOTFOUND)
	wantCode(t, s.PutAgentToken(ctx, "", "d"), imaged.EINVALID)
	for _, d := range []string{"aaaa", "bbbb"} { // the second replaces the first
		if err := s.PutAgentToken(ctx, "n1", d); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAgentToken(ctx, "n1"); err != nil || got != d {
			t.Fatalf("GetAgentToken = %q, %v; want %q", got, err, d)
		}
	}
}

func agentImg(ref, arch string, size int64) imaged.AgentImage {
	return imaged.AgentImage{Reference: ref, Architecture: arch, Digest: "sha256:" + fmt.Sprintf("%064x", size), Size: size}
}

func testAgentUpsert(t *testing.T, s imaged.AgentStore) {
	ctx := context.Background()
	_, err := s.GetAgent(ctx, "n1")
	wantCode(t, err, imaged.ENOTFOUND)
	t0 := base
	a := &imaged.Agent{ID: "n1", Addr: "http://127.0.0.1:1", Runtime: "dir", Version: "v1", HeartbeatInterval: 10 * time.Second,
		LastHeartbeat: t0, Images: []imaged.AgentImage{agentImg("r/b:1", "x86_64", 20), agentImg("r/a:1", "aarch64", 10), agentImg("r/a:1", "x86_64", 5)}}
	if err := s.UpsertAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAgent(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	want := &imaged.Agent{ID: "n1", Addr: a.Addr, Runtime: "dir", Version: "v1", HeartbeatInterval: 10 * time.Second,
		RegisteredAt: t0, LastHeartbeat: t0, ImageCount: 3, ImagesSize: 35,
		Images: []imaged.AgentImage{agentImg("r/a:1", "aarch64", 10), agentImg("r/a:1", "x86_64", 5), agentImg("r/b:1", "x86_64", 20)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetAgent\n got %+v\nwant %+v", got, want)
	}
	// A heartbeat without inventory keeps it and the registration time.
	t1 := t0.Add(time.Minute)
	if err := s.UpsertAgent(ctx, &imaged.Agent{ID: "n1", Addr: "http://127.0.0.1:2", Runtime: "docker", Version: "v2",
		HeartbeatInterval: time.Second, LastHeartbeat: t1}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAgent(ctx, "n1")
	if got.Addr != "http://127.0.0.1:2" || got.Runtime != "docker" || !got.RegisteredAt.Equal(t0) || !got.LastHeartbeat.Equal(t1) ||
		got.HeartbeatInterval != time.Second || got.ImageCount != 3 {
		t.Fatalf("after heartbeat: %+v", got)
	}
	// An empty (non-nil) inventory clears it.
	if err := s.UpsertAgent(ctx, &imaged.Agent{ID: "n1", LastHeartbeat: t1, Images: []imaged.AgentImage{}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAgent(ctx, "n1")
	if len(got.Images) != 0 || got.ImageCount != 0 {
		t.Fatalf("inventory not cleared: %+v", got.Images)
	}
	if err := s.UpsertAgent(ctx, &imaged.Agent{ID: "m0", LastHeartbeat: t1, Images: []imaged.AgentImage{agentImg("x:1", "x86_64", 7)}}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "m0" || list[1].ID != "n1" || list[0].ImageCount != 1 || list[0].ImagesSize != 7 || list[1].ImageCount != 0 {
		t.Fatalf("ListAgents = %+v %+v", list[0], list[1])
	}
}

func testAgentUpdateImages(t *testing.T, s imaged.AgentStore) {
	ctx := context.Background()
	if err := s.UpsertAgent(ctx, &imaged.Agent{ID: "n1", LastHeartbeat: base,
		Images: []imaged.AgentImage{agentImg("a:1", "x86_64", 1), agentImg("b:1", "x86_64", 2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertAgent(ctx, &imaged.Agent{ID: "n2", LastHeartbeat: base, Images: []imaged.AgentImage{agentImg("a:1", "x86_64", 1)}}); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateAgentImages(ctx,
		imaged.AgentImagesUpdate{AgentID: "n1",
			Remove: []imaged.AgentImageKey{{Reference: "a:1", Architecture: "x86_64"}, {Reference: "absent:1", Architecture: "x86_64"}},
			Add:    []imaged.AgentImage{agentImg("c:1", "aarch64", 3), agentImg("b:1", "x86_64", 9)}},
		imaged.AgentImagesUpdate{AgentID: "ghost", Add: []imaged.AgentImage{agentImg("g:1", "x86_64", 1)}}, // skipped
		imaged.AgentImagesUpdate{AgentID: "n2", Remove: []imaged.AgentImageKey{{Reference: "a:1", Architecture: "x86_64"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetAgent(ctx, "n1")
	want := []imaged.AgentImage{agentImg("b:1", "x86_64", 9), agentImg("c:1", "aarch64", 3)}
	if !reflect.DeepEqual(got.Images, want) {
		t.Fatalf("inventory = %+v, want %+v", got.Images, want)
	}
	if got, _ := s.GetAgent(ctx, "n2"); len(got.Images) != 0 {
		t.Fatalf("n2 inventory = %+v, want empty", got.Images)
	}
	if _, err := s.GetAgent(ctx, "ghost"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("an edit of an unknown agent created it: %v", err)
	}
	if err := s.UpdateAgentImages(ctx); err != nil {
		t.Fatal(err)
	}
}

func testAgentsHolding(t *testing.T, s imaged.AgentStore) {
	ctx := context.Background()
	for _, a := range []struct {
		id   string
		imgs []imaged.AgentImage
	}{
		{"n2", []imaged.AgentImage{agentImg("a:1", "x86_64", 1)}},
		{"n1", []imaged.AgentImage{agentImg("a:1", "x86_64", 1), agentImg("a:1", "aarch64", 1)}},
		{"n3", nil},
	} {
		if err := s.UpsertAgent(ctx, &imaged.Agent{ID: a.id, LastHeartbeat: base, Images: a.imgs}); err != nil {
			t.Fatal(err)
		}
	}
	x86, arm, none := imaged.AgentImageKey{Reference: "a:1", Architecture: "x86_64"},
		imaged.AgentImageKey{Reference: "a:1", Architecture: "aarch64"}, imaged.AgentImageKey{Reference: "z:1", Architecture: "x86_64"}
	got, err := s.AgentsHolding(ctx, []imaged.AgentImageKey{x86, arm, none, x86})
	if err != nil {
		t.Fatal(err)
	}
	want := map[imaged.AgentImageKey][]string{x86: {"n1", "n2"}, arm: {"n1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AgentsHolding = %v, want %v", got, want)
	}
}

// testAgentConcurrentHeartbeats replaces one agent's inventory from many
// goroutines at once: each must succeed and the result must be one of the
// inventories written, whole.
func testAgentConcurrentHeartbeats(t *testing.T, s imaged.AgentStore) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs := []imaged.AgentImage{agentImg("shared:1", "x86_64", int64(i)), agentImg(fmt.Sprintf("own%d:1", i), "x86_64", int64(i))}
			errs <- s.UpsertAgent(ctx, &imaged.Agent{ID: "n1", LastHeartbeat: base.Add(time.Duration(i) * time.Second), Images: imgs})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetAgent(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Images) != 2 || got.Images[1].Reference != "shared:1" || got.Images[0].Size != got.Images[1].Size {
		t.Fatalf("inventory is a mix of heartbeats: %+v", got.Images)
	}
}
