package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agentapi"
	"github.com/imaged/imaged/agents"
	"github.com/imaged/imaged/bgtask"
	"github.com/imaged/imaged/containers"
	"github.com/imaged/imaged/nativeapi"
	"github.com/imaged/imaged/registry"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/uploadapi"
)

// nativeFlags configure the container catalog (/api/v1) and the node
// agents' side of the service.
type nativeFlags struct {
	RegistriesFile   string
	SecretKeyFile    string
	DefaultNamespace string
	ScanConcurrency  int
	AgentTokens      string
	AgentTimeout     time.Duration
	AgentConcurrency int
}

func (n *nativeFlags) register(fs *flag.FlagSet, env func(name, def string) string) {
	fs.StringVar(&n.RegistriesFile, "registries-file", env("REGISTRIES_FILE", ""), "YAML or JSON file of container registries to create or update at start (IMAGED_REGISTRIES_FILE); passwords may be given as password_env: VAR")
	fs.StringVar(&n.SecretKeyFile, "secret-key-file", env("SECRET_KEY_FILE", ""), "file holding the key that encrypts registry passwords in the database; default <data-dir>/secret.key, created when missing (replicas must share one) (IMAGED_SECRET_KEY_FILE)")
	fs.StringVar(&n.DefaultNamespace, "docker-hub-namespace", env("DOCKER_HUB_NAMESPACE", "library"), "Docker Hub namespace of single-name references such as python:3.11 (Backend.AI uses lablup)")
	fs.IntVar(&n.ScanConcurrency, "scan-concurrency", 8, "registry requests a rescan makes at once")
	fs.StringVar(&n.AgentTokens, "agent-tokens", env("AGENT_TOKENS", ""), "YAML or JSON file of node agents' tokens (or their SHA-256 digests) (IMAGED_AGENT_TOKENS)")
	fs.DurationVar(&n.AgentTimeout, "agent-timeout", 30*time.Second, "timeout of each call to a node agent during purge and preload")
	fs.IntVar(&n.AgentConcurrency, "agent-concurrency", 64, "node agents contacted at once during purge and preload")
}

func (n *nativeFlags) validate() error {
	if n.ScanConcurrency < 1 || n.ScanConcurrency > 256 {
		return fmt.Errorf("invalid --scan-concurrency %d: want 1 to 256", n.ScanConcurrency)
	}
	if n.AgentTimeout <= 0 {
		return fmt.Errorf("invalid --agent-timeout %v: want a positive duration", n.AgentTimeout)
	}
	if n.AgentConcurrency < 1 {
		return fmt.Errorf("invalid --agent-concurrency %d: want at least 1", n.AgentConcurrency)
	}
	return nil
}

// native is the wired container catalog and agents side.
type native struct {
	// tasks runs the native background tasks of both services (rescans,
	// agent fan-outs); close it at shutdown to interrupt them.
	tasks      *bgtask.Manager
	containers *containers.Service
	agents     *agents.Service
	handler    http.Handler // /api/v1/...
}

// openNative wires the container service, the agents service and their
// HTTP handlers over the shared store. On success the caller closes
// native.tasks at shutdown.
func openNative(ctx context.Context, c *serveConfig, store *sqlstore.Store, pol imaged.Policy, authn imaged.Authenticator, authURI string, log *slog.Logger) (_ *native, err error) {
	key, err := secretKey(c.Native.SecretKeyFile, c.DataDir)
	if err != nil {
		return nil, err
	}
	// One task runner for both services: the containers service's
	// GetTask/WatchTask show the agents' fan-outs too, and one Close ends
	// them all.
	tasks := bgtask.New(bgtask.Config{Store: store, Logger: log})
	defer func() {
		if err != nil {
			_ = tasks.Close(context.WithoutCancel(ctx)) // nothing started yet: returns at once
		}
	}()
	csvc, err := containers.New(containers.Config{Store: store, Images: store, Tasks: tasks,
		Registry: registry.New(registry.Options{Logger: log}), Policy: pol, Logger: log,
		ScanConcurrency: c.Native.ScanConcurrency, DefaultNamespace: c.Native.DefaultNamespace, SecretKey: key})
	if err != nil {
		return nil, err
	}
	if c.Native.RegistriesFile != "" {
		regs, err := loadRegistries(c.Native.RegistriesFile, os.Getenv)
		if err != nil {
			return nil, err
		}
		if err := csvc.SeedRegistries(ctx, regs); err != nil {
			return nil, fmt.Errorf("registries file %s: %w", c.Native.RegistriesFile, err)
		}
	}
	var toks map[string]string
	if c.Native.AgentTokens != "" {
		if toks, err = agents.LoadTokens(c.Native.AgentTokens); err != nil {
			return nil, err
		}
	}
	asvc, err := agents.New(agents.Config{Store: store, Resolver: csvc, Catalog: store, VMImages: store, Tasks: tasks,
		Policy: pol, Tokens: toks, Logger: log, AgentTimeout: c.Native.AgentTimeout, Concurrency: c.Native.AgentConcurrency})
	if err != nil {
		return nil, err
	}
	// Tasks whose process died (no heartbeat) are failed, not left running.
	if n, err := tasks.RecoverAbandoned(ctx, []string{imaged.TaskTypeRegistryRescan, imaged.TaskTypeAgentPurge, imaged.TaskTypeAgentPreload}, 0); err != nil {
		log.Warn("recovering abandoned background tasks failed", "err", err)
	} else if n > 0 {
		log.Info("failed abandoned background tasks", "count", n)
	}
	agentsHTTP := agentapi.New(agentapi.Config{Agents: asvc, Auth: authn, Logger: log})
	api := nativeapi.New(nativeapi.Config{Containers: csvc, Agents: asvc, Auth: authn, AuthURI: authURI, Logger: log,
		OpenAPIFragments: [][]byte{agentapi.OpenAPI(), uploadapi.OpenAPI()}})
	mux := http.NewServeMux()
	mux.Handle(nativeapi.Prefix+"/agents", agentsHTTP)
	mux.Handle(nativeapi.Prefix+"/agents/", agentsHTTP)
	mux.Handle(nativeapi.Prefix+"/", api)
	return &native{tasks: tasks, containers: csvc, agents: asvc, handler: mux}, nil
}

