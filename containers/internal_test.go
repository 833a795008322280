package containers

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imaged/imaged"
)

func TestSecretBox(t *testing.T) {
	t.Parallel()
	b := newSecretBox([]byte("key one"))
	sealed := b.seal("hunter2")
	if !strings.HasPrefix(sealed, sealedPrefix) || strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed %q", sealed)
	}
	if b.seal("hunter2") == sealed {
		t.Fatal("sealing twice gave the same text: the nonce is not random")
	}
	if got, err := b.open(sealed); err != nil || got != "hunter2" {
		t.Fatalf("open: %q %v", got, err)
	}
	if got, err := b.open("plain"); err != nil || got != "plain" {
		t.Fatalf("a password stored before the key was set: %q %v", got, err)
	}
	if b.seal("") != "" {
		t.Fatal("no password must stay no password")
	}
	for name, c := range map[string]struct {
		box    *secretBox
		stored string
	}{
		"wrong key": {newSecretBox([]byte("key two")), sealed},
		"no key":    {nil, sealed},
		"corrupt":   {b, sealedPrefix + "!!!"},
		"short":     {b, sealedPrefix + "AAAA"},
		"tampered":  {b, sealed[:len(sealed)-2] + "AA"},
	} {
		if _, err := c.box.open(c.stored); imaged.ErrorCode(err) != imaged.EUNAVAILABLE || strings.Contains(imaged.ErrorMessage(err), "hunter2") {
			t.Errorf("%s: %v", name, err)
		}
	}
	var nilBox *secretBox
	if nilBox.seal("x") != "x" {
		t.Fatal("without a key passwords are stored as given")
	}
}

// FuzzModifyPatch: any JSON patch is either applied or refused with
// EINVALID, never a panic or another error.
func FuzzModifyPatch(f *testing.F) {
	for _, s := range []string{
		`{"type":"service"}`, `{"labels":{"ai.backend.kernelspec":"1"}}`, `{"labels":null}`,
		`{"resource_limits":{"cpu":{"min":"1","max":"2"}}}`, `{"resource_limits":{"mem":{"min":1e300}}}`,
		`{"tags":["a",1]}`, `{"visibility":"private","protected":true}`, `{"reference":"x"}`,
		`{"resource_limits":{"cuda.device":{"min":"0.5"}}}`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var patch map[string]any
		if json.Unmarshal([]byte(s), &patch) != nil {
			return
		}
		img := &imaged.ContainerImage{ID: "i", Labels: map[string]string{"ai.backend.resource.min.cuda.device": "1"}}
		err := checkModifyPatch(patch)
		if err == nil {
			err = applyModify(img, patch)
		}
		if err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Fatalf("patch %s: %v", s, err)
		}
		if err == nil {
			if verr := imaged.ValidateResourceLimits(img.ResourceLimits); verr != nil {
				t.Fatalf("patch %s stored invalid limits: %v", s, verr)
			}
			if verr := imaged.ValidateLabels(img.Labels); verr != nil {
				t.Fatalf("patch %s stored invalid labels: %v", s, verr)
			}
		}
	})
}

// FuzzRegistryPatch: any JSON patch of a registry is applied and valid,
// or refused with EINVALID.
func FuzzRegistryPatch(f *testing.F) {
	for _, s := range []string{
		`{"url":"http://127.0.0.1:5000"}`, `{"projects":["bai","Bad"]}`, `{"password":null}`,
		`{"type":"harbor2","projects":[]}`, `{"verify_tls":1}`, `{"name":"x"}`, `{"url":"http://h/p?q"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var patch map[string]any
		if json.Unmarshal([]byte(s), &patch) != nil {
			return
		}
		r := &imaged.Registry{Name: "local", URL: "http://127.0.0.1:5000", Type: imaged.RegistryOCI, Projects: []string{"bai"}}
		err := applyRegistryPatch(r, patch, func(p string) string { return p })
		if err == nil {
			err = validateRegistry(r)
		}
		if err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Fatalf("patch %s: %v", s, err)
		}
		if err == nil && (r.Host() == "" || strings.Contains(r.URL, "?")) {
			t.Fatalf("patch %s accepted a bad url %q", s, r.URL)
		}
	})
}

func TestAliasSyntax(t *testing.T) {
	t.Parallel()
	for alias, want := range map[string]bool{
		"python": true, "py3.9": true, "cr.example.com/bai/python:3.9": true, "a_b-c": true,
		"": false, "Python": false, "-py": false, "py thon": false, "py@sha": false, strings.Repeat("a", 256): false,
		strings.Repeat("a", 255): true,
	} {
		if got := aliasRE.MatchString(alias); got != want {
			t.Errorf("alias %q: %v, want %v", alias, got, want)
		}
	}
}
