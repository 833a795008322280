package nativeapi

import (
	"testing"

	"github.com/imaged/imaged"
)

// The body decoders must turn any input into a value or an EINVALID, never
// panic or return another kind of error (which would be a 500).

func fuzzSeeds(f *testing.F, seeds ...string) {
	for _, s := range append(seeds, "", "null", "[]", "{", `{"a":1}`, `"x"`, "{} {}", "\xff", `{"a":`+"\"\\ud800\"}") {
		f.Add([]byte(s))
	}
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
		t.Fatalf("error %v is not EINVALID", err)
	}
}

func FuzzDecodeRegistryCreate(f *testing.F) {
	fuzzSeeds(f, `{"name":"a","url":"http://x","type":"harbor2","projects":["p"],"verify_tls":false}`,
		`{"name":"a","url":"u","password":5}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := decodeRegistryCreate(data)
		checkDecodeErr(t, err)
		if err == nil && (reg.Name == "" || reg.URL == "" || !validRegistryType(reg.Type)) {
			t.Fatalf("accepted %+v", reg)
		}
	})
}

func FuzzDecodeMergePatch(f *testing.F) {
	fuzzSeeds(f, `{"labels":{"a":null,"b":"c"},"tags":["x"],"resource_limits":{"cpu":{"min":"1"},"mem":null}}`,
		`{"type":"system","visibility":"private","protected":true}`, `{"url":"x","projects":null,"password":null}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fields := range []map[string]fieldKind{imagePatchFields, registryPatchFields} {
			p, err := decodeMergePatch(data, fields)
			checkDecodeErr(t, err)
			for k, v := range p {
				kind, ok := fields[k]
				if !ok || checkKind(k, kind, v) != nil {
					t.Fatalf("accepted %s=%v", k, v)
				}
			}
		}
	})
}

func FuzzDecodeLimits(f *testing.F) {
	fuzzSeeds(f, `{"cpu":{"min":"1","max":"4"},"mem":{"min":"1g"}}`, `{"cpu":{"min":1}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeLimits(data)
		checkDecodeErr(t, err)
		for slot, l := range m {
			if slot == "" || l.Min == "" && l.Max == "" {
				t.Fatalf("accepted %q=%+v", slot, l)
			}
		}
	})
}

func FuzzDecodeSmallBodies(f *testing.F) {
	fuzzSeeds(f, `{"reference":"a/b:c","architecture":"amd64"}`, `{"ids":["a","b"]}`, `{"project":"p"}`,
		`{"image_id":"x"}`, `{"reference":"r","architecture":"a"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		ref, err := decodeReference(data)
		checkDecodeErr(t, err)
		if err == nil && ref.Reference == "" {
			t.Fatal("accepted an empty reference")
		}
		ids, err := decodeBulk(data)
		checkDecodeErr(t, err)
		if err == nil && (len(ids) == 0 || len(ids) > maxBulk) {
			t.Fatalf("accepted %d ids", len(ids))
		}
		_, err = decodeRescan(data)
		checkDecodeErr(t, err)
		at, err := decodeAliasTarget(data)
		checkDecodeErr(t, err)
		if err == nil && (at.ImageID == "") == (at.Reference == "") {
			t.Fatalf("accepted %+v", at)
		}
	})
}
