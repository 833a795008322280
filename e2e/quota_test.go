package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// TestQuotas runs the binary with per-project quotas and drives them with gophercloud: the count quota refuses a
// create, the size quota an upload, both with 413, per project; deleting
// frees room; GET /v2/info/usage reports it all.
func TestQuotas(t *testing.T) {
	t.Parallel()
	const sizeLimit = 3 << 20
	s := startServer(t, "--quota-image-count", "2", "--quota-image-size-total", fmt.Sprint(sizeLimit))
	ctx := context.Background()
	alice := s.client(t, tokAlice)

	a, b := s.newImage(t, tokAlice, "a"), s.newImage(t, tokAlice, "b")
	_, err := images.Create(ctx, alice, images.CreateOpts{Name: "c", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if statusOf(err) != 413 {
		t.Fatalf("third image of projA: %v, want 413", err)
	}
	s.newImage(t, tokBob, "bob's") // projB has its own count

	data := randomBytes(t, 2<<20)
	if err := imagedata.Upload(ctx, alice, a, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	checkHashes(t, s.image(t, tokAlice, a), data)
	// 2 MiB stored: another 2 MiB would pass 3 MiB.
	err = imagedata.Upload(ctx, alice, b, bytes.NewReader(data)).ExtractErr()
	if statusOf(err) != 413 {
		t.Fatalf("upload over the size quota: %v, want 413", err)
	}
	if img := s.image(t, tokAlice, b); img.Status != images.ImageStatusQueued {
		t.Fatalf("after a refused upload: %s", img.Status)
	}

	status, _, body := s.do(t, "GET", "/v2/info/usage", tokAlice, "", "")
	if status != 200 {
		t.Fatalf("usage: %d %s", status, body)
	}
	var usage struct {
		Usage map[string]struct{ Usage, Limit int64 } `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &usage); err != nil {
		t.Fatal(err)
	}
	u := usage.Usage
	if u["image_count_total"].Usage != 2 || u["image_count_total"].Limit != 2 ||
		u["image_size_total"].Usage != int64(len(data))>>20 || u["image_size_total"].Limit != sizeLimit>>20 ||
		u["image_count_uploading"].Limit != -1 || u["image_stage_total"].Limit != -1 {
		t.Fatalf("usage %s", body)
	}

	// Deleting the stored image frees both its slot and its bytes.
	if err := images.Delete(ctx, alice, a).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, alice, b, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload after a delete: %v", err)
	}
	c := s.newImage(t, tokAlice, "c")

	// A chunked upload (no Content-Length) is cut once it passes the
	// quota: 2 MiB stored, 2 MiB more sent.
	req, err := http.NewRequest("PUT", s.URL+"/v2/images/"+c+"/file", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("X-Auth-Token", tokAlice)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b413, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(b413), "Resource image_size_total is over limit of 3145728") {
		t.Fatalf("chunked upload over the quota: %d %s", res.StatusCode, b413)
	}
	s.waitStatus(t, c, images.ImageStatusQueued, 10*time.Second)
}
