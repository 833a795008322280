package imaged

import (
	"context"
	"time"
)

// The vocabulary of native background tasks (registry rescans, agent
// fan-outs). The use-case packages (containers, agents) start and read
// tasks through TaskRunner instead of importing the package that runs
// them (bgtask), so that they depend only on this package; cmd/imaged
// wires one runner into all of them, so that every native task shares one
// shutdown, one abandoned-task recovery and one watch mechanism.

// TaskSpec describes a native background task to start.
type TaskSpec struct {
	Type    string         // required: a TaskType* constant
	Input   map[string]any // the task's input object
	Owner   string         // project id; "" = none
	ImageID string         // "" = none
	Timeout time.Duration  // bounds the whole task; 0 = the runner's default
}

// TaskReporter is what a running task's work uses to report progress and
// per-item errors. Implementations are safe for concurrent use by the
// task's workers and cost no I/O per call: the runner persists the
// accumulated state periodically, so that a scan of thousands of items
// does not become thousands of writes.
type TaskReporter interface {
	// ID returns the task's id.
	ID() string
	// AddTotal grows the number of work items by n (Total may grow as
	// work is discovered).
	AddTotal(n int64)
	// Done counts n work items finished, successfully or not.
	Done(n int64)
	// Error records a per-item error ("repo:tag: reason"); it does not
	// fail the task. The runner may keep only the first ones.
	Error(format string, args ...any)
	// Errors returns how many errors were recorded, kept or not.
	Errors() int
	// SetMessage sets the task's human-readable status line.
	SetMessage(msg string)
}

// TaskFunc is a task's work. It returns the task's result object; an
// error ends the task in failure (its client-safe message becomes the
// task's message), a nil error in success. Per-item problems go to
// r.Error and do not fail the task.
type TaskFunc func(ctx context.Context, r TaskReporter) (map[string]any, error)

// TaskRunner starts and reads native background tasks, persisted so that
// any process sharing the TaskStore can read and watch them. It holds
// only what the use-case packages need; starting-up recovery and shutdown
// belong to whoever wires the concrete runner (cmd/imaged).
type TaskRunner interface {
	// Start records a pending task and runs fn in the background. The
	// task outlives ctx (only ctx's values are kept: identity, request
	// id). EINVALID without a type or work, EUNAVAILABLE while shutting
	// down.
	Start(ctx context.Context, spec TaskSpec, fn TaskFunc) (*Task, error)
	// Get returns one task, whatever its type and owner (callers apply
	// their own visibility rules); ENOTFOUND for an unknown task.
	Get(ctx context.Context, id string) (*Task, error)
	// Watch sends the task's current state, then every new state, and
	// closes the channel after the final state or when ctx is done. A
	// slow receiver misses intermediate states, never the last one.
	// ENOTFOUND for an unknown task.
	Watch(ctx context.Context, id string) (<-chan *Task, error)
}
