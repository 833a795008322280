package agents_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agentapi"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// imagedBin is the imaged binary built once by TestMain; the agents of
// the tests are real `imaged agent` processes.
var imagedBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imaged-agents-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imagedBin = filepath.Join(dir, "imaged")
	out, err := exec.Command("go", "build", "-o", imagedBin, "github.com/imaged/imaged/cmd/imaged").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build imaged: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	adminID  = &imaged.Identity{UserID: "adm", ProjectID: "admins", Roles: []string{"admin", "member", "reader"}}
	memberID = &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}
)

func as(id *imaged.Identity) context.Context {
	return imaged.NewContextWithRequestID(imaged.NewContextWithIdentity(context.Background(), id), "req-test")
}

// env is the service side in-process (real SQLite, real registry,
// containers and agents services behind agentapi on loopback HTTP).
type env struct {
	t       *testing.T
	store   *sqlstore.Store
	reg     *registrytest.Server
	csvc    *containers.Service
	svc     *agents.Service
	tasks   *bgtask.Manager
	srv     *httptest.Server
	tokens  map[string]string // agent id → token
	digests map[string]string // agent id → token digest (the service's Tokens)
	dir     string
}

type envOpts struct {
	concurrency  int
	agentTimeout time.Duration
}

const agentCount = 4

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// One runner for both services, as cmd/imaged wires them.
	tasks := bgtask.New(bgtask.Config{Store: st, PollInterval: 50 * time.Millisecond})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tasks.Close(cctx)
	})
	csvc, err := containers.New(containers.Config{Store: st, Images: st, Tasks: tasks, Registry: registry.New(registry.Options{}),
		Policy: policy.Secure()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := csvc.CreateRegistry(as(adminID), &imaged.Registry{Name: "local", URL: reg.URL, Type: imaged.RegistryOCI,
		Projects: []string{"bai"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{t: t, store: st, reg: reg, csvc: csvc, tasks: tasks, tokens: map[string]string{}, dir: dir}
	var tf strings.Builder
	tf.WriteString("agents:\n")
	for i := 1; i <= agentCount; i++ {
		id := fmt.Sprintf("n%d", i)
		e.tokens[id] = fmt.Sprintf("token-of-agent-%s-0123456789", id)
		fmt.Fprintf(&tf, "  - id: %s\n    token: %q\n", id, e.tokens[id])
	}
	digests, err := agents.ParseTokens([]byte(tf.String()))
	if err != nil {
		t.Fatal(err)
	}
	e.digests = digests
	e.svc, err = agents.New(agents.Config{Store: st, Resolver: csvc, Catalog: st, Tasks: e.tasks, Policy: policy.Secure(),
		Tokens: digests, Concurrency: o.concurrency, AgentTimeout: o.agentTimeout})
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte(`tokens:
  - {token: admin-token, user_id: adm, project_id: admins, roles: [admin, member, reader]}
  - {token: member-token, user_id: alice, project_id: projA, roles: [member, reader]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewTokenFile(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(agentapi.New(agentapi.Config{Agents: e.svc, Auth: authn}))
	t.Cleanup(e.srv.Close)
	return e
}

// pushScan pushes a single-arch image and registers it in the catalog.
func (e *env) pushScan(repo, tag string) *imaged.ContainerImage {
	e.t.Helper()
	registrytest.PushImage(e.t, e.reg.Host, repo, tag, "amd64", map[string]string{imaged.LabelKernelspec: "1"})
	imgs, err := e.csvc.ScanImage(as(adminID), e.reg.Host+"/"+repo+":"+tag, "")
	if err != nil || len(imgs) != 1 {
		e.t.Fatalf("scan %s:%s: %v %v", repo, tag, imgs, err)
	}
	return imgs[0]
}

// proc is a running `imaged agent`.
type proc struct {
	id  string
	cmd *exec.Cmd
	out *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs `imaged agent` with its own dir runtime and waits until
// it registered.
func (e *env) startAgent(id string, heartbeat time.Duration) *proc {
	e.t.Helper()
	return e.startAgentWith(id, heartbeat, "--runtime", "dir", "--runtime-dir", filepath.Join(e.dir, id+"-cache"))
}

// startAgentWith runs `imaged agent` with the given runtime flags.
func (e *env) startAgentWith(id string, heartbeat time.Duration, runtimeArgs ...string) *proc {
	e.t.Helper()
	tokFile := filepath.Join(e.dir, id+".token")
	if err := os.WriteFile(tokFile, []byte(e.tokens[id]+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"agent", "--server", e.srv.URL, "--id", id, "--addr", "127.0.0.1:0",
		"--token-file", tokFile, "--heartbeat", heartbeat.String(), "--log-level", "debug"}, runtimeArgs...)
	cmd := exec.Command(imagedBin, args...)
	p := &proc{id: id, cmd: cmd, out: &lockedBuffer{}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write(append(sc.Bytes(), '\n'))
		}
	}()
	e.t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if a, err := e.store.GetAgent(context.Background(), id); err == nil && time.Since(a.LastHeartbeat) < 3*heartbeat {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("agent %s did not register; its output:\n%s", id, p.out.String())
	return nil
}

// kill stops the agent process (SIGKILL: no goodbye to the service).
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// call sends a request to the agent API of the service.
func (e *env) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// taskResult is the decoded result of a purge or preload task.
type taskResult struct {
	Purged []struct {
		AgentID    string                `json:"agent_id"`
		Images     []agents.ImageOutcome `json:"purged_images"`
		BytesFreed int64                 `json:"bytes_freed"`
	} `json:"purged_images"`
	Preloaded []struct {
		AgentID string                `json:"agent_id"`
		Images  []agents.ImageOutcome `json:"preloaded_images"`
	} `json:"preloaded_images"`
	Errors     []agents.ItemError `json:"errors"`
	BytesFreed int64              `json:"bytes_freed"`
}

// waitTask waits for a task's end and decodes its result.
func (e *env) waitTask(id string) (*imaged.Task, taskResult) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		t, err := e.store.GetTask(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if bgtask.Ended(t) {
			var res taskResult
			b, _ := json.Marshal(t.Result)
			if err := json.Unmarshal(b, &res); err != nil {
				e.t.Fatal(err)
			}
			if t.Status != imaged.TaskSuccess {
				e.t.Fatalf("task %s ended %s: %s", id, t.Status, t.Message)
			}
			return t, res
		}
		time.Sleep(30 * time.Millisecond)
	}
	e.t.Fatalf("task %s did not end", id)
	return nil, taskResult{}
}

// startFanOut posts a purge or preload as admin and returns its task id.
func (e *env) startFanOut(path string, req imaged.AgentImagesRequest) string {
	e.t.Helper()
	status, raw := e.call(http.MethodPost, "/api/v1/agents/"+path, "admin-token", req)
	if status != http.StatusAccepted {
		e.t.Fatalf("POST %s = %d %s", path, status, raw)
	}
	var task struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &task); err != nil || task.ID == "" {
		e.t.Fatalf("task answer %s: %v", raw, err)
	}
	return task.ID
}

func img(name string) []imaged.AgentImageName {
	return []imaged.AgentImageName{{Name: name, Architecture: "x86_64"}}
}

// errorsOf returns the errors of one agent.
func (r taskResult) errorsOf(agentID string) []agents.ItemError {
	var out []agents.ItemError
	for _, e := range r.Errors {
		if e.AgentID == agentID {
			out = append(out, e)
		}
	}
	return out
}

// fakeAgent registers an in-process agent API (a test double for hangs)
// with a fresh heartbeat that stays current for an hour.
func (e *env) fakeAgent(id string, h http.Handler) {
	e.t.Helper()
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	if err := e.store.UpsertAgent(context.Background(), &imaged.Agent{ID: id, Addr: srv.URL, Runtime: "dir",
		HeartbeatInterval: time.Hour, LastHeartbeat: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
}
