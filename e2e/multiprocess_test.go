package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/imaged/imaged/sqlstore/sqltest"
)

// cluster is several imaged processes on one PostgreSQL database and one
// shared store (a directory or a bucket), as a deployment behind a load
// balancer runs them.
type cluster struct {
	dsn   string
	store *sharedStore
	flags []string
	procs []*server
	// all is every process started, killed ones included, for the
	// check of their logs.
	all []*server
}

// newCluster starts n processes on a new database and the store. When the
// test ends, after the processes have stopped, it checks that none of
// them logged the store's secret.
func newCluster(t *testing.T, n int, store *sharedStore) *cluster {
	t.Helper()
	c := &cluster{dsn: sqltest.Postgres(t), store: store}
	c.flags = append([]string{"--database", c.dsn, "--upload-lease", "2s",
		"--image-property-quota", "256", "--db-max-conns", "8"}, store.flags...)
	// Registered before the processes start, so it runs after their
	// cleanups have stopped them and their last lines are in.
	t.Cleanup(func() { c.checkLogs(t) })
	for range n {
		c.procs = append(c.procs, c.start(t))
	}
	return c
}

func (c *cluster) start(t *testing.T) *server {
	t.Helper()
	s := startServerEnv(t, t.TempDir(), c.store.env, c.flags...)
	c.all = append(c.all, s)
	return s
}

// checkLogs fails the test if a process's log holds the store's secret.
func (c *cluster) checkLogs(t *testing.T) {
	t.Helper()
	if c.store.secret == "" {
		return
	}
	for _, s := range c.all {
		logs := s.logs.String()
		if !strings.Contains(logs, "imaged listening") {
			t.Errorf("process %s: no log captured, so none checked for the secret", s.URL)
		}
		for i, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, c.store.secret) {
				t.Errorf("process %s logged the store's secret key (line %d)", s.URL, i+1)
			}
		}
	}
}

// pick spreads requests over the processes.
func (c *cluster) pick(i int) *server { return c.procs[i%len(c.procs)] }

// upload PUTs body as an image's data and returns the status.
func upload(t *testing.T, s *server, id string, body io.Reader, size int64) int {
	t.Helper()
	req, err := http.NewRequest("PUT", s.URL+"/v2/images/"+id+"/file", body)
	if err != nil {
		t.Error(err)
		return 0
	}
	req.ContentLength = size
	req.Header.Set("X-Auth-Token", tokAlice)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestMultiProcess drives two imaged processes on one database and one
// shared store concurrently, then checks that no bytes are orphaned: with
// the store a directory, and a bucket of an S3-compatible server (the
// stateless replicas).
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			testMultiProcess(t, newCluster(t, 2, kind.open(t)))
		})
	}
}

