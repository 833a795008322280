package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseAgentFlags(t *testing.T) {
	t.Parallel()
	base := []string{"--server", "http://127.0.0.1:9292", "--id", "n1", "--token-file", "/tmp/t"}
	c, err := parseAgentFlags(base, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Runtime != "dir" || c.Addr != "127.0.0.1:7070" || c.Heartbeat != 10*time.Second {
		t.Fatalf("defaults %+v", c)
	}
	env := map[string]string{"IMAGED_AGENT_RUNTIME": "docker", "IMAGED_AGENT_HEARTBEAT": "2s"}
	c, err = parseAgentFlags(base, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.Runtime != "docker" || c.Heartbeat != 2*time.Second {
		t.Fatalf("env: %+v %v", c, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "n1", "--token-file", "f"}, "--server"},
		{[]string{"--server", "ftp://x", "--id", "n1", "--token-file", "f"}, "--server"},
		{[]string{"--server", "http://h:1", "--token-file", "f"}, "--id"},
		{[]string{"--server", "http://h:1", "--id", "n1"}, "--token-file"},
		{append(base, "--runtime", "podman"), "--runtime"},
		{append(base, "--heartbeat", "1ms"), "--heartbeat"},
		{append(base, "--addr", "nope"), "--addr"},
		{append(base, "extra"), "unexpected"},
	} {
		if _, err := parseAgentFlags(tc.args, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

func TestAgentGlanceToken(t *testing.T) {
	t.Parallel()
	base := []string{"--server", "http://127.0.0.1:9292", "--id", "n1", "--token-file", "/tmp/t"}
	env := map[string]string{"IMAGED_AGENT_GLANCE_TOKEN_FILE": "/x"}
	c, err := parseAgentFlags(base, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.GlanceTokenFile != "/x" {
		t.Fatalf("env: %+v %v", c, err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path, want, wantErr string
	}{
		{path: dir + "/missing", wantErr: "missing"},
		{path: write("two", " tok \n2nd"), want: "tok"},
		{path: write("empty", "\n"), wantErr: "is empty"},
	} {
		got, err := readGlanceToken(tc.path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %q, %v; want error with %q", tc.path, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}
