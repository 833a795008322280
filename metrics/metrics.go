// Package metrics exposes imaged's HTTP and runtime metrics in the
// Prometheus text exposition format (version 0.0.4), with the standard
// library only.
//
// Middleware records, per request, the method, a route label that is a
// path PATTERN ("/v2/images/{id}/file", never the raw path: the set of
// labels is fixed when the Registry is made, and unknown paths count as
// "other"), the status class, the latency (a histogram from 1 ms to 10 s),
// the requests in flight and the request and response body bytes (which
// are the image data on the /file, /stage and /uploads routes). Handler
// serves the samples together with Go runtime gauges and the gauges of
// functions registered with RegisterGauges.
//
// The hot path takes no lock and, in the steady state, allocates nothing:
// every series is a preallocated block of atomic counters indexed by
// (route, method), and the response writer wrapper comes from a sync.Pool.
package metrics

import (
	"bufio"
	"crypto/subtle"
	"io"
	"math"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Buckets are the upper bounds of the latency histogram.
var Buckets = []time.Duration{
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

const nBuckets = 13 // len(Buckets); +Inf is implied by the count

// methods are the method label values; anything else is "OTHER" (a client
// can send any token as a method).
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}

const nMethods = len(methods)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	}
	return 7
}

// classes are the status class labels; index 0 counts requests whose
// handler panicked before answering (the server then drops the
// connection), which is neither a status nor success.
var classes = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// series holds the counters of one (route, method).
type series struct {
	codes     [len(classes)]atomic.Uint64
	buckets   [nBuckets]atomic.Uint64 // non-cumulative; cumulated when served
	sumNanos  atomic.Uint64
	reqBytes  atomic.Uint64
	respBytes atomic.Uint64
}

// Sample is one value of an application gauge or counter, as the
// functions given to RegisterGauges return them. Samples that share a Name
// form one metric family; Help and Type are taken from its first sample.
type Sample struct {
	Name   string   // [a-zA-Z_:][a-zA-Z0-9_:]*; others are dropped
	Help   string   // optional
	Type   string   // "gauge" (default) or "counter"
	Labels []Label  // optional
	Value  float64  //
	_      struct{} // keyed literals only
}

// Label is one label of a Sample.
type Label struct {
	Name, Value string
}

// Registry holds the counters of the middleware and the registered gauge
// functions. The zero value is not usable: call New.
type Registry struct {
	rt       *router
	series   []series // route*nMethods + method
	inFlight atomic.Int64
	start    time.Time
	pool     sync.Pool

	mu     sync.Mutex
	gauges []func() []Sample
}

// Option configures New.
type Option func(*Registry)

// WithRoutes replaces the route patterns (DefaultRoutes) the middleware
// labels requests with.
func WithRoutes(patterns ...string) Option {
	return func(r *Registry) { r.rt = newRouter(patterns) }
}

// New returns a registry labelling routes with DefaultRoutes.
func New(opts ...Option) *Registry {
	r := &Registry{rt: newRouter(DefaultRoutes), start: time.Now()}
	for _, o := range opts {
		o(r)
	}
	r.series = make([]series, len(r.rt.labels)*nMethods)
	r.pool.New = func() any { return &recorder{} }
	return r
}

// Route returns the route label the middleware gives path.
func (r *Registry) Route(path string) string { return r.rt.labels[r.rt.match(path)] }

// RegisterGauges adds a function called at every scrape whose samples are
// served with the others (catalog sizes, task counts...). It must be
// quick and safe for concurrent use.
func (r *Registry) RegisterGauges(f func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges = append(r.gauges, f)
}

// Middleware records every request served by h.
func (r *Registry) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Offsets from the registry's start read only the monotonic
		// clock, half the cost of time.Now (which also reads the wall
		// clock).
		start := time.Since(r.start)
		r.inFlight.Add(1)
		rec := r.pool.Get().(*recorder)
		rec.w, rec.status, rec.written = w, 0, 0
		body := req.Body
		counted := body != nil && body != http.NoBody
		if counted {
			rec.body.rc, rec.body.n = body, 0
			req.Body = &rec.body
		}
		s := &r.series[r.rt.match(req.URL.Path)*nMethods+methodIndex(req.Method)]
		finished := false
		defer func() {
			if !finished {
				// The handler panicked: count the request (as
				// "none" unless it answered first) and let the
				// panic go on to the server; the recorder is not
				// reused since the handler may still hold it.
				r.observe(s, rec, counted, start, true)
			}
		}()
		h.ServeHTTP(rec, req)
		finished = true
		r.observe(s, rec, counted, start, false)
		if counted {
			req.Body = body
			rec.body.rc = nil
		}
		rec.w = nil
		r.pool.Put(rec)
	})
}

