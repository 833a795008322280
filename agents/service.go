// Package agents is the service side of node agents (imaged.AgentService):
// the agent registry (registration and heartbeats authenticated with
// per-agent tokens, online/offline status, inventories), which agents hold
// an image, and purges and preloads fanned out to agents as background
// tasks.
//
// Decisions:
//
//   - Tokens: the service keeps only SHA-256 digests of agent tokens (from
//     a tokens file, LoadTokens, or registered by an admin). An agent
//     registers with its token; the service calls the agent's API with
//     the digest (see imaged.AgentTokenDigest).
//   - Status: an agent is offline once 3 of its announced heartbeat
//     intervals passed without a heartbeat. An offline agent is not
//     contacted: its items are reported "offline" at once.
//   - Fan-out: agents are contacted in parallel by a bounded pool
//     (Concurrency, default 64), each call bounded by AgentTimeout
//     (default 30 s), so an offline or slow agent never holds up the
//     others. Every agent of the request gets an entry in the result,
//     and every failure one error entry naming the agent, the image and
//     a reason (offline, timeout, unreachable, rejected, agent_error,
//     unknown_agent, unknown_image, not_present, in_use, runtime_error).
//   - Images are named by canonical reference or alias and resolved with
//     ContainerService.ResolveContainerImage (as the caller); an unknown
//     image is reported, not fatal.
//   - After a purge the agent's inventory loses the purged images and
//     those it reported not present (Backend.AI kept showing them
//     "installed", #3924); after a preload it gains the pulled ones.
//   - Only admins may list agents, register tokens, purge or preload;
//     every purge and preload (refused ones too) is audited.
package agents

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Defaults of Config.
const (
	DefaultConcurrency  = 64
	DefaultAgentTimeout = 30 * time.Second
	DefaultTaskTimeout  = time.Hour
	DefaultHeartbeat    = 10 * time.Second
	// MissedHeartbeats is how many intervals without a heartbeat make an
	// agent offline.
	MissedHeartbeats = 3
	// Request bounds.
	MaxKeys         = 10000
	MaxImagesPerKey = 1000
	maxInventory    = 100000
)

// Resolver finds the container image a reference or alias names
// (imaged.ContainerService satisfies it).
type Resolver interface {
	ResolveContainerImage(ctx context.Context, reference, arch string) (*imaged.ContainerImage, error)
}

// Catalog reads container images by id and keeps the audit log
// (imaged.ContainerStore satisfies it).
type Catalog interface {
	GetContainerImage(ctx context.Context, id string) (*imaged.ContainerImage, error)
	AppendAudit(ctx context.Context, e *imaged.AuditEntry) error
}

// Config configures a Service.
type Config struct {
	Store    imaged.AgentStore // required
	Resolver Resolver          // required
	Catalog  Catalog           // required
	Tasks    imaged.TaskRunner // required: runs the fan-outs (shared with containers, which shows them)
	Policy   imaged.Policy     // required
	// VMImages, when set, is the catalog's image store: glance://<id>
	// names (VM images on agents' dir runtimes) are checked against it.
	VMImages interface {
		GetImage(ctx context.Context, id string) (*imaged.Image, error)
	}
	// Tokens maps agent ids to token digests (LoadTokens); they take
	// precedence over digests registered in the store.
	Tokens       map[string]string
	Clock        imaged.Clock  // nil = imaged.SystemClock
	Logger       *slog.Logger  // nil = slog.Default()
	Concurrency  int           // agents contacted at once; 0 = DefaultConcurrency
	AgentTimeout time.Duration // per agent call; 0 = DefaultAgentTimeout
	TaskTimeout  time.Duration // whole task; 0 = DefaultTaskTimeout
	Client       *http.Client  // for agents; nil = a pooled client without a global timeout
}

// Service implements imaged.AgentService.
type Service struct {
	cfg    Config
	store  imaged.AgentStore
	clock  imaged.Clock
	log    *slog.Logger
	client *http.Client
}

var _ imaged.AgentService = (*Service)(nil)

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Resolver == nil || cfg.Catalog == nil || cfg.Tasks == nil || cfg.Policy == nil {
		return nil, fmt.Errorf("agents: Store, Resolver, Catalog, Tasks and Policy are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = imaged.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = DefaultAgentTimeout
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // agents are on the node network, never behind the environment's proxy
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		}}
	}
	return &Service{cfg: cfg, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger, client: cfg.Client}, nil
}

