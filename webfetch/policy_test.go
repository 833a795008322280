package webfetch

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	loopback, err := ParseNetworks([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		url  string
		want string // "" = accepted, else a substring of the EINVALID message
	}{
		{"public http", Config{}, "http://images.example.com/cirros.img", ""},
		{"public https", Config{}, "https://images.example.com/cirros.img?sig=abc#frag", ""},
		{"public literal", Config{}, "http://8.8.8.8/x", ""},
		{"upper-case scheme", Config{}, "HTTP://images.example.com/x", ""},
		{"trailing dot", Config{}, "http://images.example.com./x", ""},
		{"explicit default port", Config{}, "https://images.example.com:443/x", ""},
		{"empty", Config{}, "", "empty URL"},
		{"too long", Config{}, "http://a.example/" + strings.Repeat("a", maxURLLength), "longer than"},
		{"no scheme", Config{}, "//images.example.com/x", "no scheme"},
		{"relative", Config{}, "/x", "no scheme"},
		{"malformed", Config{}, "http://[::1/x", "malformed URL"},
		{"opaque", Config{}, "http:images.example.com", "no //host"},
		{"no host", Config{}, "http:///x", "no host"},
		{"ftp", Config{}, "ftp://images.example.com/x", `scheme "ftp" is not allowed (allowed: http, https)`},
		{"file", Config{}, "file:///etc/passwd", `scheme "file" is not allowed`},
		{"gopher", Config{}, "gopher://images.example.com:70/_x", `scheme "gopher" is not allowed`},
		{"denied scheme", Config{DeniedSchemes: []string{"HTTP"}}, "http://images.example.com/x", `scheme "http" is denied`},
		{"only https", Config{AllowedSchemes: []string{"https"}}, "http://images.example.com/x", `allowed: https)`},
		{"userinfo", Config{}, "http://user:secret@images.example.com/x", "user information"},
		{"user only", Config{}, "http://user@images.example.com/x", "user information"},
		{"port 8080 by default", Config{}, "http://images.example.com:8080/x", "port 8080 is not allowed (allowed: 80, 443)"},
		{"any port", Config{AllowedPorts: AnyPort()}, "http://images.example.com:8080/x", ""},
		{"denied port", Config{AllowedPorts: AnyPort(), DeniedPorts: []int{25}}, "http://images.example.com:25/x", "port 25 is denied"},
		{"denied default port", Config{DeniedPorts: []int{80}}, "http://images.example.com/x", "port 80 is denied"},
		{"port zero", Config{AllowedPorts: AnyPort()}, "http://images.example.com:0/x", `invalid port "0"`},
		{"port too big", Config{AllowedPorts: AnyPort()}, "http://images.example.com:70000/x", `invalid port "70000"`},
		{"loopback", Config{}, "http://127.0.0.1/x", "address 127.0.0.1 is in a denied network (127.0.0.0/8)"},
		{"loopback other", Config{}, "http://127.8.9.10/x", "(127.0.0.0/8)"},
		{"loopback allowed", Config{AllowedNetworks: loopback}, "http://127.0.0.1/x", ""},
		{"private 10", Config{}, "http://10.0.0.5/x", "address 10.0.0.5 is in a denied network (10.0.0.0/8)"},
		{"private 172", Config{}, "http://172.20.1.1/x", "(172.16.0.0/12)"},
		{"private 192.168", Config{}, "http://192.168.1.1/x", "(192.168.0.0/16)"},
		{"metadata", Config{}, "http://169.254.169.254/latest/meta-data/", "(169.254.0.0/16)"},
		{"cgnat", Config{}, "http://100.64.0.1/x", "(100.64.0.0/10)"},
		{"unspecified", Config{}, "http://0.0.0.0/x", "(0.0.0.0/8)"},
		{"this network", Config{}, "http://0.1.2.3/x", "(0.0.0.0/8)"},
		{"multicast", Config{}, "http://224.0.0.1/x", "(224.0.0.0/4)"},
		{"broadcast", Config{}, "http://255.255.255.255/x", "(240.0.0.0/4)"},
		{"v6 loopback", Config{}, "http://[::1]/x", "address ::1 is in a denied network (::1/128)"},
		{"v6 unspecified", Config{}, "http://[::]/x", "(::/128)"},
		{"v6 ula", Config{}, "http://[fd00::1]/x", "(fc00::/7)"},
		{"v6 link-local", Config{}, "http://[fe80::1]/x", "(fe80::/10)"},
		{"v6 zone", Config{}, "http://[fe80::1%25eth0]/x", "zones"},
		{"v6 multicast", Config{}, "http://[ff02::1]/x", "(ff00::/8)"},
		{"v6 public", Config{}, "http://[2001:4860:4860::8888]/x", ""},
		{"mapped loopback", Config{}, "http://[::ffff:127.0.0.1]/x", "address 127.0.0.1 is in a denied network (127.0.0.0/8)"},
		{"mapped metadata", Config{}, "http://[::ffff:169.254.169.254]/x", "(169.254.0.0/16)"},
		{"mapped hex", Config{}, "http://[::ffff:7f00:1]/x", "(127.0.0.0/8)"},
		{"v4-compatible", Config{}, "http://[::127.0.0.1]/x", "(::/96)"},
		{"nat64 private", Config{}, "http://[64:ff9b::10.0.0.5]/x", "embeds 10.0.0.5, which is in a denied network (10.0.0.0/8)"},
		{"6to4 loopback", Config{}, "http://[2002:7f00:1::1]/x", "embeds 127.0.0.1"},
		{"nat64 public", Config{}, "http://[64:ff9b::8.8.8.8]/x", ""},
		{"decimal", Config{}, "http://2130706433/x", "not a canonical IP address"},
		{"decimal allowed net", Config{AllowedNetworks: loopback}, "http://2130706433/x", "not a canonical IP address"},
		{"octal", Config{}, "http://0177.0.0.1/x", "not a canonical IP address"},
		{"short", Config{}, "http://127.1/x", "not a canonical IP address"},
		{"hex", Config{}, "http://0x7f000001/x", "not a canonical IP address"},
		{"hex last", Config{}, "http://127.0.0.0x1/x", "not a canonical IP address"},
		{"leading zeros", Config{}, "http://127.000.000.001/x", "not a canonical IP address"},
		{"numeric label inside name", Config{}, "http://0x7f.example.com/x", ""},
		{"bad host char", Config{}, "http://ima!ges.example.com/x", "not a valid host name"},
		{"non-ascii host", Config{}, "http://bücher.example/x", "IDNA"},
		{"empty label", Config{}, "http://a..example.com/x", "not a valid host name"},
		{"allowed host", Config{AllowedHosts: []string{"images.example.com"}}, "http://IMAGES.example.com./x", ""},
		{"not allowed host", Config{AllowedHosts: []string{"images.example.com"}}, "http://other.example.com/x", "host other.example.com is not in the allowed hosts"},
		{"wildcard", Config{AllowedHosts: []string{"*.example.com"}}, "http://a.b.example.com/x", ""},
		{"wildcard not apex", Config{AllowedHosts: []string{"*.example.com"}}, "http://example.com/x", "not in the allowed hosts"},
		{"wildcard not suffix trick", Config{AllowedHosts: []string{"*.example.com"}}, "http://evilexample.com/x", "not in the allowed hosts"},
		{"allowed literal", Config{AllowedHosts: []string{"8.8.8.8"}}, "http://[::ffff:8.8.8.8]/x", ""},
		{"allowed host still filtered by network", Config{AllowedHosts: []string{"10.0.0.5"}}, "http://10.0.0.5/x", "(10.0.0.0/8)"},
		{"denied host", Config{DeniedHosts: []string{"*.internal"}}, "http://db.internal/x", "host db.internal is in the denied hosts (*.internal)"},
		{"denied beats allowed", Config{AllowedHosts: []string{"*.example.com"}, DeniedHosts: []string{"secret.example.com"}}, "http://secret.example.com/x", "denied hosts"},
		{"denied literal v6", Config{DeniedHosts: []string{"[2001:4860:4860::8888]"}}, "http://[2001:4860:4860:0::8888]/x", "denied hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = f.CheckURL(tt.url)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want accepted", tt.url, err)
				}
				return
			}
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("CheckURL(%q) = %v, want EINVALID", tt.url, err)
			}
			msg := imaged.ErrorMessage(err)
			if !strings.HasPrefix(msg, "web-download refused: ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("CheckURL(%q) message %q, want it to contain %q", tt.url, msg, tt.want)
			}
			if strings.Contains(msg, "secret") && !strings.Contains(tt.url, "secret.example.com") {
				t.Fatalf("message %q repeats user information", msg)
			}
		})
	}
}

