package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const imagesPath = "/api/v1/container-images"

// containerImage is the part of a ContainerImage the tables show.
type containerImage struct {
	ID              string            `json:"id"`
	Reference       string            `json:"reference"`
	Registry        string            `json:"registry"`
	Project         *string           `json:"project"`
	Architecture    string            `json:"architecture"`
	Digest          string            `json:"digest"`
	Size            int64             `json:"size"`
	Labels          map[string]string `json:"labels"`
	Accelerators    []string          `json:"accelerators"`
	Type            string            `json:"type"`
	Status          string            `json:"status"`
	Aliases         []string          `json:"aliases"`
	Owner           *string           `json:"owner"`
	Visibility      string            `json:"visibility"`
	Protected       bool              `json:"protected"`
	Tags            []string          `json:"tags"`
	CustomizedOwner *string           `json:"customized_owner"`
	CreatedAt       string            `json:"created_at"`
	UpdatedAt       string            `json:"updated_at"`
	ScannedAt       *string           `json:"scanned_at"`
	InstalledAgents []string          `json:"installed_agents"`
	ResourceLimits  struct {
		Custom    map[string]resourceLimit `json:"custom"`
		Effective map[string]resourceLimit `json:"effective"`
	} `json:"resource_limits"`
}

type resourceLimit struct {
	Min string `json:"min,omitempty"`
	Max string `json:"max,omitempty"`
}

func (c *cmd) image(ctx context.Context, args []string) error {
	verb, rest, err := subcommand(args, "list, show, scan, forget, restore, purge, untag, modify, set-limits, clear-limits, alias, dealias, aliases")
	if err != nil {
		return err
	}
	c.name = "image " + verb
	switch verb {
	case "list":
		return c.imageList(ctx, rest)
	case "show":
		return c.imageShow(ctx, rest)
	case "scan":
		return c.imageScan(ctx, rest)
	case "forget", "restore", "purge":
		return c.imageLifecycle(ctx, verb, rest)
	case "untag":
		return c.imageSimple(ctx, rest, "POST", "/untag")
	case "clear-limits":
		return c.imageSimple(ctx, rest, "DELETE", "/resource-limits")
	case "modify":
		return c.imageModify(ctx, rest)
	case "set-limits":
		return c.imageSetLimits(ctx, rest)
	case "alias":
		return c.imageAlias(ctx, rest)
	case "dealias":
		return c.imageDealias(ctx, rest)
	case "aliases":
		return c.imageAliases(ctx, rest)
	default:
		return usageErrorf("unknown subcommand %q of image", verb)
	}
}

func (c *cmd) imageList(ctx context.Context, args []string) error {
	fs := c.flagSet("image list")
	var registry, project, arch, status, repo, owner string
	var customized, all bool
	var limit int
	fs.StringVar(&registry, "registry", "", "registry name")
	fs.StringVar(&project, "project", "", "project (namespace)")
	fs.StringVar(&repo, "repository", "", "repository")
	fs.StringVar(&arch, "architecture", "", "architecture")
	fs.StringVar(&arch, "arch", "", "architecture")
	fs.StringVar(&status, "status", "", "alive or forgotten")
	fs.StringVar(&owner, "owner", "", "catalog owner project")
	fs.BoolVar(&customized, "customized", false, "only customized images")
	fs.BoolVar(&all, "all", false, "follow every page")
	fs.IntVar(&limit, "limit", 0, "page size")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	if status != "" && status != "alive" && status != "forgotten" {
		return usageErrorf("invalid --status %q: want alive or forgotten", status)
	}
	if limit < 0 {
		return usageErrorf("invalid --limit %d", limit)
	}
	q := url.Values{}
	for k, v := range map[string]string{"registry": registry, "project": project, "repository": repo,
		"architecture": arch, "status": status, "owner": owner} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if customized {
		q.Set("customized", "true")
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	images := []json.RawMessage{}
	next, err := c.pages(ctx, imagesPath, q, all, "images", func(items []json.RawMessage) { images = append(images, items...) })
	if err != nil {
		return err
	}
	if c.output == "json" {
		out := map[string]any{"images": images}
		if next != "" {
			out["next"] = next
		}
		return c.printJSON(out)
	}
	rows := make([][]string, 0, len(images))
	for _, raw := range images {
		var im containerImage
		if err := json.Unmarshal(raw, &im); err != nil {
			return fmt.Errorf("unexpected image in the answer: %w", err)
		}
		rows = append(rows, []string{im.ID, im.Reference, im.Architecture, im.Status, humanBytes(im.Size), strings.Join(im.Aliases, ",")})
	}
	if err := table(c.env.Stdout, []string{"ID", "REFERENCE", "ARCH", "STATUS", "SIZE", "ALIASES"}, rows); err != nil {
		return err
	}
	c.moreNote(next)
	return nil
}

// moreNote tells that a list has more pages.
func (c *cmd) moreNote(next string) {
	if next != "" {
		fmt.Fprintln(c.env.Stderr, "(more on the next page: add --all to list every page)")
	}
}

// pages GETs a list, following its "next" links when all is set, and
// hands each page's items (under key) to add. It returns the next link
// left unfollowed.
func (c *cmd) pages(ctx context.Context, path string, q url.Values, all bool, key string, add func([]json.RawMessage)) (string, error) {
	for {
		var page map[string]json.RawMessage
		if _, err := c.cl.call(ctx, "GET", path, q, nil, &page); err != nil {
			return "", err
		}
		var items []json.RawMessage
		if raw, ok := page[key]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return "", fmt.Errorf("unexpected %s in the answer: %w", key, err)
			}
		}
		add(items)
		var next string
		if raw, ok := page["next"]; ok {
			_ = json.Unmarshal(raw, &next)
		}
		if next == "" || !all || len(items) == 0 {
			return next, nil
		}
		// next is a path and query on the server; keep our own base
		// (which may have a prefix behind a proxy) and take its query.
		u, err := url.Parse(next)
		if err != nil {
			return "", fmt.Errorf("bad next link %q: %w", next, err)
		}
		q = u.Query()
	}
}

