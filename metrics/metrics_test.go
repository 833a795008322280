package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged/agentapi"
	"github.com/imaged/imaged/metrics"
	"github.com/imaged/imaged/nativeapi"
)

// exposition is a parsed text exposition: samples by "name{k="v",...}"
// with labels sorted, and each family's type.
type exposition struct {
	samples map[string]float64
	types   map[string]string
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseExposition parses the text format 0.0.4 strictly enough to catch
// what Prometheus would reject: malformed lines, bad escapes, repeated
// families, samples without a TYPE, repeated series.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	ex := exposition{samples: map[string]float64{}, types: map[string]string{}}
	done := map[string]bool{}
	current := ""
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end with a newline")
	}
	for ln, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", ln+1, line, fmt.Sprintf(format, args...))
		}
		if !utf8.ValidString(line) {
			fail("invalid UTF-8")
		}
		if strings.HasPrefix(line, "# HELP ") {
			name, _, _ := strings.Cut(line[len("# HELP "):], " ")
			if !nameRE.MatchString(name) {
				fail("bad name")
			}
			continue
		}
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 || !nameRE.MatchString(f[0]) {
				fail("bad TYPE")
			}
			switch f[1] {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				fail("bad type %q", f[1])
			}
			if done[f[0]] {
				fail("family %s declared twice", f[0])
			}
			done[f[0]] = true
			ex.types[f[0]] = f[1]
			current = f[0]
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			fail("unexpected comment or blank line")
		}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			fail("no value")
		}
		name, rest := line[:i], line[i:]
		if !nameRE.MatchString(name) {
			fail("bad metric name")
		}
		fam := name
		if ex.types[current] == "histogram" {
			fam = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		}
		if fam != current {
			fail("sample outside its family %s", current)
		}
		var labels []string
		if rest[0] == '{' {
			rest = rest[1:]
			for {
				if rest == "" {
					fail("unterminated labels")
				}
				if rest[0] == '}' {
					rest = rest[1:]
					break
				}
				if rest[0] == ',' {
					rest = rest[1:]
				}
				eq := strings.Index(rest, `="`)
				if eq < 0 || !labelRE.MatchString(rest[:eq]) {
					fail("bad label")
				}
				ln := rest[:eq]
				rest = rest[eq+2:]
				var v strings.Builder
				for {
					if rest == "" {
						fail("unterminated label value")
					}
					c := rest[0]
					rest = rest[1:]
					if c == '"' {
						break
					}
					if c == '\n' {
						fail("raw newline in a label value")
					}
					if c == '\\' {
						if rest == "" {
							fail("dangling escape")
						}
						switch rest[0] {
						case '\\':
							v.WriteByte('\\')
						case '"':
							v.WriteByte('"')
						case 'n':
							v.WriteByte('\n')
						default:
							fail("bad escape \\%c", rest[0])
						}
						rest = rest[1:]
						continue
					}
					v.WriteByte(c)
				}
				labels = append(labels, ln+"="+strconv.Quote(v.String()))
			}
		}
		if !strings.HasPrefix(rest, " ") {
			fail("no space before the value")
		}
		val, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil && !strings.Contains(rest, "Inf") && !strings.Contains(rest, "NaN") {
			fail("bad value: %v", err)
		}
		sort.Strings(labels)
		key := name + "{" + strings.Join(labels, ",") + "}"
		if _, dup := ex.samples[key]; dup {
			fail("series repeated")
		}
		ex.samples[key] = val
	}
	return ex
}