func TestNetworkPrecedence(t *testing.T) {
	t.Parallel()
	nets := func(ss ...string) []netip.Prefix {
		ps, err := ParseNetworks(ss)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := []struct {
		name    string
		allowed []netip.Prefix
		denied  []netip.Prefix
		addr    string
		want    string // "" = allowed, else the deciding prefix
	}{
		{"public by default", nil, nil, "203.0.113.9", ""},
		{"allow part of private", nets("10.1.0.0/16"), nil, "10.1.2.3", ""},
		{"rest of private still denied", nets("10.1.0.0/16"), nil, "10.2.0.1", "10.0.0.0/8"},
		{"allow everything does not open private", nets("0.0.0.0/0"), nil, "192.168.0.1", "192.168.0.0/16"},
		{"deny beats allow on tie", nets("127.0.0.0/8"), nets("127.0.0.0/8"), "127.0.0.1", "127.0.0.0/8"},
		{"specific allow beats broad deny", nets("203.0.113.0/24"), nets("0.0.0.0/0"), "203.0.113.9", ""},
		{"broad deny", nets("203.0.113.0/24"), nets("0.0.0.0/0"), "198.51.100.1", "0.0.0.0/0"},
		{"specific deny beats allow", nets("127.0.0.0/8"), nets("127.0.0.2"), "127.0.0.2", "127.0.0.2/32"},
		{"mapped prefix", nil, nets("::ffff:203.0.113.0/120"), "203.0.113.9", "203.0.113.0/24"},
		{"mapped address", nil, nets("203.0.113.0/24"), "::ffff:203.0.113.9", "203.0.113.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := New(Config{AllowedNetworks: tt.allowed, DeniedNetworks: tt.denied})
			if err != nil {
				t.Fatal(err)
			}
			err = f.policy.checkAddr(netip.MustParseAddr(tt.addr))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("checkAddr(%s) = %v, want allowed", tt.addr, err)
			case tt.want != "" && !strings.Contains(imaged.ErrorMessage(err), "("+tt.want+")"):
				t.Fatalf("checkAddr(%s) = %v, want denied by %s", tt.addr, err, tt.want)
			}
		})
	}
}

