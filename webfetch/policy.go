package webfetch

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// maxURLLength bounds the URLs accepted; real image URLs (even signed ones)
// are far shorter, and a bound keeps hostile input cheap to refuse.
const maxURLLength = 8 << 10

// Ranks of network rules: on a tie of prefix length the higher rank decides.
const (
	rankBuiltinDeny = iota
	rankAllow
	rankDeny
)

type netRule struct {
	prefix netip.Prefix
	rank   int
}

// Embedding prefixes whose addresses carry an IPv4 address that the
// network rules must also allow: a NAT64 gateway or a 6to4 relay would
// forward to it.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// policy is the compiled, immutable form of a Config's rules.
type policy struct {
	schemes      []string // allowed and not denied, lower case
	allowedList  []string // allowed schemes as configured, for messages
	deniedScheme []string
	allowedHosts []hostPattern
	deniedHosts  []hostPattern
	allowedPorts []int // nil: any
	deniedPorts  []int
	rules        []netRule
}

func newPolicy(c *Config) (*policy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := &policy{}
	p.allowedList = []string{"http", "https"}
	if len(c.AllowedSchemes) > 0 {
		p.allowedList = nil
		for _, s := range c.AllowedSchemes {
			p.allowedList = append(p.allowedList, strings.ToLower(s))
		}
	}
	for _, s := range c.DeniedSchemes {
		p.deniedScheme = append(p.deniedScheme, strings.ToLower(s))
	}
	for _, s := range p.allowedList {
		if !slices.Contains(p.deniedScheme, s) {
			p.schemes = append(p.schemes, s)
		}
	}
	for _, h := range c.AllowedHosts {
		pat, _ := parseHostPattern(h) // Validate checked it
		p.allowedHosts = append(p.allowedHosts, pat)
	}
	for _, h := range c.DeniedHosts {
		pat, _ := parseHostPattern(h)
		p.deniedHosts = append(p.deniedHosts, pat)
	}
	switch {
	case c.AllowedPorts == nil:
		p.allowedPorts = []int{80, 443}
	case len(c.AllowedPorts) > 0:
		p.allowedPorts = slices.Clone(c.AllowedPorts)
	}
	p.deniedPorts = slices.Clone(c.DeniedPorts)
	for _, n := range DefaultDeniedNetworks() {
		p.rules = append(p.rules, netRule{normalizePrefix(n), rankBuiltinDeny})
	}
	for _, n := range c.AllowedNetworks {
		p.rules = append(p.rules, netRule{normalizePrefix(n), rankAllow})
	}
	for _, n := range c.DeniedNetworks {
		p.rules = append(p.rules, netRule{normalizePrefix(n), rankDeny})
	}
	return p, nil
}

// refusef returns the EINVALID error of a refused URL or address.
func refusef(format string, args ...any) *imaged.Error {
	return imaged.Errorf(imaged.EINVALID, "web-download refused: "+format, args...)
}

// checkedURL is a URL that passed the scheme, host and port rules.
type checkedURL struct {
	url  *url.URL
	host string     // normalized name or canonical IP literal
	ip   netip.Addr // valid when host is an IP literal
	port int
}

