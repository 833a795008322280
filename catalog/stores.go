package catalog

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/imaged/imaged"
)

// Several named stores, as Glance 25.1 with enabled_backends:
//
//   - Without WithStores the catalog has one implicit store (WithBlobStore)
//     and behaves as Glance without enabled_backends: locations name no
//     store, the image has no "stores" field, /v2/info/stores is 404, the
//     X-Image-Meta-Store header and an import's "stores" are ignored.
//   - With WithStores every location names its store (Location.Store and
//     metadata {"store": name}, Glance's shape); uploads honour
//     X-Image-Meta-Store (carried in the context, imaged.WithStore),
//     imports "stores"/"all_stores"/"all_stores_must_succeed", and
//     copy-image copies an active image into more stores.
//
// An import into several stores streams its bytes once: one pass hashes
// and inspects them and writes every store's blob at once (a fan-out
// writer), where Glance imports into the first store and copies from there
// into the others. A store whose write fails is dropped from the transfer
// (and named in os_glance_failed_import) unless all_stores_must_succeed,
// which fails the whole import. Staged bytes always live in the default
// store (Glance's os_glance_staging_store is one local directory).

// NamedStore is one configured store: a name (Glance's enabled_backends
// key), an optional description and its blob store.
type NamedStore struct {
	Name        string
	Description string
	Blobs       imaged.BlobStore
}

// storeSet is the configured stores; def is the default's name.
type storeSet struct {
	list []NamedStore
	def  string
}

// blobTarget is one store a transfer writes to; name "" is the implicit
// single store.
type blobTarget struct {
	name  string
	blobs imaged.BlobStore
}

// storeName is what Glance accepts as a backend name in practice; names
// are also metadata values and path segments.
var storeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)

var _ imaged.StoreService = (*Service)(nil)

// WithStores returns a copy of s that keeps image bytes in several named
// stores, def being the one used when a request names none. The default's
// blob store also replaces WithBlobStore's.
func (s *Service) WithStores(stores []NamedStore, def string) (*Service, error) {
	if len(stores) == 0 {
		return nil, fmt.Errorf("catalog: no stores")
	}
	seen := map[string]bool{}
	var defBlobs imaged.BlobStore
	for _, st := range stores {
		if !storeName.MatchString(st.Name) || strings.HasPrefix(st.Name, "os_glance_") {
			return nil, fmt.Errorf("catalog: invalid store name %q", st.Name)
		}
		if seen[st.Name] {
			return nil, fmt.Errorf("catalog: store %q configured twice", st.Name)
		}
		if st.Blobs == nil {
			return nil, fmt.Errorf("catalog: store %q has no blob store", st.Name)
		}
		seen[st.Name] = true
		if st.Name == def {
			defBlobs = st.Blobs
		}
	}
	if defBlobs == nil {
		return nil, fmt.Errorf("catalog: default store %q is not configured", def)
	}
	cp := *s
	cp.stores = &storeSet{list: slices.Clone(stores), def: def}
	cp.blobs = defBlobs
	return &cp, nil
}

// Stores returns the configured stores, nil with the implicit single store.
func (s *Service) Stores() []imaged.StoreInfo {
	if s.stores == nil {
		return nil
	}
	out := make([]imaged.StoreInfo, len(s.stores.list))
	for i, st := range s.stores.list {
		out[i] = imaged.StoreInfo{ID: st.Name, Description: st.Description, Default: st.Name == s.stores.def}
	}
	return out
}

// lookupStore returns a configured store's blobs, nil if unknown. With the
// implicit store, "" names it.
func (s *Service) lookupStore(name string) imaged.BlobStore {
	if s.stores == nil {
		if name == "" {
			return s.blobs
		}
		return nil
	}
	if name == "" {
		name = s.stores.def
	}
	for _, st := range s.stores.list {
		if st.Name == name {
			return st.Blobs
		}
	}
	return nil
}

