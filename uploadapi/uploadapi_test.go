package uploadapi_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/nativeapi"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/uploadapi"
)

const tokensYAML = `tokens:
  - token: admin-tok
    user_id: admin
    project_id: admin
    roles: [admin, member, reader]
  - token: member-tok
    user_id: alice
    project_id: projA
    roles: [member, reader]
  - token: reader-tok
    user_id: bob
    project_id: projA
    roles: [reader]
`

// env is a real catalog (SQLite file, filesystem blob store) behind the
// upload handler on a loopback server.
type env struct {
	svc *catalog.Service
	url string
}

func newEnv(t testing.TB, authn imaged.Authenticator, cfg catalog.Config) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := catalog.New(st, policy.Secure(), cfg).WithBlobStore(blobs).WithLogger(log)
	if authn == nil {
		tf := filepath.Join(t.TempDir(), "tokens.yaml")
		if err := os.WriteFile(tf, []byte(tokensYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		if authn, err = auth.NewTokenFile(tf); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle(uploadapi.Path, uploadapi.New(uploadapi.Config{Images: svc, Auth: authn, Logger: log}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{svc: svc, url: srv.URL + uploadapi.Path}
}

// image reads an image as the admin sees it.
func (e *env) image(t *testing.T, id string) *imaged.Image {
	t.Helper()
	ctx := imaged.NewContextWithIdentity(context.Background(), &imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}})
	img, err := e.svc.GetImage(ctx, id)
	if err != nil {
		t.Fatalf("GetImage %s: %v", id, err)
	}
	return img
}

type field struct{ name, value string }

// form streams a multipart body: the fields, then (when file is not nil)
// the file part, generated as it is read.
func form(fields []field, file io.Reader) (string, io.Reader) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, f := range fields {
			if err := mw.WriteField(f.name, f.value); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		if file != nil {
			fw, err := mw.CreateFormFile("file", "disk.img")
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.CopyBuffer(fw, file, make([]byte, 64<<10)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	return mw.FormDataContentType(), pr
}

type answer struct {
	status int
	header http.Header
	image  uploadapi.Image
	err    struct{ Code, Message, RequestID string }
	raw    string
}

func post(t *testing.T, url, ctype string, body io.Reader, headers map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q: %s", resp.Header.Get("Content-Type"), raw)
	}
	if a.status == http.StatusCreated {
		if err := json.Unmarshal(raw, &a.image); err != nil {
			t.Fatalf("201 body %s: %v", raw, err)
		}
		return a
	}
	var eb struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("error body %s is not the native API's shape: %v", raw, err)
	}
	if eb.Error.RequestID == "" || eb.Error.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("request_id %q, X-Request-Id %q", eb.Error.RequestID, resp.Header.Get("X-Request-Id"))
	}
	a.err.Code, a.err.Message, a.err.RequestID = eb.Error.Code, eb.Error.Message, eb.Error.RequestID
	return a
}

var (
	admin     = map[string]string{"X-Auth-Token": "admin-tok"}
	member    = map[string]string{"X-Auth-Token": "member-tok"}
	stdFields = []field{{"name", "cirros"}, {"disk_format", "raw"}, {"container_format", "bare"}}
)

// pattern is a deterministic, incompressible-enough file body.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestUploadStreamsWithBoundedMemory(t *testing.T) {
	// Not parallel: the memory check reads process-wide statistics.
	e := newEnv(t, nil, catalog.DefaultConfig())
	const size = 64 << 20
	md, sh := md5.New(), sha512.New()
	_, _ = io.Copy(io.MultiWriter(md, sh), &pattern{n: size})

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ctype, body := form(append(stdFields, field{"visibility", "private"}, field{"tags", "a"}, field{"tags", "b"}), &pattern{n: size})
	a := post(t, e.url, ctype, body, member)
	runtime.ReadMemStats(&after)
	if a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("uploading %d MiB allocated %.1f MiB in total (client and server)", size>>20, float64(allocated)/(1<<20))
	if allocated > size/8 {
		t.Errorf("uploading %d bytes allocated %d bytes: the body is buffered", size, allocated)
	}
	img := a.image
	if img.Status != "active" || img.Size == nil || *img.Size != size || img.Name == nil || *img.Name != "cirros" ||
		img.Checksum == nil || *img.Checksum != hex.EncodeToString(md.Sum(nil)) ||
		img.OSHashAlgo == nil || *img.OSHashAlgo != "sha512" || img.OSHashValue == nil || *img.OSHashValue != hex.EncodeToString(sh.Sum(nil)) ||
		img.Visibility != "private" || img.DiskFormat == nil || *img.DiskFormat != "raw" {
		t.Fatalf("answer %s", a.raw)
	}
	if loc := a.header.Get("Location"); loc != "/v2/images/"+img.ID {
		t.Errorf("Location %q", loc)
	}
	stored := e.image(t, img.ID)
	if stored.Status != imaged.StatusActive || *stored.Size != size || strings.Join(stored.Tags, ",") != "a,b" || stored.Owner != "projA" {
		t.Errorf("stored image %+v", stored)
	}
}

var idRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func TestFailedUploadLeavesImageQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, catalog.DefaultConfig())
	t.Run("truncated body", func(t *testing.T) {
		// A complete multipart body cut in the middle of the file part:
		// the connection ends (Content-Length is the cut length).
		var full bytes.Buffer
		mw := multipart.NewWriter(&full)
		for _, f := range stdFields {
			_ = mw.WriteField(f.name, f.value)
		}
		fw, _ := mw.CreateFormFile("file", "disk.img")
		_, _ = io.Copy(fw, &pattern{n: 3 << 20})
		_ = mw.Close()
		cut := full.Bytes()[:full.Len()/2]
		a := post(t, e.url, mw.FormDataContentType(), bytes.NewReader(cut), member)
		if a.status != http.StatusBadRequest || !strings.Contains(a.err.Message, "cut short") {
			t.Fatalf("status %d: %s", a.status, a.raw)
		}
		id := idRE.FindString(a.err.Message)
		if id == "" {
			t.Fatalf("the message does not name the image: %s", a.err.Message)
		}
		if img := e.image(t, id); img.Status != imaged.StatusQueued || img.Size != nil {
			t.Fatalf("after a cut upload the image is %s, size %v", img.Status, img.Size)
		}
	})
	t.Run("declared size mismatch", func(t *testing.T) {
		ctype, body := form(append(stdFields, field{"size", "1000"}), &pattern{n: 999})
		a := post(t, e.url, ctype, body, member)
		if a.status != http.StatusBadRequest {
			t.Fatalf("status %d: %s", a.status, a.raw)
		}
		id := idRE.FindString(a.err.Message)
		if id == "" || !strings.Contains(a.err.Message, "left queued") {
			t.Fatalf("message %q", a.err.Message)
		}
		if img := e.image(t, id); img.Status != imaged.StatusQueued {
			t.Fatalf("image is %s", img.Status)
		}
	})
	t.Run("declared size matches", func(t *testing.T) {
		ctype, body := form(append(stdFields, field{"size", "1000"}), &pattern{n: 1000})
		if a := post(t, e.url, ctype, body, member); a.status != http.StatusCreated || *a.image.Size != 1000 {
			t.Fatalf("status %d: %s", a.status, a.raw)
		}
	})
}

