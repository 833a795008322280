package format

import (
	"strings"
)

// VMDK sparse extent header (little-endian, 512 bytes):
//
//	 0  magic "KDMV"             4  version (1..3)
//	12  capacity (sectors)       28  descriptor offset (sectors)
//	36  descriptor size (sectors)
//	56  grain directory offset (sectors; all ones: read the footer)
//
// The embedded descriptor is text. Only single-file images are accepted:
// createType monolithicSparse or streamOptimized, one SPARSE extent naming
// no path, and no parent (parentFileNameHint would make qemu open another
// file as the backing image).

const (
	vmdkGDAtEnd     = ^uint64(0)
	vmdkMarkerFoot  = 3
	vmdkDescSector  = 1
	vmdkDescMaxSize = maxRegion
)

func (in *Inspector) vmdkSparse() {
	h := in.head
	if len(h) < 64 {
		in.malformed("truncated header")
		return
	}
	if v := le32(h[4:]); v < 1 || v > 3 {
		in.malformed("unsupported version %d", v)
		return
	}
	descOff, descSize := le64(h[28:]), le64(h[36:])
	if descOff != vmdkDescSector {
		// qemu and Glance expect the descriptor right after the header.
		in.malformed("descriptor at sector %d, not %d", descOff, vmdkDescSector)
		return
	}
	if descSize == 0 {
		in.malformed("no embedded descriptor")
		return
	}
	if le64(h[56:]) == vmdkGDAtEnd {
		// Stream-optimized images written in one pass keep the real header
		// in a footer, three sectors before the end.
		in.tailOn = true
		in.atEnd = in.vmdkFooter
	} else {
		in.setSize(le64(h[12:]), 512)
	}
	n := int(min(descSize, vmdkDescMaxSize/512) * 512)
	in.want(512, n, detectAt, in.vmdkDescriptor)
}

// vmdkFooter reads the capacity from the footer of a stream-optimized image.
func (in *Inspector) vmdkFooter() {
	t := in.lastBytes(1536)
	if t == nil || le32(t[12:]) != vmdkMarkerFoot || string(t[512:516]) != "KDMV" {
		in.malformed("missing footer")
		return
	}
	in.setSize(le64(t[512+12:]), 512)
}

// vmdkDescriptor parses the embedded descriptor cautiously: every line must
// be a comment, a ddb entry, a key=value header field or an extent.
func (in *Inspector) vmdkDescriptor(data []byte, complete bool) {
	if !complete {
		in.malformed("truncated descriptor")
		return
	}
	if i := strings.IndexByte(string(data), 0); i >= 0 {
		data = data[:i] // padded with NULs to whole sectors
	}
	for _, c := range data {
		if c >= 0x80 {
			in.malformed("descriptor is not ASCII text")
			return
		}
	}
	// qemu finds createType and parentFileNameHint by substring search of
	// the whole text, comments included: accept only descriptors where that
	// and this line-by-line reading cannot disagree.
	all := strings.ToLower(string(data))
	if strings.Count(all, "createtype") != 1 {
		in.unsafe("VMDK descriptor must name exactly one createType.")
		return
	}
	if strings.Contains(all, "parentfilenamehint") {
		in.unsafe("VMDK images with a parent image are not supported.")
	}
	var createType string
	extents := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		lower := strings.ToLower(line)
		key, value, isField := strings.Cut(line, "=")
		switch {
		case line == "" || line[0] == '#' || strings.HasPrefix(lower, "ddb"):
		case isField && !strings.ContainsAny(strings.TrimSpace(key), " \t"):
			value = strings.Trim(strings.TrimSpace(value), `"`)
			if strings.EqualFold(strings.TrimSpace(key), "createType") {
				createType = value
			}
		default:
			f := strings.Fields(lower)
			switch f[0] {
			case "rw", "rdonly", "noaccess":
			default:
				in.malformed("unexpected descriptor line %.40q", line)
				return
			}
			extents++
			if strings.ContainsAny(line, `/\`) {
				in.unsafe("VMDK extent %.80q refers to another file.", line)
			}
			if len(f) < 4 || f[2] != "sparse" {
				in.unsafe("VMDK extent %.80q is not a sparse extent in the image.", line)
			}
		}
	}
	in.res.Subformat = createType
	switch strings.ToLower(createType) {
	case "monolithicsparse", "streamoptimized":
	default:
		in.unsafe("VMDK images of type %.64q are not supported; only monolithicSparse and streamOptimized are.", createType)
		return
	}
	if extents != 1 {
		in.unsafe("VMDK image has %d extents; a single-file image has exactly one.", extents)
	}
}
