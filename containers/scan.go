package containers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/imaged/imaged"
)

// registryFor picks the configured registry that serves a reference: its
// host must be the reference's, and when it lists projects the path must
// be in one of them. It returns the registry (password decrypted) and the
// project the path belongs to ("" when the registry lists none).
func (s *Service) registryFor(ctx context.Context, ref imaged.Reference, regs []*imaged.Registry) (*imaged.Registry, string, error) {
	var hostMatch []string
	path := ref.Path()
	for _, r := range regs {
		if refHost(r) != ref.Registry {
			continue
		}
		hostMatch = append(hostMatch, r.Name)
		if len(r.Projects) == 0 {
			reg, err := s.forClient(ctx, r.Name)
			return reg, "", err
		}
		if p := projectOf(r.Projects, path); p != "" {
			reg, err := s.forClient(ctx, r.Name)
			return reg, p, err
		}
	}
	if len(hostMatch) > 0 {
		return nil, "", imaged.Errorf(imaged.EINVALID, "repository %q is not in a configured project of registry %s", path, strings.Join(hostMatch, ", "))
	}
	return nil, "", imaged.Errorf(imaged.EINVALID, "registry host %q of reference %q is not a configured registry", ref.Registry, ref.String())
}

// projectOf returns the longest project that path is or is under, "" if
// none.
func projectOf(projects []string, path string) string {
	best := ""
	for _, p := range projects {
		if (path == p || strings.HasPrefix(path, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// toImage turns what a scan found into the container image to commit.
// New rows get the catalog fields of stock registry images: public, no
// owner (customized images are governed by their owner label).
func (s *Service) toImage(reg *imaged.Registry, project string, sc imaged.ScannedImage) *imaged.ContainerImage {
	ref := imaged.Reference{Registry: refHost(reg), Name: sc.Repository, Tag: sc.Tag}
	if sc.Tag == "" {
		ref.Digest = sc.Digest
		if sc.IndexDigest != "" {
			ref.Digest = sc.IndexDigest
		}
	}
	arch := imaged.NormalizeArch(sc.Architecture)
	if arch == "" {
		arch = imaged.ArchFromTag(sc.Tag)
	}
	labels := sc.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return &imaged.ContainerImage{
		Reference: ref.String(), Registry: reg.Name, RegistryHost: refHost(reg), Project: project,
		Repository: sc.Repository, Tag: sc.Tag, Architecture: arch, Digest: sc.Digest,
		IndexDigest: sc.IndexDigest, ConfigDigest: sc.ConfigDigest, Size: sc.Size, Labels: labels,
		Accelerators: imaged.AcceleratorsFromLabels(labels), Type: imaged.ContainerTypeCompute,
		Status: imaged.ContainerAlive, Visibility: imaged.VisibilityPublic, ScannedAt: s.clock.Now(),
	}
}

// ScanImage scans one reference (tag or digest) now and registers or
// refreshes one image per architecture (admins only). It works for a
// reference without a row yet (Backend.AI #14640). The reference's
// registry host must be a configured registry (EINVALID otherwise), and
// its path in one of its projects. Labels are validated before anything
// is stored: one invalid label (EINVALID, naming it) stores nothing. With
// arch set, only that architecture is registered; ENOTFOUND if the
// manifest has none. Forgotten images are refreshed and stay forgotten.
func (s *Service) ScanImage(ctx context.Context, reference, arch string) (out []*imaged.ContainerImage, err error) {
	detail := map[string]any{"reference": reference, "architecture": arch}
	defer func() { s.audit(ctx, "container_image.scan", reference, err, detail) }()
	if _, err := s.admin(ctx, "scan registries"); err != nil {
		return nil, err
	}
	ref, regs, err := s.parse(ctx, reference)
	if err != nil {
		return nil, err
	}
	reg, project, err := s.registryFor(ctx, ref, regs)
	if err != nil {
		return nil, err
	}
	tagOrDigest := ref.Tag
	if ref.Digest != "" {
		tagOrDigest = ref.Digest
	}
	found, err := s.reg.Scan(ctx, reg, ref.Path(), tagOrDigest)
	if err != nil {
		return nil, prefixed(err, "scan %s", ref.String())
	}
	want := ""
	if arch != "" {
		want = imaged.NormalizeArch(arch)
	}
	var imgs []*imaged.ContainerImage
	var archs []string
	for _, sc := range found {
		if sc.Tag == "" && ref.Digest == "" {
			sc.Tag = ref.Tag
		}
		img := s.toImage(reg, project, sc)
		archs = append(archs, img.Architecture)
		if want != "" && img.Architecture != want {
			continue
		}
		if err := imaged.ValidateLabels(img.Labels); err != nil {
			return nil, prefixed(err, "%s (%s)", img.Reference, img.Architecture)
		}
		imgs = append(imgs, img)
	}
	if len(imgs) == 0 {
		if want != "" {
			return nil, imaged.Errorf(imaged.ENOTFOUND, "%s has no %s image (architectures: %s)", ref.String(), want, strings.Join(archs, ", "))
		}
		return nil, imaged.Errorf(imaged.ENOTFOUND, "%s has no image manifest", ref.String())
	}
	commit, err := s.store.CommitScan(ctx, reg.Name, imgs)
	if err != nil {
		return nil, prefixed(err, "commit scan of %s", ref.String())
	}
	out = append(append(append(out, commit.Created...), commit.Updated...), commit.Forgotten...)
	sort.Slice(out, func(i, j int) bool { return out[i].Architecture < out[j].Architecture })
	ids := make([]string, len(out))
	for i, img := range out {
		ids[i] = img.ID
	}
	detail["image_ids"], detail["created"], detail["forgotten_skipped"] = ids, len(commit.Created), len(commit.Forgotten)
	return out, nil
}

// RescanRegistry starts a background rescan of a registry (admins only)
// and returns its task (type imaged.TaskTypeRegistryRescan) at once:
//
//   - project "" scans every configured project (every repository when
//     the registry lists none); another project must be configured;
//     Docker Hub registries cannot be enumerated (EREFUSED: scan
//     single references).
//   - Repositories are enumerated, their tags listed, and tags scanned
//     with at most ScanConcurrency requests at once. Progress is Done/Total
//     tags, Total growing as tags are discovered.
//   - A tag that fails (unreadable manifest, invalid labels) is a task
//     error "repo:tag: reason" and does not stop the others.
//   - Everything found is committed with one CommitScan at the end
//     (atomic): a failed enumeration fails the task and commits nothing.
//   - Result: {"created", "updated", "forgotten_skipped", "image_ids",
//     "tags", "errors", "scan_ms", "commit_ms"}. Forgotten images are refreshed but stay forgotten
//     (counted under forgotten_skipped; Backend.AI revives them).
//   - The task outlives the request (its own timeout, RescanTimeout), and
//     its start and end are audited.
func (s *Service) RescanRegistry(ctx context.Context, name, project string) (t *imaged.Task, err error) {
	detail := map[string]any{"project": project}
	defer func() {
		if t != nil {
			detail["task_id"] = t.ID
		}
		s.audit(ctx, "registry.rescan", name, err, detail)
	}()
	if _, err := s.admin(ctx, "rescan registries"); err != nil {
		return nil, err
	}
	reg, err := s.forClient(ctx, name)
	if err != nil {
		return nil, err
	}
	if reg.Type == imaged.RegistryDockerHub {
		return nil, imaged.Errorf(imaged.EREFUSED, "registry %q is Docker Hub, whose repositories cannot be enumerated (rate limits); scan single references instead", name)
	}
	projects := reg.Projects
	if project != "" {
		if len(reg.Projects) > 0 && projectOf(reg.Projects, project) == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "project %q is not configured for registry %q (configured: %s)", project, name, strings.Join(reg.Projects, ", "))
		}
		projects = []string{project}
	}
	if len(projects) == 0 {
		projects = []string{""}
	}
	spec := imaged.TaskSpec{Type: imaged.TaskTypeRegistryRescan, Input: map[string]any{"registry": name, "project": project},
		Timeout: s.cfg.RescanTimeout}
	return s.tasks.Start(ctx, spec, func(tctx context.Context, r imaged.TaskReporter) (res map[string]any, err error) {
		defer func() {
			d := map[string]any{"project": project, "task_id": r.ID()}
			for k, v := range res {
				if k != "image_ids" {
					d[k] = v
				}
			}
			s.audit(tctx, "registry.rescan_end", name, err, d)
		}()
		return s.rescan(tctx, r, reg, projects)
	})
}

// rescan is the rescan task's work.
func (s *Service) rescan(ctx context.Context, r imaged.TaskReporter, reg *imaged.Registry, projects []string) (map[string]any, error) {
	conc := s.cfg.ScanConcurrency
	started := time.Now()
	var (
		mu    sync.Mutex
		found = map[string]*imaged.ContainerImage{} // reference + "\x00" + arch
		tags  int64
		wg    sync.WaitGroup
	)
	repoSem := make(chan struct{}, conc) // repositories whose tags are being listed
	tagSem := make(chan struct{}, conc)  // tags being scanned
	scanTag := func(project, repo, tag string) {
		defer r.Done(1)
		scanned, err := s.reg.Scan(ctx, reg, repo, tag)
		if err != nil {
			r.Error("%s:%s: %s", repo, tag, imaged.ErrorMessage(err))
			if imaged.ErrorCode(err) == imaged.EINTERNAL {
				s.log.Warn("containers: rescan: scan failed", "registry", reg.Name, "repo", repo, "tag", tag, "err", err)
			}
			return
		}
		for _, sc := range scanned {
			if sc.Tag == "" {
				sc.Tag = tag
			}
			img := s.toImage(reg, project, sc)
			if err := imaged.ValidateLabels(img.Labels); err != nil {
				r.Error("%s:%s (%s): %s", repo, tag, img.Architecture, imaged.ErrorMessage(err))
				continue
			}
			mu.Lock()
			found[img.Reference+"\x00"+img.Architecture] = img
			mu.Unlock()
		}
	}
	scanRepo := func(project, repo string) {
		list, err := s.reg.ListTags(ctx, reg, repo)
		<-repoSem
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return // deleted since the catalog listed it: dangling, as an empty one
		}
		if err != nil {
			r.Error("%s: cannot list tags: %s", repo, imaged.ErrorMessage(err))
			return
		}
		r.AddTotal(int64(len(list)))
		mu.Lock()
		tags += int64(len(list))
		mu.Unlock()
		for _, tag := range list {
			select {
			case tagSem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-tagSem }()
				defer func() {
					// A bug in one tag's scan must not take the process
					// down: the task runner only recovers the task's own goroutine.
					if p := recover(); p != nil {
						s.log.Error("containers: rescan: panic", "repo", repo, "tag", tag, "panic", p)
						r.Error("%s:%s: internal error", repo, tag)
					}
				}()
				scanTag(project, repo, tag)
			}()
		}
	}
	var enumErr error
	for _, p := range projects {
		err := s.reg.ListRepositories(ctx, reg, p, func(repo string) error {
			select {
			case repoSem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				project := p
				if project == "" && len(reg.Projects) > 0 {
					project = projectOf(reg.Projects, repo)
				}
				scanRepo(project, repo)
			}()
			return nil
		})
		if err != nil {
			enumErr = prefixed(err, "cannot list the repositories of registry %q project %q", reg.Name, p)
			break
		}
	}
	wg.Wait()
	if enumErr != nil {
		return nil, enumErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	imgs := make([]*imaged.ContainerImage, 0, len(found))
	for _, img := range found {
		imgs = append(imgs, img)
	}
	sort.Slice(imgs, func(i, j int) bool {
		if imgs[i].Reference != imgs[j].Reference {
			return imgs[i].Reference < imgs[j].Reference
		}
		return imgs[i].Architecture < imgs[j].Architecture
	})
	scanned := time.Now()
	commit := &imaged.ScanCommit{}
	if len(imgs) > 0 {
		r.SetMessage(fmt.Sprintf("committing %d images", len(imgs)))
		var err error
		if commit, err = s.store.CommitScan(ctx, reg.Name, imgs); err != nil {
			return nil, prefixed(err, "commit the rescan of registry %q", reg.Name)
		}
	}
	ids := make([]string, 0, len(imgs))
	for _, set := range [][]*imaged.ContainerImage{commit.Created, commit.Updated, commit.Forgotten} {
		for _, img := range set {
			ids = append(ids, img.ID)
		}
	}
	nerr := r.Errors()
	r.SetMessage(fmt.Sprintf("scanned %d tags: %d created, %d updated, %d forgotten skipped, %d errors",
		tags, len(commit.Created), len(commit.Updated), len(commit.Forgotten), nerr))
	return map[string]any{
		"created": len(commit.Created), "updated": len(commit.Updated),
		"forgotten_skipped": len(commit.Forgotten), "image_ids": ids,
		"tags": tags, "errors": nerr,
		// Where the time went: the registry (enumeration and scans) or
		// the database (the one commit).
		"scan_ms": scanned.Sub(started).Milliseconds(), "commit_ms": time.Since(scanned).Milliseconds(),
	}, nil
}
