package format

// VHD (qemu's "vpc"): a 512-byte big-endian footer, at the end of every VHD
// and copied to offset 0 of dynamic and differencing ones:
//
//	 0  cookie "conectix"
//	28  creator application (4 chars)
//	48  current size (u64, bytes)
//	56  geometry: cylinders u16, heads u8, sectors per track u8
//	60  disk type (u32): 2 fixed, 3 dynamic, 4 differencing
//
// A fixed VHD is raw data followed by the footer, so it is recognised at the
// end of the stream from the rolling tail window.

const (
	vhdFixed        = 2
	vhdDynamic      = 3
	vhdDifferencing = 4
	// vhdMaxCHS is the largest CHS geometry (65535×16×255 sectors): images
	// that hit it store their real size only in the current-size field.
	vhdMaxCHS = 65535 * 16 * 255
)

// vhdHeader handles a VHD with the footer copy at offset 0.
func (in *Inspector) vhdHeader() {
	if len(in.head) < 512 {
		in.malformed("truncated footer")
		return
	}
	f := in.head[:512]
	switch be32(f[60:]) {
	case vhdDynamic:
		in.res.Subformat = "dynamic"
	case vhdFixed:
		// No tool writes a fixed disk's footer at the start; qemu would
		// probe such a file as vpc while raw readers see the footer as
		// data. Refuse the ambiguity.
		in.res.Subformat = "fixed"
		in.malformed("a fixed disk footer at offset 0")
	case vhdDifferencing:
		in.res.Subformat = "differencing"
		in.unsafe("VHD differencing images are not supported: they refer to a parent image.")
	default:
		in.malformed("unknown disk type %d", be32(f[60:]))
		return
	}
	in.vhdSize(f)
}

// vhdSize sets the virtual size as qemu computes it: from the CHS geometry,
// except for creators known to write an exact current size (Hyper-V, qemu's
// "qem2", disk2vhd, XenServer, XenConverter) and for the maximal geometry.
func (in *Inspector) vhdSize(f []byte) {
	chs := uint64(be16(f[56:])) * uint64(f[58]) * uint64(f[59])
	switch string(f[28:32]) {
	case "win ", "qem2", "d2v ", "CTXS", "tap\x00":
	default:
		if chs != vhdMaxCHS {
			in.setSize(chs, 512)
			return
		}
	}
	in.setSize(be64(f[48:])/512, 512)
}

// fixedVHD reports (and records) whether the stream ends with a fixed-disk
// VHD footer.
func (in *Inspector) fixedVHD() bool {
	f := in.lastBytes(512)
	if f == nil || string(f[:8]) != "conectix" || be32(f[60:]) != vhdFixed {
		return false
	}
	in.res.Format, in.res.Subformat = VHD, "fixed"
	in.vhdSize(f)
	return true
}
