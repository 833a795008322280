package imaged

import "context"

// ifMatchKey is the context key of an update's expected image versions.
type ifMatchKey struct{}

// NewContextWithIfMatch returns a context asking that an update or delete
// of an image happen only if the image's Version is one of versions (an
// HTTP If-Match). An empty list matches no version. The service checks it
// inside the store's serialised update, so that of two racing conditional
// updates of one version only one can succeed.
func NewContextWithIfMatch(ctx context.Context, versions []int64) context.Context {
	if versions == nil {
		versions = []int64{}
	}
	return context.WithValue(ctx, ifMatchKey{}, versions)
}

// IfMatchFromContext returns the expected versions in ctx and whether the
// request is conditional at all.
func IfMatchFromContext(ctx context.Context) ([]int64, bool) {
	v, ok := ctx.Value(ifMatchKey{}).([]int64)
	return v, ok
}

// CheckIfMatch returns EPRECONDITION if ctx carries expected versions and
// img's Version is not among them, nil otherwise.
func CheckIfMatch(ctx context.Context, img *Image) error {
	return CheckVersion(ctx, img.ID, img.Version)
}

// CheckVersion is CheckIfMatch for any catalog row (a container image
// shares its id and version with its catalog image).
func CheckVersion(ctx context.Context, id string, version int64) error {
	versions, ok := IfMatchFromContext(ctx)
	if !ok {
		return nil
	}
	for _, v := range versions {
		if v == version {
			return nil
		}
	}
	return Errorf(EPRECONDITION, "Image %s has changed since it was read (If-Match).", id)
}
