package storetest

import (
	"cmp"
	"slices"

	"github.com/imaged/imaged"
)

// world is the suite's reference model: the images and members it put in
// the store, and a brute-force implementation of ImageQuery's documented
// semantics to compare the store's answers with.
type world struct {
	images  map[string]*imaged.Image
	members map[string]map[string]imaged.MemberStatus // image -> project -> status
}

func newWorld() *world {
	return &world{images: map[string]*imaged.Image{}, members: map[string]map[string]imaged.MemberStatus{}}
}

// visible applies the scope and visibility rules of ImageQuery's doc.
func (w *world) visible(img *imaged.Image, q *imaged.ImageQuery) bool {
	p := q.Scope.ProjectID
	switch q.Visibility {
	case "":
		if img.Visibility == imaged.VisibilityCommunity && (p == "" || img.Owner != p) {
			return false
		}
	case "all":
	default:
		if string(img.Visibility) != q.Visibility {
			return false
		}
	}
	if q.Scope.Admin {
		return true
	}
	if img.Visibility == imaged.VisibilityPublic || img.Visibility == imaged.VisibilityCommunity {
		return true
	}
	if p == "" {
		return false
	}
	if img.Owner == p {
		return true
	}
	if img.Visibility != imaged.VisibilityShared {
		return false
	}
	st, ok := w.members[img.ID][p]
	if !ok {
		return false
	}
	ms := q.MemberStatus
	if ms == "" {
		ms = string(imaged.MemberAccepted)
	}
	return ms == "all" || string(st) == ms
}

func inList(v string, list []string) bool {
	return len(list) == 0 || slices.Contains(list, v)
}

func timeOK(v int64, fs []imaged.TimeFilter) bool {
	for _, f := range fs {
		t := f.Value.UnixMicro()
		var ok bool
		switch f.Op {
		case imaged.OpEq:
			ok = v == t
		case imaged.OpNeq:
			ok = v != t
		case imaged.OpGt:
			ok = v > t
		case imaged.OpGte:
			ok = v >= t
		case imaged.OpLt:
			ok = v < t
		case imaged.OpLte:
			ok = v <= t
		}
		if !ok {
			return false
		}
	}
	return true
}

func (w *world) matches(img *imaged.Image, q *imaged.ImageQuery) bool {
	if img.DeletedAt != nil || !w.visible(img, q) {
		return false
	}
	name := ""
	if img.Name != nil {
		name = *img.Name
	}
	switch {
	case !inList(img.ID, q.IDs),
		len(q.Names) > 0 && (img.Name == nil || !slices.Contains(q.Names, name)),
		!inList(string(img.Status), q.Statuses),
		len(q.Owners) > 0 && (img.Owner == "" || !slices.Contains(q.Owners, img.Owner)),
		len(q.ContainerFormat) > 0 && (img.ContainerFormat == "" || !slices.Contains(q.ContainerFormat, img.ContainerFormat)),
		len(q.DiskFormat) > 0 && (img.DiskFormat == "" || !slices.Contains(q.DiskFormat, img.DiskFormat)),
		q.Protected != nil && img.Protected != *q.Protected,
		q.OSHidden == nil && img.OSHidden,
		q.OSHidden != nil && img.OSHidden != *q.OSHidden,
		q.SizeMin != nil && (img.Size == nil || *img.Size < *q.SizeMin),
		q.SizeMax != nil && (img.Size == nil || *img.Size > *q.SizeMax),
		q.Checksum != "" && img.Checksum != q.Checksum,
		q.OSHashValue != "" && img.OSHashValue != q.OSHashValue,
		q.OSHashAlgo != "" && img.OSHashAlgo != q.OSHashAlgo,
		q.MinDisk != nil && img.MinDisk != *q.MinDisk,
		q.MinRAM != nil && img.MinRAM != *q.MinRAM,
		q.VirtualSize != nil && (img.VirtualSize == nil || *img.VirtualSize != *q.VirtualSize),
		!timeOK(img.CreatedAt.UnixMicro(), q.CreatedAt),
		!timeOK(img.UpdatedAt.UnixMicro(), q.UpdatedAt):
		return false
	}
	for _, t := range q.Tags {
		if !slices.Contains(img.Tags, t) {
			return false
		}
	}
	for k, v := range q.Properties {
		if pv, ok := img.Properties[k]; !ok || pv != v {
			return false
		}
	}
	return true
}

// sortValue returns an image's value for a sort key; ok=false is NULL.
func sortValue(img *imaged.Image, key string) (s string, n int64, isNum, ok bool) {
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	switch key {
	case "name":
		if img.Name == nil {
			return "", 0, false, false
		}
		return *img.Name, 0, false, true
	case "status":
		return string(img.Status), 0, false, true
	case "container_format":
		return img.ContainerFormat, 0, false, img.ContainerFormat != ""
	case "disk_format":
		return img.DiskFormat, 0, false, img.DiskFormat != ""
	case "owner":
		return img.Owner, 0, false, img.Owner != ""
	case "visibility":
		return string(img.Visibility), 0, false, true
	case "id":
		return img.ID, 0, false, true
	case "size":
		if img.Size == nil {
			return "", 0, true, false
		}
		return "", *img.Size, true, true
	case "virtual_size":
		if img.VirtualSize == nil {
			return "", 0, true, false
		}
		return "", *img.VirtualSize, true, true
	case "created_at":
		return "", img.CreatedAt.UnixMicro(), true, true
	case "updated_at":
		return "", img.UpdatedAt.UnixMicro(), true, true
	case "min_disk":
		return "", img.MinDisk, true, true
	case "min_ram":
		return "", img.MinRAM, true, true
	case "protected":
		return "", b2i(img.Protected), true, true
	case "os_hidden":
		return "", b2i(img.OSHidden), true, true
	}
	panic("storetest: unknown sort key " + key)
}

// compareImages orders a and b by keys with NULL as the smallest value.
func compareImages(a, b *imaged.Image, keys []imaged.SortKey) int {
	for _, k := range keys {
		as, an, num, aok := sortValue(a, k.Key)
		bs, bn, _, bok := sortValue(b, k.Key)
		var c int
		switch {
		case !aok && !bok:
			c = 0
		case !aok:
			c = -1
		case !bok:
			c = 1
		case num:
			c = cmp.Compare(an, bn)
		default:
			c = cmp.Compare(as, bs)
		}
		if k.Dir == imaged.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// expect returns the IDs the store should return for q.
func (w *world) expect(q imaged.ImageQuery) []string {
	var all []*imaged.Image
	for _, img := range w.images {
		if w.matches(img, &q) {
			all = append(all, img)
		}
	}
	slices.SortFunc(all, func(a, b *imaged.Image) int { return compareImages(a, b, q.Sort) })
	if q.After != nil {
		i := 0
		for i < len(all) && compareImages(all[i], q.After, q.Sort) <= 0 {
			i++
		}
		all = all[i:]
	}
	if len(all) > q.Limit {
		all = all[:q.Limit]
	}
	ids := make([]string, len(all))
	for i, img := range all {
		ids[i] = img.ID
	}
	return ids
}