func (r *Registry) observe(s *series, rec *recorder, counted bool, start time.Duration, panicked bool) {
	d := time.Since(r.start) - start
	r.inFlight.Add(-1)
	status := rec.status
	if status == 0 && !panicked {
		// A handler that returns without writing gets an empty 200.
		status = http.StatusOK
	}
	s.codes[classIndex(status)].Add(1)
	i := 0
	for i < nBuckets && d > Buckets[i] {
		i++
	}
	if i < nBuckets {
		s.buckets[i].Add(1)
	}
	s.sumNanos.Add(uint64(d))
	if counted {
		s.reqBytes.Add(uint64(rec.body.n))
	}
	s.respBytes.Add(uint64(rec.written))
}

// recorder wraps a ResponseWriter to learn the status and the bytes sent.
type recorder struct {
	w       http.ResponseWriter
	status  int
	written int64
	body    countingBody
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(code int) {
	// 1xx answers (103 Early Hints) precede the final status.
	if rec.status == 0 && code >= 200 {
		rec.status = code
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.w.Write(b)
	rec.written += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for downloads (io.Copy from a
// file) while counting.
func (rec *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rec.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rec.w}, src)
	}
	rec.written += n
	return n, err
}

// writerOnly hides ReadFrom so that io.Copy does not loop back.
type writerOnly struct{ io.Writer }

// FlushError lets streaming handlers (task events) flush through the
// wrapper, with http.ResponseController or as an http.Flusher (Flush).
func (rec *recorder) FlushError() error {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return http.NewResponseController(rec.w).Flush()
}

// Flush implements http.Flusher.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// Unwrap lets http.ResponseController reach the connection's writer
// (deadlines, hijacking).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// countingBody counts the request body bytes the handler reads.
type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// Handler serves the exposition at any path (mount it at GET /metrics).
// It asks for no credentials: mount it on a listener only Prometheus
// reaches, or use TokenHandler.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		bw := bufio.NewWriterSize(w, 32<<10)
		if r.WriteText(bw) == nil {
			_ = bw.Flush()
		}
	})
}

