package glanceapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
)

// newQuotaEnv is newEnv with per-project quotas.
func newQuotaEnv(t *testing.T, q catalog.Quotas) *env {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.Quotas = &q
	logger, logs := testLogger()
	svc := catalog.New(testStore(t), policy.Legacy(), cfg).WithBlobStore(testBlobs(t, "blobs")).WithLogger(logger)
	return serveEnv(t, glanceapi.Config{Images: svc, Logger: logger}, logs)
}

func TestUsage(t *testing.T) {
	t.Parallel()
	const sizeLimit = 10<<20 + 5 // not a whole number of MiB: shown rounded down
	q := catalog.Unlimited()
	q.ImageSizeTotal, q.ImageCountTotal = sizeLimit, 3
	e := newQuotaEnv(t, q)

	usage := func(token string) string {
		t.Helper()
		r := e.do(t, req{method: "GET", path: "/v2/info/usage", token: token})
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /v2/info/usage: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
		}
		return string(r.body)
	}
	render := func(size, count int64) string {
		return fmt.Sprintf(`{"usage": {"image_size_total": {"usage": %d, "limit": %d}, "image_stage_total": {"usage": 0, "limit": -1}, "image_count_total": {"usage": %d, "limit": 3}, "image_count_uploading": {"usage": 0, "limit": -1}}}`,
			size>>20, sizeLimit>>20, count)
	}
	if got, want := usage(alice), render(0, 0); got != want {
		t.Fatalf("empty project:\n got %s\nwant %s", got, want)
	}
	// 3 MiB + 1 byte stored in two images: usage in whole MiB, as Glance.
	a, b := newDataImage(t, e), newDataImage(t, e)
	for _, up := range []struct {
		id   string
		size int
	}{{a, 3 << 20}, {b, 1}} {
		if r := putData(t, e, up.id, alice, "application/octet-stream", strings.Repeat("x", up.size)); r.status != 204 {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
	}
	if got, want := usage(alice), render(3<<20+1, 2); got != want {
		t.Fatalf("after uploads:\n got %s\nwant %s", got, want)
	}
	// Another project sees its own usage.
	if got, want := usage(bob), render(0, 0); got != want {
		t.Fatalf("bob:\n got %s\nwant %s", got, want)
	}

	// An upload over the size quota: 413, Glance's text, image still queued.
	c := newDataImage(t, e)
	r := putData(t, e, c, alice, "application/octet-stream", strings.Repeat("y", 7<<20+5))
	if r.status != 413 {
		t.Fatalf("upload over quota: %d %s", r.status, r.body)
	}
	want := fmt.Sprintf("Project projA is over a limit for [Resource image_size_total is over limit of %d due to current usage %d and delta %d]", sizeLimit, 3<<20+1, 7<<20+5)
	if msg := jsonErr(t, r); !strings.HasSuffix(msg, want) {
		t.Fatalf("message %q, want it to end with %q", msg, want)
	}
	if img := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + c, token: alice}).body); img["status"] != "queued" {
		t.Fatalf("after a refused upload: %v", img["status"])
	}
	// The count quota (3 images now): a fourth is refused with 413.
	r = e.do(t, req{method: "POST", path: "/v2/images", token: alice, body: `{"name":"four"}`, header: jsonAccept})
	if r.status != 413 || !strings.HasSuffix(jsonErr(t, r), "Resource image_count_total is over limit of 3 due to current usage 3 and delta 1]") {
		t.Fatalf("create over the count quota: %d %s", r.status, r.body)
	}

	// Other methods are a 404, as in Glance (the route matches GET only);
	// no token is a 401.
	for _, m := range []string{"POST", "PUT", "DELETE", "HEAD", "PATCH"} {
		if r := e.do(t, req{method: m, path: "/v2/info/usage", token: alice}); r.status != 404 {
			t.Errorf("%s /v2/info/usage: %d", m, r.status)
		}
	}
	if r := e.do(t, req{method: "GET", path: "/v2/info/usage"}); r.status != 401 {
		t.Errorf("GET /v2/info/usage without a token: %d", r.status)
	}
}

// TestUsageWithoutQuotas: a service that keeps no quotas answers as Glance
// without use_keystone_limits.
func TestUsageWithoutQuotas(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(s imaged.ImageService) imaged.ImageService { return struct{ imaged.ImageService }{s} })
	r := e.do(t, req{method: "GET", path: "/v2/info/usage", token: alice})
	if r.status != 200 || string(r.body) != `{"usage": {}}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
