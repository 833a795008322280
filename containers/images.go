package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

func imageNotFound(id string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "container image %s not found", id)
}

// forbidden explains why a visible image cannot be changed.
func forbidden(op imaged.Action, img *imaged.ContainerImage) error {
	if imaged.ContainerOwnerAction(op) {
		return imaged.Errorf(imaged.EFORBIDDEN, "only an admin or the owner of a customized image may %s container image %s", op, img.ID)
	}
	return imaged.Errorf(imaged.EFORBIDDEN, "only admins may %s container images", op)
}

// check applies the access rules to img for op.
func (s *Service) check(id *imaged.Identity, img *imaged.ContainerImage, op imaged.Action) error {
	switch s.pol.CheckContainer(id, op, img) {
	case "":
		return nil
	case imaged.EUNAUTHORIZED:
		return imaged.Errorf(imaged.EUNAUTHORIZED, "authentication required")
	case imaged.EFORBIDDEN:
		return forbidden(op, img)
	}
	return imageNotFound(img.ID)
}

// load returns an image (any status) the caller may do op on.
func (s *Service) load(ctx context.Context, imageID string, op imaged.Action) (*imaged.Identity, *imaged.ContainerImage, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.store.GetContainerImage(ctx, imageID)
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return id, nil, imageNotFound(imageID)
		}
		return id, nil, fmt.Errorf("containers: get image %s: %w", imageID, err)
	}
	if err := s.check(id, img, op); err != nil {
		return id, img, err
	}
	return id, img, nil
}

// GetContainerImage returns an image the caller may see.
func (s *Service) GetContainerImage(ctx context.Context, imageID string) (*imaged.ContainerImage, error) {
	_, img, err := s.load(ctx, imageID, imaged.ActionContainerRead)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// ListContainerImages lists one page of the images the caller may see,
// starting after the image whose id is marker. Forgotten images are
// listed only when q.Statuses asks for them, and to non-admins only their
// own customized ones (so that they can find them to restore them).
func (s *Service) ListContainerImages(ctx context.Context, q imaged.ContainerImageQuery, marker string) ([]*imaged.ContainerImage, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range q.Statuses {
		if st != imaged.ContainerAlive && st != imaged.ContainerForgotten {
			return nil, imaged.Errorf(imaged.EINVALID, "invalid status %q: want %q or %q", st, imaged.ContainerAlive, imaged.ContainerForgotten)
		}
	}
	switch q.SortKey {
	case "", "reference", "created_at", "updated_at", "size":
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "invalid sort key %q: want reference, created_at, updated_at or size", q.SortKey)
	}
	if q.SortDir != "" && q.SortDir != imaged.Asc && q.SortDir != imaged.Desc {
		return nil, imaged.Errorf(imaged.EINVALID, "invalid sort direction %q", q.SortDir)
	}
	if q.Architecture != "" {
		q.Architecture = imaged.NormalizeArch(q.Architecture)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListSize
	} else if limit > maxListLimit {
		limit = maxListLimit
	}
	if marker != "" {
		m, err := s.store.GetContainerImage(ctx, marker)
		if err != nil || s.check(id, m, imaged.ActionContainerRead) != nil {
			if err == nil || imaged.ErrorCode(err) == imaged.ENOTFOUND {
				return nil, imaged.Errorf(imaged.EINVALID, "marker %s is not a container image you can see", marker)
			}
			return nil, fmt.Errorf("containers: list marker: %w", err)
		}
		q.After = m
	}
	admin := s.pol.IsAdmin(id)
	q.ReadableBy = nil
	if !admin {
		// The store returns only what the caller may read, so that a
		// catalog full of others' customized images is not paged through
		// on every request; the check below stays as a second guard and
		// should then drop nothing.
		q.ReadableBy = &imaged.ContainerReader{ProjectID: id.ProjectID, UserID: id.UserID}
	}
	out := make([]*imaged.ContainerImage, 0, min(limit, 64))
	q.Limit = limit
	dropped := 0
	defer func() {
		if dropped > 0 {
			// ReadableBy and the Policy disagree: worth knowing, as it
			// costs extra pages (or the query lets through more than it
			// should). Once per call, not per image.
			s.log.WarnContext(ctx, "containers: list: the store returned images the caller may not read",
				"dropped", dropped, "user_id", id.UserID, "project_id", id.ProjectID)
		}
	}()
	for {
		page, err := s.store.ListContainerImages(ctx, q)
		if err != nil {
			return nil, prefixed(err, "list container images")
		}
		for _, img := range page {
			if admin || s.check(id, img, imaged.ActionContainerRead) == nil {
				out = append(out, img)
				if len(out) == limit {
					return out, nil
				}
			} else {
				dropped++
			}
		}
		// Non-admins need another page when the check above dropped
		// images from a full one.
		if admin || len(page) < q.Limit {
			return out, nil
		}
		q.After = page[len(page)-1]
	}
}

