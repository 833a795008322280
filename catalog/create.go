package catalog

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/imaged/imaged"
)

// Attribute lists of Glance 25.1's images API (RequestDeserializer and
// ImageFactory), kept in Glance's order because the first match is reported.
var (
	// disallowedOnCreate are refused before schema validation.
	disallowedOnCreate = []string{"direct_url", "self", "file", "schema", "stores"}
	// readonlyOnCreate are refused by the image factory after validation.
	readonlyOnCreate = []string{"created_at", "updated_at", "status", "checksum",
		"os_hash_algo", "os_hash_value", "size", "virtual_size"}
	// readonlyOnPatch are refused by the patch deserializer.
	readonlyOnPatch = []string{"created_at", "updated_at", "status", "checksum",
		"size", "virtual_size", "direct_url", "self", "file", "schema", "id",
		"os_hash_algo", "os_hash_value"}
	// reservedAttrs are refused by both deserializers.
	reservedAttrs = []string{"location", "deleted", "deleted_at"}
	// reservedByFactory are additional properties the image factory refuses.
	reservedByFactory = []string{"owner", "locations", "deleted", "deleted_at",
		"direct_url", "self", "file", "schema"}
	// baseAttrs are the attributes that are not additional properties.
	baseAttrs = map[string]bool{"checksum": true, "created_at": true, "container_format": true,
		"disk_format": true, "id": true, "min_disk": true, "min_ram": true, "name": true,
		"size": true, "virtual_size": true, "status": true, "tags": true, "owner": true,
		"updated_at": true, "visibility": true, "protected": true, "os_hidden": true}
)

// reservedNamespace is Glance's GLANCE_RESERVED_NS: properties Glance sets
// itself.
const reservedNamespace = "os_glance"

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isReserved says whether an attribute name is refused as "reserved" by
// the deserializers.
func isReserved(key string) bool {
	return contains(reservedAttrs, key) || strings.HasPrefix(key, reservedNamespace)
}

func errReadOnly(key string) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is read-only.", key)
}

func errReserved(key string) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "Attribute '%s' is reserved.", key)
}

func errNegative(param string, v int64) error {
	return imaged.Errorf(imaged.EINVALID, "Invalid value '%d' for parameter '%s': Cannot be a negative value", v, param)
}

func errPropertyQuota(attempted, max int) error {
	return imaged.Errorf(imaged.ETOOLARGE, "The limit has been exceeded on the number of allowed image properties. Attempted: %d, Maximum: %d", attempted, max)
}

func errTagQuota(attempted, max int) error {
	return imaged.Errorf(imaged.ETOOLARGE, "The limit has been exceeded on the number of allowed image tags. Attempted: %d, Maximum: %d", attempted, max)
}

// pyOwner renders an owner as Glance's messages do (None for none).
func pyOwner(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return "None"
}

