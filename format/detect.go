package format

import (
	"bytes"
	"encoding/binary"
)

// Byte-order helpers: header fields are read from slices already checked to
// be long enough.
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// detectMagic decides formats whose magic number is at offset 0 (or in the
// first sector). It runs once the head holds detectAt bytes, or at the end of
// a shorter stream; when nothing matches the decision waits for detectLate.
func (in *Inspector) detectMagic() {
	h := in.head
	switch {
	case bytes.HasPrefix(h, []byte("QFI\xfb")):
		in.decide(QCOW2, "", false)
		in.qcow2()
	case bytes.HasPrefix(h, []byte("QED\x00")):
		in.decide(QED, "", false)
		in.unsafe("QED images are not supported.")
	case bytes.HasPrefix(h, []byte("LUKS\xba\xbe")):
		in.decide(LUKS, "", false)
		in.unsafe("LUKS-encrypted images are not supported.")
	case bytes.HasPrefix(h, []byte("KDMV")):
		in.decide(VMDK, "", false)
		in.vmdkSparse()
	case bytes.HasPrefix(h, []byte("COWD")):
		in.decide(VMDK, "vmfsSparse", false)
		in.unsafe("VMDK images of type vmfsSparse are not supported; only monolithicSparse and streamOptimized are.")
	case bytes.HasPrefix(h, []byte("# Disk DescriptorFile")):
		// A bare descriptor: all data lives in extent files elsewhere.
		in.decide(VMDK, "", false)
		in.unsafe("VMDK descriptor files are not supported: the image must be a single monolithicSparse or streamOptimized file.")
	case bytes.HasPrefix(h, []byte("conectix")):
		in.decide(VHD, "", false)
		in.vhdHeader()
	case bytes.HasPrefix(h, []byte("vhdxfile")):
		in.decide(VHDX, "", false)
		in.vhdx()
	case len(h) >= 0x44 && le32(h[0x40:]) == vdiSignature:
		in.decide(VDI, "", false)
		in.vdi()
	}
}

// detectLate decides among the formats that need more than the first sector
// to tell apart (ISO 9660 descriptors start at 32 KiB) and raw. A fixed VHD
// is raw data followed by a footer; that is checked at the end.
func (in *Inspector) detectLate() {
	in.decided = true
	if sub, size, ok := isoDescriptors(in.head); ok {
		in.res.Format, in.res.Subformat = ISO, sub
		in.atEnd = func() {
			if !in.fixedVHD() {
				in.res.VirtualSize = size
				if size < 0 {
					in.res.VirtualSize = in.pos
				}
			}
		}
		return
	}
	in.res.Format, in.res.Subformat = Raw, partitionTable(in.head)
	in.atEnd = func() {
		if !in.fixedVHD() {
			in.res.VirtualSize = in.pos
		}
	}
}

// isoDescriptors looks for ISO 9660 or UDF volume descriptors in sectors
// 16..31. It returns the volume size from the primary volume descriptor, or
// -1 when there is none (UDF only).
func isoDescriptors(h []byte) (sub string, size int64, ok bool) {
	const sector = 2048
	size = -1
	for s := 16; (s+1)*sector <= len(h) && s < 32; s++ {
		d := h[s*sector : (s+1)*sector]
		switch string(d[1:6]) {
		case "CD001":
			ok = true
			if sub == "" {
				sub = "iso9660"
			}
			if d[0] == 1 && size < 0 {
				// Both-endian fields: the little-endian half comes first.
				blocks, bs := le32(d[80:]), le16(d[128:])
				if bs >= 512 && bs&(bs-1) == 0 {
					size = int64(blocks) * int64(bs)
				}
			}
			if d[0] == 255 { // set terminator
				return sub, size, ok
			}
		case "NSR02", "NSR03":
			ok, sub = true, "udf"
		case "BEA01", "TEA01", "BOOT2", "CDW02":
			// UDF volume recognition sequence; NSR0x says it is UDF.
		default:
			return sub, size, ok
		}
	}
	return sub, size, ok
}

// partitionTable says whether a raw disk starts with a GPT (protective MBR
// plus "EFI PART" header) or a plausible MBR partition table.
func partitionTable(h []byte) string {
	if len(h) < 512 || h[510] != 0x55 || h[511] != 0xaa {
		return ""
	}
	gpt := false
	for p := 0; p < 4; p++ {
		e := h[446+16*p:]
		if e[0] != 0 && e[0] != 0x80 {
			return "" // a boot sector, not a partition table
		}
		if e[4] == 0xee {
			gpt = true
		}
	}
	if gpt && len(h) >= 520 && string(h[512:520]) == "EFI PART" {
		return "gpt"
	}
	return "mbr"
}