// status computes an agent's status at now.
func status(a *imaged.Agent, now time.Time) imaged.AgentStatus {
	iv := a.HeartbeatInterval
	if iv <= 0 {
		iv = DefaultHeartbeat
	}
	if now.Sub(a.LastHeartbeat) > MissedHeartbeats*iv {
		return imaged.AgentOffline
	}
	return imaged.AgentOnline
}

// expectedDigest returns the token digest an agent must match.
func (s *Service) expectedDigest(ctx context.Context, id string) (string, error) {
	if d, ok := s.cfg.Tokens[id]; ok {
		return d, nil
	}
	d, err := s.store.GetAgentToken(ctx, id)
	if imaged.ErrorCode(err) == imaged.ENOTFOUND {
		return "", imaged.Errorf(imaged.EUNAUTHORIZED, "The agent token is not valid.")
	}
	return d, err
}

func (s *Service) checkToken(ctx context.Context, id, token string) error {
	if token == "" {
		return imaged.Errorf(imaged.EUNAUTHORIZED, "An agent token is required.")
	}
	want, err := s.expectedDigest(ctx, id)
	if err != nil {
		return err
	}
	got := imaged.AgentTokenDigest(token)
	if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(want))) != 1 {
		return imaged.Errorf(imaged.EUNAUTHORIZED, "The agent token is not valid.")
	}
	return nil
}

// Register implements imaged.AgentService.
func (s *Service) Register(ctx context.Context, token string, reg imaged.AgentRegistration) (*imaged.Agent, error) {
	if !ValidAgentID(reg.AgentID) {
		return nil, imaged.Errorf(imaged.EINVALID, "bad agent id %q: 1 to 64 letters, digits, '.', '_' or '-'", reg.AgentID)
	}
	if err := s.checkToken(ctx, reg.AgentID, token); err != nil {
		return nil, err
	}
	if err := validateRegistration(&reg); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	a := &imaged.Agent{ID: reg.AgentID, Addr: reg.Addr, Runtime: reg.Runtime, Version: reg.Version,
		HeartbeatInterval: reg.HeartbeatInterval, LastHeartbeat: now, Images: reg.Images}
	if err := s.store.UpsertAgent(ctx, a); err != nil {
		return nil, fmt.Errorf("agents: register: %w", err)
	}
	a.Status = imaged.AgentOnline
	return a, nil
}

func validateRegistration(reg *imaged.AgentRegistration) error {
	u, err := url.Parse(reg.Addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.User != nil || len(reg.Addr) > 256 {
		return imaged.Errorf(imaged.EINVALID, "addr must be the agent's base URL, http(s)://host:port")
	}
	reg.Addr = strings.TrimSuffix(reg.Addr, "/")
	if reg.Runtime == "" || len(reg.Runtime) > 32 || strings.Trim(reg.Runtime, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return imaged.Errorf(imaged.EINVALID, "runtime must be a short lowercase name (dir, docker)")
	}
	if len(reg.Version) > 64 {
		return imaged.Errorf(imaged.EINVALID, "version is too long")
	}
	switch {
	case reg.HeartbeatInterval == 0:
		reg.HeartbeatInterval = DefaultHeartbeat
	case reg.HeartbeatInterval < 100*time.Millisecond || reg.HeartbeatInterval > time.Hour:
		return imaged.Errorf(imaged.EINVALID, "heartbeat interval must be between 0.1 s and 1 h")
	}
	if len(reg.Images) > maxInventory {
		return imaged.Errorf(imaged.EINVALID, "an inventory holds at most %d images", maxInventory)
	}
	for i := range reg.Images {
		im := &reg.Images[i]
		if im.Reference == "" || len(im.Reference) > 512 || len(im.Architecture) > 32 || len(im.Digest) > 128 || im.Size < 0 {
			return imaged.Errorf(imaged.EINVALID, "images[%d] is malformed (reference 1-512 chars, architecture, digest, size >= 0)", i)
		}
		im.Architecture = imaged.NormalizeArch(im.Architecture)
	}
	return nil
}

// admin returns the caller, EFORBIDDEN unless an admin.
func (s *Service) admin(ctx context.Context) (*imaged.Identity, error) {
	id := imaged.IdentityFromContext(ctx)
	if id == nil {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "Authentication required.")
	}
	if !s.cfg.Policy.IsAdmin(id) {
		return id, imaged.Errorf(imaged.EFORBIDDEN, "Only administrators may manage node agents.")
	}
	return id, nil
}

