package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newImage creates a raw/bare image as the token's project.
func (s *server) newImage(t *testing.T, token, name string) string {
	t.Helper()
	img, err := images.Create(context.Background(), s.client(t, token), images.CreateOpts{
		Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// image reads an image as the token sees it.
func (s *server) image(t *testing.T, token, id string) *images.Image {
	t.Helper()
	img, err := images.Get(context.Background(), s.client(t, token), id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// waitStatus polls an image until it has the status, or fails after d.
func (s *server) waitStatus(t *testing.T, id string, status images.ImageStatus, d time.Duration) *images.Image {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		img := s.image(t, tokAlice, id)
		if img.Status == status {
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s is %s after %v, want %s", id, img.Status, d, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partialUpload opens a raw connection, announces size bytes and sends
// the first sent of them; the caller closes the connection (or the
// process dies) to abandon the upload.
func (s *server) partialUpload(t *testing.T, id string, size, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: imaged\r\nX-Auth-Token: %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, tokAlice, size)
	if _, err := conn.Write(randomBytes(t, sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func checkHashes(t *testing.T, img *images.Image, data []byte) {
	t.Helper()
	sum := md5.Sum(data)
	sha := sha512.Sum512(data)
	if img.Status != images.ImageStatusActive || img.SizeBytes != int64(len(data)) ||
		img.Checksum != hex.EncodeToString(sum[:]) || img.Properties["os_hash_algo"] != "sha512" || img.Properties["os_hash_value"] != hex.EncodeToString(sha[:]) {
		t.Errorf("image %s: status %s size %d checksum %s %v %v, want active %d %x sha512 %x",
			img.ID, img.Status, img.SizeBytes, img.Checksum, img.Properties["os_hash_algo"], img.Properties["os_hash_value"], len(data), sum, sha)
	}
}

// TestGophercloudImageData: upload and download round trips of random data
// of several sizes, with Glance's checksum and os_hash_value.
func TestGophercloudImageData(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	c := s.client(t, tokAlice)
	for _, n := range []int{0, 1, 1<<20 + 1, 16 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			data := randomBytes(t, n)
			id := s.newImage(t, tokAlice, fmt.Sprintf("data-%d", n))
			if err := imagedata.Upload(ctx, c, id, bytes.NewReader(data)).ExtractErr(); err != nil {
				t.Fatal(err)
			}
			checkHashes(t, s.image(t, tokAlice, id), data)
			rd, err := imagedata.Download(ctx, c, id).Extract()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rd)
			rd.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("download: %v, %d bytes, equal %v", err, len(got), bytes.Equal(got, data))
			}
		})
	}
}

// TestRangeEdges: byte ranges at the edges of an image, over raw HTTP.
func TestRangeEdges(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	data := randomBytes(t, 1000)
	id := s.newImage(t, tokAlice, "ranges")
	if err := imagedata.Upload(context.Background(), s.client(t, tokAlice), id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	for _, tc := range []struct {
		rng      string
		status   int
		cr       string
		from, to int // body = data[from:to]
	}{
		{"", 200, "", 0, 1000},
		{"bytes=0-0", 206, "bytes 0-0/1000", 0, 1},
		{"bytes=999-999", 206, "bytes 999-999/1000", 999, 1000},
		{"bytes=999-", 206, "bytes 999-999/1000", 999, 1000},
		{"bytes=0-999", 206, "bytes 0-999/1000", 0, 1000},
		{"bytes=0-1000", 206, "bytes 0-999/1000", 0, 1000},
		{"bytes=-1", 206, "bytes 999-999/1000", 999, 1000},
		{"bytes=-999", 206, "bytes 1-999/1000", 1, 1000},
		{"bytes=-1000", 206, "bytes 0-999/1000", 0, 1000},
		{"bytes=-5000", 206, "bytes 0-999/1000", 0, 1000},
		{"bytes=500-599", 206, "bytes 500-599/1000", 500, 600},
		{"bytes=1000-", 416, "bytes */1000", 0, 0},
		{"bytes=1000-1000", 416, "bytes */1000", 0, 0},
		{"bytes=5-4", 416, "bytes */1000", 0, 0},
		{"bytes=x", 416, "bytes */1000", 0, 0},
		{"bytes=0-1,5-6", 400, "", 0, 0},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/v2/images/"+id+"/file", nil)
		req.Header.Set("X-Auth-Token", tokAlice)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != tc.status || res.Header.Get("Content-Range") != tc.cr {
			t.Errorf("%q: %v %d %q, want %d %q", tc.rng, err, res.StatusCode, res.Header.Get("Content-Range"), tc.status, tc.cr)
			continue
		}
		if tc.status >= 300 {
			continue
		}
		if !bytes.Equal(body, data[tc.from:tc.to]) || res.ContentLength != int64(tc.to-tc.from) {
			t.Errorf("%q: %d bytes (Content-Length %d), want data[%d:%d]", tc.rng, len(body), res.ContentLength, tc.from, tc.to)
		}
		if res.Header.Get("Content-Md5") != hex.EncodeToString(sum[:]) || res.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%q: headers %v", tc.rng, res.Header)
		}
	}
}

// gatedReader yields its first chunk, then waits for the gate to open
// before yielding the rest: it holds an upload open mid-body.
type gatedReader struct {
	first, rest []byte
	gate        <-chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	<-g.gate
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// TestConcurrentUploads: of several uploads to one image at once, one
// wins (204) and the others get Glance's 409.
func TestConcurrentUploads(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := s.newImage(t, tokAlice, "race")
	const n = 4
	data := randomBytes(t, 2<<20)
	gate := make(chan struct{})
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := &gatedReader{first: data[:64<<10], rest: data[64<<10:], gate: gate}
			req, _ := http.NewRequest("PUT", s.URL+"/v2/images/"+id+"/file", io.NopCloser(body))
			req.ContentLength = int64(len(data))
			req.Header.Set("X-Auth-Token", tokAlice)
			req.Header.Set("Content-Type", "application/octet-stream")
			res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			if err != nil {
				t.Error(err)
				statuses <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	// The losers answer while the winner is still waiting for its body.
	counts := map[int]int{}
	for i := 0; i < n-1; i++ {
		select {
		case st := <-statuses:
			counts[st]++
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d uploads answered while one holds the image: %v", i, n-1, counts)
		}
	}
	close(gate)
	wg.Wait()
	counts[<-statuses]++
	if counts[204] != 1 || counts[409] != n-1 {
		t.Fatalf("statuses %v, want one 204 and %d 409", counts, n-1)
	}
	checkHashes(t, s.image(t, tokAlice, id), data)
}

// TestUploadDisconnect: a client that goes away mid-upload leaves the image
// queued with no data, no error is logged, and a retry works.
func TestUploadDisconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := s.newImage(t, tokAlice, "disconnect")
	conn := s.partialUpload(t, id, 8<<20, 512<<10)
	s.waitStatus(t, id, images.ImageStatusSaving, 10*time.Second)
	conn.Close()
	img := s.waitStatus(t, id, images.ImageStatusQueued, 10*time.Second)
	if img.SizeBytes != 0 || img.Checksum != "" {
		t.Errorf("after the hang-up: %+v", img)
	}
	if logs := s.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, `"level":"ERROR"`) || strings.Contains(logs, "status=500") {
		t.Errorf("the hang-up was logged as an error:\n%s", logs)
	}
	data := randomBytes(t, 3<<20)
	if err := imagedata.Upload(context.Background(), s.client(t, tokAlice), id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	checkHashes(t, s.image(t, tokAlice, id), data)
}

// blobFiles lists the regular files under dir (relative paths).
func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCrashDuringUpload: imaged is killed (SIGKILL) mid-upload; a new
// process on the same data recovers the image once the upload lease has
// expired (queued again, the partial bytes gone) and a retry works.
func TestCrashDuringUpload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flags := []string{"--upload-lease", "2s"}
	s1 := startServerIn(t, dir, flags...)
	// An image with committed data, which must survive the recovery.
	kept := randomBytes(t, 100<<10)
	keptID := s1.newImage(t, tokAlice, "kept")
	if err := imagedata.Upload(context.Background(), s1.client(t, tokAlice), keptID, bytes.NewReader(kept)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	id := s1.newImage(t, tokAlice, "crash")
	conn := s1.partialUpload(t, id, 64<<20, 1<<20)
	defer conn.Close()
	s1.waitStatus(t, id, images.ImageStatusSaving, 10*time.Second)
	s1.kill(t)

	s2 := startServerIn(t, dir, flags...)
	img := s2.waitStatus(t, id, images.ImageStatusQueued, 15*time.Second)
	if img.SizeBytes != 0 || img.Checksum != "" {
		t.Errorf("recovered image: %+v", img)
	}
	// Only the committed blob of the other image is left on disk.
	blobs := filepath.Join(dir, "data", "images")
	deadline := time.Now().Add(10 * time.Second)
	for {
		files := blobFiles(t, blobs)
		ok := len(files) == 1 && strings.Contains(files[0], keptID)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("files under %s after recovery: %v, want only the blob of %s", blobs, files, keptID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	data := randomBytes(t, 2<<20)
	c := s2.client(t, tokAlice)
	if err := imagedata.Upload(context.Background(), c, id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	checkHashes(t, s2.image(t, tokAlice, id), data)
	rd, err := imagedata.Download(context.Background(), c, keptID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if !bytes.Equal(got, kept) {
		t.Errorf("the other image's data changed: %d bytes", len(got))
	}
}

// TestDeactivatedDownload: data of a deactivated image is forbidden to the
// owner and members, not to admins.
func TestDeactivatedDownload(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	alice, bob, adm := s.client(t, tokAlice), s.client(t, tokBob), s.client(t, tokAdmin)
	id := s.newImage(t, tokAlice, "deact")
	data := randomBytes(t, 4096)
	if err := imagedata.Upload(ctx, alice, id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := members.Create(ctx, alice, id, "projB").Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := members.Update(ctx, bob, id, "projB", members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatal(err)
	}
	if st, _, body := s.do(t, "POST", "/v2/images/"+id+"/actions/deactivate", tokAdmin, "", ""); st != 204 {
		t.Fatalf("deactivate: %d %s", st, body)
	}
	for name, c := range map[string]*gophercloud.ServiceClient{"owner": alice, "member": bob} {
		_, err := imagedata.Download(ctx, c, id).Extract()
		if statusOf(err) != 403 {
			t.Errorf("%s download of a deactivated image: %v", name, err)
		}
	}
	rd, err := imagedata.Download(ctx, adm, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("admin download: %d bytes", len(got))
	}
	// Reactivated, the member reads it again.
	if st, _, body := s.do(t, "POST", "/v2/images/"+id+"/actions/reactivate", tokAdmin, "", ""); st != 204 {
		t.Fatalf("reactivate: %d %s", st, body)
	}
	if rd, err := imagedata.Download(ctx, bob, id).Extract(); err != nil {
		t.Errorf("member download after reactivate: %v", err)
	} else {
		rd.Close()
	}
}

// TestCLIImageData: glance image-upload / image-download and openstack
// image create --file / image save move the same bytes.
func TestCLIImageData(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.img")
	data := randomBytes(t, 3<<20+7)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	same := func(t *testing.T, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %v, %d bytes, want the %d uploaded", path, err, len(got), len(data))
		}
	}
	t.Run("glance", func(t *testing.T) {
		t.Parallel()
		glance := needTool(t, "glance")
		home := t.TempDir()
		g := glanceAs(t, s, glance, home, tokAlice)
		id := s.newImage(t, tokAlice, "glance-data")
		g("image-upload", "--file", in, id)
		checkHashes(t, s.image(t, tokAlice, id), data)
		out := filepath.Join(dir, "glance-out.img")
		g("image-download", "--file", out, id)
		same(t, out)
	})
	t.Run("openstack", func(t *testing.T) {
		t.Parallel()
		osc := needTool(t, "openstack")
		home := t.TempDir()
		o := func(args ...string) string {
			t.Helper()
			base := []string{osc, "--os-auth-type", "admin_token", "--os-token", tokAlice, "--os-endpoint", s.URL + "/v2"}
			out, err := cli(t, home, append(base, args...)...)
			if err != nil {
				t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return out
		}
		o("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", in, "osc-data")
		out := filepath.Join(dir, "osc-out.img")
		o("image", "save", "--file", out, "osc-data")
		same(t, out)
	})
}

// TestImageSizeCap: an upload over --image-size-cap is a 413 whether the
// size is announced (Content-Length) or only found out (chunked), and the
// image stays uploadable.
func TestImageSizeCap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--image-size-cap", "100000")
	for _, chunked := range []bool{false, true} {
		id := s.newImage(t, tokAlice, fmt.Sprint("cap-", chunked))
		req, _ := http.NewRequest("PUT", s.URL+"/v2/images/"+id+"/file", bytes.NewReader(randomBytes(t, 300000)))
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		req.Header.Set("X-Auth-Token", tokAlice)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 413 {
			t.Errorf("chunked %v: %d %s", chunked, res.StatusCode, b)
		}
		s.waitStatus(t, id, images.ImageStatusQueued, 10*time.Second)
		data := randomBytes(t, 100000)
		if err := imagedata.Upload(context.Background(), s.client(t, tokAlice), id, bytes.NewReader(data)).ExtractErr(); err != nil {
			t.Fatalf("upload at the cap: %v", err)
		}
		checkHashes(t, s.image(t, tokAlice, id), data)
	}
}
