package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/catalog"
	"github.com/imaged/imaged/glanceapi"
	"github.com/imaged/imaged/metadefs"
	"github.com/imaged/imaged/policy"
	"github.com/imaged/imaged/sqlstore"
	"github.com/imaged/imaged/sqlstore/sqltest"
)

// defsDir holds a few of Glance 25.1's own definition files.
const defsDir = "../../metadefs/testdata"

// peerDir holds what a real Glance 25.1 answered once `glance-manage
// db_load_metadefs` had loaded defsDir (timestamps masked as <time>).
const peerDir = "testdata/metadefs-peer"

var timeRe = regexp.MustCompile(`"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"`)

func TestMetadefsLoadMatchesGlance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := sqltest.SQLite(t)
			if backend == "postgres" {
				dsn = sqltest.Postgres(t)
			}
			var out, errb bytes.Buffer
			if code := run(ctx, []string{"metadefs", "load", "--database", dsn, defsDir}, envOf(nil), &out, &errb); code != 0 {
				t.Fatalf("load: exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), "6 namespaces loaded, 0 skipped") || !strings.Contains(out.String(), "loaded OS::Compute::CPUPinning (compute-cpu-pinning.json)") {
				t.Fatalf("load output: %s", out.String())
			}
			out.Reset()
			if code := run(ctx, []string{"metadefs", "load", "--database", dsn, defsDir}, envOf(nil), &out, &errb); code != 0 {
				t.Fatalf("second load: exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), "0 namespaces loaded, 6 skipped") {
				t.Fatalf("second load output: %s", out.String())
			}

			store, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			srv := serveMetadefs(t, store)
			for _, c := range []struct{ file, path string }{
				{"list.json", "/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc"},
				{"resource_types.json", "/v2/metadefs/resource_types"},
				{"ns-OS__Compute__CPUPinning.json", "/v2/metadefs/namespaces/OS::Compute::CPUPinning"},
				{"ns-OS__Compute__CPUPinning-flavor.json", "/v2/metadefs/namespaces/OS::Compute::CPUPinning?resource_type=OS::Nova::Flavor"},
				{"ns-OS__Compute__HostCapabilities.json", "/v2/metadefs/namespaces/OS::Compute::HostCapabilities"},
				{"ns-OS__Compute__LibvirtImage.json", "/v2/metadefs/namespaces/OS::Compute::LibvirtImage"},
				{"ns-OS__Compute__Watchdog.json", "/v2/metadefs/namespaces/OS::Compute::Watchdog"},
				{"ns-OS__OperatingSystem.json", "/v2/metadefs/namespaces/OS::OperatingSystem"},
				{"ns-OS__Software__WebServers.json", "/v2/metadefs/namespaces/OS::Software::WebServers"},
				{"objects-HostCapabilities.json", "/v2/metadefs/namespaces/OS::Compute::HostCapabilities/objects"},
				{"properties-LibvirtImage.json", "/v2/metadefs/namespaces/OS::Compute::LibvirtImage/properties"},
			} {
				want, err := os.ReadFile(filepath.Join(peerDir, c.file))
				if err != nil {
					t.Fatal(err)
				}
				got := getMasked(t, srv.URL+c.path)
				var g, w any
				if err := json.Unmarshal(got, &g); err != nil {
					t.Fatalf("%s: %v: %s", c.path, err, got)
				}
				if err := json.Unmarshal(want, &w); err != nil {
					t.Fatal(err)
				}
				if c.file == "resource_types.json" {
					// Glance loads files in directory order, imaged
					// in name order: compare as sets.
					g, w = sortedRTs(g), sortedRTs(w)
				}
				if !reflect.DeepEqual(g, w) {
					gb, _ := json.MarshalIndent(g, "", " ")
					wb, _ := json.MarshalIndent(w, "", " ")
					_ = os.WriteFile(filepath.Join(os.TempDir(), "md-got-"+c.file), gb, 0o600)
					_ = os.WriteFile(filepath.Join(os.TempDir(), "md-want-"+c.file), wb, 0o600)
					t.Errorf("%s differs from Glance's answer (%s): see md-got-%s and md-want-%s in %s", c.path, c.file, c.file, c.file, os.TempDir())
				}
			}
		})
	}
}

func sortedRTs(v any) any {
	l, _ := v.(map[string]any)["resource_types"].([]any)
	for _, rt := range l {
		// glance-manage touches a resource type each time a later file
		// names it again, which depends on its directory order.
		delete(rt.(map[string]any), "updated_at")
	}
	sort.Slice(l, func(i, j int) bool {
		return l[i].(map[string]any)["name"].(string) < l[j].(map[string]any)["name"].(string)
	})
	return l
}

func serveMetadefs(t *testing.T, store *sqlstore.Store) *httptest.Server {
	t.Helper()
	pol := policy.Secure()
	authn := auth.Static(imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin"}})
	h := glanceapi.New(glanceapi.Config{Images: catalog.New(store, pol, catalog.DefaultConfig()),
		Metadefs: metadefs.New(store, pol, nil), Auth: authn})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func getMasked(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", url, res.StatusCode, err, b)
	}
	return timeRe.ReplaceAll(b, []byte(`"<time>"`))
}

func TestMetadefsLoadErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "a-good.json"), []byte(`{"namespace":"Good","visibility":"public"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "b-bad.json"), []byte(`{"namespace":"Bad","properties":{"p":3}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no directory argument", []string{"metadefs", "load"}, 2, "want one directory"},
		{"no subcommand", []string{"metadefs"}, 2, "Usage"},
		{"missing directory", []string{"metadefs", "load", "--database", sqltest.SQLite(t), "/nonexistent"}, 1, "is not a directory"},
		{"bad file", []string{"metadefs", "load", "--database", sqltest.SQLite(t), bad}, 1, "b-bad.json: namespace Bad: properties: property p is not a JSON object"},
	} {
		var out, errb bytes.Buffer
		code := run(ctx, tc.args, envOf(nil), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", tc.name, code, errb.String(), tc.code, tc.err)
		}
		if tc.name == "bad file" && !strings.Contains(out.String(), "loaded Good") {
			t.Errorf("%s: the good file before it was not loaded: %s", tc.name, out.String())
		}
	}
}
