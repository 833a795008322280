package glanceapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/imaged/imaged"
)

// locView says how image responses show locations: Glance's
// show_multiple_locations ("locations", every location the caller may see,
// [] when none or when get_image_location refuses) and
// show_image_direct_url ("direct_url", the first one, absent when none).
// A nil *locView shows nothing (both options off, Glance's default).
type locView struct {
	ctx      context.Context
	svc      imaged.LocationService
	multiple bool
	direct   bool
}

// locView returns the view of r's responses, nil when the service shows no
// locations.
func (a *api) locView(r *http.Request) *locView {
	ls, ok := a.svc.(imaged.LocationService)
	if !ok {
		return nil
	}
	multiple, direct := ls.ShowLocations()
	if !multiple && !direct {
		return nil
	}
	return &locView{ctx: r.Context(), svc: ls, multiple: multiple, direct: direct}
}

// appendLocations appends `, "locations": [...]` and `, "direct_url": ...`
// as configured, in Glance's place (after updated_at).
func (lv *locView) appendLocations(b []byte, img *imaged.Image) []byte {
	if lv == nil {
		return b
	}
	locs := lv.svc.ImageLocations(lv.ctx, img)
	if lv.multiple {
		b = append(b, `, "locations": [`...)
		for i, l := range locs {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendLocation(b, l)
		}
		b = append(b, ']')
	}
	if lv.direct && len(locs) > 0 {
		b = append(b, `, "direct_url": `...)
		b = appendPyString(b, locs[0].URL)
	}
	return b
}

// appendLocation appends {"url": ..., "metadata": {...}}, metadata keys
// sorted so that output is stable.
func appendLocation(b []byte, l imaged.Location) []byte {
	b = append(b, `{"url": `...)
	b = appendPyString(b, l.URL)
	b = append(b, `, "metadata": {`...)
	keys := make([]string, 0, len(l.Metadata))
	for k := range l.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendKey(b, k)
		b = appendPyString(b, l.Metadata[k])
	}
	return append(b, "}}"...)
}
