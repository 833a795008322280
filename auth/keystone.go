package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// KeystoneConfig configures Keystone token validation.
type KeystoneConfig struct {
	// URL is Keystone's identity endpoint, e.g. "http://127.0.0.1:5000"
	// or ".../v3" (the /v3 suffix is added when missing).
	URL string
	// The service user imaged validates tokens as (Glance's
	// [keystone_authtoken] username, password, project_name, ...).
	Username          string
	Password          string
	ProjectName       string
	UserDomainName    string // "" = "Default"
	ProjectDomainName string // "" = "Default"
	// CacheTTL bounds how long a validated token is trusted without
	// asking Keystone again (never past the token's own expiry); 0 = 5
	// minutes, < 0 = no cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached validations; 0 = 10000.
	CacheSize int
	// Timeout bounds each call to Keystone; 0 = 5 s. Keystone being slow
	// or down gives EUNAVAILABLE (503) after it, never a hang.
	Timeout time.Duration
	// ServiceRoles are the roles an X-Service-Token must carry to be
	// honoured (keystonemiddleware's service_token_roles); nil =
	// ["service"].
	ServiceRoles []string
	// Client is the HTTP client (nil = a client with Timeout).
	Client *http.Client
	Logger *slog.Logger
	Clock  imaged.Clock
}

// Keystone validates OpenStack Keystone tokens (GET /v3/auth/tokens with
// X-Subject-Token) as keystonemiddleware does for Glance: the project id
// becomes the identity's project (image owner and member id), the role
// names its roles. Validations are cached, keyed by the token's SHA-256
// (tokens themselves are never kept or logged).
type Keystone struct {
	cfg      KeystoneConfig
	base     string // ".../v3"
	client   *http.Client
	log      *slog.Logger
	clock    imaged.Clock
	svcRoles []string

	mu       sync.Mutex
	svcToken string
	svcExp   time.Time
	cache    map[[sha256.Size]byte]cachedToken
	// refreshing collapses concurrent service-token refreshes into one.
	refreshing chan struct{}
}

type cachedToken struct {
	id           imaged.Identity
	expires      time.Time // when the cache entry (not the token) expires
	tokenExpires time.Time
}

