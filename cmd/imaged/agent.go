package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
)

// agentConfig is the configuration of `imaged agent`.
type agentConfig struct {
	Server     string
	ID         string
	Addr       string
	Advertise  string
	TokenFile  string
	Runtime    string
	RuntimeDir string
	DockerHost string
	Containerd agent.ContainerdOptions
	Heartbeat  time.Duration
	LogFormat  string
	LogLevel   string

	// GlanceTokenFile holds the X-Auth-Token of imaged's Glance API, for
	// the dir runtime's glance:// VM images.
	GlanceTokenFile string
}

func parseAgentFlags(args []string, getenv func(string) string, stderr io.Writer) (*agentConfig, error) {
	fs := flag.NewFlagSet("imaged agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("IMAGED_AGENT_" + name); v != "" {
			return v
		}
		return def
	}
	var c agentConfig
	fs.StringVar(&c.Server, "server", env("SERVER", ""), "base URL of the imaged service, e.g. http://127.0.0.1:9292 (IMAGED_AGENT_SERVER)")
	fs.StringVar(&c.ID, "id", env("ID", ""), "this agent's id, as the service knows its token (IMAGED_AGENT_ID)")
	fs.StringVar(&c.Addr, "addr", env("ADDR", "127.0.0.1:7070"), "address the agent's API listens on (IMAGED_AGENT_ADDR)")
	fs.StringVar(&c.Advertise, "advertise-url", env("ADVERTISE_URL", ""), "URL the service calls the agent at; default http://<addr> (IMAGED_AGENT_ADVERTISE_URL)")
	fs.StringVar(&c.TokenFile, "token-file", env("TOKEN_FILE", ""), "file holding this agent's token (IMAGED_AGENT_TOKEN_FILE)")
	fs.StringVar(&c.GlanceTokenFile, "glance-token-file", env("GLANCE_TOKEN_FILE", ""), "file holding a token for imaged's Glance API (/v2 on --server), to pull glance://<image id> VM images into the dir runtime (IMAGED_AGENT_GLANCE_TOKEN_FILE)")
	fs.StringVar(&c.Runtime, "runtime", env("RUNTIME", "dir"), "image runtime: dir (built-in cache directory), docker or containerd (IMAGED_AGENT_RUNTIME)")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", env("RUNTIME_DIR", "./imaged-agent-cache"), "cache directory of the dir runtime (IMAGED_AGENT_RUNTIME_DIR)")
	fs.StringVar(&c.DockerHost, "docker-host", env("DOCKER_HOST", "unix:///var/run/docker.sock"), "Docker Engine API of the docker runtime: unix:///path or tcp://host:port (IMAGED_AGENT_DOCKER_HOST)")
	fs.StringVar(&c.Containerd.Address, "containerd-address", env("CONTAINERD_ADDRESS", "/run/containerd/containerd.sock"), "containerd socket of the containerd runtime (IMAGED_AGENT_CONTAINERD_ADDRESS)")
	fs.StringVar(&c.Containerd.Namespace, "containerd-namespace", env("CONTAINERD_NAMESPACE", "imaged"), "containerd namespace of the agent's images (IMAGED_AGENT_CONTAINERD_NAMESPACE)")
	fs.StringVar(&c.Containerd.Snapshotter, "containerd-snapshotter", env("CONTAINERD_SNAPSHOTTER", ""), "snapshotter pulled images are unpacked into; default overlayfs (IMAGED_AGENT_CONTAINERD_SNAPSHOTTER)")
	hb := env("HEARTBEAT", agent.DefaultHeartbeat.String())
	fs.StringVar(&c.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (IMAGED_AGENT_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (IMAGED_AGENT_LOG_LEVEL)")
	fs.StringVar(&hb, "heartbeat", hb, "heartbeat interval; the service marks the agent offline after 3 missed (IMAGED_AGENT_HEARTBEAT)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	d, err := time.ParseDuration(hb)
	if err != nil || d < 100*time.Millisecond || d > time.Hour {
		return nil, fmt.Errorf("invalid --heartbeat %q: want a duration between 100ms and 1h", hb)
	}
	c.Heartbeat = d
	if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid --server %q: want http(s)://host:port", c.Server)
	}
	if c.ID == "" {
		return nil, errors.New("--id is required")
	}
	if c.TokenFile == "" {
		return nil, errors.New("--token-file is required: the agent's API accepts no anonymous requests")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, fmt.Errorf("invalid --addr %q: want host:port", c.Addr)
	}
	if c.Runtime != imaged.AgentRuntimeDir && c.Runtime != imaged.AgentRuntimeDocker && c.Runtime != agent.RuntimeContainerd {
		return nil, fmt.Errorf("invalid --runtime %q: want dir, docker or containerd", c.Runtime)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return nil, fmt.Errorf("invalid --log-format %q: want text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return nil, err
	}
	return &c, nil
}

// readAgentToken reads the token file: its first line, trimmed.
func readAgentToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(data), "\n")
	tok = strings.TrimSpace(tok)
	if len(tok) < 16 {
		return "", errors.New("--token-file must hold a token of at least 16 characters")
	}
	return tok, nil
}

// readGlanceToken reads the Glance token file: its first line, trimmed.
// The token is never logged: errors name the file only.
func readGlanceToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --glance-token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(data), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", errors.New("--glance-token-file is empty")
	}
	return tok, nil
}

// agentCmd runs `imaged agent` until ctx is cancelled.
func agentCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parseAgentFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "imaged agent:", err)
		return 2
	}
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if c.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, opts))
	}
	token, err := readAgentToken(c.TokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "imaged agent:", err)
		return 2
	}
	glanceToken, err := readGlanceToken(c.GlanceTokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "imaged agent:", err)
		return 2
	}
	var rt agent.Runtime
	switch c.Runtime {
	case imaged.AgentRuntimeDocker:
		rt, err = agent.NewDockerRuntime(c.DockerHost)
	case agent.RuntimeContainerd:
		c.Containerd.Logger = log
		var cr *agent.ContainerdRuntime
		if cr, err = agent.NewContainerdRuntime(ctx, c.Containerd); err == nil {
			defer cr.Close()
			rt = cr
		}
	default:
		var dr *agent.DirRuntime
		if dr, err = agent.NewDirRuntime(c.RuntimeDir); err == nil {
			rt = dr.WithGlance(agent.GlanceSource{ServerURL: c.Server, Token: glanceToken})
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "imaged agent:", err)
		return 1
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		fmt.Fprintln(stderr, "imaged agent:", err)
		return 1
	}
	fmt.Fprintf(stdout, "imaged agent %s listening on %s\n", c.ID, ln.Addr())
	err = agent.Run(ctx, agent.Config{ID: c.ID, ServerURL: c.Server, Token: token, Runtime: rt, Listener: ln,
		AdvertiseURL: c.Advertise, Heartbeat: c.Heartbeat, Version: version, Logger: log})
	if err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}
