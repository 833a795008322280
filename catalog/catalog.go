// Package catalog implements imaged.ImageService: the rules of Glance 25.1's
// image catalog (create, JSON-Patch update, visibility, members, tags,
// quotas, the state machine) over an imaged.ImageStore and an imaged.Policy.
// Messages are worded as Glance words them, so that clients which show or
// match them keep working.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/imaged/imaged"
)

// Glance 25.1's default [image_format] lists.
var (
	defaultDiskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	defaultContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
)

// RBAC modes for Config.RBAC.
const (
	RBACAuto   = ""       // ask the policy (its Name() method), else legacy
	RBACLegacy = "legacy" // Glance's enforce_secure_rbac = false (the Zed default)
	RBACSecure = "secure" // enforce_secure_rbac = true
)

// Config holds the Glance options the catalog honours.
type Config struct {
	ImagePropertyQuota int      // image_property_quota; < 0 = unlimited
	ImageTagQuota      int      // image_tag_quota; < 0 = unlimited
	ImageMemberQuota   int      // image_member_quota; < 0 = unlimited
	LimitParamDefault  int      // limit_param_default
	APILimitMax        int      // api_limit_max
	DiskFormats        []string // [image_format] disk_formats
	ContainerFormats   []string // [image_format] container_formats
	// RBAC picks the error wording and the few checks that differ between
	// Glance's legacy and secure modes; RBACAuto asks the policy.
	RBAC string
	// ImageSizeCap is Glance's image_size_cap: the largest image an
	// upload may store, in bytes (0 = the default, 1 TiB).
	ImageSizeCap int64
	// UploadLease is how long an upload's claim on an image lasts
	// without renewal (0 = the default, 60s). The uploader renews it
	// every UploadLease/3; a process that finds it expired may recover
	// the image, so it bounds how long a crashed upload blocks retries.
	UploadLease time.Duration
	// Holder names this process in the leases it takes ("" = host:pid).
	Holder string
	// Quotas are the per-project quotas (see Quotas); nil = unlimited.
	Quotas *Quotas
	// ShowMultipleLocations and ShowImageDirectURL are Glance's
	// show_multiple_locations and show_image_direct_url (both off by
	// default): locations in image responses and changes to them.
	ShowMultipleLocations bool
	ShowImageDirectURL    bool
}

// Defaults of the upload options.
const (
	DefaultImageSizeCap = 1 << 40 // Glance's image_size_cap: 1 TiB
	DefaultUploadLease  = 60 * time.Second
)

// defaultHolder is host:pid, which tells operators which process holds a
// lease.
func defaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// DefaultConfig returns Glance 25.1's defaults.
func DefaultConfig() Config {
	return Config{
		ImagePropertyQuota: 128,
		ImageTagQuota:      128,
		ImageMemberQuota:   128,
		LimitParamDefault:  25,
		APILimitMax:        1000,
		DiskFormats:        append([]string(nil), defaultDiskFormats...),
		ContainerFormats:   append([]string(nil), defaultContainerFormats...),
		ImageSizeCap:       DefaultImageSizeCap,
		UploadLease:        DefaultUploadLease,
	}
}

// Service is the image catalog. It is safe for concurrent use: it holds no
// mutable state of its own (the store serialises updates).
type Service struct {
	store  imaged.ImageStore
	pol    imaged.Policy
	cfg    Config
	clock  imaged.Clock
	secure bool
	schema *schema
	blobs  imaged.BlobStore // nil: uploads and downloads are unavailable
	stores *storeSet        // nil: the one implicit store (blobs); see WithStores
	imp    *importer        // nil: import and tasks are unavailable (WithImports)
	log    *slog.Logger
	cache  imaged.ImageCache // nil: no image cache (WithImageCache)
	extLoc imaged.URLFetcher // nil: no http(s) locations (WithLocationFetcher)
}

var _ imaged.ImageService = (*Service)(nil)

// New returns a catalog over store, governed by pol.
func New(store imaged.ImageStore, pol imaged.Policy, cfg Config) *Service {
	def := DefaultConfig()
	if cfg.LimitParamDefault <= 0 {
		cfg.LimitParamDefault = def.LimitParamDefault
	}
	if cfg.APILimitMax <= 0 {
		cfg.APILimitMax = def.APILimitMax
	}
	if cfg.DiskFormats == nil {
		cfg.DiskFormats = def.DiskFormats
	}
	if cfg.ContainerFormats == nil {
		cfg.ContainerFormats = def.ContainerFormats
	}
	if cfg.ImageSizeCap <= 0 {
		cfg.ImageSizeCap = def.ImageSizeCap
	}
	if cfg.UploadLease <= 0 {
		cfg.UploadLease = def.UploadLease
	}
	if cfg.Holder == "" {
		cfg.Holder = defaultHolder()
	}
	secure := false
	switch cfg.RBAC {
	case RBACSecure:
		secure = true
	case RBACAuto:
		// The policy package's rule sets name themselves.
		if n, ok := pol.(interface{ Name() string }); ok {
			secure = n.Name() == RBACSecure
		}
	}
	return &Service{
		store:  textGuard{store},
		pol:    pol,
		cfg:    cfg,
		clock:  imaged.SystemClock{},
		secure: secure,
		schema: newSchema(cfg.DiskFormats, cfg.ContainerFormats),
		log:    slog.Default(),
	}
}

