package imaged

import (
	"context"
	"log/slog"
	"time"
)

// Container images are images of the catalog (same id space, owner,
// visibility, tags, protection) that also carry container facts: where they
// live in a registry and what their manifest says. In the Glance API they
// appear with container_format "docker"; the native API (/api/v1) shows
// the full container view. Their identity among live images is
// (canonical reference, normalised architecture).

// ContainerFormatDocker is the Glance container_format of container images.
const ContainerFormatDocker = "docker"

// ContainerImageType says what a container image is for.
type ContainerImageType string

// Container image types (Backend.AI's compute, system and service).
const (
	ContainerTypeCompute ContainerImageType = "compute"
	ContainerTypeSystem  ContainerImageType = "system"
	ContainerTypeService ContainerImageType = "service"
)

// ContainerStatus is the lifecycle state of a container image.
type ContainerStatus string

// Container image statuses. A forgotten image (soft delete) leaves
// listings and resolution; its row, aliases and operator settings remain
// until it is restored or purged (hard delete removes the row).
const (
	ContainerAlive     ContainerStatus = "alive"
	ContainerForgotten ContainerStatus = "forgotten"
)

// Labels that carry meaning for the container catalog.
const (
	LabelCustomizedOwner = "ai.backend.customized-image.owner" // "user:<user id>"
	LabelKernelspec      = "ai.backend.kernelspec"
	LabelAccelerators    = "ai.backend.accelerators"
	LabelResourceMin     = "ai.backend.resource.min." // + slot
	LabelResourceMax     = "ai.backend.resource.max." // + slot
)

// Reference is a parsed, canonical container image reference.
// Canonical form: "<registry>/<project>/<name>:<tag>" with empty parts
// left out, e.g. "index.docker.io/lablup/python:3.9" or
// "127.0.0.1:5000/bai/python:3.9-ubuntu20.04". A digest reference has
// Digest set and renders as "...@sha256:..."; its Tag is "" unless the
// input named both ("name:tag@sha256:...", rendered the same way).
type Reference struct {
	Registry string // host[:port]; "index.docker.io" for Docker Hub
	Project  string // namespace inside the registry, may hold "/"; "" = none
	Name     string // image name inside the project; "" when the project is the image (GitLab style)
	Tag      string // "" for a digest reference
	Digest   string // "sha256:<hex>" or ""
}

// ResourceLimit is an operator-set or effective resource limit for one
// slot (cpu, mem, cuda.device, ...). Values keep their text form ("2",
// "512m", "32G"); Max "" means no maximum.
type ResourceLimit struct {
	Min string `json:"min"`
	Max string `json:"max,omitempty"`
}

// ContainerImage is a catalog image with its container facts.
type ContainerImage struct {
	ID string // the catalog image id (UUID)

	// Container facts, as scanned.
	Reference    string             // canonical reference (with tag), see Reference
	Registry     string             // name of the configured registry that produced it
	RegistryHost string             // host[:port] part of Reference
	Project      string             // registry project; "" = none
	Repository   string             // path without registry and tag, e.g. "bai/python"
	Tag          string             //
	Architecture string             // normalised (NormalizeArch)
	Digest       string             // manifest digest of this architecture's manifest
	IndexDigest  string             // digest of the multi-arch index it came from; "" = none
	ConfigDigest string             //
	Size         int64              // layers + config, bytes
	Labels       map[string]string  // raw labels of the image config
	Accelerators []string           // nil = any ("*"); empty = none
	Type         ContainerImageType //
	Status       ContainerStatus    //
	// ResourceLimits are the operator-set (custom) limits only; the
	// effective limits are computed (EffectiveLimits) and never stored.
	ResourceLimits map[string]ResourceLimit
	Aliases        []string // read-only: the aliases that name this image, sorted

	// Catalog fields shared with the Glance view.
	Owner      string     // project id; "" = none (registry images)
	Visibility Visibility // public for scanned stock images
	Protected  bool
	Tags       []string // catalog tags, sorted, unique
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ScannedAt  time.Time // last time a scan saw it in its registry
	// Version counts committed updates (for ETag/If-Match).
	Version int64
}