// isUUID reports whether s looks like an image id rather than a reference.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

func (c *cmd) imageShow(ctx context.Context, args []string) error {
	fs := c.flagSet("image show")
	var arch string
	fs.StringVar(&arch, "arch", "", "architecture (with a reference)")
	fs.StringVar(&arch, "architecture", "", "architecture (with a reference)")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if isUUID(pos[0]) {
		if arch != "" {
			return usageErrorf("--arch goes with a reference, not an image id")
		}
		_, err = c.cl.call(ctx, "GET", imagesPath+"/"+url.PathEscape(pos[0]), nil, nil, &raw)
	} else {
		q := url.Values{"reference": {pos[0]}}
		if arch != "" {
			q.Set("architecture", arch)
		}
		_, err = c.cl.call(ctx, "GET", imagesPath+"/resolve", q, nil, &raw)
	}
	if err != nil {
		return err
	}
	return c.showImage(raw)
}

// showImage prints one ContainerImage.
func (c *cmd) showImage(raw json.RawMessage) error {
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var im containerImage
	if err := json.Unmarshal(raw, &im); err != nil {
		return fmt.Errorf("unexpected image in the answer: %w", err)
	}
	limits := func(m map[string]resourceLimit) string {
		s := make(map[string]string, len(m))
		for k, v := range m {
			s[k] = v.Min + ":" + v.Max
		}
		return sortedMap(s)
	}
	return keyValues(c.env.Stdout, [][2]string{
		{"id", im.ID}, {"reference", im.Reference}, {"registry", im.Registry}, {"project", str(im.Project)},
		{"architecture", im.Architecture}, {"digest", im.Digest}, {"size", fmt.Sprintf("%s (%d bytes)", humanBytes(im.Size), im.Size)},
		{"type", im.Type}, {"status", im.Status}, {"visibility", im.Visibility}, {"protected", strconv.FormatBool(im.Protected)},
		{"owner", str(im.Owner)}, {"customized_owner", str(im.CustomizedOwner)},
		{"aliases", strings.Join(im.Aliases, ", ")}, {"tags", strings.Join(im.Tags, ", ")},
		{"accelerators", strings.Join(im.Accelerators, ", ")},
		{"limits (custom)", limits(im.ResourceLimits.Custom)}, {"limits (effective)", limits(im.ResourceLimits.Effective)},
		{"labels", sortedMap(im.Labels)}, {"installed_agents", strings.Join(im.InstalledAgents, ", ")},
		{"created_at", shortTime(im.CreatedAt)}, {"updated_at", shortTime(im.UpdatedAt)}, {"scanned_at", shortTime(str(im.ScannedAt))},
	})
}

