package webfetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
)

// server is an httptest server on a chosen loopback address that counts
// the requests it receives.
type server struct {
	*httptest.Server
	hits atomic.Int64
	port string
}

func serve(t *testing.T, ip string, h http.HandlerFunc) *server {
	t.Helper()
	return startServer(t, ip, h, false)
}

func startServer(t *testing.T, ip string, h http.HandlerFunc, tls bool) *server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	s.Listener = l
	// Refused TLS handshakes are expected; keep them out of the test log.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(l.Addr().String())
	return s
}

// stall blocks a handler until the client goes away (or a safety bound).
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func payload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "11")
	_, _ = io.WriteString(w, "image bytes")
}

// loopbackConfig allows loopback on any port, the only network here.
func loopbackConfig(t *testing.T) Config {
	t.Helper()
	nets, err := ParseNetworks([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	return Config{AllowedNetworks: nets, AllowedPorts: AnyPort(), ConnectTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
}

// staticLookup resolves names from a table; unknown names do not resolve.
func staticLookup(table map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ss, ok := table[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func mustNew(t *testing.T, cfg Config) *Fetcher {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fetchAll fetches and reads the whole body.
func fetchAll(t *testing.T, f *Fetcher, raw string) (string, int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	body, size, err := f.Fetch(ctx, raw)
	if err != nil {
		return "", 0, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return string(b), size, err
}

// wantErr checks an error's code and that its message contains want.
func wantErr(t *testing.T, err error, code, want string) {
	t.Helper()
	if imaged.ErrorCode(err) != code {
		t.Fatalf("error %v: code %q, want %q", err, imaged.ErrorCode(err), code)
	}
	if msg := imaged.ErrorMessage(err); !strings.Contains(msg, want) {
		t.Fatalf("error message %q does not contain %q", msg, want)
	}
}

func TestFetchAllowedLoopback(t *testing.T) {
	t.Parallel()
	var gotUA atomic.Value
	srv := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.Header.Get("User-Agent"))
		switch r.URL.Path {
		case "/sized":
			payload(w, r)
		case "/chunked":
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	cfg := loopbackConfig(t)
	cfg.UserAgent = "imaged-test"
	f := mustNew(t, cfg)
	tests := []struct {
		path     string
		wantBody string
		wantSize int64
	}{
		{"/sized", "image bytes", 11},
		{"/chunked", "part one, part two", -1},
		{"/empty", "", 0},
	}
	for _, tt := range tests {
		body, size, err := fetchAll(t, f, srv.URL+tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if body != tt.wantBody || size != tt.wantSize {
			t.Errorf("%s: got %q size %d, want %q size %d", tt.path, body, size, tt.wantBody, tt.wantSize)
		}
	}
	if ua := gotUA.Load(); ua != "imaged-test" {
		t.Errorf("User-Agent %v, want imaged-test", ua)
	}
}

func TestFetchRefusedByDefault(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", payload)
	tests := []struct {
		name string
		cfg  Config
		url  string
		want string
	}{
		{"default ports", Config{}, srv.URL + "/", "port " + srv.port + " is not allowed (allowed: 80, 443)"},
		{"loopback denied", Config{AllowedPorts: AnyPort()}, srv.URL + "/", "address 127.0.0.1 is in a denied network (127.0.0.0/8)"},
		{"mapped literal", Config{AllowedPorts: AnyPort()}, "http://[::ffff:127.0.0.1]:" + srv.port + "/", "(127.0.0.0/8)"},
		{"decimal literal", loopbackConfig(t), "http://2130706433:" + srv.port + "/", "not a canonical IP address"},
		{"octal literal", loopbackConfig(t), "http://0177.0.0.1:" + srv.port + "/", "not a canonical IP address"},
		// The system resolver maps localhost to loopback; the dialer
		// refuses the address it resolved.
		{"localhost name", Config{AllowedPorts: AnyPort()}, "http://localhost:" + srv.port + "/", "host localhost resolves only to denied addresses"},
		{"userinfo", loopbackConfig(t), "http://admin:hunter2@127.0.0.1:" + srv.port + "/", "user information"},
		{"ftp", loopbackConfig(t), "ftp://127.0.0.1:" + srv.port + "/", `scheme "ftp" is not allowed`},
		{"file", loopbackConfig(t), "file:///etc/passwd", `scheme "file" is not allowed`},
		{"gopher", loopbackConfig(t), "gopher://127.0.0.1:" + srv.port + "/_GET", `scheme "gopher" is not allowed`},
		{"denied port", func() Config { c := loopbackConfig(t); c.DeniedPorts = []int{mustAtoi(t, srv.port)}; return c }(),
			srv.URL + "/", "port " + srv.port + " is denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := fetchAll(t, mustNew(t, tt.cfg), tt.url)
			wantErr(t, err, imaged.EINVALID, tt.want)
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %v repeats the password", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := srv.hits.Load(); n != 0 {
			t.Errorf("refused fetches reached the server %d times", n)
		}
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFetchMappedLiteralAllowed(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", payload)
	body, size, err := fetchAll(t, mustNew(t, loopbackConfig(t)), "http://[::ffff:127.0.0.1]:"+srv.port+"/")
	if err != nil || body != "image bytes" || size != 11 {
		t.Fatalf("got %q, %d, %v", body, size, err)
	}
}

func TestRedirectLimit(t *testing.T) {
	t.Parallel()
	// /r/N redirects to /r/N-1; /r/0 is the image.
	srv := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			payload(w, r)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/r/%d", n-1), http.StatusFound)
	})
	tests := []struct {
		maxRedirects int
		chain        int
		want         string // "" = fetched
	}{
		{0, 0, ""},
		{0, 5, ""},
		{0, 6, "too many redirects (more than 5)"},
		{2, 2, ""},
		{2, 3, "too many redirects (more than 2)"},
		{-1, 0, ""},
		{-1, 1, "redirects are not allowed"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max%d_chain%d", tt.maxRedirects, tt.chain), func(t *testing.T) {
			t.Parallel()
			cfg := loopbackConfig(t)
			cfg.MaxRedirects = tt.maxRedirects
			body, size, err := fetchAll(t, mustNew(t, cfg), fmt.Sprintf("%s/r/%d", srv.URL, tt.chain))
			if tt.want != "" {
				wantErr(t, err, imaged.EINVALID, tt.want)
				return
			}
			if err != nil || body != "image bytes" || size != 11 {
				t.Fatalf("got %q, %d, %v", body, size, err)
			}
		})
	}
}

func TestRedirectToDenied(t *testing.T) {
	t.Parallel()
	inner := serve(t, "127.0.0.2", payload)
	outer := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			payload(w, r)
			return
		}
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusMovedPermanently)
	})
	only1, err := ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	deny2, err := ParseNetworks([]string{"127.0.0.2/32"})
	if err != nil {
		t.Fatal(err)
	}
	lookup := staticLookup(map[string][]string{"inner.test": {"127.0.0.2"}, "outer.test": {"127.0.0.1"}})
	tests := []struct {
		name   string
		denied []netip.Prefix
		to     string
		want   string
	}{
		{"literal, explicit deny", deny2, "http://127.0.0.2:" + inner.port + "/", "redirect target: address 127.0.0.2 is in a denied network (127.0.0.2/32)"},
		{"literal, built-in deny", nil, "http://127.0.0.2:" + inner.port + "/", "redirect target: address 127.0.0.2 is in a denied network (127.0.0.0/8)"},
		{"name resolving to denied", deny2, "http://inner.test:" + inner.port + "/", "host inner.test resolves only to denied addresses: address 127.0.0.2 is in a denied network (127.0.0.2/32)"},
		{"metadata", nil, "http://169.254.169.254/latest/meta-data/", "redirect target: address 169.254.169.254 is in a denied network (169.254.0.0/16)"},
		{"mapped metadata", nil, "http://[::ffff:a9fe:a9fe]/", "(169.254.0.0/16)"},
		{"decimal", nil, "http://2130706434:" + inner.port + "/", "redirect target: host \"2130706434\""},
		{"file", nil, "file:///etc/passwd", `redirect target: scheme "file" is not allowed`},
		{"userinfo", nil, "http://u:p@127.0.0.1:" + outer.port + "/", "redirect target: URLs with user information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := loopbackConfig(t)
			cfg.AllowedNetworks, cfg.DeniedNetworks, cfg.LookupIP = only1, tt.denied, lookup
			f := mustNew(t, cfg)
			_, _, err := fetchAll(t, f, "http://outer.test:"+outer.port+"/?to="+url.QueryEscape(tt.to))
			wantErr(t, err, imaged.EINVALID, tt.want)
		})
	}
	// Redirects within the allowed side are followed.
	cfg := loopbackConfig(t)
	cfg.AllowedNetworks, cfg.DeniedNetworks, cfg.LookupIP = only1, deny2, lookup
	body, _, err := fetchAll(t, mustNew(t, cfg), "http://outer.test:"+outer.port+"/?to="+url.QueryEscape("http://127.0.0.1:"+outer.port+"/ok"))
	if err != nil || body != "image bytes" {
		t.Fatalf("allowed redirect: %q, %v", body, err)
	}
	t.Cleanup(func() {
		if n := inner.hits.Load(); n != 0 {
			t.Errorf("the denied server was reached %d times", n)
		}
	})
}

func TestResolvedAddresses(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", payload)
	only1, err := ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		addrs []string
		code  string // "" = fetched
		want  string
	}{
		{"allowed", []string{"127.0.0.1"}, "", ""},
		{"denied skipped", []string{"127.0.0.2", "10.0.0.5", "127.0.0.1"}, "", ""},
		{"mapped allowed", []string{"::ffff:127.0.0.1"}, "", ""},
		{"loopback", []string{"127.0.0.2"}, imaged.EINVALID, "host h.test resolves only to denied addresses: address 127.0.0.2 is in a denied network (127.0.0.0/8)"},
		{"metadata", []string{"169.254.169.254"}, imaged.EINVALID, "(169.254.0.0/16)"},
		{"private", []string{"10.0.0.5", "192.168.1.1"}, imaged.EINVALID, "address 10.0.0.5 is in a denied network (10.0.0.0/8)"},
		{"mapped", []string{"::ffff:127.0.0.2"}, imaged.EINVALID, "address 127.0.0.2 is in a denied network"},
		{"v6 loopback", []string{"::1"}, imaged.EINVALID, "(::1/128)"},
		{"nat64", []string{"64:ff9b::a9fe:a9fe"}, imaged.EINVALID, "embeds 169.254.169.254"},
		{"no addresses", []string{}, imaged.EUNAVAILABLE, "host h.test has no addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := loopbackConfig(t)
			cfg.AllowedNetworks = only1
			cfg.LookupIP = staticLookup(map[string][]string{"h.test": tt.addrs})
			f := mustNew(t, cfg)
			u := "http://h.test:" + srv.port + "/"
			body, _, err := fetchAll(t, f, u)
			checkErr := f.Check(context.Background(), u)
			if tt.code == "" {
				if err != nil || body != "image bytes" || checkErr != nil {
					t.Fatalf("Fetch: %q, %v; Check: %v", body, err, checkErr)
				}
				return
			}
			wantErr(t, err, tt.code, tt.want)
			wantErr(t, checkErr, tt.code, tt.want)
		})
	}
	t.Run("unresolvable", func(t *testing.T) {
		t.Parallel()
		cfg := loopbackConfig(t)
		cfg.LookupIP = staticLookup(nil)
		_, _, err := fetchAll(t, mustNew(t, cfg), "http://nowhere.test:"+srv.port+"/")
		wantErr(t, err, imaged.EUNAVAILABLE, "cannot resolve host nowhere.test")
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) {
			t.Fatalf("error %v does not wrap the resolver's", err)
		}
	})
}

