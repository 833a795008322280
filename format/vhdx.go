package format

// VHDX (little-endian): the file type identifier "vhdxfile" at 0, the region
// table at 192 KiB (signature "regi", entry count at 8, 32-byte entries from
// 16: GUID, file offset u64, length u32, required u32). The metadata region
// starts with a table (signature "metadata", entry count u16 at 10, 32-byte
// entries from 32: GUID, offset u32 relative to the region, length u32) whose
// "virtual disk size" item is the u64 we want. A "parent locator" item makes
// it a differencing disk that refers to another file.
//
// GUIDs are compared in their on-disk byte order.
const (
	vhdxRegionTableOff  = 192 << 10
	vhdxTableSize       = 64 << 10
	vhdxMaxEntries      = 2047
	vhdxMetadataRegion  = "\x06\xa2\x7c\x8b\x90\x47\x9a\x4b\xb8\xfe\x57\x5f\x05\x0f\x88\x6e" // 8B7CA206-4790-4B9A-B8FE-575F050F886E
	vhdxVirtualDiskSize = "\x24\x42\xa5\x2f\x1b\xcd\x76\x48\xb2\x11\x5d\xbe\xd8\x3b\xf4\xb8" // 2FA54224-CD1B-4876-B211-5DBED83BF4B8
	vhdxParentLocator   = "\x2d\x5f\xd3\xa8\x0b\xb3\x4d\x45\xab\xf7\xd3\xd8\x48\x34\xab\x0c" // A8D35F2D-B30B-454D-ABF7-D3D84834AB0C
)

func (in *Inspector) vhdx() {
	in.want(vhdxRegionTableOff, vhdxTableSize, detectAt, in.vhdxRegions)
}

func (in *Inspector) vhdxRegions(t []byte, complete bool) {
	if !complete {
		in.malformed("truncated region table")
		return
	}
	if string(t[:4]) != "regi" {
		in.malformed("region table signature not found")
		return
	}
	count := le32(t[8:])
	if count > vhdxMaxEntries {
		in.malformed("%d region table entries (limit %d)", count, vhdxMaxEntries)
		return
	}
	for i := range int(count) {
		e := t[16+32*i : 16+32*(i+1)]
		if string(e[:16]) != vhdxMetadataRegion {
			continue
		}
		off := le64(e[16:])
		trigger := int64(vhdxRegionTableOff + vhdxTableSize)
		if off > uint64(1<<62) || !in.want(int64(off), vhdxTableSize, trigger, func(m []byte, complete bool) {
			in.vhdxMetadata(int64(off), m, complete)
		}) {
			in.malformed("metadata region offset %d out of range", off)
		}
		return
	}
	in.malformed("no metadata region")
}

func (in *Inspector) vhdxMetadata(base int64, m []byte, complete bool) {
	if len(m) < 32 || string(m[:8]) != "metadata" {
		if !complete {
			in.malformed("truncated metadata table")
		} else {
			in.malformed("metadata table signature not found")
		}
		return
	}
	count := int(le16(m[10:]))
	if count > vhdxMaxEntries {
		in.malformed("%d metadata entries (limit %d)", count, vhdxMaxEntries)
		return
	}
	if 32+32*count > len(m) {
		in.malformed("truncated metadata table")
		return
	}
	var sizeItem []byte
	for i := range count {
		e := m[32+32*i : 32+32*(i+1)]
		switch string(e[:16]) {
		case vhdxParentLocator:
			in.unsafe("VHDX differencing images are not supported: they refer to a parent image.")
		case vhdxVirtualDiskSize:
			sizeItem = e
		}
	}
	if sizeItem == nil {
		in.malformed("no virtual disk size")
		return
	}
	itemOff := int64(le32(sizeItem[16:]))
	if le32(sizeItem[20:]) != 8 {
		in.malformed("virtual disk size item of length %d", le32(sizeItem[20:]))
		return
	}
	if itemOff+8 <= int64(len(m)) {
		in.setSize(le64(m[itemOff:]), 1)
		return
	}
	if !complete {
		in.malformed("truncated metadata")
		return
	}
	ok := in.want(base+itemOff, 8, base+vhdxTableSize, func(v []byte, complete bool) {
		if !complete {
			in.malformed("truncated metadata")
			return
		}
		in.setSize(le64(v), 1)
	})
	if !ok {
		in.malformed("virtual disk size offset out of range")
	}
}
