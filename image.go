package imaged

import (
	"context"
	"time"
)

// ImageStatus is the state of an image in its lifecycle. The transitions are
// those of Glance (see CanTransition).
type ImageStatus string

// Image statuses, as Glance names them.
const (
	StatusQueued      ImageStatus = "queued"      // record exists, no data yet
	StatusSaving      ImageStatus = "saving"      // data is being uploaded
	StatusUploading   ImageStatus = "uploading"   // data is being staged for import
	StatusImporting   ImageStatus = "importing"   // an import task is running
	StatusActive      ImageStatus = "active"      // data is available
	StatusDeactivated ImageStatus = "deactivated" // data is hidden from non-admins
	StatusKilled      ImageStatus = "killed"      // an upload failed fatally
	StatusDeleted     ImageStatus = "deleted"     // tombstone: the id stays taken
	StatusPendingDel  ImageStatus = "pending_delete"
)

// ValidStatus reports whether s is a status Glance knows.
func ValidStatus(s string) bool {
	switch ImageStatus(s) {
	case StatusQueued, StatusSaving, StatusUploading, StatusImporting, StatusActive,
		StatusDeactivated, StatusKilled, StatusDeleted, StatusPendingDel:
		return true
	}
	return false
}

// transitions lists, for each status, the statuses it may move to.
var transitions = map[ImageStatus][]ImageStatus{
	StatusQueued:      {StatusSaving, StatusUploading, StatusImporting, StatusActive, StatusDeleted, StatusKilled},
	StatusSaving:      {StatusActive, StatusKilled, StatusDeleted, StatusQueued},
	StatusUploading:   {StatusImporting, StatusQueued, StatusDeleted, StatusKilled},
	StatusImporting:   {StatusActive, StatusQueued, StatusDeleted, StatusKilled},
	StatusActive:      {StatusDeactivated, StatusDeleted, StatusPendingDel},
	StatusDeactivated: {StatusActive, StatusDeleted, StatusPendingDel},
	StatusKilled:      {StatusDeleted},
	StatusPendingDel:  {StatusDeleted},
}

// CanTransition reports whether an image may move from one status to another.
func CanTransition(from, to ImageStatus) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Visibility says who may see an image.
type Visibility string

// Visibilities, as Glance names them.
const (
	VisibilityPublic    Visibility = "public"    // everyone, listed by default
	VisibilityCommunity Visibility = "community" // everyone, listed only when asked for
	VisibilityShared    Visibility = "shared"    // the owner and its members
	VisibilityPrivate   Visibility = "private"   // the owner only
)

// ValidVisibility reports whether v is one of the four visibilities.
func ValidVisibility(v string) bool {
	switch Visibility(v) {
	case VisibilityPublic, VisibilityCommunity, VisibilityShared, VisibilityPrivate:
		return true
	}
	return false
}

// Location is where an image's bytes live: a store name and a URL inside it.
type Location struct {
	URL      string            `json:"url"`
	Metadata map[string]string `json:"metadata"`
	Store    string            `json:"store,omitempty"`
}

// Image is one image of the catalog: a VM disk image or (later) a container
// image. Optional Glance attributes that can be null are pointers or empty
// strings as documented; Properties holds Glance's additional properties.
type Image struct {
	ID              string      // UUID, chosen by the client or generated
	Name            *string     // nil = null
	Status          ImageStatus //
	Visibility      Visibility  //
	Protected       bool        //
	OSHidden        bool        // os_hidden: left out of default listings
	Owner           string      // project id; "" = null
	DiskFormat      string      // "" = null
	ContainerFormat string      // "" = null
	Size            *int64      // nil = null (no data yet)
	VirtualSize     *int64      // nil = null
	Checksum        string      // legacy MD5 hex; "" = null
	OSHashAlgo      string      // os_hash_algo; "" = null
	OSHashValue     string      // os_hash_value; "" = null
	MinDisk         int64       // GiB
	MinRAM          int64       // MiB
	CreatedAt       time.Time   // UTC, microsecond precision
	UpdatedAt       time.Time   // UTC, microsecond precision
	DeletedAt       *time.Time  // set on the tombstone of a deleted image
	Tags            []string    // sorted, unique
	Properties      map[string]string
	Locations       []Location
	// Lease, when set, says a process is moving bytes for this image
	// (an upload while status is saving; later an import). The holder
	// renews Expires while it works; an image whose lease expired was
	// abandoned (the process crashed or hung) and any process may recover
	// it. It is internal: APIs never render it.
	Lease *Lease
	// Version counts committed updates. Stores increment it on every update;
	// it is informational (stores serialise updates themselves).
	Version int64
}

