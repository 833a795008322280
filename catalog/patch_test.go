package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

func op(o, path string, v ...any) imaged.PatchOp {
	p := imaged.PatchOp{Op: o, Path: path}
	if len(v) > 0 {
		p.Value, p.HasValue = v[0], true
	}
	return p
}

func TestUpdateImage(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		modes  string // "", "legacy" or "secure"
		who    *imaged.Identity
		status imaged.ImageStatus // forced before the patch; "" = queued
		ops    []imaged.PatchOp
		code   string
		msg    string
		check  func(t *testing.T, img *imaged.Image)
	}
	tests := []tc{
		{name: "replace name", who: owner, ops: []imaged.PatchOp{op("replace", "/name", "n2")}, check: func(t *testing.T, img *imaged.Image) {
			if *img.Name != "n2" {
				t.Errorf("name %v", img.Name)
			}
		}},
		{name: "name null", who: owner, ops: []imaged.PatchOp{op("replace", "/name", nil)}, check: func(t *testing.T, img *imaged.Image) {
			if img.Name != nil {
				t.Errorf("name %v", *img.Name)
			}
		}},
		{name: "add property and escapes", who: owner, ops: []imaged.PatchOp{op("add", "/a~1b~0c", "1"), op("add", "/os_distro", "debian")}, check: func(t *testing.T, img *imaged.Image) {
			if img.Properties["a/b~c"] != "1" || img.Properties["os_distro"] != "debian" {
				t.Errorf("props %v", img.Properties)
			}
		}},
		{name: "add replaces", who: owner, ops: []imaged.PatchOp{op("add", "/foo", "2")}, check: func(t *testing.T, img *imaged.Image) {
			if img.Properties["foo"] != "2" {
				t.Errorf("props %v", img.Properties)
			}
		}},
		{name: "v2.0 add existing", who: owner, ops: []imaged.PatchOp{{Op: "add", Path: "/foo", Value: "2", HasValue: true, NoReplaceOnAdd: true}}, code: imaged.ECONFLICT, msg: "Property foo already present."},
		{name: "v2.0 add base", who: owner, ops: []imaged.PatchOp{{Op: "add", Path: "/name", Value: "2", HasValue: true, NoReplaceOnAdd: true}}, code: imaged.ECONFLICT, msg: "Property name already present."},
		{name: "remove property", who: owner, ops: []imaged.PatchOp{op("remove", "/foo")}, check: func(t *testing.T, img *imaged.Image) {
			if _, ok := img.Properties["foo"]; ok {
				t.Errorf("props %v", img.Properties)
			}
		}},
		{name: "remove missing", who: owner, ops: []imaged.PatchOp{op("remove", "/nope")}, code: imaged.ECONFLICT, msg: "Property nope does not exist."},
		{name: "replace missing", who: owner, ops: []imaged.PatchOp{op("replace", "/nope", "x")}, code: imaged.ECONFLICT, msg: "Property nope does not exist."},
		{name: "remove base", who: owner, ops: []imaged.PatchOp{op("remove", "/name")}, code: imaged.EFORBIDDEN, msg: "Property name may not be removed."},
		{name: "remove custom schema prop absent", who: owner, ops: []imaged.PatchOp{op("remove", "/kernel_id")}, code: imaged.ECONFLICT, msg: "Property kernel_id does not exist."},
		{name: "read-only", who: owner, ops: []imaged.PatchOp{op("replace", "/status", "active")}, code: imaged.EFORBIDDEN, msg: "Attribute 'status' is read-only."},
		{name: "read-only id", who: owner, ops: []imaged.PatchOp{op("add", "/id", "1")}, code: imaged.EFORBIDDEN, msg: "Attribute 'id' is read-only."},
		{name: "reserved", who: owner, ops: []imaged.PatchOp{op("add", "/os_glance_x", "a")}, code: imaged.EFORBIDDEN, msg: "Attribute 'os_glance_x' is reserved."},
		{name: "reserved deleted", who: owner, ops: []imaged.PatchOp{op("add", "/deleted", "a")}, code: imaged.EFORBIDDEN, msg: "Attribute 'deleted' is reserved."},
		{name: "bad op", who: owner, ops: []imaged.PatchOp{op("move", "/a", "1")}, code: imaged.EINVALID, msg: "Invalid operation: `move`. It must be one of the following: add, remove, replace."},
		{name: "deep path", who: owner, ops: []imaged.PatchOp{op("add", "/a/b", "1")}, code: imaged.EINVALID, msg: "Invalid JSON pointer for this resource: '/a/b'"},
		{name: "no slash", who: owner, ops: []imaged.PatchOp{op("add", "a", "1")}, code: imaged.EINVALID, msg: "Pointer `a` does not start with \"/\"."},
		{name: "bad tilde", who: owner, ops: []imaged.PatchOp{op("add", "/a~2", "1")}, code: imaged.EINVALID, msg: "Pointer `/a~2` contains \"~\" not part of a recognized escape sequence."},
		{name: "trailing slash", who: owner, ops: []imaged.PatchOp{op("add", "/a/", "1")}, code: imaged.EINVALID, msg: "Pointer `/a/` end with \"/\"."},
		{name: "missing value", who: owner, ops: []imaged.PatchOp{op("add", "/a")}, code: imaged.EINVALID, msg: "Operation \"add\" requires a member named \"value\"."},
		{name: "non-string property", who: owner, ops: []imaged.PatchOp{op("add", "/a", float64(1))}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': 1 is not of type 'string'"},
		{name: "string min_ram", who: owner, ops: []imaged.PatchOp{op("replace", "/min_ram", "3")}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': '3' is not of type 'integer'"},
		{name: "negative min_ram", who: owner, ops: []imaged.PatchOp{op("replace", "/min_ram", float64(-3))}, code: imaged.EINVALID, msg: "Invalid value '-3' for parameter 'min_ram': Cannot be a negative value"},
		{name: "bad visibility", who: owner, ops: []imaged.PatchOp{op("replace", "/visibility", "bogus")}, code: imaged.EINVALID},
		{name: "tags replace", who: owner, ops: []imaged.PatchOp{op("replace", "/tags", []any{"z", "a", "z"})}, check: func(t *testing.T, img *imaged.Image) {
			if strings.Join(img.Tags, ",") != "a,z" {
				t.Errorf("tags %v", img.Tags)
			}
		}},
		{name: "tags not array", who: owner, ops: []imaged.PatchOp{op("add", "/tags", "a")}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': 'a' is not of type 'array'"},
		{name: "owner by non-admin", who: owner, ops: []imaged.PatchOp{op("replace", "/owner", "projB")}, code: imaged.EFORBIDDEN, msg: "Owner can't be updated by non admin."},
		{name: "owner by admin", who: admin, ops: []imaged.PatchOp{op("replace", "/owner", "projB")}, check: func(t *testing.T, img *imaged.Image) {
			if img.Owner != "projB" {
				t.Errorf("owner %q", img.Owner)
			}
		}},
		{name: "locations empty", who: owner, ops: []imaged.PatchOp{op("replace", "/locations", []any{})}, code: imaged.EFORBIDDEN, msg: "Cannot set locations to empty list."},
		{name: "locations add", who: owner, ops: []imaged.PatchOp{op("add", "/locations/-", map[string]any{"url": "http://x", "metadata": map[string]any{}})}, code: imaged.EFORBIDDEN, msg: "It's not allowed to add locations if locations are invisible."},
		{name: "locations remove", modes: "secure", who: owner, ops: []imaged.PatchOp{op("remove", "/locations/0")}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete delete_image_location action."},
		{name: "locations remove legacy", modes: "legacy", who: owner, ops: []imaged.PatchOp{op("remove", "/locations/0")}, code: imaged.EFORBIDDEN, msg: "It's not allowed to remove locations if locations are invisible."},
		{name: "publicize", who: owner, ops: []imaged.PatchOp{op("replace", "/visibility", "public")}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete publicize_image action."},
		{name: "communitize", who: owner, ops: []imaged.PatchOp{op("replace", "/visibility", "community")}},
		{name: "admin publicize", who: admin, ops: []imaged.PatchOp{op("replace", "/visibility", "public")}},
		{name: "disk format queued", who: owner, ops: []imaged.PatchOp{op("replace", "/disk_format", "qcow2")}},
		{name: "disk format active", who: owner, status: imaged.StatusActive, ops: []imaged.PatchOp{op("replace", "/disk_format", "raw")}, code: imaged.EFORBIDDEN, msg: "Attribute disk_format can be only replaced for a queued image."},
		{name: "container format deactivated", who: owner, status: imaged.StatusDeactivated, ops: []imaged.PatchOp{op("replace", "/container_format", "ovf")}, code: imaged.EFORBIDDEN, msg: "Attribute container_format can be only replaced for a queued image."},
		{name: "name on deactivated", who: owner, status: imaged.StatusDeactivated, ops: []imaged.PatchOp{op("replace", "/name", "d")}},
		{name: "all or nothing", who: owner, ops: []imaged.PatchOp{op("replace", "/name", "changed"), op("remove", "/nope")}, code: imaged.ECONFLICT},
		{name: "other project", who: other, ops: []imaged.PatchOp{op("replace", "/name", "x")}, code: imaged.ENOTFOUND, msg: "No image found with ID %s"},
		{name: "legacy member", modes: "legacy", who: accepted, ops: []imaged.PatchOp{op("replace", "/name", "x")}, code: imaged.EFORBIDDEN, msg: "You do not own this image"},
		{name: "secure member", modes: "secure", who: pending, ops: []imaged.PatchOp{op("replace", "/name", "x")}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete modify_image action."},
		{name: "rejected member sees it", modes: "legacy", who: rejected, ops: []imaged.PatchOp{op("replace", "/name", "x")}, code: imaged.EFORBIDDEN},
		{name: "secure reader", modes: "secure", who: ownerRead, ops: []imaged.PatchOp{op("replace", "/name", "x")}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete modify_image action."},
		{name: "legacy reader", modes: "legacy", who: ownerRead, ops: []imaged.PatchOp{op("replace", "/name", "x")}},
		{name: "validation before 404", who: other, ops: []imaged.PatchOp{op("replace", "/status", "x")}, code: imaged.EFORBIDDEN, msg: "Attribute 'status' is read-only."},
		{name: "add owner elsewhere", who: owner, ops: []imaged.PatchOp{op("add", "/owner", "projZ")}, code: imaged.EFORBIDDEN, msg: "Forbidding request, image %s not visible"},
		{name: "empty patch", who: owner, ops: nil},
	}
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		for _, tt := range tests {
			if tt.modes != "" && tt.modes != mode {
				continue
			}
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				img := e.sharedImage(map[string]any{"name": "n", "foo": "bar", "disk_format": "raw", "container_format": "bare"})
				if tt.status != "" {
					e.setStatus(img.ID, tt.status)
				}
				before, _ := e.store.GetImage(context.Background(), img.ID)
				got, err := e.svc.UpdateImage(as(tt.who), img.ID, tt.ops)
				msg := tt.msg
				if strings.Contains(msg, "%s") {
					msg = fmt.Sprintf(msg, img.ID)
				}
				wantErr(t, err, tt.code, msg)
				after, _ := e.store.GetImage(context.Background(), img.ID)
				if err != nil {
					if after.Version != before.Version || *after.Name != *before.Name {
						t.Errorf("failed patch changed the image: %+v", after)
					}
					return
				}
				if len(tt.ops) > 0 && !after.UpdatedAt.After(before.UpdatedAt) {
					t.Errorf("updated_at not bumped: %v -> %v", before.UpdatedAt, after.UpdatedAt)
				}
				if tt.check != nil {
					tt.check(t, got)
					tt.check(t, after)
				}
			})
		}
	}
}

// TestUpdateImageQuota checks that quotas count the result of the whole
// patch, as Glance does at save.
func TestUpdateImageQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "legacy")
	attrs := map[string]any{}
	for i := 0; i < 128; i++ {
		attrs[fmt.Sprintf("p%d", i)] = "v"
	}
	img := e.create(owner, attrs)
	_, err := e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("add", "/x", "1")})
	wantErr(t, err, imaged.ETOOLARGE, "The limit has been exceeded on the number of allowed image properties. Attempted: 129, Maximum: 128")
	_, err = e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("add", "/x", "1"), op("remove", "/p1")})
	wantErr(t, err, "", "")
	tags := make([]any, 129)
	for i := range tags {
		tags[i] = fmt.Sprint(i)
	}
	_, err = e.svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("replace", "/tags", tags)})
	wantErr(t, err, imaged.ETOOLARGE, "The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128")
}

