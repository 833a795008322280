package catalog

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// Locations, as Glance 25.1 with show_multiple_locations and
// show_image_direct_url (Config.ShowMultipleLocations/ShowImageDirectURL):
//
//   - Image responses carry "locations" (and "direct_url", the first
//     location) when configured; a caller the get_image_location policy
//     refuses sees "locations": [] and no direct_url.
//   - JSON-Patch adds (/locations/N, /locations/-), removes and replaces
//     (/locations, the whole list) locations with Glance's checks, in its
//     order and words (set_image_location, delete_image_location, status,
//     validation_data, position, URL, duplicates, last location).
//   - Bytes in imaged's blob stores are kept under internal blob:///<key>
//     URLs; clients see them as Glance's file store shows its files,
//     file://<store directory>/<key>, and may send them back as such.
//   - A new location must name bytes a store of this site can read, and
//     Glance refuses local files (file://, filesystem://) for security, so
//     the only locations a client can add are http(s):// URLs, and only
//     when the catalog has a fetcher for them (WithLocationFetcher: the
//     SSRF-guarded web-download client, which also measures their size, as
//     Glance's http store does). Downloads read such images through it.
//   - container images (container_format docker) carry docker:// locations
//     written by the container store: they are rendered as they are and
//     never deleted from any store here.

// WithLocationFetcher returns a copy of s that accepts http(s) locations,
// sized and read through f (Glance's http store).
func (s *Service) WithLocationFetcher(f imaged.URLFetcher) *Service {
	cp := *s
	cp.extLoc = f
	return &cp
}

var _ imaged.LocationService = (*Service)(nil)

// ShowLocations reports show_multiple_locations and show_image_direct_url.
func (s *Service) ShowLocations() (multiple, directURL bool) {
	return s.cfg.ShowMultipleLocations, s.cfg.ShowImageDirectURL
}

// ImageLocations returns img's locations as the caller sees them: nothing
// when get_image_location refuses (Glance's proxy raises Forbidden and its
// view renders an empty list), else every location with its public URL.
func (s *Service) ImageLocations(ctx context.Context, img *imaged.Image) []imaged.Location {
	id := imaged.IdentityFromContext(ctx)
	if id == nil || len(img.Locations) == 0 || !s.pol.Allow(id, imaged.ActionGetImageLocation, target(id, img)) {
		return []imaged.Location{}
	}
	out := make([]imaged.Location, len(img.Locations))
	for i, l := range img.Locations {
		out[i] = l
		out[i].URL = s.publicURL(l)
	}
	return out
}

// filePather is a blob store that keeps each blob in a local file
// (blob/fs), whose locations clients see as file:// URLs of that file, as
// Glance's file store shows them (and as Nova's file direct download
// reads them on a shared filesystem).
type filePather interface{ Path(key string) string }

// rooted is a directory store without per-key paths: its locations show
// as file://<root>/<key>.
type rooted interface{ Root() string }

// publicURL is the URL a client sees for a location: blob:///<key> in a
// directory store is the file:// URL of its file.
func (s *Service) publicURL(l imaged.Location) string {
	key, ok := strings.CutPrefix(l.URL, locationURL)
	if !ok {
		return l.URL
	}
	switch b := s.lookupStore(locationStore(l)).(type) {
	case filePather:
		return "file://" + b.Path(key)
	case rooted:
		return "file://" + filepath.Join(b.Root(), filepath.FromSlash(key))
	}
	return l.URL
}

// internalURL maps a URL a client sent back to the stored form of one of
// the image's locations (the inverse of publicURL), so that a replace of
// the same list is recognised; other URLs stay as they are.
func (s *Service) internalURL(img *imaged.Image, u string) string {
	for _, l := range img.Locations {
		if l.URL != u && s.publicURL(l) == u {
			return l.URL
		}
	}
	return u
}

// newLoc is one location of a patch value, checked by validateLocationValue.
type newLoc struct {
	loc imaged.Location
	// md is the metadata as sent, for the duplicate check and messages.
	md  map[string]any
	val map[string]any // validation_data; nil = none
}

