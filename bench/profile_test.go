// Package bench holds the side-by-side benchmark against Glance (bench.sh,
// createload/) and, in this file, Go benchmarks of the same workload run
// in-process through the real handler stack (glanceapi, catalog, policy,
// auth, sqlstore on a SQLite file), so that a CPU profile shows where
// imaged spends its time without the noise of wrk and the network:
//
//	go test ./bench -run '^$' -bench . -cpuprofile /tmp/cpu.out
//	go tool pprof -top bench.test /tmp/cpu.out
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
)

const benchToken = "bench:benchproj:admin"

// server is imaged wired as cmd/imaged wires it (legacy policy, tokens
// file), without the listener.
type server struct {
	h   http.Handler
	ids []string
}

// newServer opens a fresh SQLite database in a temporary directory and
// creates n images with the same bodies bench.sh sends (createload's mix).
func newServer(tb testing.TB, n int) *server {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	err := os.WriteFile(tokens, []byte("tokens:\n  - {token: \""+benchToken+"\", user_id: bench, project_id: benchproj, roles: [admin, member, reader]}\n"), 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	authn, err := auth.NewTokenFile(tokens)
	if err != nil {
		tb.Fatal(err)
	}
	pol, err := policy.ByName("legacy")
	if err != nil {
		tb.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	h := glanceapi.New(glanceapi.Config{
		Images: catalog.New(store, pol, catalog.DefaultConfig()),
		Auth:   authn,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	s := &server{h: h}
	for i := range n {
		rec := s.do(http.MethodPost, "/v2/images", createBody(i))
		if rec.Code != http.StatusCreated {
			tb.Fatalf("create %d: HTTP %d %s", i, rec.Code, rec.Body)
		}
		var img struct{ ID string }
		if err := json.Unmarshal(rec.Body.Bytes(), &img); err != nil {
			tb.Fatal(err)
		}
		s.ids = append(s.ids, img.ID)
	}
	return s
}

// createBody mirrors createload's body (kept in step by hand: createload is
// a main package and cannot be imported).
func createBody(i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"name":             fmt.Sprintf("bench-%02d", i%50),
		"disk_format":      [...]string{"raw", "qcow2", "iso"}[i%3],
		"container_format": "bare",
		"visibility":       [...]string{"public", "private", "shared", "community"}[i%4],
		"tags":             []string{"bench", "group-" + strconv.Itoa(i%10)},
		"min_ram":          i % 7,
		"os_distro":        [...]string{"ubuntu", "debian", "cirros"}[i%3],
		"hw_disk_bus":      "virtio",
		"bench_index":      strconv.Itoa(i),
	})
	return b
}

func (s *server) do(method, target string, body []byte) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Header.Set("X-Auth-Token", benchToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// The read workloads of bench.sh.
const (
	listPath   = "/v2/images?limit=20"
	filterPath = "/v2/images?name=bench-07&status=queued&sort=name:asc"
)

// TestWorkload checks that the endpoints bench.sh measures answer what the
// benchmark assumes (so a fast wrong answer cannot pass for a fast one).
func TestWorkload(t *testing.T) {
	t.Parallel()
	s := newServer(t, 150)
	tests := []struct {
		name   string
		target string
		want   int // images in the answer
	}{
		{"list", listPath, 20},
		{"filter: bench-07 is images 7, 57 and 107", filterPath, 3},
		{"show", "/v2/images/" + s.ids[0], 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(http.MethodGet, tt.target, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			var page struct {
				Images []struct{ Name, Status string }
				ID     string
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
				t.Fatal(err)
			}
			got := len(page.Images)
			if page.ID != "" {
				got = 1
			}
			if got != tt.want {
				t.Fatalf("%d images, want %d", got, tt.want)
			}
			for _, img := range page.Images {
				if tt.target == filterPath && (img.Name != "bench-07" || img.Status != "queued") {
					t.Errorf("filter returned %+v", img)
				}
			}
		})
	}
}

func benchGet(b *testing.B, target func(s *server) string) {
	s := newServer(b, 1000)
	path := target(s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if rec := s.do(http.MethodGet, path, nil); rec.Code != http.StatusOK {
			b.Fatalf("HTTP %d", rec.Code)
		}
	}
}

func BenchmarkList20(b *testing.B) { benchGet(b, func(*server) string { return listPath }) }
func BenchmarkShow(b *testing.B) {
	benchGet(b, func(s *server) string { return "/v2/images/" + s.ids[0] })
}
func BenchmarkFilter(b *testing.B) { benchGet(b, func(*server) string { return filterPath }) }

func BenchmarkCreate(b *testing.B) {
	s := newServer(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if rec := s.do(http.MethodPost, "/v2/images", createBody(i)); rec.Code != http.StatusCreated {
			b.Fatalf("HTTP %d", rec.Code)
		}
		i++
	}
}