// CustomizedOwner returns the user id named by the customized-image owner
// label ("user:<id>"), or "" when the image is not customized or the
// label is malformed (a malformed label makes nobody the owner).
func (ci *ContainerImage) CustomizedOwner() string {
	v, ok := ci.Labels[LabelCustomizedOwner]
	if !ok {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] == ':' {
			if v[:i] != "user" || i+1 == len(v) {
				return ""
			}
			return v[i+1:]
		}
	}
	return ""
}

// RegistryType says how imaged talks to a registry.
type RegistryType string

// Registry types.
const (
	RegistryOCI       RegistryType = "oci"        // a generic OCI distribution registry (catalog API)
	RegistryHarbor2   RegistryType = "harbor2"    // Harbor v2 (project API)
	RegistryDockerHub RegistryType = "docker-hub" // Docker Hub: single-repository scans only
)

// Registry is a configured container registry.
type Registry struct {
	Name     string       // unique, chosen by the admin
	URL      string       // e.g. "https://registry.example.com" or "http://127.0.0.1:5000"
	Type     RegistryType //
	Projects []string     // projects (namespaces) to scan; may be empty for docker-hub
	Username string
	// Password is write-only: stores keep it, surfaces never render it and
	// LogValue leaves it out.
	Password string
	// HasPassword says a password is stored, for views that blank
	// Password.
	HasPassword bool
	VerifyTLS   bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LogValue makes slog show a registry without its credentials.
func (r *Registry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("url", r.URL), slog.String("type", string(r.Type)))
}