// validateLocationValue is the image schema's check of a location object
// (the "locations" items): url a string of at most 255 characters,
// metadata an object, both required; validation_data an object of
// checksum, os_hash_algo and os_hash_value (required, as strings of their
// lengths). Messages are jsonschema's first line.
func validateLocationValue(v any) error {
	bad := func(format string, args ...any) error {
		return imaged.Errorf(imaged.EINVALID, "Provided object does not match schema 'image': "+format, args...)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return bad("%s is not of type 'object'", pyRepr(v))
	}
	for _, k := range []string{"url", "metadata"} {
		if _, ok := m[k]; !ok {
			return bad("'%s' is a required property", k)
		}
	}
	u, ok := m["url"].(string)
	if !ok {
		return bad("%s is not of type 'string'", pyRepr(m["url"]))
	}
	if n := len([]rune(u)); n > 255 {
		return bad("%s is too long", pyRepr(u))
	}
	if _, ok := m["metadata"].(map[string]any); !ok {
		return bad("%s is not of type 'object'", pyRepr(m["metadata"]))
	}
	vd, has := m["validation_data"]
	if !has {
		return nil
	}
	vm, ok := vd.(map[string]any)
	if !ok {
		return bad("%s is not of type 'object'", pyRepr(vd))
	}
	keys := make([]string, 0, len(vm))
	for k := range vm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case "checksum", "os_hash_algo", "os_hash_value":
		default:
			return bad("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	// jsonschema's best match is the shallowest error: a missing key
	// before a bad value.
	for _, k := range []string{"os_hash_algo", "os_hash_value"} {
		if _, ok := vm[k]; !ok {
			return bad("'%s' is a required property", k)
		}
	}
	limits := map[string][2]int{"checksum": {32, 32}, "os_hash_algo": {0, 64}, "os_hash_value": {0, 128}}
	for _, k := range []string{"checksum", "os_hash_algo", "os_hash_value"} {
		x, ok := vm[k]
		if !ok {
			continue
		}
		sv, ok := x.(string)
		if !ok {
			return bad("%s is not of type 'string'", pyRepr(x))
		}
		n := len([]rune(sv))
		if n < limits[k][0] {
			return bad("%s is too short", pyRepr(sv))
		}
		if n > limits[k][1] {
			return bad("%s is too long", pyRepr(sv))
		}
	}
	return nil
}

// parseLoc turns a location object (already schema-checked) into a
// location. Metadata values must be strings here: imaged keeps metadata
// as a string map (Glance accepts nested objects and lists and fails with
// a 500 on numbers).
func parseLoc(v any) (newLoc, error) {
	m := v.(map[string]any)
	md := m["metadata"].(map[string]any)
	out := newLoc{md: md, loc: imaged.Location{URL: m["url"].(string), Metadata: make(map[string]string, len(md))}}
	for k, x := range md {
		sv, ok := x.(string)
		if !ok {
			return newLoc{}, imaged.Errorf(imaged.EINVALID, "The image metadata key %s has an invalid type of %s. Only unicode is supported.", k, pyType(x))
		}
		out.loc.Metadata[k] = sv
	}
	out.loc.Store = out.loc.Metadata["store"]
	if vd, ok := m["validation_data"].(map[string]any); ok {
		out.val = vd
	}
	return out, nil
}

// pyType is Python's type name of a decoded JSON value.
func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case float64:
		return "float"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return "str"
}

// errLocationsHidden is Glance's answer to a location change when
// show_multiple_locations is off.
func errLocationsHidden(verb string) error {
	return imaged.Errorf(imaged.EFORBIDDEN, "It's not allowed to %s locations if locations are invisible.", verb)
}

// locationsHidden is the whole answer with show_multiple_locations off:
// the policy first, then the refusal.
func (s *Service) locationsHidden(id *imaged.Identity, img *imaged.Image, action imaged.Action, verb string) error {
	if err := s.enforce(id, action, img, msgNotOwner); err != nil {
		return err
	}
	return errLocationsHidden(verb)
}

