package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/cli"
)

func TestModifyPatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   []string
		want string // JSON, or "error"
	}{
		{[]string{"type=system", "visibility=public"}, `{"type":"system","visibility":"public"}`},
		{[]string{"protected=true"}, `{"protected":true}`},
		{[]string{"protected=maybe"}, "error"},
		{[]string{"tags=a, b,,c"}, `{"tags":["a","b","c"]}`},
		{[]string{"tags="}, `{"tags":[]}`},
		{[]string{"label.team=ml", "labels.old="}, `{"labels":{"old":null,"team":"ml"}}`},
		{[]string{"label.k=a=b"}, `{"labels":{"k":"a=b"}}`},
		{[]string{"limit.cpu=1:4", "limit.mem=:8g", "limit.gpu="}, `{"resource_limits":{"cpu":{"min":"1","max":"4"},"gpu":null,"mem":{"max":"8g"}}}`},
		{[]string{"limit.cpu=:"}, "error"},
		{[]string{"label.=x"}, "error"},
		{[]string{"noequals"}, "error"},
		{[]string{"=x"}, "error"},
		{[]string{"digest=sha256:x"}, "error"},
	}
	for _, c := range cases {
		p, err := cli.ModifyPatch(c.in)
		if c.want == "error" {
			if err == nil {
				t.Errorf("%v: no error, patch %v", c.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.in, err)
			continue
		}
		var want map[string]any
		json.Unmarshal([]byte(c.want), &want)
		gotJSON, _ := json.Marshal(p)
		var got map[string]any
		json.Unmarshal(gotJSON, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: %s, want %s", c.in, gotJSON, c.want)
		}
	}
}

func TestSplitImageArch(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, ref, arch string }{
		{"python:3.9@aarch64", "python:3.9", "aarch64"},
		{"reg:5000/bai/python:3.9@x86_64", "reg:5000/bai/python:3.9", "x86_64"},
		{"reg/bai/python@sha256:abcd", "reg/bai/python@sha256:abcd", ""},
		{"reg/bai/python@sha256:abcd@arm64", "reg/bai/python@sha256:abcd", "arm64"},
		{"alias-name", "alias-name", ""},
		{"x@", "x@", ""},
	}
	for _, c := range cases {
		if ref, arch := cli.SplitImageArch(c.in); ref != c.ref || arch != c.arch {
			t.Errorf("%q: %q %q, want %q %q", c.in, ref, arch, c.ref, c.arch)
		}
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	stream := ": keep-alive\n\nevent: progress\ndata: {\"a\":1}\n\nevent: progress\r\ndata: line1\r\ndata: line2\r\n\r\ndata: plain\n\nevent: done\ndata:{}\n\nevent: ignored\ndata: x\n\n"
	var got []string
	err := cli.ReadEvents(strings.NewReader(stream), func(ev, data string) (bool, error) {
		got = append(got, ev+"="+data)
		return ev == "done", nil
	})
	want := []string{`progress={"a":1}`, "progress=line1\nline2", "message=plain", "done={}"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("events %q (err %v), want %q", got, err, want)
	}
	// An event cut before its blank line is not delivered.
	got = nil
	cli.ReadEvents(strings.NewReader("event: done\ndata: {}"), func(ev, data string) (bool, error) {
		got = append(got, ev)
		return false, nil
	})
	if len(got) != 0 {
		t.Errorf("incomplete event delivered: %q", got)
	}
	boom := errors.New("boom")
	if err := cli.ReadEvents(strings.NewReader("data: x\n\ndata: y\n\n"), func(string, string) (bool, error) { return false, boom }); err != boom {
		t.Errorf("callback error: %v", err)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: progress\ndata: {}\n\n")
	f.Add(": c\r\ndata\r\n\r\nevent\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		err := cli.ReadEvents(strings.NewReader(s), func(ev, data string) (bool, error) {
			if ev == "" || strings.Contains(ev, "\n") {
				t.Fatalf("event name %q", ev)
			}
			n++
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n > strings.Count(s, "\n")+1 {
			t.Fatalf("%d events from %d lines", n, strings.Count(s, "\n"))
		}
	})
}

func FuzzModifyPatch(f *testing.F) {
	f.Add("label.a=b", "limit.cpu=1:2")
	f.Add("tags=,", "protected=1")
	f.Fuzz(func(t *testing.T, a, b string) {
		p, err := cli.ModifyPatch([]string{a, b})
		if err != nil {
			return
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	})
}

// Ctrl-C while following stops following only: exit 130, and it says
// that the task keeps running. A stream that ends before the task does
// falls back to one GET of the task.
func TestFollowInterruptedAndLostStream(t *testing.T) {
	t.Parallel()
	task := func(status string, done int) string {
		return fmt.Sprintf(`{"id":"t1","type":"registry_rescan","status":%q,"progress":{"done":%d,"total":10},"result":null,"errors":[],"message":null,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`, status, done)
	}
	sent := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tasks/hang/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: progress\ndata: %s\n\n", task("processing", 3))
		w.(http.Flusher).Flush()
		sent <- struct{}{}
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /api/v1/tasks/cut/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: progress\ndata: %s\n\n", task("processing", 3))
	})
	mux.HandleFunc("GET /api/v1/tasks/cut", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(task("success", 10)))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := &server{URL: srv.URL}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-sent:
			time.Sleep(300 * time.Millisecond) // let the client print the event
		case <-time.After(10 * time.Second):
		}
		cancel() // what SIGINT does to the context cmd/imaged passes
	}()
	r := s.runEnv(t, ctx, nil, "task", "show", "hang", "--follow")
	if r.code != 130 || !strings.Contains(r.stderr, "task hang keeps running on the server") ||
		!strings.Contains(r.stderr, "processing 3/10") {
		t.Errorf("interrupted: exit %d, stderr %q", r.code, r.stderr)
	}
	r = s.runEnv(t, context.Background(), nil, "task", "show", "cut", "--follow")
	var got struct{ Status string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Status != "success" {
		t.Errorf("lost stream: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A redirect to another host does not carry the token along.
func TestRedirectDropsTokenOnOtherHost(t *testing.T) {
	t.Parallel()
	got := make(chan string, 2)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- "other:" + r.Header.Get("X-Auth-Token")
		w.Write([]byte(`{"registries":[]}`))
	}))
	t.Cleanup(other.Close)
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- "first:" + r.Header.Get("X-Auth-Token")
		http.Redirect(w, r, otherURL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(first.Close)
	r := (&server{URL: first.URL}).runEnv(t, context.Background(), map[string]string{"IMAGED_TOKEN": "tok"}, "registry", "list")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	if a, b := <-got, <-got; a != "first:tok" || b != "other:" {
		t.Errorf("tokens seen: %q, %q", a, b)
	}
}
