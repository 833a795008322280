package format

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// vhdxImage builds a minimal VHDX: identifier, region table at 192 KiB
// pointing at a metadata region at 256 KiB whose virtual disk size item sits
// 64 KiB into the region.
func vhdxImage(size uint64) []byte {
	const meta = 256 << 10
	b := make([]byte, meta+(64<<10)+8)
	copy(b, "vhdxfile")
	rt := b[vhdxRegionTableOff:]
	copy(rt, "regi")
	binary.LittleEndian.PutUint32(rt[8:], 1)
	copy(rt[16:], vhdxMetadataRegion)
	binary.LittleEndian.PutUint64(rt[32:], meta)
	binary.LittleEndian.PutUint32(rt[40:], 1<<20)
	m := b[meta:]
	copy(m, "metadata")
	binary.LittleEndian.PutUint16(m[10:], 1)
	copy(m[32:], vhdxVirtualDiskSize)
	binary.LittleEndian.PutUint32(m[48:], 64<<10)
	binary.LittleEndian.PutUint32(m[52:], 8)
	binary.LittleEndian.PutUint64(m[64<<10:], size)
	return b
}

func TestSyntheticVHDX(t *testing.T) {
	t.Parallel()
	got := inspectAll(t, vhdxImage(5<<30))
	if got.Format != VHDX || got.VirtualSize != 5<<30 || got.Safe != nil {
		t.Fatalf("got %+v", got)
	}
}

// seeds are small images of every kind, for the fuzzer to mutate.
func seeds() [][]byte {
	vhd := make([]byte, 512)
	copy(vhd, "conectix")
	binary.BigEndian.PutUint32(vhd[60:], vhdDynamic)
	binary.BigEndian.PutUint16(vhd[56:], 100)
	vhd[58], vhd[59] = 16, 63
	fixed := append(make([]byte, 4096), vhd...)
	binary.BigEndian.PutUint32(fixed[4096+60:], vhdFixed)
	vdi := make([]byte, 512)
	binary.LittleEndian.PutUint32(vdi[0x40:], vdiSignature)
	binary.LittleEndian.PutUint32(vdi[0x44:], vdiVersion11)
	binary.LittleEndian.PutUint32(vdi[0x4c:], 1)
	binary.LittleEndian.PutUint64(vdi[0x170:], 1<<20)
	return [][]byte{
		nil, []byte("QFI\xfb"), qcow2Header(1 << 20)[:4096],
		vmdkImage(2048, sparseDescriptor)[:2048],
		vhd, fixed, vdi, isoImage(20), vhdxImage(1 << 20),
		[]byte("LUKS\xba\xbe\x00\x01"), []byte("QED\x00"),
	}
}

// FuzzInspect checks that inspection never panics, keeps its memory bounded
// (inspect checks after every Write) and gives the same result however the
// stream is chunked.
func FuzzInspect(f *testing.F) {
	for i, s := range seeds() {
		f.Add(s, uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole := inspect(t, data, func() int { return len(data) })
		r := rand.New(rand.NewPCG(seed, 7))
		maxChunk := 1 + int(seed%4096)
		chunked := inspect(t, data, func() int { return 1 + r.IntN(maxChunk) })
		if !sameResult(whole, chunked) {
			t.Fatalf("whole %+v, chunked (seed %d) %+v", whole, seed, chunked)
		}
		if whole.VirtualSize < -1 || whole.Size != int64(len(data)) {
			t.Fatalf("bad result %+v", whole)
		}
		if !slices.Contains([]string{Raw, QCOW2, VMDK, VHD, VHDX, VDI, ISO, QED, LUKS}, whole.Format) {
			t.Fatalf("unknown format %q", whole.Format)
		}
		_ = Check(whole, "raw")
	})
}

// BenchmarkWrite measures Write throughput over 1 GiB streams once the
// headers are consumed: the upload path must never wait on inspection.
func BenchmarkWrite(b *testing.B) {
	const total = 1 << 30
	for _, kind := range []string{"raw", "qcow2"} {
		for _, chunk := range []int{64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/chunk=%dKiB", kind, chunk>>10), func(b *testing.B) {
				first := make([]byte, chunk)
				if kind == "qcow2" {
					copy(first, qcow2Header(total))
				}
				rest := make([]byte, chunk)
				for i := range rest {
					rest[i] = byte(i * 7)
				}
				b.SetBytes(total)
				b.ReportAllocs()
				for b.Loop() {
					in := NewInspector()
					in.Write(first)
					for range total/chunk - 1 {
						in.Write(rest)
					}
					if r := in.Result(); r.Format != kind || r.Safe != nil {
						b.Fatalf("%+v", r)
					}
				}
			})
		}
	}
}
