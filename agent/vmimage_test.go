package agent_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/auth"
	blobfs "github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

const glanceToken = "glance-agent-token-0123456789"

// glanceServer runs imaged's real Glance API (catalog over a SQLite file
// and a blob directory, tokens file) over loopback HTTP.
func glanceServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	tokPath := filepath.Join(dir, "tokens.yaml")
	yaml := "tokens:\n  - token: \"" + glanceToken + "\"\n    user_id: node\n    project_id: admin\n    roles: [admin, member, reader]\n"
	if err := os.WriteFile(tokPath, []byte(yaml), 0o600); err != nil {
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
	blobs, err := blobfs.New(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	images := catalog.New(store, policy.Secure(), catalog.DefaultConfig()).WithBlobStore(blobs).WithLogger(log)
	srv := httptest.NewServer(glanceapi.New(glanceapi.Config{Images: images, Auth: authn, Logger: log}))
	t.Cleanup(func() {
		srv.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		images.Close(cctx)
		store.Close()
	})
	return srv
}

// glanceDo sends one authenticated request and decodes a JSON answer.
func glanceDo(t *testing.T, srv *httptest.Server, method, path, ctype string, body []byte, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", glanceToken)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	out := map[string]any{}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return out
}

// createImage records an image (with arch as its architecture property,
// if any) and uploads data unless data is nil; it returns the id.
func createImage(t *testing.T, srv *httptest.Server, arch string, data []byte) string {
	t.Helper()
	props := map[string]any{"name": "vm", "disk_format": "raw", "container_format": "bare"}
	if arch != "" {
		props["architecture"] = arch
	}
	body, _ := json.Marshal(props)
	img := glanceDo(t, srv, http.MethodPost, "/v2/images", "application/json", body, http.StatusCreated)
	id, _ := img["id"].(string)
	if id == "" {
		t.Fatalf("no id in %v", img)
	}
	if data != nil {
		glanceDo(t, srv, http.MethodPut, "/v2/images/"+id+"/file", "application/octet-stream", data, http.StatusNoContent)
	}
	return id
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newVMRuntime(t *testing.T, serverURL, tok string) (*agent.DirRuntime, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	rt, err := agent.NewDirRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rt.WithGlance(agent.GlanceSource{ServerURL: serverURL, Token: tok}), dir
}

// vmFiles lists what the runtime left in its vm directory.
func vmFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "vm"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestDirRuntimeVMImagePullListRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := glanceServer(t)
	data := randomBytes(t, 3<<20+17)
	id := createImage(t, srv, "amd64", data)
	rt, dir := newVMRuntime(t, srv.URL, glanceToken)
	ref := agent.GlanceScheme + id
	sha := sha512.Sum512(data)
	want := imaged.AgentImage{Reference: ref, Architecture: "x86_64", Digest: "sha512:" + hex.EncodeToString(sha[:]), Size: int64(len(data))}

	if _, err := rt.Pull(ctx, ref, "aarch64"); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("Pull for another architecture = %v, want not_found", err)
	}
	got, err := rt.Pull(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Pull = %+v, want %+v", got, want)
	}
	held, err := os.ReadFile(filepath.Join(dir, "vm", id+".img"))
	if err != nil || !bytes.Equal(held, data) {
		t.Fatalf("held file differs from the upload (%d bytes, %v)", len(held), err)
	}
	// Pulling again (for the matching architecture, the id in upper case)
	// replaces the file in place.
	if got, err := rt.Pull(ctx, agent.GlanceScheme+strings.ToUpper(id), "amd64"); err != nil || got != want {
		t.Fatalf("re-pull = %+v, %v", got, err)
	}
	list, err := rt.List(ctx)
	if err != nil || len(list) != 1 || list[0] != want {
		t.Fatalf("List = %+v, %v; want [%+v]", list, err, want)
	}
	// A restarted agent lists what it held and sweeps the temporary file
	// an interrupted download left.
	stale := filepath.Join(dir, "vm", ".tmp-"+id+"-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt2, err := agent.NewDirRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt2.WithGlance(agent.GlanceSource{ServerURL: srv.URL})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the stale temporary file survived a restart: %v", err)
	}
	if list, err := rt2.List(ctx); err != nil || len(list) != 1 || list[0] != want {
		t.Fatalf("reopened List = %+v, %v", list, err)
	}
	if _, err := rt.Remove(ctx, ref, "aarch64", false, false); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("Remove for another architecture = %v, want not_found", err)
	}
	freed, err := rt.Remove(ctx, ref, "", false, false)
	if err != nil || freed != int64(len(data)) {
		t.Fatalf("Remove = %d, %v; want %d bytes freed", freed, err, len(data))
	}
	if _, err := rt.Remove(ctx, ref, "", false, false); imaged.ErrorCode(err) != imaged.ENOTFOUND {
		t.Fatalf("second Remove = %v, want not_found", err)
	}
	if files := vmFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left after Remove: %v", files)
	}
	if list, err := rt.List(ctx); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("List after Remove = %#v, %v; want []", list, err)
	}
}

