package cli_test

import (
	"regexp"
	"strings"
	"testing"
)

// Agents: an empty fleet lists as such; a purge on an unknown agent
// runs as a task whose outcome names the agent.
func TestAgents(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	r := s.run(t, "agents", "list", "--output", "table").ok(t)
	if !regexp.MustCompile(`^ID +ADDR +RUNTIME +STATUS +IMAGES +SIZE +LAST HEARTBEAT\n0 agents, 0 online\n$`).MatchString(r.stdout) {
		t.Errorf("agents list:\n%q", r.stdout)
	}
	if r := s.run(t, "agents", "show", "nope"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("agents show: exit %d %s", r.code, r.stderr)
	}
	// The task succeeds with per-item errors: exit 1, the errors listed.
	r = s.run(t, "agents", "purge", "--agent", "ghost", "--image", "python:3.9@x86_64", "--force", "--follow")
	var tk struct {
		Type   string
		Result struct {
			Errors []struct {
				AgentID                     string `json:"agent_id"`
				Reason, Image, Architecture string
			}
		}
	}
	r.json(t, &tk)
	if r.code != 1 || tk.Type != "agent_purge" || !strings.Contains(r.stderr, "ended with 2 errors") ||
		!strings.Contains(r.stderr, "agent ghost is not registered") {
		t.Errorf("purge: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	var sawImage bool
	for _, e := range tk.Result.Errors {
		sawImage = sawImage || (e.Image == "python:3.9" && e.Architecture == "x86_64" && e.AgentID == "ghost")
	}
	if !sawImage {
		t.Errorf("REF@ARCH not sent as name + architecture: %+v", tk.Result.Errors)
	}
	// Without --follow: the started task, and how to follow it.
	r = s.run(t, "agents", "preload", "--agent", "ghost", "--image", "busybox", "--output", "table").ok(t)
	if !regexp.MustCompile(`(?m)^type: +agent_preload$`).MatchString(r.stdout) || !strings.Contains(r.stderr, "--follow") {
		t.Errorf("preload: stdout %s stderr %s", r.stdout, r.stderr)
	}
}
