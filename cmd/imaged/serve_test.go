package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	iofs "io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imaged/imaged"
	blobfs "github.com/imaged/imaged/blob/fs"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/sqlstore"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseServeFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*serveConfig) bool
		wantErr string
	}{
		{name: "defaults", want: func(c *serveConfig) bool {
			return c.Addr == "127.0.0.1:9292" && c.DataDir == "./imaged-data" &&
				c.Database == filepath.Join("imaged-data", "imaged.db") && c.Auth == "none" && c.Policy == "secure"
		}},
		{name: "env", env: map[string]string{"IMAGED_ADDR": "127.0.0.1:1234", "IMAGED_POLICY": "legacy", "IMAGED_DATA_DIR": "/tmp/x"},
			want: func(c *serveConfig) bool {
				return c.Addr == "127.0.0.1:1234" && c.Policy == "legacy" && c.Database == "/tmp/x/imaged.db"
			}},
		{name: "flag beats env", args: []string{"--addr", "127.0.0.1:5"}, env: map[string]string{"IMAGED_ADDR": "127.0.0.1:1234"},
			want: func(c *serveConfig) bool { return c.Addr == "127.0.0.1:5" }},
		{name: "postgres database", args: []string{"--database", "postgres://u:p@h/db"},
			want: func(c *serveConfig) bool { return c.Database == "postgres://u:p@h/db" }},
		{name: "bad auth", args: []string{"--auth", "keystone2"}, wantErr: `invalid --auth "keystone2"`},
		{name: "bad policy env", env: map[string]string{"IMAGED_POLICY": "open"}, wantErr: `invalid --policy "open"`},
		{name: "tokens without file", args: []string{"--auth", "tokens"}, wantErr: "needs --tokens-file"},
		{name: "glance-download without keystone", args: []string{"--import-methods", "glance-direct,glance-download"}, wantErr: "glance-download needs --auth keystone"},
		{name: "keystone without url", args: []string{"--auth", "keystone"}, env: map[string]string{"IMAGED_KEYSTONE_PASSWORD": "x"}, wantErr: "needs --keystone-url"},
		{name: "keystone without password", args: []string{"--auth", "keystone", "--keystone-url", "http://127.0.0.1:5000"}, wantErr: "IMAGED_KEYSTONE_PASSWORD"},
		{name: "bad scan concurrency", args: []string{"--scan-concurrency", "0"}, wantErr: "invalid --scan-concurrency"},
		{name: "bad addr", args: []string{"--addr", "nonsense"}, wantErr: "invalid --addr"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
		{name: "bad shutdown", args: []string{"--shutdown-timeout", "soon"}, wantErr: "invalid --shutdown-timeout"},
		{name: "quota from env", env: map[string]string{"IMAGED_IMAGE_PROPERTY_QUOTA": "300"},
			want: func(c *serveConfig) bool { return c.PropertyQuota == 300 && c.TagQuota == 128 }},
		{name: "bad quota env", env: map[string]string{"IMAGED_IMAGE_TAG_QUOTA": "many"}, wantErr: `invalid IMAGED_IMAGE_TAG_QUOTA "many"`},
		{name: "bad quota env overridden by flag", args: []string{"--image-tag-quota", "5"}, env: map[string]string{"IMAGED_IMAGE_TAG_QUOTA": "many"},
			want: func(c *serveConfig) bool { return c.TagQuota == 5 }},
		{name: "bad limit max", args: []string{"--api-limit-max", "0"}, wantErr: "invalid --api-limit-max"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "invalid --log-level"},
		{name: "data defaults", args: []string{"--data-dir", "/d"}, want: func(c *serveConfig) bool {
			return c.StoreDir == filepath.Join("/d", "images") && c.ImageSizeCap == 1<<40 && c.UploadLease == 60*time.Second
		}},
		{name: "data flags", args: []string{"--store-dir", "/s", "--image-size-cap", "1048576", "--upload-lease", "2s"}, want: func(c *serveConfig) bool {
			return c.StoreDir == "/s" && c.ImageSizeCap == 1<<20 && c.UploadLease == 2*time.Second
		}},
		{name: "data env", env: map[string]string{"IMAGED_STORE_DIR": "/e", "IMAGED_IMAGE_SIZE_CAP": "5", "IMAGED_UPLOAD_LEASE": "1m"}, want: func(c *serveConfig) bool {
			return c.StoreDir == "/e" && c.ImageSizeCap == 5 && c.UploadLease == time.Minute
		}},
		{name: "data flag beats env", args: []string{"--upload-lease", "3s"}, env: map[string]string{"IMAGED_UPLOAD_LEASE": "1m"},
			want: func(c *serveConfig) bool { return c.UploadLease == 3*time.Second }},
		{name: "bad size cap", args: []string{"--image-size-cap", "1GB"}, wantErr: `invalid --image-size-cap "1GB"`},
		{name: "zero size cap", args: []string{"--image-size-cap", "0"}, wantErr: "invalid --image-size-cap"},
		{name: "bad size cap env", env: map[string]string{"IMAGED_IMAGE_SIZE_CAP": "-1"}, wantErr: "invalid --image-size-cap"},
		{name: "bad upload lease", args: []string{"--upload-lease", "60"}, wantErr: `invalid --upload-lease "60"`},
		{name: "tiny upload lease", args: []string{"--upload-lease", "1ns"}, wantErr: "invalid --upload-lease"},
		{name: "quotas default unlimited", want: func(c *serveConfig) bool {
			return c.Quotas == catalog.Unlimited()
		}},
		{name: "quota flags", args: []string{"--quota-image-count", "10", "--quota-image-size-total", "1073741824", "--quota-image-stage-total", "0", "--quota-image-count-uploading", "2"},
			want: func(c *serveConfig) bool {
				return c.Quotas == catalog.Quotas{ImageCountTotal: 10, ImageSizeTotal: 1 << 30, ImageStageTotal: 0, ImageCountUploading: 2}
			}},
		{name: "quota env", env: map[string]string{"IMAGED_QUOTA_IMAGE_COUNT": "7", "IMAGED_QUOTA_IMAGE_SIZE_TOTAL": "5", "IMAGED_QUOTA_IMAGE_STAGE_TOTAL": "6", "IMAGED_QUOTA_IMAGE_COUNT_UPLOADING": "1"},
			want: func(c *serveConfig) bool {
				return c.Quotas == catalog.Quotas{ImageCountTotal: 7, ImageSizeTotal: 5, ImageStageTotal: 6, ImageCountUploading: 1}
			}},
		{name: "quota flag beats env", args: []string{"--quota-image-count", "-1"}, env: map[string]string{"IMAGED_QUOTA_IMAGE_COUNT": "7"},
			want: func(c *serveConfig) bool { return c.Quotas.ImageCountTotal == -1 }},
		{name: "bad quota", args: []string{"--quota-image-size-total", "1GB"}, wantErr: `invalid --quota-image-size-total "1GB"`},
		{name: "quota below -1", args: []string{"--quota-image-count", "-2"}, wantErr: `invalid --quota-image-count "-2"`},
		{name: "bad quota env value", env: map[string]string{"IMAGED_QUOTA_IMAGE_COUNT_UPLOADING": "x"}, wantErr: `invalid --quota-image-count-uploading "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseServeFlags(tt.args, envOf(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db": "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":             "postgres://u@h/db",
		"/var/lib/imaged/imaged.db":     "/var/lib/imaged/imaged.db",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writes and the
// test's reads.
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

var urlRE = regexp.MustCompile(`url=(http://[0-9.:]+)`)

// startServe runs `imaged serve` in-process and returns its URL, a function
// that stops it (as SIGTERM would) and returns the exit code, and its log.
func startServe(t *testing.T, args ...string) (string, func() int, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), envOf(nil), io.Discard, &logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := urlRE.FindStringSubmatch(logs.String()); m != nil {
			stop := func() int { cancel(); return <-done }
			t.Cleanup(func() { cancel() })
			return m[1], stop, &logs
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d: %s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not log its URL: %s", logs.String())
	return "", nil, nil
}

func TestServeStartsAndStopsGracefully(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url, stop, logs := startServe(t, "--data-dir", filepath.Join(dir, "data"))
	resp, err := http.Get(url + "/versions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /versions = %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/v2/images")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/images with --auth none = %d", resp.StatusCode)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d; log: %s", code, logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "imaged.db")); err != nil {
		t.Fatalf("database file not in data dir: %v", err)
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Fatalf("no shutdown log line: %s", logs.String())
	}
}

func TestServeFailsClearly(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // not defer: the subtests run after this function returns
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"port in use", []string{"--addr", busy.Addr().String(), "--data-dir", t.TempDir()}, 1, "cannot listen on"},
		{"data dir is a file", []string{"--addr", "127.0.0.1:0", "--data-dir", file}, 1, "data dir"},
		{"bad flag", []string{"--policy", "nope"}, 2, "invalid --policy"},
		{"missing tokens file", []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--auth", "tokens", "--tokens-file", filepath.Join(t.TempDir(), "absent.yaml")}, 1, "tokens file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code := run(context.Background(), append([]string{"serve"}, tt.args...), envOf(nil), io.Discard, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("code %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

func TestServeTokensNeverLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	const secret = "alice-very-secret-token"
	if err := os.WriteFile(tokens, []byte("tokens:\n  - token: \""+secret+"\"\n    user_id: alice\n    project_id: projA\n    roles: [member, reader]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, stop, logs := startServe(t, "--data-dir", dir, "--auth", "tokens", "--tokens-file", tokens, "--log-level", "debug")
	for _, tok := range []string{secret, "wrong-token"} {
		req, _ := http.NewRequest("GET", url+"/v2/images", nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusOK
		if tok == "wrong-token" {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Fatalf("token %q: status %d, want %d", tok, resp.StatusCode, want)
		}
	}
	stop()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), secret) || strings.Contains(sc.Text(), "wrong-token") {
			t.Fatalf("a token appears in the log: %s", sc.Text())
		}
	}
}

// A previous run that crashed mid-upload left an image saving under an
// expired lease, its partial bytes and an orphaned blob: serve recovers
// them all before it answers, and keeps sweeping afterwards.
func TestServeRecoversAbandonedUploads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobfs.New(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	newImage := func(id string, lease *imaged.Lease) {
		status := imaged.StatusQueued
		if lease != nil {
			status = imaged.StatusSaving
		}
		img := &imaged.Image{ID: id, Status: status, Visibility: imaged.VisibilityShared, Owner: "admin",
			DiskFormat: "raw", ContainerFormat: "bare", CreatedAt: past, UpdatedAt: past, Lease: lease}
		if err := store.CreateImage(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	put := func(key string) {
		w, err := blobs.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("partial"))
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const crashed, later = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	newImage(crashed, &imaged.Lease{ID: "l1", Holder: "gone:1", Expires: past})
	put("images/" + crashed + "/l1")
	put("images/33333333-3333-4333-8333-333333333333/x") // no such image: an orphan
	store.Close()
	// The blobs are as old as the crash (older than the sweep's grace).
	old := past.Add(-time.Hour)
	if err := filepath.WalkDir(filepath.Join(dir, "images"), func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	url, stop, logs := startServe(t, "--data-dir", dir, "--upload-lease", "200ms")
	img := getImage(t, url, crashed)
	if img["status"] != "queued" {
		t.Fatalf("crashed upload's image is %v at start-up, want queued", img["status"])
	}
	var left []string
	blobs.List(ctx, "", func(b imaged.BlobInfo) error { left = append(left, b.Key); return nil })
	if len(left) != 0 {
		t.Fatalf("blobs left after start-up: %v; log: %s", left, logs.String())
	}

	// A second crash while serving (another process sharing the
	// database): the periodic sweep recovers it within a few leases.
	store, err = sqlstore.Open(ctx, filepath.Join(dir, "imaged.db"))
	if err != nil {
		t.Fatal(err)
	}
	newImage(later, &imaged.Lease{ID: "l2", Holder: "gone:2", Expires: time.Now().UTC().Truncate(time.Microsecond)})
	store.Close()
	deadline := time.Now().Add(5 * time.Second)
	for getImage(t, url, later)["status"] != "queued" {
		if time.Now().After(deadline) {
			t.Fatalf("periodic recovery did not run; log: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(logs.String(), "recovered abandoned uploads") {
		t.Errorf("no recovery log line: %s", logs.String())
	}
}

func getImage(t *testing.T, url, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(url + "/v2/images/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET image %s: status %d: %v", id, resp.StatusCode, err)
	}
	return m
}