// tamperProxy forwards to target, tampering with what it relays: "flip"
// flips one byte of the image data; "flip-md5" also rewrites the record's
// checksum to the tampered data's (so that only the os_hash can catch
// it); "truncate" drops the data's last byte.
func tamperProxy(t *testing.T, target string, data []byte, mode string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0x01
	badSum := md5.Sum(bad)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		switch {
		case strings.HasSuffix(resp.Request.URL.Path, "/file") && mode == "truncate":
			raw = raw[:len(raw)-1]
		case strings.HasSuffix(resp.Request.URL.Path, "/file"):
			raw[len(raw)/2] ^= 0x01
		case mode == "flip-md5":
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			rec["checksum"] = hex.EncodeToString(badSum[:])
			raw, _ = json.Marshal(rec)
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Del("Content-Length")
		resp.Header.Del("ETag")
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func TestDirRuntimeVMImageVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := glanceServer(t)
	data := randomBytes(t, 1<<20)
	id := createImage(t, srv, "", data)
	queued := createImage(t, srv, "", nil)
	for _, tc := range []struct {
		name    string
		url     func() string
		tok     string
		ref     string
		code    string
		wantMsg string
	}{
		{"md5 mismatch", func() string { return tamperProxy(t, srv.URL, data, "flip").URL }, glanceToken, id, imaged.EUNAVAILABLE, "md5 checksum mismatch"},
		{"sha512 mismatch", func() string { return tamperProxy(t, srv.URL, data, "flip-md5").URL }, glanceToken, id, imaged.EUNAVAILABLE, "sha512 os_hash mismatch"},
		{"truncated", func() string { return tamperProxy(t, srv.URL, data, "truncate").URL }, glanceToken, id, imaged.EUNAVAILABLE, "size mismatch"},
		{"not active", func() string { return srv.URL }, glanceToken, queued, imaged.EPRECONDITION, "is queued, not active"},
		{"unknown image", func() string { return srv.URL }, glanceToken, "0b6e0c55-5e1a-4bd2-9e49-1d1cf6a8b2c4", imaged.ENOTFOUND, "not in imaged"},
		{"bad token", func() string { return srv.URL }, "wrong-token", id, imaged.EUNAUTHORIZED, "--glance-token-file"},
		{"bad reference", func() string { return srv.URL }, glanceToken, "../../etc/passwd", imaged.EINVALID, "glance://<image uuid>"},
		{"server down", func() string { s := httptest.NewServer(http.NotFoundHandler()); s.Close(); return s.URL }, glanceToken, id, imaged.EUNAVAILABLE, "cannot reach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt, dir := newVMRuntime(t, tc.url(), tc.tok)
			_, err := rt.Pull(ctx, agent.GlanceScheme+tc.ref, "")
			if imaged.ErrorCode(err) != tc.code || !strings.Contains(imaged.ErrorMessage(err), tc.wantMsg) {
				t.Fatalf("Pull = %v (%s), want %s naming %q", err, imaged.ErrorCode(err), tc.code, tc.wantMsg)
			}
			if strings.Contains(err.Error(), tc.tok) {
				t.Fatalf("the error shows the token: %v", err)
			}
			if files := vmFiles(t, dir); len(files) != 0 {
				t.Fatalf("a failed pull left %v", files)
			}
			if list, err := rt.List(ctx); err != nil || len(list) != 0 {
				t.Fatalf("List after a failed pull = %+v, %v", list, err)
			}
		})
	}
}