// TestRebinding: a name that resolved to an allowed address when the URL
// was checked resolves to a denied one when it is fetched.
func TestRebinding(t *testing.T) {
	t.Parallel()
	victim := serve(t, "127.0.0.2", payload)
	only1, err := ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	cfg := loopbackConfig(t)
	cfg.AllowedNetworks = only1
	cfg.LookupIP = func(_ context.Context, host string) ([]netip.Addr, error) {
		if calls.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
	}
	f := mustNew(t, cfg)
	u := "http://rebind.test:" + victim.port + "/"
	if err := f.Check(context.Background(), u); err != nil {
		t.Fatalf("Check (first resolution, allowed): %v", err)
	}
	_, _, err = fetchAll(t, f, u)
	wantErr(t, err, imaged.EINVALID, "address 127.0.0.2 is in a denied network (127.0.0.0/8)")
	if n := victim.hits.Load(); n != 0 {
		t.Fatalf("the rebound address was reached %d times", n)
	}
}

// TestDialControl: the dialer's Control hook refuses a denied address even
// when nothing checked it before (the last line of defence).
func TestDialControl(t *testing.T) {
	t.Parallel()
	victim := serve(t, "127.0.0.2", payload)
	only1, err := ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loopbackConfig(t)
	cfg.AllowedNetworks = only1
	f := mustNew(t, cfg)
	_, err = f.dialer.DialContext(context.Background(), "tcp", "127.0.0.2:"+victim.port)
	var e *imaged.Error
	if !errors.As(err, &e) || e.Code != imaged.EINVALID || !strings.Contains(e.Message, "127.0.0.2") {
		t.Fatalf("dial = %v, want the Control hook's refusal", err)
	}
	conn, err := f.dialer.DialContext(context.Background(), "tcp", "127.0.0.1:1")
	if imaged.ErrorCode(err) == imaged.EINVALID {
		t.Fatalf("dial to an allowed address refused: %v", err)
	}
	if conn != nil {
		conn.Close()
	}
}