// Host returns the host[:port] of the registry's URL, which is the
// registry part of the canonical references of its images.
func (r *Registry) Host() string {
	u := r.URL
	for _, p := range []string{"https://", "http://"} {
		if len(u) >= len(p) && u[:len(p)] == p {
			u = u[len(p):]
			break
		}
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

// ScannedImage is what a registry scan found for one (repository, tag,
// architecture): raw facts, before label validation.
type ScannedImage struct {
	Repository   string // path inside the registry, without tag ("bai/python")
	Tag          string
	Architecture string // normalised
	Digest       string // this architecture's manifest digest
	IndexDigest  string // the index it was listed in; "" = single manifest
	ConfigDigest string
	Size         int64 // layers + config
	Labels       map[string]string
	MediaType    string // manifest media type
}

// RegistryClient talks to container registries (registry package, on
// go-containerregistry). Errors: ENOTFOUND (repository or tag unknown),
// EUNAUTHORIZED (credentials refused), EUNAVAILABLE (registry unreachable
// or failing), EREFUSED (the registry refuses the operation, e.g. a
// 405 on delete), EINVALID (a manifest or config that cannot be read).
type RegistryClient interface {
	// ListRepositories calls fn for every repository under project ("" =
	// all) of reg, following pagination. A repository belongs to project
	// when its path is project or starts with project + "/". fn's error
	// stops the listing and is returned.
	ListRepositories(ctx context.Context, reg *Registry, project string, fn func(repo string) error) error
	// ListTags returns every tag of a repository (pagination followed).
	// A repository with no tags returns an empty list, no error.
	ListTags(ctx context.Context, reg *Registry, repo string) ([]string, error)
	// Scan reads one tag or digest of a repository: one ScannedImage per
	// architecture of a multi-arch index (attestations skipped), or one
	// for a single manifest.
	Scan(ctx context.Context, reg *Registry, repo, tagOrDigest string) ([]ScannedImage, error)
	// DeleteManifest deletes a manifest by digest (untag). A manifest
	// already gone is success. A registry that refuses deletion is
	// EREFUSED with a message that says so.
	DeleteManifest(ctx context.Context, reg *Registry, repo, digest string) error
}

// ContainerImageQuery selects container images.
type ContainerImageQuery struct {
	Registry     string // "" = any
	Project      string
	Repository   string
	Tag          string
	Architecture string            // normalised by the caller
	Reference    string            // exact canonical reference
	Statuses     []ContainerStatus // empty = alive only
	Owner        string            // catalog owner; "" = any
	// CustomizedOwner selects customized images of one user ("" = no
	// filter); Customized, when set, selects customized (true) or stock
	// (false) images.
	CustomizedOwner string
	Customized      *bool
	// ReadableBy, when set, keeps only the images this non-admin reader
	// may read, so that the store does not hand back pages of images the
	// caller would drop (a catalog of many users' customized images). nil
	// = no restriction (admins). The rule is the one policy.ContainerAccess
	// applies to a non-admin, combined (AND) with the other filters,
	// Statuses included:
	//   - a customized image (one carrying LabelCustomizedOwner, whatever
	//     its value) is readable, in any status and visibility, only when
	//     its label is exactly "user:" + UserID and UserID is not empty (a
	//     malformed label makes nobody the owner);
	//   - any other image is readable only while alive, and then when its
	//     visibility is public or community, or when it is private or
	//     shared and its catalog Owner equals ProjectID, ProjectID not
	//     empty.
	// Empty ids never match: an empty UserID reads no customized image,
	// an empty ProjectID no private or shared one.
	ReadableBy *ContainerReader
	// Sort: "reference" (default), "created_at", "updated_at", "size";
	// ties broken by id in the same direction.
	SortKey string
	SortDir SortDir // "" = asc
	After   *ContainerImage
	Limit   int // > 0
}

// ContainerReader is the non-admin caller a ContainerImageQuery is
// restricted to (its Identity's UserID and ProjectID).
type ContainerReader struct {
	ProjectID string
	UserID    string
}

// ContainerAlias names one container image.
type ContainerAlias struct {
	Alias     string
	ImageID   string
	CreatedAt time.Time
}

// ScanCommit is the outcome of committing a scan's findings.
type ScanCommit struct {
	Created   []*ContainerImage // new rows
	Updated   []*ContainerImage // existing rows whose facts were refreshed
	Forgotten []*ContainerImage // forgotten rows seen again: facts refreshed, left forgotten
}

// AuditEntry is one change recorded in the audit log.
type AuditEntry struct {
	ID        int64     // assigned by the store, increasing
	Time      time.Time //
	RequestID string
	UserID    string
	ProjectID string
	Action    string // e.g. "container_image.forget", "registry.create", "agents.purge"
	Target    string // what it acted on (image id, registry name, task id)
	Result    string // "success" or "failure"
	Detail    map[string]any
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Action   string // "" = any; a trailing "*" matches a prefix
	Target   string
	UserID   string
	Result   string
	Since    *time.Time
	Until    *time.Time
	BeforeID int64 // > 0: entries with ID < BeforeID (paging)
	Limit    int   // > 0
}

// ContainerStore persists registries, container images, aliases and the
// audit log. It shares its database with the ImageStore: a container
// image's catalog row (images table) and its container row are written in
// one transaction. Implementations (sqlstore) pass sqlstore/storetest.
// Errors: ENOTFOUND, ECONFLICT (duplicate name/alias, identity taken).
type ContainerStore interface {
	CreateRegistry(ctx context.Context, r *Registry) error
	GetRegistry(ctx context.Context, name string) (*Registry, error)
	ListRegistries(ctx context.Context) ([]*Registry, error)
	// UpdateRegistry reads, calls fn on a copy and writes back in one
	// transaction (fn may run more than once).
	UpdateRegistry(ctx context.Context, name string, fn func(*Registry) error) (*Registry, error)
	// DeleteRegistry removes a registry. ECONFLICT while live (alive or
	// forgotten) container images still name it.
	DeleteRegistry(ctx context.Context, name string) error

	// CommitScan writes the findings of a scan of registry in one
	// transaction: for every (reference, architecture) it refreshes the
	// facts of the existing row (digests, size, labels, accelerators,
	// scanned time) and keeps operator-set fields (type, resource limits,
	// visibility, protection, tags, aliases, owner); a forgotten row stays
	// forgotten (see docs); a new one is created alive with the catalog
	// fields of tmpl (visibility, owner) and a fresh id. Images that
	// vanished from the registry are not touched.
	CommitScan(ctx context.Context, registry string, found []*ContainerImage) (*ScanCommit, error)
	// GetContainerImage returns a container image by catalog id (any
	// status). ENOTFOUND if there is none.
	GetContainerImage(ctx context.Context, id string) (*ContainerImage, error)
	// FindContainerImage returns the image with that exact canonical
	// reference and architecture among the given statuses (empty =
	// alive only). ENOTFOUND otherwise.
	FindContainerImage(ctx context.Context, reference, arch string, statuses ...ContainerStatus) (*ContainerImage, error)
	// ListContainerImages returns at most q.Limit images matching q.
	ListContainerImages(ctx context.Context, q ContainerImageQuery) ([]*ContainerImage, error)
	// UpdateContainerImage reads the image (any status), calls fn on a
	// copy and writes it back (container row and catalog row) in one
	// serialised transaction; fn may run more than once. ECONFLICT if
	// restoring it would collide with a live image of the same identity.
	UpdateContainerImage(ctx context.Context, id string, fn func(*ContainerImage) error) (*ContainerImage, error)
	// PurgeContainerImage removes the image, its aliases and its catalog
	// row (which becomes a deleted tombstone, as Glance deletes do) in one
	// transaction and returns it as it was. fn, if not nil, runs inside
	// the transaction on the current row and may veto by returning an
	// error.
	PurgeContainerImage(ctx context.Context, id string, fn func(*ContainerImage) error) (*ContainerImage, error)

	// PutAlias points alias at an image (creating or moving it).
	// ECONFLICT if the alias equals the canonical reference of a live
	// image. ENOTFOUND if the image does not exist.
	PutAlias(ctx context.Context, alias, imageID string) (*ContainerAlias, error)
	// GetAlias returns one alias. ENOTFOUND if absent.
	GetAlias(ctx context.Context, alias string) (*ContainerAlias, error)
	// DeleteAlias removes an alias and returns it. ENOTFOUND if absent.
	DeleteAlias(ctx context.Context, alias string) (*ContainerAlias, error)
	// ListAliases returns aliases sorted by name, optionally of one image
	// ("" = all), at most limit (<= 0: all) after the alias named after.
	ListAliases(ctx context.Context, imageID, after string, limit int) ([]*ContainerAlias, error)

	// AppendAudit records an entry (ID and Time set by the store when zero).
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns entries matching q, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)
}

// ReferenceOptions tunes ParseReference.
type ReferenceOptions struct {
	// KnownRegistries are registry hosts (host[:port]) recognised as the
	// first path segment; "*" recognises any first segment of a
	// multi-segment reference. IP addresses (with optional port, IPv6 in
	// brackets) and localhost[:port] are always recognised.
	KnownRegistries []string
	// DefaultRegistry is used when no registry is recognised, for
	// slash-less names and for paths whose first segment is not a
	// recognised registry ("" = "index.docker.io"). Setting it to the one
	// known registry gives upstream's "hint prepended" behaviour.
	DefaultRegistry string
	// DefaultNamespace is prefixed to single-segment Docker Hub paths
	// ("" = "library", Docker's convention; Backend.AI uses "lablup").
	DefaultNamespace string
}

// BulkResult is the outcome of a bulk operation: every item is reported,
// never all-or-nothing by accident.
type BulkResult struct {
	Successful []string      `json:"successful"`
	Failed     []BulkFailure `json:"failed"`
}

// BulkFailure is one failed item of a bulk operation.
type BulkFailure struct {
	ID    string `json:"id"`
	Code  string `json:"code"`  // error code (ENOTFOUND, ...)
	Error string `json:"error"` // client-safe message
}

// AliasTarget names the image an alias should point at: an id, or a
// reference and architecture.
type AliasTarget struct {
	ImageID      string
	Reference    string
	Architecture string
}

// ContainerService is the container image use cases, as the native API
// (nativeapi) and the CLI call them. The caller's identity comes from the
// context. Roles: an admin (policy IsAdmin) may do everything; the owner of
// a customized image (CustomizedOwner == caller's user id) may see, forget,
// restore, purge and untag it; other callers may only read the images
// visible to them (customized images of others are invisible: ENOTFOUND).
// Errors: EINVALID (400), EFORBIDDEN (403: visible but not changeable),
// ENOTFOUND (404: absent or invisible), ECONFLICT (409: state or
// uniqueness), EREFUSED (the registry refuses), EUNAVAILABLE (the
// registry is down). Every change is appended to the audit log.
type ContainerService interface {
	CreateRegistry(ctx context.Context, r *Registry) (*Registry, error)
	GetRegistry(ctx context.Context, name string) (*Registry, error)
	ListRegistries(ctx context.Context) ([]*Registry, error)
	// UpdateRegistry applies a JSON merge patch of the registry fields
	// (url, type, projects, username, password, verify_tls).
	UpdateRegistry(ctx context.Context, name string, patch map[string]any) (*Registry, error)
	DeleteRegistry(ctx context.Context, name string) error
	// RescanRegistry starts a background rescan of a registry (project ""
	// = every configured project) and returns its task at once.
	RescanRegistry(ctx context.Context, name, project string) (*Task, error)

	// ScanImage scans one reference (tag or digest) now, registering or
	// refreshing one image per architecture; arch "" = every architecture.
	// The reference's registry must be configured.
	ScanImage(ctx context.Context, reference, arch string) ([]*ContainerImage, error)
	GetContainerImage(ctx context.Context, id string) (*ContainerImage, error)
	// ListContainerImages lists the visible images; marker is the id the
	// page starts after. Forgotten images only for admins who ask.
	ListContainerImages(ctx context.Context, q ContainerImageQuery, marker string) ([]*ContainerImage, error)
	// ResolveContainerImage finds the live image named by a canonical
	// reference and architecture, then by an alias.
	ResolveContainerImage(ctx context.Context, reference, arch string) (*ContainerImage, error)

	ForgetContainerImage(ctx context.Context, id string) (*ContainerImage, error)
	ForgetContainerImageByReference(ctx context.Context, reference, arch string) (*ContainerImage, error)
	RestoreContainerImage(ctx context.Context, id string) (*ContainerImage, error)
	// PurgeContainerImage hard-deletes an image; with untag it first
	// deletes the manifest from the registry and deletes the row only if
	// that worked.
	PurgeContainerImage(ctx context.Context, id string, untag bool) (*ContainerImage, error)
	UntagContainerImage(ctx context.Context, id string) (*ContainerImage, error)
	// ModifyContainerImage applies a JSON merge patch of the fields an
	// operator may change (type, labels, resource_limits, visibility,
	// protected, tags).
	ModifyContainerImage(ctx context.Context, id string, patch map[string]any) (*ContainerImage, error)
	SetResourceLimits(ctx context.Context, id string, limits map[string]ResourceLimit) (*ContainerImage, error)
	ClearResourceLimits(ctx context.Context, id string) (*ContainerImage, error)
	// Bulk runs op ("forget", "restore" or "purge") on each id and reports
	// each outcome.
	Bulk(ctx context.Context, op string, ids []string) (*BulkResult, error)

	ListAliases(ctx context.Context, imageID, marker string, limit int) ([]*ContainerAlias, error)
	PutAlias(ctx context.Context, alias string, target AliasTarget) (*ContainerAlias, error)
	DeleteAlias(ctx context.Context, alias string) (*ContainerAlias, error)

	// GetTask returns a native background task (rescan, agent purge)
	// the caller may see; WatchTask streams its states until it ends or
	// ctx is done (the channel is closed then).
	GetTask(ctx context.Context, id string) (*Task, error)
	WatchTask(ctx context.Context, id string) (<-chan *Task, error)

	// ListAudit lists the audit log (admins only).
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)
}
