// Package webfetch is the HTTP client behind the web-download import method:
// an imaged.URLFetcher that refuses to be turned against the service's own
// network (server-side request forgery).
//
// Every URL, and every redirect target, must pass the scheme, host and port
// rules of Config before a request is made. Every TCP connection is then
// checked again at dial time, on the address actually being dialled (the
// dialer resolves names itself and net.Dialer.Control re-checks the socket
// address), so a name that resolves, or later re-resolves (DNS rebinding), to
// a loopback, private, link-local or metadata address is refused even when
// the URL's name was allowed.
//
// The rules follow Glance's [import_filtering_opts] (allowed_schemes,
// disallowed_schemes, allowed_hosts, disallowed_hosts, allowed_ports,
// disallowed_ports) with three deliberate differences, all stricter:
//   - a denied list still applies when the matching allowed list is set
//     (Glance ignores the disallowed list then);
//   - the port rule applies to the effective port, so http://h/ is checked
//     as port 80 (Glance only checks ports written in the URL);
//   - addresses are filtered by networks (private, CGNAT and more are denied
//     by default; Glance only refuses loopback and link-local), and an
//     allowed host name does not exempt its addresses from that filter.
//
// Numeric host forms that some resolvers accept (2130706433, 0177.0.0.1,
// 127.1, 0x7f000001) are refused outright, as Glance does.
package webfetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Defaults applied by New for zero Config fields.
const (
	DefaultMaxRedirects          = 5
	DefaultConnectTimeout        = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 60 * time.Second
	DefaultUserAgent             = "imaged-web-download/1"
)

