package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// needTool returns the path of a command-line client, skipping the test when
// it is missing, except in CI, where scripts/install-test-deps.sh installs it
// and a missing tool is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (scripts/install-test-deps.sh installs it)", name)
		}
		t.Skipf("%s not installed; run scripts/install-test-deps.sh", name)
	}
	return p
}

// cli runs a Python OpenStack client with stdin closed (glanceclient reads
// image data from a stdin that is not a terminal) and a private HOME (it
// caches the image schema there).
func cli(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command("sh", "-c", "exec "+strings.Join(q, " ")+" <&-")
	cmd.Env = append(os.Environ(), "HOME="+home, "PATH=/usr/bin:/bin:"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// glanceAs returns a function that runs the glance CLI against s with a
// token and fails the test when the command fails.
func glanceAs(t *testing.T, s *server, glance, home, token string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := cli(t, home, append([]string{glance, "--os-image-url", s.URL, "--os-auth-token", token}, args...)...)
		if err != nil {
			t.Fatalf("glance %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
}

func TestGlanceCLI(t *testing.T) {
	t.Parallel()
	glance := needTool(t, "glance")
	s := startServer(t)
	home := t.TempDir()
	g := glanceAs(t, s, glance, home, tokAlice)
	out := g("image-create", "--name", "cli-img", "--disk-format", "qcow2", "--container-format", "bare", "--property", "os_distro=cirros")
	id := fieldOf(t, out, "id")
	if !strings.Contains(out, "cirros") || !strings.Contains(out, "queued") {
		t.Fatalf("image-create output:\n%s", out)
	}
	if out := g("image-list"); !strings.Contains(out, id) {
		t.Fatalf("image-list lacks %s:\n%s", id, out)
	}
	if out := g("image-show", id); !strings.Contains(out, "cli-img") {
		t.Fatalf("image-show:\n%s", out)
	}
	if out := g("image-update", "--property", "hw_disk_bus=scsi", "--remove-property", "os_distro", id); !strings.Contains(out, "scsi") || strings.Contains(out, "os_distro") {
		t.Fatalf("image-update:\n%s", out)
	}
	g("image-tag-update", id, "mytag")
	if out := g("image-show", id); !strings.Contains(out, "mytag") {
		t.Fatalf("tag missing:\n%s", out)
	}
	g("image-tag-delete", id, "mytag")
	g("member-create", id, "projB")
	if out := g("member-list", "--image-id", id); !strings.Contains(out, "projB") || !strings.Contains(out, "pending") {
		t.Fatalf("member-list:\n%s", out)
	}
	bob, err := cli(t, home, glance, "--os-image-url", s.URL, "--os-auth-token", tokBob, "member-update", id, "projB", "accepted")
	if err != nil || !strings.Contains(bob, "accepted") {
		t.Fatalf("member-update by the member: %v\n%s", err, bob)
	}
	g("member-delete", id, "projB")
	g("image-delete", id)
	if out, err := cli(t, home, glance, "--os-image-url", s.URL, "--os-auth-token", tokAlice, "image-show", id); err == nil {
		t.Fatalf("image-show after delete succeeded:\n%s", out)
	}
}

func TestOpenStackCLI(t *testing.T) {
	t.Parallel()
	osc := needTool(t, "openstack")
	s := startServer(t)
	home := t.TempDir()
	o := func(args ...string) string {
		t.Helper()
		base := []string{osc, "--os-auth-type", "admin_token", "--os-token", tokAlice, "--os-endpoint", s.URL + "/v2"}
		out, err := cli(t, home, append(base, args...)...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// The image is made through the API so that this test covers the
	// metadata commands alone (TestCLIImageData covers create --file).
	img, err := images.Create(context.Background(), s.client(t, tokAlice), images.CreateOpts{
		Name: "osc-img", DiskFormat: "raw", ContainerFormat: "bare", Properties: map[string]string{"os_distro": "debian"},
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if out := o("image", "list", "-f", "json"); !strings.Contains(out, "osc-img") {
		t.Fatalf("image list:\n%s", out)
	}
	if out := o("image", "show", "-f", "json", "osc-img"); !strings.Contains(out, "debian") {
		t.Fatalf("image show:\n%s", out)
	}
	o("image", "set", "--name", "osc-renamed", "osc-img")
	var shown map[string]any
	if err := json.Unmarshal([]byte(o("image", "show", "-f", "json", img.ID)), &shown); err != nil || shown["name"] != "osc-renamed" {
		t.Fatalf("after set: %v %v", err, shown)
	}
	o("image", "delete", "osc-renamed")
}

// fieldOf reads a field from glanceclient's "| key | value |" table.
func fieldOf(t *testing.T, table, key string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) >= 3 && strings.TrimSpace(cells[1]) == key {
			return strings.TrimSpace(cells[2])
		}
	}
	t.Fatalf("no %q in:\n%s", key, table)
	return ""
}

// TestGlanceCLILegacyTask: the glance CLI's task-create runs Glance's
// legacy import task (POST /v2/tasks, type import) against imaged: the
// task ends in success with the new image's id, and the image holds the
// served bytes (image-download through the CLI, which checks the MD5).
func TestGlanceCLILegacyTask(t *testing.T) {
	t.Parallel()
	glance := needTool(t, "glance")
	data := randomBytes(t, 3<<20+5)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "disk.img", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(src.Close)
	u, err := url.Parse(src.URL)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--web-download-allowed-networks", "127.0.0.0/8", "--web-download-allowed-ports", u.Port())
	home := t.TempDir()
	g := glanceAs(t, s, glance, home, tokAdmin)
	input := `{"import_from": "` + src.URL + `/disk.img", "import_from_format": "raw",` +
		` "image_properties": {"name": "legacy-cli", "disk_format": "raw", "container_format": "bare"}}`
	out := g("task-create", "--type", "import", "--input", input)
	taskID := fieldOf(t, out, "id")
	if st := fieldOf(t, out, "status"); st != "pending" && st != "processing" && st != "success" {
		t.Fatalf("task-create status %q:\n%s", st, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out = g("task-show", taskID)
		if st := fieldOf(t, out, "status"); st == "success" {
			break
		} else if st == "failure" || time.Now().After(deadline) {
			t.Fatalf("task %s:\n%s", taskID, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var result struct {
		ImageID string `json:"image_id"`
	}
	if err := json.Unmarshal([]byte(fieldOf(t, out, "result")), &result); err != nil || result.ImageID == "" {
		t.Fatalf("task result %q: %v", fieldOf(t, out, "result"), err)
	}
	file := filepath.Join(home, "legacy.img")
	g("image-download", "--file", file, result.ImageID)
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d served", len(got), err, len(data))
	}
	if out := g("image-show", result.ImageID); fieldOf(t, out, "status") != "active" || fieldOf(t, out, "name") != "legacy-cli" {
		t.Fatalf("image-show:\n%s", out)
	}
}
