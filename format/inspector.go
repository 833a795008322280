// Package format inspects disk image bytes while they stream through imaged,
// as OpenStack's format inspector does: it recognises the image format from
// the data (raw, qcow2, vmdk, vhd, vhdx, vdi, iso; qed and luks only to refuse
// them), computes the virtual size, and refuses images that would make a
// consumer such as qemu-img or nova read other files than the image itself
// (qcow2 backing or external data files, vmdk descriptors that are not
// single-file sparse images or whose extents name other files, differencing
// vhd/vhdx/vdi disks).
//
// The inspector never needs the whole image: it keeps the first 64 KiB, the
// header regions the detected format points at (each capped at 1 MiB), and a
// rolling window of the last bytes (fixed VHD and stream-optimized VMDK keep
// their metadata in a footer). Once those regions are consumed, Write costs
// O(1) per call whatever its length.
package format

import (
	"fmt"
	"math"

	"github.com/imaged/imaged"
)

// Format names, as Glance spells disk_format values (qed and luks have no
// disk_format: they are only recognised to be refused).
const (
	Raw   = "raw"
	QCOW2 = "qcow2"
	VMDK  = "vmdk"
	VHD   = "vhd"
	VHDX  = "vhdx"
	VDI   = "vdi"
	ISO   = "iso"
	QED   = "qed"
	LUKS  = "luks"
)

const (
	// headCap is how much of the start of the stream is always kept: enough
	// for every magic number and for ISO 9660 volume descriptors (sectors
	// 16..31 of 2 KiB).
	headCap = 64 << 10
	// detectAt is where formats with a magic number at offset 0 are decided;
	// every such header fits in the first 512 bytes. It is a fixed offset
	// (not "whenever the chunk ends") so that results cannot depend on how
	// the stream is chunked.
	detectAt = 512
	// maxRegion caps any single captured region (a qcow2 first cluster, a
	// vmdk descriptor): memory stays bounded whatever the headers claim.
	maxRegion = 1 << 20
	// tailSize is the rolling window kept at the end of the stream: a VMDK
	// footer is three 512-byte sectors, a VHD footer one.
	tailSize = 1536
)

// Result is what an inspection found.
type Result struct {
	// Format is the detected format: one of the Format names above. Data
	// that no inspector recognises is Raw.
	Format string
	// Subformat refines Format where it matters: "gpt" or "mbr" for a
	// partitioned raw disk, "iso9660" or "udf", the vmdk createType,
	// "fixed", "dynamic" or "differencing" for vhd, "dynamic" or "static"
	// for vdi. Empty when there is nothing to say.
	Subformat string
	// VirtualSize is the size of the disk the image describes, in bytes;
	// -1 when it could not be determined.
	VirtualSize int64
	// Size is the number of bytes inspected.
	Size int64
	// Safe is nil for an image that is safe to hand to qemu-img or a
	// hypervisor, otherwise an *imaged.Error (EINVALID) saying why not:
	// an unsafe configuration, an unsupported format, or headers that are
	// malformed or truncated.
	Safe error
}

// region is a byte range of the stream that a format needs to parse. It is
// filled as the bytes go by; done runs once, when it is complete or when the
// stream ended before that.
type region struct {
	off  int64
	want int
	buf  []byte
	done func(data []byte, complete bool)
}

func (r *region) next() int64 { return r.off + int64(len(r.buf)) }

// An Inspector is fed an image's bytes in order, through Write, and reports
// what it found with Result. It is not safe for concurrent use.
type Inspector struct {
	pos     int64
	head    []byte
	decided bool
	ended   bool
	pending []*region
	// chunk and chunkAt are the Write being processed, so that a region
	// added while processing it can take its bytes from it.
	chunk   []byte
	chunkAt int64

	tailOn bool
	tail   [tailSize]byte

	// atEnd runs when the stream has ended (from Result), for formats that
	// keep metadata in a footer.
	atEnd func()

	res Result
}

// NewInspector returns an Inspector that detects the format from the bytes.
func NewInspector() *Inspector {
	return &Inspector{
		head:   make([]byte, 0, headCap),
		tailOn: true,
		res:    Result{Format: Raw, VirtualSize: -1},
	}
}

// Write feeds the next bytes of the image. It never fails and never keeps p.
// Writes after Result are counted but not inspected.
func (in *Inspector) Write(p []byte) (int, error) {
	start := in.pos
	in.pos += int64(len(p))
	if in.ended {
		return len(p), nil
	}
	if in.tailOn {
		in.writeTail(p, start)
	}
	if len(in.head) < headCap || len(in.pending) > 0 {
		in.slow(p, start)
	}
	return len(p), nil
}

// slow handles a Write while the head or some region still wants bytes.
func (in *Inspector) slow(p []byte, start int64) {
	if n := len(in.head); n < headCap {
		in.head = append(in.head, p[:min(len(p), headCap-n)]...)
	}
	in.chunk, in.chunkAt = p, start
	defer func() { in.chunk = nil }()
	if !in.decided && len(in.head) >= detectAt {
		in.detectMagic()
	}
	if !in.decided && len(in.head) == headCap {
		in.detectLate()
	}
	in.fill()
}

