package agents

import (
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// TestResolveVM checks how glance://<id> names are checked before a
// fan-out: against a real catalog when one is configured.
func TestResolveVM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	id := "0a1b2c3d-0000-4000-8000-000000000001"
	if err := st.CreateImage(ctx, &imaged.Image{ID: id, Status: imaged.StatusActive, Visibility: imaged.VisibilityPublic,
		CreatedAt: now, UpdatedAt: now, Properties: map[string]string{"architecture": "amd64"}}); err != nil {
		t.Fatal(err)
	}
	withCatalog := &Service{cfg: Config{VMImages: st}}
	without := &Service{}
	missing := "0a1b2c3d-0000-4000-8000-0000000000ff"
	for _, tc := range []struct {
		name     string
		svc      *Service
		in       imaged.AgentImageName
		wantRef  string
		wantArch string
		wantCode string
	}{
		{"known, arch from the image", withCatalog, imaged.AgentImageName{Name: "glance://" + id}, "glance://" + id, "x86_64", ""},
		{"upper-case id, arch given", withCatalog, imaged.AgentImageName{Name: "glance://0A1B2C3D-0000-4000-8000-000000000001", Architecture: "arm64"}, "glance://" + id, "aarch64", ""},
		{"unknown image", withCatalog, imaged.AgentImageName{Name: "glance://" + missing}, "", "", imaged.ENOTFOUND},
		{"not a uuid", withCatalog, imaged.AgentImageName{Name: "glance://../../etc"}, "", "", imaged.EINVALID},
		{"no catalog: passed to the agents", without, imaged.AgentImageName{Name: "glance://" + missing}, "glance://" + missing, "", ""},
	} {
		got := tc.svc.resolveVM(ctx, tc.in)
		if code := imaged.ErrorCode(got.err); code != tc.wantCode {
			t.Errorf("%s: error %v, want code %q", tc.name, got.err, tc.wantCode)
			continue
		}
		if tc.wantCode == "" && (got.ref != tc.wantRef || got.arch != tc.wantArch) {
			t.Errorf("%s: %q %q, want %q %q", tc.name, got.ref, got.arch, tc.wantRef, tc.wantArch)
		}
	}
}
