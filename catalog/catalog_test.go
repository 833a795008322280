package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// Personas, as Glance's fakeauth tokens "user:project:roles" name them.
var (
	admin     = &imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}}
	owner     = &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}
	ownerRead = &imaged.Identity{UserID: "rita", ProjectID: "projA", Roles: []string{"reader"}}
	other     = &imaged.Identity{UserID: "oscar", ProjectID: "projO", Roles: []string{"member", "reader"}}
	pending   = &imaged.Identity{UserID: "pat", ProjectID: "projP", Roles: []string{"member", "reader"}}
	accepted  = &imaged.Identity{UserID: "ann", ProjectID: "projAcc", Roles: []string{"member", "reader"}}
	rejected  = &imaged.Identity{UserID: "rex", ProjectID: "projR", Roles: []string{"member", "reader"}}
)

// fixedClock steps one second per call, so that created_at orders images.
type stepClock struct {
	t time.Time
}

func (c *stepClock) Now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

type env struct {
	t     *testing.T
	store *sqlstore.Store
	svc   *catalog.Service
}

func as(id *imaged.Identity) context.Context {
	return imaged.NewContextWithIdentity(context.Background(), id)
}

// newEnv returns a catalog in the given RBAC mode over a fresh SQLite store.
func newEnv(t *testing.T, mode string) *env {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	pol, err := policy.ByName(mode)
	if err != nil {
		t.Fatal(err)
	}
	clk := &stepClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	// The step clock is not safe for concurrent use; tests that run
	// goroutines use the system clock.
	svc := catalog.New(st, pol, catalog.DefaultConfig()).WithClock(imaged.ClockFunc(func() time.Time { return clk.Now() }))
	return &env{t: t, store: st, svc: svc}
}

// create makes an image as id, failing the test on error.
func (e *env) create(id *imaged.Identity, attrs map[string]any) *imaged.Image {
	e.t.Helper()
	img, err := e.svc.CreateImage(as(id), attrs)
	if err != nil {
		e.t.Fatalf("create %v: %v", attrs, err)
	}
	return img
}

// sharedImage returns an image of projA shared with the pending, accepted
// and rejected projects.
func (e *env) sharedImage(attrs map[string]any) *imaged.Image {
	e.t.Helper()
	if attrs == nil {
		attrs = map[string]any{}
	}
	img := e.create(owner, attrs)
	for _, p := range []*imaged.Identity{pending, accepted, rejected} {
		if _, err := e.svc.AddMember(as(owner), img.ID, p.ProjectID); err != nil {
			e.t.Fatalf("add member: %v", err)
		}
	}
	if _, err := e.svc.UpdateMember(as(accepted), img.ID, accepted.ProjectID, imaged.MemberAccepted); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.UpdateMember(as(rejected), img.ID, rejected.ProjectID, imaged.MemberRejected); err != nil {
		e.t.Fatal(err)
	}
	return img
}

// setStatus forces a status through the store, as an upload would.
func (e *env) setStatus(id string, st imaged.ImageStatus) {
	e.t.Helper()
	_, err := e.store.UpdateImage(context.Background(), id, func(img *imaged.Image) error {
		img.Status = st
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// wantErr checks an error's code and (if msg != "") message.
func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if got := imaged.ErrorCode(err); got != code {
		t.Fatalf("code = %q (%v), want %q", got, err, code)
	}
	if msg != "" && imaged.ErrorMessage(err) != msg {
		t.Fatalf("message = %q, want %q", imaged.ErrorMessage(err), msg)
	}
}

func TestNoIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "legacy")
	_, err := e.svc.CreateImage(context.Background(), map[string]any{})
	wantErr(t, err, imaged.EUNAUTHORIZED, "")
	_, err = e.svc.ListImages(context.Background(), imaged.ImageQuery{}, "")
	wantErr(t, err, imaged.EUNAUTHORIZED, "")
}