// showImages prints a list of ContainerImages as a table.
func (c *cmd) showImages(raw json.RawMessage, key string) error {
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var body map[string][]containerImage
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	var rows [][]string
	for _, im := range body[key] {
		rows = append(rows, []string{im.ID, im.Reference, im.Architecture, im.Status, humanBytes(im.Size), strings.Join(im.Aliases, ",")})
	}
	return table(c.env.Stdout, []string{"ID", "REFERENCE", "ARCH", "STATUS", "SIZE", "ALIASES"}, rows)
}

func (c *cmd) imageScan(ctx context.Context, args []string) error {
	fs := c.flagSet("image scan")
	var arch string
	fs.StringVar(&arch, "arch", "", "one architecture (default: every one)")
	fs.StringVar(&arch, "architecture", "", "one architecture (default: every one)")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	body := map[string]string{"reference": pos[0]}
	if arch != "" {
		body["architecture"] = arch
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "POST", imagesPath+"/scan", nil, body, &raw); err != nil {
		return err
	}
	return c.showImages(raw, "images")
}

// imageLifecycle is forget, restore and purge of one image, several
// (bulk) or, for forget, a reference.
func (c *cmd) imageLifecycle(ctx context.Context, op string, args []string) error {
	fs := c.flagSet("image " + op)
	var ref, arch string
	var untag bool
	if op == "forget" {
		fs.StringVar(&ref, "ref", "", "forget by reference instead of id")
		fs.StringVar(&arch, "arch", "", "architecture of --ref")
		fs.StringVar(&arch, "architecture", "", "architecture of --ref")
	}
	if op == "purge" {
		fs.BoolVar(&untag, "untag", false, "first delete the manifest from the registry")
	}
	ids, err := c.parse(fs, args, 0, true)
	if err != nil {
		return err
	}
	if ref != "" {
		if len(ids) > 0 {
			return usageErrorf("give image ids or --ref, not both")
		}
		body := map[string]string{"reference": ref}
		if arch != "" {
			body["architecture"] = arch
		}
		var raw json.RawMessage
		if _, err := c.cl.call(ctx, "POST", imagesPath+"/forget", nil, body, &raw); err != nil {
			return err
		}
		return c.showImage(raw)
	}
	if arch != "" {
		return usageErrorf("--arch goes with --ref")
	}
	if len(ids) == 0 {
		return usageErrorf("missing image id")
	}
	one := func(id string) (json.RawMessage, error) {
		var raw json.RawMessage
		var err error
		p := imagesPath + "/" + url.PathEscape(id)
		switch op {
		case "purge":
			var q url.Values
			if untag {
				q = url.Values{"untag": {"true"}}
			}
			_, err = c.cl.call(ctx, "DELETE", p, q, nil, &raw)
		default:
			_, err = c.cl.call(ctx, "POST", p+"/"+op, nil, nil, &raw)
		}
		return raw, err
	}
	if len(ids) == 1 {
		raw, err := one(ids[0])
		if err != nil {
			return err
		}
		return c.showImage(raw)
	}
	var res bulkResult
	if untag {
		// The bulk endpoint does not untag: purge one by one.
		for _, id := range ids {
			if _, err := one(id); err != nil {
				f := bulkFailure{ID: id, Error: err.Error()}
				var ae *APIError
				if errors.As(err, &ae) {
					f.Code, f.Error = ae.Code, ae.Message
				} else {
					f.Code = "error"
				}
				res.Failed = append(res.Failed, f)
			} else {
				res.Successful = append(res.Successful, id)
			}
		}
	} else if _, err := c.cl.call(ctx, "POST", imagesPath+"/bulk/"+op, nil, map[string][]string{"ids": ids}, &res); err != nil {
		return err
	}
	return c.showBulk(op, ids, res)
}

type bulkFailure struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

type bulkResult struct {
	Successful []string      `json:"successful"`
	Failed     []bulkFailure `json:"failed"`
}

