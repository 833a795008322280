// Package registry implements imaged.RegistryClient on
// go-containerregistry: repository listing (OCI catalog API, Harbor v2
// project API), tag listing, manifest scans (single manifests and
// multi-arch indexes) and manifest deletion, against OCI distribution
// registries, Harbor and Docker Hub.
//
// Requests per scanned tag are kept low on purpose (rescans walk
// thousands of tags): the client keeps one authenticated
// go-containerregistry Puller per configured registry, so the /v2/ ping
// and token exchange happen once per repository and not once per call,
// and a scan reads exactly the manifest (plus one child manifest per
// platform of an index) and one config blob per image, with no HEADs.
package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imaged/imaged"
)

// Defaults of Options.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultUserAgent      = "imaged"
	DefaultPageSize       = 1000
)

// Options tunes a Client. The zero value is usable.
type Options struct {
	// Transport is the network transport under authentication, retries
	// and timeouts; nil = a fresh *http.Transport. When it is an
	// *http.Transport the client clones it to turn off certificate
	// verification for registries with VerifyTLS false, and likewise the
	// *http.Transport under a *CountingTransport (nil Next included); any
	// other RoundTripper is used as given for every registry and is
	// responsible for TLS itself.
	Transport http.RoundTripper
	// RequestTimeout bounds every single HTTP request, body included
	// (0 = DefaultRequestTimeout).
	RequestTimeout time.Duration
	// UserAgent is sent with every request ("" = DefaultUserAgent).
	UserAgent string
	// PageSize is the n of catalog and tag list pages (0 =
	// DefaultPageSize; some registries refuse n > 1000).
	PageSize int
	// Logger receives debug records of skipped index entries (nil =
	// slog.Default()).
	Logger *slog.Logger
}

// Client implements imaged.RegistryClient. It is safe for concurrent use.
type Client struct {
	opts     Options
	secure   http.RoundTripper // base transport for VerifyTLS registries
	insecure http.RoundTripper // base transport for VerifyTLS false

	mu    sync.Mutex
	conns map[string]*conn // by registry name + URL

	configs configCache
}

var _ imaged.RegistryClient = (*Client)(nil)

// New returns a Client.
func New(opts Options) *Client {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{opts: opts, conns: map[string]*conn{}}
	base := opts.Transport
	if base == nil {
		base = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			// A short dial timeout makes a dead registry EUNAVAILABLE
			// quickly instead of after the whole request timeout.
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	c.secure, c.insecure = base, base
	switch t := base.(type) {
	case *http.Transport:
		c.insecure = insecureClone(t)
	case *CountingTransport:
		// Count requests to unverified registries too, on an insecure
		// clone of the counter's own transport.
		next := t.Next
		if next == nil {
			next = http.DefaultTransport
		}
		if ht, ok := next.(*http.Transport); ok {
			c.insecure = &countingView{parent: t, next: insecureClone(ht)}
		}
	}
	return c
}

func insecureClone(t *http.Transport) *http.Transport {
	it := t.Clone()
	if it.TLSClientConfig == nil {
		it.TLSClientConfig = &tls.Config{}
	}
	it.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the admin turned verification off for this registry
	return it
}

// conn is the per-registry state: the parsed endpoint and a Puller that
// caches authenticated transports per repository.
type conn struct {
	fingerprint string // of the settings it was built from
	reg         *imaged.Registry
	scheme      string // "http" or "https"
	host        string // host[:port]
	registry    name.Registry
	nameOpts    []name.Option
	puller      *remote.Puller
	remoteOpts  []remote.Option
	http        *http.Client // for non-OCI APIs (Harbor)
}

// fingerprint identifies the settings a conn depends on; a change of URL,
// credentials or TLS mode builds a new conn. The password enters only as
// a hash.
func fingerprint(reg *imaged.Registry) string {
	h := sha256.New()
	for _, s := range []string{reg.URL, string(reg.Type), reg.Username, reg.Password} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if reg.VerifyTLS {
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// endpoint parses a registry URL into scheme and host. Userinfo in the URL
// is ignored (credentials belong in Username/Password) and never echoed.
func endpoint(reg *imaged.Registry) (scheme, host string, err error) {
	raw := strings.TrimSpace(reg.URL)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, perr := url.Parse(raw)
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", imaged.Errorf(imaged.EINVALID, "registry %s has an invalid URL (want http(s)://host[:port])", reg.Name)
	}
	return u.Scheme, u.Host, nil
}

func (c *Client) conn(reg *imaged.Registry) (*conn, error) {
	if reg == nil {
		return nil, imaged.Errorf(imaged.EINVALID, "no registry given")
	}
	fp := fingerprint(reg)
	key := reg.Name + "\x00" + reg.URL
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn, ok := c.conns[key]; ok && cn.fingerprint == fp {
		return cn, nil
	}
	scheme, host, err := endpoint(reg)
	if err != nil {
		return nil, err
	}
	var nameOpts []name.Option
	if scheme == "http" {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "registry %s has an invalid host", reg.Name)
	}
	base := c.secure
	if !reg.VerifyTLS {
		base = c.insecure
	}
	rt := &schemeTransport{next: &timeoutTransport{next: base, timeout: c.opts.RequestTimeout}, host: host, scheme: scheme}
	var auth authn.Authenticator = authn.Anonymous
	if reg.Username != "" || reg.Password != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: reg.Username, Password: reg.Password})
	}
	ropts := []remote.Option{
		remote.WithTransport(rt),
		remote.WithAuth(auth),
		remote.WithUserAgent(c.opts.UserAgent),
		remote.WithPageSize(c.opts.PageSize),
		// Network flakes and 5xx are retried, but briefly: a scan must
		// report a failing registry rather than hang on it.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}),
	}
	p, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINTERNAL, "registry %s: %v", reg.Name, err)
	}
	cp := *reg
	cn := &conn{
		fingerprint: fp, reg: &cp, scheme: scheme, host: host, registry: r,
		nameOpts: nameOpts, puller: p, remoteOpts: ropts,
		http: &http.Client{Transport: rt},
	}
	c.conns[key] = cn
	return cn, nil
}

// repository parses a repository path of the registry.
func (cn *conn) repository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(cn.host+"/"+strings.Trim(repo, "/"), cn.nameOpts...)
	if err != nil || repo == "" {
		return name.Repository{}, imaged.Errorf(imaged.EINVALID, "invalid repository name %q", repo)
	}
	return r, nil
}

// timeoutTransport bounds each request, body included: the deadline is
// released when the body is closed.
type timeoutTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t *timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// schemeTransport sends requests for the registry's host with the scheme
// of its configured URL. go-containerregistry guesses the scheme from the
// host (plain HTTP for loopback and RFC 1918 addresses, HTTPS otherwise)
// and races both schemes when pinging an insecure registry; pinning it
// keeps https://10.x registries on TLS and saves the doomed extra ping.
type schemeTransport struct {
	next   http.RoundTripper
	host   string
	scheme string
}

func (t *schemeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == t.host && req.URL.Scheme != t.scheme {
		r2 := req.Clone(req.Context())
		r2.URL.Scheme = t.scheme
		req = r2
	}
	return t.next.RoundTrip(req)
}