func TestParseNetworks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{in: nil, want: []string{}},
		{in: []string{"10.0.0.0/8", " fd00::/8 "}, want: []string{"10.0.0.0/8", "fd00::/8"}},
		{in: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"192.0.2.7", "2001:db8::1"}, want: []string{"192.0.2.7/32", "2001:db8::1/128"}},
		{in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"::ffff:127.0.0.1"}, want: []string{"127.0.0.1/32"}},
		{in: []string{"10.0.0.0/33"}, wantErr: true},
		{in: []string{"example.com"}, wantErr: true},
		{in: []string{""}, wantErr: true},
		{in: []string{"fe80::1%eth0"}, wantErr: true},
		{in: []string{"2130706433"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseNetworks(tt.in)
		if tt.wantErr {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("ParseNetworks(%q) = %v, %v; want EINVALID", tt.in, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseNetworks(%q): %v", tt.in, err)
			continue
		}
		gs := make([]string, len(got))
		for i, p := range got {
			gs[i] = p.String()
		}
		if strings.Join(gs, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ParseNetworks(%q) = %v, want %v", tt.in, gs, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"zero", Config{}, ""},
		{"full", Config{AllowedSchemes: []string{"HTTPS"}, AllowedHosts: []string{"*.example.com", "192.0.2.1", "[2001:db8::1]"},
			DeniedHosts: []string{"x.example.com."}, AllowedPorts: []int{443, 8443}, DeniedPorts: []int{25}}, ""},
		{"ftp scheme", Config{AllowedSchemes: []string{"ftp"}}, `allowed scheme "ftp" is not supported`},
		{"empty denied scheme", Config{DeniedSchemes: []string{""}}, "empty denied scheme"},
		{"bad host", Config{AllowedHosts: []string{"a b"}}, `allowed host "a b"`},
		{"bare star", Config{DeniedHosts: []string{"*"}}, `denied host "*"`},
		{"inner star", Config{AllowedHosts: []string{"a.*.example.com"}}, `allowed host "a.*.example.com"`},
		{"numeric host", Config{AllowedHosts: []string{"0x7f000001"}}, "canonical IP"},
		{"port 0", Config{AllowedPorts: []int{0}}, "allowed port 0 is out of range"},
		{"port big", Config{DeniedPorts: []int{65536}}, "denied port 65536 is out of range"},
		{"invalid prefix", Config{DeniedNetworks: []netip.Prefix{{}}}, "invalid denied network"},
		{"bad proxy", Config{Proxy: &url.URL{Scheme: "ftp", Host: "p:21"}}, "proxy must be"},
		{"good proxy", Config{Proxy: &url.URL{Scheme: "http", Host: "proxy.example.com:3128"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if imaged.ErrorCode(err) != imaged.EINVALID || !strings.Contains(imaged.ErrorMessage(err), tt.want) {
				t.Fatalf("Validate() = %v, want EINVALID containing %q", err, tt.want)
			}
			if _, err := New(tt.cfg); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("New() = %v, want EINVALID", err)
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://images.example.com/x", "https://[::ffff:127.0.0.1]:443/", "http://2130706433/",
		"http://0177.0.0.1/", "ftp://a/", "http://u:p@h/", "http://[fe80::1%25eth0]/", "http:opaque",
		"http://[64:ff9b::10.0.0.1]/", "http://a..b/", "HTTP://A.EXAMPLE:80", "http://%31%32%37.0.0.1/",
		"http://[::1]:99999/", "http://xn--bcher-kva.example/", "http://*.example.com/",
	} {
		f.Add(s)
	}
	fetcher, err := New(Config{AllowedPorts: AnyPort(), DeniedHosts: []string{"*.internal"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := fetcher.policy.checkURL(raw)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("checkURL(%q) = %v, want EINVALID", raw, err)
			}
			return
		}
		// Whatever passes must be something the transport dials as checked.
		u := c.url
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Hostname() == "" {
			t.Fatalf("checkURL(%q) accepted %#v", raw, u)
		}
		if strings.HasSuffix(c.host, ".internal") {
			t.Fatalf("checkURL(%q) accepted denied host %q", raw, c.host)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			if a = a.Unmap(); a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
				t.Fatalf("checkURL(%q) accepted address %s", raw, a)
			}
		} else if isNumericLabel(strings.TrimSuffix(c.host[strings.LastIndex(c.host, ".")+1:], ".")) {
			t.Fatalf("checkURL(%q) accepted numeric host %q", raw, c.host)
		}
	})
}
