package containers

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/imaged/imaged"
)

var (
	registryNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// projectRE is a repository path prefix: OCI path components.
	projectRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
)

// validateRegistry checks a registry's fields and normalises its URL and
// projects (trimmed, sorted, unique).
func validateRegistry(r *imaged.Registry) error {
	if !registryNameRE.MatchString(r.Name) {
		return imaged.Errorf(imaged.EINVALID, "invalid registry name %q: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return imaged.Errorf(imaged.EINVALID, "invalid registry url %q: want http(s)://host[:port] without path, credentials or query", r.URL)
	}
	r.URL = u.Scheme + "://" + strings.ToLower(u.Host)
	switch r.Type {
	case imaged.RegistryOCI, imaged.RegistryHarbor2, imaged.RegistryDockerHub:
	case "":
		r.Type = imaged.RegistryOCI
	default:
		return imaged.Errorf(imaged.EINVALID, "invalid registry type %q: want %q, %q or %q", r.Type, imaged.RegistryOCI, imaged.RegistryHarbor2, imaged.RegistryDockerHub)
	}
	ps := make([]string, 0, len(r.Projects))
	for _, p := range r.Projects {
		p = strings.Trim(strings.TrimSpace(p), "/")
		if !projectRE.MatchString(p) {
			return imaged.Errorf(imaged.EINVALID, "invalid registry project %q: want lowercase path components separated by '/'", p)
		}
		ps = append(ps, p)
	}
	sort.Strings(ps)
	r.Projects = slices.Compact(ps)
	if r.Type == imaged.RegistryHarbor2 && len(r.Projects) == 0 {
		return imaged.Errorf(imaged.EINVALID, "a harbor2 registry needs at least one project")
	}
	if (r.Username == "") != (r.Password == "") && r.Password != "" {
		return imaged.Errorf(imaged.EINVALID, "a registry password needs a username")
	}
	return nil
}

// public returns a copy of r fit for responses: never the password.
func public(r *imaged.Registry) *imaged.Registry {
	c := *r
	c.HasPassword = r.Password != "" || r.HasPassword
	c.Password = ""
	c.Projects = slices.Clone(r.Projects)
	return &c
}

// forClient returns the stored registry with its password decrypted, as
// the registry client needs it.
func (s *Service) forClient(ctx context.Context, name string) (*imaged.Registry, error) {
	r, err := s.store.GetRegistry(ctx, name)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "registry %q is not configured", name)
		}
		return nil, fmt.Errorf("containers: get registry %s: %w", name, err)
	}
	if r.Password, err = s.box.open(r.Password); err != nil {
		return nil, prefixed(err, "registry %q", name)
	}
	return r, nil
}

// CreateRegistry configures a registry (admins only).
func (s *Service) CreateRegistry(ctx context.Context, r *imaged.Registry) (out *imaged.Registry, err error) {
	target := ""
	if r != nil {
		target = r.Name
	}
	defer func() { s.audit(ctx, "registry.create", target, err, registryDetail(r)) }()
	if _, err := s.admin(ctx, "configure registries"); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, imaged.Errorf(imaged.EINVALID, "a registry is required")
	}
	c := *r
	c.Projects = slices.Clone(r.Projects)
	if err := validateRegistry(&c); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	c.CreatedAt, c.UpdatedAt = now, now
	c.Password = s.box.seal(c.Password)
	if err := s.store.CreateRegistry(ctx, &c); err != nil {
		if imaged.ErrorCode(err) == imaged.ECONFLICT {
			return nil, imaged.Errorf(imaged.ECONFLICT, "a registry named %q already exists", c.Name)
		}
		return nil, fmt.Errorf("containers: create registry: %w", err)
	}
	return public(&c), nil
}

// registryDetail is the audit detail of a registry: never the password.
func registryDetail(r *imaged.Registry) map[string]any {
	if r == nil {
		return nil
	}
	return map[string]any{"url": r.URL, "type": string(r.Type), "projects": slices.Clone(r.Projects)}
}

