package bgtask

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// Reporter is a running task's progress and error collector. Its methods
// are safe for concurrent use by the task's workers and cost no I/O: the
// Manager writes the accumulated state to the store periodically.
type Reporter struct {
	m  *Manager
	id string

	mu        sync.Mutex
	progress  imaged.TaskProgress
	errs      []string
	errCount  int
	message   string
	dirty     bool
	lastWrite time.Time
}

// ID returns the task's id.
func (r *Reporter) ID() string { return r.id }

// AddTotal grows the number of work items by n (as they are discovered).
func (r *Reporter) AddTotal(n int64) {
	r.mu.Lock()
	r.progress.Total += n
	r.dirty = true
	r.mu.Unlock()
}

// Done counts n work items finished (successfully or not).
func (r *Reporter) Done(n int64) {
	r.mu.Lock()
	r.progress.Done += n
	r.dirty = true
	r.mu.Unlock()
}

// Error records a per-item error ("repo:tag: reason"). The task keeps the
// first MaxErrors; Errors counts them all.
func (r *Reporter) Error(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errCount++
	if len(r.errs) < MaxErrors {
		r.errs = append(r.errs, msg)
	}
	r.dirty = true
	r.mu.Unlock()
}

// SetMessage sets the task's human-readable status line.
func (r *Reporter) SetMessage(msg string) {
	r.mu.Lock()
	r.message = msg
	r.dirty = true
	r.mu.Unlock()
}

// Progress returns the counts so far.
func (r *Reporter) Progress() imaged.TaskProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress
}

// Errors returns how many errors were recorded (kept or not).
func (r *Reporter) Errors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errCount
}

// Flush writes the progress now (workers need not call it; it is for a
// phase change the watchers should see at once).
func (r *Reporter) Flush(ctx context.Context) error {
	return r.update(ctx, nil)
}

// flushLoop writes the state when it changed, at most once per
// FlushInterval, and at least once per HeartbeatInterval.
func (r *Reporter) flushLoop(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(r.m.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		due := r.dirty || time.Since(r.lastWrite) >= r.m.cfg.HeartbeatInterval
		r.mu.Unlock()
		if !due {
			continue
		}
		if err := r.update(ctx, nil); err != nil && ctx.Err() == nil {
			r.m.log.Warn("bgtask: cannot record progress", "task_id", r.id, "err", err)
		}
	}
}

// update writes the reporter's state, plus fn's changes, to the task.
func (r *Reporter) update(ctx context.Context, fn func(*imaged.Task)) error {
	r.mu.Lock()
	p, errs, msg, dirty := r.progress, append([]string(nil), r.errs...), r.message, r.dirty
	r.dirty = false
	r.lastWrite = time.Now()
	r.mu.Unlock()
	_, err := r.m.store.UpdateTask(ctx, r.id, func(t *imaged.Task) error {
		t.Progress = p
		t.Errors = errs
		if errs == nil {
			t.Errors = []string{}
		}
		if msg != "" {
			t.Message = msg
		}
		if fn != nil {
			fn(t)
		}
		t.UpdatedAt = r.m.clock.Now()
		return nil
	})
	if err != nil {
		if dirty {
			r.mu.Lock()
			r.dirty = true
			r.mu.Unlock()
		}
		return err
	}
	r.m.notify(r.id)
	return nil
}
