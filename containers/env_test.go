package containers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/registry/registrytest"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// Personas of the role tables.
var (
	adminID  = &imaged.Identity{UserID: "adm", ProjectID: "admins", Roles: []string{"admin", "member", "reader"}}
	ownerID  = &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}
	otherID  = &imaged.Identity{UserID: "bob", ProjectID: "projB", Roles: []string{"member", "reader"}}
	readerID = &imaged.Identity{UserID: "rita", ProjectID: "projA", Roles: []string{"reader"}}
)

func as(id *imaged.Identity) context.Context {
	ctx := context.Background()
	if id != nil {
		ctx = imaged.NewContextWithIdentity(ctx, id)
	}
	return imaged.NewContextWithRequestID(ctx, "req-"+func() string {
		if id == nil {
			return "anon"
		}
		return id.UserID
	}())
}

// env is a service over a real SQLite store and a real registry.
type env struct {
	t       *testing.T
	store   *sqlstore.Store
	reg     *registrytest.Server
	push    registrytest.Pusher
	client  *registry.Client
	counter *registry.CountingTransport
	svc     *containers.Service
	regName string
}

type envOpts struct {
	registry registrytest.Options
	projects []string
	secret   []byte
	conc     int
	postgres bool // a fresh PostgreSQL database instead of a SQLite file
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	reg := registrytest.Start(t, o.registry)
	ctx := context.Background()
	dsn := sqltest.SQLite(t)
	if o.postgres {
		dsn = sqltest.Postgres(t)
	}
	st, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	counter := &registry.CountingTransport{Next: http.DefaultTransport.(*http.Transport).Clone()}
	client := registry.New(registry.Options{Transport: counter})
	tasks := bgtask.New(bgtask.Config{Store: st, PollInterval: 50 * time.Millisecond})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tasks.Close(cctx)
	})
	svc, err := containers.New(containers.Config{
		Store: st, Images: st, Tasks: tasks, Registry: client, Policy: policy.Secure(),
		ScanConcurrency: o.conc, SecretKey: o.secret, DefaultNamespace: "lablup",
	})
	if err != nil {
		t.Fatal(err)
	}
	projects := o.projects
	if projects == nil {
		projects = []string{"bai", "other", "custom"}
	}
	r := &imaged.Registry{Name: "local", URL: reg.URL, Type: imaged.RegistryOCI, Projects: projects,
		Username: reg.Username, Password: reg.Password}
	if _, err := svc.CreateRegistry(as(adminID), r); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: st, reg: reg, push: reg.Pusher(), client: client, counter: counter, svc: svc, regName: "local"}
}

// ref returns the canonical reference of repo:tag in the test registry.
func (e *env) ref(repoTag string) string { return e.reg.Host + "/" + repoTag }

// scan registers repo:tag (every architecture) as admin.
func (e *env) scan(repoTag string) []*imaged.ContainerImage {
	e.t.Helper()
	imgs, err := e.svc.ScanImage(as(adminID), e.ref(repoTag), "")
	if err != nil {
		e.t.Fatalf("scan %s: %v", repoTag, err)
	}
	return imgs
}

// pushScan pushes a single-arch image and registers it.
func (e *env) pushScan(repo, tag string, labels map[string]string) *imaged.ContainerImage {
	e.t.Helper()
	e.push.PushImage(e.t, repo, tag, "amd64", labels)
	imgs := e.scan(repo + ":" + tag)
	if len(imgs) != 1 {
		e.t.Fatalf("scan %s:%s: %d images", repo, tag, len(imgs))
	}
	return imgs[0]
}

// baiLabels are valid Backend.AI labels.
func baiLabels(extra map[string]string) map[string]string {
	m := map[string]string{imaged.LabelKernelspec: "1", "ai.backend.service-ports": "jupyter:http:8081"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// customized returns labels of a customized image of user.
func customized(user string) map[string]string {
	return baiLabels(map[string]string{imaged.LabelCustomizedOwner: "user:" + user})
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return imaged.ErrorCode(err)
}

// manifestStatus is the registry's answer to a GET of repo's manifest.
func (e *env) manifestStatus(repo, digest string) int {
	e.t.Helper()
	h := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"}}
	resp, _, err := e.reg.Get(context.Background(), "/v2/"+repo+"/manifests/"+digest, h)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode
}
