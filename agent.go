package imaged

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Node agents run on compute nodes next to a container runtime (a cache
// directory, Docker, podman). Each registers with the service and sends
// heartbeats carrying its inventory: the images its runtime holds. The
// service marks an agent that misses three heartbeat intervals offline and
// fans purges and preloads out to agents as background tasks.
//
// Credentials: every agent has its own token (the agent's --token-file).
// The service keeps only the token's SHA-256 digest (AgentTokenDigest),
// from a tokens file or registered by an admin. An agent proves itself to
// the service with the token (X-Agent-Token); the service calls the
// agent's API with the digest, which the agent computes from its token
// file. So a leaked database lets nobody impersonate an agent to the
// service, and a leaked agent API credential is not the agent's token.

// AgentStatus says whether an agent's heartbeats are current.
type AgentStatus string

// Agent statuses.
const (
	AgentOnline  AgentStatus = "online"
	AgentOffline AgentStatus = "offline"
)

// Agent runtimes (the --runtime of `imaged agent`).
const (
	AgentRuntimeDir        = "dir"
	AgentRuntimeDocker     = "docker"
	AgentRuntimeContainerd = "containerd" // needs a build with -tags containerd
)

// AgentImage is one image an agent's runtime holds.
type AgentImage struct {
	Reference    string `json:"reference"`    // canonical reference (with tag)
	Architecture string `json:"architecture"` // normalised (NormalizeArch)
	Digest       string `json:"digest"`       // manifest digest ("" if the runtime does not know it)
	Size         int64  `json:"size"`         // bytes
}

// Agent is a registered node agent.
type Agent struct {
	ID      string
	Addr    string // base URL of the agent's API, e.g. "http://127.0.0.1:7070"
	Runtime string // AgentRuntimeDir, AgentRuntimeDocker
	Version string
	// HeartbeatInterval is the interval the agent announced; it is
	// offline once 3 intervals passed without a heartbeat.
	HeartbeatInterval time.Duration
	RegisteredAt      time.Time
	LastHeartbeat     time.Time
	// Images is the last inventory the agent reported (or the service
	// corrected after a purge or preload), sorted by reference and
	// architecture. Listings may leave it nil and fill ImageCount and
	// ImagesSize only.
	Images     []AgentImage
	ImageCount int
	ImagesSize int64
	// Status is computed by the service from LastHeartbeat; stores leave
	// it empty.
	Status AgentStatus
}

// AgentImageKey names one image on agents: (reference, architecture).
type AgentImageKey struct {
	Reference    string
	Architecture string
}

// AgentStore persists agents, their inventories and the digests of agent
// tokens. Implementations (sqlstore) pass sqlstore/storetest's agents
// section. Errors: ENOTFOUND for an unknown agent or token.
type AgentStore interface {
	// PutAgentToken records the SHA-256 digest (hex) of an agent's token,
	// replacing a previous one.
	PutAgentToken(ctx context.Context, agentID, digest string) error
	// GetAgentToken returns the digest of an agent's token.
	GetAgentToken(ctx context.Context, agentID string) (string, error)
	// UpsertAgent creates or updates the agent's registration (Addr,
	// Runtime, Version, HeartbeatInterval, LastHeartbeat; RegisteredAt is
	// kept once set) and, when a.Images is not nil, replaces its inventory
	// in the same transaction.
	UpsertAgent(ctx context.Context, a *Agent) error
	// GetAgent returns an agent with its inventory.
	GetAgent(ctx context.Context, id string) (*Agent, error)
	// ListAgents returns every agent sorted by id, with ImageCount and
	// ImagesSize but without Images.
	ListAgents(ctx context.Context) ([]*Agent, error)
	// UpdateAgentImages applies inventory edits to several agents in one
	// transaction: each removes the images named by Remove and adds (or
	// replaces) those in Add. Edits of unknown agents are skipped.
	UpdateAgentImages(ctx context.Context, updates ...AgentImagesUpdate) error
	// AgentsHolding returns, for each key, the ids of the agents whose
	// inventory holds it (sorted); keys nobody holds are absent.
	AgentsHolding(ctx context.Context, keys []AgentImageKey) (map[AgentImageKey][]string, error)
}

// AgentImagesUpdate is an edit of one agent's inventory.
type AgentImagesUpdate struct {
	AgentID string
	Remove  []AgentImageKey
	Add     []AgentImage
}

// AgentImageName names an image in a purge or preload request: a
// canonical reference or an alias, and an architecture.
type AgentImageName struct {
	Name         string `json:"name"`
	Architecture string `json:"architecture"`
}

// AgentImagesKey is the images one agent should purge or preload.
type AgentImagesKey struct {
	AgentID string           `json:"agent_id"`
	Images  []AgentImageName `json:"images"`
}

// AgentImagesRequest is a purge (or preload) request: per-agent images,
// and the runtime's force and noprune flags (purge only).
type AgentImagesRequest struct {
	Keys    []AgentImagesKey `json:"keys"`
	Force   bool             `json:"force"`
	NoPrune bool             `json:"noprune"`
}

// AgentRegistration is what an agent sends when it registers and with
// every heartbeat.
type AgentRegistration struct {
	AgentID           string
	Addr              string
	Runtime           string
	Version           string
	HeartbeatInterval time.Duration
	Images            []AgentImage // nil = inventory unchanged
}

// AgentService is the node agents' use cases, for agentapi and nativeapi.
// Register and Heartbeat authenticate the agent by its token; the others
// take the caller's identity from the context and are admin only except
// InstalledAgents. Errors: EUNAUTHORIZED (bad agent token), EFORBIDDEN (not
// an admin), EINVALID, ENOTFOUND.
type AgentService interface {
	// Register records an agent's registration or heartbeat.
	Register(ctx context.Context, token string, reg AgentRegistration) (*Agent, error)
	// RegisterAgentToken records an agent's token (or its SHA-256 digest,
	// when digest is true) so that the agent may register.
	RegisterAgentToken(ctx context.Context, agentID, token string, digest bool) error
	ListAgents(ctx context.Context) ([]*Agent, error)
	GetAgent(ctx context.Context, id string) (*Agent, error)
	// InstalledAgents returns, for each container image id, the online
	// agents whose inventory holds it (ids absent when none).
	InstalledAgents(ctx context.Context, imageIDs []string) (map[string][]string, error)
	// PurgeImages and PreloadImages start background tasks
	// (TaskTypeAgentPurge, TaskTypeAgentPreload) and return them at once.
	PurgeImages(ctx context.Context, req AgentImagesRequest) (*Task, error)
	PreloadImages(ctx context.Context, req AgentImagesRequest) (*Task, error)
}

// AgentTokenDigest is the hex SHA-256 of an agent token: what the service
// keeps, and the credential it presents to the agent's API.
func AgentTokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// The agent wire protocol: the node agent (agent package) serves these
// bodies and the service (agents package) sends and reads them, so both
// sides share one definition.

// Reasons of purge and preload item outcomes (and of the service's task
// errors): what a caller needs to tell apart.
const (
	AgentReasonNotPresent   = "not_present"
	AgentReasonInUse        = "in_use"
	AgentReasonNotFound     = "not_found" // preload: not in its registry
	AgentReasonInvalid      = "invalid"
	AgentReasonRuntimeError = "runtime_error"
)

// AgentVMScheme prefixes the references of VM images of the catalog held
// by agents: "glance://<image id>".
const AgentVMScheme = "glance://"

// AgentImageSpec names an image in the agent API.
type AgentImageSpec struct {
	Reference    string `json:"reference"`
	Architecture string `json:"architecture"`
}

// AgentPurgeRequest is the body of an agent's POST /v1/images/purge.
type AgentPurgeRequest struct {
	Images  []AgentImageSpec `json:"images"`
	Force   bool             `json:"force"`
	NoPrune bool             `json:"noprune"`
}

// AgentPurgeResult is one image's purge outcome.
type AgentPurgeResult struct {
	Reference    string `json:"reference"`
	Architecture string `json:"architecture"`
	Purged       bool   `json:"purged"`
	BytesFreed   int64  `json:"bytes_freed"`
	Error        string `json:"error,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// AgentPreloadRequest is the body of an agent's POST /v1/images/preload.
type AgentPreloadRequest struct {
	Images []AgentImageSpec `json:"images"`
}

// AgentRegistrationBody is the body of the service's register and
// heartbeat endpoints (POST /api/v1/agents/{id}/register, .../heartbeat).
type AgentRegistrationBody struct {
	Addr             string       `json:"addr"`
	Runtime          string       `json:"runtime"`
	Version          string       `json:"version"`
	HeartbeatSeconds float64      `json:"heartbeat_seconds"`
	Images           []AgentImage `json:"images"`
}