// CreateImage creates an image from the decoded attributes of a create
// request, checking them in Glance's order.
func (s *Service) CreateImage(ctx context.Context, attrs map[string]any) (*imaged.Image, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range disallowedOnCreate {
		if _, ok := attrs[k]; ok {
			return nil, errReadOnly(k)
		}
	}
	if err := s.schema.validateAll(attrs); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(attrs) {
		if baseAttrs[k] {
			continue
		}
		if utf8.RuneCountInString(k) > 255 {
			return nil, imaged.Errorf(imaged.EINVALID, "Custom property should not be greater than 255 characters.")
		}
		if isReserved(k) {
			return nil, errReserved(k)
		}
	}

	// Policy: add_image on the proposed owner, then the visibility rules.
	ownerV, ownerGiven := attrs["owner"]
	owner := id.ProjectID
	if ownerGiven {
		owner, _ = ownerV.(string)
	}
	vis := imaged.VisibilityPrivate // Glance's create-time target
	if v, ok := attrs["visibility"].(string); ok {
		vis = imaged.Visibility(v)
	}
	t := imaged.PolicyTarget{Owner: owner, Visibility: vis}
	// Glance compares the requested owner with the caller's project,
	// None (null, or no project) being equal only to None.
	givenStr, isStr := ownerV.(string)
	sameOwner := isStr && id.ProjectID != "" && givenStr == id.ProjectID || !isStr && id.ProjectID == ""
	ownerMismatch := ownerGiven && !sameOwner && !s.pol.IsAdmin(id)
	if s.secure {
		if !s.pol.Allow(id, imaged.ActionAddImage, t) {
			if ownerMismatch {
				return nil, imaged.Errorf(imaged.EFORBIDDEN, "You are not permitted to create images owned by '%s'", pyOwner(ownerV))
			}
			return nil, notAuthorized(imaged.ActionAddImage)
		}
		if err := s.enforceVisibility(id, vis, t); err != nil {
			return nil, err
		}
	} else {
		// Legacy: the add_image rule is open; the visibility rules come
		// first, then check_admin_or_same_owner (which the legacy
		// policy folds into add_image).
		if err := s.enforceVisibility(id, vis, t); err != nil {
			return nil, err
		}
		if ownerMismatch {
			return nil, imaged.Errorf(imaged.EFORBIDDEN, "You are not permitted to create images owned by '%s'.", pyOwner(ownerV))
		}
		if !s.pol.Allow(id, imaged.ActionAddImage, t) {
			return nil, notAuthorized(imaged.ActionAddImage)
		}
	}

	for _, k := range readonlyOnCreate {
		if _, ok := attrs[k]; ok {
			return nil, errReadOnly(k)
		}
	}
	for _, k := range reservedByFactory {
		if baseAttrs[k] {
			continue
		}
		if _, ok := attrs[k]; ok {
			return nil, errReserved(k)
		}
	}

	if err := s.checkImageCount(ctx, id.ProjectID); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	img := &imaged.Image{
		ID:         uuid.NewString(),
		Status:     imaged.StatusQueued,
		Visibility: imaged.VisibilityShared,
		Owner:      owner,
		CreatedAt:  now,
		UpdatedAt:  now,
		Properties: map[string]string{},
		Tags:       []string{},
	}
	for _, k := range sortedKeys(attrs) {
		v := attrs[k]
		switch k {
		case "id":
			img.ID = v.(string)
		case "owner":
			// set above
		case "tags":
			img.Tags = normTags(v.([]any))
		default:
			if err := setBase(img, k, v); err != nil {
				return nil, err
			}
			if !baseAttrs[k] {
				setProperty(img, k, v)
			}
		}
	}
	if q := s.cfg.ImagePropertyQuota; q >= 0 && len(img.Properties) > q {
		return nil, errPropertyQuota(len(img.Properties), q)
	}
	if q := s.cfg.ImageTagQuota; q >= 0 && len(img.Tags) > q {
		return nil, errTagQuota(len(img.Tags), q)
	}
	if err := s.store.CreateImage(ctx, img); err != nil {
		if imaged.ErrorCode(err) == imaged.ECONFLICT {
			return nil, imaged.Errorf(imaged.ECONFLICT, "Image ID %s already exists!", img.ID)
		}
		return nil, fmt.Errorf("catalog: create image: %w", err)
	}
	return img, nil
}

// enforceVisibility is Glance's _enforce_image_visibility: public needs
// publicize_image, community communitize_image.
func (s *Service) enforceVisibility(id *imaged.Identity, v imaged.Visibility, t imaged.PolicyTarget) error {
	var action imaged.Action
	switch v {
	case imaged.VisibilityPublic:
		action = imaged.ActionPublicizeImage
	case imaged.VisibilityCommunity:
		action = imaged.ActionCommunitizeImage
	default:
		return nil
	}
	if !s.pol.Allow(id, action, t) {
		return notAuthorized(action)
	}
	return nil
}

// normTags returns the unique tags of a validated JSON array, sorted.
func normTags(vals []any) []string {
	set := make(map[string]bool, len(vals))
	tags := make([]string, 0, len(vals))
	for _, v := range vals {
		s := v.(string)
		if !set[s] {
			set[s] = true
			tags = append(tags, s)
		}
	}
	sort.Strings(tags)
	return tags
}

// setProperty stores a validated additional property. A null (allowed only
// for the schema's nullable custom properties) removes it: the store keeps
// strings only.
func setProperty(img *imaged.Image, k string, v any) {
	if s, ok := v.(string); ok {
		img.Properties[k] = s
	} else {
		delete(img.Properties, k)
	}
}

// setBase sets a validated base attribute with the checks of Glance's
// domain setters; it ignores names that are not settable base attributes.
func setBase(img *imaged.Image, k string, v any) error {
	switch k {
	case "name":
		if v == nil {
			img.Name = nil
		} else {
			n := v.(string)
			img.Name = &n
		}
	case "visibility":
		img.Visibility = imaged.Visibility(v.(string))
	case "protected":
		img.Protected = v.(bool)
	case "os_hidden":
		img.OSHidden = v.(bool)
	case "min_disk", "min_ram":
		n := asInt64(v)
		if n < 0 {
			return errNegative(k, n)
		}
		// Glance's columns are 32-bit integers; it refuses larger values.
		if n > math.MaxInt32 {
			return imaged.Errorf(imaged.EINVALID, "'%s' value out of range, must not exceed %d.", k, math.MaxInt32)
		}
		if k == "min_disk" {
			img.MinDisk = n
		} else {
			img.MinRAM = n
		}
	case "disk_format", "container_format":
		f, _ := v.(string)
		if k == "disk_format" {
			img.DiskFormat = f
		} else {
			img.ContainerFormat = f
		}
	case "owner":
		o, _ := v.(string)
		img.Owner = o
	}
	return nil
}
