package imaged

import (
	"context"
	"io"
	"time"
)

// TaskStatus is the state of an asynchronous task, as Glance names it.
type TaskStatus string

// Task statuses: a task is created pending, is processing while it runs and
// ends in success or failure.
const (
	TaskPending    TaskStatus = "pending"
	TaskProcessing TaskStatus = "processing"
	TaskSuccess    TaskStatus = "success"
	TaskFailure    TaskStatus = "failure"
)

// ValidTaskStatus reports whether s is one of the four task statuses.
func ValidTaskStatus(s string) bool {
	switch TaskStatus(s) {
	case TaskPending, TaskProcessing, TaskSuccess, TaskFailure:
		return true
	}
	return false
}

// TaskTypeImageImport is the type of the tasks that interoperable image
// import (POST /v2/images/{id}/import) creates.
const TaskTypeImageImport = "api_image_import"

// Task is an asynchronous operation (an image import), as Glance records
// it. Input and Result are the task's JSON objects (nil = null).
type Task struct {
	ID        string
	Type      string
	Status    TaskStatus
	Input     map[string]any
	Result    map[string]any
	Message   string
	Owner     string // project id; "" = null
	ImageID   string // the image the task works on; "" = none
	RequestID string // the request that started the task
	UserID    string
	CreatedAt time.Time // UTC, microseconds
	UpdatedAt time.Time
	ExpiresAt *time.Time // set when the task ends: when it may be purged
	// Progress and Errors are kept by native background tasks (registry
	// rescans, agent fan-outs); Glance's import tasks leave them zero.
	Progress TaskProgress
	Errors   []string
}

// TaskProgress counts a background task's work items.
type TaskProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Native task types (the /api/v1 tasks). Glance's task API lists only
// its own types.
const (
	TaskTypeRegistryRescan = "registry_rescan"
	TaskTypeAgentPurge     = "agent_purge"
	TaskTypeAgentPreload   = "agent_preload"
)

// TaskQuery selects and orders tasks (Glance's GET /v2/tasks).
type TaskQuery struct {
	Owner    string // "" = every owner (admin)
	ImageID  string // "" = any image
	Statuses []string
	Types    []string
	// SortKey is id, type, status, created_at or updated_at ("" =
	// created_at); id breaks ties, in the same direction.
	SortKey string
	SortDir SortDir // "" = desc
	// After, when set, is the marker task: the page starts after it.
	After *Task
	Limit int // > 0
}

// TaskSortKeys are the keys a task listing may sort by.
var TaskSortKeys = []string{"id", "type", "status", "created_at", "updated_at"}

// TaskStore persists tasks. Implementations (sqlstore) pass the conformance
// suite in sqlstore/storetest. Errors: ENOTFOUND for an unknown task,
// ECONFLICT for a duplicate id.
type TaskStore interface {
	// CreateTask inserts t.
	CreateTask(ctx context.Context, t *Task) error
	// GetTask returns one task.
	GetTask(ctx context.Context, id string) (*Task, error)
	// UpdateTask reads the task, calls fn on it and, if fn returns nil,
	// writes it back in one serialised transaction; fn may run more than
	// once. An error from fn is returned as is.
	UpdateTask(ctx context.Context, id string, fn func(*Task) error) (*Task, error)
	// ListTasks returns at most q.Limit tasks matching q, in q's order.
	ListTasks(ctx context.Context, q TaskQuery) ([]*Task, error)
}

// Import methods (Glance's enabled_import_methods names).
const (
	ImportGlanceDirect = "glance-direct"
	ImportWebDownload  = "web-download"
)

// ImportRequest is the body of POST /v2/images/{id}/import, decoded.
type ImportRequest struct {
	Method string // ImportGlanceDirect or ImportWebDownload
	URI    string // web-download's source
	// Body is the whole request body, which the task records as its
	// input's import_req.
	Body map[string]any
}

// ImportService is interoperable image import: staging bytes, importing
// them (or a URL's) in the background under a task, and reading tasks. The
// caller's identity comes from the context, as for ImageService.
type ImportService interface {
	// ImportMethods returns the enabled import methods.
	ImportMethods() []string
	// StageImage keeps an image's bytes for a later glance-direct
	// import: queued → uploading (ECONFLICT otherwise). A failure puts the
	// image back to queued with nothing kept.
	StageImage(ctx context.Context, imageID string, body io.Reader, size int64) error
	// ImportImage checks and starts an import and returns its task; the
	// import runs in the background and outlives ctx.
	ImportImage(ctx context.Context, imageID string, req ImportRequest) (*Task, error)
	// ListImageTasks returns the unexpired tasks of an image the caller
	// may see, oldest first.
	ListImageTasks(ctx context.Context, imageID string) ([]*Task, error)
	// GetTask and ListTasks read tasks (Glance's tasks API: admins only).
	// marker is the id of the task a page starts after ("" = first page).
	GetTask(ctx context.Context, id string) (*Task, error)
	ListTasks(ctx context.Context, q TaskQuery, marker string) ([]*Task, error)
}
