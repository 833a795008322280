package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Unit is what a progress bar counts.
type Unit int

const (
	// Bytes shows sizes (KiB, MiB, ...), a byte rate and an ETA.
	Bytes Unit = iota
	// Items shows done/total, the errors count and an item rate.
	Items
)

// ProgressOptions configure a Progress.
type ProgressOptions struct {
	Label   string
	Unit    Unit
	Width   int  // terminal columns; 0 = 80
	Enabled bool // false: every method is a no-op (stderr is not a terminal)
	// Now is the clock (tests pass a fake one); nil = time.Now.
	Now func() time.Time
	// Interval is the least time between redraws; 0 = 100ms (10/s).
	Interval time.Duration
}

// Progress is a one-line progress bar redrawn in place with \r. Its
// methods are safe for concurrent use (an upload counts bytes on the
// HTTP transport's goroutine).
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	opt     ProgressOptions
	start   time.Time
	last    time.Time
	drawn   bool
	lastLen int
	// High-water widths of the counts and rate texts: padding to them
	// keeps the bar from jittering as numbers change length.
	countsW, tailW int
	done           int64
	total          int64 // <= 0: unknown
	errs           int64
}

// NewProgress returns a bar writing to w.
func NewProgress(w io.Writer, opt ProgressOptions) *Progress {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Width <= 0 {
		opt.Width = 80
	}
	if opt.Interval <= 0 {
		opt.Interval = 100 * time.Millisecond
	}
	return &Progress{w: w, opt: opt, start: opt.Now()}
}

// Add counts n more units done.
func (p *Progress) Add(n int64) {
	if !p.opt.Enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.maybeDraw()
}

// SetTotal sets the expected total (<= 0: unknown).
func (p *Progress) SetTotal(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = n
}

// Update sets done, total and the errors count at once (a task's state).
func (p *Progress) Update(done, total, errs int64) {
	if !p.opt.Enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total, p.errs = done, total, errs
	p.maybeDraw()
}

// Finish draws the final state and ends the line.
func (p *Progress) Finish() {
	if !p.opt.Enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(p.opt.Now())
	io.WriteString(p.w, "\n")
}

// Abandon ends the line without a final redraw (an error follows).
func (p *Progress) Abandon() {
	if !p.opt.Enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		io.WriteString(p.w, "\n")
	}
}

// maybeDraw redraws unless the last redraw is younger than the interval.
func (p *Progress) maybeDraw() {
	now := p.opt.Now()
	if p.drawn && now.Sub(p.last) < p.opt.Interval {
		return
	}
	p.draw(now)
}

func (p *Progress) draw(now time.Time) {
	line := p.line(now)
	pad := ""
	if n := utf8.RuneCountInString(line); n < p.lastLen {
		pad = strings.Repeat(" ", p.lastLen-n) // erase the longer previous line
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.lastLen = utf8.RuneCountInString(line)
	p.last, p.drawn = now, true
}

// line renders the bar for the state at now, at most Width-1 columns
// (the last column would wrap on some terminals).
func (p *Progress) line(now time.Time) string {
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	var counts, tail string
	switch p.opt.Unit {
	case Bytes:
		counts = humanBytes(p.done)
		if p.total > 0 {
			counts += "/" + humanBytes(p.total)
		}
		tail = humanBytes(int64(rate)) + "/s"
		if p.total > 0 && p.done < p.total && rate > 0 {
			tail += "  ETA " + eta(time.Duration(float64(p.total-p.done)/rate*float64(time.Second)))
		}
	case Items:
		counts = fmt.Sprint(p.done)
		if p.total > 0 {
			counts += "/" + fmt.Sprint(p.total)
		}
		counts += fmt.Sprintf("  errors %d", p.errs)
		tail = fmt.Sprintf("%.1f/s", rate)
	}
	p.countsW = max(p.countsW, len(counts))
	p.tailW = max(p.tailW, len(tail))
	counts = fmt.Sprintf("%*s", p.countsW, counts)
	tail = fmt.Sprintf("%-*s", p.tailW, tail)
	width := p.opt.Width - 1
	head := p.opt.Label
	if p.total > 0 {
		pct := p.done * 100 / p.total
		if pct > 100 {
			pct = 100
		}
		head += fmt.Sprintf(" %3d%%", pct)
		// " [" + bar + "]" + "  " + counts + "  " + tail
		room := width - utf8.RuneCountInString(head) - 3 - 2 - len(counts) - 2 - len(tail)
		if room >= 10 {
			if room > 50 {
				room = 50
			}
			fill := int(int64(room) * min(p.done, p.total) / p.total)
			head += " [" + strings.Repeat("=", fill) + strings.Repeat(" ", room-fill) + "]"
		}
	}
	return strings.TrimRight(truncate(head+"  "+counts+"  "+tail, width), " ")
}

// eta renders a duration as m:ss or h:mm:ss.
func eta(d time.Duration) string {
	s := int64(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// countingReader counts the bytes read through it on a Progress.
type countingReader struct {
	r io.Reader
	p *Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.Add(int64(n))
	}
	return n, err
}
