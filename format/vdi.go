package format

// VirtualBox VDI header (little-endian), after a 64-byte text banner:
//
//	0x40  signature 0xbeda107f     0x44  version (1.1 = 0x00010001)
//	0x4c  image type: 1 dynamic, 2 static, 3 undo, 4 differencing
//	0x170 disk size (bytes)
//
// qemu opens only dynamic and static images; undo and differencing ones
// depend on a parent image.
const (
	vdiSignature = 0xbeda107f
	vdiVersion11 = 0x00010001
)

func (in *Inspector) vdi() {
	h := in.head
	if len(h) < 0x178 {
		in.malformed("truncated header")
		return
	}
	if v := le32(h[0x44:]); v != vdiVersion11 {
		in.malformed("unsupported version %d.%d", v>>16, v&0xffff)
		return
	}
	switch t := le32(h[0x4c:]); t {
	case 1:
		in.res.Subformat = "dynamic"
	case 2:
		in.res.Subformat = "static"
	default:
		in.unsafe("VDI images of type %d are not supported: only dynamic and static images are.", t)
	}
	in.setSize(le64(h[0x170:]), 1)
}