// checkURL applies every rule that needs no name resolution. Messages
// never repeat the URL: it may carry credentials or signed query strings.
func (p *policy) checkURL(raw string) (*checkedURL, error) {
	if raw == "" {
		return nil, refusef("empty URL")
	}
	if len(raw) > maxURLLength {
		return nil, refusef("URL is longer than %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refusef("malformed URL")
	}
	return p.checkParsed(u)
}

func (p *policy) checkParsed(u *url.URL) (*checkedURL, error) {
	if u.Scheme == "" {
		return nil, refusef("URL has no scheme")
	}
	scheme := strings.ToLower(u.Scheme)
	if slices.Contains(p.deniedScheme, scheme) {
		return nil, refusef("scheme %q is denied", scheme)
	}
	if !slices.Contains(p.schemes, scheme) {
		return nil, refusef("scheme %q is not allowed (allowed: %s)", scheme, strings.Join(p.schemes, ", "))
	}
	if u.Opaque != "" {
		return nil, refusef("malformed URL: no //host after %s:", scheme)
	}
	if u.User != nil {
		return nil, refusef("URLs with user information (user:password@host) are not allowed")
	}
	c := &checkedURL{}
	rawHost := u.Hostname()
	if rawHost == "" {
		return nil, refusef("URL has no host")
	}
	if a, err := netip.ParseAddr(rawHost); err == nil {
		if a.Zone() != "" {
			return nil, refusef("IPv6 zones are not allowed in hosts")
		}
		c.ip = a.Unmap()
		c.host = c.ip.String()
	} else {
		if strings.Contains(u.Host, "[") || strings.Contains(rawHost, ":") {
			return nil, refusef("host %q is not a valid IPv6 address", rawHost)
		}
		h := strings.ToLower(rawHost)
		if err := checkHostName(h); err != nil {
			return nil, refusef("host %q: %v", rawHost, err)
		}
		c.host = strings.TrimSuffix(h, ".")
	}
	for _, pat := range p.deniedHosts {
		if pat.match(c.host) {
			return nil, refusef("host %s is in the denied hosts (%s)", c.host, pat.text)
		}
	}
	if len(p.allowedHosts) > 0 && !slices.ContainsFunc(p.allowedHosts, func(pat hostPattern) bool { return pat.match(c.host) }) {
		return nil, refusef("host %s is not in the allowed hosts", c.host)
	}
	c.port = 80
	if scheme == "https" {
		c.port = 443
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return nil, refusef("invalid port %q", ps)
		}
		c.port = n
	}
	if err := p.checkPort(c.port); err != nil {
		return nil, err
	}
	if c.ip.IsValid() {
		if err := p.checkAddr(c.ip); err != nil {
			return nil, err
		}
	}
	// The fragment is never sent; drop it so it cannot end up in logs.
	cu := *u
	cu.Fragment, cu.RawFragment = "", ""
	c.url = &cu
	return c, nil
}

func (p *policy) checkPort(port int) error {
	if slices.Contains(p.deniedPorts, port) {
		return refusef("port %d is denied", port)
	}
	if p.allowedPorts != nil && !slices.Contains(p.allowedPorts, port) {
		return refusef("port %d is not allowed (allowed: %s)", port, joinInts(p.allowedPorts))
	}
	return nil
}

// checkAddr applies the network rules to an address about to be dialled.
func (p *policy) checkAddr(a netip.Addr) error {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return refusef("invalid address")
	}
	if denied, by := p.decide(a); denied {
		return refusef("address %s is in a denied network (%s)", a, by)
	}
	var v4 netip.Addr
	switch b := a.As16(); {
	case nat64Prefix.Contains(a):
		v4 = netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(a):
		v4 = netip.AddrFrom4([4]byte(b[2:6]))
	}
	if v4.IsValid() {
		if denied, by := p.decide(v4); denied {
			return refusef("address %s embeds %s, which is in a denied network (%s)", a, v4, by)
		}
	}
	return nil
}

// decide finds the most specific rule containing a (a must be unmapped);
// an address no rule contains is allowed.
func (p *policy) decide(a netip.Addr) (denied bool, by netip.Prefix) {
	best := -1
	for i, r := range p.rules {
		if !r.prefix.Contains(a) {
			continue
		}
		if best < 0 || r.prefix.Bits() > p.rules[best].prefix.Bits() ||
			(r.prefix.Bits() == p.rules[best].prefix.Bits() && r.rank > p.rules[best].rank) {
			best = i
		}
	}
	if best < 0 {
		return false, netip.Prefix{}
	}
	return p.rules[best].rank != rankAllow, p.rules[best].prefix
}

// checkHostName accepts lower-case DNS host names (an optional trailing dot
// included) and refuses the numeric forms that inet_aton-style resolvers
// turn into addresses (2130706433, 0177.0.0.1, 127.1, 0x7f000001): a name
// whose last label is a number is such a form, never a real name.
func checkHostName(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return errorString("is not a valid host name")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errorString("is not a valid host name")
		}
		for i := 0; i < len(l); i++ {
			switch ch := l[i]; {
			case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
			case ch >= 0x80:
				return errorString("non-ASCII host names must be given in their IDNA (xn--) form")
			default:
				return errorString("is not a valid host name")
			}
		}
	}
	if isNumericLabel(labels[len(labels)-1]) {
		return errorString("is not a canonical IP address (use the dotted-quad form without leading zeros)")
	}
	return nil
}

// isNumericLabel reports whether l is a decimal, octal or 0x-hex number.
func isNumericLabel(l string) bool {
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

type errorString string

func (e errorString) Error() string { return string(e) }

func joinInts(ns []int) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
