// Command lb is the benchmark's round-robin reverse proxy: it spreads the
// requests it gets on 127.0.0.1 over several imaged processes that share one
// database, so that bench/bench.sh can measure N processes behind one
// address. It keeps idle keep-alive connections to every backend (enough for
// wrk's 16 connections) so that the proxy does not add a TCP handshake per
// request, and it passes the client's Host on so that imaged builds the same
// URLs it would build without the proxy.
//
//	lb -addr 127.0.0.1:9495 -backends http://127.0.0.1:9501,http://127.0.0.1:9502
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9495", "address to listen on")
	backends := flag.String("backends", "", "comma-separated backend base URLs (http://host:port)")
	idle := flag.Int("idle", 64, "idle keep-alive connections kept per backend")
	flag.Parse()
	h, err := newProxy(*backends, *idle)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lb:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, h); err != nil {
		fmt.Fprintln(os.Stderr, "lb:", err)
		os.Exit(1)
	}
}

// serve listens on addr and serves h until ctx ends.
func serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // best effort at exit
	}()
	log.Printf("lb listening on %s", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newProxy returns a handler that sends each request to the next backend of
// the comma-separated list in turn.
func newProxy(list string, idle int) (http.Handler, error) {
	var targets []*url.URL
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("backend %q: want http://host:port", s)
		}
		targets = append(targets, u)
	}
	if len(targets) == 0 {
		return nil, errors.New("no backends (-backends)")
	}
	// One transport for all backends: MaxIdleConnsPerHost applies to each
	// backend separately. Compression stays off: the client asks for it
	// or not, and the proxy should not add work.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle * len(targets),
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			t := targets[(next.Add(1)-1)%uint64(len(targets))]
			r.SetURL(t)
			// Keep the client's Host: imaged derives absolute URLs (e.g. a
			// Location header) from it, and they must point at the proxy.
			r.Out.Host = r.In.Host
		},
		// Image data streams through as it comes.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Printf("lb: %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "bad gateway", http.StatusBadGateway)
		},
	}, nil
}
