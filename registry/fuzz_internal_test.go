package registry

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imaged/imaged"
)

// FuzzImageFacts: any manifest and config bytes give either well-formed
// facts or EINVALID, never a panic or a negative size.
func FuzzImageFacts(f *testing.F) {
	f.Add(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":7}]}`,
		`{"architecture":"arm64","config":{"Labels":{"a":"b"}}}`, "v1-arm64")
	f.Add(`{"schemaVersion":2,"config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-2}}`, `null`, "")
	f.Add(`{"schemaVersion":1}`, `{}`, "latest")
	f.Add(`[]`, `{"config":{"Labels":null}}`, "x")
	f.Fuzz(func(t *testing.T, manifest, config, tag string) {
		img, err := imageFacts("a/b:"+tag, tag, []byte(manifest), "sha256:00", "m", func(v1.Descriptor) ([]byte, error) {
			return []byte(config), nil
		})
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("code %s: %v", imaged.ErrorCode(err), err)
			}
			return
		}
		if img.Size < 0 || img.Architecture == "" || img.Labels == nil || !strings.HasPrefix(img.ConfigDigest, "sha256:") {
			t.Fatalf("malformed facts %+v", img)
		}
	})
}

// FuzzSelectChildren: any index bytes give EINVALID or a list of image
// entries with distinct, non-empty architectures.
func FuzzSelectChildren(f *testing.F) {
	f.Add(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"linux","architecture":"arm64"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`)
	f.Add(`{"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","platform":{"architecture":"arm","variant":"v7"}},{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","platform":{"architecture":"arm","variant":"v6"}}]}`)
	f.Add(`{"manifests":null}`)
	c := New(Options{})
	f.Fuzz(func(t *testing.T, index string) {
		children, err := c.selectChildren("a/b:v1", []byte(index))
		if err != nil {
			var ie *imaged.Error
			if !errors.As(err, &ie) || ie.Code != imaged.EINVALID {
				t.Fatalf("error %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, ch := range children {
			if ch.Platform == nil || !ch.MediaType.IsImage() {
				t.Fatalf("selected a non-image entry %+v", ch)
			}
			a := imaged.NormalizeArch(ch.Platform.Architecture)
			if a == "" || seen[a] {
				t.Fatalf("architecture %q empty or repeated", a)
			}
			seen[a] = true
		}
	})
}

// TestSelectChildren pins the choices: attestations, unknown platforms,
// non-Linux entries and nested indexes are skipped; of two variants of an
// architecture the first listed wins.
func TestSelectChildren(t *testing.T) {
	t.Parallel()
	const img = `"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2`
	d := func(n int) string { return `"digest":"sha256:` + strings.Repeat(string(rune('0'+n)), 64) + `"` }
	index := `{"schemaVersion":2,"manifests":[` +
		`{` + img + `,` + d(1) + `,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},` +
		`{` + img + `,` + d(2) + `,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},` +
		`{` + img + `,` + d(3) + `,"platform":{"os":"unknown","architecture":"unknown"}},` +
		`{` + img + `,` + d(4) + `,"platform":{"os":"linux","architecture":"amd64"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}},` +
		`{` + img + `,` + d(5) + `,"platform":{"os":"windows","architecture":"amd64"}},` +
		`{"mediaType":"application/vnd.oci.image.index.v1+json","size":2,` + d(6) + `,"platform":{"os":"linux","architecture":"s390x"}},` +
		`{` + img + `,` + d(7) + `,"platform":{"os":"linux","architecture":"x86_64"}},` +
		`{` + img + `,` + d(8) + `,"platform":{"os":"linux","architecture":"amd64"}}]}`
	got, err := New(Options{}).selectChildren("t", []byte(index))
	if err != nil {
		t.Fatal(err)
	}
	var digits []string
	for _, g := range got {
		digits = append(digits, g.Digest.Hex[:1])
	}
	if strings.Join(digits, ",") != "1,7" {
		t.Fatalf("selected %v, want entries 1 (arm v7, first of the arm variants) and 7 (x86_64; 8 is the same arch)", digits)
	}
}
