package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

type registryJSON struct {
	Name        string   `json:"name"`
	URL         string   `json:"url"`
	Type        string   `json:"type"`
	Projects    []string `json:"projects"`
	Username    *string  `json:"username"`
	HasPassword bool     `json:"has_password"`
	VerifyTLS   bool     `json:"verify_tls"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

func (c *cmd) registry(ctx context.Context, args []string) error {
	verb, rest, err := subcommand(args, "list, show, add, update, delete, rescan")
	if err != nil {
		return err
	}
	c.name = "registry " + verb
	switch verb {
	case "list":
		return c.registryList(ctx, rest)
	case "show", "delete":
		fs := c.flagSet(c.name)
		pos, err := c.parse(fs, rest, 1, false)
		if err != nil {
			return err
		}
		p := "/api/v1/registries/" + url.PathEscape(pos[0])
		if verb == "delete" {
			if _, err := c.cl.call(ctx, "DELETE", p, nil, nil, nil); err != nil {
				return err
			}
			if c.output == "table" {
				fmt.Fprintf(c.env.Stdout, "deleted registry %s\n", pos[0])
			}
			return nil
		}
		var raw json.RawMessage
		if _, err := c.cl.call(ctx, "GET", p, nil, nil, &raw); err != nil {
			return err
		}
		return c.showRegistry(raw)
	case "add", "update":
		return c.registryWrite(ctx, verb, rest)
	case "rescan":
		return c.registryRescan(ctx, rest)
	default:
		return usageErrorf("unknown subcommand %q of registry", verb)
	}
}

func (c *cmd) registryList(ctx context.Context, args []string) error {
	fs := c.flagSet("registry list")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "GET", "/api/v1/registries", nil, nil, &raw); err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var body struct {
		Registries []registryJSON `json:"registries"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	rows := make([][]string, 0, len(body.Registries))
	for _, r := range body.Registries {
		rows = append(rows, []string{r.Name, r.Type, r.URL, strings.Join(r.Projects, ","), str(r.Username)})
	}
	return table(c.env.Stdout, []string{"NAME", "TYPE", "URL", "PROJECTS", "USERNAME"}, rows)
}

func (c *cmd) showRegistry(raw json.RawMessage) error {
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var r registryJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("unexpected registry in the answer: %w", err)
	}
	return keyValues(c.env.Stdout, [][2]string{{"name", r.Name}, {"type", r.Type}, {"url", r.URL},
		{"projects", strings.Join(r.Projects, ", ")}, {"username", str(r.Username)},
		{"has_password", strconv.FormatBool(r.HasPassword)}, {"verify_tls", strconv.FormatBool(r.VerifyTLS)},
		{"created_at", shortTime(r.CreatedAt)}, {"updated_at", shortTime(r.UpdatedAt)}})
}

// registryWrite is add (POST) and update (a merge patch of the flags
// given). Passwords come from an environment variable or stdin-less
// sources only, never from the command line (it shows in ps).
func (c *cmd) registryWrite(ctx context.Context, verb string, args []string) error {
	fs := c.flagSet("registry " + verb)
	var u, typ, user, pwEnv string
	var projects multiFlag
	var insecure, noPassword bool
	verify := true
	// --url is imaged's own address (every command), hence --registry-url.
	fs.StringVar(&u, "registry-url", "", "the registry's URL")
	fs.StringVar(&typ, "type", "", "oci, docker, harbor2, ...")
	fs.Var(&projects, "project", "a project (namespace) to scan; repeatable")
	fs.StringVar(&user, "username", "", "registry user")
	fs.StringVar(&pwEnv, "password-env", "", "name of an environment variable holding the password")
	fs.BoolVar(&noPassword, "no-password", false, "remove the password (update)")
	fs.BoolVar(&insecure, "insecure", false, "do not verify the registry's TLS certificate")
	fs.BoolVar(&verify, "verify-tls", true, "verify the registry's TLS certificate")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	body := map[string]any{}
	if verb == "add" {
		body["name"] = pos[0]
		if u == "" {
			return usageErrorf("missing --registry-url")
		}
	}
	if u != "" {
		body["url"] = u
	}
	if typ != "" {
		body["type"] = typ
	}
	if set["project"] {
		body["projects"] = []string(projects)
	}
	if set["username"] {
		body["username"] = user
	}
	switch {
	case pwEnv != "" && noPassword:
		return usageErrorf("--password-env and --no-password exclude each other")
	case pwEnv != "":
		pw := c.env.Getenv(pwEnv)
		if pw == "" {
			return usageErrorf("environment variable %s (--password-env) is empty", pwEnv)
		}
		body["password"] = pw
	case noPassword && verb == "update":
		body["password"] = nil
	}
	if insecure {
		verify = false
	}
	if set["insecure"] || set["verify-tls"] {
		body["verify_tls"] = verify
	}
	var raw json.RawMessage
	if verb == "add" {
		_, err = c.cl.call(ctx, "POST", "/api/v1/registries", nil, body, &raw)
	} else {
		if len(body) == 0 {
			return usageErrorf("nothing to update: give --registry-url, --type, --project, --username, --password-env, --no-password or --verify-tls")
		}
		data, _ := json.Marshal(body)
		_, err = c.cl.callType(ctx, "PATCH", "/api/v1/registries/"+url.PathEscape(pos[0]), nil, json.RawMessage(data), "application/merge-patch+json", &raw)
	}
	if err != nil {
		return err
	}
	return c.showRegistry(raw)
}

func (c *cmd) registryRescan(ctx context.Context, args []string) error {
	fs := c.flagSet("registry rescan")
	var project string
	var follow bool
	fs.StringVar(&project, "project", "", "rescan only this project")
	fs.BoolVar(&follow, "follow", false, "follow the task until it ends")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	body := map[string]string{}
	if project != "" {
		body["project"] = project
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "POST", "/api/v1/registries/"+url.PathEscape(pos[0])+"/rescan", nil, body, &raw); err != nil {
		return err
	}
	return c.startedTask(ctx, raw, follow, "rescan "+pos[0])
}

// startedTask prints a task just started, or follows it.
func (c *cmd) startedTask(ctx context.Context, raw json.RawMessage, follow bool, label string) error {
	var t task
	if err := json.Unmarshal(raw, &t); err != nil || t.ID == "" {
		return fmt.Errorf("unexpected task in the answer: %s", raw)
	}
	if !follow {
		if err := c.showTask(raw); err != nil {
			return err
		}
		if c.output == "table" {
			fmt.Fprintf(c.env.Stderr, "follow it with: imaged task show %s --follow\n", t.ID)
		}
		return nil
	}
	return c.follow(ctx, t.ID, label)
}
