package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/webfetch"
)

// importFlags are the interoperable-import options of `imaged serve`.
type importFlags struct {
	// Methods are the enabled import methods (Glance's
	// enabled_import_methods).
	Methods []string
	// Fetch is the web-download fetcher's configuration: its SSRF rules.
	// Defaults are safe: http(s) to ports 80 and 443 of public addresses
	// only (webfetch denies loopback, private, link-local... by default).
	Fetch webfetch.Config
	// GlanceDownload says whether glance-download is enabled when
	// Keystone is (see register); GlanceDownloadListed says
	// --import-methods named it, which needs --auth keystone.
	GlanceDownload       *bool
	GlanceDownloadListed bool
}

// importGlanceDownload is Glance's name of the cross-region import.
const importGlanceDownload = "glance-download"

// register adds the import flags to fs; the returned function parses their
// values once fs.Parse has run.
func (f *importFlags) register(fs *flag.FlagSet, env func(name, def string) string) func() error {
	type listFlag struct {
		name, envName, help string
		v                   string
	}
	flags := []*listFlag{
		{name: "import-methods", envName: "IMPORT_METHODS", help: "enabled image import methods, comma-separated: glance-direct, web-download, glance-download (needs --auth keystone; on by default with it)", v: imaged.ImportGlanceDirect + "," + imaged.ImportWebDownload},
		{name: "web-download-allowed-networks", envName: "WEB_DOWNLOAD_ALLOWED_NETWORKS", help: "CIDR prefixes web-download may connect to, on top of the default (public addresses); e.g. 127.0.0.0/8 opens loopback"},
		{name: "web-download-denied-networks", envName: "WEB_DOWNLOAD_DENIED_NETWORKS", help: "CIDR prefixes web-download may never connect to (loopback, private and link-local ranges are denied by default)"},
		{name: "web-download-allowed-ports", envName: "WEB_DOWNLOAD_ALLOWED_PORTS", help: "TCP ports web-download may connect to (default 80,443)"},
		{name: "web-download-allowed-hosts", envName: "WEB_DOWNLOAD_ALLOWED_HOSTS", help: "when set, the only hosts web-download may fetch from: names, IP literals or *.suffix wildcards"},
	}
	for _, lf := range flags {
		lf.v = env(lf.envName, lf.v)
		fs.StringVar(&lf.v, lf.name, lf.v, lf.help+" (IMAGED_"+lf.envName+")")
	}
	return func() error {
		methods, nets, denied, ports, hosts := split(flags[0].v), split(flags[1].v), split(flags[2].v), split(flags[3].v), split(flags[4].v)
		// glance-download is not the catalog's to enable: it needs
		// Keystone (serve wires it). Listed = on; a list without it = off;
		// no list at all = on under --auth keystone.
		explicit := flags[0].v != imaged.ImportGlanceDirect+","+imaged.ImportWebDownload
		on := !explicit
		f.GlanceDownload = &on
		methods = slices.DeleteFunc(methods, func(m string) bool {
			if m == importGlanceDownload {
				*f.GlanceDownload = true
				return true
			}
			return false
		})
		f.GlanceDownloadListed = explicit && *f.GlanceDownload
		for _, m := range methods {
			if m != imaged.ImportGlanceDirect && m != imaged.ImportWebDownload {
				return fmt.Errorf("invalid --import-methods %q: want glance-direct, web-download and/or glance-download", flags[0].v)
			}
		}
		f.Methods = methods
		if f.Methods == nil {
			f.Methods = []string{} // none enabled (nil would mean the defaults)
		}
		var err error
		if f.Fetch.AllowedNetworks, err = prefixes(nets); err != nil {
			return fmt.Errorf("invalid --web-download-allowed-networks: %w", err)
		}
		if f.Fetch.DeniedNetworks, err = prefixes(denied); err != nil {
			return fmt.Errorf("invalid --web-download-denied-networks: %w", err)
		}
		for _, p := range ports {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("invalid --web-download-allowed-ports: %q is not a port", p)
			}
			f.Fetch.AllowedPorts = append(f.Fetch.AllowedPorts, n)
		}
		f.Fetch.AllowedHosts = hosts
		if slices.Contains(f.Methods, imaged.ImportWebDownload) {
			if _, err := webfetch.New(f.Fetch); err != nil {
				return fmt.Errorf("invalid web-download settings: %w", err)
			}
		}
		return nil
	}
}

// split splits a comma list, dropping blanks; nil for an empty list.
func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// prefixes parses CIDR prefixes; a bare address is a single-address prefix.
func prefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// withImports enables image import on images: tasks are kept in store, and
// web-download (if enabled) fetches through webfetch's SSRF guard.
func withImports(images *catalog.Service, store *sqlstore.Store, f importFlags, log *slog.Logger) (*catalog.Service, error) {
	cfg := catalog.ImportConfig{Methods: f.Methods}
	if slices.Contains(f.Methods, imaged.ImportWebDownload) {
		fetcher, err := webfetch.New(f.Fetch)
		if err != nil {
			return nil, fmt.Errorf("web-download: %w", err)
		}
		cfg.Fetcher = fetcher
	}
	out := images.WithImports(store, cfg)
	log.Info("image import", "methods", strings.Join(out.ImportMethods(), ","))
	return out, nil
}
