package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type task struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Progress struct {
		Done  int64 `json:"done"`
		Total int64 `json:"total"`
	} `json:"progress"`
	Result    json.RawMessage `json:"result"`
	Errors    []string        `json:"errors"`
	Message   *string         `json:"message"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

func (t *task) ended() bool { return t.Status == "success" || t.Status == "failure" }

func (c *cmd) task(ctx context.Context, args []string) error {
	verb, rest, err := subcommand(args, "show")
	if err != nil {
		return err
	}
	c.name = "task " + verb
	if verb != "show" {
		return usageErrorf("unknown subcommand %q of task: want show", verb)
	}
	fs := c.flagSet("task show")
	var follow bool
	fs.BoolVar(&follow, "follow", false, "follow the task until it ends")
	pos, err := c.parse(fs, rest, 1, false)
	if err != nil {
		return err
	}
	if follow {
		return c.follow(ctx, pos[0], "task "+shortID(pos[0]))
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "GET", "/api/v1/tasks/"+url.PathEscape(pos[0]), nil, nil, &raw); err != nil {
		return err
	}
	return c.showTask(raw)
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (c *cmd) showTask(raw json.RawMessage) error {
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var t task
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("unexpected task in the answer: %w", err)
	}
	kv := [][2]string{{"id", t.ID}, {"type", t.Type}, {"status", t.Status},
		{"progress", fmt.Sprintf("%d/%d", t.Progress.Done, t.Progress.Total)},
		{"errors", strconv.Itoa(len(t.Errors))}, {"message", str(t.Message)},
		{"created_at", shortTime(t.CreatedAt)}, {"updated_at", shortTime(t.UpdatedAt)}}
	if len(t.Result) > 0 && string(t.Result) != "null" {
		kv = append(kv, [2]string{"result", string(t.Result)})
	}
	if err := keyValues(c.env.Stdout, kv); err != nil {
		return err
	}
	for _, e := range t.Errors {
		fmt.Fprintf(c.env.Stdout, "  error: %s\n", cell(e))
	}
	return nil
}

// follow streams a task's server-sent events until it ends: a bar on a
// terminal, a line per change otherwise (both on stderr), then the final
// task on stdout. Ctrl-C (ctx cancelled) stops following only.
func (c *cmd) follow(ctx context.Context, id, label string) error {
	req, err := c.cl.request(ctx, "GET", "/api/v1/tasks/"+url.PathEscape(id)+"/events", nil, nil, "")
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.cl.send(req)
	if err != nil {
		if ctx.Err() != nil {
			return c.interrupted(id, nil)
		}
		return err
	}
	defer res.Body.Close()
	bar := c.progress(label, Items)
	tty := isTerminal(c.env.Stderr)
	var last json.RawMessage
	var lastLine string
	var final *task
	streamErr := ReadEvents(res.Body, func(event, data string) (bool, error) {
		if event != "progress" && event != "done" {
			return false, nil // unknown events are for newer clients
		}
		var t task
		if err := json.Unmarshal([]byte(data), &t); err != nil {
			return true, fmt.Errorf("bad task event: %w", err)
		}
		last = json.RawMessage(data)
		if tty {
			bar.Update(t.Progress.Done, t.Progress.Total, int64(len(t.Errors)))
		} else if line := fmt.Sprintf("%s: %s %d/%d errors %d", label, t.Status, t.Progress.Done, t.Progress.Total, len(t.Errors)); line != lastLine {
			fmt.Fprintln(c.env.Stderr, line)
			lastLine = line
		}
		if event == "done" || t.ended() {
			final = &t
			return true, nil
		}
		return false, nil
	})
	if final == nil {
		if ctx.Err() != nil {
			return c.interrupted(id, bar)
		}
		bar.Abandon()
		// The stream ended early (server restart, proxy timeout): ask
		// for the task once before giving up.
		var raw json.RawMessage
		if _, err := c.cl.call(ctx, "GET", "/api/v1/tasks/"+url.PathEscape(id), nil, nil, &raw); err != nil {
			return err
		}
		var t task
		if err := json.Unmarshal(raw, &t); err != nil || !t.ended() {
			if streamErr == nil {
				streamErr = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("lost the event stream of task %s (%v); it is still %s: imaged task show %s --follow", id, streamErr, t.Status, id)
		}
		final, last = &t, raw
	} else if tty {
		bar.Finish()
	}
	if err := c.showTask(last); err != nil {
		return err
	}
	switch {
	case final.Status != "success":
		msg := str(final.Message)
		if msg == "" {
			msg = "task failed"
		}
		fmt.Fprintf(c.env.Stderr, "imaged %s: task %s %s: %s\n", c.name, id, final.Status, msg)
		return errReported
	case len(final.Errors) > 0:
		// As for bulk operations: any item that failed fails the
		// command, so that scripts notice partial results.
		fmt.Fprintf(c.env.Stderr, "imaged %s: task %s ended with %d errors:\n", c.name, id, len(final.Errors))
		for _, e := range final.Errors {
			fmt.Fprintf(c.env.Stderr, "  %s\n", e)
		}
		return errReported
	}
	return nil
}

// interrupted reports Ctrl-C while following.
func (c *cmd) interrupted(id string, bar *Progress) error {
	if bar != nil {
		bar.Abandon()
	}
	fmt.Fprintf(c.env.Stderr, "stopped following; task %s keeps running on the server (imaged task show %s --follow)\n", id, id)
	return errInterrupted
}

// ReadEvents parses a text/event-stream, calling fn with each event's
// name ("message" when none) and data (data lines joined by "\n"); it
// stops when fn says so or the stream ends. Comment lines are skipped.
func ReadEvents(r io.Reader, fn func(event, data string) (stop bool, err error)) error {
	br := bufio.NewReader(r)
	var event string
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if len(data) > 0 || event != "" {
				if event == "" {
					event = "message"
				}
				stop, ferr := fn(event, strings.Join(data, "\n"))
				if ferr != nil || stop {
					return ferr
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// audit lists audit entries.
func (c *cmd) audit(ctx context.Context, args []string) error {
	fs := c.flagSet("audit")
	var action, target, user, result, since, until string
	var limit int
	var all bool
	fs.StringVar(&action, "action", "", "action, e.g. container_image.forget (trailing * = prefix)")
	fs.StringVar(&target, "target", "", "image id, registry name, task id, ...")
	fs.StringVar(&user, "user", "", "user id")
	fs.StringVar(&result, "result", "", "success or failure")
	fs.StringVar(&since, "since", "", "RFC 3339 time or a duration ago (1h, 30m)")
	fs.StringVar(&until, "until", "", "RFC 3339 time or a duration ago")
	fs.IntVar(&limit, "limit", 0, "page size")
	fs.BoolVar(&all, "all", false, "follow every page")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"action": action, "target": target, "user_id": user, "result": result} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]string{"since": since, "until": until} {
		if v == "" {
			continue
		}
		t, err := c.when(v)
		if err != nil {
			return usageErrorf("invalid --%s %q: want an RFC 3339 time or a duration such as 1h", k, v)
		}
		q.Set(k, t)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	entries := []json.RawMessage{}
	next, err := c.pages(ctx, "/api/v1/audit", q, all, "entries", func(p []json.RawMessage) { entries = append(entries, p...) })
	if err != nil {
		return err
	}
	if c.output == "json" {
		out := map[string]any{"entries": entries}
		if next != "" {
			out["next"] = next
		}
		return c.printJSON(out)
	}
	rows := make([][]string, 0, len(entries))
	for _, raw := range entries {
		var e struct {
			ID     int64   `json:"id"`
			Time   string  `json:"time"`
			User   *string `json:"user_id"`
			Action string  `json:"action"`
			Target string  `json:"target"`
			Result string  `json:"result"`
			ReqID  *string `json:"request_id"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("unexpected audit entry: %w", err)
		}
		rows = append(rows, []string{strconv.FormatInt(e.ID, 10), shortTime(e.Time), str(e.User), e.Action, e.Target, e.Result, str(e.ReqID)})
	}
	if err := table(c.env.Stdout, []string{"ID", "TIME", "USER", "ACTION", "TARGET", "RESULT", "REQUEST"}, rows); err != nil {
		return err
	}
	c.moreNote(next)
	return nil
}

// when reads an RFC 3339 time or a duration before now.
func (c *cmd) when(v string) (string, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.Format(time.RFC3339Nano), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return "", errors.New("bad time")
	}
	return c.env.Now().Add(-d).UTC().Format(time.RFC3339), nil
}
