package cli_test

import (
	"context"
	"strings"
	"testing"
)

// Bad command lines exit 2 with a message and the usage, before any
// request (the URL points nowhere).
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"image"}, "missing subcommand"},
		{[]string{"image", "bogus"}, `unknown subcommand "bogus"`},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"image", "list", "--status", "weird"}, "invalid --status"},
		{[]string{"image", "list", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"image", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"image", "show"}, "missing argument"},
		{[]string{"image", "list", "--output", "xml"}, "invalid --output"},
		{[]string{"image", "list", "--url", "ftp://x"}, "invalid --url"},
		{[]string{"image", "forget"}, "missing image id"},
		{[]string{"image", "forget", "x", "--ref", "r"}, "not both"},
		{[]string{"image", "modify", "id"}, "nothing to modify"},
		{[]string{"image", "modify", "id", "colour=red"}, `unknown key "colour"`},
		{[]string{"image", "modify", "id", "--patch", "[1]"}, "invalid --patch"},
		{[]string{"image", "set-limits", "id", "cpu"}, "want slot=min:max"},
		{[]string{"image", "alias", "a"}, "missing target"},
		{[]string{"registry", "add", "r"}, "missing --registry-url"},
		{[]string{"registry", "update", "r"}, "nothing to update"},
		{[]string{"agents", "purge", "--agent", "a"}, "at least one --agent and one --image"},
		{[]string{"upload", "f"}, "--name and --disk-format are required"},
		{[]string{"download", "id"}, "missing -o FILE"},
		{[]string{"audit", "--since", "yesterday"}, "invalid --since"},
		{[]string{"task", "show", "a", "b"}, `unexpected argument "b"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			t.Parallel()
			r := (&server{URL: "http://127.0.0.1:1"}).runEnv(t, context.Background(), nil, c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.msg) || !strings.Contains(r.stderr, "Operator commands") {
				t.Errorf("stderr lacks %q and the usage:\n%s", c.msg, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"image", "--help"}, {"image", "list", "-h"}, {"registry", "help"}} {
		r := (&server{URL: "http://127.0.0.1:1"}).runEnv(t, context.Background(), nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "imaged image list") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

// A server that cannot be reached is a failure (1), with the address.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	r := (&server{URL: "http://127.0.0.1:1"}).runEnv(t, context.Background(), map[string]string{"IMAGED_TOKEN": "s3cr3t"}, "image", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach imaged") || strings.Contains(r.stderr, "s3cr3t") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// Refusals print the server's message, code and request id; the token
// never shows.
func TestServerRefusals(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	cases := []struct {
		name  string
		token string
		args  []string
		want  []string
	}{
		{"bad token", "wrong-token-xyz", []string{"image", "list"}, []string{"HTTP 401 unauthorized", "request id "}},
		{"not found", adminToken, []string{"image", "show", "0f6c8f5e-3f4c-4f7c-9a2e-111111111111"}, []string{"HTTP 404 not_found", "request id "}},
		{"reader refused", readerToken, []string{"registry", "add", "r", "--registry-url", "http://127.0.0.1:1"}, []string{"HTTP 403 forbidden"}},
		{"unknown registry", adminToken, []string{"registry", "rescan", "nope"}, []string{"HTTP 404 not_found"}},
		{"glance 404", adminToken, []string{"download", "0f6c8f5e-3f4c-4f7c-9a2e-111111111111", "-o", t.TempDir() + "/x"}, []string{"HTTP 404", "request id "}},
		{"bad limits", adminToken, []string{"image", "set-limits", "0f6c8f5e-3f4c-4f7c-9a2e-111111111111", "cpu=x:y"}, []string{"HTTP 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.runEnv(t, context.Background(), map[string]string{"IMAGED_TOKEN": c.token}, c.args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr+r.stdout, c.token) {
				t.Errorf("the token was printed: %s", r.stderr)
			}
		})
	}
}
