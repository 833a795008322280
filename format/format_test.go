package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

// TestQemuImages checks format and virtual size against qemu-img's own
// reading of images qemu-img made, under every chunking.
func TestQemuImages(t *testing.T) {
	t.Parallel()
	qemuImg(t)
	dir := t.TempDir()
	tests := []struct {
		name     string
		create   []string
		qemuFmt  string // format qemu-img info must be told ("" = probe)
		format   string
		sub      string
		declared string
	}{
		{"qcow2", []string{"-f", "qcow2"}, "", QCOW2, "", "qcow2"},
		{"qcow2-v2", []string{"-f", "qcow2", "-o", "compat=0.10"}, "", QCOW2, "", "qcow2"},
		{"qcow2-4k-clusters", []string{"-f", "qcow2", "-o", "cluster_size=4096"}, "", QCOW2, "", "qcow2"},
		{"vmdk-monolithicSparse", []string{"-f", "vmdk"}, "", VMDK, "monolithicSparse", "vmdk"},
		{"vmdk-streamOptimized", []string{"-f", "vmdk", "-o", "subformat=streamOptimized"}, "", VMDK, "streamOptimized", "vmdk"},
		{"vhd-dynamic", []string{"-f", "vpc"}, "", VHD, "dynamic", "vhd"},
		{"vhd-fixed", []string{"-f", "vpc", "-o", "subformat=fixed"}, "vpc", VHD, "fixed", "vhd"},
		{"vhd-fixed-exact", []string{"-f", "vpc", "-o", "subformat=fixed,force_size=on"}, "vpc", VHD, "fixed", "vhd"},
		{"vhdx", []string{"-f", "vhdx"}, "", VHDX, "", "vhdx"},
		{"vdi", []string{"-f", "vdi"}, "", VDI, "dynamic", "vdi"},
		{"vdi-static", []string{"-f", "vdi", "-o", "static=on"}, "", VDI, "static", "vdi"},
		{"raw", []string{"-f", "raw"}, "", Raw, "", "raw"},
	}
	for _, tt := range tests {
		for _, size := range []string{"3M", "10G"} {
			if size == "10G" && (tt.format == Raw || tt.sub == "fixed" || tt.sub == "static") {
				continue // not sparse in the stream: 10 GiB to read
			}
			t.Run(tt.name+"/"+size, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(dir, tt.name+"-"+size)
				run(t, dir, append(append([]string{"create", "-q"}, tt.create...), path, size)...)
				want := info(t, path, tt.qemuFmt)
				got := inspectAll(t, readFile(t, path))
				if got.Format != tt.format || got.Subformat != tt.sub || got.Safe != nil {
					t.Fatalf("got %+v, want format %s/%s, safe", got, tt.format, tt.sub)
				}
				if got.VirtualSize != want.VirtualSize {
					t.Errorf("virtual size %d, qemu-img says %d", got.VirtualSize, want.VirtualSize)
				}
				if err := Check(got, tt.declared); err != nil {
					t.Errorf("Check(%s) = %v", tt.declared, err)
				}
			})
		}
	}
}

// TestISO checks hand-built ISO 9660 and UDF images, plain and hybrid (with
// an MBR), against qemu-img, which reads them as raw.
func TestISO(t *testing.T) {
	t.Parallel()
	hybrid := isoImage(40)
	hybrid[510], hybrid[511] = 0x55, 0xaa
	hybrid[446], hybrid[446+4] = 0x80, 0x17
	udf := make([]byte, 64*2048)
	for i, id := range []string{"BEA01", "NSR03", "TEA01"} {
		d := udf[(16+i)*2048:]
		d[6] = 1
		copy(d[1:], id)
	}
	tests := []struct {
		name string
		data []byte
		sub  string
	}{
		{"iso9660", isoImage(20), "iso9660"},
		{"hybrid", hybrid, "iso9660"},
		{"udf", udf, "udf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := inspectAll(t, tt.data)
			if got.Format != ISO || got.Subformat != tt.sub || got.Safe != nil {
				t.Fatalf("got %+v", got)
			}
			if got.VirtualSize != int64(len(tt.data)) {
				t.Errorf("virtual size %d, want %d", got.VirtualSize, len(tt.data))
			}
			if _, err := exec.LookPath("qemu-img"); err == nil {
				path := tempFile(t, t.TempDir(), "x.iso", tt.data)
				if want := info(t, path, ""); want.VirtualSize != got.VirtualSize {
					t.Errorf("virtual size %d, qemu-img says %d", got.VirtualSize, want.VirtualSize)
				}
			}
			for _, declared := range []string{"iso", "raw"} {
				if err := Check(got, declared); err != nil {
					t.Errorf("Check(%s) = %v", declared, err)
				}
			}
			if err := Check(got, "qcow2"); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("Check(qcow2) = %v, want EINVALID", err)
			}
		})
	}
}

