package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

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
