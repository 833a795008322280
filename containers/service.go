// Package containers implements imaged.ContainerService: the container
// image catalog's use cases (registries, scans and rescans, forget,
// restore, purge, untag, modify, resource limits, aliases, bulk
// operations, background tasks and the audit log) on top of an
// imaged.ContainerStore, an imaged.RegistryClient and an imaged.Policy.
//
// It follows Backend.AI's image service (spec: backendai-image-service.md)
// and deliberately departs from it where its users reported bugs. The
// decisions, each repeated where it is implemented:
//
//   - Roles (imaged.Policy.CheckContainer; rules in policy/containers.go): admins may do everything; the owner
//     of a customized image (owner label "user:<id>") may see, forget,
//     restore, purge and untag it, in any status (Backend.AI #14601: owners
//     could not restore); other non-admins see only alive stock images
//     their catalog visibility allows. Others' customized images are
//     ENOTFOUND; a visible image a caller may not change is EFORBIDDEN; no
//     identity is EUNAUTHORIZED. Modify, limits, aliases, registries,
//     scans, rescans and the audit log are admin only.
//   - Resolution (every reference + architecture operation): the reference
//     is parsed with the configured registries' hosts as known registries;
//     the live image with that canonical reference and the normalised
//     architecture ("amd64" finds "x86_64"; "" is the server's
//     architecture) wins, then an alias of that name (ignoring the
//     architecture). An alias never names an alias.
//   - Forget is a soft delete of an alive image; forgetting a forgotten
//     image by id is ECONFLICT ("already forgotten"); by reference it is
//     ENOTFOUND because forgotten images do not resolve. Restore brings a
//     forgotten image back, ECONFLICT when a live image took its identity.
//   - A rescan never revives a forgotten image (Backend.AI silently
//     resurrects them): its facts are refreshed, it stays forgotten, and
//     the task result counts it under "forgotten_skipped".
//   - Purge removes the row in any status (Backend.AI cannot purge
//     forgotten images). With untag it first deletes, from the registry,
//     the manifest the tag points at (the index for a multi-architecture
//     image, which removes every architecture, and every other tag naming
//     the same digest: registries delete manifests, not tags), and deletes
//     the row only when that worked or the manifest was already gone
//     (Backend.AI #5204 deleted the row first and then failed to untag).
//     The other architectures' rows stay in the catalog: they are other
//     images with their own settings; purge them too, untagging them is
//     then a no-op success. A registry that refuses deletion (HTTP 405) is
//     EREFUSED and nothing is deleted.
//   - Untag works on any registry type through the OCI API and leaves the
//     row unchanged.
//   - Protected images cannot be forgotten, purged or untagged
//     (EFORBIDDEN, as Glance refuses to delete protected images).
//   - Custom resource limits are validated (min required, max >= min,
//     compared numerically: "10" > "2") and may not go below a minimum
//     the image's labels declare (ai.backend.resource.min.<slot>;
//     Backend.AI #6532). The intrinsic defaults (cpu 1, mem 1 GiB) are not
//     label minimums: a lower custom value is accepted and the effective
//     limit is raised to the default, as in Backend.AI.
//   - Registry passwords are write-only: responses carry Password "" and
//     they are never logged; with Config.SecretKey they are stored
//     encrypted (AES-256-GCM).
//   - Aliases: PutAlias creates or moves an alias (PUT semantics; the
//     audit detail records the previous target; Backend.AI HEAD answers
//     409 instead). Its target is an alive image named by id, or by
//     reference and architecture resolved exactly. The alias has the
//     reference charset (lowercase letters, digits, "._:/-", 1-255) and
//     may not be, verbatim or once parsed, a live canonical reference.
//     Listing every alias is admin only; the aliases of one image are
//     shown to whoever may see it.
//   - Listings: non-admins see alive images only, except their own
//     forgotten customized images when they ask for forgotten ones (so
//     that they can restore them).
//   - Registries: reading and changing them is admin only (they name
//     credentials and internal hosts). A registry's URL host cannot change
//     while images of it exist (their references name the host), nor can
//     a registry with images be deleted (ECONFLICT: purge them first).
//     Docker Hub registries cannot be rescanned (rate limits): scan single
//     references.
//   - Background tasks (GetTask, WatchTask): admins see every native task,
//     other callers the tasks they started; Glance's import tasks are not
//     shown here.
//   - Every change, successful or not, is appended to the audit log with
//     the caller, the request id, the action, the target and a detail.
//     Actions: registry.{create,update,delete,seed_create,seed_update,
//     rescan,rescan_end}, container_image.{scan,forget,restore,purge,
//     untag,modify,limits_set,limits_clear}, container_alias.{put,delete};
//     bulk items are audited as their single operation.
package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/imaged/imaged"
)

// Defaults of Config.
const (
	DefaultScanConcurrency = 8
	DefaultRescanTimeout   = time.Hour
	// MaxBulk is the most ids one Bulk call takes.
	MaxBulk = 1000
	// maxListLimit caps a listing page.
	maxListLimit    = 1000
	defaultListSize = 100
)

