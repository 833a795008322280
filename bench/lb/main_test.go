package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// backend is a loopback HTTP server that names itself in its answers and
// counts the TCP connections it accepted.
type backend struct {
	srv   *httptest.Server
	conns atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.RequestURI())
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

func TestRoundRobinKeepAlive(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	h, err := newProxy(a.srv.URL+", "+b.srv.URL, 4)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(h)
	defer proxy.Close()
	want := []string{"a", "b", "a", "b", "a", "b"}
	for i, w := range want {
		resp, err := http.Get(proxy.URL + "/v2/images?limit=20")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The backend sees the client's Host (the proxy's address) and the
		// request URI unchanged.
		if got, exp := string(body), fmt.Sprintf("%s %s /v2/images?limit=20", w, proxy.Listener.Addr()); got != exp {
			t.Errorf("request %d: got %q, want %q", i, got, exp)
		}
	}
	// Sequential requests reuse one kept-alive connection per backend.
	if n, m := a.conns.Load(), b.conns.Load(); n != 1 || m != 1 {
		t.Errorf("backend connections: a %d, b %d; want 1 each", n, m)
	}
}

func TestBadBackends(t *testing.T) {
	t.Parallel()
	for _, list := range []string{"", " , ", "127.0.0.1:1", "https://127.0.0.1:1", "http://"} {
		if _, err := newProxy(list, 1); err == nil {
			t.Errorf("newProxy(%q): no error", list)
		}
	}
}

func TestBackendDown(t *testing.T) {
	t.Parallel()
	// A listener closed at once gives an address nobody answers on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h, err := newProxy("http://"+addr, 1)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(h)
	defer proxy.Close()
	resp, err := http.Get(proxy.URL + "/versions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
}