// TestPartitionTables checks that raw disks are told apart by partition
// table and stay raw.
func TestPartitionTables(t *testing.T) {
	t.Parallel()
	mbr := make([]byte, 1<<20)
	mbr[510], mbr[511] = 0x55, 0xaa
	mbr[446], mbr[446+4] = 0x80, 0x83
	gpt := bytes.Clone(mbr)
	gpt[446], gpt[446+4] = 0, 0xee
	copy(gpt[512:], "EFI PART")
	bootSector := bytes.Clone(mbr)
	bootSector[446] = 0x12 // not a boot flag: code, not a partition table
	tests := []struct {
		name string
		data []byte
		sub  string
	}{
		{"mbr", mbr, "mbr"},
		{"gpt", gpt, "gpt"},
		{"boot-sector", bootSector, ""},
		{"empty", nil, ""},
		{"short", []byte("hello"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := inspectAll(t, tt.data)
			if got.Format != Raw || got.Subformat != tt.sub || got.Safe != nil || got.VirtualSize != int64(len(tt.data)) {
				t.Fatalf("got %+v", got)
			}
			if err := Check(got, "raw"); err != nil {
				t.Errorf("Check(raw) = %v", err)
			}
		})
	}
}

// TestHostileQemuImages checks that images qemu-img makes with references
// to other files are refused.
func TestHostileQemuImages(t *testing.T) {
	t.Parallel()
	qemuImg(t)
	dir := t.TempDir()
	run(t, dir, "create", "-q", "-f", "qcow2", "base.qcow2", "1M")
	run(t, dir, "create", "-q", "-f", "vmdk", "base.vmdk", "1M")
	tests := []struct {
		name   string
		create []string
		file   string // the file to upload
		format string
		reason string // in the refusal message
	}{
		{"qcow2-backing", []string{"-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "overlay.qcow2"}, "overlay.qcow2", QCOW2, "backing file"},
		{"qcow2-backing-v2", []string{"-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2", "overlay2.qcow2"}, "overlay2.qcow2", QCOW2, "backing file"},
		{"qcow2-data-file", []string{"-f", "qcow2", "-o", "data_file=data.raw", "df.qcow2", "1M"}, "df.qcow2", QCOW2, "external data file"},
		{"vmdk-monolithicFlat", []string{"-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M"}, "flat.vmdk", VMDK, "descriptor files"},
		{"vmdk-twoGbMaxExtentSparse", []string{"-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", "two.vmdk", "1M"}, "two.vmdk", VMDK, "descriptor files"},
		{"vmdk-parent", []string{"-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "child.vmdk"}, "child.vmdk", VMDK, "parent"},
		{"qed", []string{"-f", "qed", "x.qed", "1M"}, "x.qed", QED, "QED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run(t, dir, append([]string{"create", "-q"}, tt.create...)...)
			got := inspectAll(t, readFile(t, filepath.Join(dir, tt.file)))
			if got.Format != tt.format {
				t.Errorf("format %s, want %s", got.Format, tt.format)
			}
			wantRefused(t, got, tt.format, tt.reason)
		})
	}
}

// wantRefused checks that the result is unsafe for the reason given and that
// Check refuses it whatever the declared format.
func wantRefused(t *testing.T, got Result, declared, reason string) {
	t.Helper()
	if got.Safe == nil {
		t.Fatalf("accepted: %+v", got)
	}
	var e *imaged.Error
	if !errors.As(got.Safe, &e) || e.Code != imaged.EINVALID {
		t.Fatalf("Safe = %#v, want an EINVALID *imaged.Error", got.Safe)
	}
	if !strings.Contains(e.Message, reason) {
		t.Errorf("message %q does not say %q", e.Message, reason)
	}
	for _, d := range []string{declared, "raw", "ploop"} {
		if err := Check(got, d); imaged.ErrorCode(err) != imaged.EINVALID {
			t.Errorf("Check(%s) = %v, want EINVALID", d, err)
		}
	}
}

// TestHostileVMDKDescriptors rewrites the descriptor of a sparse VMDK in
// the ways CVE-2022-47951 and CVE-2024-32498 used, and others.
func TestHostileVMDKDescriptors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		desc   string
		reason string
	}{
		{"flat-passwd", strings.NewReplacer(`"monolithicSparse"`, `"monolithicFlat"`, `SPARSE "disk.vmdk"`, `FLAT "/etc/passwd" 0`).Replace(sparseDescriptor), "another file"},
		{"flat-relative", strings.NewReplacer(`"monolithicSparse"`, `"monolithicFlat"`, `SPARSE "disk.vmdk"`, `FLAT "disk-flat.vmdk" 0`).Replace(sparseDescriptor), "not a sparse extent"},
		{"vmfs", strings.NewReplacer(`"monolithicSparse"`, `"vmfs"`).Replace(sparseDescriptor), `type "vmfs"`},
		{"sparse-extent-passwd", strings.Replace(sparseDescriptor, `"disk.vmdk"`, `"/etc/passwd"`, 1), "another file"},
		{"sparse-extent-backslash", strings.Replace(sparseDescriptor, `"disk.vmdk"`, `"..\\secret"`, 1), "another file"},
		{"flat-extent-relative", strings.Replace(sparseDescriptor, `SPARSE "disk.vmdk"`, `FLAT "passwd" 0`, 1), "not a sparse extent"},
		{"two-extents", strings.Replace(sparseDescriptor, "RW 2048", "RW 1024 SPARSE \"disk.vmdk\"\nRW 1024", 1), "2 extents"},
		{"no-extents", strings.Replace(sparseDescriptor, `RW 2048 SPARSE "disk.vmdk"`, "", 1), "0 extents"},
		{"parent", strings.Replace(sparseDescriptor, "# Extent", "parentFileNameHint=\"/etc/base.vmdk\"\n# Extent", 1), "parent"},
		{"createType-in-comment", "# createType=\"monolithicFlat\"\n" + sparseDescriptor, "exactly one createType"},
		{"no-createType", strings.Replace(sparseDescriptor, `createType="monolithicSparse"`, "", 1), "exactly one createType"},
		{"unknown-line", sparseDescriptor + "garbage here\n", "unexpected descriptor line"},
		{"not-ascii", sparseDescriptor + "# caf\xc3\xa9\n", "not ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := inspectAll(t, vmdkImage(2048, tt.desc))
			if got.Format != VMDK {
				t.Errorf("format %s", got.Format)
			}
			wantRefused(t, got, VMDK, tt.reason)
		})
	}
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		got := inspectAll(t, vmdkImage(2048, sparseDescriptor))
		if got.Safe != nil || got.VirtualSize != 2048*512 || got.Subformat != "monolithicSparse" {
			t.Fatalf("got %+v", got)
		}
	})
}