// TokenHandler is Handler behind a bearer token (Prometheus'
// authorization: credentials, or bearer_token_file): a request without
// "Authorization: Bearer <token>" gets 401. An empty token is Handler.
func (r *Registry) TokenHandler(token string) http.Handler {
	h := r.Handler()
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "401 unauthorized: send Authorization: Bearer <metrics token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// WriteText writes the whole exposition to w.
func (r *Registry) WriteText(w io.Writer) error {
	e := &expo{w: w}
	r.writeHTTP(e)
	r.writeRuntime(e)
	r.writeGauges(e)
	return e.err
}

// expo writes exposition lines; it keeps the first write error and stops.
type expo struct {
	w   io.Writer
	err error
	buf []byte
}

func (e *expo) family(name, help, typ string) {
	e.buf = append(e.buf[:0], "# HELP "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, ' ')
	e.buf = appendHelp(e.buf, help)
	e.buf = append(e.buf, "\n# TYPE "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, typ...)
	e.buf = append(e.buf, '\n')
	e.flush()
}

// sample writes name{k="v",...} value; labels alternate names and values.
func (e *expo) sample(name string, v float64, labels ...string) {
	e.buf = append(e.buf[:0], name...)
	if len(labels) > 0 {
		e.buf = append(e.buf, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = append(e.buf, labels[i]...)
			e.buf = append(e.buf, `="`...)
			e.buf = appendLabelValue(e.buf, labels[i+1])
			e.buf = append(e.buf, '"')
		}
		e.buf = append(e.buf, '}')
	}
	e.buf = append(e.buf, ' ')
	e.buf = appendFloat(e.buf, v)
	e.buf = append(e.buf, '\n')
	e.flush()
}

func (e *expo) flush() {
	if e.err == nil {
		_, e.err = e.w.Write(e.buf)
	}
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		// Counters read better as 3000608 than as 3.000608e+06.
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendLabelValue escapes \, " and newline, as the format requires, and
// replaces invalid UTF-8 (which makes Prometheus reject the whole scrape).
func appendLabelValue(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendHelp escapes \ and newline (quotes are literal in HELP).
func appendHelp(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func (r *Registry) writeHTTP(e *expo) {
	// Only series that saw a request are written: the route table is
	// bounded, but most (route, method) pairs never occur.
	type active struct {
		route, method string
		s             *series
	}
	var act []active
	for i := range r.series {
		s := &r.series[i]
		var n uint64
		for c := range s.codes {
			n += s.codes[c].Load()
		}
		if n > 0 {
			act = append(act, active{r.rt.labels[i/nMethods], methods[i%nMethods], s})
		}
	}
	e.family("imaged_http_requests_total", "HTTP requests served, by method, route pattern and status class.", "counter")
	for _, a := range act {
		for c := range a.s.codes {
			if n := a.s.codes[c].Load(); n > 0 {
				e.sample("imaged_http_requests_total", float64(n), "method", a.method, "route", a.route, "code", classes[c])
			}
		}
	}
	e.family("imaged_http_request_duration_seconds", "Time from a request's arrival to the end of its handler.", "histogram")
	var le [nBuckets]string
	for i, b := range Buckets {
		le[i] = strconv.FormatFloat(b.Seconds(), 'g', -1, 64)
	}
	for _, a := range act {
		var cum, total uint64
		for c := range a.s.codes {
			total += a.s.codes[c].Load()
		}
		for i := range Buckets {
			cum += a.s.buckets[i].Load()
			e.sample("imaged_http_request_duration_seconds_bucket", float64(cum), "method", a.method, "route", a.route, "le", le[i])
		}
		// Loads are not one snapshot: a request finishing meanwhile
		// may be in a bucket but not yet in the count.
		total = max(total, cum)
		e.sample("imaged_http_request_duration_seconds_bucket", float64(total), "method", a.method, "route", a.route, "le", "+Inf")
		e.sample("imaged_http_request_duration_seconds_sum", float64(a.s.sumNanos.Load())/1e9, "method", a.method, "route", a.route)
		e.sample("imaged_http_request_duration_seconds_count", float64(total), "method", a.method, "route", a.route)
	}
	e.family("imaged_http_requests_in_flight", "HTTP requests being served.", "gauge")
	e.sample("imaged_http_requests_in_flight", float64(r.inFlight.Load()))
	e.family("imaged_http_request_body_bytes_total", "Request body bytes read by handlers (image data on the file, stage and uploads routes).", "counter")
	for _, a := range act {
		e.sample("imaged_http_request_body_bytes_total", float64(a.s.reqBytes.Load()), "method", a.method, "route", a.route)
	}
	e.family("imaged_http_response_body_bytes_total", "Response body bytes written (image data on the file route).", "counter")
	for _, a := range act {
		e.sample("imaged_http_response_body_bytes_total", float64(a.s.respBytes.Load()), "method", a.method, "route", a.route)
	}
}

// runtimeMetrics are read with runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world.
var runtimeMetrics = []struct {
	key, name, help, typ string
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "Goroutines that currently exist.", "gauge"},
	{"/memory/classes/heap/objects:bytes", "go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", "gauge"},
	{"/memory/classes/total:bytes", "go_memstats_sys_bytes", "Bytes of memory mapped by the Go runtime.", "gauge"},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "Heap size target of the end of the current GC cycle.", "gauge"},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "Completed GC cycles.", "counter"},
}

func (r *Registry) writeRuntime(e *expo) {
	samples := make([]metrics.Sample, len(runtimeMetrics))
	for i, m := range runtimeMetrics {
		samples[i].Name = m.key
	}
	metrics.Read(samples)
	for i, m := range runtimeMetrics {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			if m.key == "/sched/goroutines:goroutines" {
				v = float64(runtime.NumGoroutine())
			} else {
				continue // unsupported by this Go version
			}
		}
		e.family(m.name, m.help, m.typ)
		e.sample(m.name, v)
	}
	e.family("go_info", "Go version of the binary.", "gauge")
	e.sample("go_info", 1, "version", runtime.Version())
	e.family("process_start_time_seconds", "Start time of the process (of its metrics registry) since the Unix epoch.", "gauge")
	e.sample("process_start_time_seconds", float64(r.start.UnixNano())/1e9)
}

func (r *Registry) writeGauges(e *expo) {
	r.mu.Lock()
	fs := append([]func() []Sample(nil), r.gauges...)
	r.mu.Unlock()
	var all []Sample
	for _, f := range fs {
		all = append(all, f()...)
	}
	// One family's samples must be contiguous; keep the functions' order
	// otherwise.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	labels := make([]string, 0, 8)
	for i, s := range all {
		if !validName(s.Name) || reserved(s.Name) {
			continue
		}
		if i == 0 || all[i-1].Name != s.Name {
			typ := s.Type
			if typ != "counter" {
				typ = "gauge"
			}
			e.family(s.Name, s.Help, typ)
		}
		labels = labels[:0]
		ok := true
		for _, l := range s.Labels {
			if !validName(l.Name) || strings.Contains(l.Name, ":") || strings.HasPrefix(l.Name, "__") {
				ok = false
				break
			}
			labels = append(labels, l.Name, l.Value)
		}
		if ok {
			e.sample(s.Name, s.Value, labels...)
		}
	}
}

// reserved reports names the registry writes itself, which an app gauge
// must not duplicate (a family may appear once).
func reserved(name string) bool {
	if strings.HasPrefix(name, "imaged_http_") || name == "go_info" || name == "process_start_time_seconds" {
		return true
	}
	for _, m := range runtimeMetrics {
		if m.name == name {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
