package catalog_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
	"github.com/imaged/imaged/webfetch"
)

// locEnv is a catalog with locations shown, an http(s) location fetcher
// allowed on loopback, and a loopback web server with two objects.
type locEnv struct {
	*dataEnv
	srv        *httptest.Server
	one, two   []byte
	oneU, twoU string
}

func newLocEnv(t *testing.T, mode string) *locEnv {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.ShowMultipleLocations, cfg.ShowImageDirectURL = true, true
	e := &locEnv{dataEnv: newDataEnv(t, mode, cfg), one: randomBytes(1, 5000), two: randomBytes(2, 3000)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []byte
		switch r.URL.Path {
		case "/one":
			b = e.one
		case "/two":
			b = e.two
		case "/empty":
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}))
	t.Cleanup(e.srv.Close)
	e.oneU, e.twoU = e.srv.URL+"/one", e.srv.URL+"/two"
	f, err := webfetch.New(webfetch.Config{AllowedPorts: webfetch.AnyPort(),
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = e.svc.WithLocationFetcher(f)
	return e
}

func loc(u string, md map[string]any) map[string]any {
	if md == nil {
		md = map[string]any{}
	}
	return map[string]any{"url": u, "metadata": md}
}

func addLoc(path string, v any) imaged.PatchOp {
	return imaged.PatchOp{Op: "add", Path: path, Value: v, HasValue: true}
}

func (e *locEnv) patch(who *imaged.Identity, id string, ops ...imaged.PatchOp) (*imaged.Image, error) {
	return e.svc.UpdateImage(as(who), id, ops)
}

func TestAddLocationActivatesQueuedImage(t *testing.T) {
	t.Parallel()
	e := newLocEnv(t, "legacy")
	img := e.image("raw")
	md5sum := md5.Sum(e.one)
	sha := sha512.Sum512(e.one)
	v := loc(e.oneU, map[string]any{"k": "v"})
	v["validation_data"] = map[string]any{"checksum": hex.EncodeToString(md5sum[:]), "os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sha[:])}
	out, err := e.patch(owner, img.ID, addLoc("/locations/7", v))
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != imaged.StatusActive || out.Size == nil || *out.Size != 5000 || out.Checksum != hex.EncodeToString(md5sum[:]) || out.OSHashAlgo != "sha512" {
		t.Fatalf("image after add: status %s size %v checksum %q algo %q", out.Status, out.Size, out.Checksum, out.OSHashAlgo)
	}
	locs := e.svc.ImageLocations(as(owner), out)
	if len(locs) != 1 || locs[0].URL != e.oneU || locs[0].Metadata["k"] != "v" {
		t.Fatalf("locations %+v", locs)
	}
	// The bytes are read through the location.
	if got := download(t, e.svc, owner, img.ID, 0, -1); !bytes.Equal(got, e.one) {
		t.Fatalf("download through the location: %d bytes, want the 5000 served", len(got))
	}
	if got := download(t, e.svc, owner, img.ID, 4990, 5); !bytes.Equal(got, e.one[4990:4995]) {
		t.Fatal("ranged download through the location differs")
	}

	// A second location at the front becomes the first (direct_url).
	out, err = e.patch(owner, img.ID, addLoc("/locations/0", loc(e.twoU, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Locations) != 2 || out.Locations[0].URL != e.twoU || *out.Size != 5000 {
		t.Fatalf("after second add: %+v size %d", out.Locations, *out.Size)
	}
	// Duplicate, then removal by "-" and by index, then the last one.
	_, err = e.patch(owner, img.ID, addLoc("/locations/-", loc(e.twoU, nil)))
	wantErr(t, err, imaged.EINVALID, "The location "+e.twoU+" already exists")
	_, err = e.patch(owner, img.ID, imaged.PatchOp{Op: "remove", Path: "/locations/2"})
	wantErr(t, err, imaged.EINVALID, "Invalid position for removing a location.")
	out, err = e.patch(owner, img.ID, imaged.PatchOp{Op: "remove", Path: "/locations/-"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Locations) != 1 || out.Locations[0].URL != e.twoU {
		t.Fatalf("after remove -: %+v", out.Locations)
	}
	_, err = e.patch(owner, img.ID, imaged.PatchOp{Op: "remove", Path: "/locations/0"})
	wantErr(t, err, imaged.EFORBIDDEN, "Cannot remove last location in the image.")
}

func TestLocationRefusals(t *testing.T) {
	t.Parallel()
	e := newLocEnv(t, "legacy")
	q := e.image("raw")
	cases := []struct {
		name      string
		op        imaged.PatchOp
		code, msg string
	}{
		{"file url", addLoc("/locations/-", loc("file:///etc/passwd", nil)), imaged.EINVALID, "Invalid location"},
		{"docker url", addLoc("/locations/-", loc("docker://registry/x:1", nil)), imaged.EINVALID, "Invalid location"},
		{"blob url", addLoc("/locations/-", loc("blob:///images/x/y", nil)), imaged.EINVALID, "Invalid location"},
		{"missing object", addLoc("/locations/-", loc("http://127.0.0.1:1/none", nil)), imaged.EINVALID, "Invalid location"},
		{"empty object", addLoc("/locations/-", loc(e.srv.URL+"/empty", nil)), imaged.EINVALID, "Invalid location"},
		{"404", addLoc("/locations/-", loc(e.srv.URL+"/nope", nil)), imaged.EINVALID, "Invalid location"},
		{"bad position", addLoc("/locations/x", loc(e.oneU, nil)), imaged.EINVALID, "Invalid position for adding a location."},
		{"no metadata", addLoc("/locations/-", map[string]any{"url": e.oneU}), imaged.EINVALID, "Provided object does not match schema 'image': 'metadata' is a required property"},
		{"url type", addLoc("/locations/-", map[string]any{"url": 5.0, "metadata": map[string]any{}}), imaged.EINVALID, "Provided object does not match schema 'image': 5 is not of type 'string'"},
		{"number metadata", addLoc("/locations/-", loc(e.oneU, map[string]any{"a": 1.0})), imaged.EINVALID, "The image metadata key a has an invalid type of float. Only unicode is supported."},
		{"vd extra", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"foo": "1"}}),
			imaged.EINVALID, "Provided object does not match schema 'image': Additional properties are not allowed ('foo' was unexpected)"},
		{"vd missing", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"checksum": "1"}}),
			imaged.EINVALID, "Provided object does not match schema 'image': 'os_hash_algo' is a required property"},
		{"vd algo", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"os_hash_algo": "md5", "os_hash_value": "abc"}}),
			imaged.ECONFLICT, "os_hash_algo must be sha512, not md5"},
		{"vd short", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"os_hash_algo": "sha512", "os_hash_value": "abcd"}}),
			imaged.ECONFLICT, "os_hash_value (abcd) is not the correct size for sha512 (should be 64 bytes)"},
		{"vd hex", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"os_hash_algo": "sha512", "os_hash_value": "abc"}}),
			imaged.ECONFLICT, "os_hash_value (abc) is not a valid hexadecimal value"},
		{"vd checksum", addLoc("/locations/-", map[string]any{"url": e.oneU, "metadata": map[string]any{}, "validation_data": map[string]any{"checksum": strings.Repeat("z", 32), "os_hash_algo": "sha512", "os_hash_value": "ab"}}),
			imaged.ECONFLICT, "checksum (" + strings.Repeat("z", 32) + ") is not a valid hexadecimal value"},
		{"replace null", imaged.PatchOp{Op: "replace", Path: "/locations", HasValue: true}, imaged.EINVALID, "Provided object does not match schema 'image': None is not of type 'array'"},
		{"replace empty", imaged.PatchOp{Op: "replace", Path: "/locations", Value: []any{}, HasValue: true}, imaged.EFORBIDDEN, "Cannot set locations to empty list."},
		{"replace dup", imaged.PatchOp{Op: "replace", Path: "/locations", Value: []any{loc(e.oneU, nil), loc(e.oneU, nil)}, HasValue: true}, imaged.EINVALID, "The location " + e.oneU + " already exists"},
		{"remove queued", imaged.PatchOp{Op: "remove", Path: "/locations/0"}, imaged.ECONFLICT, "It's not allowed to remove locations if image status is queued."},
		{"other project", addLoc("/locations/-", loc(e.oneU, nil)), imaged.ENOTFOUND, "No image found with ID " + q.ID},
	}
	for _, c := range cases {
		who := owner
		if c.name == "other project" {
			who = other
		}
		_, err := e.patch(who, q.ID, c.op)
		if imaged.ErrorCode(err) != c.code || imaged.ErrorMessage(err) != c.msg {
			t.Errorf("%s: got %s %q, want %s %q", c.name, imaged.ErrorCode(err), imaged.ErrorMessage(err), c.code, c.msg)
		}
	}
	if img := e.get(q.ID); img.Status != imaged.StatusQueued || len(img.Locations) != 0 {
		t.Fatalf("refused changes changed the image: %s %+v", img.Status, img.Locations)
	}
}

