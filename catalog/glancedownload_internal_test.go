package catalog

import (
	"encoding/json"
	"testing"

	"github.com/imaged/imaged"
)

// FuzzGlanceDownloadRequest: any import body gets an answer from the
// glance-download checks, never a panic; what passes names a region, a
// UUID and a known interface.
func FuzzGlanceDownloadRequest(f *testing.F) {
	for _, s := range []string{
		`{"method": {"name": "glance-download", "glance_region": "RegionTwo", "glance_image_id": "4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e"}}`,
		`{"method": {"glance_region": "", "glance_image_id": "{4ee6a0b19a3b4ef48a3c2a0e0e0e0e0e}", "glance_service_interface": "admin"}}`,
		`{"method": {"glance_region": 1, "glance_image_id": null}}`,
		`{"method": "x"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var body map[string]any
		if json.Unmarshal(data, &body) != nil || body == nil {
			return
		}
		err := checkGlanceDownload(body)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("%s: %v, want EINVALID", data, err)
			}
			return
		}
		m := body["method"].(map[string]any)
		region, _ := m["glance_region"].(string)
		id, _ := m["glance_image_id"].(string)
		iface, _ := m["glance_service_interface"].(string)
		if region == "" || !uuidLike(id) || (iface != "public" && iface != "internal" && iface != "admin") {
			t.Fatalf("%s passed with %v", data, m)
		}
	})
}

func TestUUIDLike(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e":          true,
		"4ee6a0b19a3b4ef48a3c2a0e0e0e0e0e":              true,
		"{4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e}":        true,
		"urn:uuid:4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0e": true,
		"4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0":           false,
		"4ee6a0b1-9a3b-4ef4-8a3c-2a0e0e0e0e0g":          false,
		"../../etc/passwd":                              false,
		"":                                              false,
	} {
		if got := uuidLike(s); got != want {
			t.Errorf("uuidLike(%q) = %v, want %v", s, got, want)
		}
	}
}