func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != metrics.ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	return parseExposition(t, string(body))
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	const id = "0b5b5b3e-7a1e-4e6b-9d51-0e0f2b4c9a11"
	for _, tc := range []struct{ path, want string }{
		{"/", "/"},
		{"/v2", "/v2"},
		{"/v2/", "/v2/"},
		{"/v2/images", "/v2/images"},
		{"/v2/images/" + id, "/v2/images/{id}"},
		{"/v2/images/" + id + "/file", "/v2/images/{id}/file"},
		{"/v2.1/images/" + id + "/file", "/v2/images/{id}/file"},
		{"/v2.17/images", "/v2/images"},
		{"/v2.x/images", "other"},
		{"/v2/images/" + id + "/tags/some%20tag", "/v2/images/{id}/tags/{tag}"},
		{"/v2/images/" + id + "/members/proj", "/v2/images/{id}/members/{member}"},
		{"/v2/images/" + id + "/actions/deactivate", "/v2/images/{id}/actions/deactivate"},
		{"/v2/images/" + id + "/actions/explode", "other"},
		{"/v2/images//file", "other"},
		{"/v2/images/", "other"},
		{"/v2/schemas/image", "/v2/schemas/{schema}"},
		{"/v2/schemas/metadefs/namespace", "/v2/schemas/metadefs/{schema}"},
		{"/v2/metadefs/namespaces/OS::Compute/objects/x", "/v2/metadefs/namespaces/{ns}/objects/{name}"},
		{"/v2/stores/fast/" + id, "/v2/stores/{store}/{id}"},
		{"/api/v1/container-images/scan", "/api/v1/container-images/scan"},
		{"/api/v1/container-images/sha256:abc", "/api/v1/container-images/{id}"},
		{"/api/v1/container-images/bulk/purge", "/api/v1/container-images/bulk/purge"},
		{"/api/v1/container-images/bulk/other", "other"},
		{"/api/v1/aliases/a/b/c:1", "/api/v1/aliases/{alias...}"},
		{"/api/v1/aliases", "/api/v1/aliases"},
		{"/api/v1/tasks/" + id + "/events", "/api/v1/tasks/{id}/events"},
		{"/api/v1/agents/node-1/heartbeat", "/api/v1/agents/{id}/heartbeat"},
		{"/api/v1/agents/purge-images", "/api/v1/agents/purge-images"},
		{"/api/v1/uploads", "/api/v1/uploads"},
		{"/console/app.js", "/console/{file}"},
		{"/metrics", "/metrics"},
		{"/wp-admin/install.php", "other"},
		{"/../../etc/passwd", "other"},
		{"", "other"},
		{"relative", "other"},
	} {
		if got := r.Route(tc.path); got != tc.want {
			t.Errorf("Route(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestRoutesCoverNativeAPI keeps DefaultRoutes in step with the native
// API's OpenAPI documents: every documented path gets its own pattern.
func TestRoutesCoverNativeAPI(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	wild := regexp.MustCompile(`\{[^}]*\}`)
	for _, doc := range [][]byte{nativeapi.OpenAPI, agentapi.OpenAPI()} {
		var d struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Paths) == 0 {
			t.Fatal("no paths in an OpenAPI document")
		}
		for p := range d.Paths {
			concrete := wild.ReplaceAllString(p, "x1")
			got := r.Route(concrete)
			if wild.ReplaceAllString(strings.ReplaceAll(got, "...}", "}"), "{}") != wild.ReplaceAllString(p, "{}") {
				t.Errorf("path %s (as %s) is labelled %q", p, concrete, got)
			}
		}
	}
}

func TestMiddlewareExposition(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	blob := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blob, bytes.Repeat([]byte("x"), 300_000), 0o600); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	app := http.NewServeMux()
	app.HandleFunc("PUT /v2/images/{id}/file", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	app.HandleFunc("GET /v2/images/{id}/file", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(blob)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(w, f) // through ReadFrom
	})
	app.HandleFunc("GET /v2/images", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"images":[]}`))
	})
	app.HandleFunc("GET /api/v1/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	app.HandleFunc("POST /v2/boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.Handler())
	mux.Handle("/", reg.Middleware(app))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, path string, body io.Reader) int {
		req, _ := http.NewRequest(method, srv.URL+path, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	const id = "0b5b5b3e-7a1e-4e6b-9d51-0e0f2b4c9a11"
	for range 3 {
		if c := do("PUT", "/v2/images/"+id+"/file", bytes.NewReader(make([]byte, 100_000))); c != 204 {
			t.Fatalf("PUT: %d", c)
		}
	}
	if c := do("GET", "/v2/images/"+id+"/file", nil); c != 200 {
		t.Fatalf("GET file: %d", c)
	}
	do("GET", "/v2/images", nil)
	do("GET", "/v2/images?limit=5", nil)
	do("GET", "/random/"+id, nil)
	do("BREW", "/v2/images", nil)
	do("POST", "/v2/boom", nil) // the server drops the connection
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); do("GET", "/api/v1/tasks/"+id, nil) }()
	<-entered

	ex := scrape(t, srv.URL+"/metrics")
	want := map[string]float64{
		`imaged_http_requests_total{code="2xx",method="PUT",route="/v2/images/{id}/file"}`:                 3,
		`imaged_http_requests_total{code="2xx",method="GET",route="/v2/images/{id}/file"}`:                 1,
		`imaged_http_requests_total{code="2xx",method="GET",route="/v2/images"}`:                           2,
		`imaged_http_requests_total{code="4xx",method="GET",route="other"}`:                                1,
		`imaged_http_requests_total{code="4xx",method="OTHER",route="/v2/images"}`:                         1,
		`imaged_http_requests_total{code="none",method="POST",route="other"}`:                              1,
		`imaged_http_request_body_bytes_total{method="PUT",route="/v2/images/{id}/file"}`:                  300_000,
		`imaged_http_response_body_bytes_total{method="GET",route="/v2/images/{id}/file"}`:                 300_000,
		`imaged_http_response_body_bytes_total{method="GET",route="/v2/images"}`:                           26,
		`imaged_http_request_duration_seconds_count{method="PUT",route="/v2/images/{id}/file"}`:            3,
		`imaged_http_request_duration_seconds_bucket{le="+Inf",method="PUT",route="/v2/images/{id}/file"}`: 3,
		`imaged_http_request_duration_seconds_bucket{le="10",method="PUT",route="/v2/images/{id}/file"}`:   3,
		`imaged_http_requests_in_flight{}`:                                                                 1,
	}
	for k, v := range want {
		if got, ok := ex.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// /v2/boom is not a known route: its label is "other", so a panic at
	// an unknown path still counts under a bounded label.
	for k := range ex.samples {
		if strings.Contains(k, id) || strings.Contains(k, "/random") {
			t.Errorf("raw path leaked into a label: %s", k)
		}
	}
	// Buckets are cumulative and bounded by the count.
	prev := -1.0
	for _, b := range metrics.Buckets {
		le := strconv.FormatFloat(b.Seconds(), 'g', -1, 64)
		v, ok := ex.samples[`imaged_http_request_duration_seconds_bucket{le="`+le+`",method="GET",route="/v2/images"}`]
		if !ok || v < prev || v > 2 {
			t.Fatalf("bucket le=%s: %v %v (prev %v)", le, v, ok, prev)
		}
		prev = v
	}
	if ex.types["imaged_http_request_duration_seconds"] != "histogram" || ex.types["imaged_http_requests_total"] != "counter" {
		t.Errorf("types: %v", ex.types)
	}
	if g := ex.samples["go_goroutines{}"]; g < 1 {
		t.Errorf("go_goroutines = %v", g)
	}
	if h := ex.samples["go_memstats_heap_alloc_bytes{}"]; h < 1 {
		t.Errorf("go_memstats_heap_alloc_bytes = %v", h)
	}
	close(release)
	wg.Wait()
	if v := scrape(t, srv.URL+"/metrics").samples[`imaged_http_requests_in_flight{}`]; v != 0 {
		t.Errorf("in flight after the request: %v", v)
	}
}

// TestStreamingThroughMiddleware: an event stream flushes and lifts its
// write deadline through the wrapper, as nativeapi's task events do.
func TestStreamingThroughMiddleware(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	got := make(chan string, 1)
	srv := httptest.NewServer(reg.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		if _, ok := w.(http.Flusher); !ok {
			t.Errorf("the wrapper is not an http.Flusher")
		}
		// The client reads the first event before the handler ends:
		// only a real flush delivers it.
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Errorf("the flushed event did not reach the client")
		}
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/tasks/t1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("data: one\n\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	got <- string(buf)
	_, _ = io.Copy(io.Discard, resp.Body)
	var text bytes.Buffer
	if err := reg.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if v := parseExposition(t, text.String()).samples[`imaged_http_response_body_bytes_total{method="GET",route="/api/v1/tasks/{id}/events"}`]; v != 11 {
		t.Errorf("response bytes of the stream: %v", v)
	}
}

func TestGaugesAndEscaping(t *testing.T) {
	t.Parallel()
	reg := metrics.New()
	reg.RegisterGauges(func() []metrics.Sample {
		return []metrics.Sample{
			{Name: "imaged_images", Help: "Images by status.\nSecond line \\ done", Labels: []metrics.Label{{Name: "status", Value: "active"}}, Value: 3},
			{Name: "imaged_tasks_total", Type: "counter", Value: 7},
			{Name: "imaged_images", Labels: []metrics.Label{{Name: "status", Value: "we\"ird\\\nname"}}, Value: 1.5},
			{Name: "bad name", Value: 1},
			{Name: "go_goroutines", Value: -1}, // would duplicate a family
			{Name: "imaged_nan", Value: math.NaN()},
		}
	})
	reg.RegisterGauges(func() []metrics.Sample {
		return []metrics.Sample{{Name: "imaged_images", Labels: []metrics.Label{{Name: "status", Value: "queued"}}, Value: 0}}
	})
	var buf bytes.Buffer
	if err := reg.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	ex := parseExposition(t, buf.String())
	for k, v := range map[string]float64{
		`imaged_images{status="active"}`:          3,
		`imaged_images{status="queued"}`:          0,
		`imaged_images{status="we\"ird\\\nname"}`: 1.5,
		`imaged_tasks_total{}`:                    7,
	} {
		if got, ok := ex.samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v; exposition:\n%s", k, got, ok, v, buf.String())
		}
	}
	if ex.types["imaged_tasks_total"] != "counter" || ex.types["imaged_images"] != "gauge" {
		t.Errorf("types: %v", ex.types)
	}
	if !math.IsNaN(ex.samples["imaged_nan{}"]) {
		t.Errorf("NaN sample: %v", ex.samples["imaged_nan{}"])
	}
	if ex.samples["go_goroutines{}"] < 1 {
		t.Errorf("an app gauge overrode go_goroutines")
	}
}

func TestTokenHandler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(metrics.New().TokenHandler("s3cret"))
	defer srv.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"s3cret", 401}, {"Bearer s3cret", 200}} {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("POST without a token: %d", resp.StatusCode)
	}
}

// nopWriter is the cheapest ResponseWriter, so that the benchmark and the
// allocation test measure the middleware alone.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

func hotPath() (http.Handler, *http.Request, http.ResponseWriter) {
	h := metrics.New().Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	}))
	req := httptest.NewRequest("GET", "/v2/images/0b5b5b3e-7a1e-4e6b-9d51-0e0f2b4c9a11/members/p1", strings.NewReader("body"))
	return h, req, &nopWriter{h: http.Header{}}
}

func TestMiddlewareAllocs(t *testing.T) {
	h, req, w := hotPath()
	allocs := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) })
	if allocs > 1 {
		t.Errorf("middleware allocates %v times per request, want at most 1", allocs)
	}
}

func BenchmarkMiddleware(b *testing.B) {
	h, req, w := hotPath()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func BenchmarkMiddlewareParallel(b *testing.B) {
	h, _, _ := hotPath()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/api/v1/container-images/sha256:abc", nil)
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}

func FuzzRoute(f *testing.F) {
	for _, p := range metrics.DefaultRoutes {
		f.Add(p)
	}
	f.Add("/v2.1/images/x/file")
	f.Add("/api/v1/aliases/a/b//c")
	f.Add("//")
	labels := map[string]bool{metrics.OtherRoute: true}
	for _, p := range metrics.DefaultRoutes {
		labels[p] = true
	}
	r := metrics.New()
	f.Fuzz(func(t *testing.T, path string) {
		if got := r.Route(path); !labels[got] {
			t.Fatalf("Route(%q) = %q: not a pattern", path, got)
		}
	})
}

// BenchmarkBaseline is the handler of BenchmarkMiddleware without the
// middleware: the difference is the middleware's cost.
func BenchmarkBaseline(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	})
	req := httptest.NewRequest("GET", "/v2/images/0b5b5b3e-7a1e-4e6b-9d51-0e0f2b4c9a11/members/p1", nil)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// TestRoutesCoverGlanceAPI keeps DefaultRoutes in step with the Glance
// API's routes, read from glanceapi's registrations (a.handle("/v2/...")
// and the metadefs namespace routes, ns+"/...").
func TestRoutesCoverGlanceAPI(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "glanceapi", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("glanceapi sources: %v", err)
	}
	reg := regexp.MustCompile(`(?:a\.handle|a\.mux\.HandleFunc)\((?:(ns)\+)?"([^"]*)"(\+s)?,`)
	nsDecl := regexp.MustCompile(`const ns = "([^"]+)"`)
	wild := regexp.MustCompile(`\{[^}]*\}`)
	r := metrics.New()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ns := ""
		if m := nsDecl.FindSubmatch(src); m != nil {
			ns = string(m[1])
		}
		for _, m := range reg.FindAllStringSubmatch(string(src), -1) {
			p := m[2]
			if m[1] != "" {
				p = ns + p
			}
			if m[3] != "" {
				p += "{schema}" // "/v2/schemas/"+s: a name per schema
			}
			if !strings.HasPrefix(p, "/v2/") || strings.HasSuffix(p, "/") || p == "/v2/metadefs" {
				continue // catch-alls (501s of disabled metadefs, 404s)
			}
			n++
			concrete := wild.ReplaceAllString(p, "x1")
			if got := r.Route(concrete); wild.ReplaceAllString(got, "{}") != wild.ReplaceAllString(p, "{}") {
				t.Errorf("glanceapi route %s (as %s) is labelled %q", p, concrete, got)
			}
		}
	}
	if n < 30 {
		t.Fatalf("found only %d glanceapi routes: the pattern drifted", n)
	}
}

// FuzzGaugeEscaping: whatever an app gauge's label value and help hold,
// the exposition parses and the value round-trips.
func FuzzGaugeEscaping(f *testing.F) {
	f.Add("plain", "help")
	f.Add("q\"uo\\te\nnl", "multi\nline \\ help")
	f.Add("\xff\x00", "")
	f.Fuzz(func(t *testing.T, value, help string) {
		reg := metrics.New()
		reg.RegisterGauges(func() []metrics.Sample {
			return []metrics.Sample{{Name: "imaged_fuzz", Help: help, Labels: []metrics.Label{{Name: "v", Value: value}}, Value: 1}}
		})
		var buf bytes.Buffer
		if err := reg.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		ex := parseExposition(t, buf.String())
		want := strings.ToValidUTF8(value, "\uFFFD")
		if got, ok := ex.samples[`imaged_fuzz{v=`+strconv.Quote(want)+`}`]; !ok || got != 1 {
			t.Fatalf("value %q did not round-trip:\n%s", value, buf.String())
		}
	})
}