// defaultTarget is where bytes go when a request names no store.
func (s *Service) defaultTarget() blobTarget {
	if s.stores == nil {
		return blobTarget{blobs: s.blobs}
	}
	return blobTarget{name: s.stores.def, blobs: s.blobs}
}

// allTargets returns every store (the implicit one alone without
// WithStores), for deletes and sweeps that must cover them all.
func (s *Service) allTargets() []blobTarget {
	if s.stores == nil {
		if s.blobs == nil {
			return nil
		}
		return []blobTarget{{blobs: s.blobs}}
	}
	out := make([]blobTarget, len(s.stores.list))
	for i, st := range s.stores.list {
		out[i] = blobTarget{name: st.Name, blobs: st.Blobs}
	}
	return out
}

// errUnknownStore is glance_store's refusal of a store name it does not
// know (get_store_from_store_identifier), worded as Glance 25.1 reports it.
func errUnknownStore(code string, name string) *imaged.Error {
	return imaged.Errorf(code, "Store for identifier %s not found", name)
}

// headerTarget is the store an upload or a stage writes to: the one
// X-Image-Meta-Store names (400 if unknown), else the default. Without
// WithStores the header is ignored, as Glance ignores it.
func (s *Service) headerTarget(ctx context.Context) (blobTarget, error) {
	name, ok := imaged.StoreFromContext(ctx)
	if s.stores == nil || !ok {
		return s.defaultTarget(), nil
	}
	b := s.lookupStore(name)
	if b == nil || name == "" {
		return blobTarget{}, errUnknownStore(imaged.EINVALID, name)
	}
	return blobTarget{name: name, blobs: b}, nil
}