// Config is the operator's policy for web-download. The zero Config is the
// safe default: http and https on ports 80 and 443 to any public address.
type Config struct {
	// AllowedSchemes lists the URL schemes that may be fetched; nil or
	// empty means http and https, the only schemes webfetch speaks.
	AllowedSchemes []string
	// DeniedSchemes are refused even when allowed.
	DeniedSchemes []string

	// AllowedHosts, when not empty, is the only set of hosts that may be
	// fetched. Entries are exact names ("images.example.com"), IP literals
	// ("203.0.113.7", "2001:db8::7") or "*.suffix" wildcards that match any
	// name below suffix (not suffix itself). Matching ignores case and a
	// trailing dot.
	AllowedHosts []string
	// DeniedHosts uses the same syntax and wins over AllowedHosts.
	DeniedHosts []string

	// AllowedPorts lists the TCP ports that may be fetched (the URL's port
	// or its scheme's default). nil means 80 and 443; a non-nil empty list
	// (see AnyPort) means any port.
	AllowedPorts []int
	// DeniedPorts are refused even when allowed.
	DeniedPorts []int

	// AllowedNetworks and DeniedNetworks filter the addresses connections
	// are made to, on top of the built-in denied networks
	// (DefaultDeniedNetworks: loopback, private, link-local, CGNAT,
	// unspecified, multicast, reserved). The most specific prefix that
	// contains an address decides; on a tie the operator's DeniedNetworks
	// beats AllowedNetworks, which beats the built-in list; an address no
	// prefix contains is allowed. So AllowedNetworks 127.0.0.0/8 opens
	// loopback, AllowedNetworks 10.1.0.0/16 opens part of 10.0.0.0/8, and
	// DeniedNetworks 0.0.0.0/0 and ::/0 with AllowedNetworks 203.0.113.0/24
	// allows only that network. IPv4-mapped IPv6 addresses and prefixes
	// are treated as their IPv4 forms.
	AllowedNetworks []netip.Prefix
	DeniedNetworks  []netip.Prefix

	// MaxRedirects bounds the redirects followed per fetch: 0 means
	// DefaultMaxRedirects, a negative value refuses every redirect.
	MaxRedirects int

	// ConnectTimeout bounds each TCP connect and TLS handshake,
	// ResponseHeaderTimeout the wait for the response headers after the
	// request was sent, IdleTimeout each wait for more body data (a remote
	// that stops sending mid-body fails after it). 0 means the default, a
	// negative value means no limit.
	ConnectTimeout        time.Duration
	ResponseHeaderTimeout time.Duration
	IdleTimeout           time.Duration

	// UserAgent is sent with every request; "" means DefaultUserAgent.
	UserAgent string

	// Proxy, when set, is the http, https or socks5 proxy every request
	// goes through. Proxies are never taken from the environment. The
	// proxy's own address is not subject to the network rules (the
	// operator chose it), and since the proxy resolves and connects to the
	// targets, it must enforce its own egress policy: webfetch can then
	// only check schemes, hosts, ports and IP literals.
	Proxy *url.URL

	// TLSConfig, when set, is used for https (for example to trust a
	// private CA); nil means the system roots, TLS 1.2 or newer.
	TLSConfig *tls.Config

	// LookupIP resolves a host name to its addresses; nil means the
	// system resolver. Tests point names at chosen addresses with it.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// AnyPort returns the AllowedPorts value that allows every port.
func AnyPort() []int { return []int{} }

// builtinDenied is the text form of DefaultDeniedNetworks with the reason
// each is denied (kept for documentation; messages name the prefix).
var builtinDenied = [...]string{
	"0.0.0.0/8",       // "this network", includes the unspecified 0.0.0.0
	"10.0.0.0/8",      // private (RFC 1918)
	"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, includes cloud metadata 169.254.169.254
	"172.16.0.0/12",   // private (RFC 1918)
	"192.0.0.0/24",    // IETF protocol assignments (RFC 6890)
	"192.168.0.0/16",  // private (RFC 1918)
	"198.18.0.0/15",   // benchmarking (RFC 2544)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, includes broadcast 255.255.255.255
	"::/128",          // unspecified
	"::1/128",         // loopback
	"::/96",           // IPv4-compatible (deprecated), never a real peer
	"100::/64",        // discard-only (RFC 6666)
	"fc00::/7",        // unique local (the IPv6 private range)
	"fe80::/10",       // link-local
	"fec0::/10",       // site-local (deprecated)
	"ff00::/8",        // multicast
	"64:ff9b:1::/48",  // local-use NAT64 (RFC 8215)
	"::ffff:0:0:0/96", // SIIT translated (RFC 6145 "IPv4-translated")
}

// DefaultDeniedNetworks returns the networks that are denied unless an
// AllowedNetworks prefix at least as specific opens them.
func DefaultDeniedNetworks() []netip.Prefix {
	ps := make([]netip.Prefix, len(builtinDenied))
	for i, s := range builtinDenied {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// ParseNetworks parses CIDR prefixes ("10.0.0.0/8", "fd00::/8") or single
// addresses ("192.0.2.7", taken as /32 or /128). It returns the prefixes
// masked to their length, with IPv4-mapped IPv6 forms turned into IPv4
// ("::ffff:10.0.0.0/104" is 10.0.0.0/8).
func ParseNetworks(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, imaged.Errorf(imaged.EINVALID, "web-download: invalid network %q: %v", s, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, imaged.Errorf(imaged.EINVALID, "web-download: invalid network %q: not a CIDR prefix or an IP address", s)
			}
			if a.Zone() != "" {
				return nil, imaged.Errorf(imaged.EINVALID, "web-download: invalid network %q: zones are not allowed", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, normalizePrefix(p))
	}
	return out, nil
}

// normalizePrefix masks p and rewrites IPv4-mapped IPv6 prefixes as IPv4,
// because addresses are unmapped before they are matched.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// Validate reports the first problem of c as an EINVALID error.
func (c *Config) Validate() error {
	for _, s := range c.AllowedSchemes {
		if s := strings.ToLower(s); s != "http" && s != "https" {
			return imaged.Errorf(imaged.EINVALID, "web-download: allowed scheme %q is not supported (only http and https)", s)
		}
	}
	for _, s := range c.DeniedSchemes {
		if s == "" {
			return imaged.Errorf(imaged.EINVALID, "web-download: empty denied scheme")
		}
	}
	for _, list := range []struct {
		name    string
		entries []string
	}{{"allowed host", c.AllowedHosts}, {"denied host", c.DeniedHosts}} {
		for _, h := range list.entries {
			if _, err := parseHostPattern(h); err != nil {
				return imaged.Errorf(imaged.EINVALID, "web-download: %s %q: %v", list.name, h, err)
			}
		}
	}
	for _, list := range []struct {
		name  string
		ports []int
	}{{"allowed port", c.AllowedPorts}, {"denied port", c.DeniedPorts}} {
		for _, p := range list.ports {
			if p < 1 || p > 65535 {
				return imaged.Errorf(imaged.EINVALID, "web-download: %s %d is out of range 1-65535", list.name, p)
			}
		}
	}
	for _, list := range []struct {
		name string
		nets []netip.Prefix
	}{{"allowed network", c.AllowedNetworks}, {"denied network", c.DeniedNetworks}} {
		for _, p := range list.nets {
			if !p.IsValid() {
				return imaged.Errorf(imaged.EINVALID, "web-download: invalid %s %v", list.name, p)
			}
			if p.Addr().Zone() != "" {
				return imaged.Errorf(imaged.EINVALID, "web-download: %s %v has a zone", list.name, p)
			}
		}
	}
	if c.Proxy != nil {
		if !slices.Contains([]string{"http", "https", "socks5", "socks5h"}, c.Proxy.Scheme) || c.Proxy.Host == "" {
			return imaged.Errorf(imaged.EINVALID, "web-download: proxy must be an http, https or socks5 URL with a host")
		}
	}
	return nil
}

// hostPattern is one AllowedHosts or DeniedHosts entry.
type hostPattern struct {
	text   string // as configured, for messages
	exact  string // normalized name or canonical IP literal
	suffix string // for "*.suffix": ".suffix"
}

func (p hostPattern) match(host string) bool {
	if p.suffix != "" {
		return strings.HasSuffix(host, p.suffix)
	}
	return host == p.exact
}

func parseHostPattern(s string) (hostPattern, error) {
	pat := hostPattern{text: s}
	h := strings.ToLower(strings.TrimSpace(s))
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		if err := checkHostName(rest); err != nil {
			return pat, err
		}
		pat.suffix = "." + strings.TrimSuffix(rest, ".")
		return pat, nil
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return pat, fmt.Errorf("zones are not allowed")
		}
		pat.exact = a.Unmap().String()
		return pat, nil
	}
	if err := checkHostName(h); err != nil {
		return pat, err
	}
	pat.exact = strings.TrimSuffix(h, ".")
	return pat, nil
}

// newTransport builds the http.Transport of a Fetcher; dial does all
// address checks.
func newTransport(c *Config, dial func(ctx context.Context, network, addr string) (net.Conn, error), connectTimeout, headerTimeout time.Duration) *http.Transport {
	tlsConf := c.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsConf = tlsConf.Clone()
	}
	t := &http.Transport{
		// Never from the environment: HTTP_PROXY would route around the
		// address checks.
		Proxy:               nil,
		DialContext:         dial,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: connectTimeout,
		// Image data is stored as sent: no transparent gunzip (nor its
		// decompression bombs).
		DisableCompression:     true,
		ResponseHeaderTimeout:  headerTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	if c.Proxy != nil {
		t.Proxy = http.ProxyURL(c.Proxy)
	}
	return t
}
