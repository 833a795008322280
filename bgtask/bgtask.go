// Package bgtask runs native background tasks (registry rescans, agent
// fan-outs): work that outlives the request that started it, reports its
// progress and per-item errors, and is persisted through an
// imaged.TaskStore so that any process sharing the store can read and
// watch it.
//
// Lifecycle: Start creates the task pending and returns it at once; the
// work runs in a goroutine on a context detached from the request
// (context.WithoutCancel) with its own timeout, moves the task to
// processing, and ends it in success or failure with a result, a message,
// the collected errors, the final progress and an expiry time.
//
// Progress: a Reporter counts Done/Total (Total may grow as work is
// discovered) and collects per-item errors. It writes them to the store at
// most once per FlushInterval (default 250 ms), not per item, so that a
// scan of thousands of tags does not become thousands of writes, and at
// least once per HeartbeatInterval while the task runs, so that a task
// whose process died can be told apart (RecoverAbandoned).
//
// Watching: Watch sends the task's states until it ends. Changes made by
// this process wake watchers at once; changes made by another process are
// seen by polling the store (PollInterval, default 500 ms).
package bgtask

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/imaged/imaged"
)

// Defaults of Config.
const (
	DefaultPollInterval      = 500 * time.Millisecond
	DefaultFlushInterval     = 250 * time.Millisecond
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultTimeout           = time.Hour
	DefaultTTL               = 48 * time.Hour // Glance's task_time_to_live
	// MaxErrors bounds the errors a task keeps: a registry with thousands
	// of broken tags must not make a task row of megabytes. The count of
	// errors beyond it is kept (Reporter.Errors).
	MaxErrors = 1000
)

// Config configures a Manager.
type Config struct {
	Store             imaged.TaskStore // required
	Clock             imaged.Clock     // nil = imaged.SystemClock
	Logger            *slog.Logger     // nil = slog.Default()
	PollInterval      time.Duration    // Watch's store polling; 0 = DefaultPollInterval
	FlushInterval     time.Duration    // progress writes; 0 = DefaultFlushInterval
	HeartbeatInterval time.Duration    // 0 = DefaultHeartbeatInterval
	TTL               time.Duration    // ExpiresAt = end + TTL; 0 = DefaultTTL
}

// Manager starts and watches background tasks. It is safe for concurrent
// use. Close it at shutdown: running tasks are cancelled and recorded as
// failed.
type Manager struct {
	cfg   Config
	store imaged.TaskStore
	clock imaged.Clock
	log   *slog.Logger

	root   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed map[string]chan struct{} // closed when the task changes (local wake-up)
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = imaged.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	root, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, store: cfg.Store, clock: cfg.Clock, log: cfg.Logger,
		root: root, cancel: cancel, changed: map[string]chan struct{}{}}
}

// Func is a task's work (imaged.TaskFunc: containers and agents write
// theirs against the core's vocabulary, not this package's). The
// reporter it is given is a *Reporter.
type Func = imaged.TaskFunc

// Spec describes a task to start (imaged.TaskSpec); a zero Timeout means
// DefaultTimeout.
type Spec = imaged.TaskSpec

// Manager is the imaged.TaskRunner that cmd/imaged wires into the
// use-case packages, and a Reporter is what their work reports to.
var (
	_ imaged.TaskRunner   = (*Manager)(nil)
	_ imaged.TaskReporter = (*Reporter)(nil)
)

// Start records a pending task and runs fn in the background. The task
// outlives ctx (only ctx's values are kept: identity, request id); it ends
// when fn returns, its timeout passes or the Manager closes.
func (m *Manager) Start(ctx context.Context, spec Spec, fn Func) (*imaged.Task, error) {
	if spec.Type == "" || fn == nil {
		return nil, imaged.Errorf(imaged.EINVALID, "a background task needs a type and work")
	}
	if m.root.Err() != nil {
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "the service is shutting down")
	}
	now := m.clock.Now()
	t := &imaged.Task{
		ID: uuid.NewString(), Type: spec.Type, Status: imaged.TaskPending, Input: spec.Input,
		Owner: spec.Owner, ImageID: spec.ImageID, RequestID: imaged.RequestIDFromContext(ctx),
		CreatedAt: now, UpdatedAt: now, Errors: []string{},
	}
	if id := imaged.IdentityFromContext(ctx); id != nil {
		t.UserID = id.UserID
	}
	if err := m.store.CreateTask(ctx, t); err != nil {
		return nil, fmt.Errorf("bgtask: create task: %w", err)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	run, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	stop := context.AfterFunc(m.root, cancel)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		defer stop()
		m.run(run, t.ID, fn)
	}()
	out := *t
	return &out, nil
}