func TestRemoteFailures(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			http.NotFound(w, r)
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/stall-headers":
			stall(r)
		case "/stall-body":
			w.Header().Set("Content-Length", "1000")
			_, _ = io.WriteString(w, "first bytes")
			w.(http.Flusher).Flush()
			stall(r)
		case "/short-body":
			w.Header().Set("Content-Length", "1000")
			_, _ = io.WriteString(w, "short")
			w.(http.Flusher).Flush()
			// Hijack and close so the client sees the truncation.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	})
	closed := serve(t, "127.0.0.1", payload)
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name        string
		url         string
		want        string
		wantPartial string // for body failures: the bytes read before it
	}{
		{"404", srv.URL + "/404", "127.0.0.1 answered 404 Not Found", ""},
		{"500", srv.URL + "/500", "127.0.0.1 answered 500 Internal Server Error", ""},
		{"header timeout", srv.URL + "/stall-headers", "timed out talking to 127.0.0.1", ""},
		{"idle body", srv.URL + "/stall-body", "127.0.0.1 sent no data for 300ms", "first bytes"},
		{"short body", srv.URL + "/short-body", "reading from 127.0.0.1", "short"},
		{"connection refused", closedURL + "/", "cannot reach 127.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := loopbackConfig(t)
			cfg.ResponseHeaderTimeout = 300 * time.Millisecond
			cfg.IdleTimeout = 300 * time.Millisecond
			start := time.Now()
			body, _, err := fetchAll(t, mustNew(t, cfg), tt.url)
			wantErr(t, err, imaged.EUNAVAILABLE, tt.want)
			if body != tt.wantPartial {
				t.Errorf("read %q before the failure, want %q", body, tt.wantPartial)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("failure took %v", d)
			}
		})
	}
}

