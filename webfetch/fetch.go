package webfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/imaged/imaged"
)

// Fetcher is an imaged.URLFetcher. It is safe for concurrent use and keeps
// idle connections for reuse; every new connection is checked.
type Fetcher struct {
	policy    *policy
	client    *http.Client
	lookup    func(ctx context.Context, host string) ([]netip.Addr, error)
	dialer    *net.Dialer // checks every address in Control
	proxyAddr string      // host:port of the configured proxy, dialled unchecked
	idle      time.Duration
	userAgent string
}

var _ imaged.URLFetcher = (*Fetcher)(nil)

// orDefault maps 0 to def and negative durations to 0 (no limit).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// New builds a Fetcher from cfg; an invalid cfg is an EINVALID error.
func New(cfg Config) (*Fetcher, error) {
	pol, err := newPolicy(&cfg)
	if err != nil {
		return nil, err
	}
	f := &Fetcher{
		policy:    pol,
		lookup:    cfg.LookupIP,
		idle:      orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		userAgent: cfg.UserAgent,
	}
	if f.userAgent == "" {
		f.userAgent = DefaultUserAgent
	}
	if f.lookup == nil {
		f.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	connect := orDefault(cfg.ConnectTimeout, DefaultConnectTimeout)
	f.dialer = &net.Dialer{
		Timeout: connect,
		// The last line of defence: whatever produced the address, the
		// socket is not connected to a denied one.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return refusef("cannot check address %q", address)
			}
			return f.policy.checkAddr(ap.Addr())
		},
	}
	if cfg.Proxy != nil {
		port := cfg.Proxy.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[cfg.Proxy.Scheme]
			if port == "" {
				port = "1080"
			}
		}
		f.proxyAddr = net.JoinHostPort(cfg.Proxy.Hostname(), port)
	}
	maxRedirects := cfg.MaxRedirects
	if maxRedirects == 0 {
		maxRedirects = DefaultMaxRedirects
	}
	f.client = &http.Client{
		Transport: newTransport(&cfg, f.dial, connect, orDefault(cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects < 0 {
				return refusef("redirects are not allowed")
			}
			if len(via) > maxRedirects {
				return refusef("too many redirects (more than %d)", maxRedirects)
			}
			if _, err := f.policy.checkParsed(req.URL); err != nil {
				return refusef("redirect target: %s", reason(err))
			}
			return nil
		},
	}
	return f, nil
}

// CheckURL applies the scheme, host and port rules, and the network rules
// to an IP-literal host, without any network traffic. It suits a quick
// validation of user input (the web-download import call answers 400 for a
// URL that does not pass); Fetch checks everything again.
func (f *Fetcher) CheckURL(rawURL string) error {
	_, err := f.policy.checkURL(rawURL)
	return err
}

// Check is CheckURL plus name resolution: it fails when no address of the
// host is allowed, as Glance's import call does. An EUNAVAILABLE error means
// the name did not resolve. A later Fetch resolves and checks again (the
// answer may change: DNS rebinding).
func (f *Fetcher) Check(ctx context.Context, rawURL string) error {
	c, err := f.policy.checkURL(rawURL)
	if err != nil || c.ip.IsValid() || f.proxyAddr != "" {
		return err
	}
	_, err = f.allowedAddrs(ctx, c.host)
	return err
}

