package nativeapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/imaged/imaged"
)

// taskEvents streams a task's states as server-sent events: "progress"
// with the task's JSON for every change (its current state first), then
// "done" with the final state when it ends. Comments keep idle
// connections alive. The stream ends when the task does or the client
// leaves (the request's context ends, which ends the watch).
func (a *api) taskEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	t, err := a.svc.GetTask(ctx, id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ch, err := a.svc.WatchTask(ctx, id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	// A server's WriteTimeout would cut a long stream: lift it for this
	// response (ignored where unsupported).
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	s := &sse{w: w, rc: rc}
	if !s.progress(t) || ended(t) {
		s.done(t)
		return
	}
	tick := time.NewTicker(a.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !s.comment("keep-alive") {
				return
			}
		case nt, ok := <-ch:
			if !ok {
				// The watch ended: with the task (send its final state)
				// or with the client (nothing more to send).
				if ctx.Err() != nil {
					return
				}
				if final, err := a.svc.GetTask(ctx, id); err == nil && ended(final) {
					if s.progress(final) {
						s.done(final)
					}
				}
				return
			}
			if !s.progress(nt) {
				return
			}
			if ended(nt) {
				s.done(nt)
				return
			}
		}
	}
}

func ended(t *imaged.Task) bool {
	return t.Status == imaged.TaskSuccess || t.Status == imaged.TaskFailure
}

// sse writes event-stream frames and flushes each.
type sse struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	last []byte // the data of the last progress event, to skip repeats
}

// progress sends a progress event unless the task is unchanged since the
// last one; false when the client is gone.
func (s *sse) progress(t *imaged.Task) bool {
	data := taskData(t)
	if bytes.Equal(data, s.last) {
		return true
	}
	s.last = data
	return s.event("progress", data)
}

func (s *sse) done(t *imaged.Task) { s.event("done", taskData(t)) }

// event writes one frame. The data is compact JSON, which holds no
// newline, so one data line carries it.
func (s *sse) event(name string, data []byte) bool {
	var b bytes.Buffer
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return s.write(b.Bytes())
}

func (s *sse) comment(text string) bool { return s.write([]byte(": " + text + "\n\n")) }

func (s *sse) write(b []byte) bool {
	if _, err := s.w.Write(b); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

func taskData(t *imaged.Task) []byte {
	data, err := json.Marshal(renderTask(t))
	if err != nil {
		panic("nativeapi: cannot encode task: " + err.Error()) // plain data: a bug
	}
	return data
}
