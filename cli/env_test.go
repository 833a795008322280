package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged/agentapi"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/bgtask"
	blobfs "github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/cli"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/nativeapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// Tokens of the test personas.
const (
	adminToken  = "admin-secret-token"
	readerToken = "reader-secret-token"
)

const tokensYAML = `tokens:
  - token: "admin-secret-token"
    user_id: admin
    project_id: admin
    roles: [admin, member, reader]
  - token: "reader-secret-token"
    user_id: rita
    project_id: projA
    roles: [reader]
`

// server is a whole imaged (Glance API + native API + agents API) over
// a SQLite file and a blob directory, wired as cmd/imaged's serve does,
// served on loopback.
type server struct {
	URL string
	srv *httptest.Server
}

// middleware, when set, wraps the imaged handler (to cut or corrupt
// answers).
type middleware func(http.Handler) http.Handler

func newServer(t *testing.T, wrap middleware) *server {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	tokPath := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokPath, []byte(tokensYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewTokenFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Secure()
	blobs, err := blobfs.New(filepath.Join(dir, "images"), blobfs.WithBufferSize(0))
	if err != nil {
		t.Fatal(err)
	}
	images := catalog.New(store, pol, catalog.DefaultConfig()).WithBlobStore(blobs).WithLogger(log)
	glance := glanceapi.New(glanceapi.Config{Images: images, Auth: authn, Logger: log})
	tasks := bgtask.New(bgtask.Config{Store: store, Logger: log, PollInterval: 20 * time.Millisecond})
	csvc, err := containers.New(containers.Config{Store: store, Images: store, Tasks: tasks,
		Registry: registry.New(registry.Options{Logger: log}), Policy: pol, Logger: log,
		ScanConcurrency: 4, DefaultNamespace: "lablup", SecretKey: []byte("cli-test-secret-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	asvc, err := agents.New(agents.Config{Store: store, Resolver: csvc, Catalog: store, Tasks: tasks,
		Policy: pol, Logger: log, AgentTimeout: 2 * time.Second, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	agentsHTTP := agentapi.New(agentapi.Config{Agents: asvc, Auth: authn, Logger: log})
	api := nativeapi.New(nativeapi.Config{Containers: csvc, Agents: asvc, Auth: authn, Logger: log,
		OpenAPIFragments: [][]byte{agentapi.OpenAPI()}})
	mux := http.NewServeMux()
	mux.Handle(nativeapi.Prefix+"/agents", agentsHTTP)
	mux.Handle(nativeapi.Prefix+"/agents/", agentsHTTP)
	mux.Handle(nativeapi.Prefix+"/", api)
	// As cmd/imaged's withNative: /api/v1 to the native API, the rest
	// to Glance.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == nativeapi.Prefix || strings.HasPrefix(r.URL.Path, nativeapi.Prefix+"/") {
			mux.ServeHTTP(w, r)
			return
		}
		glance.ServeHTTP(w, r)
	})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tasks.Close(cctx)
		images.Close(cctx)
		store.Close()
	})
	return &server{URL: srv.URL, srv: srv}
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// syncBuffer is written by the CLI's goroutines (progress from the
// transport) and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs the CLI against s as the admin (env IMAGED_URL/IMAGED_TOKEN).
func (s *server) run(t *testing.T, args ...string) result {
	t.Helper()
	return s.runEnv(t, context.Background(), map[string]string{"IMAGED_TOKEN": adminToken}, args...)
}

func (s *server) runEnv(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	e := map[string]string{"IMAGED_URL": ""}
	if s != nil {
		e["IMAGED_URL"] = s.URL
	}
	for k, v := range env {
		e[k] = v
	}
	var out, errb syncBuffer
	code := cli.RunEnv(ctx, args, cli.Env{Getenv: func(k string) string { return e[k] }, Stdout: &out, Stderr: &errb})
	return result{code, out.String(), errb.String()}
}

// ok fails unless the run exited 0.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// json decodes stdout.
func (r result) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
}