// RegisterAgentToken implements imaged.AgentService.
func (s *Service) RegisterAgentToken(ctx context.Context, agentID, token string, digest bool) (err error) {
	defer func() { s.audit(ctx, "agents.token", agentID, err, nil) }()
	if _, err := s.admin(ctx); err != nil {
		return err
	}
	if !ValidAgentID(agentID) {
		return imaged.Errorf(imaged.EINVALID, "bad agent id %q", agentID)
	}
	var d string
	if digest {
		d, err = tokenDigest("", token)
	} else {
		d, err = tokenDigest(token, "")
	}
	if err != nil {
		return err
	}
	if _, fixed := s.cfg.Tokens[agentID]; fixed {
		return imaged.Errorf(imaged.ECONFLICT, "agent %q has its token in the agent tokens file", agentID)
	}
	return s.store.PutAgentToken(ctx, agentID, d)
}

// ListAgents implements imaged.AgentService.
func (s *Service) ListAgents(ctx context.Context) ([]*imaged.Agent, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	list, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("agents: list: %w", err)
	}
	now := s.clock.Now()
	for _, a := range list {
		a.Status = status(a, now)
	}
	return list, nil
}

// GetAgent implements imaged.AgentService.
func (s *Service) GetAgent(ctx context.Context, id string) (*imaged.Agent, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	if !ValidAgentID(id) {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "agent %q is not registered", id)
	}
	a, err := s.store.GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	a.Status = status(a, s.clock.Now())
	return a, nil
}

// InstalledAgents implements imaged.AgentService: online agents only, as
// an offline node's cache cannot be used.
func (s *Service) InstalledAgents(ctx context.Context, imageIDs []string) (map[string][]string, error) {
	if imaged.IdentityFromContext(ctx) == nil {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "Authentication required.")
	}
	keyOf := map[string]imaged.AgentImageKey{}
	var keys []imaged.AgentImageKey
	for _, id := range imageIDs {
		if _, done := keyOf[id]; done {
			continue
		}
		img, err := s.cfg.Catalog.GetContainerImage(ctx, id)
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("agents: installed agents: %w", err)
		}
		k := imaged.AgentImageKey{Reference: img.Reference, Architecture: img.Architecture}
		keyOf[id] = k
		keys = append(keys, k)
	}
	out := map[string][]string{}
	if len(keys) == 0 {
		return out, nil
	}
	holding, err := s.store.AgentsHolding(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("agents: installed agents: %w", err)
	}
	list, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("agents: installed agents: %w", err)
	}
	now := s.clock.Now()
	online := map[string]bool{}
	for _, a := range list {
		online[a.ID] = status(a, now) == imaged.AgentOnline
	}
	for id, k := range keyOf {
		for _, a := range holding[k] {
			if online[a] {
				out[id] = append(out[id], a)
			}
		}
	}
	return out, nil
}

// audit appends an entry; a failure to audit is logged, not returned.
func (s *Service) audit(ctx context.Context, action, target string, err error, detail map[string]any) {
	e := &imaged.AuditEntry{RequestID: imaged.RequestIDFromContext(ctx), Action: action, Target: target, Result: "success", Detail: detail}
	if id := imaged.IdentityFromContext(ctx); id != nil {
		e.UserID, e.ProjectID = id.UserID, id.ProjectID
	}
	if err != nil {
		e.Result = "failure"
		if e.Detail == nil {
			e.Detail = map[string]any{}
		}
		e.Detail["error"] = imaged.ErrorMessage(err)
	}
	if aerr := s.cfg.Catalog.AppendAudit(context.WithoutCancel(ctx), e); aerr != nil {
		s.log.Error("agents: audit failed", "action", action, "target", target, "err", aerr)
	}
}
