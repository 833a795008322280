package imaged

import "context"

// LocationService is the locations surface of Glance's
// show_multiple_locations and show_image_direct_url options: an image
// service that implements it tells the API whether image responses carry
// "locations" and "direct_url", and which locations a caller may see. The
// changes themselves (JSON-Patch on /locations) go through
// ImageService.UpdateImage.
type LocationService interface {
	// ShowLocations reports Glance's show_multiple_locations and
	// show_image_direct_url settings.
	ShowLocations() (multiple, directURL bool)
	// ImageLocations returns img's locations as the caller (from ctx)
	// sees them: URLs as clients know them, in order; empty when the
	// get_image_location policy hides them (Glance then renders
	// "locations": [] and no direct_url).
	ImageLocations(ctx context.Context, img *Image) []Location
}
