package agent

import (
	"context"
	"crypto"
	"crypto/md5"
	_ "crypto/sha1" // registers the os_hash_algo values Glance may report
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// VM images: the dir runtime also holds disk images downloaded from
// imaged's Glance API, named by the reference glance://<image id>. Each is
// one file, vm/<id>.img under the cache directory, with its description
// in vm/<id>.json; the OCI layout ignores the vm directory.
//
// A VM image is held once whatever the architecture asked for: its
// architecture is the image's `architecture` property (normalised, ""
// when unset), and an architecture of "" in Pull or Remove matches any.

// GlanceScheme prefixes the references of VM images.
const GlanceScheme = imaged.AgentVMScheme

const (
	vmDir     = "vm"
	vmTmpPref = ".tmp-"
)

// GlanceSource is where VM images are downloaded from.
type GlanceSource struct {
	// ServerURL is imaged's base URL; the Glance API is under /v2.
	ServerURL string
	// Token is sent as X-Auth-Token; "" sends none.
	Token string
	// Client makes the requests; nil = a client with header timeouts and
	// no overall timeout (images are large), bounded by the context.
	Client *http.Client
}

// WithGlance lets the runtime pull glance:// references from src. Call it
// before the runtime is used.
func (d *DirRuntime) WithGlance(src GlanceSource) *DirRuntime {
	if src.Client == nil {
		src.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}}
	}
	// The token must not follow a redirect to another host (a location
	// store, say): X-Auth-Token is not among the headers net/http drops.
	c := *src.Client
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && req.URL.Host != via[0].URL.Host {
			req.Header.Del("X-Auth-Token")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	src.Client = &c
	src.ServerURL = strings.TrimRight(src.ServerURL, "/")
	d.glance = &src
	d.sweepVMTemp()
	return d
}

// sweepVMTemp deletes the temporary files of downloads a crash or a kill
// interrupted: VM images are large, and nothing else would ever free
// them. It runs when the agent starts, before any pull of its own.
func (d *DirRuntime) sweepVMTemp() {
	dir := filepath.Join(string(d.path), vmDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // no vm directory yet: nothing to sweep
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), vmTmpPref) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// IsGlanceRef says whether ref names a VM image (glance://...).
func IsGlanceRef(ref string) bool { return strings.HasPrefix(ref, GlanceScheme) }

// parseGlanceRef returns the image id of a glance:// reference, lower
// case. Ids are UUIDs; anything else is refused, which also keeps the id
// safe as a file name.
func parseGlanceRef(ref string) (string, error) {
	id, ok := strings.CutPrefix(ref, GlanceScheme)
	id = strings.ToLower(id)
	if !ok || len(id) != 36 {
		return "", imaged.Errorf(imaged.EINVALID, "bad VM image reference %q: want glance://<image uuid>", ref)
	}
	for i, c := range id {
		dash := i == 8 || i == 13 || i == 18 || i == 23
		if dash != (c == '-') || (!dash && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
			return "", imaged.Errorf(imaged.EINVALID, "bad VM image reference %q: want glance://<image uuid>", ref)
		}
	}
	return id, nil
}