// validationData is Glance's _validate_validation_data: the values the
// locations bring must agree with each other and with the image, and may
// only set hashes on a queued image; it returns the values to set.
func validationData(img *imaged.Image, locs []newLoc) (map[string]string, error) {
	val := map[string]string{}
	order := []string{}
	for _, l := range locs {
		for _, k := range []string{"checksum", "os_hash_algo", "os_hash_value"} {
			x, ok := l.val[k]
			if !ok {
				continue
			}
			v := x.(string)
			if old, seen := val[k]; seen && old != v {
				return nil, imaged.Errorf(imaged.ECONFLICT, "Conflicting values for %s", k)
			}
			if _, seen := val[k]; !seen {
				order = append(order, k)
			}
			val[k] = v
		}
	}
	current := map[string]string{"checksum": img.Checksum, "os_hash_algo": img.OSHashAlgo, "os_hash_value": img.OSHashValue}
	newVal := map[string]string{}
	var newKeys []string
	for _, k := range order {
		v := val[k]
		if v == current[k] {
			continue
		}
		if current[k] != "" {
			return nil, imaged.Errorf(imaged.ECONFLICT, "%s is already set with a different value", k)
		}
		newVal[k] = v
		newKeys = append(newKeys, k)
	}
	if len(newVal) == 0 {
		return nil, nil
	}
	if img.Status != imaged.StatusQueued {
		return nil, imaged.Errorf(imaged.ECONFLICT, "New value(s) for %s may only be provided when image status is 'queued'", strings.Join(newKeys, ", "))
	}
	if cs, ok := newVal["checksum"]; ok {
		b, err := hex.DecodeString(cs)
		if err != nil {
			return nil, imaged.Errorf(imaged.ECONFLICT, "checksum (%s) is not a valid hexadecimal value", cs)
		}
		if len(b) != 16 {
			return nil, imaged.Errorf(imaged.ECONFLICT, "checksum (%s) is not the correct size for md5 (should be 16 bytes)", cs)
		}
	}
	algo, hasAlgo := newVal["os_hash_algo"]
	if algo != hashAlgo {
		got := "None"
		if hasAlgo {
			got = algo
		}
		return nil, imaged.Errorf(imaged.ECONFLICT, "os_hash_algo must be %s, not %s", hashAlgo, got)
	}
	hv := newVal["os_hash_value"]
	b, err := hex.DecodeString(hv)
	if err != nil {
		return nil, imaged.Errorf(imaged.ECONFLICT, "os_hash_value (%s) is not a valid hexadecimal value", hv)
	}
	if len(b) != sha512.Size {
		return nil, imaged.Errorf(imaged.ECONFLICT, "os_hash_value (%s) is not the correct size for %s (should be %d bytes)", hv, hashAlgo, sha512.Size)
	}
	return newVal, nil
}

// applyValidation sets the hashes validation_data brought.
func applyValidation(img *imaged.Image, val map[string]string) {
	for k, v := range val {
		switch k {
		case "checksum":
			img.Checksum = v
		case "os_hash_algo":
			img.OSHashAlgo = v
		case "os_hash_value":
			img.OSHashValue = v
		}
	}
}

// locationPos is Glance's _get_locations_op_pos: "-" or digits; without
// allowMax the position must name an existing location.
func locationPos(token string, n int, allowMax bool) (int, bool) {
	pos := n
	if !allowMax {
		pos = n - 1
	}
	if token != "" && strings.Trim(token, "0123456789") == "" {
		v, err := strconv.Atoi(token)
		if err != nil {
			return 0, false
		}
		pos = v
	} else if token != "-" {
		return 0, false
	}
	if !allowMax && (pos < 0 || pos >= n) {
		return 0, false
	}
	return pos, true
}

// checkLocation is Glance's _check_image_location: a URL of a scheme a
// store of this site reads, not a local file, and naming bytes (a size
// above zero). It returns the size.
func (s *Service) checkLocation(ctx context.Context, l imaged.Location) (int64, error) {
	invalid := imaged.Errorf(imaged.EINVALID, "Invalid location")
	u, err := url.Parse(l.URL)
	if err != nil {
		return 0, invalid
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		// file:// and filesystem:// are Glance's restricted schemes;
		// blob:// is imaged's internal one and docker:// is written by
		// the container store only: no client may point an image there.
		return 0, invalid
	}
	if s.extLoc == nil || u.Host == "" {
		return 0, invalid
	}
	body, size, err := s.extLoc.Fetch(ctx, l.URL)
	if err != nil {
		s.log.Info("refusing a location", "url", redactURL(u), "err", err)
		return 0, invalid
	}
	_ = body.Close()
	if size <= 0 {
		return 0, invalid
	}
	return size, nil
}

