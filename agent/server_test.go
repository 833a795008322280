package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/registry/registrytest"
)

const token = "node-token-0123456789abcdef"

func newAgentServer(t *testing.T) (*httptest.Server, agent.Runtime) {
	t.Helper()
	rt, err := agent.NewDirRuntime(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := agent.NewServer(rt, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, rt
}

func send(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestAgentAPIAuth(t *testing.T) {
	t.Parallel()
	srv, _ := newAgentServer(t)
	if _, err := agent.NewServer(nil, "", nil); err == nil {
		t.Fatal("an empty token was accepted")
	}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"anonymous", nil, 401},
		{"wrong token", map[string]string{"X-Agent-Token": "wrong"}, 401},
		{"token prefix", map[string]string{"X-Agent-Token": token[:10]}, 401},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401},
		{"basic auth", map[string]string{"Authorization": "Basic " + token}, 401},
		{"token", map[string]string{"X-Agent-Token": token}, 200},
		{"bearer token", map[string]string{"Authorization": "Bearer " + token}, 200},
		{"digest (the service)", map[string]string{"X-Agent-Token": imaged.AgentTokenDigest(token)}, 200},
		{"digest of the digest", map[string]string{"X-Agent-Token": imaged.AgentTokenDigest(imaged.AgentTokenDigest(token))}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []struct{ m, path, body string }{
				{"GET", "/v1/images", ""},
				{"POST", "/v1/images/purge", `{"images":[{"reference":"x/y:1","architecture":"x86_64"}]}`},
			} {
				status, raw := send(t, srv, p.m, p.path, tc.hdr, p.body)
				if status != tc.status {
					t.Fatalf("%s %s = %d %s, want %d", p.m, p.path, status, raw, tc.status)
				}
			}
		})
	}
}

func TestAgentAPIPurgeAndPreload(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	registrytest.PushImage(t, reg.Host, "bai/a", "1", "amd64", nil)
	srv, _ := newAgentServer(t)
	auth := map[string]string{"X-Agent-Token": token}
	ref := reg.Host + "/bai/a:1"
	status, raw := send(t, srv, "POST", "/v1/images/preload", auth,
		`{"images":[{"reference":"`+ref+`","architecture":"amd64"},{"reference":"`+reg.Host+`/bai/none:1","architecture":"amd64"}]}`)
	var pre struct{ Results []agent.PreloadResult }
	if status != 200 || json.Unmarshal([]byte(raw), &pre) != nil || len(pre.Results) != 2 {
		t.Fatalf("preload = %d %s", status, raw)
	}
	if r := pre.Results[0]; !r.Pulled || r.Architecture != "x86_64" || r.Size <= 0 || !strings.HasPrefix(r.Digest, "sha256:") {
		t.Fatalf("preload result %+v", r)
	}
	if r := pre.Results[1]; r.Pulled || r.Reason != agent.ReasonNotFound || r.Error == "" {
		t.Fatalf("missing image preload %+v", r)
	}
	status, raw = send(t, srv, "GET", "/v1/images", auth, "")
	if status != 200 || !strings.Contains(raw, ref) || !strings.Contains(raw, `"runtime":"dir"`) {
		t.Fatalf("list = %d %s", status, raw)
	}
	status, raw = send(t, srv, "POST", "/v1/images/purge", auth,
		`{"images":[{"reference":"`+ref+`","architecture":"x86_64"},{"reference":"`+ref+`","architecture":"aarch64"}],"force":false,"noprune":false}`)
	var pur struct{ Results []agent.PurgeResult }
	if status != 200 || json.Unmarshal([]byte(raw), &pur) != nil || len(pur.Results) != 2 {
		t.Fatalf("purge = %d %s", status, raw)
	}
	if r := pur.Results[0]; !r.Purged || r.BytesFreed <= 0 {
		t.Fatalf("purge result %+v", r)
	}
	if r := pur.Results[1]; r.Purged || r.Reason != agent.ReasonNotPresent {
		t.Fatalf("absent arch purge %+v", r)
	}
}

func TestAgentAPIBadRequests(t *testing.T) {
	t.Parallel()
	srv, _ := newAgentServer(t)
	auth := map[string]string{"X-Agent-Token": token}
	many := `{"images":[` + strings.Repeat(`{"reference":"a"},`, agent.MaxImages) + `{"reference":"a"}]}`
	for _, body := range []string{``, `{`, `[]`, `{"images":[]}`, `{"images":[{"reference":""}]}`, `{"images":[{"reference":"a"}],"x":1}`,
		`{"images":[{"reference":"a","architecture":"` + strings.Repeat("x", 40) + `"}]}`, many} {
		if status, raw := send(t, srv, "POST", "/v1/images/purge", auth, body); status != 400 || !strings.Contains(raw, `"invalid"`) {
			t.Errorf("purge %.60q = %d %s", body, status, raw)
		}
	}
	if status, _ := send(t, srv, "DELETE", "/v1/images", auth, ""); status != 405 {
		t.Errorf("DELETE = %d", status)
	}
}

func FuzzPullStreamError(f *testing.F) {
	f.Add(`{"status":"Pulling"}{"status":"Done"}`)
	f.Add(`{"error":"boom","errorDetail":{"message":"manifest unknown"}}`)
	f.Add(`{"status":`)
	f.Fuzz(func(t *testing.T, s string) {
		msg, err := agent.PullStreamError(strings.NewReader(s))
		if err == nil && strings.Contains(s, `"error"`) && msg == "" && json.Valid([]byte(s)) {
			var m map[string]any
			if json.Unmarshal([]byte(s), &m) == nil {
				if e, ok := m["error"].(string); ok && e != "" {
					t.Fatalf("missed the error of %q", s)
				}
			}
		}
	})
}

func FuzzCanonicalRef(f *testing.F) {
	f.Add("ubuntu")
	f.Add("127.0.0.1:5000/a/b:1")
	f.Fuzz(func(t *testing.T, s string) {
		c := agent.CanonicalRef(s)
		if agent.CanonicalRef(c) != c {
			t.Fatalf("CanonicalRef is not idempotent: %q -> %q -> %q", s, c, agent.CanonicalRef(c))
		}
	})
}