// showBulk prints one line per id, in the order given; exit 1 when any
// failed.
func (c *cmd) showBulk(op string, ids []string, res bulkResult) error {
	if res.Successful == nil {
		res.Successful = []string{}
	}
	if res.Failed == nil {
		res.Failed = []bulkFailure{}
	}
	if c.output == "json" {
		if err := c.printJSON(res); err != nil {
			return err
		}
	} else {
		failed := make(map[string]bulkFailure, len(res.Failed))
		for _, f := range res.Failed {
			failed[f.ID] = f
		}
		rows := make([][]string, 0, len(ids))
		for _, id := range ids {
			if f, ok := failed[id]; ok {
				rows = append(rows, []string{id, "failed", f.Code, f.Error})
			} else {
				rows = append(rows, []string{id, op, "", ""})
			}
		}
		if err := table(c.env.Stdout, []string{"ID", "RESULT", "CODE", "ERROR"}, rows); err != nil {
			return err
		}
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(c.env.Stderr, "imaged %s: %d of %d failed\n", c.name, len(res.Failed), len(ids))
		return errReported
	}
	return nil
}

// imageSimple is a body-less call on one image that answers the image.
func (c *cmd) imageSimple(ctx context.Context, args []string, method, suffix string) error {
	fs := c.flagSet(c.name)
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, method, imagesPath+"/"+url.PathEscape(pos[0])+suffix, nil, nil, &raw); err != nil {
		return err
	}
	return c.showImage(raw)
}

func (c *cmd) imageModify(ctx context.Context, args []string) error {
	fs := c.flagSet("image modify")
	var patch string
	fs.StringVar(&patch, "patch", "", "a JSON merge patch")
	pos, err := c.parse(fs, args, 1, true)
	if err != nil {
		return err
	}
	var body json.RawMessage
	var hdr http.Header
	switch {
	case patch != "" && len(pos) > 1:
		return usageErrorf("give key=value pairs or --patch, not both")
	case patch != "":
		var obj map[string]any
		if err := json.Unmarshal([]byte(patch), &obj); err != nil {
			return usageErrorf("invalid --patch: want a JSON object: %v", err)
		}
		body = json.RawMessage(patch)
	case len(pos) == 1:
		return usageErrorf("nothing to modify: give key=value pairs or --patch")
	default:
		p, err := ModifyPatch(pos[1:])
		if err != nil {
			return err
		}
		// The server merges labels and limits as RFC 7396 says: a null
		// member removes one, the others are kept.
		if body, err = json.Marshal(p); err != nil {
			return err
		}
	}
	var raw json.RawMessage
	if _, err := c.cl.callHeader(ctx, "PATCH", imagesPath+"/"+url.PathEscape(pos[0]), nil, body, "application/merge-patch+json", hdr, &raw); err != nil {
		return err
	}
	return c.showImage(raw)
}

// ModifyPatch turns key=value pairs into a merge patch of an image:
// type=, visibility=, protected=true|false, tags=a,b (empty: none),
// label.KEY=VALUE (empty VALUE removes the label), limit.SLOT=min:max
// (empty removes the custom limit).
func ModifyPatch(pairs []string) (map[string]any, error) {
	p := map[string]any{}
	labels := map[string]any{}
	limits := map[string]any{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("invalid %q: want key=value", kv)
		}
		switch {
		case k == "type" || k == "visibility":
			p[k] = v
		case k == "protected":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, usageErrorf("invalid protected=%q: want true or false", v)
			}
			p[k] = b
		case k == "tags":
			tags := []string{}
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					tags = append(tags, t)
				}
			}
			p[k] = tags
		case strings.HasPrefix(k, "label.") || strings.HasPrefix(k, "labels."):
			name := k[strings.IndexByte(k, '.')+1:]
			if name == "" {
				return nil, usageErrorf("invalid %q: want label.KEY=VALUE", kv)
			}
			if v == "" {
				labels[name] = nil
			} else {
				labels[name] = v
			}
		case strings.HasPrefix(k, "limit."):
			slot := strings.TrimPrefix(k, "limit.")
			if slot == "" {
				return nil, usageErrorf("invalid %q: want limit.SLOT=min:max", kv)
			}
			if v == "" {
				limits[slot] = nil
				continue
			}
			l, err := parseLimit(slot, v)
			if err != nil {
				return nil, err
			}
			limits[slot] = l
		default:
			return nil, usageErrorf("unknown key %q: want type, visibility, protected, tags, label.KEY or limit.SLOT", k)
		}
	}
	if len(labels) > 0 {
		p["labels"] = labels
	}
	if len(limits) > 0 {
		p["resource_limits"] = limits
	}
	return p, nil
}