// Clone returns a deep copy of img, so that an update function can change it
// without touching the caller's copy.
func (img *Image) Clone() *Image {
	if img == nil {
		return nil
	}
	c := *img
	if img.Name != nil {
		n := *img.Name
		c.Name = &n
	}
	if img.Size != nil {
		n := *img.Size
		c.Size = &n
	}
	if img.VirtualSize != nil {
		n := *img.VirtualSize
		c.VirtualSize = &n
	}
	if img.DeletedAt != nil {
		t := *img.DeletedAt
		c.DeletedAt = &t
	}
	if img.Lease != nil {
		l := *img.Lease
		c.Lease = &l
	}
	c.Tags = append([]string(nil), img.Tags...)
	if img.Properties != nil {
		c.Properties = make(map[string]string, len(img.Properties))
		for k, v := range img.Properties {
			c.Properties[k] = v
		}
	}
	if img.Locations != nil {
		c.Locations = make([]Location, len(img.Locations))
		for i, l := range img.Locations {
			c.Locations[i] = l
			if l.Metadata != nil {
				c.Locations[i].Metadata = make(map[string]string, len(l.Metadata))
				for k, v := range l.Metadata {
					c.Locations[i].Metadata[k] = v
				}
			}
		}
	}
	return &c
}

// Lease is a time-limited claim on an image's bytes by one process.
type Lease struct {
	ID      string    // unique per claim (an upload id); also names the blob being written
	Holder  string    // which process holds it (host:pid), for operators
	Expires time.Time // UTC, microseconds; renewed while the work goes on
	// Reserved is how many bytes the claim holds against its project's
	// size quota (image_size_total while saving, image_stage_total while
	// uploading) before they are all stored: the declared length of an
	// upload, or what a chunked one has grown to. Stores persist it and
	// count it in Usage; it goes with the lease.
	Reserved int64
}

// Usage is what one project consumes, counted as Glance's unified-limits
// quotas count it (glance.db user_get_* functions). Live images only: deleted
// and killed images consume nothing.
type Usage struct {
	// ImageCount is image_count_total: the project's images that are not
	// deleted or killed.
	ImageCount int64
	// ImageSize is image_size_total, in bytes: the size of the project's
	// images other than killed, uploading and importing ones (whose bytes
	// are staged), plus the Lease.Reserved of its images being saved.
	ImageSize int64
	// StageSize is image_stage_total, in bytes: the size of the project's
	// uploading and importing images, plus the Lease.Reserved of its
	// uploading images.
	StageSize int64
	// Uploading is image_count_uploading: the project's images that are
	// saving, uploading or importing.
	Uploading int64
}

// MemberStatus is the answer of a member project to a shared image.
type MemberStatus string

// Member statuses.
const (
	MemberPending  MemberStatus = "pending"
	MemberAccepted MemberStatus = "accepted"
	MemberRejected MemberStatus = "rejected"
)

// ValidMemberStatus reports whether s is pending, accepted or rejected.
func ValidMemberStatus(s string) bool {
	switch MemberStatus(s) {
	case MemberPending, MemberAccepted, MemberRejected:
		return true
	}
	return false
}

