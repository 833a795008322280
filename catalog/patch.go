package catalog

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/imaged/imaged"
)

// change is one parsed and validated patch operation.
type change struct {
	op        string   // add, remove, replace
	path      []string // decoded JSON-pointer tokens
	value     any
	noReplace bool // openstack-images-v2.0-json-patch: add may not replace
}

func (c change) root() string { return c.path[0] }

const supportedOps = "add, remove, replace"

// pathDepth is Glance's _path_depth_limits: only locations take a second
// token (an index or "-") and only for add and remove.
func pathDepth(op, root string) int {
	if root == "locations" && (op == "add" || op == "remove") {
		return 2
	}
	return 1
}

var (
	adjacentSlashRE = regexp.MustCompile(`/\s*?/`)
	badTildeRE      = regexp.MustCompile(`~[^01]`)
)

// decodePointer validates and decodes a JSON pointer as Glance does (its
// restricted form: no adjacent or trailing slashes, only ~0 and ~1, tokens
// stripped of surrounding white space).
func decodePointer(p string) ([]string, error) {
	bad := func(format string) error {
		return imaged.Errorf(imaged.EINVALID, format, p)
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, bad("Pointer `%s` does not start with \"/\".")
	case adjacentSlashRE.MatchString(p[1:]):
		return nil, bad("Pointer `%s` contains adjacent \"/\".")
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, bad("Pointer `%s` end with \"/\".")
	case strings.TrimSpace(p[1:]) == "/":
		return nil, bad("Pointer `%s` does not contains valid token.")
	case badTildeRE.MatchString(p) || strings.HasSuffix(p, "~"):
		return nil, bad("Pointer `%s` contains \"~\" not part of a recognized escape sequence.")
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, part := range parts {
		part = strings.ReplaceAll(part, "~1", "/")
		part = strings.ReplaceAll(part, "~0", "~")
		parts[i] = strings.TrimSpace(part)
	}
	return parts, nil
}

// parseOps is Glance's patch deserializer: it checks every operation before
// the image is looked at, so these errors win over a 404.
func (s *Service) parseOps(ops []imaged.PatchOp) ([]change, error) {
	changes := make([]change, 0, len(ops))
	for _, o := range ops {
		switch o.Op {
		case "add", "remove", "replace":
		case "":
			if o.NoReplaceOnAdd {
				return nil, imaged.Errorf(imaged.EINVALID, "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
			}
			return nil, imaged.Errorf(imaged.EINVALID, "Unable to find `op` in JSON Schema change. It must be one of the following: %s.", supportedOps)
		default:
			if o.NoReplaceOnAdd {
				return nil, imaged.Errorf(imaged.EINVALID, "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
			}
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid operation: `%s`. It must be one of the following: %s.", o.Op, supportedOps)
		}
		path, err := decodePointer(o.Path)
		if err != nil {
			return nil, err
		}
		if len(path) != pathDepth(o.Op, path[0]) {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid JSON pointer for this resource: '/%s'", strings.Join(path, "/"))
		}
		c := change{op: o.Op, path: path, noReplace: o.NoReplaceOnAdd}
		if o.Op != "remove" {
			if !o.HasValue {
				return nil, imaged.Errorf(imaged.EINVALID, "Operation \"%s\" requires a member named \"value\".", o.Op)
			}
			c.value = o.Value
		}
		if err := s.validateChange(c); err != nil {
			return nil, err
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// validateChange is Glance's _validate_change: read-only and reserved
// names, then the schema on the one attribute the change sets.
func (s *Service) validateChange(c change) error {
	root := c.root()
	if contains(readonlyOnPatch, root) {
		return errReadOnly(root)
	}
	if isReserved(root) {
		return errReserved(root)
	}
	if c.op == "remove" {
		return nil
	}
	if root == "locations" {
		return validateLocationChange(c)
	}
	if len(c.path) == 1 {
		return s.schema.validate(root, c.value)
	}
	if p, ok := s.schema.props[root]; ok && len(p.types) == 1 && p.types[0] == "array" {
		return s.schema.validate(root, []any{c.value})
	}
	return nil
}

// attrNames are the names Glance's domain image has as attributes
// (hasattr): a remove of one of them is refused. Names that only Python
// code sees (methods, internals) are included so that they cannot be
// removed either.
var attrNames = map[string]bool{
	"name": true, "visibility": true, "os_hidden": true, "min_disk": true, "min_ram": true,
	"protected": true, "locations": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "owner": true, "disk_format": true, "container_format": true,
	"size": true, "virtual_size": true, "tags": true, "status": true, "created_at": true,
	"updated_at": true, "image_id": true, "member": true, "extra_properties": true,
	"delete": true, "deactivate": true, "reactivate": true, "get_data": true, "set_data": true,
}

// settable are the base attributes a patch may set.
var settable = map[string]bool{
	"name": true, "visibility": true, "os_hidden": true, "min_disk": true, "min_ram": true,
	"protected": true, "owner": true, "disk_format": true, "container_format": true, "tags": true,
}

// UpdateImage applies a JSON-Patch with Glance's semantics, atomically:
// the operations run inside the store's serialised update on the latest
// image, and any error leaves the image as it was.
func (s *Service) UpdateImage(ctx context.Context, imageID string, ops []imaged.PatchOp) (*imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	changes, err := s.parseOps(ops)
	if err != nil {
		return nil, err
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", imageID)
	}
	if len(changes) == 0 {
		return img, imaged.CheckIfMatch(ctx, img)
	}
	lo, err := s.prepareLocations(ctx, id, img, changes)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out, err := s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		// Inside the serialised update: an If-Match sees the version
		// this update replaces.
		if err := imaged.CheckIfMatch(ctx, img); err != nil {
			return err
		}
		lo.removed = nil // fn may run again
		if err := s.applyChanges(id, img, changes, lo); err != nil {
			return err
		}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			// Deleted between the look-up and the update.
			return nil, imaged.Errorf(imaged.ENOTFOUND, "No image found with ID %s", imageID)
		}
		return nil, fmt.Errorf("catalog: update image %s: %w", imageID, err)
	}
	s.dropRemovedBytes(ctx, out, lo.removed)
	return out, nil
}

// applyChanges runs parsed changes on img for id, then Glance's checks at
// save (quotas, the caller still seeing the image).
func (s *Service) applyChanges(id *imaged.Identity, img *imaged.Image, changes []change, lo *locPlan) error {
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	oldOwner := img.Owner
	for _, c := range changes {
		var err error
		switch {
		case c.root() == "locations":
			err = s.applyLocationChange(id, img, c, lo)
		case c.op == "replace":
			err = s.doReplace(id, img, c)
		case c.op == "add":
			err = s.doAdd(id, img, c)
		case c.op == "remove":
			err = s.doRemove(id, img, c)
		}
		if err != nil {
			return err
		}
	}
	if q := s.cfg.ImagePropertyQuota; q >= 0 && len(img.Properties) > q {
		return errPropertyQuota(len(img.Properties), q)
	}
	if q := s.cfg.ImageTagQuota; q >= 0 && len(img.Tags) > q {
		return errTagQuota(len(img.Tags), q)
	}
	// "add /owner" skips Glance's admin check, but its database layer
	// refuses to save an image the caller could no longer see.
	if img.Owner != oldOwner && !s.pol.IsAdmin(id) && img.Owner != "" &&
		img.Owner != id.ProjectID && img.Visibility != imaged.VisibilityPublic &&
		img.Visibility != imaged.VisibilityCommunity {
		return imaged.Errorf(imaged.EFORBIDDEN, "Forbidding request, image %s not visible", img.ID)
	}
	return nil
}

const msgNotOwner = "You do not own this image"

// updateProperty is Glance's ImageAPIPolicy.update_property.
func (s *Service) updateProperty(id *imaged.Identity, img *imaged.Image, name string, value any) error {
	if name == "visibility" {
		v, _ := value.(string)
		if err := s.enforceVisibility(id, imaged.Visibility(v), target(id, img)); err != nil {
			return err
		}
	}
	return s.enforce(id, imaged.ActionModifyImage, img, msgNotOwner)
}

func (s *Service) doReplace(id *imaged.Identity, img *imaged.Image, c change) error {
	root := c.root()
	switch {
	case root == "owner" && !s.pol.IsAdmin(id):
		return imaged.Detailf(imaged.EFORBIDDEN, "Owner can't be updated by non admin.")
	}
	if err := s.updateProperty(id, img, root, c.value); err != nil {
		return err
	}
	if settable[root] {
		return setAttr(img, root, c.value)
	}
	if _, ok := img.Properties[root]; ok {
		setProperty(img, root, c.value)
		return nil
	}
	return imaged.Errorf(imaged.ECONFLICT, "Property %s does not exist.", root)
}

func (s *Service) doAdd(id *imaged.Identity, img *imaged.Image, c change) error {
	root := c.root()
	if err := s.updateProperty(id, img, root, c.value); err != nil {
		return err
	}
	_, exists := img.Properties[root]
	if c.noReplace && (attrNames[root] || exists) {
		return imaged.Detailf(imaged.ECONFLICT, "Property %s already present.", root)
	}
	if settable[root] {
		return setAttr(img, root, c.value)
	}
	setProperty(img, root, c.value)
	return nil
}

func (s *Service) doRemove(id *imaged.Identity, img *imaged.Image, c change) error {
	root := c.root()
	if err := s.updateProperty(id, img, root, nil); err != nil {
		return err
	}
	if attrNames[root] {
		return imaged.Detailf(imaged.EFORBIDDEN, "Property %s may not be removed.", root)
	}
	if _, ok := img.Properties[root]; ok {
		delete(img.Properties, root)
		return nil
	}
	return imaged.Detailf(imaged.ECONFLICT, "Property %s does not exist.", root)
}

// setAttr sets a base attribute on an existing image, with the checks of
// Glance's domain setters.
func setAttr(img *imaged.Image, k string, v any) error {
	switch k {
	case "disk_format", "container_format":
		// Glance's setters refuse any assignment, even of the same
		// value, once the image has data.
		if img.Status != imaged.StatusQueued && img.Status != imaged.StatusImporting {
			return imaged.Errorf(imaged.EFORBIDDEN, "Attribute %s can be only replaced for a queued image.", k)
		}
	case "tags":
		img.Tags = normTags(v.([]any))
		return nil
	}
	return setBase(img, k, v)
}

// isEmpty is Python's "not value" for a decoded JSON value.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