func TestDirRuntimeVMImageWithoutGlance(t *testing.T) {
	t.Parallel()
	rt, err := agent.NewDirRuntime(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Pull(context.Background(), agent.GlanceScheme+"0b6e0c55-5e1a-4bd2-9e49-1d1cf6a8b2c4", "")
	if imaged.ErrorCode(err) != imaged.EUNAVAILABLE || !strings.Contains(err.Error(), "no Glance API") {
		t.Fatalf("Pull without Glance = %v", err)
	}
}

// The agent API preloads and purges VM images like container images.
func TestAgentAPIPreloadPurgeVMImage(t *testing.T) {
	t.Parallel()
	srv := glanceServer(t)
	data := randomBytes(t, 2<<20)
	id := createImage(t, srv, "aarch64", data)
	rt, _ := newVMRuntime(t, srv.URL, glanceToken)
	h, err := agent.NewServer(rt, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	auth := map[string]string{"X-Agent-Token": token}
	ref := agent.GlanceScheme + id

	code, body := send(t, api, http.MethodPost, "/v1/images/preload", auth, `{"images":[{"reference":"`+ref+`","architecture":""}]}`)
	var pre struct{ Results []agent.PreloadResult }
	if err := json.Unmarshal([]byte(body), &pre); code != http.StatusOK || err != nil || len(pre.Results) != 1 {
		t.Fatalf("preload = %d %s", code, body)
	}
	if r := pre.Results[0]; !r.Pulled || r.Architecture != "aarch64" || r.Size != int64(len(data)) || !strings.HasPrefix(r.Digest, "sha512:") {
		t.Fatalf("preload result %+v", r)
	}
	code, body = send(t, api, http.MethodGet, "/v1/images", auth, "")
	if code != http.StatusOK || !strings.Contains(body, `"reference":"`+ref+`"`) {
		t.Fatalf("list = %d %s", code, body)
	}
	code, body = send(t, api, http.MethodPost, "/v1/images/purge", auth, `{"images":[{"reference":"`+ref+`","architecture":"arm64"}]}`)
	var pur struct{ Results []agent.PurgeResult }
	if err := json.Unmarshal([]byte(body), &pur); code != http.StatusOK || err != nil || len(pur.Results) != 1 {
		t.Fatalf("purge = %d %s", code, body)
	}
	if r := pur.Results[0]; !r.Purged || r.BytesFreed != int64(len(data)) {
		t.Fatalf("purge result %+v", r)
	}
	code, body = send(t, api, http.MethodPost, "/v1/images/purge", auth, `{"images":[{"reference":"`+ref+`","architecture":""}]}`)
	if code != http.StatusOK || !strings.Contains(body, agent.ReasonNotPresent) {
		t.Fatalf("second purge = %d %s", code, body)
	}
}

func FuzzParseGlanceRef(f *testing.F) {
	for _, s := range []string{"glance://0b6e0c55-5e1a-4bd2-9e49-1d1cf6a8b2c4", "glance://0B6E0C55-5E1A-4BD2-9E49-1D1CF6A8B2C4",
		"glance://../../../../etc/passwd/aaaaaaaaaaaaaaaa", "glance://", "glance://0b6e0c55x5e1a-4bd2-9e49-1d1cf6a8b2c4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		id, err := agent.ParseGlanceRef(ref)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("ParseGlanceRef(%q) = %v, want an invalid error", ref, err)
			}
			return
		}
		// An accepted id is safe as a file name and round-trips.
		if len(id) != 36 || strings.ContainsAny(id, "/\\.") || id != strings.ToLower(id) {
			t.Fatalf("ParseGlanceRef(%q) = %q", ref, id)
		}
		if again, err := agent.ParseGlanceRef(agent.GlanceScheme + id); err != nil || again != id {
			t.Fatalf("%q does not round-trip: %q, %v", id, again, err)
		}
	})
}

// A redirect of the data to another host (a location store) must not
// carry the Glance token there.
func TestDirRuntimeVMImageRedirectDropsToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := glanceServer(t)
	data := randomBytes(t, 64<<10)
	id := createImage(t, srv, "", data)
	leaked := make(chan string, 1)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked <- r.Header.Get("X-Auth-Token")
		_, _ = w.Write(data)
	}))
	t.Cleanup(store.Close)
	u, _ := url.Parse(srv.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/file") {
			http.Redirect(w, r, store.URL+"/blob", http.StatusTemporaryRedirect)
			return
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	rt, _ := newVMRuntime(t, front.URL, glanceToken)
	if _, err := rt.Pull(ctx, agent.GlanceScheme+id, ""); err != nil {
		t.Fatal(err)
	}
	if got := <-leaked; got != "" {
		t.Fatalf("the location store received X-Auth-Token %q", got)
	}
}
