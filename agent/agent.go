package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// DefaultHeartbeat is the default heartbeat interval.
const DefaultHeartbeat = 10 * time.Second

// Config configures an agent.
type Config struct {
	ID        string  // the agent's id (as the service knows its token)
	ServerURL string  // the service's base URL, e.g. http://127.0.0.1:9292
	Token     string  // the agent's token
	Runtime   Runtime // required
	// Listener is where the agent's API is served (bind only where told).
	Listener net.Listener
	// AdvertiseURL is the base URL the service calls the agent at; ""
	// = http://<listener address>.
	AdvertiseURL string
	Heartbeat    time.Duration // 0 = DefaultHeartbeat
	Version      string
	Logger       *slog.Logger
	Client       *http.Client // for the service; nil = a client with a 10 s timeout
}

// Registration is the body of the service's register and heartbeat
// endpoints (the core's wire protocol).
type Registration = imaged.AgentRegistrationBody

// Run serves the agent's API on cfg.Listener, registers with the service
// (retrying until it answers) and sends a heartbeat with the inventory
// every interval, until ctx is done. A failed heartbeat is logged and
// retried at the next tick: the agent keeps serving its API meanwhile.
func Run(ctx context.Context, cfg Config) error {
	if cfg.ID == "" || cfg.ServerURL == "" || cfg.Runtime == nil || cfg.Listener == nil {
		return imaged.Errorf(imaged.EINVALID, "agent: id, server URL, runtime and listener are required")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.AdvertiseURL == "" {
		cfg.AdvertiseURL = "http://" + cfg.Listener.Addr().String()
	}
	api, err := NewServer(cfg.Runtime, cfg.Token, cfg.Logger)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(cfg.Listener) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log := cfg.Logger.With("agent_id", cfg.ID)
	log.Info("agent serving", "addr", cfg.Listener.Addr().String(), "runtime", cfg.Runtime.Name(), "server", cfg.ServerURL)

	path := "register"
	tick := time.NewTimer(0)
	defer tick.Stop()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("agent: serve: %w", err)
		case <-tick.C:
		}
		err := beat(ctx, cfg, path)
		switch {
		case err == nil:
			if path == "register" {
				log.Info("agent registered")
			}
			path, backoff = "heartbeat", time.Second
			tick.Reset(cfg.Heartbeat)
		case ctx.Err() != nil:
			return nil
		case path == "register":
			// Until registered, retry sooner than a heartbeat interval.
			log.Warn("agent registration failed; retrying", "err", err, "in", backoff)
			tick.Reset(min(backoff, cfg.Heartbeat))
			backoff = min(2*backoff, time.Minute)
		default:
			log.Warn("agent heartbeat failed", "err", err)
			tick.Reset(cfg.Heartbeat)
		}
	}
}

// beat sends one registration or heartbeat with the current inventory.
func beat(ctx context.Context, cfg Config, path string) error {
	lctx, cancel := context.WithTimeout(ctx, cfg.Heartbeat)
	imgs, err := cfg.Runtime.List(lctx)
	cancel()
	if err != nil {
		// The heartbeat still says the agent is alive; the inventory is
		// left as it was (null).
		cfg.Logger.Warn("agent: inventory failed", "err", err)
		imgs = nil
	}
	body, err := json.Marshal(Registration{Addr: cfg.AdvertiseURL, Runtime: cfg.Runtime.Name(), Version: cfg.Version,
		HeartbeatSeconds: cfg.Heartbeat.Seconds(), Images: imgs})
	if err != nil {
		return err
	}
	u := strings.TrimRight(cfg.ServerURL, "/") + "/api/v1/agents/" + cfg.ID + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Agent-Token", cfg.Token)
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return errors.New(resp.Status + ": " + e.Error.Message)
		}
		return errors.New(resp.Status)
	}
	return nil
}
