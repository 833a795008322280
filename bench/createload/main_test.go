package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// imageSink is a loopback HTTP server that answers POST /v2/images the way
// the Image API does (201 and the image with an id), counts TCP connections
// and keeps every request body, so that tests see what the load generator
// really sent and over how many connections.
type imageSink struct {
	srv    *httptest.Server
	conns  atomic.Int64
	mu     sync.Mutex
	bodies []map[string]any
	tokens map[string]int
	failAt int // answer the failAt-th request (1-based) with a 400; 0 = never
}

func newImageSink(t *testing.T, failAt int) *imageSink {
	t.Helper()
	s := &imageSink{tokens: map[string]int{}, failAt: failAt}
	var n atomic.Int64
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/images" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		i := n.Add(1)
		s.mu.Lock()
		s.bodies = append(s.bodies, m)
		s.tokens[r.Header.Get("X-Auth-Token")]++
		s.mu.Unlock()
		if int(i) == s.failAt {
			http.Error(w, `{"message":"bad"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"00000000-0000-4000-8000-%012d","name":%q}`, i, m["name"])
	}))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		count       int
		conns       int
		failAt      int
		wantCreated int
		wantErrors  int
	}{
		{name: "one keep-alive connection", count: 120, conns: 1, wantCreated: 120},
		{name: "four connections", count: 200, conns: 4, wantCreated: 200},
		{name: "a failed create is counted, not fatal", count: 30, conns: 1, failAt: 7, wantCreated: 29, wantErrors: 1},
		{name: "nothing to do", count: 0, conns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newImageSink(t, tt.failAt)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := run(ctx, config{URL: s.srv.URL + "/", Token: "tok", Count: tt.count, Conns: tt.conns, Prefix: "x", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Created != tt.wantCreated || res.Errors != tt.wantErrors {
				t.Fatalf("created %d errors %d, want %d and %d (%v)", res.Created, res.Errors, tt.wantCreated, tt.wantErrors, res.FirstErrors)
			}
			if got := s.conns.Load(); got > int64(tt.conns) {
				t.Errorf("server saw %d TCP connections, want at most %d (keep-alive lost)", got, tt.conns)
			}
			if res.Connections != s.conns.Load() {
				t.Errorf("client counted %d connections, server %d", res.Connections, s.conns.Load())
			}
			if len(s.bodies) != tt.count || s.tokens["tok"] != tt.count {
				t.Errorf("server got %d bodies, %d with the token; want %d", len(s.bodies), s.tokens["tok"], tt.count)
			}
			ids := 0
			seen := map[string]bool{}
			for _, id := range res.ids {
				if id != "" {
					ids++
					if seen[id] {
						t.Errorf("id %s recorded twice", id)
					}
					seen[id] = true
				}
			}
			if ids != tt.wantCreated {
				t.Errorf("%d ids recorded, want %d", ids, tt.wantCreated)
			}
			if tt.count > 0 && (res.CreatesPerS <= 0 || res.P50ms <= 0 || res.P99ms < res.P50ms) {
				t.Errorf("implausible stats: %+v", res)
			}
		})
	}
}

func TestBodyNamesRepeatEvery50(t *testing.T) {
	t.Parallel()
	tests := []struct {
		i    int
		name string
		vis  string
		disk string
	}{
		{0, "bench-00", "public", "raw"},
		{7, "bench-07", "community", "qcow2"},
		{57, "bench-07", "private", "raw"},
		{149, "bench-49", "private", "iso"},
	}
	for _, tt := range tests {
		var m map[string]any
		if err := json.Unmarshal(body("bench", tt.i), &m); err != nil {
			t.Fatal(err)
		}
		if m["name"] != tt.name || m["visibility"] != tt.vis || m["disk_format"] != tt.disk {
			t.Errorf("body(%d) = %v, want name %s visibility %s disk_format %s", tt.i, m, tt.name, tt.vis, tt.disk)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(xs ...int) []time.Duration {
		var d []time.Duration
		for _, x := range xs {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		xs   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(5), 99, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 10, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.xs, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
		}
	}
}
