package imaged

import "context"

// ImportCopyImage is Glance's copy-image import method: an active image's
// bytes copied into more stores.
const ImportCopyImage = "copy-image"

// StoreInfo describes one configured image store, as Glance's
// enabled_backends lists it in GET /v2/info/stores.
type StoreInfo struct {
	ID          string
	Description string // "" = none
	Default     bool
}

// StoreService is the multi-store surface (Glance's enabled_backends): the
// configured stores and the removal of an image's bytes from one of them.
// The caller's identity comes from the context, as for ImageService.
type StoreService interface {
	// Stores returns the configured stores, nil when the site has only its
	// one implicit store (Glance without enabled_backends).
	Stores() []StoreInfo
	// DeleteFromStore removes an image's bytes from one store (DELETE
	// /v2/stores/{store}/{image_id}).
	DeleteFromStore(ctx context.Context, store, imageID string) error
}

type storeKey struct{}

// WithStore returns ctx carrying the store a request names (Glance's
// X-Image-Meta-Store header), which uploads, stages and imports honour.
func WithStore(ctx context.Context, store string) context.Context {
	return context.WithValue(ctx, storeKey{}, store)
}

// StoreFromContext returns the store named by WithStore, if any.
func StoreFromContext(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(storeKey{}).(string)
	return s, ok
}
