package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

type agentJSON struct {
	ID            string  `json:"id"`
	Addr          string  `json:"addr"`
	Runtime       string  `json:"runtime"`
	Version       string  `json:"version"`
	Status        string  `json:"status"`
	Heartbeat     float64 `json:"heartbeat_seconds"`
	RegisteredAt  string  `json:"registered_at"`
	LastHeartbeat string  `json:"last_heartbeat"`
	ImageCount    int     `json:"image_count"`
	ImagesSize    int64   `json:"images_size"`
	Images        []struct {
		Reference    string `json:"reference"`
		Architecture string `json:"architecture"`
		Digest       string `json:"digest"`
		Size         int64  `json:"size"`
	} `json:"images"`
}

func (c *cmd) agents(ctx context.Context, args []string) error {
	verb, rest, err := subcommand(args, "list, show, purge, preload")
	if err != nil {
		return err
	}
	c.name = "agents " + verb
	switch verb {
	case "list":
		return c.agentsList(ctx, rest)
	case "show":
		return c.agentsShow(ctx, rest)
	case "purge", "preload":
		return c.agentsImages(ctx, verb, rest)
	default:
		return usageErrorf("unknown subcommand %q of agents", verb)
	}
}

func (c *cmd) agentsList(ctx context.Context, args []string) error {
	fs := c.flagSet("agents list")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "GET", "/api/v1/agents", nil, nil, &raw); err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var body struct {
		Agents []agentJSON `json:"agents"`
		Total  int         `json:"total"`
		Online int         `json:"online"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	rows := make([][]string, 0, len(body.Agents))
	for _, a := range body.Agents {
		rows = append(rows, []string{a.ID, a.Addr, a.Runtime, a.Status, strconv.Itoa(a.ImageCount), humanBytes(a.ImagesSize), shortTime(a.LastHeartbeat)})
	}
	if err := table(c.env.Stdout, []string{"ID", "ADDR", "RUNTIME", "STATUS", "IMAGES", "SIZE", "LAST HEARTBEAT"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "%d agents, %d online\n", body.Total, body.Online)
	return nil
}

func (c *cmd) agentsShow(ctx context.Context, args []string) error {
	fs := c.flagSet("agents show")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "GET", "/api/v1/agents/"+url.PathEscape(pos[0]), nil, nil, &raw); err != nil {
		return err
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var a agentJSON
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("unexpected agent in the answer: %w", err)
	}
	if err := keyValues(c.env.Stdout, [][2]string{{"id", a.ID}, {"addr", a.Addr}, {"runtime", a.Runtime},
		{"version", a.Version}, {"status", a.Status}, {"registered_at", shortTime(a.RegisteredAt)},
		{"last_heartbeat", shortTime(a.LastHeartbeat)}, {"images", fmt.Sprintf("%d (%s)", a.ImageCount, humanBytes(a.ImagesSize))}}); err != nil {
		return err
	}
	if len(a.Images) == 0 {
		return nil
	}
	fmt.Fprintln(c.env.Stdout)
	rows := make([][]string, 0, len(a.Images))
	for _, im := range a.Images {
		rows = append(rows, []string{im.Reference, im.Architecture, im.Digest, humanBytes(im.Size)})
	}
	return table(c.env.Stdout, []string{"REFERENCE", "ARCH", "DIGEST", "SIZE"}, rows)
}

// SplitImageArch splits "REF@ARCH" into the reference and architecture;
// a digest ("repo@sha256:...") is part of the reference, not an arch.
func SplitImageArch(s string) (ref, arch string) {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return s, ""
	}
	tail := s[i+1:]
	if tail == "" || strings.ContainsAny(tail, ":/") {
		return s, ""
	}
	return s[:i], tail
}

// agentsImages is purge and preload: every --image on every --agent.
func (c *cmd) agentsImages(ctx context.Context, op string, args []string) error {
	fs := c.flagSet("agents " + op)
	var agentIDs, images multiFlag
	var force, noprune, follow bool
	fs.Var(&agentIDs, "agent", "agent id; repeatable")
	fs.Var(&images, "image", "REF[@ARCH] or an alias; repeatable")
	fs.BoolVar(&force, "force", false, "")
	fs.BoolVar(&noprune, "noprune", false, "")
	fs.BoolVar(&follow, "follow", false, "follow the task until it ends")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	if len(agentIDs) == 0 || len(images) == 0 {
		return usageErrorf("give at least one --agent and one --image")
	}
	type name struct {
		Name         string `json:"name"`
		Architecture string `json:"architecture,omitempty"`
	}
	type key struct {
		AgentID string `json:"agent_id"`
		Images  []name `json:"images"`
	}
	var names []name
	for _, im := range images {
		ref, arch := SplitImageArch(im)
		if ref == "" {
			return usageErrorf("invalid --image %q", im)
		}
		names = append(names, name{ref, arch})
	}
	body := struct {
		Keys    []key `json:"keys"`
		Force   bool  `json:"force,omitempty"`
		NoPrune bool  `json:"noprune,omitempty"`
	}{Force: force, NoPrune: noprune}
	for _, a := range agentIDs {
		body.Keys = append(body.Keys, key{a, names})
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "POST", "/api/v1/agents/"+op+"-images", nil, body, &raw); err != nil {
		return err
	}
	return c.startedTask(ctx, raw, follow, op)
}