// parseLimit reads "min:max", "min" or ":max".
func parseLimit(slot, v string) (resourceLimit, error) {
	lo, hi, _ := strings.Cut(v, ":")
	if lo == "" && hi == "" {
		return resourceLimit{}, usageErrorf("invalid limit %s=%q: want min:max, min or :max", slot, v)
	}
	return resourceLimit{Min: lo, Max: hi}, nil
}

func (c *cmd) imageSetLimits(ctx context.Context, args []string) error {
	fs := c.flagSet("image set-limits")
	pos, err := c.parse(fs, args, 2, true)
	if err != nil {
		return err
	}
	limits := map[string]resourceLimit{}
	for _, kv := range pos[1:] {
		slot, v, ok := strings.Cut(kv, "=")
		if !ok || slot == "" {
			return usageErrorf("invalid %q: want slot=min:max, e.g. cpu=1:4 mem=1g:8g", kv)
		}
		l, err := parseLimit(slot, v)
		if err != nil {
			return err
		}
		limits[slot] = l
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "PUT", imagesPath+"/"+url.PathEscape(pos[0])+"/resource-limits", nil, limits, &raw); err != nil {
		return err
	}
	return c.showImage(raw)
}

func (c *cmd) imageAlias(ctx context.Context, args []string) error {
	fs := c.flagSet("image alias")
	var ref, arch string
	fs.StringVar(&ref, "ref", "", "target reference instead of an image id")
	fs.StringVar(&arch, "arch", "", "architecture of --ref")
	fs.StringVar(&arch, "architecture", "", "architecture of --ref")
	pos, err := c.parse(fs, args, 1, true)
	if err != nil {
		return err
	}
	body := map[string]string{}
	switch {
	case len(pos) > 2:
		return usageErrorf("unexpected argument %q", pos[2])
	case len(pos) == 2 && ref != "":
		return usageErrorf("give an image id or --ref, not both")
	case len(pos) == 2:
		if arch != "" {
			return usageErrorf("--arch goes with --ref")
		}
		body["image_id"] = pos[1]
	case ref != "":
		body["reference"] = ref
		if arch != "" {
			body["architecture"] = arch
		}
	default:
		return usageErrorf("missing target: give an image id or --ref REF")
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "PUT", "/api/v1/aliases/"+pathEscape(pos[0]), nil, body, &raw); err != nil {
		return err
	}
	return c.showAlias(raw)
}

type alias struct {
	Alias     string `json:"alias"`
	ImageID   string `json:"image_id"`
	CreatedAt string `json:"created_at"`
}

func (c *cmd) showAlias(raw json.RawMessage) error {
	if c.output == "json" {
		return c.printJSON(raw)
	}
	var a alias
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("unexpected alias in the answer: %w", err)
	}
	return table(c.env.Stdout, []string{"ALIAS", "IMAGE", "CREATED"}, [][]string{{a.Alias, a.ImageID, shortTime(a.CreatedAt)}})
}

func (c *cmd) imageDealias(ctx context.Context, args []string) error {
	fs := c.flagSet("image dealias")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "DELETE", "/api/v1/aliases/"+pathEscape(pos[0]), nil, nil, &raw); err != nil {
		return err
	}
	return c.showAlias(raw)
}

func (c *cmd) imageAliases(ctx context.Context, args []string) error {
	fs := c.flagSet("image aliases")
	var image string
	var all bool
	var limit int
	fs.StringVar(&image, "image", "", "only the aliases of this image id")
	fs.BoolVar(&all, "all", false, "follow every page")
	fs.IntVar(&limit, "limit", 0, "page size")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	q := url.Values{}
	if image != "" {
		q.Set("image_id", image)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	items := []json.RawMessage{}
	next, err := c.pages(ctx, "/api/v1/aliases", q, all, "aliases", func(p []json.RawMessage) { items = append(items, p...) })
	if err != nil {
		return err
	}
	if c.output == "json" {
		out := map[string]any{"aliases": items}
		if next != "" {
			out["next"] = next
		}
		return c.printJSON(out)
	}
	rows := make([][]string, 0, len(items))
	for _, raw := range items {
		var a alias
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("unexpected alias in the answer: %w", err)
		}
		rows = append(rows, []string{a.Alias, a.ImageID, shortTime(a.CreatedAt)})
	}
	if err := table(c.env.Stdout, []string{"ALIAS", "IMAGE", "CREATED"}, rows); err != nil {
		return err
	}
	c.moreNote(next)
	return nil
}
