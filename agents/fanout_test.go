package agents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// fixedResolver resolves every name to one image: the fan-out benchmark
// measures the agents' side, not the catalog.
type fixedResolver struct{ img *imaged.ContainerImage }

func (f fixedResolver) ResolveContainerImage(context.Context, string, string) (*imaged.ContainerImage, error) {
	return f.img, nil
}

// fleet is n simulated agents (in-process HTTP servers speaking the agent
// API): every tenth has a closed port, every hundredth hangs.
type fleet struct {
	svc     *agents.Service
	tasks   *bgtask.Manager
	store   *sqlstore.Store
	keys    []imaged.AgentImagesKey
	closed  int
	hanging int
	// lastServed is when a healthy agent last answered (unix ns): the
	// fan-out's drain time without the hanging agents.
	lastServed atomic.Int64
}

const fleetRef = "127.0.0.1:5000/bai/python:3.9"

func newFleet(tb testing.TB, n int, timeout time.Duration) *fleet {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	release := make(chan struct{})
	f := &fleet{store: st}
	purge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req agent.PurgeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad", 400)
			return
		}
		res := make([]agent.PurgeResult, len(req.Images))
		for i, im := range req.Images {
			res[i] = agent.PurgeResult{Reference: im.Reference, Architecture: im.Architecture, Purged: true, BytesFreed: 1000}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"results": res})
		f.lastServed.Store(time.Now().UnixNano())
	})
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	tokens := map[string]string{}
	now := time.Now()
	var addrs []string
	for i := range n {
		id := fmt.Sprintf("agent-%04d", i)
		tokens[id] = imaged.AgentTokenDigest("token-" + id)
		var addr string
		switch {
		case i%100 == 50:
			srv := httptest.NewServer(hang)
			tb.Cleanup(srv.Close)
			addr = srv.URL
			f.hanging++
		case i%10 == 5:
			addr = "" // a closed port, picked once every server listens
			f.closed++
		default:
			srv := httptest.NewServer(purge)
			tb.Cleanup(srv.Close)
			addr = srv.URL
		}
		addrs = append(addrs, addr)
	}
	for i, addr := range addrs {
		id := fmt.Sprintf("agent-%04d", i)
		if addr == "" {
			// Closed after every server of the fleet took its port, so
			// that none of them reuses it: connection refused.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				tb.Fatal(err)
			}
			addr = "http://" + ln.Addr().String()
			ln.Close()
		}
		if err := st.UpsertAgent(ctx, &imaged.Agent{ID: id, Addr: addr, Runtime: "dir", HeartbeatInterval: time.Hour, LastHeartbeat: now,
			Images: []imaged.AgentImage{{Reference: fleetRef, Architecture: "x86_64", Size: 1000}}}); err != nil {
			tb.Fatal(err)
		}
		f.keys = append(f.keys, imaged.AgentImagesKey{AgentID: id, Images: []imaged.AgentImageName{{Name: fleetRef, Architecture: "x86_64"}}})
	}
	// Registered last so that it runs first: the hanging handlers return
	// before their servers' Close waits for them.
	tb.Cleanup(func() { close(release) })
	f.tasks = bgtask.New(bgtask.Config{Store: st})
	tb.Cleanup(func() { f.tasks.Close(context.Background()) })
	f.svc, err = agents.New(agents.Config{Store: st, Resolver: fixedResolver{&imaged.ContainerImage{Reference: fleetRef, Architecture: "x86_64"}},
		Catalog: st, Tasks: f.tasks, Policy: policy.Secure(), Tokens: tokens, AgentTimeout: timeout})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// purge runs one purge of every agent and checks its result.
func (f *fleet) purge(tb testing.TB) (time.Duration, taskResult) {
	tb.Helper()
	start := time.Now()
	task, err := f.svc.PurgeImages(as(adminID), imaged.AgentImagesRequest{Keys: f.keys})
	if err != nil {
		tb.Fatal(err)
	}
	f.tasks.Wait()
	took := time.Since(start)
	t, err := f.store.GetTask(context.Background(), task.ID)
	if err != nil {
		tb.Fatal(err)
	}
	if t.Status != imaged.TaskSuccess {
		tb.Fatalf("task %s: %s", t.Status, t.Message)
	}
	var res taskResult
	b, _ := json.Marshal(t.Result)
	if err := json.Unmarshal(b, &res); err != nil {
		tb.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range res.Errors {
		reasons[e.Reason]++
	}
	n := len(f.keys)
	if len(res.Purged) != n || reasons["unreachable"] != f.closed || reasons["timeout"] != f.hanging || len(res.Errors) != f.closed+f.hanging {
		tb.Fatalf("%d agents: %d results, errors by reason %v (want %d unreachable, %d timeout)", n, len(res.Purged), reasons, f.closed, f.hanging)
	}
	if want := int64(n-f.closed-f.hanging) * 1000; res.BytesFreed != want {
		tb.Fatalf("bytes_freed %d, want %d", res.BytesFreed, want)
	}
	return took, res
}

// peakHeap samples the heap while fn runs.
func peakHeap(fn func()) uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak.Load()
}

// TestFanOutIsBoundedByTheTimeout: 200 agents, 10% closed ports, 1%
// hanging; the purge ends about one agent timeout after it starts.
func TestFanOutIsBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	f := newFleet(t, 200, timeout)
	took, res := f.purge(t)
	if took > timeout+3*time.Second {
		t.Fatalf("purge of 200 agents took %s with a %s agent timeout", took, timeout)
	}
	// The inventory lost the image on the agents that purged it only.
	holding, err := f.store.AgentsHolding(context.Background(), []imaged.AgentImageKey{{Reference: fleetRef, Architecture: "x86_64"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(holding[imaged.AgentImageKey{Reference: fleetRef, Architecture: "x86_64"}]); got != f.closed+f.hanging {
		t.Fatalf("%d agents still hold the image, want %d (the failed ones)", got, f.closed+f.hanging)
	}
	_ = res
}

// BenchmarkFanOut1000: 1,000 simulated agents, 10% offline (closed
// ports), 1% hanging, a 2 s agent timeout.
func BenchmarkFanOut1000(b *testing.B) {
	const timeout = 2 * time.Second
	f := newFleet(b, 1000, timeout)
	b.ResetTimer()
	var worst, drain time.Duration
	peak := peakHeap(func() {
		for range b.N {
			start := time.Now()
			took, _ := f.purge(b)
			worst = max(worst, took)
			drain = max(drain, time.Unix(0, f.lastServed.Load()).Sub(start))
		}
	})
	b.StopTimer()
	if worst > timeout+3*time.Second {
		b.Fatalf("a purge of 1000 agents took %s with a %s agent timeout", worst, timeout)
	}
	b.ReportMetric(worst.Seconds(), "worst-s")
	b.ReportMetric(drain.Seconds(), "healthy-drained-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