// GetRegistry returns a registry without its password (admins only:
// registry configuration names credentials and internal hosts).
func (s *Service) GetRegistry(ctx context.Context, name string) (*imaged.Registry, error) {
	if _, err := s.admin(ctx, "read registries"); err != nil {
		return nil, err
	}
	r, err := s.store.GetRegistry(ctx, name)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "registry %q is not configured", name)
		}
		return nil, fmt.Errorf("containers: get registry: %w", err)
	}
	return public(r), nil
}

// ListRegistries returns every registry, without passwords (admins only).
func (s *Service) ListRegistries(ctx context.Context) ([]*imaged.Registry, error) {
	if _, err := s.admin(ctx, "read registries"); err != nil {
		return nil, err
	}
	rs, err := s.store.ListRegistries(ctx)
	if err != nil {
		return nil, fmt.Errorf("containers: list registries: %w", err)
	}
	out := make([]*imaged.Registry, len(rs))
	for i, r := range rs {
		out[i] = public(r)
	}
	return out, nil
}

// registryPatchKeys are the fields UpdateRegistry's merge patch may set.
var registryPatchKeys = []string{"url", "type", "projects", "username", "password", "verify_tls"}

// applyRegistryPatch applies a JSON merge patch to r.
func applyRegistryPatch(r *imaged.Registry, patch map[string]any, seal func(string) string) error {
	var bad []string
	for k := range patch {
		if !slices.Contains(registryPatchKeys, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return imaged.Errorf(imaged.EINVALID, "registry fields %s cannot be changed (changeable: %s)", strings.Join(bad, ", "), strings.Join(registryPatchKeys, ", "))
	}
	str := func(k string, nullable bool) (string, error) {
		v := patch[k]
		if v == nil {
			if nullable {
				return "", nil
			}
			return "", imaged.Errorf(imaged.EINVALID, "registry field %s cannot be null", k)
		}
		s, ok := v.(string)
		if !ok {
			return "", imaged.Errorf(imaged.EINVALID, "registry field %s must be a string", k)
		}
		return s, nil
	}
	for k, v := range patch {
		var err error
		switch k {
		case "url":
			r.URL, err = str(k, false)
		case "type":
			var t string
			t, err = str(k, false)
			r.Type = imaged.RegistryType(t)
		case "username":
			r.Username, err = str(k, true)
		case "password":
			var p string
			if p, err = str(k, true); err == nil {
				r.Password = seal(p)
			}
		case "verify_tls":
			b, ok := v.(bool)
			if !ok {
				return imaged.Errorf(imaged.EINVALID, "registry field verify_tls must be a boolean")
			}
			r.VerifyTLS = b
		case "projects":
			if v == nil {
				r.Projects = nil
				continue
			}
			list, ok := v.([]any)
			if !ok {
				return imaged.Errorf(imaged.EINVALID, "registry field projects must be a list of strings")
			}
			r.Projects = make([]string, 0, len(list))
			for _, p := range list {
				ps, ok := p.(string)
				if !ok {
					return imaged.Errorf(imaged.EINVALID, "registry field projects must be a list of strings")
				}
				r.Projects = append(r.Projects, ps)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// UpdateRegistry applies a JSON merge patch (admins only). Changing the
// URL's host is ECONFLICT while images of the registry exist: their
// canonical references name the old host.
func (s *Service) UpdateRegistry(ctx context.Context, name string, patch map[string]any) (out *imaged.Registry, err error) {
	defer func() { s.audit(ctx, "registry.update", name, err, map[string]any{"fields": patchKeys(patch)}) }()
	if _, err := s.admin(ctx, "configure registries"); err != nil {
		return nil, err
	}
	if len(patch) == 0 {
		return nil, imaged.Errorf(imaged.EINVALID, "the registry patch is empty")
	}
	cur, err := s.store.GetRegistry(ctx, name)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "registry %q is not configured", name)
		}
		return nil, fmt.Errorf("containers: get registry: %w", err)
	}
	probe := *cur
	probe.Projects = slices.Clone(cur.Projects)
	if err := applyRegistryPatch(&probe, patch, func(p string) string { return p }); err != nil {
		return nil, err
	}
	if err := validateRegistry(&probe); err != nil {
		return nil, err
	}
	// The image check cannot run inside the store's transaction (they
	// must not nest): check first, then update only if the host is
	// still the one checked.
	checked := refHost(cur)
	if refHost(&probe) != checked {
		if err := s.checkNoImages(ctx, name); err != nil {
			return nil, err
		}
	}
	r, err := s.store.UpdateRegistry(ctx, name, func(r *imaged.Registry) error {
		if refHost(r) != checked {
			return imaged.Errorf(imaged.ECONFLICT, "registry %q changed meanwhile; retry", name)
		}
		if err := applyRegistryPatch(r, patch, s.box.seal); err != nil {
			return err
		}
		if err := validateRegistry(r); err != nil {
			return err
		}
		r.UpdatedAt = s.clock.Now()
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "registry %q is not configured", name)
		}
		return nil, prefixed(err, "update registry %q", name)
	}
	return public(r), nil
}

// checkNoImages refuses a host change while the registry has images.
func (s *Service) checkNoImages(ctx context.Context, name string) error {
	imgs, err := s.store.ListContainerImages(ctx, imaged.ContainerImageQuery{Registry: name,
		Statuses: []imaged.ContainerStatus{imaged.ContainerAlive, imaged.ContainerForgotten}, Limit: 1})
	if err != nil {
		return fmt.Errorf("containers: images of registry %s: %w", name, err)
	}
	if len(imgs) > 0 {
		return imaged.Errorf(imaged.ECONFLICT, "registry %q still has container images whose references name its host; purge them before changing the url's host", name)
	}
	return nil
}

// patchKeys lists a patch's keys, sorted, for audit details.
func patchKeys(patch map[string]any) []string {
	ks := make([]string, 0, len(patch))
	for k := range patch {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// DeleteRegistry removes a registry (admins only); ECONFLICT while images
// of it remain (purge them first).
func (s *Service) DeleteRegistry(ctx context.Context, name string) (err error) {
	defer func() { s.audit(ctx, "registry.delete", name, err, nil) }()
	if _, err := s.admin(ctx, "configure registries"); err != nil {
		return err
	}
	if err := s.store.DeleteRegistry(ctx, name); err != nil {
		switch imaged.ErrorCode(err) {
		case imaged.ENOTFOUND:
			return imaged.Errorf(imaged.ENOTFOUND, "registry %q is not configured", name)
		case imaged.ECONFLICT:
			return imaged.Errorf(imaged.ECONFLICT, "registry %q still has container images (alive or forgotten); purge them first", name)
		}
		return fmt.Errorf("containers: delete registry: %w", err)
	}
	return nil
}

// SeedRegistries creates or updates the registries of the configuration
// file (no caller identity needed: the operator's file is trusted). Each
// is validated; the first invalid one stops the seeding with its error.
func (s *Service) SeedRegistries(ctx context.Context, regs []*imaged.Registry) error {
	for _, in := range regs {
		c := *in
		c.Projects = slices.Clone(in.Projects)
		if err := validateRegistry(&c); err != nil {
			return prefixed(err, "seed registry %q", in.Name)
		}
		now := s.clock.Now()
		c.CreatedAt, c.UpdatedAt = now, now
		sealed := s.box.seal(c.Password)
		action := "registry.seed_update"
		cur, err := s.store.GetRegistry(ctx, c.Name)
		switch {
		case imaged.ErrorCode(err) == imaged.ENOTFOUND:
			action = "registry.seed_create"
			c.Password = sealed
			err = s.store.CreateRegistry(ctx, &c)
		case err != nil:
		case refHost(cur) != refHost(&c):
			// As UpdateRegistry: the images' references name the old host.
			if err = s.checkNoImages(ctx, c.Name); err != nil {
				break
			}
			fallthrough
		default:
			_, err = s.store.UpdateRegistry(ctx, c.Name, func(r *imaged.Registry) error {
				r.URL, r.Type, r.Projects, r.Username, r.VerifyTLS = c.URL, c.Type, c.Projects, c.Username, c.VerifyTLS
				r.Password = sealed
				r.UpdatedAt = now
				return nil
			})
		}
		s.audit(ctx, action, c.Name, err, registryDetail(&c))
		if err != nil {
			return prefixed(err, "seed registry %q", c.Name)
		}
	}
	return nil
}