// vmMeta is the description of a held VM image (vm/<id>.json).
type vmMeta struct {
	Architecture string `json:"architecture"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	MD5          string `json:"md5"`
}

func (d *DirRuntime) vmPath(id, ext string) string {
	return filepath.Join(string(d.path), vmDir, id+ext)
}

// glanceImage is the part of a Glance image record a pull needs.
type glanceImage struct {
	ID           string  `json:"id"`
	Status       string  `json:"status"`
	Size         *int64  `json:"size"`
	Checksum     *string `json:"checksum"`
	OSHashAlgo   *string `json:"os_hash_algo"`
	OSHashValue  *string `json:"os_hash_value"`
	Architecture *string `json:"architecture"`
}

// osHash maps an os_hash_algo value (a Python hashlib name) to Go's.
func osHash(algo string) (crypto.Hash, bool) {
	switch algo {
	case "sha1":
		return crypto.SHA1, true
	case "sha224":
		return crypto.SHA224, true
	case "sha256":
		return crypto.SHA256, true
	case "sha384":
		return crypto.SHA384, true
	case "sha512":
		return crypto.SHA512, true
	case "sha512_224":
		return crypto.SHA512_224, true
	case "sha512_256":
		return crypto.SHA512_256, true
	}
	return 0, false
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// glanceGet sends an authenticated GET to the Glance API; non-2xx
// answers become imaged errors (the body is closed then).
func (d *DirRuntime) glanceGet(ctx context.Context, ref, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.glance.ServerURL+path, nil)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "bad Glance URL: %v", err)
	}
	if d.glance.Token != "" {
		req.Header.Set("X-Auth-Token", d.glance.Token)
	}
	resp, err := d.glance.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// url.Error carries the URL only, never headers: safe to show.
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "cannot reach imaged's Glance API for %s: %v", ref, err)
	}
	if resp.StatusCode/100 == 2 && resp.StatusCode != http.StatusNoContent {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, imaged.Errorf(imaged.ENOTFOUND, "VM image %s is not in imaged", ref)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, "imaged refused access to VM image %s (%s): check the agent's --glance-token-file", ref, resp.Status)
	case http.StatusNoContent:
		return nil, imaged.Errorf(imaged.EPRECONDITION, "VM image %s has no data", ref)
	}
	return nil, imaged.Errorf(imaged.EUNAVAILABLE, "imaged's Glance API answered %s for VM image %s", resp.Status, ref)
}

// pullVM downloads a VM image into the cache, verifying its size, MD5
// checksum and os_hash; the file appears (atomically) only once verified.
func (d *DirRuntime) pullVM(ctx context.Context, ref, arch string) (imaged.AgentImage, error) {
	id, err := parseGlanceRef(ref)
	if err != nil {
		return imaged.AgentImage{}, err
	}
	ref = GlanceScheme + id
	if d.glance == nil {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "cannot pull VM image %s: this agent has no Glance API configured", ref)
	}
	img, err := d.glanceRecord(ctx, ref, id)
	if err != nil {
		return imaged.AgentImage{}, err
	}
	imgArch := imaged.NormalizeArch(str(img.Architecture))
	if arch != "" && imgArch != "" && imaged.NormalizeArch(arch) != imgArch {
		return imaged.AgentImage{}, imaged.Errorf(imaged.ENOTFOUND, "VM image %s has no %s variant (it is %s)", ref, imaged.NormalizeArch(arch), imgArch)
	}
	algo := str(img.OSHashAlgo)
	hashFn, known := osHash(algo)
	if algo != "" && !known {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EREFUSED, "VM image %s has os_hash_algo %q, which this agent cannot verify", ref, algo)
	}
	resp, err := d.glanceGet(ctx, ref, "/v2/images/"+id+"/file")
	if err != nil {
		return imaged.AgentImage{}, err
	}
	defer resp.Body.Close()

	dir := filepath.Join(string(d.path), vmDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: %w", err)
	}
	tmp, err := os.CreateTemp(dir, vmTmpPref+id+"-*")
	if err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sumMD5 := md5.New()
	var sumOS hash.Hash
	w := io.MultiWriter(tmp, sumMD5)
	if known {
		sumOS = hashFn.New()
		w = io.MultiWriter(tmp, sumMD5, sumOS)
	}
	want := *img.Size
	// One byte more than announced is read so that a longer body is seen.
	n, err := io.Copy(w, io.LimitReader(resp.Body, want+1))
	if err != nil {
		if ctx.Err() != nil {
			return imaged.AgentImage{}, ctx.Err()
		}
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "download of VM image %s failed after %d bytes: %v", ref, n, err)
	}
	if n != want {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "VM image %s: size mismatch: downloaded %d bytes, imaged says %d", ref, n, want)
	}
	gotMD5 := hex.EncodeToString(sumMD5.Sum(nil))
	if want := strings.ToLower(str(img.Checksum)); want != "" && gotMD5 != want {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "VM image %s: md5 checksum mismatch: downloaded %s, imaged says %s", ref, gotMD5, want)
	}
	digest := "md5:" + gotMD5
	if sumOS != nil {
		got := hex.EncodeToString(sumOS.Sum(nil))
		if want := strings.ToLower(str(img.OSHashValue)); got != want {
			return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "VM image %s: %s os_hash mismatch: downloaded %s, imaged says %s", ref, algo, got, want)
		}
		digest = algo + ":" + got
	}
	// Durable before it is visible: a crash leaves the old file or the
	// whole new one, never a torn image under the final name.
	if err := tmp.Sync(); err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: sync %s: %w", ref, err)
	}
	if err := tmp.Close(); err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: close %s: %w", ref, err)
	}
	meta := vmMeta{Architecture: imgArch, Digest: digest, Size: n, MD5: gotMD5}
	raw, _ := json.Marshal(meta)

	d.mu.Lock()
	defer d.mu.Unlock()
	// The description first: an image file is listed only with one, so a
	// crash between the renames leaves nothing half described.
	if err := writeFileAtomic(d.vmPath(id, ".json"), raw); err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: %w", err)
	}
	if err := os.Rename(tmp.Name(), d.vmPath(id, ".img")); err != nil {
		return imaged.AgentImage{}, fmt.Errorf("agent: dir runtime: %w", err)
	}
	done = true
	syncDir(dir)
	return imaged.AgentImage{Reference: ref, Architecture: imgArch, Digest: digest, Size: n}, nil
}

// glanceRecord fetches and checks the image's record.
func (d *DirRuntime) glanceRecord(ctx context.Context, ref, id string) (*glanceImage, error) {
	resp, err := d.glanceGet(ctx, ref, "/v2/images/"+url.PathEscape(id))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var img glanceImage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&img); err != nil {
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "imaged's Glance API sent a bad record for VM image %s: %v", ref, err)
	}
	if img.Status != "active" {
		return nil, imaged.Errorf(imaged.EPRECONDITION, "VM image %s is %s, not active: it has no data to download yet", ref, img.Status)
	}
	if img.Size == nil || *img.Size < 0 {
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "VM image %s has no size", ref)
	}
	if str(img.Checksum) == "" && str(img.OSHashValue) == "" {
		return nil, imaged.Errorf(imaged.EPRECONDITION, "VM image %s has neither checksum nor os_hash_value: it cannot be verified", ref)
	}
	if str(img.OSHashAlgo) != "" && str(img.OSHashValue) == "" {
		return nil, imaged.Errorf(imaged.EPRECONDITION, "VM image %s has os_hash_algo without os_hash_value", ref)
	}
	return &img, nil
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), vmTmpPref+"meta-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// syncDir makes renames in dir durable; failure only weakens durability.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// listVM returns the VM images held (never nil). d.mu must be held.
func (d *DirRuntime) listVM() ([]imaged.AgentImage, error) {
	out := []imaged.AgentImage{}
	ents, err := os.ReadDir(filepath.Join(string(d.path), vmDir))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: dir runtime: list VM images: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".img")
		if !ok || strings.HasPrefix(id, vmTmpPref) {
			continue
		}
		m, err := d.readVMMeta(id)
		if err != nil {
			continue // not a file this runtime finished writing
		}
		// A crash between the two renames of a re-pull leaves the new
		// description beside the old file: not listed, as not verified.
		if info, err := e.Info(); err != nil || info.Size() != m.Size {
			continue
		}
		out = append(out, imaged.AgentImage{Reference: GlanceScheme + id, Architecture: m.Architecture, Digest: m.Digest, Size: m.Size})
	}
	return out, nil
}

func (d *DirRuntime) readVMMeta(id string) (vmMeta, error) {
	var m vmMeta
	raw, err := os.ReadFile(d.vmPath(id, ".json"))
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	return m, err
}

// removeVM deletes a held VM image and returns its size.
func (d *DirRuntime) removeVM(ref, arch string) (int64, error) {
	id, err := parseGlanceRef(ref)
	if err != nil {
		return 0, err
	}
	ref = GlanceScheme + id
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := os.Stat(d.vmPath(id, ".img"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, notPresent(ref, arch)
	}
	if err != nil {
		return 0, fmt.Errorf("agent: dir runtime: %w", err)
	}
	m, err := d.readVMMeta(id)
	if err != nil {
		return 0, notPresent(ref, arch) // not listed either
	}
	if arch != "" && m.Architecture != "" && imaged.NormalizeArch(arch) != m.Architecture {
		return 0, notPresent(ref, imaged.NormalizeArch(arch))
	}
	if err := os.Remove(d.vmPath(id, ".img")); err != nil {
		return 0, fmt.Errorf("agent: dir runtime: remove %s: %w", ref, err)
	}
	if err := os.Remove(d.vmPath(id, ".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return info.Size(), fmt.Errorf("agent: dir runtime: remove %s: %w", ref, err)
	}
	return info.Size(), nil
}
