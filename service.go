package imaged

import (
	"context"
	"io"
)

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

	// UploadImage stores an image's bytes (PUT /v2/images/{id}/file):
	// the image must be queued (ECONFLICT otherwise); it is saving while
	// the bytes stream through hashing (MD5 checksum and os_hash_value in
	// one pass) and format inspection into the blob store, then active.
	// size is the declared length (-1 if unknown, e.g. chunked); a body
	// shorter or longer than it is EINVALID; a body over the size cap is
	// ETOOLARGE as soon as that is known. Any failure (including the
	// client going away) leaves the image queued, with no bytes kept,
	// so that a retry works.
	UploadImage(ctx context.Context, id string, body io.Reader, size int64) (*Image, error)
	// DownloadImage checks that the caller may read an image's bytes and
	// returns its data handle. An image without data has a nil
	// ImageData.Open (HTTP 204). A deactivated image is EFORBIDDEN
	// except for admins.
	DownloadImage(ctx context.Context, id string) (*ImageData, error)

	// ListMembers, GetMember, AddMember, UpdateMember and DeleteMember
	// manage the projects an image is shared with.
	ListMembers(ctx context.Context, imageID string) ([]*Member, error)
	GetMember(ctx context.Context, imageID, memberID string) (*Member, error)
	AddMember(ctx context.Context, imageID, memberID string) (*Member, error)
	UpdateMember(ctx context.Context, imageID, memberID string, status MemberStatus) (*Member, error)
	DeleteMember(ctx context.Context, imageID, memberID string) error
}

// ImageData is a readable image's bytes.
type ImageData struct {
	Image *Image // Size, Checksum and the hashes describe the bytes
	// Open reads length bytes from offset (length < 0: to the end);
	// nil when the image has no data. ERANGE if offset >= size.
	Open func(ctx context.Context, offset, length int64) (io.ReadCloser, error)
}
