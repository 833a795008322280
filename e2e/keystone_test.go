package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imaged/imaged/auth/keystonetest"
)

// ksEnv is a real Keystone with two imaged processes under --auth
// keystone, registered as the image service of RegionOne (a) and
// RegionTwo (b), and a loopback HTTP server for web-download.
type ksEnv struct {
	ks      *keystonetest.Server
	a, b    *server
	src     *httptest.Server
	srcData []byte
	tokens  map[string]string // persona → a project-scoped token
}

// freeLoopbackPort picks a free port; both imaged processes need each
// other's port before they start (glance-download's URLs pass the
// web-download port filter, as in Glance).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// keystoneFlags are the flags of an imaged that validates tokens with ks.
func keystoneFlags(ks *keystonetest.Server, extra ...string) []string {
	return append([]string{"--auth", "keystone", "--keystone-url", ks.URL, "--keystone-username", "imaged",
		"--keystone-project", "service", "--keystone-password", keystonetest.Password}, extra...)
}

func startKeystoneEnv(t *testing.T) *ksEnv {
	t.Helper()
	env := &ksEnv{ks: keystonetest.Start(t), srcData: randomBytes(t, 1<<20+13), tokens: map[string]string{}}
	env.src = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.raw" {
			http.NotFound(w, r)
			return
		}
		w.Write(env.srcData)
	}))
	t.Cleanup(env.src.Close)
	su, _ := url.Parse(env.src.URL)
	pa, pb := freeLoopbackPort(t), freeLoopbackPort(t)
	wd := []string{"--web-download-allowed-networks", "127.0.0.0/8", "--web-download-allowed-ports", su.Port() + "," + pa + "," + pb}
	env.a = startServer(t, keystoneFlags(env.ks, append(wd, "--addr", "127.0.0.1:"+pa)...)...)
	env.b = startServer(t, keystoneFlags(env.ks, append(wd, "--addr", "127.0.0.1:"+pb)...)...)
	env.ks.AddRegionEndpoint(t, "RegionOne", "image", "glance", env.a.URL)
	env.ks.AddRegionEndpoint(t, "RegionTwo", "image", "glance", env.b.URL)
	for _, p := range []string{"admin", "alice", "rita", "bob"} {
		env.tokens[p] = env.ks.Token(t, p)
	}
	t.Cleanup(func() {
		// Tokens are never logged, whatever happened.
		for p, tok := range env.tokens {
			for _, s := range []*server{env.a, env.b} {
				if strings.Contains(s.logs.String(), tok) {
					t.Errorf("%s's token appears in the log of %s", p, s.URL)
				}
			}
		}
	})
	return env
}

// osEnv is the environment of a Python OpenStack client acting as a
// persona with password authentication against the Keystone.
func (e *ksEnv) osEnv(home, user string) []string {
	p := e.ks.Personas[user]
	return append(os.Environ(), "HOME="+home, "PATH=/usr/bin:/bin:"+os.Getenv("PATH"),
		"OS_AUTH_URL="+e.ks.URL+"/v3", "OS_USERNAME="+user, "OS_PASSWORD="+keystonetest.Password,
		"OS_PROJECT_NAME="+p.Project, "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_IDENTITY_API_VERSION=3", "OS_IMAGE_API_VERSION=2", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public",
		"OS_AUTH_TYPE=password")
}

// run runs a client as user (stdin closed) and returns its output.
func (e *ksEnv) run(t *testing.T, home, user string, args ...string) (string, error) {
	t.Helper()
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command("sh", "-c", "exec "+strings.Join(q, " ")+" <&-")
	cmd.Env = e.osEnv(home, user)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// as returns a runner that fails the test when the command fails.
func (e *ksEnv) as(t *testing.T, home, user, tool string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := e.run(t, home, user, append([]string{tool}, args...)...)
		if err != nil {
			t.Fatalf("%s as %s: %s: %v\n%s", filepath.Base(tool), user, strings.Join(args, " "), err, out)
		}
		return out
	}
}