func testMultiProcess(t *testing.T, c *cluster) {
	s1, s2 := c.procs[0], c.procs[1]

	t.Run("racing patches are all kept", func(t *testing.T) {
		id := s1.newImage(t, tokAlice, "contended")
		const n = 100
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range n {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				body := fmt.Sprintf(`[{"op":"add","path":"/prop_%03d","value":"v%d"}]`, i, i)
				code, _, resp := c.pick(i).do(t, "PATCH", "/v2/images/"+id, tokAlice, "application/openstack-images-v2.1-json-patch", body)
				if code != http.StatusOK {
					t.Errorf("patch %d: %d %s", i, code, resp)
				}
			})
		}
		wg.Wait()
		for _, s := range c.procs {
			img := s.image(t, tokAlice, id)
			kept := 0
			for i := range n {
				if img.Properties[fmt.Sprintf("prop_%03d", i)] == fmt.Sprintf("v%d", i) {
					kept++
				}
			}
			if kept != n {
				t.Errorf("%s sees %d of %d concurrent property patches", s.URL, kept, n)
			}
		}
	})

	t.Run("If-Match across processes: one winner", func(t *testing.T) {
		id := s1.newImage(t, tokAlice, "optimistic")
		_, h, _ := s2.do(t, "GET", "/v2/images/"+id, tokAlice, "", "")
		tag := h.Get("ETag")
		if tag == "" {
			t.Fatal("no ETag")
		}
		const n = 10
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest("PATCH", c.pick(i).URL+"/v2/images/"+id,
					strings.NewReader(fmt.Sprintf(`[{"op":"add","path":"/winner","value":"%d"}]`, i)))
				req.Header.Set("X-Auth-Token", tokAlice)
				req.Header.Set("Content-Type", "application/openstack-images-v2.1-json-patch")
				req.Header.Set("If-Match", tag)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				codes[i] = res.StatusCode
			})
		}
		wg.Wait()
		if slices.Index(codes, 200) < 0 || slices.IndexFunc(codes, func(c int) bool { return c != 200 && c != 412 }) >= 0 {
			t.Fatalf("statuses %v", codes)
		}
		won := 0
		for _, code := range codes {
			if code == 200 {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%d of %d conditional PATCHes won: %v", won, n, codes)
		}
	})

	t.Run("racing uploads through both: exactly one 204", func(t *testing.T) {
		id := s1.newImage(t, tokAlice, "upload race")
		const n = 4
		data := randomBytes(t, 2<<20)
		gate := make(chan struct{})
		statuses := make(chan int, n)
		for i := range n {
			go func() {
				body := &gatedReader{first: data[:64<<10], rest: data[64<<10:], gate: gate}
				statuses <- upload(t, c.pick(i), id, io.NopCloser(body), int64(len(data)))
			}()
		}
		counts := map[int]int{}
		for i := range n - 1 {
			select {
			case st := <-statuses:
				counts[st]++
			case <-time.After(30 * time.Second):
				close(gate)
				t.Fatalf("only %d of %d uploads answered while one holds the image: %v", i, n-1, counts)
			}
		}
		close(gate)
		counts[<-statuses]++
		if counts[204] != 1 || counts[409] != n-1 {
			t.Fatalf("statuses %v, want one 204 and %d 409", counts, n-1)
		}
		for _, s := range c.procs {
			checkHashes(t, s.image(t, tokAlice, id), data)
		}
	})

	t.Run("delete during an upload through the other process", func(t *testing.T) {
		id := s1.newImage(t, tokAlice, "deleted mid-upload")
		data := randomBytes(t, 4<<20)
		gate := make(chan struct{})
		done := make(chan int, 1)
		go func() {
			done <- upload(t, s1, id, io.NopCloser(&gatedReader{first: data[:256<<10], rest: data[256<<10:], gate: gate}), int64(len(data)))
		}()
		s2.waitStatus(t, id, images.ImageStatusSaving, 10*time.Second)
		if code, _, body := s2.do(t, "DELETE", "/v2/images/"+id, tokAlice, "", ""); code != http.StatusNoContent {
			close(gate)
			t.Fatalf("delete while saving: %d %s", code, body)
		}
		close(gate)
		if st := <-done; st != http.StatusNotFound && st != http.StatusGone {
			t.Errorf("upload of a deleted image answered %d", st)
		}
		for _, s := range c.procs {
			if code, _, _ := s.do(t, "GET", "/v2/images/"+id, tokAlice, "", ""); code != http.StatusNotFound {
				t.Errorf("%s: deleted image answers %d", s.URL, code)
			}
		}
	})

	t.Run("member changes during listing", func(t *testing.T) {
		const n = 24
		ids := make([]string, n)
		for i := range ids {
			ids[i] = c.pick(i).newImage(t, tokAlice, fmt.Sprintf("shared %02d", i))
			if code, _, body := c.pick(i).do(t, "PATCH", "/v2/images/"+ids[i], tokAlice, "application/openstack-images-v2.1-json-patch",
				`[{"op":"replace","path":"/visibility","value":"shared"}]`); code != 200 {
				t.Fatalf("share: %d %s", code, body)
			}
		}
		stop := make(chan struct{})
		var listers sync.WaitGroup
		for p := range c.procs {
			listers.Go(func() {
				for walks := 0; ; walks++ {
					select {
					case <-stop:
						if walks == 0 {
							t.Error("no listing completed")
						}
						return
					default:
					}
					seen := map[string]bool{}
					path := "/v2/images?visibility=shared&member_status=all&limit=5"
					for path != "" {
						code, _, body := c.procs[p].do(t, "GET", path, tokBob, "", "")
						if code != 200 {
							t.Errorf("listing: %d %s", code, body)
							return
						}
						var page struct {
							Images []struct{ ID string }
							Next   string
						}
						if err := json.Unmarshal([]byte(body), &page); err != nil {
							t.Error(err)
							return
						}
						for _, img := range page.Images {
							if seen[img.ID] {
								t.Errorf("image %s twice in one paged listing", img.ID)
							}
							seen[img.ID] = true
						}
						path = page.Next
					}
				}
			})
		}
		// Alice adds bob through one process, bob accepts every other
		// image through the other, while both list.
		var writers sync.WaitGroup
		for i, id := range ids {
			writers.Go(func() {
				if code, _, body := c.pick(i).do(t, "POST", "/v2/images/"+id+"/members", tokAlice, "application/json", `{"member":"projB"}`); code != 200 {
					t.Errorf("add member: %d %s", code, body)
					return
				}
				if i%2 == 0 {
					if code, _, body := c.pick(i+1).do(t, "PUT", "/v2/images/"+id+"/members/projB", tokBob, "application/json", `{"status":"accepted"}`); code != 200 {
						t.Errorf("accept: %d %s", code, body)
					}
				}
			})
		}
		writers.Wait()
		close(stop)
		listers.Wait()
		var want []string
		for i, id := range ids {
			if i%2 == 0 {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		for _, s := range c.procs {
			_, _, body := s.do(t, "GET", "/v2/images?visibility=shared&limit=100", tokBob, "", "")
			var page struct{ Images []struct{ ID string } }
			json.Unmarshal([]byte(body), &page)
			var got []string
			for _, img := range page.Images {
				got = append(got, img.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: bob's accepted shared images %v, want %v", s.URL, got, want)
			}
		}
	})

	t.Run("a process killed mid-upload, another recovers", func(t *testing.T) {
		s3 := c.start(t)
		id := s3.newImage(t, tokAlice, "crash")
		// More than two parts of the s3 kind: the crash leaves a
		// multipart upload with parts in the bucket.
		const sent = 12 << 20
		conn := s3.partialUpload(t, id, 64<<20, sent)
		defer conn.Close()
		s1.waitStatus(t, id, images.ImageStatusSaving, 10*time.Second)
		// The store holds an upload in progress with most of the sent
		// bytes (two full parts of the s3 kind; the rest is in the
		// process's memory), which the crash abandons.
		for deadline := time.Now().Add(10 * time.Second); ; {
			ups := c.store.uploads(t)
			if slices.ContainsFunc(ups, func(u pendingUpload) bool { return u.Bytes >= 2*s3PartSize }) {
				t.Logf("in progress at the crash: %+v", ups)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("uploads in progress in the store: %+v, want one holding %d of the %d bytes sent", ups, 2*s3PartSize, sent)
			}
			time.Sleep(20 * time.Millisecond)
		}
		s3.kill(t)
		// s1 keeps serving while the lease runs out.
		if code, _, _ := s1.do(t, "GET", "/v2/images", tokAlice, "", ""); code != 200 {
			t.Errorf("listing after the crash: %d", code)
		}
		img := s2.waitStatus(t, id, images.ImageStatusQueued, 15*time.Second)
		if img.SizeBytes != 0 || img.Checksum != "" {
			t.Errorf("recovered image: %+v", img)
		}
		// Several parts of the s3 kind, completed by another process
		// than the one that crashed.
		data := randomBytes(t, 2*s3PartSize+17)
		if st := upload(t, s1, id, bytes.NewReader(data), int64(len(data))); st != http.StatusNoContent {
			t.Fatalf("upload after recovery: %d", st)
		}
		checkHashes(t, s2.image(t, tokAlice, id), data)
	})

	t.Run("no orphaned bytes", func(t *testing.T) {
		// Every file or object left in the shared store is the data of
		// an active image, and no upload is left in progress (the
		// crashed one's multipart upload aborted), once the sweeps
		// (every lease period: RecoverAbandoned, PurgeUploads of
		// uploads idle for a lease, SweepOrphans) have run.
		code, _, body := s1.do(t, "GET", "/v2/images?limit=1000&visibility=all", tokAdmin, "", "")
		if code != 200 {
			t.Fatalf("admin listing: %d %s", code, body)
		}
		var page struct {
			Images []struct {
				ID     string
				Status string
				Size   *int64
			}
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		active := map[string]bool{}
		for _, img := range page.Images {
			if img.Status == "active" {
				active[img.ID] = true
			}
		}
		if len(active) != 2 {
			t.Fatalf("%d active images, want 2 (the upload race's and the recovered one)", len(active))
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			files, ups := c.store.entries(t), c.store.uploads(t)
			perImage := map[string]int{}
			var orphans []string
			for _, f := range files {
				owner := ""
				for id := range active {
					if strings.Contains(f, id) {
						owner = id
					}
				}
				if owner == "" {
					orphans = append(orphans, f)
				} else {
					perImage[owner]++
				}
			}
			ok := len(orphans) == 0 && len(ups) == 0 && len(perImage) == len(active)
			for _, n := range perImage {
				ok = ok && n == 1
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("store entries %v: orphans %v, per active image %v; uploads in progress %+v", files, orphans, perImage, ups)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
