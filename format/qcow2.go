package format

// qcow2 header (big-endian), as far as safety needs it:
//
//	  0  magic "QFI\xfb"        4  version (2 or 3)
//	  8  backing_file_offset   16  backing_file_size (u32)
//	 20  cluster_bits          24  size (virtual, bytes)
//	 72  incompatible_features (v3; u64)
//	100  header_length (v3)
//
// Header extensions follow the header (at 72 for v2, header_length for v3)
// inside the first cluster: {type u32, length u32, data padded to 8}, ended
// by type 0.

const (
	qcow2IncompatDataFile = 1 << 2
	// Bits 0..4 are dirty, corrupt, external data file, compression type
	// and extended L2 entries; anything above is a feature we cannot vouch
	// for.
	qcow2IncompatKnown = 1<<5 - 1

	qcow2ExtEnd           = 0
	qcow2ExtBackingFormat = 0xe2792aca
	qcow2ExtDataFile      = 0x44415441
)

// qcow2 checks the header and registers the first cluster for the header
// extensions.
func (in *Inspector) qcow2() {
	h := in.head
	if len(h) < 72 {
		in.malformed("truncated header")
		return
	}
	version := be32(h[4:])
	if version != 2 && version != 3 {
		in.malformed("unsupported version %d", version)
		return
	}
	if be64(h[8:]) != 0 || be32(h[16:]) != 0 {
		in.unsafe("qcow2 images with a backing file are not supported.")
	}
	clusterBits := be32(h[20:])
	if clusterBits < 9 || clusterBits > 21 {
		in.malformed("cluster_bits %d out of range", clusterBits)
		return
	}
	in.setSize(be64(h[24:]), 1)
	extStart := 72
	if version == 3 {
		if len(h) < 104 {
			in.malformed("truncated header")
			return
		}
		features := be64(h[72:])
		if features&qcow2IncompatDataFile != 0 {
			in.unsafe("qcow2 images with an external data file are not supported.")
		}
		if features&^qcow2IncompatKnown != 0 {
			in.unsafe("qcow2 image uses unknown incompatible features (%#x).", features&^qcow2IncompatKnown)
		}
		hl := be32(h[100:])
		if hl < 104 || hl%8 != 0 || hl > 1<<clusterBits {
			in.malformed("header_length %d out of range", hl)
			return
		}
		extStart = int(hl)
	}
	n := min(1<<clusterBits, maxRegion)
	in.want(0, n, detectAt, func(data []byte, complete bool) {
		in.qcow2Extensions(data, extStart, complete)
	})
}

// qcow2Extensions walks the header extensions of the first cluster.
func (in *Inspector) qcow2Extensions(c []byte, off int, complete bool) {
	for {
		if off+8 > len(c) {
			if complete {
				in.malformed("header extensions run past the first cluster")
			} else {
				in.malformed("truncated header extensions")
			}
			return
		}
		typ, n := be32(c[off:]), int64(be32(c[off+4:]))
		switch typ {
		case qcow2ExtEnd:
			return
		case qcow2ExtDataFile:
			in.unsafe("qcow2 images with an external data file are not supported.")
		case qcow2ExtBackingFormat:
			in.unsafe("qcow2 images with a backing file are not supported.")
		}
		next := int64(off) + 8 + (n+7)&^7
		if next > int64(len(c)) {
			off = len(c) // reported above, as truncated or overlong
			continue
		}
		off = int(next)
	}
}