// Close cancels the running tasks and waits until they have recorded
// their end (or ctx is done). Start refuses new tasks afterwards.
func (m *Manager) Close(ctx context.Context) error {
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait waits until every task started so far has ended (tests, shutdown
// after draining).
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) run(ctx context.Context, id string, fn Func) {
	log := m.log.With("task_id", id)
	r := &Reporter{m: m, id: id}
	if err := r.update(ctx, func(t *imaged.Task) { t.Status = imaged.TaskProcessing }); err != nil {
		log.Error("bgtask: cannot start task", "err", err)
	}
	flushDone := make(chan struct{})
	flushStop := make(chan struct{})
	go func() {
		defer close(flushDone)
		r.flushLoop(ctx, flushStop)
	}()

	result, err := safeCall(ctx, fn, r)

	close(flushStop)
	<-flushDone
	status, msg := imaged.TaskSuccess, ""
	if err != nil {
		status = imaged.TaskFailure
		switch {
		case errors.Is(err, context.DeadlineExceeded) || (ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
			msg = "The task ran out of time."
		case m.root.Err() != nil:
			msg = "The task was interrupted: the service shut down."
		default:
			msg = imaged.ErrorMessage(err)
		}
		log.Warn("bgtask: task failed", "err", err)
	}
	// The end must be recorded even though the task's context may be
	// done: a fresh, short context.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		lastErr = r.update(endCtx, func(t *imaged.Task) {
			t.Status = status
			t.Message = msg
			t.Result = result
			exp := m.clock.Now().Add(m.cfg.TTL)
			t.ExpiresAt = &exp
		})
		if lastErr == nil {
			return
		}
		select {
		case <-endCtx.Done():
			attempt = 5
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	log.Error("bgtask: cannot record the end of a task", "err", lastErr)
}

// safeCall runs fn, turning a panic into a failure so that a bug in one
// task neither crashes the process nor leaves the task processing forever.
func safeCall(ctx context.Context, fn Func, r *Reporter) (res map[string]any, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("bgtask: task panicked: %v", p)
		}
	}()
	return fn(ctx, r)
}

// notify wakes this process's watchers of task id.
func (m *Manager) notify(id string) {
	m.mu.Lock()
	if ch, ok := m.changed[id]; ok {
		close(ch)
		delete(m.changed, id)
	}
	m.mu.Unlock()
}

// changedChan returns a channel closed at the next local change of id.
func (m *Manager) changedChan(id string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.changed[id]
	if !ok {
		ch = make(chan struct{})
		m.changed[id] = ch
	}
	return ch
}

// Ended reports whether a task is in a final state.
func Ended(t *imaged.Task) bool {
	return t.Status == imaged.TaskSuccess || t.Status == imaged.TaskFailure
}

// Get returns one task from the store.
func (m *Manager) Get(ctx context.Context, id string) (*imaged.Task, error) {
	return m.store.GetTask(ctx, id)
}

// Watch sends the task's current state, then every new state (status,
// progress, errors or message changed), and closes the channel after the
// final state or when ctx is done. A receiver that falls behind misses
// intermediate states, never the last one. ENOTFOUND for an unknown task.
func (m *Manager) Watch(ctx context.Context, id string) (<-chan *imaged.Task, error) {
	// The wake-up channel is always taken before the store is read, so
	// that a change committed after the read cannot go unnoticed.
	wake := m.changedChan(id)
	t, err := m.store.GetTask(ctx, id)
	if err != nil {
		m.notify(id)
		return nil, err
	}
	out := make(chan *imaged.Task, 1)
	go func() {
		defer close(out)
		// Drop the wake-up channel so that watched tasks of other
		// processes do not accumulate; other watchers of the task wake
		// once for nothing and re-check the store.
		defer m.notify(id)
		last := t
		if !send(ctx, out, t) || Ended(t) {
			return
		}
		tick := time.NewTicker(m.cfg.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-tick.C:
			}
			wake = m.changedChan(id)
			cur, err := m.store.GetTask(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if imaged.ErrorCode(err) == imaged.ENOTFOUND {
					return // purged meanwhile
				}
				m.log.Warn("bgtask: watch: cannot read task", "task_id", id, "err", err)
				continue
			}
			if !differs(last, cur) {
				continue
			}
			last = cur
			if !send(ctx, out, cur) || Ended(cur) {
				return
			}
		}
	}()
	return out, nil
}

func differs(a, b *imaged.Task) bool {
	return a.Status != b.Status || a.Progress != b.Progress || len(a.Errors) != len(b.Errors) ||
		a.Message != b.Message || !a.UpdatedAt.Equal(b.UpdatedAt)
}

// send delivers t, replacing an undelivered older state so that a slow
// receiver never blocks the watch and always gets the latest state.
func send(ctx context.Context, out chan *imaged.Task, t *imaged.Task) bool {
	for {
		select {
		case out <- t:
			return true
		case <-ctx.Done():
			return false
		default:
		}
		select {
		case <-out: // drop the stale state
		default:
		}
	}
}

// RecoverAbandoned ends in failure the tasks of the given types that are
// pending or processing but whose heartbeat stopped more than staleAfter
// ago: their process died. It returns how many it ended. Run it at start.
func (m *Manager) RecoverAbandoned(ctx context.Context, types []string, staleAfter time.Duration) (int, error) {
	if staleAfter <= 0 {
		staleAfter = 3 * m.cfg.HeartbeatInterval
	}
	now := m.clock.Now()
	ids, err := imaged.FailAbandonedTasks(ctx, m.store, types, now.Add(-staleAfter), now, m.cfg.TTL,
		"The task was abandoned: the process running it stopped before it finished.")
	for _, id := range ids {
		m.notify(id)
	}
	if err != nil {
		return len(ids), fmt.Errorf("bgtask: recover: %w", err)
	}
	return len(ids), nil
}
