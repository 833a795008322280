package cli

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// vmImage is the part of a Glance image the CLI reads.
type vmImage struct {
	ID              string  `json:"id"`
	Name            *string `json:"name"`
	Status          string  `json:"status"`
	DiskFormat      *string `json:"disk_format"`
	ContainerFormat *string `json:"container_format"`
	Visibility      string  `json:"visibility"`
	Size            *int64  `json:"size"`
	Checksum        *string `json:"checksum"`
	OSHashAlgo      *string `json:"os_hash_algo"`
	OSHashValue     *string `json:"os_hash_value"`
	CreatedAt       string  `json:"created_at"`
}

func (im *vmImage) size() string {
	if im.Size == nil {
		return ""
	}
	return humanBytes(*im.Size)
}

// upload creates a Glance image and streams FILE into it, hashing what
// it sends, then checks the server's checksum and os_hash_value.
func (c *cmd) upload(ctx context.Context, args []string) error {
	fs := c.flagSet("upload")
	var name, disk, container, visibility string
	fs.StringVar(&name, "name", "", "image name")
	fs.StringVar(&disk, "disk-format", "", "qcow2, raw, iso, ...")
	fs.StringVar(&container, "container-format", "bare", "bare, ovf, ...")
	fs.StringVar(&visibility, "visibility", "", "private, shared, community or public")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	if name == "" || disk == "" {
		return usageErrorf("--name and --disk-format are required")
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", pos[0])
	}
	create := map[string]string{"name": name, "disk_format": disk, "container_format": container}
	if visibility != "" {
		create["visibility"] = visibility
	}
	var created vmImage
	if _, err := c.cl.call(ctx, "POST", "/v2/images", nil, create, &created); err != nil {
		return err
	}
	if created.ID == "" {
		return errors.New("the server created an image without an id")
	}
	sums := newSums()
	bar := c.progress("upload", Bytes)
	bar.SetTotal(st.Size())
	// The file is read once, as the transport sends it: the hashes are
	// of exactly the bytes on the wire and nothing is buffered.
	body := io.TeeReader(&countingReader{r: f, p: bar}, sums)
	req, err := c.cl.request(ctx, "PUT", "/v2/images/"+url.PathEscape(created.ID)+"/file", nil, body, "application/octet-stream")
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	if st.Size() == 0 {
		req.Body = http.NoBody
	}
	res, err := c.cl.send(req)
	if err != nil {
		bar.Abandon()
		c.dropImage(ctx, created.ID)
		if ctx.Err() != nil {
			return fmt.Errorf("upload interrupted; image %s deleted", created.ID)
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	bar.Finish()
	var raw json.RawMessage
	if _, err := c.cl.call(ctx, "GET", "/v2/images/"+url.PathEscape(created.ID), nil, nil, &raw); err != nil {
		return err
	}
	var got vmImage
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("unexpected image in the answer: %w", err)
	}
	if err := sums.verify(&got, st.Size()); err != nil {
		return fmt.Errorf("image %s: %w (the image is kept for inspection)", got.ID, err)
	}
	if c.output == "json" {
		return c.printJSON(raw)
	}
	return keyValues(c.env.Stdout, [][2]string{{"id", got.ID}, {"name", str(got.Name)}, {"status", got.Status},
		{"size", fmt.Sprintf("%s (%d bytes)", got.size(), st.Size())}, {"checksum", str(got.Checksum) + " (verified)"},
		{str(got.OSHashAlgo), str(got.OSHashValue) + " (verified)"}})
}

// dropImage deletes an image this command created and could not fill;
// best effort, also after Ctrl-C.
func (c *cmd) dropImage(ctx context.Context, id string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.cl.call(dctx, "DELETE", "/v2/images/"+url.PathEscape(id), nil, nil, nil); err != nil {
		fmt.Fprintf(c.env.Stderr, "imaged %s: could not delete the empty image %s: %v\n", c.name, id, err)
	}
}

// sums hashes a stream with every algorithm the server may report.
type sums struct {
	md5, sha256, sha512 hash.Hash
	w                   io.Writer
}

func newSums() *sums {
	s := &sums{md5: md5.New(), sha256: sha256.New(), sha512: sha512.New()}
	s.w = io.MultiWriter(s.md5, s.sha256, s.sha512)
	return s
}

func (s *sums) Write(p []byte) (int, error) { return s.w.Write(p) }

// verify compares the server's size, checksum and os_hash_value with
// the local ones.
func (s *sums) verify(im *vmImage, size int64) error {
	if im.Size == nil || *im.Size != size {
		got := "none"
		if im.Size != nil {
			got = strconv.FormatInt(*im.Size, 10)
		}
		return fmt.Errorf("the server stored %s bytes, %d were sent", got, size)
	}
	local := hex.EncodeToString(s.md5.Sum(nil))
	if im.Checksum == nil || !strings.EqualFold(*im.Checksum, local) {
		return fmt.Errorf("checksum mismatch: server %s, local %s", str(im.Checksum), local)
	}
	var h hash.Hash
	switch str(im.OSHashAlgo) {
	case "sha512":
		h = s.sha512
	case "sha256":
		h = s.sha256
	case "md5":
		h = s.md5
	default:
		return nil // an algorithm we do not compute: the md5 matched
	}
	if local := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(str(im.OSHashValue), local) {
		return fmt.Errorf("%s mismatch: server %s, local %s", str(im.OSHashAlgo), str(im.OSHashValue), local)
	}
	return nil
}

// download streams an image's data to a temporary file next to -o,
// checks its length and MD5, and renames it into place only then.
func (c *cmd) download(ctx context.Context, args []string) error {
	fs := c.flagSet("download")
	var out string
	fs.StringVar(&out, "o", "", "the file to write")
	fs.StringVar(&out, "file", "", "the file to write")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	if out == "" {
		return usageErrorf("missing -o FILE")
	}
	id := pos[0]
	req, err := c.cl.request(ctx, "GET", "/v2/images/"+url.PathEscape(id)+"/file", nil, nil, "")
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/octet-stream")
	res, err := c.cl.send(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNoContent {
		return fmt.Errorf("image %s has no data", id)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".part-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bar := c.progress("download", Bytes)
	bar.SetTotal(res.ContentLength)
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), &countingReader{r: res.Body, p: bar})
	if err != nil {
		bar.Abandon()
		if ctx.Err() != nil {
			return errors.New("download interrupted; nothing written")
		}
		return fmt.Errorf("download of %s failed after %d bytes: %w; nothing written", id, n, err)
	}
	if res.ContentLength >= 0 && n != res.ContentLength {
		bar.Abandon()
		return fmt.Errorf("download of %s truncated: %d of %d bytes; nothing written", id, n, res.ContentLength)
	}
	bar.Finish()
	local := h.Sum(nil)
	want := res.Header.Get("Content-MD5")
	if want == "" {
		// No header (a cached or proxied answer): the image's checksum.
		var im vmImage
		if _, err := c.cl.call(ctx, "GET", "/v2/images/"+url.PathEscape(id), nil, nil, &im); err != nil {
			return err
		}
		want = str(im.Checksum)
	}
	if want == "" {
		fmt.Fprintf(c.env.Stderr, "imaged %s: warning: the server gave no checksum to verify against\n", c.name)
	} else if !md5Equal(want, local) {
		return fmt.Errorf("checksum mismatch for %s: server %s, received %s; nothing written", id, want, hex.EncodeToString(local))
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	done = true
	sum := hex.EncodeToString(local)
	if c.output == "json" {
		return c.printJSON(map[string]any{"id": id, "file": out, "size": n, "checksum": sum, "verified": want != ""})
	}
	fmt.Fprintf(c.env.Stdout, "downloaded %s to %s: %s, md5 %s\n", id, out, humanBytes(n), sum)
	return nil
}

// md5Equal compares a Content-MD5 value, hex (as Glance sends it) or
// base64 (RFC 1864), with a digest.
func md5Equal(header string, sum []byte) bool {
	header = strings.TrimSpace(header)
	if b, err := hex.DecodeString(header); err == nil && len(b) == md5.Size {
		return bytes.Equal(b, sum)
	}
	if b, err := base64.StdEncoding.DecodeString(header); err == nil {
		return bytes.Equal(b, sum)
	}
	return false
}

// vmImages lists Glance images briefly.
func (c *cmd) vmImages(ctx context.Context, args []string) error {
	fs := c.flagSet("images")
	var limit int
	var all bool
	fs.IntVar(&limit, "limit", 0, "page size")
	fs.BoolVar(&all, "all", false, "follow every page")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	items := []json.RawMessage{}
	next, err := c.pages(ctx, "/v2/images", q, all, "images", func(p []json.RawMessage) { items = append(items, p...) })
	if err != nil {
		return err
	}
	if c.output == "json" {
		out := map[string]any{"images": items}
		if next != "" {
			out["next"] = next
		}
		return c.printJSON(out)
	}
	rows := make([][]string, 0, len(items))
	for _, raw := range items {
		var im vmImage
		if err := json.Unmarshal(raw, &im); err != nil {
			return fmt.Errorf("unexpected image in the answer: %w", err)
		}
		rows = append(rows, []string{im.ID, str(im.Name), im.Status, str(im.DiskFormat), im.size(), im.Visibility})
	}
	if err := table(c.env.Stdout, []string{"ID", "NAME", "STATUS", "DISK", "SIZE", "VISIBILITY"}, rows); err != nil {
		return err
	}
	c.moreNote(next)
	return nil
}
