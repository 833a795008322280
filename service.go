package imaged

import "context"

// PatchOp is one operation of a JSON-Patch update of an image, as Glance's
// two patch media types express it. Path is a JSON pointer ("/name",
// "/os_distro", "/locations/0"), still escaped (~0, ~1).
type PatchOp struct {
	Op       string // "add", "remove" or "replace"
	Path     string
	Value    any  // the decoded JSON value (string, float64, bool, nil, []any, map[string]any)
	HasValue bool // Value was present in the request
	// NoReplaceOnAdd makes "add" of an existing property a conflict
	// (the openstack-images-v2.0-json-patch media type).
	NoReplaceOnAdd bool
}

// ImageService is the image catalog's use cases, as the Glance-compatible
// API (and later other surfaces) call them. The caller's identity comes from
// the context (IdentityFromContext). Errors carry codes: EINVALID (400),
// EFORBIDDEN (403), ENOTFOUND (404), ECONFLICT (409), ETOOLARGE (413),
// EUNSUPPORTED (415), with messages worded as Glance words them.
type ImageService interface {
	// CreateImage creates an image from the decoded JSON attributes of
	// a create request (core attributes, tags, additional properties).
	CreateImage(ctx context.Context, attrs map[string]any) (*Image, error)
	// GetImage returns an image the caller may see.
	GetImage(ctx context.Context, id string) (*Image, error)
	// ListImages returns one page of the images the caller may see.
	// q.Scope and q.After are filled in by the service; marker is the id
	// of the image the page starts after ("" for the first page). The
	// service completes q.Sort to a total order and caps q.Limit.
	ListImages(ctx context.Context, q ImageQuery, marker string) ([]*Image, error)
	// UpdateImage applies a JSON-Patch atomically: all ops or none.
	UpdateImage(ctx context.Context, id string, ops []PatchOp) (*Image, error)
	// DeleteImage deletes an image (ECONFLICT... EFORBIDDEN if protected).
	DeleteImage(ctx context.Context, id string) error
	// AddTag adds a tag (idempotent).
	AddTag(ctx context.Context, id, tag string) error
	// DeleteTag removes a tag; ENOTFOUND if absent.
	DeleteTag(ctx context.Context, id, tag string) error
	// DeactivateImage and ReactivateImage move an image between active
	// and deactivated.
	DeactivateImage(ctx context.Context, id string) error
	ReactivateImage(ctx context.Context, id string) error

	// ListMembers, GetMember, AddMember, UpdateMember and DeleteMember
	// manage the projects an image is shared with.
	ListMembers(ctx context.Context, imageID string) ([]*Member, error)
	GetMember(ctx context.Context, imageID, memberID string) (*Member, error)
	AddMember(ctx context.Context, imageID, memberID string) (*Member, error)
	UpdateMember(ctx context.Context, imageID, memberID string, status MemberStatus) (*Member, error)
	DeleteMember(ctx context.Context, imageID, memberID string) error
}