// importStores is Glance's get_stores_from_request: the stores an import
// writes to, from all_stores, the body's "stores", the header or the
// default, in that order; nil without WithStores.
func (s *Service) importStores(ctx context.Context, body map[string]any) ([]string, error) {
	if s.stores == nil {
		return nil, nil
	}
	header, hasHeader := imaged.StoreFromContext(ctx)
	rawStores, hasStores := body["stores"]
	if all, _ := body["all_stores"].(bool); all {
		if hasStores || hasHeader {
			return nil, imaged.Errorf(imaged.EINVALID, "All_stores parameter can't be used with x-image-meta-store header or stores parameter")
		}
		names := make([]string, len(s.stores.list))
		for i, st := range s.stores.list {
			names[i] = st.Name
		}
		return names, nil
	}
	var names []string
	switch {
	case hasStores:
		if hasHeader {
			return nil, imaged.Errorf(imaged.EINVALID, "Stores parameter and x-image-meta-store header can't be both specified")
		}
		list, ok := rawStores.([]any)
		if !ok {
			return nil, imaged.Errorf(imaged.EINVALID, "Invalid type for 'stores': a list of store names is expected.")
		}
		for _, v := range list {
			n, ok := v.(string)
			if !ok {
				return nil, imaged.Errorf(imaged.EINVALID, "Invalid type for 'stores': a list of store names is expected.")
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	case hasHeader:
		names = []string{header}
	default:
		names = []string{s.stores.def}
	}
	for _, n := range names {
		if n == "" || s.lookupStore(n) == nil {
			return nil, errUnknownStore(imaged.ECONFLICT, n)
		}
	}
	return names, nil
}

// targetsOf resolves store names (checked by importStores).
func (s *Service) targetsOf(names []string) []blobTarget {
	out := make([]blobTarget, 0, len(names))
	for _, n := range names {
		out = append(out, blobTarget{name: n, blobs: s.lookupStore(n)})
	}
	return out
}

// newLocation is the location of bytes under key in store t.
func newLocation(t blobTarget, key string) imaged.Location {
	md := map[string]string{}
	if t.name != "" {
		md["store"] = t.name
	}
	return imaged.Location{URL: locationURL + key, Metadata: md, Store: t.name}
}

// locationStore is the store of a location ("" = the implicit one).
func locationStore(l imaged.Location) string {
	if l.Store != "" {
		return l.Store
	}
	return l.Metadata["store"]
}

// imageStores lists the stores an image's locations name, in order.
func imageStores(img *imaged.Image) []string {
	var out []string
	for _, l := range img.Locations {
		if n := locationStore(l); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// readLocation returns the first location of img whose bytes this
// catalog can read: its key and blob store.
func (s *Service) readLocation(img *imaged.Image) (string, imaged.BlobStore) {
	for _, l := range img.Locations {
		k, ok := strings.CutPrefix(l.URL, locationURL)
		if !ok {
			continue
		}
		if b := s.lookupStore(locationStore(l)); b != nil {
			return k, b
		}
	}
	return "", nil
}

// names lists targets' store names.
func names(ts []blobTarget) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

// fanout writes one stream into a blob per target. A target whose create,
// write or commit fails is dropped; the stream fails when every target
// has, or at the first failure when mustAll.
type fanout struct {
	targets []blobTarget
	ws      []imaged.BlobWriter
	errs    []error
	mustAll bool
}

// openFanout creates key in every target.
func openFanout(ctx context.Context, targets []blobTarget, key string, mustAll bool) (*fanout, error) {
	f := &fanout{targets: targets, ws: make([]imaged.BlobWriter, len(targets)), errs: make([]error, len(targets)), mustAll: mustAll}
	for i, t := range targets {
		f.ws[i], f.errs[i] = t.blobs.Create(ctx, key)
	}
	return f, f.verdict()
}

// verdict is the stream's error: the first failure with mustAll, or when
// no target is left.
func (f *fanout) verdict() error {
	var first error
	ok := 0
	for i, err := range f.errs {
		if err == nil {
			ok++
		} else if first == nil {
			first = fmt.Errorf("store %q: %w", f.targets[i].name, err)
		}
	}
	if ok == 0 || (f.mustAll && first != nil) {
		return first
	}
	return nil
}

func (f *fanout) Write(p []byte) (int, error) {
	for i, w := range f.ws {
		if f.errs[i] != nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			f.errs[i] = err
			_ = w.Cancel(context.Background())
		}
	}
	if err := f.verdict(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// commit commits every live target; it returns the committed and the
// failed targets.
func (f *fanout) commit(ctx context.Context) (stored, failed []blobTarget, err error) {
	for i, w := range f.ws {
		if f.errs[i] == nil {
			if _, cerr := w.Commit(ctx); cerr != nil {
				f.errs[i] = cerr
			} else {
				stored = append(stored, f.targets[i])
				continue
			}
		}
		failed = append(failed, f.targets[i])
	}
	return stored, failed, f.verdict()
}

// failedTargets are the targets dropped so far.
func (f *fanout) failedTargets() []blobTarget {
	var out []blobTarget
	for i, err := range f.errs {
		if err != nil {
			out = append(out, f.targets[i])
		}
	}
	return out
}

// cancel discards what was not committed.
func (f *fanout) cancel(ctx context.Context) {
	for _, w := range f.ws {
		if w != nil {
			_ = w.Cancel(ctx)
		}
	}
}

// verifyHashes is copy-image's check that the bytes read back are the
// image's: the size, MD5 checksum and os_hash_value must all match.
func verifyHashes(img *imaged.Image) func(uploadSum) error {
	return func(sum uploadSum) error {
		if img.Size != nil && sum.n != *img.Size {
			return imaged.Errorf(imaged.ECONFLICT, "The data of image %s read back is %d bytes long, but the image's size is %d: the copy was refused.", img.ID, sum.n, *img.Size)
		}
		if img.OSHashValue != "" && hex.EncodeToString(sum.sha512) != img.OSHashValue {
			return imaged.Errorf(imaged.ECONFLICT, "The data of image %s read back does not match its os_hash_value: the copy was refused.", img.ID)
		}
		if img.Checksum != "" && hex.EncodeToString(sum.md5) != img.Checksum {
			return imaged.Errorf(imaged.ECONFLICT, "The data of image %s read back does not match its checksum: the copy was refused.", img.ID)
		}
		return nil
	}
}

// DeleteFromStore removes an image's bytes from one store, with Glance's
// delete_from_store rules: multi-store only (404), a configured store
// (409), a visible image (404), the location policies (403), an active
// image (409), never the last location (403), a location in that store
// (404).
func (s *Service) DeleteFromStore(ctx context.Context, store, imageID string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if s.stores == nil {
		return errResourceNotFound()
	}
	blobs := s.lookupStore(store)
	if blobs == nil || store == "" {
		return imaged.Errorf(imaged.ECONFLICT, "The selected store %s is not available on this node.", store)
	}
	img, err := s.load(ctx, id, imageID)
	if err != nil {
		return notFound(err, "Failed to find image %s", imageID)
	}
	check := func(img *imaged.Image) (int, error) {
		if err := s.enforce(id, imaged.ActionGetImageLocation, img, ""); err != nil {
			return -1, err
		}
		if err := s.enforce(id, imaged.ActionDeleteImageLocation, img, ""); err != nil {
			return -1, err
		}
		if img.Status != imaged.StatusActive {
			return -1, imaged.Errorf(imaged.ECONFLICT, "It's not allowed to remove image data from store if image status is not 'active'")
		}
		if len(img.Locations) == 1 {
			return -1, imaged.Errorf(imaged.EFORBIDDEN, "Cannot delete image data from the only store containing it. Consider deleting the image instead.")
		}
		for i, l := range img.Locations {
			if locationStore(l) == store {
				return i, nil
			}
		}
		return -1, imaged.Errorf(imaged.ENOTFOUND, "Image %s is not stored in store %s.", imageID, store)
	}
	if _, err := check(img); err != nil {
		return err
	}
	var removed imaged.Location
	now := s.clock.Now()
	_, err = s.store.UpdateImage(ctx, imageID, func(img *imaged.Image) error {
		i, err := check(img)
		if err != nil {
			return err
		}
		removed = img.Locations[i]
		img.Locations = slices.Delete(img.Locations, i, i+1)
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND && imaged.ErrorMessage(err) == "No image found with ID "+imageID {
			return imaged.Errorf(imaged.ENOTFOUND, "Failed to find image %s", imageID)
		}
		return fmt.Errorf("catalog: delete %s from store %s: %w", imageID, store, err)
	}
	// The location is gone first: a failure here leaves an orphan the
	// sweep removes, never a location without bytes.
	if k, ok := strings.CutPrefix(removed.URL, locationURL); ok {
		if err := blobs.Delete(ctx, k); err != nil {
			s.log.Warn("deleting image data from a store; the orphan sweep will retry", "image", imageID, "store", store, "key", k, "err", err)
		}
	}
	return nil
}

// copySource opens the bytes copy-image reads: an existing location.
func (s *Service) copySource(ctx context.Context, img *imaged.Image) (io.ReadCloser, int64, error) {
	key, blobs := s.readLocation(img)
	if blobs == nil || img.Size == nil {
		return nil, 0, imaged.Errorf(imaged.ECONFLICT, "Image %s has no data in any configured store to copy from.", img.ID)
	}
	rc, err := blobs.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, 0, fmt.Errorf("catalog: copy %s: open source: %w", img.ID, err)
	}
	return rc, *img.Size, nil
}

// deleteKeyEverywhere removes key from every store (best effort).
func (s *Service) deleteKeyEverywhere(ctx context.Context, imageID, key string) {
	for _, t := range s.allTargets() {
		if err := t.blobs.Delete(ctx, key); err != nil {
			s.log.Warn("deleting image bytes; the orphan sweep will retry", "image", imageID, "store", t.name, "key", key, "err", err)
		}
	}
}
