package registry_test

import (
	"context"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/registry"
)

// FuzzEndpoint: any registry URL gives a client error or works, never a
// panic; an invalid one is EINVALID.
func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:1", "https://r.example/x", "::", "ftp://a", "http://", "a:b:c", "http://[::1", "http://u:p@h"} {
		f.Add(s)
	}
	c := registry.New(registry.Options{})
	f.Fuzz(func(t *testing.T, u string) {
		err := c.DeleteManifest(context.Background(), &imaged.Registry{Name: "f", URL: u, Type: imaged.RegistryOCI}, "a/b", "not-a-digest")
		switch imaged.ErrorCode(err) {
		case imaged.EINVALID:
		default:
			t.Fatalf("%q: %v, want EINVALID (bad URL or bad digest, never a request)", u, err)
		}
	})
}