// knownRegistries returns the configured registries and their hosts.
func (s *Service) knownRegistries(ctx context.Context) ([]*imaged.Registry, []string, error) {
	regs, err := s.store.ListRegistries(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("containers: list registries: %w", err)
	}
	hosts := make([]string, 0, len(regs))
	for _, r := range regs {
		hosts = append(hosts, refHost(r))
	}
	return regs, hosts, nil
}

// refHost is the registry part of the canonical references of a
// registry's images: its URL's host, except for Docker Hub, whose API
// host (registry-1.docker.io) differs from its reference name
// (index.docker.io).
func refHost(r *imaged.Registry) string {
	if r.Type == imaged.RegistryDockerHub {
		return imaged.DockerHubRegistry
	}
	return r.Host()
}

// parse parses a reference with the configured registries recognised.
func (s *Service) parse(ctx context.Context, reference string) (imaged.Reference, []*imaged.Registry, error) {
	regs, hosts, err := s.knownRegistries(ctx)
	if err != nil {
		return imaged.Reference{}, nil, err
	}
	ref, err := imaged.ParseReference(reference, imaged.ReferenceOptions{KnownRegistries: hosts, DefaultNamespace: s.cfg.DefaultNamespace})
	return ref, regs, err
}

// resolve finds the live image a reference names: the exact canonical
// reference with the normalised architecture first, then an alias of that
// name (whatever the architecture). It does not check access.
func (s *Service) resolve(ctx context.Context, reference, arch string) (*imaged.ContainerImage, error) {
	if reference == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "a reference is required")
	}
	a := s.normArch(arch)
	ref, _, perr := s.parse(ctx, reference)
	if perr == nil {
		img, err := s.store.FindContainerImage(ctx, ref.String(), a)
		if err == nil {
			return img, nil
		}
		if imaged.ErrorCode(err) != imaged.ENOTFOUND {
			return nil, fmt.Errorf("containers: find %s: %w", ref.String(), err)
		}
	} else if imaged.ErrorCode(perr) != imaged.EINVALID || !aliasRE.MatchString(reference) {
		return nil, perr // neither a reference nor an alias
	}
	al, err := s.store.GetAlias(ctx, reference)
	if err == nil {
		img, err := s.store.GetContainerImage(ctx, al.ImageID)
		if err == nil && img.Status == imaged.ContainerAlive {
			return img, nil
		}
		if err != nil && imaged.ErrorCode(err) != imaged.ENOTFOUND {
			return nil, fmt.Errorf("containers: alias target %s: %w", al.ImageID, err)
		}
	} else if imaged.ErrorCode(err) != imaged.ENOTFOUND {
		return nil, fmt.Errorf("containers: get alias: %w", err)
	}
	searched := fmt.Sprintf("alias %q", reference)
	if perr == nil {
		searched = fmt.Sprintf("reference %q (%s), ", ref.String(), a) + searched
	}
	return nil, imaged.Errorf(imaged.ENOTFOUND, "no live container image matches %s", searched)
}