func TestUploadSizeCap(t *testing.T) {
	t.Parallel()
	cfg := catalog.DefaultConfig()
	cfg.ImageSizeCap = 1 << 20
	e := newEnv(t, nil, cfg)
	ctype, body := form(stdFields, &pattern{n: 2 << 20})
	a := post(t, e.url, ctype, body, member)
	if a.status != http.StatusRequestEntityTooLarge || a.err.Code != imaged.ETOOLARGE {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	if id := idRE.FindString(a.err.Message); id == "" || e.image(t, id).Status != imaged.StatusQueued {
		t.Fatalf("message %q", a.err.Message)
	}
}

func TestUploadErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, catalog.DefaultConfig())
	small := func(fields ...field) func() (string, io.Reader) {
		return func() (string, io.Reader) { return form(fields, strings.NewReader("data")) }
	}
	noFile := func() (string, io.Reader) { return form(stdFields, nil) }
	for _, tc := range []struct {
		name    string
		body    func() (string, io.Reader)
		headers map[string]string
		method  string
		status  int
		code    string
		msg     string
	}{
		{"no token", small(stdFields...), nil, "", 401, imaged.EUNAUTHORIZED, "Authentication required"},
		{"bad token", small(stdFields...), map[string]string{"X-Auth-Token": "nope"}, "", 401, imaged.EUNAUTHORIZED, "requires authentication"},
		{"reader may not create", small(stdFields...), map[string]string{"X-Auth-Token": "reader-tok"}, "", 403, imaged.EFORBIDDEN, ""},
		{"json body", func() (string, io.Reader) { return "application/json", strings.NewReader(`{"name":"x"}`) }, member, "", 415, "unsupported_media_type", "multipart/form-data"},
		{"no content type", func() (string, io.Reader) { return "", strings.NewReader("x") }, member, "", 415, "unsupported_media_type", ""},
		{"no boundary", func() (string, io.Reader) { return "multipart/form-data", strings.NewReader("x") }, member, "", 400, imaged.EINVALID, "boundary"},
		{"garbage body", func() (string, io.Reader) { return "multipart/form-data; boundary=zz", strings.NewReader("garbage") }, member, "", 400, imaged.EINVALID, "multipart"},
		{"no file part", noFile, member, "", 400, imaged.EINVALID, "No file part"},
		{"unknown field", small(field{"owner", "projB"}), member, "", 400, imaged.EINVALID, `"owner"`},
		{"repeated field", small(field{"name", "a"}, field{"name", "b"}), member, "", 400, imaged.EINVALID, "repeated"},
		{"bad min_disk", small(field{"min_disk", "big"}), member, "", 400, imaged.EINVALID, "integer"},
		{"bad size", small(field{"size", "-3"}), member, "", 400, imaged.EINVALID, "size"},
		{"bad visibility", small(field{"name", "x"}, field{"visibility", "everyone"}), member, "", 400, imaged.EINVALID, ""},
		{"field too long", small(field{"name", strings.Repeat("n", 70<<10)}), member, "", 413, imaged.ETOOLARGE, "longer than"},
		{"no disk_format", small(field{"name", "x"}), member, "", 400, imaged.EINVALID, "left queued"},
		{"GET", nil, member, http.MethodGet, 405, "method_not_allowed", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			if tc.method != "" {
				req, _ := http.NewRequest(tc.method, e.url, nil)
				req.Header.Set("X-Auth-Token", "member-tok")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a = answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}
				if resp.Header.Get("Allow") != "POST" {
					t.Errorf("Allow %q", resp.Header.Get("Allow"))
				}
			} else {
				ctype, body := tc.body()
				a = post(t, e.url, ctype, body, tc.headers)
			}
			msg := a.err.Message
			if tc.method != "" {
				msg = a.raw
			}
			if a.status != tc.status || (tc.method == "" && a.err.Code != tc.code) || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %s, want %d %s containing %q", a.status, a.raw, tc.status, tc.code, tc.msg)
			}
			if tc.status == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Keystone") {
				t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
			}
		})
	}
	// None of the refused requests before the file part created an
	// image.
	ctx := imaged.NewContextWithIdentity(context.Background(), &imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin"}})
	imgs, err := e.svc.ListImages(ctx, imaged.ImageQuery{Visibility: "all"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name == nil || *imgs[0].Name != "x" {
		names := []string{}
		for _, i := range imgs {
			names = append(names, fmt.Sprint(i.Name))
		}
		t.Errorf("images after the refused requests: %v (want only the one without disk_format)", names)
	}
}

// TestCSRFGuard: with --auth none any request is admin, so a cross-site
// form post (which can carry neither X-Auth-Token nor X-Requested-With)
// must be refused.
func TestCSRFGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auth.Static(auth.NoneIdentity()), catalog.DefaultConfig())
	ctype, body := form(stdFields, strings.NewReader("data"))
	if a := post(t, e.url, ctype, body, nil); a.status != 403 || a.err.Code != "csrf_check_failed" {
		t.Fatalf("plain form post: %d %s", a.status, a.raw)
	}
	ctype, body = form(stdFields, strings.NewReader("data"))
	if a := post(t, e.url, ctype, body, map[string]string{"X-Requested-With": "XMLHttpRequest"}); a.status != 201 {
		t.Fatalf("with X-Requested-With: %d %s", a.status, a.raw)
	}
	ctype, body = form(stdFields, strings.NewReader("data"))
	if a := post(t, e.url, ctype, body, map[string]string{"X-Auth-Token": "anything"}); a.status != 201 {
		t.Fatalf("with X-Auth-Token: %d %s", a.status, a.raw)
	}
}