// TestConcurrentPatches checks that concurrent patches of different
// properties all survive (the store serialises the read-modify-write).
func TestConcurrentPatches(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := catalog.New(st, policy.Legacy(), catalog.DefaultConfig())
	img, err := svc.CreateImage(as(owner), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.UpdateImage(as(owner), img.ID, []imaged.PatchOp{op("add", fmt.Sprintf("/k%d", i), "v")})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := svc.GetImage(as(owner), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Properties) != n {
		t.Fatalf("got %d properties, want %d: %v", len(got.Properties), n, got.Properties)
	}
}

// FuzzUpdateImage feeds random patches (JSON arrays of operations) to the
// applier: it must never panic and never store an invalid image.
func FuzzUpdateImage(f *testing.F) {
	for _, s := range []string{
		`[{"op":"add","path":"/foo","value":"x"}]`,
		`[{"op":"replace","path":"/tags","value":["a","b"]}]`,
		`[{"op":"replace","path":"/min_ram","value":-1}]`,
		`[{"op":"replace","path":"/visibility","value":"community"},{"op":"remove","path":"/foo"}]`,
		`[{"op":"add","path":"/a~1b","value":null}]`,
		`[{"op":"add","path":"/locations/-","value":{}}]`,
		`[{"op":"replace","path":"/kernel_id","value":null}]`,
		`[{"op":"replace","path":"/min_disk","value":1e300}]`,
		`[{"op":"add","path":"/ ~0 ","value":"x"},{"op":"remove","path":"//"}]`,
	} {
		f.Add(s, true)
	}
	st, err := sqlstore.Open(context.Background(), sqltest.SQLite(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	svc := catalog.New(st, policy.Legacy(), catalog.DefaultConfig())
	img, err := svc.CreateImage(as(owner), map[string]any{"foo": "bar"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, patch string, asAdmin bool) {
		var raw []map[string]any
		if json.Unmarshal([]byte(patch), &raw) != nil {
			return
		}
		ops := make([]imaged.PatchOp, 0, len(raw))
		for _, r := range raw {
			o, _ := r["op"].(string)
			p, _ := r["path"].(string)
			v, has := r["value"]
			ops = append(ops, imaged.PatchOp{Op: o, Path: p, Value: v, HasValue: has})
		}
		who := owner
		if asAdmin {
			who = admin
		}
		got, err := svc.UpdateImage(as(who), img.ID, ops)
		if err != nil {
			if imaged.ErrorCode(err) == imaged.EINTERNAL {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		stored, err := st.GetImage(context.Background(), img.ID)
		if err != nil {
			t.Fatalf("image lost: %v", err)
		}
		for _, im := range []*imaged.Image{got, stored} {
			if !imaged.ValidStatus(string(im.Status)) || !imaged.ValidVisibility(string(im.Visibility)) ||
				im.MinDisk < 0 || im.MinRAM < 0 || (im.Name != nil && len([]rune(*im.Name)) > 255) {
				t.Fatalf("invalid image: %+v", im)
			}
			for i, tag := range im.Tags {
				if i > 0 && im.Tags[i-1] >= tag {
					t.Fatalf("tags not sorted and unique: %v", im.Tags)
				}
			}
			for k := range im.Properties {
				if strings.HasPrefix(k, "os_glance") {
					t.Fatalf("reserved property stored: %q", k)
				}
			}
		}
		// Restore the owner so that later inputs still reach the applier.
		if stored.Owner != "projA" || stored.Visibility != imaged.VisibilityShared {
			_, err := st.UpdateImage(context.Background(), img.ID, func(i *imaged.Image) error {
				i.Owner, i.Visibility = "projA", imaged.VisibilityShared
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}