// Member is a project an image is shared with.
type Member struct {
	ImageID   string
	MemberID  string // project id
	Status    MemberStatus
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SortDir is a sort direction.
type SortDir string

// Sort directions.
const (
	Asc  SortDir = "asc"
	Desc SortDir = "desc"
)

// SortKey is one key of a listing's order.
type SortKey struct {
	Key string // one of SortableKeys
	Dir SortDir
}

// SortableKeys are the image attributes a listing may sort by (Glance's set).
var SortableKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at", "visibility", "owner", "min_disk", "min_ram", "protected", "os_hidden", "virtual_size"}

// Comparison operators for time filters (Glance's changes-since style
// operators on created_at and updated_at).
const (
	OpEq  = "eq"
	OpNeq = "neq"
	OpGt  = "gt"
	OpGte = "gte"
	OpLt  = "lt"
	OpLte = "lte"
)

// TimeFilter compares a timestamp attribute with a value.
type TimeFilter struct {
	Op    string // OpEq ... OpLte
	Value time.Time
}

// Scope is who is listing: it decides which images a listing may return.
// An Admin scope sees every image (as Glance's admin does); any other scope
// sees public and community images, its project's images and images shared
// with its project (subject to MemberStatus).
type Scope struct {
	ProjectID string // "" = no project
	Admin     bool
}

// ImageQuery selects, orders and pages images. Zero values mean "no filter".
// Semantics follow Glance's image_get_all:
//   - Visibility "" (default): every visible image except community images
//     not owned by the scope's project; "all": every visible image;
//     otherwise only images of that visibility.
//   - MemberStatus (default "accepted"; "all" for any) applies to images
//     shared with the scope's project, for non-admin scopes.
//   - OSHidden nil (default) leaves out hidden images; a value selects them.
//   - Deleted images are never returned.
type ImageQuery struct {
	Scope           Scope
	Visibility      string   // "", "all", or a Visibility
	MemberStatus    string   // "", "all", or a MemberStatus; "" means accepted
	IDs             []string // id in (...)
	Names           []string // name in (...)
	Statuses        []string // status in (...)
	Owners          []string // owner in (...)
	ContainerFormat []string // in (...)
	DiskFormat      []string // in (...)
	Protected       *bool
	OSHidden        *bool
	SizeMin         *int64
	SizeMax         *int64
	Checksum        string            // checksum == value; "" = no filter
	OSHashValue     string            // os_hash_value == value; "" = no filter
	OSHashAlgo      string            // os_hash_algo == value; "" = no filter
	MinDisk         *int64            // min_disk == value
	MinRAM          *int64            // min_ram == value
	VirtualSize     *int64            // virtual_size == value (NULL never matches)
	Tags            []string          // every tag must be present (AND)
	Properties      map[string]string // additional property == value (AND)
	// LeaseExpiredBefore, when set, selects only images whose lease
	// expired before that time (recovery of abandoned uploads).
	LeaseExpiredBefore *time.Time
	CreatedAt          []TimeFilter // all must hold
	UpdatedAt          []TimeFilter // all must hold
	// Sort is the full order. Callers append created_at desc and id desc
	// (or id in the last direction) so that the order is total; stores
	// may assume the last key is "id".
	Sort []SortKey
	// After, when set, is the marker image: the page starts after it in
	// Sort order (keyset pagination, stable under concurrent inserts).
	After *Image
	Limit int // > 0
}

// ImageStore persists images and members. Implementations (sqlstore) must
// pass the conformance suite in sqlstore/storetest. Errors: ENOTFOUND for an
// unknown or deleted image, ECONFLICT for a duplicate id or member.
// Stores do no authorisation: callers (catalog) decide who may do what.
type ImageStore interface {
	// CreateImage inserts img (with tags and properties). ECONFLICT if
	// the id is taken, even by a deleted image.
	CreateImage(ctx context.Context, img *Image) error
	// GetImage returns a live (not deleted) image. ENOTFOUND otherwise.
	GetImage(ctx context.Context, id string) (*Image, error)
	// UpdateImage reads the live image, calls fn on a copy and, if fn
	// returns nil, writes the copy back, all in one serialised
	// transaction: concurrent updates never lose each other's changes.
	// fn may be called more than once (on retry) and must not have side
	// effects outside the image. An error from fn aborts and is
	// returned as is. Returns the image as written.
	UpdateImage(ctx context.Context, id string, fn func(*Image) error) (*Image, error)
	// DeleteImage turns a live image into a tombstone (status deleted,
	// DeletedAt set, members removed) and returns the image as it was.
	// fn, if not nil, is called on the live image inside the
	// transaction and may veto the delete by returning an error.
	DeleteImage(ctx context.Context, id string, fn func(*Image) error) (*Image, error)
	// ListImages returns at most q.Limit images matching q, in q.Sort order.
	ListImages(ctx context.Context, q ImageQuery) ([]*Image, error)

	// CreateMember adds a member. ECONFLICT if it exists.
	CreateMember(ctx context.Context, m *Member) error
	// GetMember returns one member. ENOTFOUND if absent.
	GetMember(ctx context.Context, imageID, memberID string) (*Member, error)
	// ListMembers returns the members of an image, oldest first.
	ListMembers(ctx context.Context, imageID string) ([]*Member, error)
	// UpdateMember sets a member's status and updated time. ENOTFOUND if absent.
	UpdateMember(ctx context.Context, m *Member) error
	// DeleteMember removes a member. ENOTFOUND if absent.
	DeleteMember(ctx context.Context, imageID, memberID string) error
	// CountMembers returns the number of members of an image.
	CountMembers(ctx context.Context, imageID string) (int, error)

	// Usage returns what the images owned by a project consume (see
	// Usage), read after every committed update: a reservation committed
	// before the call is always counted, which is what lets the catalog
	// enforce quotas by reserving first and checking after.
	Usage(ctx context.Context, owner string) (Usage, error)

	// Close releases the store's resources.
	Close() error
}