// NewKeystone returns a Keystone authenticator. It does not contact
// Keystone until the first request.
func NewKeystone(cfg KeystoneConfig) (*Keystone, error) {
	if cfg.URL == "" {
		return nil, errors.New("keystone: no URL")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("keystone: URL %q is not http(s)", cfg.URL)
	}
	if cfg.Username == "" || cfg.Password == "" || cfg.ProjectName == "" {
		return nil, errors.New("keystone: the service user needs a username, password and project name")
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ServiceRoles == nil {
		cfg.ServiceRoles = []string{"service"}
	}
	k := &Keystone{cfg: cfg, client: cfg.Client, log: cfg.Logger, clock: cfg.Clock, svcRoles: cfg.ServiceRoles,
		cache: make(map[[sha256.Size]byte]cachedToken)}
	if k.client == nil {
		k.client = &http.Client{Timeout: cfg.Timeout}
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	if k.clock == nil {
		k.clock = imaged.SystemClock{}
	}
	base := strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	k.base = base
	return k, nil
}

// AuthURI is the identity endpoint to announce in WWW-Authenticate.
func (k *Keystone) AuthURI() string { return strings.TrimSuffix(k.base, "/v3") }

// Authenticate validates a user token.
func (k *Keystone) Authenticate(ctx context.Context, token string) (*imaged.Identity, error) {
	return k.AuthenticateWithService(ctx, token, "")
}

// AuthenticateWithService validates a user token and, when given, an
// X-Service-Token. A valid service token with one of the service roles
// lets an expired user token through (keystonemiddleware's
// allow_expired for service-to-service calls such as Nova snapshotting an
// instance after the user's token ran out) and adds the service token's
// roles as ServiceRoles. An invalid service token is refused (401), as
// keystonemiddleware refuses it.
func (k *Keystone) AuthenticateWithService(ctx context.Context, token, serviceToken string) (*imaged.Identity, error) {
	if token == "" {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	var svc *imaged.Identity
	if serviceToken != "" {
		s, err := k.validate(ctx, serviceToken, false)
		if err != nil {
			return nil, err
		}
		if !hasAnyRole(s.Roles, k.svcRoles) {
			return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "The service token does not carry a service role.")
		}
		svc = s
	}
	id, err := k.validate(ctx, token, svc != nil)
	if err != nil {
		return nil, err
	}
	if svc != nil {
		id.ServiceRoles = append([]string(nil), svc.Roles...)
	}
	return id, nil
}

func hasAnyRole(have, want []string) bool {
	probe := imaged.Identity{Roles: have}
	for _, w := range want {
		if probe.HasRole(w) {
			return true
		}
	}
	return false
}

// validate returns the identity of a token, from the cache when it is
// fresh. allowExpired asks Keystone to accept a recently expired token
// (only with a valid service token).
func (k *Keystone) validate(ctx context.Context, token string, allowExpired bool) (*imaged.Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := k.clock.Now()
	if k.cfg.CacheTTL > 0 {
		k.mu.Lock()
		c, ok := k.cache[key]
		k.mu.Unlock()
		if ok && now.Before(c.expires) && (allowExpired || now.Before(c.tokenExpires)) {
			id := c.id
			id.Roles = append([]string(nil), c.id.Roles...)
			return &id, nil
		}
	}
	id, exp, err := k.check(ctx, token, allowExpired, true)
	if err != nil {
		return nil, err
	}
	if k.cfg.CacheTTL > 0 {
		until := now.Add(k.cfg.CacheTTL)
		if !allowExpired && exp.Before(until) {
			until = exp
		}
		k.mu.Lock()
		if len(k.cache) >= k.cfg.CacheSize {
			k.evictLocked(now)
		}
		k.cache[key] = cachedToken{id: *id, expires: until, tokenExpires: exp}
		k.mu.Unlock()
	}
	return id, nil
}

// evictLocked drops expired entries and, if the cache is still full,
// about a tenth of the rest (map order is random enough to spread it).
func (k *Keystone) evictLocked(now time.Time) {
	for key, c := range k.cache {
		if !now.Before(c.expires) {
			delete(k.cache, key)
		}
	}
	drop := len(k.cache) - k.cfg.CacheSize + k.cfg.CacheSize/10 + 1
	for key := range k.cache {
		if drop <= 0 {
			break
		}
		delete(k.cache, key)
		drop--
	}
}

// CacheLen is the number of cached validations (for tests and metrics).
func (k *Keystone) CacheLen() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cache)
}