// fill feeds the current chunk to the pending regions, running the done
// callbacks of those that complete (which may add more regions, fed from the
// same chunk in the next round).
func (in *Inspector) fill() {
	for len(in.pending) > 0 {
		progressed := false
		keep := in.pending[:0]
		var finished []*region
		for _, r := range in.pending {
			in.feed(r)
			if len(r.buf) == r.want {
				finished = append(finished, r)
				progressed = true
			} else {
				keep = append(keep, r)
			}
		}
		clear(in.pending[len(keep):])
		in.pending = keep
		for _, r := range finished {
			data := r.buf
			r.buf = nil // the callback parses it; the inspector keeps nothing
			r.done(data, true)
		}
		if !progressed {
			return
		}
	}
}

// feed copies into r what the head and the current chunk hold of its bytes.
func (in *Inspector) feed(r *region) {
	if nx := r.next(); nx < int64(len(in.head)) && len(r.buf) < r.want {
		end := min(int64(len(in.head)), r.off+int64(r.want))
		r.buf = append(r.buf, in.head[nx:end]...)
	}
	if len(r.buf) == r.want || in.chunk == nil {
		return
	}
	nx := r.next()
	cEnd := in.chunkAt + int64(len(in.chunk))
	if nx >= in.chunkAt && nx < cEnd {
		end := min(cEnd, r.off+int64(r.want))
		r.buf = append(r.buf, in.chunk[nx-in.chunkAt:end-in.chunkAt]...)
	}
}

// want registers a region of n bytes at off. trigger is the stream offset at
// which the structure pointing at the region was complete: bytes before it
// may already have gone by, so a region reaching back before trigger must lie
// within the head. This rule (rather than "whatever is still in the current
// chunk") keeps results independent of chunking.
func (in *Inspector) want(off int64, n int, trigger int64, done func(data []byte, complete bool)) bool {
	if off < 0 || n <= 0 || n > maxRegion || off > math.MaxInt64-int64(n) {
		return false
	}
	if off < trigger && min(off+int64(n), trigger) > headCap {
		return false
	}
	r := &region{off: off, want: n, buf: make([]byte, 0, n), done: done}
	in.pending = append(in.pending, r)
	return true
}

// Result ends the inspection and reports it. Call it after the last Write;
// later calls return the same Result.
func (in *Inspector) Result() Result {
	if in.ended {
		return in.res
	}
	in.ended = true
	in.chunk = nil
	if !in.decided {
		in.detectMagic()
	}
	if !in.decided {
		in.detectLate()
	}
	// Regions the stream ended inside of: give them what they got. A
	// callback may add regions; those lie past the end and end at once.
	for len(in.pending) > 0 {
		r := in.pending[0]
		in.pending = in.pending[1:]
		in.feed(r)
		data := r.buf
		r.buf = nil
		r.done(data, len(data) == r.want)
	}
	if in.atEnd != nil {
		in.atEnd()
	}
	in.res.Size = in.pos
	in.head = nil
	return in.res
}

// held reports the bytes the inspector holds, for tests of its memory bound.
func (in *Inspector) held() int {
	n := cap(in.head) + len(in.tail)
	for _, r := range in.pending {
		n += cap(r.buf)
	}
	return n
}

// writeTail keeps the last tailSize bytes of the stream in a ring: the byte
// at stream offset a lives at tail[a%tailSize].
func (in *Inspector) writeTail(p []byte, start int64) {
	if len(p) > tailSize {
		start += int64(len(p) - tailSize)
		p = p[len(p)-tailSize:]
	}
	i := int(start % tailSize)
	n := copy(in.tail[i:], p)
	copy(in.tail[:], p[n:])
}

// lastBytes returns the last n bytes of the stream (n ≤ tailSize), or nil
// when the stream is shorter or the tail was not kept.
func (in *Inspector) lastBytes(n int) []byte {
	if !in.tailOn || int64(n) > in.pos || n > tailSize {
		return nil
	}
	out := make([]byte, n)
	start := in.pos - int64(n)
	i := int(start % tailSize)
	k := copy(out, in.tail[i:])
	copy(out[k:], in.tail[:])
	return out
}

// decide records the detected format. Formats decided from their header stop
// the tail window unless they need it (keepTail).
func (in *Inspector) decide(format, sub string, keepTail bool) {
	in.decided = true
	in.res.Format = format
	in.res.Subformat = sub
	in.tailOn = keepTail
}

// unsafe records why the image must be refused; the first reason wins.
func (in *Inspector) unsafe(format string, args ...any) {
	if in.res.Safe == nil {
		in.res.Safe = imaged.Errorf(imaged.EINVALID, format, args...)
	}
}

// malformed records headers that cannot be parsed (or a truncated stream):
// such an image is refused too, since qemu would either fail on it or read
// it in ways nobody checked.
func (in *Inspector) malformed(format string, args ...any) {
	in.unsafe("Image data is not a valid %s image: %s.", in.res.Format, fmt.Sprintf(format, args...))
}

// setSize records a virtual size given as an unsigned count of units,
// refusing values that do not fit an int64.
func (in *Inspector) setSize(v uint64, unit uint64) {
	if unit == 0 || v > uint64(math.MaxInt64)/unit {
		in.malformed("virtual size %d×%d is out of range", v, unit)
		return
	}
	in.res.VirtualSize = int64(v * unit)
}