// TestSlowConsumer: the idle timeout measures the remote, not the reader.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", payload)
	cfg := loopbackConfig(t)
	cfg.IdleTimeout = 100 * time.Millisecond
	body, _, err := mustNew(t, cfg).Fetch(context.Background(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(body, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	rest, err := io.ReadAll(body)
	if err != nil || string(buf)+string(rest) != "image bytes" {
		t.Fatalf("got %q + %q, %v", buf, rest, err)
	}
}

func TestCallerCancel(t *testing.T) {
	t.Parallel()
	srv := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) { stall(r) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := mustNew(t, loopbackConfig(t)).Fetch(ctx, srv.URL+"/")
	if imaged.ErrorCode(err) != imaged.EUNAVAILABLE || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch = %v, want EUNAVAILABLE wrapping the deadline", err)
	}
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "127.0.0.1", payload, true)
	cfg := loopbackConfig(t)
	// Unknown CA: the handshake fails, an unavailable remote.
	_, _, err := fetchAll(t, mustNew(t, cfg), srv.URL+"/")
	wantErr(t, err, imaged.EUNAVAILABLE, "cannot reach 127.0.0.1")
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.TLSConfig.RootCAs = pool
	body, size, err := fetchAll(t, mustNew(t, cfg), srv.URL+"/")
	if err != nil || body != "image bytes" || size != 11 {
		t.Fatalf("got %q, %d, %v", body, size, err)
	}
}

// TestProxy: a configured proxy is used (and may sit on a denied network);
// the target URL is still checked.
func TestProxy(t *testing.T) {
	t.Parallel()
	var gotURL atomic.Value
	proxy := serve(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		gotURL.Store(r.URL.String())
		payload(w, r)
	})
	pu, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := mustNew(t, Config{Proxy: pu, ConnectTimeout: 2 * time.Second})
	body, _, err := fetchAll(t, f, "http://images.example.com/cirros.img")
	if err != nil || body != "image bytes" {
		t.Fatalf("got %q, %v", body, err)
	}
	if got := gotURL.Load(); got != "http://images.example.com/cirros.img" {
		t.Fatalf("proxy saw %v", got)
	}
	_, _, err = fetchAll(t, f, "http://169.254.169.254/")
	wantErr(t, err, imaged.EINVALID, "(169.254.0.0/16)")
	if n := proxy.hits.Load(); n != 1 {
		t.Fatalf("proxy got %d requests, want 1", n)
	}
}

// BenchmarkFetch measures a 16 MiB download over loopback, idle timer
// included.
func BenchmarkFetch(b *testing.B) {
	data := strings.Repeat("x", 16<<20)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = io.WriteString(w, data)
	}))
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	nets, _ := ParseNetworks([]string{"127.0.0.0/8"})
	f, err := New(Config{AllowedNetworks: nets, AllowedPorts: AnyPort()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		body, _, err := f.Fetch(context.Background(), srv.URL+"/")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, body); err != nil || n != int64(len(data)) {
			b.Fatal(n, err)
		}
		body.Close()
	}
}
