package nativeapi

import (
	"net/http"
	"net/url"
	"time"

	"github.com/imaged/imaged"
)

// The JSON shapes of the API. Every field is always present (null rather
// than left out), so that clients and the OpenAPI schemas can rely on it.

type registryJSON struct {
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	Type        string    `json:"type"`
	Projects    []string  `json:"projects"`
	Username    *string   `json:"username"`
	HasPassword bool      `json:"has_password"`
	VerifyTLS   bool      `json:"verify_tls"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// renderRegistry never renders the password: only whether there is one.
func renderRegistry(r *imaged.Registry) registryJSON {
	projects := r.Projects
	if projects == nil {
		projects = []string{}
	}
	return registryJSON{Name: r.Name, URL: r.URL, Type: string(r.Type), Projects: projects,
		Username: nullable(r.Username), HasPassword: r.Password != "" || r.HasPassword, VerifyTLS: r.VerifyTLS,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type limitsJSON struct {
	Custom    map[string]imaged.ResourceLimit `json:"custom"`
	Effective map[string]imaged.ResourceLimit `json:"effective"`
}

type imageJSON struct {
	ID              string            `json:"id"`
	Reference       string            `json:"reference"`
	Registry        string            `json:"registry"`
	RegistryHost    string            `json:"registry_host"`
	Project         *string           `json:"project"`
	Repository      string            `json:"repository"`
	Tag             string            `json:"tag"`
	Architecture    string            `json:"architecture"`
	Digest          string            `json:"digest"`
	IndexDigest     *string           `json:"index_digest"`
	ConfigDigest    string            `json:"config_digest"`
	Size            int64             `json:"size"`
	Labels          map[string]string `json:"labels"`
	Accelerators    []string          `json:"accelerators"`
	Type            string            `json:"type"`
	Status          string            `json:"status"`
	Aliases         []string          `json:"aliases"`
	ResourceLimits  limitsJSON        `json:"resource_limits"`
	Owner           *string           `json:"owner"`
	Visibility      string            `json:"visibility"`
	Protected       bool              `json:"protected"`
	Tags            []string          `json:"tags"`
	CustomizedOwner *string           `json:"customized_owner"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	ScannedAt       *time.Time        `json:"scanned_at"`
	InstalledAgents []string          `json:"installed_agents"`
}

func renderImage(ci *imaged.ContainerImage) imageJSON {
	labels := ci.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	acc := ci.Accelerators
	if acc == nil {
		acc = []string{"*"} // nil means any accelerator
	}
	aliases := ci.Aliases
	if aliases == nil {
		aliases = []string{}
	}
	tags := ci.Tags
	if tags == nil {
		tags = []string{}
	}
	custom := ci.ResourceLimits
	if custom == nil {
		custom = map[string]imaged.ResourceLimit{}
	}
	var scanned *time.Time
	if !ci.ScannedAt.IsZero() {
		t := ci.ScannedAt.UTC()
		scanned = &t
	}
	return imageJSON{
		ID: ci.ID, Reference: ci.Reference, Registry: ci.Registry, RegistryHost: ci.RegistryHost,
		Project: nullable(ci.Project), Repository: ci.Repository, Tag: ci.Tag, Architecture: ci.Architecture,
		Digest: ci.Digest, IndexDigest: nullable(ci.IndexDigest), ConfigDigest: ci.ConfigDigest, Size: ci.Size,
		Labels: labels, Accelerators: acc, Type: string(ci.Type), Status: string(ci.Status), Aliases: aliases,
		ResourceLimits: limitsJSON{Custom: custom, Effective: imaged.EffectiveLimits(ci.Labels, ci.ResourceLimits)},
		Owner:          nullable(ci.Owner), Visibility: string(ci.Visibility), Protected: ci.Protected, Tags: tags,
		CustomizedOwner: nullable(ci.CustomizedOwner()), CreatedAt: ci.CreatedAt.UTC(), UpdatedAt: ci.UpdatedAt.UTC(),
		ScannedAt: scanned, InstalledAgents: []string{},
	}
}

// installed fills installed_agents of rendered images with one query.
// Failing to read the agents' inventory does not fail the request: the
// field is informational, and an empty list is logged.
func (a *api) installed(r *http.Request, imgs []imageJSON) {
	if a.cfg.Agents == nil || len(imgs) == 0 {
		return
	}
	ids := make([]string, len(imgs))
	for i := range imgs {
		ids[i] = imgs[i].ID
	}
	m, err := a.cfg.Agents.InstalledAgents(r.Context(), ids)
	if err != nil {
		a.log.WarnContext(r.Context(), "cannot read installed agents", "err", err)
		return
	}
	for i := range imgs {
		if ags := m[imgs[i].ID]; len(ags) > 0 {
			imgs[i].InstalledAgents = ags
		}
	}
}

// imageETag is a container image's entity tag: "<id>-<version>", as the
// Glance API tags the same catalog rows.
func imageETag(ci *imaged.ContainerImage) string { return imaged.ETag(ci.ID, ci.Version) }

// writeImage answers with one image and its ETag.
func (a *api) writeImage(w http.ResponseWriter, r *http.Request, status int, ci *imaged.ContainerImage) {
	w.Header().Set("ETag", imageETag(ci))
	out := []imageJSON{renderImage(ci)}
	a.installed(r, out)
	writeJSON(w, r, status, out[0])
}

type taskJSON struct {
	ID        string              `json:"id"`
	Type      string              `json:"type"`
	Status    string              `json:"status"`
	Progress  imaged.TaskProgress `json:"progress"`
	Result    map[string]any      `json:"result"`
	Errors    []string            `json:"errors"`
	Message   *string             `json:"message"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
}

func renderTask(t *imaged.Task) taskJSON {
	errs := t.Errors
	if errs == nil {
		errs = []string{}
	}
	return taskJSON{ID: t.ID, Type: t.Type, Status: string(t.Status), Progress: t.Progress, Result: t.Result,
		Errors: errs, Message: nullable(t.Message), CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

type aliasJSON struct {
	Alias     string    `json:"alias"`
	ImageID   string    `json:"image_id"`
	CreatedAt time.Time `json:"created_at"`
}

func renderAlias(a *imaged.ContainerAlias) aliasJSON {
	return aliasJSON{Alias: a.Alias, ImageID: a.ImageID, CreatedAt: a.CreatedAt.UTC()}
}

type auditJSON struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	RequestID *string        `json:"request_id"`
	UserID    *string        `json:"user_id"`
	ProjectID *string        `json:"project_id"`
	Action    string         `json:"action"`
	Target    string         `json:"target"`
	Result    string         `json:"result"`
	Detail    map[string]any `json:"detail"`
}

func renderAudit(e *imaged.AuditEntry) auditJSON {
	return auditJSON{ID: e.ID, Time: e.Time.UTC(), RequestID: nullable(e.RequestID), UserID: nullable(e.UserID),
		ProjectID: nullable(e.ProjectID), Action: e.Action, Target: e.Target, Result: e.Result, Detail: e.Detail}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nextURL is the link to the page after the current one: the request's
// own path and query with the paging parameter set to marker.
func nextURL(r *http.Request, param, marker string) *string {
	q := r.URL.Query()
	q.Set(param, marker)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	s := u.String()
	return &s
}