// ksImage is the part of an image record the Keystone tests read.
type ksImage struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Owner      string `json:"owner"`
	Checksum   string `json:"checksum"`
	Size       int64  `json:"size"`
	DiskFormat string `json:"disk_format"`
	Visibility string `json:"visibility"`
	raw        map[string]any
}

// get reads an image with a token; it returns the status code too.
func (s *server) ksGet(t *testing.T, token, id string) (int, *ksImage) {
	t.Helper()
	code, _, body := s.do(t, "GET", "/v2/images/"+id, token, "", "")
	var img ksImage
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &img); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(body), &img.raw)
	}
	return code, &img
}

// ksWait polls an image until it has the status (or the last import task
// failed), or fails the test after a minute (clients are slow here).
func (s *server) ksWait(t *testing.T, token, id, status string) *ksImage {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, img := s.ksGet(t, token, id)
		if code == http.StatusOK && img.Status == status {
			return img
		}
		if time.Now().After(deadline) {
			_, _, tasks := s.do(t, "GET", "/v2/images/"+id+"/tasks", token, "", "")
			t.Fatalf("image %s: %d %q, want %q; tasks: %s", id, code, img.Status, status, tasks)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ksTask waits for an image's last import task to end and returns it.
func (s *server) ksTask(t *testing.T, token, id string) importTask {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, body := s.do(t, "GET", "/v2/images/"+id+"/tasks", token, "", "")
		var out struct {
			Tasks []importTask `json:"tasks"`
		}
		if code == http.StatusOK && json.Unmarshal([]byte(body), &out) == nil && len(out.Tasks) > 0 {
			if last := out.Tasks[len(out.Tasks)-1]; last.Status == "success" || last.Status == "failure" {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import task of %s did not end: %d %s", id, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// TestKeystone drives imaged under --auth keystone with the clients
// operators use, all authenticating with passwords against a real
// Keystone and finding imaged in its catalog.
func TestKeystone(t *testing.T) {
	t.Parallel()
	env := startKeystoneEnv(t)
	file := filepath.Join(t.TempDir(), "disk.raw")
	data := randomBytes(t, 512<<10+3)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	beta := env.ks.Personas["bob"].ProjectID
	alpha := env.ks.Personas["alice"].ProjectID

	t.Run("info", func(t *testing.T) {
		t.Parallel()
		code, _, body := env.a.do(t, "GET", "/v2/info/import", env.tokens["alice"], "", "")
		if code != 200 || !strings.Contains(body, `"glance-download"`) || !strings.Contains(body, `"web-download"`) {
			t.Fatalf("info/import under keystone: %d %s", code, body)
		}
		// Without Keystone there is no user token to act with.
		plain := startServer(t)
		if code, _, body := plain.do(t, "GET", "/v2/info/import", tokAlice, "", ""); code != 200 || strings.Contains(body, "glance-download") {
			t.Fatalf("info/import under --auth tokens: %d %s", code, body)
		}
		if code, _, body := plain.do(t, "POST", "/v2/images/"+plain.newImage(t, tokAlice, "x")+"/import", tokAlice, "application/json",
			`{"method": {"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": "4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e"}}`); code != 400 ||
			!strings.Contains(body, "Unknown import method name 'glance-download'.") {
			t.Fatalf("glance-download under --auth tokens: %d %s", code, body)
		}
	})

	t.Run("personas", func(t *testing.T) {
		t.Parallel()
		a, tok := env.a, env.tokens
		// A reader cannot create.
		if code, _, body := a.do(t, "POST", "/v2/images", tok["rita"], "application/json", `{"name": "rita"}`); code != 403 {
			t.Fatalf("reader create: %d %s", code, body)
		}
		code, _, body := a.do(t, "POST", "/v2/images", tok["alice"], "application/json",
			`{"name": "alice-private", "visibility": "private", "disk_format": "raw", "container_format": "bare"}`)
		if code != 201 {
			t.Fatalf("member create: %d %s", code, body)
		}
		var img ksImage
		_ = json.Unmarshal([]byte(body), &img)
		if img.Owner != alpha {
			t.Fatalf("owner %q, want alpha's id %q", img.Owner, alpha)
		}
		tests := []struct {
			who    string
			get    int
			listed bool
		}{
			{"alice", 200, true},
			{"rita", 200, true}, // a reader of the owning project sees it
			{"bob", 404, false}, // another project does not
			{"admin", 200, true},
		}
		for _, tc := range tests {
			if code, _ := a.ksGet(t, tok[tc.who], img.ID); code != tc.get {
				t.Errorf("%s GET private image: %d, want %d", tc.who, code, tc.get)
			}
			_, _, list := a.do(t, "GET", "/v2/images?limit=1000", tok[tc.who], "", "")
			if got := strings.Contains(list, img.ID); got != tc.listed {
				t.Errorf("%s lists alice's private image: %v, want %v", tc.who, got, tc.listed)
			}
		}
		// A reader cannot change or delete it either; bob cannot even find it.
		if code, _, _ := a.do(t, "DELETE", "/v2/images/"+img.ID, tok["rita"], "", ""); code != 403 {
			t.Errorf("reader delete: %d", code)
		}
		if code, _, _ := a.do(t, "DELETE", "/v2/images/"+img.ID, tok["bob"], "", ""); code != 404 {
			t.Errorf("bob delete: %d", code)
		}
		if code, _, _ := a.do(t, "DELETE", "/v2/images/"+img.ID, tok["admin"], "", ""); code != 204 {
			t.Errorf("admin delete: %d", code)
		}
	})

	t.Run("openstack CLI", func(t *testing.T) {
		t.Parallel()
		osc := needTool(t, "openstack")
		home := t.TempDir()
		alice, bob := env.as(t, home, "alice", osc), env.as(t, home, "bob", osc)
		var up ksImage
		if err := json.Unmarshal([]byte(alice("image", "create", "-f", "json", "--disk-format", "raw", "--container-format", "bare",
			"--property", "os_distro=cirros", "--file", file, "osc-upload")), &up); err != nil {
			t.Fatal(err)
		}
		// The CLI prints the image as created, before its data.
		if got := env.a.ksWait(t, env.tokens["alice"], up.ID, "active"); got.Checksum != md5hex(data) {
			t.Fatalf("uploaded image: %+v", got)
		}
		// --import stages and imports with glance-direct.
		var imp ksImage
		if err := json.Unmarshal([]byte(alice("image", "create", "-f", "json", "--disk-format", "raw", "--container-format", "bare",
			"--import", "--file", file, "osc-import")), &imp); err != nil {
			t.Fatal(err)
		}
		if got := env.a.ksWait(t, env.tokens["alice"], imp.ID, "active"); got.Checksum != md5hex(data) {
			t.Fatalf("imported image: %+v", got)
		}
		if task := env.a.ksTask(t, env.tokens["alice"], imp.ID); !strings.Contains(fmt.Sprint(task.Input), "glance-direct") {
			t.Errorf("import task: %+v", task)
		}
		if out := alice("image", "list", "-f", "value", "-c", "ID"); !strings.Contains(out, up.ID) || !strings.Contains(out, imp.ID) {
			t.Fatalf("image list:\n%s", out)
		}
		alice("image", "set", "--name", "osc-renamed", "--property", "hw_disk_bus=scsi", up.ID)
		if _, img := env.a.ksGet(t, env.tokens["alice"], up.ID); img.Name != "osc-renamed" || img.raw["hw_disk_bus"] != "scsi" {
			t.Fatalf("after set: %+v", img.raw)
		}
		// Sharing across projects: pending images are not listed.
		alice("image", "add", "project", up.ID, beta)
		if out := bob("image", "list", "-f", "value", "-c", "ID"); strings.Contains(out, up.ID) {
			t.Fatalf("bob lists a pending shared image:\n%s", out)
		}
		bob("image", "set", "--accept", up.ID)
		if out := bob("image", "list", "-f", "value", "-c", "ID"); !strings.Contains(out, up.ID) {
			t.Fatalf("bob does not list an accepted image:\n%s", out)
		}
		if out, err := env.run(t, home, "rita", osc, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", file, "rita-img"); err == nil ||
			!strings.Contains(out, "403") {
			t.Fatalf("reader create succeeded or failed oddly: %v\n%s", err, out)
		}
		alice("image", "set", "--deactivate", up.ID)
		if _, img := env.a.ksGet(t, env.tokens["alice"], up.ID); img.Status != "deactivated" {
			t.Fatalf("after --deactivate: %s", img.Status)
		}
		alice("image", "set", "--activate", up.ID)
		if _, img := env.a.ksGet(t, env.tokens["alice"], up.ID); img.Status != "active" {
			t.Fatalf("after --activate: %s", img.Status)
		}
		alice("image", "delete", up.ID, imp.ID)
		if code, _ := env.a.ksGet(t, env.tokens["alice"], up.ID); code != 404 {
			t.Fatalf("after delete: %d", code)
		}
	})

	t.Run("glance CLI", func(t *testing.T) {
		t.Parallel()
		glance := needTool(t, "glance")
		home := t.TempDir()
		alice, bob := env.as(t, home, "alice", glance), env.as(t, home, "bob", glance)
		up := fieldOf(t, alice("image-create", "--name", "g-upload", "--disk-format", "raw", "--container-format", "bare", "--file", file), "id")
		if _, img := env.a.ksGet(t, env.tokens["alice"], up); img.Status != "active" || img.Checksum != md5hex(data) {
			t.Fatalf("uploaded: %+v", img)
		}
		direct := fieldOf(t, alice("image-create", "--name", "g-direct", "--disk-format", "raw", "--container-format", "bare"), "id")
		alice("image-stage", "--file", file, direct)
		alice("image-import", "--import-method", "glance-direct", direct)
		if img := env.a.ksWait(t, env.tokens["alice"], direct, "active"); img.Checksum != md5hex(data) {
			t.Fatalf("glance-direct: %+v", img)
		}
		web := fieldOf(t, alice("image-create", "--name", "g-web", "--disk-format", "raw", "--container-format", "bare"), "id")
		alice("image-import", "--import-method", "web-download", "--uri", env.src.URL+"/disk.raw", web)
		if img := env.a.ksWait(t, env.tokens["alice"], web, "active"); img.Checksum != md5hex(env.srcData) {
			t.Fatalf("web-download: %+v", img)
		}
		if out := alice("image-list"); !strings.Contains(out, up) || !strings.Contains(out, direct) || !strings.Contains(out, web) {
			t.Fatalf("image-list:\n%s", out)
		}
		if out := alice("image-update", "--property", "hw_scsi_model=virtio-scsi", up); !strings.Contains(out, "virtio-scsi") {
			t.Fatalf("image-update:\n%s", out)
		}
		alice("member-create", up, beta)
		bob("member-update", up, beta, "accepted")
		if out := bob("image-list"); !strings.Contains(out, up) {
			t.Fatalf("bob's image-list lacks the accepted image:\n%s", out)
		}
		if out := bob("image-show", up); !strings.Contains(out, "g-upload") {
			t.Fatalf("bob's image-show:\n%s", out)
		}
		alice("image-deactivate", up)
		if _, img := env.a.ksGet(t, env.tokens["alice"], up); img.Status != "deactivated" {
			t.Fatalf("after image-deactivate: %s", img.Status)
		}
		alice("image-reactivate", up)
		if _, img := env.a.ksGet(t, env.tokens["alice"], up); img.Status != "active" {
			t.Fatalf("after image-reactivate: %s", img.Status)
		}
		if out, err := env.run(t, home, "bob", glance, "image-delete", up); err == nil {
			t.Fatalf("a member deleted the owner's image:\n%s", out)
		}
		alice("image-delete", up, direct, web)
		if code, _ := env.a.ksGet(t, env.tokens["alice"], web); code != 404 {
			t.Fatalf("after image-delete: %d", code)
		}
	})

	t.Run("openstacksdk", func(t *testing.T) {
		t.Parallel()
		py := "/usr/bin/python3"
		if out, err := exec.Command(py, "-c", "import openstack").CombinedOutput(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("openstacksdk is not installed (scripts/deps/openstacksdk.sh installs it): %s", out)
			}
			t.Skipf("openstacksdk not installed: %s", out)
		}
		dir := t.TempDir()
		script := filepath.Join(dir, "sdk.py")
		if err := os.WriteFile(script, []byte(sdkScript), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := env.run(t, dir, "alice", py, script, env.src.URL+"/disk.raw", beta, md5hex(env.srcData))
		if err != nil || !strings.Contains(out, "SDK OK") {
			t.Fatalf("openstacksdk script: %v\n%s", err, out)
		}
	})

	t.Run("glance-download", func(t *testing.T) {
		t.Parallel()
		testGlanceDownload(t, env)
	})
}

// sdkScript drives imaged with openstacksdk (Debian's python3-openstacksdk)
// as alice, bob and rita; argv: a web-download URL, beta's project id and
// the MD5 of the URL's data.
const sdkScript = `
import hashlib, os, sys, time
import openstack
from openstack import exceptions

uri, beta, web_md5 = sys.argv[1], sys.argv[2], sys.argv[3]

def connect(user, project):
    return openstack.connect(auth_url=os.environ["OS_AUTH_URL"], username=user,
        password=os.environ["OS_PASSWORD"], project_name=project, user_domain_name="Default",
        project_domain_name="Default", region_name="RegionOne", identity_api_version="3",
        image_api_version="2")

alice, bob, rita = connect("alice", "alpha"), connect("bob", "beta"), connect("rita", "alpha")
data = os.urandom((1 << 20) + 7)

def wait(img, status):
    for _ in range(600):
        img = alice.image.get_image(img)
        if img.status == status:
            return img
        time.sleep(0.1)
    raise SystemExit("image %s stuck in %s, want %s" % (img.id, img.status, status))

up = alice.image.create_image("sdk-upload", data=data, disk_format="raw", container_format="bare", wait=True)
up = wait(up, "active")
assert up.checksum == hashlib.md5(data).hexdigest(), up

staged = alice.image.create_image("sdk-direct", data=data, disk_format="raw", container_format="bare",
                                  use_import=True, wait=True)
staged = wait(staged, "active")
assert staged.checksum == hashlib.md5(data).hexdigest(), staged

web = alice.image.create_image("sdk-web", disk_format="raw", container_format="bare", allow_duplicates=True)
alice.image.import_image(web, method="web-download", uri=uri)
web = wait(web, "active")
assert web.checksum == web_md5, web

ids = {i.id for i in alice.image.images()}
assert {up.id, staged.id, web.id} <= ids, ids

alice.image.update_image(up, name="sdk-renamed", hw_disk_bus="scsi")
got = alice.image.get_image(up)
assert got.name == "sdk-renamed" and got.hw_disk_bus == "scsi", got

alice.image.add_member(up, member_id=beta)
assert up.id not in {i.id for i in bob.image.images()}
bob.image.update_member(beta, up, status="accepted")
assert up.id in {i.id for i in bob.image.images()}

try:
    rita.image.create_image("sdk-rita", disk_format="raw", container_format="bare", allow_duplicates=True)
    raise SystemExit("the reader created an image")
except exceptions.HttpException as e:
    assert e.status_code == 403, e

alice.image.deactivate_image(up)
assert alice.image.get_image(up).status == "deactivated"
alice.image.reactivate_image(up)
assert alice.image.get_image(up).status == "active"

for img in (up, staged, web):
    alice.image.delete_image(img)
try:
    alice.image.get_image(up.id)
    raise SystemExit("deleted image still there")
except exceptions.ResourceNotFound:
    pass
print("SDK OK")
`

// glanceclientGlanceDownload imports argv[2] of RegionTwo into argv[1]
// with glanceclient, authenticated from the OS_* environment.
const glanceclientGlanceDownload = `
import os, sys
from keystoneauth1 import loading, session
from glanceclient import Client

auth = loading.get_plugin_loader("password").load_from_options(
    auth_url=os.environ["OS_AUTH_URL"], username=os.environ["OS_USERNAME"],
    password=os.environ["OS_PASSWORD"], project_name=os.environ["OS_PROJECT_NAME"],
    user_domain_name="Default", project_domain_name="Default")
gc = Client("2", session=session.Session(auth=auth), region_name="RegionOne", interface="public")
assert "glance-download" in gc.images.get_import_info()["import-methods"]["value"]
gc.images.image_import(sys.argv[1], "glance-download", remote_region="RegionTwo",
                       remote_image_id=sys.argv[2], remote_service_interface="public")
`

// testGlanceDownload imports an image of RegionTwo (b) into RegionOne (a)
// with glance-download, through the API and through the glance CLI.
func testGlanceDownload(t *testing.T, env *ksEnv) {
	a, b, tok := env.a, env.b, env.tokens
	data := randomBytes(t, 3<<20+21)
	// The source: alice's private image in RegionTwo, with properties
	// Glance copies (hw_*, os_distro) and one it does not.
	code, _, body := b.do(t, "POST", "/v2/images", tok["alice"], "application/json",
		`{"name": "remote", "visibility": "private", "disk_format": "raw", "container_format": "bare",
		  "hw_disk_bus": "scsi", "os_distro": "debian", "owner_note": "not copied"}`)
	if code != 201 {
		t.Fatalf("create remote: %d %s", code, body)
	}
	var remote ksImage
	_ = json.Unmarshal([]byte(body), &remote)
	if code := ksUpload(t, b, remote.ID, tok["alice"], bytes.NewReader(data)); code != 204 {
		t.Fatalf("upload remote: %d", code)
	}
	newLocal := func(t *testing.T, who string) string {
		t.Helper()
		code, _, body := a.do(t, "POST", "/v2/images", tok[who], "application/json",
			`{"name": "local", "disk_format": "qcow2", "container_format": "ovf"}`)
		if code != 201 {
			t.Fatalf("create local: %d %s", code, body)
		}
		var img ksImage
		_ = json.Unmarshal([]byte(body), &img)
		return img.ID
	}
	importReq := func(region, id string) string {
		return fmt.Sprintf(`{"method": {"name": "glance-download", "glance_region": %q, "glance_image_id": %q}}`, region, id)
	}

	t.Run("success", func(t *testing.T) {
		id := newLocal(t, "alice")
		if code, _, body := a.do(t, "POST", "/v2/images/"+id+"/import", tok["alice"], "application/json", importReq("RegionTwo", remote.ID)); code != 202 {
			t.Fatalf("import: %d %s", code, body)
		}
		task := a.ksTask(t, tok["alice"], id)
		if task.Status != "success" {
			t.Fatalf("task: %+v", task)
		}
		// Glance records the defaulted interface in the task's input.
		if req, _ := task.Input["import_req"].(map[string]any); req == nil || fmt.Sprint(req["method"]) != fmt.Sprint(map[string]any{
			"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": remote.ID, "glance_service_interface": "public"}) {
			t.Errorf("task input: %v", task.Input)
		}
		_, img := a.ksGet(t, tok["alice"], id)
		if img.Status != "active" || img.Checksum != md5hex(data) || img.Size != int64(len(data)) {
			t.Fatalf("imported: %+v", img)
		}
		if img.DiskFormat != "raw" || img.raw["container_format"] != "bare" || img.raw["hw_disk_bus"] != "scsi" ||
			img.raw["os_distro"] != "debian" || img.raw["owner_note"] != nil {
			t.Errorf("metadata copied as Glance does? %v", img.raw)
		}
		code, _, got := a.do(t, "GET", "/v2/images/"+id+"/file", tok["alice"], "", "")
		if code != 200 || got != string(data) {
			t.Fatalf("download of the imported image: %d, %d bytes", code, len(got))
		}
	})

	// glanceclient 4.1.0's glance-download options never reach the
	// request in either CLI command (do_image_import reads
	// args."remote-region"), so its library is driven directly.
	t.Run("glanceclient", func(t *testing.T) {
		needTool(t, "glance")
		home := t.TempDir()
		script := filepath.Join(home, "gd.py")
		if err := os.WriteFile(script, []byte(glanceclientGlanceDownload), 0o600); err != nil {
			t.Fatal(err)
		}
		id := newLocal(t, "alice")
		if out, err := env.run(t, home, "alice", "/usr/bin/python3", script, id, remote.ID); err != nil {
			t.Fatalf("glanceclient glance-download: %v\n%s", err, out)
		}
		if img := a.ksWait(t, tok["alice"], id, "active"); img.Checksum != md5hex(data) {
			t.Fatalf("imported through glanceclient: %+v", img)
		}
	})

	failures := []struct {
		name, who, region, reason string
	}{
		// bob's token does not see alice's private image in RegionTwo.
		{"not visible", "bob", "RegionTwo", "404"},
		{"unknown region", "alice", "Nowhere", "public glance endpoint not found for region Nowhere"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			id := newLocal(t, tc.who)
			if code, _, body := a.do(t, "POST", "/v2/images/"+id+"/import", tok[tc.who], "application/json", importReq(tc.region, remote.ID)); code != 202 {
				t.Fatalf("import: %d %s", code, body)
			}
			task := a.ksTask(t, tok[tc.who], id)
			if task.Status != "failure" || !strings.Contains(task.Message, tc.reason) {
				t.Fatalf("task: %+v, want a failure naming %q", task, tc.reason)
			}
			_, img := a.ksGet(t, tok[tc.who], id)
			if img.Status != "queued" || img.DiskFormat != "qcow2" || img.raw["hw_disk_bus"] != nil {
				t.Fatalf("after a failed glance-download: %+v", img.raw)
			}
		})
	}

	t.Run("bad requests", func(t *testing.T) {
		id := newLocal(t, "alice")
		bad := []struct{ body, msg string }{
			{`{"method": {"name": "glance-download", "glance_image_id": "` + remote.ID + `"}}`, "'glance_region' needs to be set"},
			{`{"method": {"name": "glance-download", "glance_region": "RegionTwo"}}`, "'glance_image_id' needs to be set"},
			{`{"method": {"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": "nope"}}`, "Remote image id does not look like a UUID: nope"},
			{`{"method": {"name": "glance-download", "glance_region": 7, "glance_image_id": "` + remote.ID + `"}}`, "glance_region"},
		}
		for _, tc := range bad {
			if code, _, body := a.do(t, "POST", "/v2/images/"+id+"/import", tok["alice"], "application/json", tc.body); code != 400 || !strings.Contains(body, tc.msg) {
				t.Errorf("%s: %d %s", tc.body, code, body)
			}
		}
		// rita may read but not import into alpha's image.
		if code, _, body := a.do(t, "POST", "/v2/images/"+id+"/import", tok["rita"], "application/json", importReq("RegionTwo", remote.ID)); code != 403 {
			t.Errorf("reader import: %d %s", code, body)
		}
	})
}

// ksUpload PUTs data as an image's data with a token.
func ksUpload(t *testing.T, s *server, id, token string, body *bytes.Reader) int {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.URL+"/v2/images/"+id+"/file", body)
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestKeystoneUnavailable: a bad token gets 401 with Keystone's
// WWW-Authenticate challenge; with Keystone stopped, a token imaged has
// not validated yet gets 503 in bounded time (no hang, no 500).
func TestKeystoneUnavailable(t *testing.T) {
	t.Parallel()
	ks := keystonetest.Start(t)
	s := startServer(t, keystoneFlags(ks, "--keystone-timeout", "2s")...)
	good := ks.Token(t, "alice")
	code, hdr, body := s.do(t, "GET", "/v2/images", "not-a-token", "", "")
	if want := `Keystone uri="` + ks.URL + `"`; code != 401 || hdr.Get("WWW-Authenticate") != want {
		t.Fatalf("bad token: %d %q %s, want 401 with %s", code, hdr.Get("WWW-Authenticate"), body, want)
	}
	if code, _, _ := s.do(t, "GET", "/v2/images", "", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	ks.Stop()
	for _, tok := range []string{good, "another-unknown-token"} {
		start := time.Now()
		code, _, body := s.do(t, "GET", "/v2/images", tok, "", "")
		if took := time.Since(start); code != 503 || took > 15*time.Second {
			t.Fatalf("Keystone stopped: %d after %v: %s, want 503 quickly", code, took, body)
		}
	}
	if strings.Contains(s.logs.String(), good) {
		t.Error("the token appears in imaged's log")
	}
}
