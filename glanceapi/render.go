package glanceapi

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/imaged/imaged"
)

// The renderers append JSON by hand, in the layout of Python's json.dumps
// (", " and ": " separators, non-ASCII kept as is), because listings render
// many images per request and this avoids building a map[string]any per
// image and reflecting over it.

// glanceTime is the timestamp format of Glance's views (oslo isotime).
const glanceTime = "2006-01-02T15:04:05Z"

// appendPyString appends s as a JSON string the way json.dumps(...,
// ensure_ascii=False) writes it. Invalid UTF-8 becomes U+FFFD.
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendPyStringBody(b, s)
	return append(b, '"')
}

// appendPyStringBody appends s JSON-escaped, without the quotes.
func appendPyStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = appendU4(b, rune(c))
		}
		i++
		start = i
	}
	return append(b, s[start:]...)
}

func appendKey(b []byte, key string) []byte {
	b = appendPyString(b, key)
	return append(b, ':', ' ')
}

// appendNullString appends s, or null for "".
func appendNullString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendPyString(b, s)
}

func appendNullInt(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, glanceTime)
	return append(b, '"')
}

// appendImage appends the Glance view of img: additional properties first
// (sorted, so that output is stable), then the core attributes in Glance's
// order, null where unset. Locations and direct_url stay hidden, as with
// Glance's default show_multiple_locations/show_image_direct_url = False.
func appendImage(b []byte, img *imaged.Image) []byte { return appendImageWith(b, img, nil) }

// appendImageWith is appendImage showing locations as lv says (nil: none).
func appendImageWith(b []byte, img *imaged.Image, lv *locView) []byte {
	b = append(b, '{')
	if len(img.Properties) > 0 {
		keys := make([]string, 0, len(img.Properties))
		for k := range img.Properties {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendKey(b, k)
			b = appendPyString(b, img.Properties[k])
			b = append(b, ", "...)
		}
	}
	b = append(b, `"name": `...)
	if img.Name == nil {
		b = append(b, "null"...)
	} else {
		b = appendPyString(b, *img.Name)
	}
	b = append(b, `, "disk_format": `...)
	b = appendNullString(b, img.DiskFormat)
	b = append(b, `, "container_format": `...)
	b = appendNullString(b, img.ContainerFormat)
	b = append(b, `, "visibility": `...)
	b = appendNullString(b, string(img.Visibility))
	b = append(b, `, "size": `...)
	b = appendNullInt(b, img.Size)
	b = append(b, `, "virtual_size": `...)
	b = appendNullInt(b, img.VirtualSize)
	b = append(b, `, "status": `...)
	b = appendNullString(b, string(img.Status))
	b = append(b, `, "checksum": `...)
	b = appendNullString(b, img.Checksum)
	b = append(b, `, "protected": `...)
	b = strconv.AppendBool(b, img.Protected)
	b = append(b, `, "min_ram": `...)
	b = strconv.AppendInt(b, img.MinRAM, 10)
	b = append(b, `, "min_disk": `...)
	b = strconv.AppendInt(b, img.MinDisk, 10)
	b = append(b, `, "owner": `...)
	b = appendNullString(b, img.Owner)
	b = append(b, `, "os_hidden": `...)
	b = strconv.AppendBool(b, img.OSHidden)
	b = append(b, `, "os_hash_algo": `...)
	b = appendNullString(b, img.OSHashAlgo)
	b = append(b, `, "os_hash_value": `...)
	b = appendNullString(b, img.OSHashValue)
	b = append(b, `, "id": `...)
	b = appendPyString(b, img.ID)
	b = append(b, `, "created_at": `...)
	b = appendTime(b, img.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, img.UpdatedAt)
	b = lv.appendLocations(b, img)
	b = append(b, `, "tags": [`...)
	for i, t := range img.Tags {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPyString(b, t)
	}
	b = append(b, `], "self": "/v2/images/`...)
	b = appendPyStringBody(b, img.ID)
	b = append(b, `", "file": "/v2/images/`...)
	b = appendPyStringBody(b, img.ID)
	b = append(b, `/file", "schema": "/v2/schemas/image"`...)
	b = appendStores(b, img)
	return append(b, '}')
}

// appendStores appends Glance's multi-store "stores" field, the stores of
// the image's locations joined by commas, when they name any (Glance adds
// it after the schema filter, so it comes last).
func appendStores(b []byte, img *imaged.Image) []byte {
	n := 0
	for _, l := range img.Locations {
		st := l.Store
		if st == "" {
			st = l.Metadata["store"]
		}
		if st == "" {
			continue
		}
		if n == 0 {
			b = append(b, `, "stores": "`...)
		} else {
			b = append(b, ',')
		}
		b = appendPyStringBody(b, st)
		n++
	}
	if n > 0 {
		b = append(b, '"')
	}
	return b
}

// appendMember appends Glance's view of an image member.
func appendMember(b []byte, m *imaged.Member) []byte {
	b = append(b, `{"member_id": `...)
	b = appendPyString(b, m.MemberID)
	b = append(b, `, "image_id": `...)
	b = appendPyString(b, m.ImageID)
	b = append(b, `, "status": `...)
	b = appendPyString(b, string(m.Status))
	b = append(b, `, "created_at": `...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, m.UpdatedAt)
	b = append(b, `, "schema": "/v2/schemas/member"}`...)
	return b
}

// appendImageList appends the body of GET /v2/images.
func appendImageList(b []byte, imgs []*imaged.Image, first, next string) []byte {
	return appendImageListWith(b, imgs, first, next, nil)
}

// appendImageListWith is appendImageList showing locations as lv says.
func appendImageListWith(b []byte, imgs []*imaged.Image, first, next string, lv *locView) []byte {
	b = append(b, `{"images": [`...)
	for i, img := range imgs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendImageWith(b, img, lv)
	}
	b = append(b, `], "first": `...)
	b = appendPyString(b, first)
	b = append(b, `, "schema": "/v2/schemas/images"`...)
	if next != "" {
		b = append(b, `, "next": `...)
		b = appendPyString(b, next)
	}
	return append(b, '}')
}

// appendMemberList appends the body of GET /v2/images/{id}/members.
func appendMemberList(b []byte, ms []*imaged.Member) []byte {
	b = append(b, `{"members": [`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendMember(b, m)
	}
	return append(b, `], "schema": "/v2/schemas/members"}`...)
}