// ResolveContainerImage finds the live image named by a reference and
// architecture, then by an alias; an image the caller may not see is
// ENOTFOUND.
func (s *Service) ResolveContainerImage(ctx context.Context, reference, arch string) (*imaged.ContainerImage, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	img, err := s.resolve(ctx, reference, arch)
	if err != nil {
		return nil, err
	}
	if s.check(id, img, imaged.ActionContainerRead) != nil {
		return nil, imaged.Errorf(imaged.ENOTFOUND, "no live container image matches %q", reference)
	}
	return img, nil
}

// change runs fn on image id (re-checking access and state inside the
// store's transaction) after a first check outside it; action names the
// audit entry.
func (s *Service) change(ctx context.Context, action, imageID string, op imaged.Action, detail map[string]any,
	fn func(*imaged.ContainerImage) error) (out *imaged.ContainerImage, err error) {
	defer func() { s.audit(ctx, action, imageID, err, detail) }()
	id, _, err := s.load(ctx, imageID, op)
	if err != nil {
		return nil, err
	}
	out, err = s.store.UpdateContainerImage(ctx, imageID, func(img *imaged.ContainerImage) error {
		if err := s.check(id, img, op); err != nil {
			return err
		}
		// If-Match is checked inside the serialised update, so that of
		// two conditional writers of one version only one wins.
		if err := imaged.CheckVersion(ctx, img.ID, img.Version); err != nil {
			return err
		}
		return fn(img)
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imageNotFound(imageID)
		}
		return nil, prefixed(err, "%s %s", op, imageID)
	}
	return out, nil
}

func errProtected(img *imaged.ContainerImage, op imaged.Action) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "container image %s is protected and cannot be %s; unprotect it first", img.ID, pastTense(op))
}

func pastTense(op imaged.Action) string {
	switch op {
	case imaged.ActionContainerForget:
		return "forgotten"
	case imaged.ActionContainerPurge:
		return "purged"
	case imaged.ActionContainerUntag:
		return "untagged"
	}
	return string(op) + "ed"
}

// forget is the soft delete of an alive image.
func forget(img *imaged.ContainerImage) error {
	if img.Status == imaged.ContainerForgotten {
		return imaged.Errorf(imaged.ECONFLICT, "container image %s is already forgotten (restore or purge it)", img.ID)
	}
	if img.Protected {
		return errProtected(img, imaged.ActionContainerForget)
	}
	img.Status = imaged.ContainerForgotten
	return nil
}

// ForgetContainerImage soft-deletes an alive image: it leaves listings
// and resolution; its row, aliases and settings stay until restored or
// purged. ECONFLICT if it is already forgotten.
func (s *Service) ForgetContainerImage(ctx context.Context, imageID string) (*imaged.ContainerImage, error) {
	return s.change(ctx, "container_image.forget", imageID, imaged.ActionContainerForget, nil, forget)
}

// ForgetContainerImageByReference forgets the live image a reference (or
// alias) resolves to; a forgotten image does not resolve (ENOTFOUND).
func (s *Service) ForgetContainerImageByReference(ctx context.Context, reference, arch string) (out *imaged.ContainerImage, err error) {
	id, err := caller(ctx)
	if err != nil {
		s.audit(ctx, "container_image.forget", reference, err, map[string]any{"architecture": arch})
		return nil, err
	}
	img, err := s.resolve(ctx, reference, arch)
	if err == nil && s.check(id, img, imaged.ActionContainerRead) != nil {
		err = imaged.Errorf(imaged.ENOTFOUND, "no live container image matches %q", reference)
	}
	if err != nil {
		s.audit(ctx, "container_image.forget", reference, err, map[string]any{"architecture": arch})
		return nil, err
	}
	return s.change(ctx, "container_image.forget", img.ID, imaged.ActionContainerForget,
		map[string]any{"reference": reference, "architecture": arch}, forget)
}

