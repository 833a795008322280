package glanceapi_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

const patchJSON = "application/openstack-images-v2.1-json-patch"

func patchImage(t *testing.T, e *env, id, ifMatch, body string) resp {
	t.Helper()
	h := map[string]string{"Content-Type": patchJSON, "Accept": "application/json"}
	if ifMatch != "" {
		h["If-Match"] = ifMatch
	}
	return e.do(t, req{method: "PATCH", path: "/v2/images/" + id, token: alice, header: h, body: body})
}

func TestImageETag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(t, req{method: "POST", path: "/v2/images", token: alice,
		header: map[string]string{"Content-Type": "application/json"}, body: `{"name":"etag"}`})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := jsonOf(t, r.body)["id"].(string)
	created := r.header.Get("ETag")
	if !strings.HasPrefix(created, `"`+id+"-") || !strings.HasSuffix(created, `"`) {
		t.Fatalf("create ETag %q", created)
	}
	g := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice})
	if g.header.Get("ETag") != created {
		t.Fatalf("GET ETag %q, create said %q", g.header.Get("ETag"), created)
	}

	// A matching If-Match updates and yields a new tag.
	p := patchImage(t, e, id, created, `[{"op":"replace","path":"/name","value":"one"}]`)
	if p.status != 200 {
		t.Fatalf("PATCH with current tag: %d %s", p.status, p.body)
	}
	second := p.header.Get("ETag")
	if second == "" || second == created {
		t.Fatalf("PATCH ETag %q (before %q)", second, created)
	}
	tests := []struct {
		name, ifMatch string
		status        int
	}{
		{"stale tag", created, 412},
		{"weak current tag", "W/" + second, 412}, // If-Match compares strongly
		{"other image's tag", `"00000000-0000-4000-8000-000000000000-1"`, 412},
		{"garbage", `nonsense`, 412},
		{"list with current", created + ", " + second, 200},
		{"star", "*", 200},
	}
	for _, tc := range tests {
		// Sequential: each success changes the current tag.
		p := patchImage(t, e, id, tc.ifMatch, `[{"op":"add","path":"/k","value":"`+tc.name+`"}]`)
		if p.status != tc.status {
			t.Fatalf("%s: PATCH If-Match %s: %d %s", tc.name, tc.ifMatch, p.status, p.body)
		}
		if tc.status == 412 {
			m := jsonOf(t, p.body)
			if m["code"] != "412 Precondition Failed" || !strings.Contains(m["message"].(string), "has changed") {
				t.Errorf("%s: 412 body %s", tc.name, p.body)
			}
			if p.header.Get("ETag") != "" {
				t.Errorf("%s: 412 carries an ETag", tc.name)
			}
		} else {
			second = p.header.Get("ETag")
		}
	}
	if got := jsonOf(t, e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).body)["k"]; got != "star" {
		t.Errorf("k = %v, want the last successful patch's value", got)
	}

	// If-None-Match on GET.
	for _, tc := range []struct {
		inm    string
		status int
	}{{second, 304}, {"W/" + second, 304}, {created, 200}, {"*", 304}} {
		g := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice, header: map[string]string{"If-None-Match": tc.inm}})
		if g.status != tc.status || g.header.Get("ETag") != second {
			t.Errorf("GET If-None-Match %s: %d ETag %q, want %d %q", tc.inm, g.status, g.header.Get("ETag"), tc.status, second)
		}
		if tc.status == 304 && len(g.body) != 0 {
			t.Errorf("304 with a body: %q", g.body)
		}
	}
	// Another project's caller still gets 404, not 304 or 412.
	g = e.do(t, req{method: "GET", path: "/v2/images/" + id, token: bob, header: map[string]string{"If-None-Match": "*"}})
	if g.status != 404 {
		t.Errorf("bob GET: %d", g.status)
	}

	// DELETE with a stale tag is refused and keeps the image.
	d := e.do(t, req{method: "DELETE", path: "/v2/images/" + id, token: alice, header: map[string]string{"If-Match": created}})
	if d.status != 412 {
		t.Fatalf("DELETE stale: %d %s", d.status, d.body)
	}
	d = e.do(t, req{method: "DELETE", path: "/v2/images/" + id, token: alice, header: map[string]string{"If-Match": second}})
	if d.status != 204 {
		t.Fatalf("DELETE current: %d %s", d.status, d.body)
	}
	d = e.do(t, req{method: "DELETE", path: "/v2/images/" + id, token: alice, header: map[string]string{"If-Match": second}})
	if d.status != 404 {
		t.Errorf("DELETE gone image: %d", d.status)
	}
}

// TestIfMatchRace: of many PATCHes that all carry the same current tag,
// exactly one wins; the check happens inside the serialised update.
func TestIfMatchRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := createImage(t, e, alice, `{"name":"race"}`)
	id := img["id"].(string)
	tag := e.do(t, req{method: "GET", path: "/v2/images/" + id, token: alice}).header.Get("ETag")
	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = patchImage(t, e, id, tag, fmt.Sprintf(`[{"op":"add","path":"/winner","value":"%d"}]`, i)).status
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			won++
		case 412:
			lost++
		}
	}
	if won != 1 || lost != n-1 {
		t.Errorf("statuses %v: want one 200 and %d 412", statuses, n-1)
	}
}
