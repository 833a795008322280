package catalog_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/imaged/imaged"
)

func TestCreateImage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 256)
	manyProps := map[string]any{}
	for i := 0; i < 129; i++ {
		manyProps[fmt.Sprintf("p%d", i)] = "v"
	}
	manyTags := make([]any, 129)
	for i := range manyTags {
		manyTags[i] = fmt.Sprintf("t%d", i)
	}
	fixedID := uuid.NewString()
	tests := []struct {
		name  string
		modes []string // "" = both
		who   *imaged.Identity
		attrs map[string]any
		code  string
		msg   string
		check func(t *testing.T, img *imaged.Image)
	}{
		{name: "defaults", who: owner, attrs: map[string]any{"name": "x"}, check: func(t *testing.T, img *imaged.Image) {
			if img.Status != imaged.StatusQueued || img.Visibility != imaged.VisibilityShared || img.Owner != "projA" || *img.Name != "x" {
				t.Errorf("got %+v", img)
			}
			if _, err := uuid.Parse(img.ID); err != nil {
				t.Errorf("id %q: %v", img.ID, err)
			}
			if img.CreatedAt.IsZero() || !img.CreatedAt.Equal(img.UpdatedAt) {
				t.Errorf("times %v %v", img.CreatedAt, img.UpdatedAt)
			}
		}},
		{name: "all attributes", who: owner, attrs: map[string]any{"id": fixedID, "name": nil, "disk_format": "qcow2",
			"container_format": "bare", "visibility": "private", "protected": true, "os_hidden": true, "min_disk": float64(2),
			"min_ram": float64(512), "tags": []any{"b", "a", "b"}, "os_distro": "debian", "kernel_id": uuid.NewString()},
			check: func(t *testing.T, img *imaged.Image) {
				if img.ID != fixedID || img.Name != nil || img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" ||
					img.Visibility != imaged.VisibilityPrivate || !img.Protected || !img.OSHidden || img.MinDisk != 2 || img.MinRAM != 512 {
					t.Errorf("got %+v", img)
				}
				if strings.Join(img.Tags, ",") != "a,b" || img.Properties["os_distro"] != "debian" || len(img.Properties) != 2 {
					t.Errorf("tags %v props %v", img.Tags, img.Properties)
				}
			}},
		{name: "read-only status", who: owner, attrs: map[string]any{"status": "active"}, code: imaged.EFORBIDDEN, msg: "Attribute 'status' is read-only."},
		{name: "read-only self", who: owner, attrs: map[string]any{"self": "x"}, code: imaged.EFORBIDDEN, msg: "Attribute 'self' is read-only."},
		{name: "read-only size", who: owner, attrs: map[string]any{"size": float64(3)}, code: imaged.EFORBIDDEN, msg: "Attribute 'size' is read-only."},
		{name: "bad disk format", who: owner, attrs: map[string]any{"disk_format": "foo"}, code: imaged.EINVALID,
			msg: "Provided object does not match schema 'image': 'foo' is not one of [None, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']"},
		{name: "bad id", who: owner, attrs: map[string]any{"id": "abc"}, code: imaged.EINVALID,
			msg: "Provided object does not match schema 'image': 'abc' does not match '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'"},
		{name: "name too long", who: owner, attrs: map[string]any{"name": long}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': '" + long + "' is too long"},
		{name: "non-string property", who: owner, attrs: map[string]any{"foo": float64(1)}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': 1 is not of type 'string'"},
		{name: "null property", who: owner, attrs: map[string]any{"foo": nil}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': None is not of type 'string'"},
		{name: "protected not bool", who: owner, attrs: map[string]any{"protected": "yes"}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': 'yes' is not of type 'boolean'"},
		{name: "min_ram not int", who: owner, attrs: map[string]any{"min_ram": 1.5}, code: imaged.EINVALID, msg: "Provided object does not match schema 'image': 1.5 is not of type 'integer'"},
		{name: "negative min_ram", who: owner, attrs: map[string]any{"min_ram": float64(-1)}, code: imaged.EINVALID, msg: "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value"},
		{name: "tag too long", who: owner, attrs: map[string]any{"tags": []any{long}}, code: imaged.EINVALID},
		{name: "long property key", who: owner, attrs: map[string]any{long: "v"}, code: imaged.EINVALID, msg: "Custom property should not be greater than 255 characters."},
		{name: "reserved namespace", who: owner, attrs: map[string]any{"os_glance_foo": "a"}, code: imaged.EFORBIDDEN, msg: "Attribute 'os_glance_foo' is reserved."},
		{name: "reserved location", who: owner, attrs: map[string]any{"location": "a"}, code: imaged.EFORBIDDEN, msg: "Attribute 'location' is reserved."},
		{name: "reserved locations", who: owner, attrs: map[string]any{"locations": []any{}}, code: imaged.EFORBIDDEN, msg: "Attribute 'locations' is reserved."},
		{name: "legacy other owner", modes: []string{"legacy"}, who: owner, attrs: map[string]any{"owner": "projB"}, code: imaged.EFORBIDDEN, msg: "You are not permitted to create images owned by 'projB'."},
		{name: "secure other owner", modes: []string{"secure"}, who: owner, attrs: map[string]any{"owner": "projB"}, code: imaged.EFORBIDDEN, msg: "You are not permitted to create images owned by 'projB'"},
		{name: "own owner", who: owner, attrs: map[string]any{"owner": "projA"}},
		{name: "admin sets owner", who: admin, attrs: map[string]any{"owner": "projZ"}, check: func(t *testing.T, img *imaged.Image) {
			if img.Owner != "projZ" {
				t.Errorf("owner %q", img.Owner)
			}
		}},
		{name: "secure reader may not create", modes: []string{"secure"}, who: ownerRead, attrs: map[string]any{}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete add_image action."},
		{name: "legacy reader may create", modes: []string{"legacy"}, who: ownerRead, attrs: map[string]any{}},
		{name: "public needs admin", who: owner, attrs: map[string]any{"visibility": "public"}, code: imaged.EFORBIDDEN, msg: "You are not authorized to complete publicize_image action."},
		{name: "admin public", who: admin, attrs: map[string]any{"visibility": "public"}},
		{name: "community", who: owner, attrs: map[string]any{"visibility": "community"}},
		{name: "bad visibility", who: owner, attrs: map[string]any{"visibility": "everyone"}, code: imaged.EINVALID},
		{name: "property quota", who: owner, attrs: manyProps, code: imaged.ETOOLARGE, msg: "The limit has been exceeded on the number of allowed image properties. Attempted: 129, Maximum: 128"},
		{name: "tag quota", who: owner, attrs: map[string]any{"tags": manyTags}, code: imaged.ETOOLARGE, msg: "The limit has been exceeded on the number of allowed image tags. Attempted: 129, Maximum: 128"},
		{name: "custom enum", who: owner, attrs: map[string]any{"cinder_encryption_key_deletion_policy": "never"}, code: imaged.EINVALID},
		{name: "kernel_id pattern", who: owner, attrs: map[string]any{"kernel_id": "bad"}, code: imaged.EINVALID},
	}
	for _, mode := range []string{"legacy", "secure"} {
		e := newEnv(t, mode)
		for _, tc := range tests {
			if tc.modes != nil && tc.modes[0] != mode {
				continue
			}
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				img, err := e.svc.CreateImage(as(tc.who), tc.attrs)
				wantErr(t, err, tc.code, tc.msg)
				if err != nil {
					return
				}
				got, err := e.svc.GetImage(as(tc.who), img.ID)
				if err != nil {
					t.Fatalf("get after create: %v", err)
				}
				if tc.check != nil {
					tc.check(t, got)
				}
			})
		}
	}
}

func TestCreateDuplicateID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "legacy")
	img := e.create(owner, map[string]any{})
	_, err := e.svc.CreateImage(as(owner), map[string]any{"id": img.ID})
	wantErr(t, err, imaged.ECONFLICT, "Image ID "+img.ID+" already exists!")
	// A deleted image keeps its id taken.
	if err := e.svc.DeleteImage(as(owner), img.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateImage(as(owner), map[string]any{"id": img.ID})
	wantErr(t, err, imaged.ECONFLICT, "Image ID "+img.ID+" already exists!")
}

func TestCreateIntegerRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "legacy")
	for _, tt := range []struct {
		attrs map[string]any
		code  string
		msg   string
	}{
		{map[string]any{"min_disk": float64(2147483647)}, "", ""},
		{map[string]any{"min_disk": float64(2147483648)}, imaged.EINVALID, "'min_disk' value out of range, must not exceed 2147483647."},
		{map[string]any{"min_ram": 1e30}, imaged.EINVALID, "'min_ram' value out of range, must not exceed 2147483647."},
		{map[string]any{"min_ram": float64(9223372036854775807)}, imaged.EINVALID, "'min_ram' value out of range, must not exceed 2147483647."},
	} {
		_, err := e.svc.CreateImage(as(owner), tt.attrs)
		wantErr(t, err, tt.code, tt.msg)
	}
}