// TestLyingHeaders checks truncated and lying headers (sizes near overflow,
// offsets pointing backwards or far away) without qemu-img.
func TestLyingHeaders(t *testing.T) {
	t.Parallel()
	patch := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	be64 := func(b []byte, off int, v uint64) { binary.BigEndian.PutUint64(b[off:], v) }
	be32 := func(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	le64 := func(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	le32 := func(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	q := qcow2Header(1 << 30)
	vm := vmdkImage(2048, sparseDescriptor)
	vdi := make([]byte, 1024)
	copy(vdi, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	le32(vdi, 0x40, vdiSignature)
	le32(vdi, 0x44, vdiVersion11)
	le32(vdi, 0x4c, 1)
	le64(vdi, 0x170, 1<<30)

	tests := []struct {
		name   string
		data   []byte
		format string
		reason string // "" = accepted
		vsize  int64
	}{
		{"qcow2-control", q, QCOW2, "", 1 << 30},
		{"qcow2-size-overflow", patch(q, func(b []byte) { be64(b, 24, math.MaxUint64) }), QCOW2, "out of range", -1},
		{"qcow2-size-maxint", patch(q, func(b []byte) { be64(b, 24, math.MaxInt64) }), QCOW2, "", math.MaxInt64},
		{"qcow2-truncated", q[:50], QCOW2, "truncated header", -1},
		{"qcow2-truncated-v3", q[:90], QCOW2, "truncated header", 1 << 30},
		{"qcow2-cluster-bits", patch(q, func(b []byte) { be32(b, 20, 63) }), QCOW2, "cluster_bits", -1},
		{"qcow2-version", patch(q, func(b []byte) { be32(b, 4, 4) }), QCOW2, "unsupported version", -1},
		{"qcow2-header-length", patch(q, func(b []byte) { be32(b, 100, 0xfffffff8) }), QCOW2, "header_length", 1 << 30},
		{"qcow2-unknown-feature", patch(q, func(b []byte) { be64(b, 72, 1<<40) }), QCOW2, "unknown incompatible features", 1 << 30},
		{"qcow2-data-file-bit", patch(q, func(b []byte) { be64(b, 72, 1<<2) }), QCOW2, "external data file", 1 << 30},
		{"qcow2-ext-huge", patch(q, func(b []byte) { be32(b, 112, 0x12345678); be32(b, 116, 0xffffffff) }), QCOW2, "past the first cluster", 1 << 30},
		{"qcow2-ext-data-file", patch(q, func(b []byte) { be32(b, 112, 0x44415441); be32(b, 116, 6); copy(b[120:], "passwd") }), QCOW2, "external data file", 1 << 30},
		{"qcow2-ext-unterminated", patch(q, func(b []byte) {
			for off := 112; off+8 <= len(b); off += 8 {
				be32(b, off, 0x12345678)
			}
		}), QCOW2, "past the first cluster", 1 << 30},
		{"qcow2-ext-truncated", q[:200], QCOW2, "", 1 << 30}, // the end marker (zeros) is within
		{"qcow2-ext-cut", patch(q, func(b []byte) { be32(b, 112, 0x12345678); be32(b, 116, 300) })[:300], QCOW2, "truncated header extensions", 1 << 30},
		{"vmdk-capacity-overflow", patch(vm, func(b []byte) { le64(b, 12, math.MaxUint64/256) }), VMDK, "out of range", -1},
		{"vmdk-desc-elsewhere", patch(vm, func(b []byte) { le64(b, 28, 1<<60) }), VMDK, "descriptor at sector", -1},
		// A descriptor size past the end of the image: the region is capped
		// at 1 MiB, and the image must hold it.
		{"vmdk-desc-huge", patch(vm, func(b []byte) { le64(b, 36, math.MaxUint64) }), VMDK, "truncated descriptor", 2048 * 512},
		{"vmdk-desc-huge-2MiB", append(patch(vm, func(b []byte) { le64(b, 36, math.MaxUint64) }), make([]byte, 2<<20)...), VMDK, "", 2048 * 512},
		{"vmdk-desc-empty", patch(vm, func(b []byte) { le64(b, 36, 0) }), VMDK, "no embedded descriptor", -1},
		{"vmdk-desc-truncated", vm[:600], VMDK, "truncated descriptor", 2048 * 512},
		{"vmdk-version", patch(vm, func(b []byte) { le32(b, 4, 77) }), VMDK, "unsupported version", -1},
		{"vmdk-footer-missing", patch(vm, func(b []byte) { le64(b, 56, math.MaxUint64) }), VMDK, "missing footer", -1},
		{"vmdk-footer", append(patch(vm, func(b []byte) { le64(b, 56, math.MaxUint64) }), vmdkFooter(4096)...), VMDK, "", 4096 * 512},
		{"vdi-control", vdi, VDI, "", 1 << 30},
		{"vdi-size-overflow", patch(vdi, func(b []byte) { le64(b, 0x170, 1<<63) }), VDI, "out of range", -1},
		{"vdi-differencing", patch(vdi, func(b []byte) { le32(b, 0x4c, 4) }), VDI, "type 4", 1 << 30},
		{"vdi-truncated", vdi[:0x100], VDI, "truncated header", -1},
		{"luks", append([]byte("LUKS\xba\xbe\x00\x01"), make([]byte, 1000)...), LUKS, "LUKS", -1},
		{"qed-short", []byte("QED\x00"), QED, "QED", -1},
		{"vmdk-cowd", append([]byte("COWD"), make([]byte, 2000)...), VMDK, "vmfsSparse", -1},
		{"vhd-truncated", []byte("conectix\x00\x00\x00\x02"), VHD, "truncated footer", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := inspectAll(t, tt.data)
			if got.Format != tt.format || got.VirtualSize != tt.vsize {
				t.Errorf("got %+v, want %s, virtual size %d", got, tt.format, tt.vsize)
			}
			if tt.reason == "" {
				if got.Safe != nil {
					t.Fatalf("refused: %v", got.Safe)
				}
				return
			}
			wantRefused(t, got, tt.format, tt.reason)
		})
	}
}

// vmdkFooter is the end of a stream-optimized VMDK: footer marker, footer
// (a header copy carrying the capacity), end-of-stream marker.
func vmdkFooter(capacity uint64) []byte {
	b := make([]byte, 1536)
	binary.LittleEndian.PutUint32(b[12:], vmdkMarkerFoot)
	copy(b[512:], "KDMV")
	binary.LittleEndian.PutUint64(b[512+12:], capacity)
	return b
}

// TestHostileVHDAndVHDX patches real dynamic VHD and VHDX images into
// differencing ones and into lying ones.
func TestHostileVHDAndVHDX(t *testing.T) {
	t.Parallel()
	qemuImg(t)
	dir := t.TempDir()
	run(t, dir, "create", "-q", "-f", "vpc", "d.vhd", "3M")
	run(t, dir, "create", "-q", "-f", "vhdx", "x.vhdx", "3M")
	vhd, vhdx := readFile(t, filepath.Join(dir, "d.vhd")), readFile(t, filepath.Join(dir, "x.vhdx"))

	// Find the VHDX metadata table and its entries.
	rt := vhdx[vhdxRegionTableOff:]
	var metaOff int
	for i := range int(binary.LittleEndian.Uint32(rt[8:])) {
		if e := rt[16+32*i:]; string(e[:16]) == vhdxMetadataRegion {
			metaOff = int(binary.LittleEndian.Uint64(e[16:]))
		}
	}
	if metaOff == 0 {
		t.Fatal("no metadata region in qemu's vhdx")
	}
	meta := func(b []byte, guid string) int { // offset of the entry with guid
		m := b[metaOff:]
		for i := range int(binary.LittleEndian.Uint16(m[10:])) {
			if string(m[32+32*i:][:16]) == guid {
				return metaOff + 32 + 32*i
			}
		}
		t.Fatalf("no metadata entry %x", guid)
		return 0
	}
	vds := meta(vhdx, vhdxVirtualDiskSize)
	patch := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }

	tests := []struct {
		name   string
		data   []byte
		format string
		reason string
	}{
		{"vhd-differencing", patch(vhd, func(b []byte) { binary.BigEndian.PutUint32(b[60:], 4) }), VHD, "differencing"},
		{"vhd-fixed-at-start", patch(vhd, func(b []byte) { binary.BigEndian.PutUint32(b[60:], 2) }), VHD, "fixed disk footer at offset 0"},
		{"vhd-unknown-type", patch(vhd, func(b []byte) { binary.BigEndian.PutUint32(b[60:], 9) }), VHD, "unknown disk type"},
		{"vhdx-parent-locator", patch(vhdx, func(b []byte) {
			// Turn another metadata item into a parent locator.
			m := b[metaOff:]
			for i := range int(binary.LittleEndian.Uint16(m[10:])) {
				if e := m[32+32*i:]; string(e[:16]) != vhdxVirtualDiskSize {
					copy(e, vhdxParentLocator)
					break
				}
			}
		}), VHDX, "differencing"},
		{"vhdx-region-count", patch(vhdx, func(b []byte) { binary.LittleEndian.PutUint32(b[vhdxRegionTableOff+8:], 5000) }), VHDX, "region table entries"},
		{"vhdx-no-regi", patch(vhdx, func(b []byte) { copy(b[vhdxRegionTableOff:], "xxxx") }), VHDX, "signature"},
		{"vhdx-meta-backwards", patch(vhdx, func(b []byte) {
			rt := b[vhdxRegionTableOff:]
			for i := range int(binary.LittleEndian.Uint32(rt[8:])) {
				if e := rt[16+32*i:]; string(e[:16]) == vhdxMetadataRegion {
					binary.LittleEndian.PutUint64(e[16:], 100<<10) // before the region table
				}
			}
		}), VHDX, "out of range"},
		{"vhdx-meta-far", patch(vhdx, func(b []byte) {
			rt := b[vhdxRegionTableOff:]
			for i := range int(binary.LittleEndian.Uint32(rt[8:])) {
				if e := rt[16+32*i:]; string(e[:16]) == vhdxMetadataRegion {
					binary.LittleEndian.PutUint64(e[16:], math.MaxUint64-10)
				}
			}
		}), VHDX, "out of range"},
		{"vhdx-meta-count", patch(vhdx, func(b []byte) { binary.LittleEndian.PutUint16(b[metaOff+10:], 4000) }), VHDX, "metadata entries"},
		{"vhdx-size-overflow", patch(vhdx, func(b []byte) {
			off := binary.LittleEndian.Uint32(b[vds+16:])
			binary.LittleEndian.PutUint64(b[metaOff+int(off):], math.MaxUint64)
		}), VHDX, "out of range"},
		{"vhdx-size-item-far", patch(vhdx, func(b []byte) { binary.LittleEndian.PutUint32(b[vds+16:], math.MaxUint32) }), VHDX, "truncated metadata"},
		{"vhdx-truncated-region-table", vhdx[:200<<10], VHDX, "truncated region table"},
		{"vhdx-truncated-metadata", vhdx[:metaOff+100], VHDX, "truncated metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := inspectAll(t, tt.data)
			if got.Format != tt.format {
				t.Errorf("format %s, want %s", got.Format, tt.format)
			}
			wantRefused(t, got, tt.format, tt.reason)
		})
	}
}

// TestCheck checks declared formats against detected ones.
func TestCheck(t *testing.T) {
	t.Parallel()
	raw := Result{Format: Raw, VirtualSize: 10}
	qcow := Result{Format: QCOW2, VirtualSize: 10}
	iso := Result{Format: ISO, Subformat: "iso9660", VirtualSize: 10}
	fixed := Result{Format: VHD, Subformat: "fixed", VirtualSize: 10}
	dynamic := Result{Format: VHD, Subformat: "dynamic", VirtualSize: 10}
	unsafe := Result{Format: QCOW2, VirtualSize: 10, Safe: imaged.Errorf(imaged.EINVALID, "no")}
	tests := []struct {
		res      Result
		declared string
		ok       bool
	}{
		{raw, "raw", true}, {raw, "ami", true}, {raw, "qcow2", false}, {raw, "iso", false}, {raw, "vhd", false},
		{qcow, "qcow2", true}, {qcow, "raw", false}, {qcow, "aki", false}, {qcow, "vmdk", false},
		{iso, "iso", true}, {iso, "raw", true},
		{fixed, "vhd", true}, {fixed, "raw", true}, {dynamic, "raw", false}, {dynamic, "vhd", true},
		{qcow, "ploop", true}, {qcow, "custom-operator-format", true},
		{unsafe, "qcow2", false}, {unsafe, "ploop", false},
	}
	for _, tt := range tests {
		err := Check(tt.res, tt.declared)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%s/%s, %s) = %v, want ok=%v", tt.res.Format, tt.res.Subformat, tt.declared, err, tt.ok)
		}
		if err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Errorf("Check(%s, %s) code %s", tt.res.Format, tt.declared, imaged.ErrorCode(err))
		}
	}
	err := Check(qcow, "raw")
	if msg := imaged.ErrorMessage(err); !strings.Contains(msg, "disk_format raw") || !strings.Contains(msg, "qcow2") {
		t.Errorf("message %q", msg)
	}
}

// TestWriteAfterResult checks that Result is final.
func TestWriteAfterResult(t *testing.T) {
	t.Parallel()
	in := NewInspector()
	in.Write([]byte("hello"))
	r := in.Result()
	if n, err := in.Write(qcow2Header(1)); n != 64<<10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if r2 := in.Result(); !sameResult(r, r2) || r.Format != Raw || r.VirtualSize != 5 {
		t.Fatalf("%+v then %+v", r, r2)
	}
}
