package format

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// qemuImg returns the path of qemu-img. Tests that need it skip without it,
// except under CI=true, where a missing qemu-img is a failure
// (scripts/install-test-deps.sh installs it).
func qemuImg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is required under CI=true: %v", err)
		}
		t.Skipf("qemu-img not installed: %v", err)
	}
	return p
}

// run runs qemu-img with args in dir.
func run(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(qemuImg(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// qemuInfo is what `qemu-img info --output=json` says about a file, read
// with the given format (or probed when fmt is "").
type qemuInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

func info(t testing.TB, path, fmt string) qemuInfo {
	t.Helper()
	args := []string{"info", "--output=json"}
	if fmt != "" {
		args = append(args, "-f", fmt)
	}
	out, err := exec.Command(qemuImg(t), append(args, path)...).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var i qemuInfo
	if err := json.Unmarshal(out, &i); err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	return i
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inspect feeds data in chunks of the sizes next returns (cycled) and
// checks that the memory the inspector holds stays bounded throughout.
func inspect(t testing.TB, data []byte, next func() int) Result {
	t.Helper()
	in := NewInspector()
	for len(data) > 0 {
		n := min(max(next(), 1), len(data))
		if w, err := in.Write(data[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		if h := in.held(); h > maxHeld {
			t.Fatalf("inspector holds %d bytes (limit %d)", h, maxHeld)
		}
		data = data[n:]
	}
	return in.Result()
}

// maxHeld bounds an inspector's memory: the head, the tail, and the largest
// region a format captures at one time.
const maxHeld = headCap + tailSize + maxRegion

// chunkings are the ways tests split a stream. Results must not depend on
// them.
func chunkings(size int) map[string]func() int {
	r := rand.New(rand.NewPCG(uint64(size), 42))
	c := map[string]func() int{
		"whole":  func() int { return size },
		"odd511": func() int { return 511 },
		"odd513": func() int { return 513 },
		"64KiB+1": func() int {
			return 64<<10 + 1
		},
		"random": func() int { return 1 + r.IntN(70000) },
		"random-small": func() int {
			return 1 + r.IntN(37)
		},
	}
	if size <= 1<<20 {
		c["1byte"] = func() int { return 1 }
	}
	return c
}

// sameResult compares results, errors by message.
func sameResult(a, b Result) bool {
	return a.Format == b.Format && a.Subformat == b.Subformat && a.VirtualSize == b.VirtualSize &&
		a.Size == b.Size && errText(a.Safe) == errText(b.Safe)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// inspectAll inspects data under every chunking and fails unless all agree.
func inspectAll(t testing.TB, data []byte) Result {
	t.Helper()
	want := inspect(t, data, func() int { return len(data) })
	for name, next := range chunkings(len(data)) {
		if got := inspect(t, data, next); !sameResult(got, want) {
			t.Fatalf("chunking %s: %+v, whole: %+v", name, got, want)
		}
	}
	return want
}

func tempFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// isoImage builds a minimal ISO 9660 image of blocks 2 KiB blocks: a
// primary volume descriptor at sector 16 and a set terminator after it.
func isoImage(blocks uint32) []byte {
	b := make([]byte, int(blocks)*2048)
	pvd := b[16*2048:]
	pvd[0], pvd[6] = 1, 1
	copy(pvd[1:], "CD001")
	copy(pvd[40:], "IMAGED_TEST")
	binary.LittleEndian.PutUint32(pvd[80:], blocks)
	binary.BigEndian.PutUint32(pvd[84:], blocks)
	binary.LittleEndian.PutUint16(pvd[128:], 2048)
	binary.BigEndian.PutUint16(pvd[130:], 2048)
	term := b[17*2048:]
	term[0], term[6] = 255, 1
	copy(term[1:], "CD001")
	return b
}

// qcow2Header builds a version 3 qcow2 header (and first cluster) with the
// given virtual size; callers patch it to lie.
func qcow2Header(size uint64) []byte {
	b := make([]byte, 64<<10)
	copy(b, "QFI\xfb")
	binary.BigEndian.PutUint32(b[4:], 3)
	binary.BigEndian.PutUint32(b[20:], 16)
	binary.BigEndian.PutUint64(b[24:], size)
	binary.BigEndian.PutUint32(b[96:], 4)
	binary.BigEndian.PutUint32(b[100:], 112)
	return b
}

// vmdkImage builds a sparse VMDK header followed by the given descriptor.
func vmdkImage(capacity uint64, descriptor string) []byte {
	b := make([]byte, 64<<10)
	copy(b, "KDMV")
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint64(b[12:], capacity)
	binary.LittleEndian.PutUint64(b[20:], 128)
	binary.LittleEndian.PutUint64(b[28:], 1)
	binary.LittleEndian.PutUint64(b[36:], 20)
	binary.LittleEndian.PutUint64(b[56:], 21)
	copy(b[512:], descriptor)
	return b
}

const sparseDescriptor = `# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicSparse"

# Extent description
RW 2048 SPARSE "disk.vmdk"

ddb.virtualHWVersion = "4"
`
