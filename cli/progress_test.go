package cli_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged/cli"
)

// fakeClock advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func frames(out string) []string         { return strings.Split(strings.TrimPrefix(out, "\r"), "\r") }
func lastFrame(out string) string        { f := frames(strings.TrimRight(out, "\n")); return f[len(f)-1] }
func bar(w *bytes.Buffer, c *fakeClock, o cli.ProgressOptions) *cli.Progress {
	o.Enabled, o.Now = true, c.now
	return cli.NewProgress(w, o)
}

func TestProgressBytes(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	c := newClock()
	p := bar(&w, c, cli.ProgressOptions{Label: "upload", Unit: cli.Bytes, Width: 80})
	p.SetTotal(4 << 20)
	c.add(time.Second)
	p.Add(1 << 20)
	got := lastFrame(w.String())
	for _, want := range []string{"upload  25% [", "1.0 MiB/4.0 MiB", "1.0 MiB/s", "ETA 0:03"} {
		if !strings.Contains(got, want) {
			t.Errorf("frame %q lacks %q", got, want)
		}
	}
	if n := utf8.RuneCountInString(got); n > 79 {
		t.Errorf("frame is %d columns wide, want at most 79: %q", n, got)
	}
	c.add(time.Second)
	p.Add(3 << 20)
	p.Finish()
	out := w.String()
	if !strings.HasSuffix(out, "\n") || !strings.Contains(lastFrame(out), "100% [") || strings.Contains(lastFrame(out), "ETA") {
		t.Errorf("final frame %q", lastFrame(out))
	}
	if !strings.Contains(lastFrame(out), "["+strings.Repeat("=", strings.Count(lastFrame(out), "="))+"]") {
		t.Errorf("final bar not full: %q", lastFrame(out))
	}
}

// At most one redraw per interval (10/s), however often it is fed.
func TestProgressThrottles(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	c := newClock()
	p := bar(&w, c, cli.ProgressOptions{Label: "x", Unit: cli.Bytes})
	p.SetTotal(1000)
	for i := 0; i < 1000; i++ { // 1000 adds over one second
		p.Add(1)
		c.add(time.Millisecond)
	}
	if n := strings.Count(w.String(), "\r"); n < 9 || n > 11 {
		t.Errorf("%d redraws in one second, want about 10", n)
	}
}

func TestProgressItemsAndWidth(t *testing.T) {
	t.Parallel()
	cases := []struct {
		width int
		want  []string
		nobar bool
	}{
		{120, []string{"rescan  30% [", "12/40  errors 1", "6.0/s"}, false},
		{80, []string{"rescan  30% [", "12/40  errors 1"}, false},
		{40, []string{"rescan  30%  12/40  errors 1"}, true}, // too narrow for a bar
		{20, []string{"rescan  30%  12/40"}, true},
	}
	for _, tc := range cases {
		var w bytes.Buffer
		c := newClock()
		p := bar(&w, c, cli.ProgressOptions{Label: "rescan", Unit: cli.Items, Width: tc.width})
		c.add(2 * time.Second)
		p.Update(12, 40, 1)
		got := lastFrame(w.String())
		for _, want := range tc.want {
			if !strings.Contains(got, want) {
				t.Errorf("width %d: frame %q lacks %q", tc.width, got, want)
			}
		}
		if n := utf8.RuneCountInString(got); n > tc.width-1 {
			t.Errorf("width %d: frame is %d wide: %q", tc.width, n, got)
		}
		if strings.Contains(got, "[") == tc.nobar {
			t.Errorf("width %d: bar shown = %v: %q", tc.width, !tc.nobar, got)
		}
	}
}

// A shorter frame blanks what is left of a longer previous one.
func TestProgressErasesLongerFrame(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	c := newClock()
	p := bar(&w, c, cli.ProgressOptions{Label: "t", Unit: cli.Items, Width: 30})
	p.Update(5, 0, 123456)
	c.add(time.Second)
	p.Update(6, 0, 0)
	f := frames(w.String())
	if len(f) != 2 || utf8.RuneCountInString(f[1]) != utf8.RuneCountInString(f[0]) {
		t.Errorf("frames %q", f)
	}
}

func TestProgressDisabledWritesNothing(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	p := cli.NewProgress(&w, cli.ProgressOptions{Label: "x", Unit: cli.Bytes})
	p.SetTotal(10)
	p.Add(5)
	p.Update(1, 2, 3)
	p.Finish()
	p.Abandon()
	if w.Len() != 0 {
		t.Errorf("disabled bar wrote %q", w.String())
	}
}

// An unknown total shows no percentage, bar or ETA.
func TestProgressUnknownTotal(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	c := newClock()
	p := bar(&w, c, cli.ProgressOptions{Label: "download", Unit: cli.Bytes})
	p.SetTotal(-1)
	c.add(2 * time.Second)
	p.Add(3 << 20)
	got := lastFrame(w.String())
	if got != "download  3.0 MiB  1.5 MiB/s" {
		t.Errorf("frame %q", got)
	}
}