// RestoreContainerImage brings a forgotten image back alive. Owners of
// customized images may restore their own (Backend.AI #14601). ECONFLICT
// if it is not forgotten or a live image has taken its identity.
func (s *Service) RestoreContainerImage(ctx context.Context, imageID string) (*imaged.ContainerImage, error) {
	out, err := s.change(ctx, "container_image.restore", imageID, imaged.ActionContainerRestore, nil, func(img *imaged.ContainerImage) error {
		if img.Status != imaged.ContainerForgotten {
			return imaged.Errorf(imaged.ECONFLICT, "container image %s is not forgotten", img.ID)
		}
		img.Status = imaged.ContainerAlive
		return nil
	})
	if imaged.ErrorCode(err) == imaged.ECONFLICT && !strings.Contains(imaged.ErrorMessage(err), "is not forgotten") {
		return nil, fmt.Errorf("%w [cause: %w]", imaged.Errorf(imaged.ECONFLICT,
			"container image %s cannot be restored: a live image has the same reference and architecture (forget or purge it first)", imageID), err)
	}
	return out, err
}

// untag deletes, from the registry, the manifest img's tag points at:
// the index for an image of a multi-architecture index. A manifest
// already gone is success.
func (s *Service) untag(ctx context.Context, img *imaged.ContainerImage) (string, error) {
	reg, err := s.forClient(ctx, img.Registry)
	if err != nil {
		return "", err
	}
	digest := img.IndexDigest
	if digest == "" {
		digest = img.Digest
	}
	if digest == "" {
		return "", imaged.Errorf(imaged.ECONFLICT, "container image %s has no manifest digest to delete; rescan it first", img.ID)
	}
	if err := s.reg.DeleteManifest(ctx, reg, img.Repository, digest); err != nil && imaged.ErrorCode(err) != imaged.ENOTFOUND {
		return digest, prefixed(err, "registry %q refused to delete %s@%s", reg.Name, img.Repository, digest)
	}
	return digest, nil
}

// PurgeContainerImage hard-deletes an image in any status (Backend.AI
// could not purge forgotten ones), with its aliases. With untag it first
// deletes the tag's manifest from the registry (see the package doc) and
// deletes the row only if that worked: a registry that refuses leaves
// everything as it was (EREFUSED). Returns the image as it was.
func (s *Service) PurgeContainerImage(ctx context.Context, imageID string, untag bool) (out *imaged.ContainerImage, err error) {
	detail := map[string]any{"untag": untag}
	defer func() { s.audit(ctx, "container_image.purge", imageID, err, detail) }()
	id, img, err := s.load(ctx, imageID, imaged.ActionContainerPurge)
	if err != nil {
		return nil, err
	}
	if img.Protected {
		return nil, errProtected(img, imaged.ActionContainerPurge)
	}
	detail["reference"], detail["architecture"] = img.Reference, img.Architecture
	if err := imaged.CheckVersion(ctx, img.ID, img.Version); err != nil {
		return nil, err
	}
	if untag {
		d, err := s.untag(ctx, img)
		if d != "" {
			detail["deleted_manifest"] = d
		}
		if err != nil {
			return nil, err
		}
	}
	out, err = s.store.PurgeContainerImage(ctx, imageID, func(cur *imaged.ContainerImage) error {
		if err := s.check(id, cur, imaged.ActionContainerPurge); err != nil {
			return err
		}
		if cur.Protected {
			return errProtected(cur, imaged.ActionContainerPurge)
		}
		return imaged.CheckVersion(ctx, cur.ID, cur.Version)
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, imageNotFound(imageID)
		}
		return nil, prefixed(err, "purge %s", imageID)
	}
	return out, nil
}

// UntagContainerImage deletes the image's manifest from its registry
// (any registry type, through the OCI API) and leaves the row as it is;
// a later rescan no longer finds the tag. A registry that refuses
// deletion (HTTP 405: deletion disabled) is EREFUSED.
func (s *Service) UntagContainerImage(ctx context.Context, imageID string) (out *imaged.ContainerImage, err error) {
	detail := map[string]any{}
	defer func() { s.audit(ctx, "container_image.untag", imageID, err, detail) }()
	_, img, err := s.load(ctx, imageID, imaged.ActionContainerUntag)
	if err != nil {
		return nil, err
	}
	if img.Protected {
		return nil, errProtected(img, imaged.ActionContainerUntag)
	}
	if err := imaged.CheckVersion(ctx, img.ID, img.Version); err != nil {
		return nil, err
	}
	detail["reference"] = img.Reference
	d, err := s.untag(ctx, img)
	if d != "" {
		detail["deleted_manifest"] = d
	}
	if err != nil {
		return nil, err
	}
	return img, nil
}