// Fetch implements imaged.URLFetcher: it GETs rawURL, following allowed
// redirects, and returns the body of a 2xx answer with its Content-Length
// (-1 when not given). The body fails with EUNAVAILABLE when the remote
// sends nothing for the idle timeout; closing it releases the connection.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (io.ReadCloser, int64, error) {
	c, err := f.policy.checkURL(rawURL)
	if err != nil {
		return nil, 0, err
	}
	// The request lives as long as its body: cancel is called by Close or
	// by the idle timer.
	rctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.url.String(), nil)
	if err != nil {
		cancel()
		return nil, 0, refusef("malformed URL")
	}
	req.Header.Set("User-Agent", f.userAgent)
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		return nil, 0, transportError(ctx, err, c.host)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
		cancel()
		return nil, 0, imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: %s answered %s", resp.Request.URL.Hostname(), resp.Status)
	}
	b := &idleBody{rc: resp.Body, cancel: cancel, idle: f.idle, host: resp.Request.URL.Hostname(), parent: ctx}
	if f.idle > 0 {
		b.timer = time.AfterFunc(time.Hour, func() {
			b.stalled.Store(true)
			cancel()
		})
		b.timer.Stop()
	}
	return b, resp.ContentLength, nil
}

// CloseIdleConnections closes the kept-alive connections (at shutdown).
func (f *Fetcher) CloseIdleConnections() { f.client.CloseIdleConnections() }

// dial resolves addr's host itself and connects only to allowed
// addresses, so the address checked is the address dialled.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if f.proxyAddr != "" && addr == f.proxyAddr {
		var d net.Dialer
		d.Timeout = f.dialer.Timeout
		return d.DialContext(ctx, network, addr)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, refusef("cannot parse address %q", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, refusef("invalid port %q", portStr)
	}
	if err := f.policy.checkPort(port); err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		if err := f.policy.checkAddr(a); err != nil {
			return nil, err
		}
		addrs = []netip.Addr{a.Unmap()}
	} else if addrs, err = f.allowedAddrs(ctx, host); err != nil {
		return nil, err
	}
	var lastErr error
	for _, a := range addrs {
		conn, err := f.dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// allowedAddrs resolves host and keeps the allowed addresses; when there
// are none it returns the refusal of the first one.
func (f *Fetcher) allowedAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	all, err := f.lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: cannot resolve host %s", host), err)
	}
	var ok []netip.Addr
	var refusal error
	for _, a := range all {
		if err := f.policy.checkAddr(a); err != nil {
			if refusal == nil {
				refusal = err
			}
			continue
		}
		ok = append(ok, a.Unmap())
	}
	switch {
	case len(ok) > 0:
		return ok, nil
	case refusal != nil:
		return nil, refusef("host %s resolves only to denied addresses: %s", host, reason(refusal))
	}
	return nil, imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: host %s has no addresses", host)
}

// reason is the message of a refusal without its "web-download refused: "
// prefix, to embed it in another refusal.
func reason(err error) string {
	return strings.TrimPrefix(imaged.ErrorMessage(err), "web-download refused: ")
}

// transportError turns an error of http.Client.Do into an *imaged.Error:
// refusals (from CheckRedirect, dial or Control) keep their EINVALID code,
// everything else is EUNAVAILABLE. The url.Error wrapper is dropped: its
// text holds the full URL.
func transportError(ctx context.Context, err error, host string) error {
	var e *imaged.Error
	if errors.As(err, &e) && e.Code == imaged.EINVALID {
		return e
	}
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	if e != nil {
		return err
	}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: canceled"), ctx.Err())
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: timed out talking to %s", host), err)
	}
	return fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: cannot reach %s", host), err)
}

// idleBody is a response body whose reads fail once the remote has sent
// nothing for idle. The timer only runs while a Read waits, so a slow
// consumer is not mistaken for a stalled remote.
type idleBody struct {
	rc      io.ReadCloser
	cancel  context.CancelFunc
	parent  context.Context
	idle    time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	host    string
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.timer != nil {
		b.timer.Reset(b.idle)
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	switch {
	case b.stalled.Load():
		err = fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: %s sent no data for %s", b.host, b.idle), err)
	case b.parent.Err() != nil:
		err = fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: canceled"), b.parent.Err())
	default:
		err = fmt.Errorf("%w: %w", imaged.Errorf(imaged.EUNAVAILABLE, "web-download failed: reading from %s", b.host), err)
	}
	return n, err
}

func (b *idleBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.rc.Close()
	b.cancel()
	return err
}