// tokenDoc is the part of Keystone's token document imaged reads.
type tokenDoc struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID string `json:"id"`
			} `json:"domain"`
		} `json:"project"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
		System map[string]any `json:"system"`
	} `json:"token"`
}

// check asks Keystone about a token with the service token; retry says a
// 401 (the service token itself expired) may refresh it once.
func (k *Keystone) check(ctx context.Context, token string, allowExpired, retry bool) (*imaged.Identity, time.Time, error) {
	svc, err := k.serviceToken(ctx, false)
	if err != nil {
		return nil, time.Time{}, err
	}
	u := k.base + "/auth/tokens"
	if allowExpired {
		u += "?allow_expired=1"
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("keystone: %w", err)
	}
	req.Header.Set("X-Auth-Token", svc)
	req.Header.Set("X-Subject-Token", token)
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, time.Time{}, k.unavailable(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, time.Time{}, k.unavailable(err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAUTHORIZED, "The request you have made requires authentication.")
	case resp.StatusCode == http.StatusUnauthorized && retry:
		// Our own service token expired or was revoked: get a new one.
		if _, err := k.serviceToken(ctx, true); err != nil {
			return nil, time.Time{}, err
		}
		return k.check(ctx, token, allowExpired, false)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		k.log.Error("keystone refused imaged's service user while validating a token", "status", resp.StatusCode)
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service refused to validate the token.")
	default:
		k.log.Error("keystone answered a token validation with an unexpected status", "status", resp.StatusCode)
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service is unavailable (status %d).", resp.StatusCode)
	}
	var doc tokenDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service sent an unreadable token document.")
	}
	exp, err := time.Parse(time.RFC3339Nano, doc.Token.ExpiresAt)
	if err != nil {
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service sent a token without a valid expiry.")
	}
	if !allowExpired && !k.clock.Now().Before(exp) {
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	id := &imaged.Identity{UserID: doc.Token.User.ID}
	if doc.Token.Project != nil {
		id.ProjectID = doc.Token.Project.ID
	}
	for _, r := range doc.Token.Roles {
		id.Roles = append(id.Roles, r.Name)
	}
	if id.UserID == "" {
		return nil, time.Time{}, imaged.Errorf(imaged.EUNAUTHORIZED, "The token names no user.")
	}
	return id, exp.UTC(), nil
}

// serviceToken returns imaged's own token, getting a new one when there
// is none, it expires within a minute, or force is set. Concurrent callers
// wait for one refresh.
func (k *Keystone) serviceToken(ctx context.Context, force bool) (string, error) {
	for {
		k.mu.Lock()
		if !force && k.svcToken != "" && k.clock.Now().Add(time.Minute).Before(k.svcExp) {
			t := k.svcToken
			k.mu.Unlock()
			return t, nil
		}
		if wait := k.refreshing; wait != nil {
			k.mu.Unlock()
			select {
			case <-wait:
				force = false
				continue
			case <-ctx.Done():
				return "", imaged.Errorf(imaged.EUNAVAILABLE, "The identity service is unavailable.")
			}
		}
		done := make(chan struct{})
		k.refreshing = done
		k.mu.Unlock()

		tok, exp, err := k.issue(ctx)
		k.mu.Lock()
		if err == nil {
			k.svcToken, k.svcExp = tok, exp
		}
		k.refreshing = nil
		close(done)
		k.mu.Unlock()
		return tok, err
	}
}

// issue gets a project-scoped token for the service user. A POST is not
// retried by net/http when a kept-alive connection turns out to be closed
// by the server (uwsgi does that), so a connection error is retried once
// here: issuing a token twice is harmless.
func (k *Keystone) issue(ctx context.Context) (string, time.Time, error) {
	tok, exp, err := k.issueOnce(ctx)
	if err != nil && imaged.ErrorCode(err) == imaged.EUNAVAILABLE && ctx.Err() == nil && errors.Is(err, errConnection) {
		tok, exp, err = k.issueOnce(ctx)
	}
	return tok, exp, err
}

// errConnection marks a failure to exchange a request with Keystone at all.
var errConnection = errors.New("keystone: connection failed")

func (k *Keystone) issueOnce(ctx context.Context) (string, time.Time, error) {
	var body bytes.Buffer
	_ = json.NewEncoder(&body).Encode(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": k.cfg.Username, "password": k.cfg.Password, "domain": map[string]any{"name": k.cfg.UserDomainName}}}},
		"scope": map[string]any{"project": map[string]any{"name": k.cfg.ProjectName, "domain": map[string]any{"name": k.cfg.ProjectDomainName}}},
	}})
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.base+"/auth/tokens?nocatalog", &body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("keystone: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %w", k.unavailable(err), errConnection)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		// Never log the password; the status says enough.
		k.log.Error("keystone refused imaged's service user credentials", "status", resp.StatusCode, "user", k.cfg.Username, "project", k.cfg.ProjectName)
		return "", time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service refused imaged's service credentials.")
	}
	tok := resp.Header.Get("X-Subject-Token")
	var doc tokenDoc
	if err := json.Unmarshal(data, &doc); err != nil || tok == "" {
		return "", time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service sent an unreadable token.")
	}
	exp, err := time.Parse(time.RFC3339Nano, doc.Token.ExpiresAt)
	if err != nil {
		return "", time.Time{}, imaged.Errorf(imaged.EUNAVAILABLE, "The identity service sent a token without a valid expiry.")
	}
	return tok, exp, nil
}

func (k *Keystone) unavailable(err error) error {
	var ne net.Error
	reason := "unreachable"
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		reason = "not answering in time"
	}
	k.log.Error("keystone call failed", "err", err)
	return imaged.Errorf(imaged.EUNAVAILABLE, "The identity service is %s.", reason)
}
