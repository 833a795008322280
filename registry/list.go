package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/imaged/imaged"
)

// harborPageSize is the page_size of Harbor repository listings (Harbor
// caps it at 100).
const harborPageSize = 100

// maxPages stops a listing of a registry whose pagination never ends
// (a buggy Link header or a Harbor that ignores page).
const maxPages = 100000

// InProject reports whether repository repo belongs to project: it is the
// project itself or lies under project + "/" ("" = every repository).
// A bare prefix match would put "proj2/x" in project "proj".
func InProject(repo, project string) bool {
	project = strings.Trim(project, "/")
	return project == "" || repo == project || strings.HasPrefix(repo, project+"/")
}

// ListRepositories implements imaged.RegistryClient.
func (c *Client) ListRepositories(ctx context.Context, reg *imaged.Registry, project string, fn func(repo string) error) error {
	cn, err := c.conn(reg)
	if err != nil {
		return err
	}
	switch reg.Type {
	case imaged.RegistryDockerHub:
		return imaged.Errorf(imaged.EREFUSED, "Docker Hub registries are scanned one repository at a time")
	case imaged.RegistryHarbor2:
		return c.listHarbor(ctx, cn, project, fn)
	case imaged.RegistryOCI, "":
		return c.listCatalog(ctx, cn, project, fn)
	}
	return imaged.Errorf(imaged.EINVALID, "registry %s has an unknown type %q", reg.Name, reg.Type)
}

// listCatalog walks /v2/_catalog page by page (Link rel="next"), handing
// each page's matching repositories to fn before fetching the next.
func (c *Client) listCatalog(ctx context.Context, cn *conn, project string, fn func(string) error) error {
	cat, err := cn.puller.Catalogger(ctx, cn.registry)
	if err != nil {
		return failure(cn.reg, "catalog", err)
	}
	for pages := 0; cat.HasNext(); pages++ {
		if pages >= maxPages {
			return imaged.Errorf(imaged.EUNAVAILABLE, "registry %s: catalog pagination does not end", cn.reg.Name)
		}
		page, err := cat.Next(ctx)
		if err != nil {
			return failure(cn.reg, "catalog", err)
		}
		for _, repo := range page.Repos {
			if !InProject(repo, project) {
				continue
			}
			if err := fn(repo); err != nil {
				return err
			}
		}
	}
	return nil
}

// harborRepo is the part of Harbor's repository model we read.
type harborRepo struct {
	Name string `json:"name"` // "project/repo"
}

// listHarbor walks Harbor's project API:
// GET /api/v2.0/projects/{project}/repositories?page=N&page_size=100
// (GET /api/v2.0/repositories for project "", which needs a system
// admin). Tags and manifests then go through the OCI API Harbor serves.
func (c *Client) listHarbor(ctx context.Context, cn *conn, project string, fn func(string) error) error {
	project = strings.Trim(project, "/")
	path := "/api/v2.0/repositories"
	what := "repositories"
	if project != "" {
		// Harbor projects are one path segment; anything under it is
		// filtered below.
		head, _, _ := strings.Cut(project, "/")
		path = "/api/v2.0/projects/" + url.PathEscape(head) + "/repositories"
		what = "project " + head
	}
	for page := 1; page <= maxPages; page++ {
		u := url.URL{Scheme: cn.scheme, Host: cn.host, Path: path,
			RawQuery: fmt.Sprintf("page=%d&page_size=%d", page, harborPageSize)}
		repos, err := c.harborPage(ctx, cn, u.String(), what)
		if err != nil {
			return err
		}
		for _, r := range repos {
			if r.Name == "" || !InProject(r.Name, project) {
				continue
			}
			if err := fn(r.Name); err != nil {
				return err
			}
		}
		if len(repos) < harborPageSize {
			return nil
		}
	}
	return imaged.Errorf(imaged.EUNAVAILABLE, "registry %s: repository pagination does not end", cn.reg.Name)
}

func (c *Client) harborPage(ctx context.Context, cn *conn, u, what string) ([]harborRepo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, failure(cn.reg, what, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if cn.reg.Username != "" || cn.reg.Password != "" {
		req.SetBasicAuth(cn.reg.Username, cn.reg.Password)
	}
	resp, err := cn.http.Do(req)
	if err != nil {
		return nil, failure(cn.reg, what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only drains for reuse
		code, msg := classifyHTTP(cn.reg, what, resp.StatusCode, nil)
		return nil, fmt.Errorf("%w (GET %s: HTTP %d)", imaged.Errorf(code, "%s", msg), u, resp.StatusCode)
	}
	var repos []harborRepo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&repos); err != nil {
		return nil, fmt.Errorf("%w (%v)", imaged.Errorf(imaged.EUNAVAILABLE,
			"registry %s answered the repository listing with something that is not Harbor's JSON", cn.reg.Name), err)
	}
	return repos, nil
}

// ListTags implements imaged.RegistryClient. A repository whose tags are
// null (every manifest deleted) has no tags: an empty, non-nil list.
func (c *Client) ListTags(ctx context.Context, reg *imaged.Registry, repo string) ([]string, error) {
	cn, err := c.conn(reg)
	if err != nil {
		return nil, err
	}
	r, err := cn.repository(repo)
	if err != nil {
		return nil, err
	}
	tags, err := cn.puller.List(ctx, r)
	if err != nil {
		return nil, failure(reg, "repository "+repo, err)
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}