// redactURL drops credentials and the query from a URL for logs.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// sameLoc is Glance's duplicate test: same URL and same metadata.
func sameLoc(a, b imaged.Location) bool {
	if a.URL != b.URL || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func errDuplicateLocation(u string) error {
	return imaged.Errorf(imaged.EINVALID, "The location %s already exists", u)
}

// locPlan is a patch's location changes: the new URLs checked outside
// the store's transaction (the checks talk to the network) and the
// locations removed inside it, whose bytes go once it is committed.
type locPlan struct {
	sizes   map[string]int64 // URL -> size (<= 0: refused), for the locations checked
	removed []imaged.Location
}

// validateLocationChange is the schema's check of a change of
// /locations: a list of location objects, or one for /locations/N.
func validateLocationChange(c change) error {
	if c.op == "remove" {
		return nil
	}
	if len(c.path) == 2 {
		return validateLocationValue(c.value)
	}
	list, ok := c.value.([]any)
	if !ok {
		return imaged.Errorf(imaged.EINVALID, "Provided object does not match schema 'image': %s is not of type 'array'", pyRepr(c.value))
	}
	for _, v := range list {
		if err := validateLocationValue(v); err != nil {
			return err
		}
	}
	return nil
}

// applyLocationChange runs one change of /locations on img.
func (s *Service) applyLocationChange(id *imaged.Identity, img *imaged.Image, c change, lo *locPlan) error {
	switch c.op {
	case "add":
		return s.addLocation(id, img, c, lo)
	case "replace":
		if isEmpty(c.value) {
			return imaged.Detailf(imaged.EFORBIDDEN, "Cannot set locations to empty list.")
		}
		return s.replaceLocations(id, img, c, lo)
	}
	removed, err := s.removeLocation(id, img, c)
	if err != nil {
		return err
	}
	lo.removed = append(lo.removed, *removed)
	return nil
}

// prepareLocations checks the URLs a patch adds, before the serialised
// update (Glance checks them while applying; the network must not be
// reached inside a database transaction). Only shapes are known here;
// positions, statuses and duplicates are decided on the live image.
func (s *Service) prepareLocations(ctx context.Context, id *imaged.Identity, img *imaged.Image, changes []change) (*locPlan, error) {
	plan := &locPlan{sizes: map[string]int64{}}
	if !s.cfg.ShowMultipleLocations {
		return plan, nil
	}
	for _, c := range changes {
		if c.root() != "locations" || c.op == "remove" {
			continue
		}
		var vals []any
		if c.op == "add" {
			vals = []any{c.value}
		} else if list, ok := c.value.([]any); ok {
			vals = list
		}
		for _, v := range vals {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			u, _ := m["url"].(string)
			iu := s.internalURL(img, u)
			if _, done := plan.sizes[iu]; done {
				continue
			}
			if !s.pol.Allow(id, imaged.ActionSetImageLocation, target(id, img)) {
				// The policy refusal wins; applying reports it.
				return plan, nil
			}
			size, err := s.checkLocation(ctx, imaged.Location{URL: iu})
			if err != nil {
				plan.sizes[iu] = -1
				continue
			}
			plan.sizes[iu] = size
		}
	}
	return plan, nil
}

// checked returns the prepared verdict on a new location.
func (p *locPlan) checked(l imaged.Location) (int64, error) {
	if p == nil {
		return 0, imaged.Errorf(imaged.EINVALID, "Invalid location")
	}
	size, ok := p.sizes[l.URL]
	if !ok || size <= 0 {
		return 0, imaged.Errorf(imaged.EINVALID, "Invalid location")
	}
	return size, nil
}

// addLocation is _do_add_locations: /locations/N or /locations/-.
func (s *Service) addLocation(id *imaged.Identity, img *imaged.Image, c change, plan *locPlan) error {
	if err := s.enforce(id, imaged.ActionSetImageLocation, img, msgNotOwner); err != nil {
		return err
	}
	if !s.cfg.ShowMultipleLocations {
		return errLocationsHidden("add")
	}
	if img.Status != imaged.StatusActive && img.Status != imaged.StatusQueued {
		return imaged.Errorf(imaged.ECONFLICT, "It's not allowed to add locations if image status is %s.", img.Status)
	}
	nl, err := parseLoc(c.value)
	if err != nil {
		return err
	}
	val, err := validationData(img, []newLoc{nl})
	if err != nil {
		return err
	}
	pos, ok := locationPos(c.path[1], len(img.Locations), true)
	if !ok {
		return imaged.Errorf(imaged.EINVALID, "Invalid position for adding a location.")
	}
	nl.loc.URL = s.internalURL(img, nl.loc.URL)
	size, err := plan.checked(nl.loc)
	if err != nil {
		return err
	}
	for _, l := range img.Locations {
		if sameLoc(l, nl.loc) {
			return errDuplicateLocation(c.value.(map[string]any)["url"].(string))
		}
	}
	pos = min(pos, len(img.Locations))
	img.Locations = slices.Insert(img.Locations, pos, nl.loc)
	if img.Size == nil || *img.Size == 0 {
		img.Size = &size
	}
	if img.Status == imaged.StatusQueued {
		applyValidation(img, val)
		img.Status = imaged.StatusActive
	}
	return nil
}

// replaceLocations is _do_replace_locations and the locations proxy's
// setter: the same URLs (in any order) replace the list as is (metadata
// may change); different ones only replace an empty list.
func (s *Service) replaceLocations(id *imaged.Identity, img *imaged.Image, c change, plan *locPlan) error {
	if err := s.enforce(id, imaged.ActionSetImageLocation, img, msgNotOwner); err != nil {
		return err
	}
	if !s.cfg.ShowMultipleLocations {
		return errLocationsHidden("update")
	}
	if img.Status != imaged.StatusActive && img.Status != imaged.StatusQueued {
		return imaged.Errorf(imaged.ECONFLICT, "It's not allowed to replace locations if image status is %s.", img.Status)
	}
	list, ok := c.value.([]any)
	if !ok {
		return imaged.Errorf(imaged.EINVALID, "Invalid locations")
	}
	locs := make([]newLoc, 0, len(list))
	for _, v := range list {
		nl, err := parseLoc(v)
		if err != nil {
			return err
		}
		nl.loc.URL = s.internalURL(img, nl.loc.URL)
		locs = append(locs, nl)
	}
	val, err := validationData(img, locs)
	if err != nil {
		return err
	}
	newURLs := make([]string, len(locs))
	for i, l := range locs {
		newURLs[i] = l.loc.URL
	}
	oldURLs := make([]string, len(img.Locations))
	for i, l := range img.Locations {
		oldURLs[i] = l.URL
	}
	slices.Sort(newURLs)
	slices.Sort(oldURLs)
	out := make([]imaged.Location, len(locs))
	for i, l := range locs {
		out[i] = l.loc
	}
	switch {
	case slices.Equal(newURLs, oldURLs):
		// The same bytes: keep each location's store, take the new
		// metadata and order.
		for i := range out {
			for _, old := range img.Locations {
				if old.URL == out[i].URL {
					if out[i].Store == "" {
						out[i].Store = old.Store
					}
					break
				}
			}
		}
	case len(img.Locations) > 0:
		return imaged.Errorf(imaged.EINVALID, "Original locations is not empty: %s", pyLocations(s, img.Locations))
	default:
		var size int64
		for i, l := range out {
			sz, err := plan.checked(l)
			if err != nil {
				return err
			}
			for _, other := range out[:i] {
				if sameLoc(other, l) {
					return errDuplicateLocation(list[i].(map[string]any)["url"].(string))
				}
			}
			if size == 0 {
				size = sz
			}
		}
		if img.Size == nil || *img.Size == 0 {
			img.Size = &size
		}
	}
	img.Locations = out
	if img.Status == imaged.StatusQueued {
		applyValidation(img, val)
		img.Status = imaged.StatusActive
	}
	return nil
}

// pyLocations renders locations as Glance's message shows them (Python's
// repr of its location dicts, without the database ids).
func pyLocations(s *Service, locs []imaged.Location) string {
	parts := make([]string, len(locs))
	for i, l := range locs {
		md := make(map[string]any, len(l.Metadata))
		for k, v := range l.Metadata {
			md[k] = v
		}
		parts[i] = "{'url': " + pyRepr(s.publicURL(l)) + ", 'metadata': " + pyRepr(md) + ", 'status': 'active'}"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// removeLocation is _do_remove_locations: an active image keeps at least
// one location. It returns the removed location, whose bytes the caller
// deletes once the update is committed.
func (s *Service) removeLocation(id *imaged.Identity, img *imaged.Image, c change) (*imaged.Location, error) {
	if err := s.enforce(id, imaged.ActionDeleteImageLocation, img, msgNotOwner); err != nil {
		return nil, err
	}
	if !s.cfg.ShowMultipleLocations {
		return nil, errLocationsHidden("remove")
	}
	if img.Status != imaged.StatusActive {
		return nil, imaged.Errorf(imaged.ECONFLICT, "It's not allowed to remove locations if image status is %s.", img.Status)
	}
	if len(img.Locations) == 1 {
		return nil, imaged.Detailf(imaged.EFORBIDDEN, "Cannot remove last location in the image.")
	}
	pos, ok := locationPos(c.path[1], len(img.Locations), false)
	if !ok {
		return nil, imaged.Errorf(imaged.EINVALID, "Invalid position for removing a location.")
	}
	removed := img.Locations[pos]
	img.Locations = slices.Delete(img.Locations, pos, pos+1)
	return &removed, nil
}

// dropRemovedBytes deletes the bytes of locations a patch removed, once
// the update is committed, unless another location still names them
// (best effort: the orphan sweep removes what fails here).
func (s *Service) dropRemovedBytes(ctx context.Context, img *imaged.Image, removed []imaged.Location) {
	for _, r := range removed {
		key, ok := strings.CutPrefix(r.URL, locationURL)
		if !ok {
			continue // not ours (http, docker): nothing to delete
		}
		still := false
		for _, l := range img.Locations {
			if l.URL == r.URL && locationStore(l) == locationStore(r) {
				still = true
			}
		}
		if still {
			continue
		}
		if b := s.lookupStore(locationStore(r)); b != nil {
			if err := b.Delete(ctx, key); err != nil {
				s.log.Warn("deleting the bytes of a removed location; the orphan sweep will retry", "image", img.ID, "key", key, "err", err)
			}
		}
	}
}

// externalOpen reads an image whose only readable location is an http(s)
// URL, through the location fetcher (nil when there is none).
func (s *Service) externalOpen(img *imaged.Image) func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if s.extLoc == nil || img.Size == nil {
		return nil
	}
	var src string
	for _, l := range img.Locations {
		if strings.HasPrefix(l.URL, "http://") || strings.HasPrefix(l.URL, "https://") {
			src = l.URL
			break
		}
	}
	if src == "" {
		return nil
	}
	size := *img.Size
	return func(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
		if offset < 0 || (offset >= size && !(offset == 0 && size == 0)) {
			return nil, imaged.Errorf(imaged.ERANGE, "Requested range not satisfiable")
		}
		if length < 0 || offset+length > size {
			length = size - offset
		}
		body, _, err := s.extLoc.Fetch(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("catalog: read location of %s: %w", img.ID, err)
		}
		// The remote serves whole objects: skip to the offset.
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			_ = body.Close()
			return nil, fmt.Errorf("catalog: read location of %s: %w", img.ID, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{&exactReader{r: io.LimitReader(body, length), left: length}, body}, nil
	}
}

// exactReader fails a read that ends before its length: a remote object
// shorter than the image must break the download, not end it early.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("catalog: the location ended %d bytes early: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}