// WithBlobStore returns a copy of s that keeps image bytes in b.
func (s *Service) WithBlobStore(b imaged.BlobStore) *Service {
	cp := *s
	cp.blobs = b
	return &cp
}

// WithLogger returns a copy of s that logs (failed uploads, recovery) to l.
func (s *Service) WithLogger(l *slog.Logger) *Service {
	cp := *s
	cp.log = l
	return &cp
}

// Config returns the service's configuration, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// WithClock returns a copy of s that reads the time from c.
func (s *Service) WithClock(c imaged.Clock) *Service {
	cp := *s
	cp.clock = c
	return &cp
}

// Secure reports whether s applies Glance's secure-RBAC behaviour.
func (s *Service) Secure() bool { return s.secure }

// caller returns the request's identity, EUNAUTHORIZED if there is none.
func caller(ctx context.Context) (*imaged.Identity, error) {
	id := imaged.IdentityFromContext(ctx)
	if id == nil {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "The request you have made requires authentication.")
	}
	return id, nil
}

// notAuthorized is oslo.policy's refusal, as Glance words it.
func notAuthorized(action imaged.Action) *imaged.Error {
	return imaged.Errorf(imaged.EFORBIDDEN, "You are not authorized to complete %s action.", action)
}

// errResourceNotFound is webob's bare 404, which Glance gives when the
// get_image rule hides an image.
func errResourceNotFound() *imaged.Error {
	return imaged.Errorf(imaged.ENOTFOUND, "The resource could not be found.")
}

// target returns the policy target of an existing image for id.
func target(id *imaged.Identity, img *imaged.Image) imaged.PolicyTarget {
	t := imaged.PolicyTarget{Owner: img.Owner, Visibility: img.Visibility}
	// Glance's image.member: the caller's project when it found a shared
	// image it does not own (through a membership).
	if img.Visibility == imaged.VisibilityShared && id.ProjectID != img.Owner {
		t.MemberID = id.ProjectID
		t.IsMember = true
	}
	return t
}

// enforce is Glance's ImageAPIPolicy._enforce: a refusal becomes a 404 when
// the caller may not even get the image, else a 403 with msg (or oslo's
// wording when msg is "").
func (s *Service) enforce(id *imaged.Identity, action imaged.Action, img *imaged.Image, msg string) error {
	t := target(id, img)
	if s.pol.Allow(id, action, t) {
		return nil
	}
	if action == imaged.ActionGetImage || !s.pol.Allow(id, imaged.ActionGetImage, t) {
		return errResourceNotFound()
	}
	if msg == "" || s.secure {
		return notAuthorized(action)
	}
	return imaged.Errorf(imaged.EFORBIDDEN, "%s", msg)
}

// errNoImage marks "no such image, or not visible" inside the package; each
// operation words it as Glance does for that operation.
var errNoImage = errors.New("catalog: image not found")

// visible is Glance's is_image_visible (database layer): admins see all,
// everyone sees images without owner and public or community images, the
// owner its images, and member projects (any member status) shared images.
func (s *Service) visible(ctx context.Context, id *imaged.Identity, img *imaged.Image) (bool, error) {
	if s.pol.IsAdmin(id) || img.Owner == "" ||
		img.Visibility == imaged.VisibilityPublic || img.Visibility == imaged.VisibilityCommunity {
		return true, nil
	}
	if id.ProjectID == "" {
		return false, nil
	}
	if id.ProjectID == img.Owner {
		return true, nil
	}
	if img.Visibility != imaged.VisibilityShared {
		return false, nil
	}
	if _, err := s.store.GetMember(ctx, img.ID, id.ProjectID); err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return false, nil
		}
		return false, fmt.Errorf("catalog: membership of %s: %w", img.ID, err)
	}
	return true, nil
}

// load returns the live image id if the caller may see it, errNoImage
// (wrapped) otherwise.
func (s *Service) load(ctx context.Context, id *imaged.Identity, imageID string) (*imaged.Image, error) {
	img, err := s.store.GetImage(ctx, imageID)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, errNoImage
		}
		return nil, fmt.Errorf("catalog: get image %s: %w", imageID, err)
	}
	ok, err := s.visible(ctx, id, img)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoImage
	}
	return img, nil
}

// notFound words errNoImage with msg; other errors pass through.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, errNoImage) {
		return imaged.Errorf(imaged.ENOTFOUND, format, args...)
	}
	return err
}

// GetImage returns an image the caller may see.
func (s *Service) GetImage(ctx context.Context, imageID string) (*imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", imageID)
	}
	if err := s.enforce(id, imaged.ActionGetImage, img, ""); err != nil {
		return nil, err
	}
	return img, nil
}