// Config configures a Service.
type Config struct {
	Store imaged.ContainerStore // required
	// Images is the catalog's image store. Container reads go through
	// Store, which joins the catalog rows itself, so it is optional and
	// currently only kept for wiring symmetry.
	Images   imaged.ImageStore
	Tasks    imaged.TaskRunner     // required: runs rescans, reads tasks (one runner shared with agents)
	Registry imaged.RegistryClient // required
	Policy   imaged.Policy         // required
	Clock    imaged.Clock          // nil = imaged.SystemClock
	Logger   *slog.Logger          // nil = slog.Default()
	// ScanConcurrency bounds the registry requests a rescan makes at
	// once (0 = DefaultScanConcurrency).
	ScanConcurrency int
	// RescanTimeout bounds a rescan task (0 = DefaultRescanTimeout).
	RescanTimeout time.Duration
	// DefaultNamespace is the Docker Hub namespace of single-segment
	// references ("" = "library"; Backend.AI uses "lablup").
	DefaultNamespace string
	// SecretKey, when set, encrypts registry passwords at rest.
	SecretKey []byte
}

// Service implements imaged.ContainerService.
type Service struct {
	cfg   Config
	store imaged.ContainerStore
	reg   imaged.RegistryClient
	pol   imaged.Policy
	clock imaged.Clock
	log   *slog.Logger
	tasks imaged.TaskRunner
	box   *secretBox // nil = passwords stored as given
	arch  string     // the server's architecture, normalised
}

var _ imaged.ContainerService = (*Service)(nil)

// New returns a Service. Its rescans run on cfg.Tasks: closing that
// runner at shutdown ends them.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Tasks == nil || cfg.Registry == nil || cfg.Policy == nil {
		return nil, errors.New("containers: Store, Tasks, Registry and Policy are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = imaged.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ScanConcurrency <= 0 {
		cfg.ScanConcurrency = DefaultScanConcurrency
	}
	if cfg.RescanTimeout <= 0 {
		cfg.RescanTimeout = DefaultRescanTimeout
	}
	s := &Service{cfg: cfg, store: cfg.Store, reg: cfg.Registry, pol: cfg.Policy, clock: cfg.Clock,
		log: cfg.Logger, tasks: cfg.Tasks, arch: imaged.NormalizeArch(runtime.GOARCH)}
	if len(cfg.SecretKey) > 0 {
		s.box = newSecretBox(cfg.SecretKey)
	}
	return s, nil
}

// caller returns the identity of the request, EUNAUTHORIZED without one.
func caller(ctx context.Context) (*imaged.Identity, error) {
	id := imaged.IdentityFromContext(ctx)
	if id == nil {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "authentication required")
	}
	return id, nil
}

// admin returns the caller if it is an admin.
func (s *Service) admin(ctx context.Context, what string) (*imaged.Identity, error) {
	id := imaged.IdentityFromContext(ctx)
	switch s.pol.CheckContainer(id, "", nil) {
	case imaged.EUNAUTHORIZED:
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "authentication required")
	case imaged.EFORBIDDEN:
		return nil, imaged.Errorf(imaged.EFORBIDDEN, "only admins may %s", what)
	}
	return id, nil
}

// normArch is the stored form of a requested architecture; "" is the
// server's own.
func (s *Service) normArch(arch string) string {
	if arch == "" {
		return s.arch
	}
	return imaged.NormalizeArch(arch)
}

// prefixed returns err with its client message prefixed, keeping its
// code; the original error stays in the chain for logs.
func prefixed(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	p := fmt.Sprintf(format, args...)
	var e *imaged.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%w [cause: %w]", &imaged.Error{Code: e.Code, Message: p + ": " + e.Message}, err)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// audit appends an entry for a change; err says whether it failed. An
// audit log that cannot be written is logged, never fails the change
// (which has happened already).
func (s *Service) audit(ctx context.Context, action, target string, err error, detail map[string]any) {
	e := &imaged.AuditEntry{
		Time: s.clock.Now(), RequestID: imaged.RequestIDFromContext(ctx),
		Action: action, Target: target, Result: "success", Detail: detail,
	}
	if id := imaged.IdentityFromContext(ctx); id != nil {
		e.UserID, e.ProjectID = id.UserID, id.ProjectID
	}
	if err != nil {
		e.Result = "failure"
		d := make(map[string]any, len(detail)+2)
		for k, v := range detail {
			d[k] = v
		}
		d["code"] = imaged.ErrorCode(err)
		d["error"] = imaged.ErrorMessage(err)
		e.Detail = d
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := s.store.AppendAudit(actx, e); aerr != nil {
		s.log.ErrorContext(ctx, "containers: cannot append to the audit log", "action", action, "target", target, "err", aerr)
	}
}

// ListAudit lists the audit log, newest first (admins only).
func (s *Service) ListAudit(ctx context.Context, q imaged.AuditQuery) ([]*imaged.AuditEntry, error) {
	if _, err := s.admin(ctx, "read the audit log"); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = defaultListSize
	} else if q.Limit > maxListLimit {
		q.Limit = maxListLimit
	}
	if q.Result != "" && q.Result != "success" && q.Result != "failure" {
		return nil, imaged.Errorf(imaged.EINVALID, "result must be \"success\" or \"failure\", got %q", q.Result)
	}
	out, err := s.store.ListAudit(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("containers: list audit: %w", err)
	}
	return out, nil
}
