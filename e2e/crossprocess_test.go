package e2e

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
)

// TestCrossProcessImport: behind a load balancer the stage and the import
// of one image may reach different processes. Staged bytes live in the
// shared store (staging/<id>), so a process that did not stage them
// imports them; each process has its own --data-dir, and they share one
// PostgreSQL database and the store: a directory, or a bucket of an
// S3-compatible server.
func TestCrossProcessImport(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			testCrossProcessImport(t, newCluster(t, 2, kind.open(t)))
		})
	}
}

func testCrossProcessImport(t *testing.T, c *cluster) {
	a, b := c.procs[0], c.procs[1]
	ctx := context.Background()

	tests := []struct {
		name            string
		stage, importer *server
	}{
		{"stage on A, import on B", a, b},
		{"stage on B, import on A", b, a},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := randomBytes(t, 3<<20+17)
			id := tc.stage.newImage(t, tokAlice, "cross")
			if err := imagedata.Stage(ctx, tc.stage.client(t, tokAlice), id, bytes.NewReader(data)).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			// The staged bytes are in the shared store...
			staged := func() []string { return c.store.staged(t, id) }
			if got := staged(); len(got) != 1 {
				t.Fatalf("staged entries of %s in the shared store: %v (all: %v)", id, got, c.store.entries(t))
			}
			// ...the other process sees the image staged...
			if img := tc.importer.image(t, tokAlice, id); img.Status != "uploading" || img.SizeBytes != int64(len(data)) {
				t.Fatalf("staged, seen by the importer: %s %d", img.Status, img.SizeBytes)
			}
			// ...and imports the bytes the first one staged.
			if err := imageimport.Create(ctx, tc.importer.client(t, tokAlice), id, imageimport.CreateOpts{
				Name: imageimport.GlanceDirectMethod}).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			task := tc.importer.waitTaskEnd(t, id)
			if task.Status != "success" {
				t.Fatalf("import on the other process: %+v", task)
			}
			for _, s := range []*server{a, b} {
				img := s.image(t, tokAlice, id)
				checkHashes(t, img, data)
				r, err := imagedata.Download(ctx, s.client(t, tokAlice), id).Extract()
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("download from %s: %v, %d bytes differ", s.URL, err, len(got))
				}
			}
			// The staged copy is gone from the shared store.
			if got := staged(); len(got) != 0 {
				t.Errorf("staged bytes left after the import: %v", got)
			}
		})
	}
}