// modifiable are the fields ModifyContainerImage's merge patch may set;
// immutable are the scanned facts and bookkeeping, named in the error.
var (
	modifiable = []string{"type", "labels", "resource_limits", "visibility", "protected", "tags"}
)

// ModifyContainerImage applies a JSON merge patch of type, labels (the
// whole map is replaced, validated; they are scanned facts, so the next
// scan of the tag overwrites them), resource_limits (whole map replaced,
// validated as SetResourceLimits; null clears), visibility, protected and
// tags (admins only, so only admins can set or change the customized
// owner label). Any other field, immutable facts (reference, digest,
// architecture, ...) included, is EINVALID, naming it.
func (s *Service) ModifyContainerImage(ctx context.Context, imageID string, patch map[string]any) (*imaged.ContainerImage, error) {
	detail := map[string]any{"fields": patchKeys(patch)}
	if err := checkModifyPatch(patch); err != nil {
		s.audit(ctx, "container_image.modify", imageID, err, detail)
		return nil, err
	}
	return s.change(ctx, "container_image.modify", imageID, imaged.ActionContainerModify, detail, func(img *imaged.ContainerImage) error {
		return applyModify(img, patch)
	})
}

func checkModifyPatch(patch map[string]any) error {
	if len(patch) == 0 {
		return imaged.Errorf(imaged.EINVALID, "the patch is empty")
	}
	var bad []string
	for k := range patch {
		if !slices.Contains(modifiable, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return imaged.Errorf(imaged.EINVALID, "fields %s cannot be modified (scanned facts and bookkeeping are immutable; modifiable: %s)",
			strings.Join(bad, ", "), strings.Join(modifiable, ", "))
	}
	return nil
}

// applyModify applies a checked patch to img.
func applyModify(img *imaged.ContainerImage, patch map[string]any) error {
	for _, k := range patchKeys(patch) {
		v := patch[k]
		switch k {
		case "type":
			t, ok := v.(string)
			switch imaged.ContainerImageType(t) {
			case imaged.ContainerTypeCompute, imaged.ContainerTypeSystem, imaged.ContainerTypeService:
			default:
				ok = false
			}
			if !ok {
				return imaged.Errorf(imaged.EINVALID, "type must be %q, %q or %q", imaged.ContainerTypeCompute, imaged.ContainerTypeSystem, imaged.ContainerTypeService)
			}
			img.Type = imaged.ContainerImageType(t)
		case "visibility":
			t, ok := v.(string)
			if !ok || !imaged.ValidVisibility(t) {
				return imaged.Errorf(imaged.EINVALID, "visibility must be public, community, shared or private")
			}
			img.Visibility = imaged.Visibility(t)
		case "protected":
			b, ok := v.(bool)
			if !ok {
				return imaged.Errorf(imaged.EINVALID, "protected must be a boolean")
			}
			img.Protected = b
		case "tags":
			tags, err := stringList(k, v)
			if err != nil {
				return err
			}
			for _, t := range tags {
				if t == "" || len(t) > 255 {
					return imaged.Errorf(imaged.EINVALID, "tags must be 1 to 255 characters long")
				}
			}
			slices.Sort(tags)
			img.Tags = slices.Compact(tags)
		case "labels":
			// RFC 7396: members merge into the current labels, a null
			// member removes one, and "labels": null removes them all.
			labels := map[string]string{}
			if v != nil {
				m, ok := v.(map[string]any)
				if !ok {
					return imaged.Errorf(imaged.EINVALID, "labels must be an object of strings")
				}
				for lk, lv := range img.Labels {
					labels[lk] = lv
				}
				for lk, lv := range m {
					if lv == nil {
						delete(labels, lk)
						continue
					}
					s, ok := lv.(string)
					if !ok {
						return imaged.Errorf(imaged.EINVALID, "label %s must be a string or null", lk)
					}
					labels[lk] = s
				}
			}
			if err := imaged.ValidateLabels(labels); err != nil {
				return err
			}
			img.Labels = labels
			img.Accelerators = imaged.AcceleratorsFromLabels(labels)
		case "resource_limits":
			// Merged per slot as labels are: a null slot clears it.
			var limits map[string]imaged.ResourceLimit
			if m, ok := v.(map[string]any); ok {
				limits = map[string]imaged.ResourceLimit{}
				for slot, l := range img.ResourceLimits {
					limits[slot] = l
				}
				set := map[string]any{}
				for slot, x := range m {
					if x == nil {
						delete(limits, slot)
					} else {
						set[slot] = x
					}
				}
				decoded, err := decodeLimits(set)
				if err != nil {
					return err
				}
				for slot, l := range decoded {
					limits[slot] = l
				}
			} else {
				var err error
				if limits, err = decodeLimits(v); err != nil {
					return err
				}
			}
			if err := checkLimits(img, limits); err != nil {
				return err
			}
			img.ResourceLimits = limits
		}
	}
	if _, ok := patch["labels"]; ok {
		// New labels may raise a minimum above the custom limits.
		if _, lim := patch["resource_limits"]; !lim {
			if err := checkLimits(img, img.ResourceLimits); err != nil {
				return err
			}
		}
	}
	return nil
}

func stringList(field string, v any) ([]string, error) {
	if v == nil {
		return []string{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		if ss, ok := v.([]string); ok {
			return slices.Clone(ss), nil
		}
		return nil, imaged.Errorf(imaged.EINVALID, "%s must be a list of strings", field)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, imaged.Errorf(imaged.EINVALID, "%s must be a list of strings", field)
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeLimits reads a resource_limits JSON value: {"slot": {"min":
// "...", "max": "..."}}; null is no custom limits.
func decodeLimits(v any) (map[string]imaged.ResourceLimit, error) {
	out := map[string]imaged.ResourceLimit{}
	if v == nil {
		return out, nil
	}
	if typed, ok := v.(map[string]imaged.ResourceLimit); ok {
		for k, l := range typed {
			out[k] = l
		}
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, imaged.Errorf(imaged.EINVALID, "resource_limits must be an object of {\"min\": ..., \"max\": ...} per slot")
	}
	for slot, e := range m {
		em, ok := e.(map[string]any)
		if !ok {
			return nil, imaged.Errorf(imaged.EINVALID, "resource limit %s must be an object with min and optional max", slot)
		}
		var l imaged.ResourceLimit
		for k, x := range em {
			var s string
			switch t := x.(type) {
			case string:
				s = t
			case float64:
				s = strconv.FormatFloat(t, 'f', -1, 64)
			case int:
				s = strconv.Itoa(t)
			case int64:
				s = strconv.FormatInt(t, 10)
			case json.Number:
				s = t.String()
			case nil:
			default:
				return nil, imaged.Errorf(imaged.EINVALID, "resource limit %s.%s must be a string or a number", slot, k)
			}
			switch k {
			case "min":
				l.Min = s
			case "max":
				l.Max = s
			default:
				return nil, imaged.Errorf(imaged.EINVALID, "resource limit %s has an unknown field %s (want min, max)", slot, k)
			}
		}
		out[slot] = l
	}
	return out, nil
}

// checkLimits validates custom limits for img: the shape and min <= max
// (numerically), and no custom min (or max) below a minimum the image's
// labels declare (Backend.AI #6532).
func checkLimits(img *imaged.ContainerImage, limits map[string]imaged.ResourceLimit) error {
	if err := imaged.ValidateResourceLimits(limits); err != nil {
		return err
	}
	for slot, l := range limits {
		lm, ok := img.Labels[imaged.LabelResourceMin+slot]
		if !ok {
			continue
		}
		for _, v := range []struct{ name, val string }{{"min", l.Min}, {"max", l.Max}} {
			if v.val == "" {
				continue
			}
			c, err := imaged.CompareResourceValues(slot, v.val, lm)
			if err != nil {
				continue // an unparseable label was refused at scan time
			}
			if c < 0 {
				return imaged.Errorf(imaged.EINVALID, "resource limit %s: %s %s is below the image's minimum %s (label %s%s)",
					slot, v.name, v.val, lm, imaged.LabelResourceMin, slot)
			}
		}
	}
	return nil
}

// SetResourceLimits replaces the custom limits (admins only), validated
// as checkLimits says.
func (s *Service) SetResourceLimits(ctx context.Context, imageID string, limits map[string]imaged.ResourceLimit) (*imaged.ContainerImage, error) {
	detail := map[string]any{"limits": limitsDetail(limits)}
	return s.change(ctx, "container_image.limits_set", imageID, imaged.ActionContainerModify, detail, func(img *imaged.ContainerImage) error {
		if err := checkLimits(img, limits); err != nil {
			return err
		}
		img.ResourceLimits = make(map[string]imaged.ResourceLimit, len(limits))
		for k, v := range limits {
			img.ResourceLimits[k] = v
		}
		return nil
	})
}

func limitsDetail(limits map[string]imaged.ResourceLimit) map[string]any {
	d := make(map[string]any, len(limits))
	for k, l := range limits {
		d[k] = map[string]any{"min": l.Min, "max": l.Max}
	}
	return d
}

// ClearResourceLimits removes the custom limits (admins only); the label
// minimums and defaults remain. Idempotent.
func (s *Service) ClearResourceLimits(ctx context.Context, imageID string) (*imaged.ContainerImage, error) {
	return s.change(ctx, "container_image.limits_clear", imageID, imaged.ActionContainerModify, nil, func(img *imaged.ContainerImage) error {
		img.ResourceLimits = map[string]imaged.ResourceLimit{}
		return nil
	})
}

// Bulk runs "forget", "restore" or "purge" (without untag) on each id
// independently, each checked and audited as the single operation, and
// reports every outcome. EINVALID for another op, no ids or more than
// MaxBulk; duplicate ids are done once.
func (s *Service) Bulk(ctx context.Context, op string, ids []string) (*imaged.BulkResult, error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	var do func(string) error
	switch op {
	case "forget":
		do = func(id string) error { _, err := s.ForgetContainerImage(ctx, id); return err }
	case "restore":
		do = func(id string) error { _, err := s.RestoreContainerImage(ctx, id); return err }
	case "purge":
		do = func(id string) error { _, err := s.PurgeContainerImage(ctx, id, false); return err }
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "unknown bulk operation %q: want forget, restore or purge", op)
	}
	if len(ids) == 0 {
		return nil, imaged.Errorf(imaged.EINVALID, "no image ids given")
	}
	if len(ids) > MaxBulk {
		return nil, imaged.Errorf(imaged.EINVALID, "at most %d image ids per bulk operation, got %d", MaxBulk, len(ids))
	}
	res := &imaged.BulkResult{Successful: []string{}, Failed: []imaged.BulkFailure{}}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := ctx.Err(); err != nil {
			res.Failed = append(res.Failed, imaged.BulkFailure{ID: id, Code: imaged.EUNAVAILABLE, Error: "the request was cancelled before this image"})
			continue
		}
		if err := do(id); err != nil {
			if imaged.ErrorCode(err) == imaged.EINTERNAL {
				s.log.ErrorContext(ctx, "containers: bulk item failed", "op", op, "image_id", id, "err", err)
			}
			res.Failed = append(res.Failed, imaged.BulkFailure{ID: id, Code: imaged.ErrorCode(err), Error: imaged.ErrorMessage(err)})
			continue
		}
		res.Successful = append(res.Successful, id)
	}
	return res, nil
}
