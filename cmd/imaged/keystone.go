package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/webfetch"
)

// keystoneFlags are the settings of --auth keystone: the identity
// endpoint and the service user imaged validates tokens as (Glance's
// [keystone_authtoken] section).
type keystoneFlags struct {
	URL           string
	Username      string
	Password      string
	Project       string
	UserDomain    string
	ProjectDomain string
	CacheTTL      time.Duration
	Timeout       time.Duration
}

// register adds the flags to fs, defaulting to IMAGED_KEYSTONE_*.
func (k *keystoneFlags) register(fs *flag.FlagSet, env func(name, def string) string) {
	fs.StringVar(&k.URL, "keystone-url", env("KEYSTONE_URL", ""), "Keystone identity endpoint for --auth keystone, e.g. http://keystone:5000 (IMAGED_KEYSTONE_URL)")
	fs.StringVar(&k.Username, "keystone-username", env("KEYSTONE_USERNAME", "glance"), "service user that validates tokens (IMAGED_KEYSTONE_USERNAME)")
	fs.StringVar(&k.Password, "keystone-password", env("KEYSTONE_PASSWORD", ""), "service user's password; prefer the environment variable IMAGED_KEYSTONE_PASSWORD, which ps does not show")
	fs.StringVar(&k.Project, "keystone-project", env("KEYSTONE_PROJECT", "service"), "service user's project (IMAGED_KEYSTONE_PROJECT)")
	fs.StringVar(&k.UserDomain, "keystone-user-domain", env("KEYSTONE_USER_DOMAIN", "Default"), "service user's domain (IMAGED_KEYSTONE_USER_DOMAIN)")
	fs.StringVar(&k.ProjectDomain, "keystone-project-domain", env("KEYSTONE_PROJECT_DOMAIN", "Default"), "service project's domain (IMAGED_KEYSTONE_PROJECT_DOMAIN)")
	fs.DurationVar(&k.CacheTTL, "keystone-cache-ttl", 5*time.Minute, "how long a validated token is trusted without asking Keystone again (never past its expiry; 0 disables the cache)")
	fs.DurationVar(&k.Timeout, "keystone-timeout", 5*time.Second, "timeout of each Keystone call; past it requests fail with 503")
}

// validate checks the settings when --auth keystone is chosen.
func (k *keystoneFlags) validate() error {
	if k.URL == "" {
		return errors.New("--auth keystone needs --keystone-url (or IMAGED_KEYSTONE_URL)")
	}
	if k.Password == "" {
		return errors.New("--auth keystone needs the service user's password in IMAGED_KEYSTONE_PASSWORD (or --keystone-password)")
	}
	if k.Timeout <= 0 {
		return fmt.Errorf("invalid --keystone-timeout %v: want a positive duration", k.Timeout)
	}
	return nil
}

// authenticator returns the Keystone authenticator.
func (k *keystoneFlags) authenticator(c *serveConfig) (*auth.Keystone, error) {
	ttl := k.CacheTTL
	if ttl == 0 {
		ttl = -1 // KeystoneConfig: < 0 = no cache
	}
	return auth.NewKeystone(auth.KeystoneConfig{URL: k.URL, Username: k.Username, Password: k.Password,
		ProjectName: k.Project, UserDomainName: k.UserDomain, ProjectDomainName: k.ProjectDomain,
		CacheTTL: ttl, Timeout: k.Timeout})
}

// withGlanceDownload enables the glance-download import method, which
// needs the callers' Keystone tokens (so only --auth keystone has it). The
// remote image's URLs pass web-download's filter, as Glance passes them
// through its import filtering.
func (k *keystoneFlags) withGlanceDownload(images *catalog.Service, fetch webfetch.Config) (*catalog.Service, error) {
	f, err := webfetch.New(fetch)
	if err != nil {
		return nil, fmt.Errorf("glance-download: %w", err)
	}
	return images.WithGlanceDownload(catalog.GlanceDownloadConfig{KeystoneURL: k.URL, CheckURL: f.CheckURL})
}

// withUserToken hands the caller's token of an import request to the
// catalog (in the request's context, so in memory only), for
// glance-download to act as the caller in the other region.
func withUserToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get("X-Auth-Token"); tok != "" && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/import") {
			r = r.WithContext(catalog.WithUserToken(r.Context(), tok))
		}
		next.ServeHTTP(w, r)
	})
}