// withNative routes /api/v1/... to the native API and everything else to
// the Glance API (whose version negotiation would swallow /api paths).
func withNative(glance, native http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == nativeapi.Prefix || strings.HasPrefix(r.URL.Path, nativeapi.Prefix+"/") {
			native.ServeHTTP(w, r)
			return
		}
		glance.ServeHTTP(w, r)
	})
}

// secretKey reads the key that encrypts registry passwords; without a
// configured file it uses <data-dir>/secret.key, creating a random one on
// first start, so that passwords are never stored in clear by default.
func secretKey(file, dataDir string) ([]byte, error) {
	if file == "" {
		file = filepath.Join(dataDir, "secret.key")
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			if err := os.WriteFile(file, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("cannot create the secret key %s: %w", file, err)
			}
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the secret key: %w", err)
	}
	k := []byte(strings.TrimSpace(string(b)))
	if len(k) < 16 {
		return nil, fmt.Errorf("secret key %s is too short: want at least 16 characters", file)
	}
	return k, nil
}

// registryEntry is one registry of --registries-file.
type registryEntry struct {
	Name        string   `json:"name" yaml:"name"`
	URL         string   `json:"url" yaml:"url"`
	Type        string   `json:"type" yaml:"type"`
	Projects    []string `json:"projects" yaml:"projects"`
	Username    string   `json:"username" yaml:"username"`
	Password    string   `json:"password" yaml:"password"`
	PasswordEnv string   `json:"password_env" yaml:"password_env"`
	VerifyTLS   *bool    `json:"verify_tls" yaml:"verify_tls"`
}

// loadRegistries reads a registries file: {"registries": [...]} or a bare
// list, YAML or JSON.
func loadRegistries(path string, getenv func(string) string) ([]*imaged.Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registries file: %w", err)
	}
	var doc struct {
		Registries []registryEntry `json:"registries" yaml:"registries"`
	}
	var list []registryEntry
	trimmed := strings.TrimSpace(string(data))
	switch {
	case strings.HasPrefix(trimmed, "["):
		err = json.Unmarshal(data, &list)
	case strings.HasPrefix(trimmed, "{"):
		err = json.Unmarshal(data, &doc)
		list = doc.Registries
	default:
		if err = yaml.Unmarshal(data, &doc); err != nil || doc.Registries == nil {
			var l []registryEntry
			if yerr := yaml.Unmarshal(data, &l); yerr == nil {
				list, err = l, nil
			}
		} else {
			list = doc.Registries
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registries file %s: %v", path, err)
	}
	out := make([]*imaged.Registry, 0, len(list))
	for i, e := range list {
		if e.Name == "" || e.URL == "" {
			return nil, fmt.Errorf("registries file %s: entry %d needs a name and a url", path, i+1)
		}
		pw := e.Password
		if e.PasswordEnv != "" {
			if pw = getenv(e.PasswordEnv); pw == "" {
				return nil, fmt.Errorf("registries file %s: registry %s: environment variable %s is empty", path, e.Name, e.PasswordEnv)
			}
		}
		typ := e.Type
		if typ == "" {
			typ = string(imaged.RegistryOCI)
		}
		verify := true
		if e.VerifyTLS != nil {
			verify = *e.VerifyTLS
		}
		out = append(out, &imaged.Registry{Name: e.Name, URL: e.URL, Type: imaged.RegistryType(typ), Projects: e.Projects,
			Username: e.Username, Password: pw, VerifyTLS: verify})
	}
	return out, nil
}