func TestReplaceLocations(t *testing.T) {
	t.Parallel()
	e := newLocEnv(t, "legacy")
	// An uploaded image: its bytes show as a file:// URL under the store.
	img := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader(e.one), int64(len(e.one))); err != nil {
		t.Fatal(err)
	}
	img = e.get(img.ID)
	locs := e.svc.ImageLocations(as(owner), img)
	if len(locs) != 1 || !strings.HasPrefix(locs[0].URL, "file://"+e.blobs.Root()+"/") {
		t.Fatalf("uploaded image's location %+v, want file:// under %s", locs, e.blobs.Root())
	}
	// The URL names the real file (the fs store's Path), not a made-up one.
	if data, err := os.ReadFile(strings.TrimPrefix(locs[0].URL, "file://")); err != nil || !bytes.Equal(data, e.one) {
		t.Fatalf("location %s does not hold the image's bytes: %v", locs[0].URL, err)
	}
	// Sending the shown list back (new metadata) keeps the bytes.
	out, err := e.patch(owner, img.ID, imaged.PatchOp{Op: "replace", Path: "/locations", HasValue: true,
		Value: []any{loc(locs[0].URL, map[string]any{"note": "x"})}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Locations) != 1 || out.Locations[0].URL != img.Locations[0].URL || out.Locations[0].Metadata["note"] != "x" {
		t.Fatalf("replace with the same URL: %+v", out.Locations)
	}
	// Re-adding our own file is a local file: refused, as Glance does.
	_, err = e.patch(owner, img.ID, addLoc("/locations/-", loc(locs[0].URL, nil)))
	wantErr(t, err, imaged.EINVALID, "Invalid location")
	// Other URLs may not replace a non-empty list.
	_, err = e.patch(owner, img.ID, imaged.PatchOp{Op: "replace", Path: "/locations", HasValue: true, Value: []any{loc(e.twoU, nil)}})
	if imaged.ErrorCode(err) != imaged.EINVALID || !strings.HasPrefix(imaged.ErrorMessage(err), "Original locations is not empty: [{'url': 'file://") {
		t.Fatalf("replace with other URLs: %v", err)
	}
	// Add an http location, then remove ours: the bytes are deleted.
	if _, err := e.patch(owner, img.ID, addLoc("/locations/-", loc(e.twoU, nil)), imaged.PatchOp{Op: "remove", Path: "/locations/0"}); err != nil {
		t.Fatal(err)
	}
	if keys := e.blobKeys(); len(keys) != 0 {
		t.Fatalf("blobs left after removing the location: %v", keys)
	}
	// A queued image takes a whole new list and becomes active.
	q := e.image("raw")
	out, err = e.patch(owner, q.ID, imaged.PatchOp{Op: "replace", Path: "/locations", HasValue: true, Value: []any{loc(e.twoU, nil), loc(e.oneU, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != imaged.StatusActive || *out.Size != 3000 || len(out.Locations) != 2 {
		t.Fatalf("queued image after replace: %s %d %+v", out.Status, *out.Size, out.Locations)
	}
	// Deactivated images refuse changes.
	if err := e.svc.DeactivateImage(as(admin), q.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.patch(owner, q.ID, imaged.PatchOp{Op: "remove", Path: "/locations/0"})
	wantErr(t, err, imaged.ECONFLICT, "It's not allowed to remove locations if image status is deactivated.")
	_, err = e.patch(owner, q.ID, addLoc("/locations/0", loc(e.oneU+"?x", nil)))
	wantErr(t, err, imaged.ECONFLICT, "It's not allowed to add locations if image status is deactivated.")
}

func TestLocationsHiddenByDefault(t *testing.T) {
	t.Parallel()
	e := newDataEnv(t, "legacy", catalog.DefaultConfig())
	img := e.image("raw")
	if _, err := e.svc.UploadImage(as(owner), img.ID, bytes.NewReader([]byte("abc")), 3); err != nil {
		t.Fatal(err)
	}
	if m, d := e.svc.ShowLocations(); m || d {
		t.Fatal("locations shown by default")
	}
	for _, c := range []struct {
		op   imaged.PatchOp
		verb string
	}{
		{addLoc("/locations/-", loc("http://example.com/x", nil)), "add"},
		{imaged.PatchOp{Op: "replace", Path: "/locations", HasValue: true, Value: []any{loc("http://example.com/x", nil)}}, "update"},
		{imaged.PatchOp{Op: "remove", Path: "/locations/0"}, "remove"},
	} {
		_, err := e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{c.op})
		wantErr(t, err, imaged.EFORBIDDEN, "It's not allowed to "+c.verb+" locations if locations are invisible.")
	}
}

func TestImageLocationsPolicy(t *testing.T) {
	t.Parallel()
	// Secure RBAC: get_image_location is for the owner's readers; others
	// see an empty list.
	e := newLocEnv(t, "secure")
	img := e.image("raw")
	if _, err := e.patch(owner, img.ID, addLoc("/locations/-", loc(e.oneU, nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.patch(owner, img.ID, imaged.PatchOp{Op: "replace", Path: "/visibility", Value: "community", HasValue: true}); err != nil {
		t.Fatal(err)
	}
	img = e.get(img.ID)
	if got := e.svc.ImageLocations(as(owner), img); len(got) != 1 {
		t.Fatalf("owner sees %v", got)
	}
	if got := e.svc.ImageLocations(as(other), img); len(got) != 0 {
		t.Fatalf("another project sees %v", got)
	}
	// delete_image_location is admin-only in secure mode.
	if _, err := e.patch(owner, img.ID, addLoc("/locations/-", loc(e.twoU, nil))); err != nil {
		t.Fatal(err)
	}
	_, err := e.patch(owner, img.ID, imaged.PatchOp{Op: "remove", Path: "/locations/0"})
	wantErr(t, err, imaged.EFORBIDDEN, "You are not authorized to complete delete_image_location action.")
	if _, err := e.patch(admin, img.ID, imaged.PatchOp{Op: "remove", Path: "/locations/0"}); err != nil {
		t.Fatal(err)
	}
}

func FuzzLocationPatch(f *testing.F) {
	f.Add("/locations/-", `{"url": "http://x/", "metadata": {}}`)
	f.Add("/locations/01", `{"url": 1, "metadata": {"a": [1]}, "validation_data": {"checksum": "x"}}`)
	f.Add("/locations/99999999999999999999", `{"url": "http://x/", "metadata": {}}`)
	f.Add("/locations", `[{"url": "http://x/", "metadata": {}, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "ab"}}]`)
	// One store for every input: the fuzzer runs many inputs per second.
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	cfg := catalog.DefaultConfig()
	cfg.ShowMultipleLocations = true
	svc := catalog.New(st, policy.Legacy(), cfg)
	img, err := svc.CreateImage(as(owner), map[string]any{"disk_format": "raw", "container_format": "bare"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, value string) {
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return
		}
		for _, op := range []string{"add", "replace", "remove"} {
			_, err := svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{{Op: op, Path: path, Value: v, HasValue: true}})
			if err != nil && imaged.ErrorCode(err) == imaged.EINTERNAL {
				t.Fatalf("%s %s %s: internal error %v", op, path, value, err)
			}
		}
	})
}

// Container images carry docker:// locations written by the container
// store: they render as they are, and removing one deletes nothing.
func TestDockerLocations(t *testing.T) {
	t.Parallel()
	e := newLocEnv(t, "legacy")
	img := e.image("raw")
	docker := imaged.Location{URL: "docker://registry.example.com/lablup/python@sha256:abc", Metadata: map[string]string{}}
	if _, err := e.store.UpdateImage(context.Background(), img.ID, func(i *imaged.Image) error {
		i.Status = imaged.StatusActive
		i.ContainerFormat = imaged.ContainerFormatDocker
		i.Locations = []imaged.Location{docker}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := e.svc.ImageLocations(as(owner), e.get(img.ID))
	if len(got) != 1 || got[0].URL != docker.URL {
		t.Fatalf("locations %+v", got)
	}
	out, err := e.patch(owner, img.ID, addLoc("/locations/-", loc(e.oneU, nil)), imaged.PatchOp{Op: "remove", Path: "/locations/0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Locations) != 1 || out.Locations[0].URL != e.oneU {
		t.Fatalf("after removing the docker location: %+v", out.Locations)
	}
	// Re-adding a docker:// URL is not for clients.
	_, err = e.patch(owner, img.ID, addLoc("/locations/-", loc(docker.URL, nil)))
	wantErr(t, err, imaged.EINVALID, "Invalid location")
}

// A remote object shorter than the image breaks the download.
func TestShortLocationFailsDownload(t *testing.T) {
	t.Parallel()
	e := newLocEnv(t, "legacy")
	img := e.image("raw")
	if _, err := e.patch(owner, img.ID, addLoc("/locations/-", loc(e.oneU, nil))); err != nil {
		t.Fatal(err)
	}
	e.one = e.one[:100] // the remote object shrinks
	data, err := e.svc.DownloadImage(as(owner), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := data.Open(context.Background(), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 100 {
		t.Fatalf("read %d bytes, err %v; want 100 and an unexpected EOF", len(b), err)
	}
}