func FuzzUpload(f *testing.F) {
	e := newEnv(f, nil, catalog.DefaultConfig())
	h := uploadapi.New(uploadapi.Config{Images: e.svc, Auth: auth.Static(auth.NoneIdentity()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Add("--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=\"disk_format\"\r\n\r\nraw\r\n--b\r\nContent-Disposition: form-data; name=\"container_format\"\r\n\r\nbare\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--b--\r\n")
	f.Add("--b\r\nContent-Disposition: form-data; name=\"size\"\r\n\r\n4\r\n--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nda")
	f.Add("--b--")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, uploadapi.Path, strings.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		req.Header.Set("X-Requested-With", "XMLHttpRequest")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != http.StatusCreated && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("error body is not JSON: %s", w.Body)
		}
	})
}

// TestOpenAPIFragment: the fragment's references resolve once merged into
// the native API's document, and its image schema is the answer's shape.
func TestOpenAPIFragment(t *testing.T) {
	t.Parallel()
	var frag, base map[string]any
	if err := json.Unmarshal(uploadapi.OpenAPI(), &frag); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(nativeapi.OpenAPI, &base); err != nil {
		t.Fatal(err)
	}
	if _, ok := frag["paths"].(map[string]any)[uploadapi.Path]; !ok {
		t.Fatalf("the fragment does not document %s", uploadapi.Path)
	}
	lookup := func(ref string) bool {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		for _, doc := range []map[string]any{frag, base} {
			var cur any = doc
			for _, p := range parts {
				m, _ := cur.(map[string]any)
				cur = m[p]
			}
			if cur != nil {
				return true
			}
		}
		return false
	}
	var walk func(v any)
	refs := 0
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					refs++
					if !lookup(c.(string)) {
						t.Errorf("unresolved $ref %s", c)
					}
				}
				if k == "security" {
					for _, req := range c.([]any) {
						for name := range req.(map[string]any) {
							if !lookup("#/components/securitySchemes/" + name) {
								t.Errorf("unknown security scheme %s", name)
							}
						}
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(frag)
	if refs < 3 {
		t.Fatalf("only %d references found", refs)
	}
	schema := frag["components"].(map[string]any)["schemas"].(map[string]any)["UploadedImage"].(map[string]any)
	b, _ := json.Marshal(uploadapi.Image{})
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	props := schema["properties"].(map[string]any)
	if len(props) != len(fields) || len(schema["required"].([]any)) != len(fields) {
		t.Errorf("schema properties %v, answer fields %v", props, fields)
	}
	for k := range fields {
		if props[k] == nil {
			t.Errorf("answer field %s is not in the schema", k)
		}
	}
}
