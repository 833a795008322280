package catalog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imaged/imaged"
)

// The glance-download import method (Glance 25.1, an OVHcloud
// contribution): an image of another region's Glance is copied into a
// queued image here, with the caller's own token:
//
//	POST /v2/images/{id}/import
//	{"method": {"name": "glance-download", "glance_image_id": "<uuid>",
//	            "glance_region": "RegionTwo", "glance_service_interface": "public"}}
//
// In the background, as Glance's _ImportMetadata and _DownloadGlanceImage
// tasks do: the other region's image endpoint is found in the user's
// Keystone catalog (GET /v3/auth/catalog), the remote image is read
// (GET {endpoint}/v2/images/{id}; it must be active), its disk and
// container formats and the properties under the configured prefixes are
// set on the local image, then its data (GET .../file) streams through the
// import pipeline. Unlike Glance, which only compares the size, the bytes
// must also hash to the remote image's checksum and os_hash_value before
// they are committed. A failure reverts the copied metadata and leaves the
// image queued, as Glance's revert does.
//
// The user's token reaches the background task only through the request's
// context (WithUserToken): it is kept in memory for the task's duration,
// never stored in the task or the image, never logged, and never sent
// anywhere but Keystone and the catalog's image endpoints (redirects are
// refused, so it cannot be forwarded to a third host).

// ImportGlanceDownload is the glance-download import method's name.
const ImportGlanceDownload = "glance-download"

// DefaultGlanceDownloadProperties are Glance's
// [glance_download_properties] extra_properties: the prefixes of the
// remote properties copied to the local image.
var DefaultGlanceDownloadProperties = []string{"hw_", "trait:", "os_distro", "os_secure_boot", "os_type"}

// GlanceDownloadConfig configures glance-download.
type GlanceDownloadConfig struct {
	// KeystoneURL is the identity endpoint whose catalog names the other
	// regions' image endpoints ("/v3" is added when missing).
	KeystoneURL string
	// Client makes the calls (nil = a client with Timeout for metadata
	// and no overall limit on data). Its redirect policy is replaced:
	// redirects are refused so the token goes nowhere else.
	Client *http.Client
	// Timeout bounds the catalog and metadata calls and the wait for the
	// data's response headers (0 = 30 s).
	Timeout time.Duration
	// CheckURL, if set, vets the remote image's URLs before they are
	// requested (Glance passes the download URL through its import
	// filtering, the rules of web-download).
	CheckURL func(rawURL string) error
	// Properties are the prefixes of the properties copied (nil =
	// DefaultGlanceDownloadProperties). os_glance_* is never copied.
	Properties []string
}

// glanceDownloader is glance-download's configuration, ready to use.
type glanceDownloader struct {
	keystone string // ".../v3"
	client   *http.Client
	timeout  time.Duration
	checkURL func(string) error
	props    []string
}

type userTokenKey struct{}

// WithUserToken returns a context carrying the caller's token, which
// glance-download presents to Keystone and to the other region. Only the
// HTTP layer calls it, for import requests under Keystone auth.
func WithUserToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, userTokenKey{}, token)
}

func userToken(ctx context.Context) string {
	t, _ := ctx.Value(userTokenKey{}).(string)
	return t
}

// WithGlanceDownload enables the glance-download import method on a
// service with imports (WithImports). It configures the import state
// shared by s and its copies, so call it while setting up, before serving.
func (s *Service) WithGlanceDownload(cfg GlanceDownloadConfig) (*Service, error) {
	if s.imp == nil {
		return nil, errors.New("catalog: glance-download needs imports (WithImports)")
	}
	u, err := url.Parse(cfg.KeystoneURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("catalog: glance-download: Keystone URL %q is not an http(s) URL", cfg.KeystoneURL)
	}
	base := strings.TrimRight(cfg.KeystoneURL, "/")
	if !strings.HasSuffix(base, "/v3") {
		base += "/v3"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	props := cfg.Properties
	if props == nil {
		props = DefaultGlanceDownloadProperties
	}
	s.imp.gd = &glanceDownloader{keystone: base, client: client, timeout: cfg.Timeout, checkURL: cfg.CheckURL,
		props: slices.Clone(props)}
	if !slices.Contains(s.imp.methods, ImportGlanceDownload) {
		s.imp.methods = append(s.imp.methods, ImportGlanceDownload)
	}
	return s, nil
}

// checkGlanceDownload is Glance's check of the method's fields, after the
// image checks and before the policy; it fills in the default interface
// (so the task's input records it, as Glance's does).
func checkGlanceDownload(body map[string]any) error {
	method, _ := body["method"].(map[string]any)
	if method == nil {
		return imaged.Errorf(imaged.EINVALID, "Import request requires a 'method' field.")
	}
	if _, ok := method["glance_region"]; !ok {
		return imaged.Errorf(imaged.EINVALID, "'glance_region' needs to be set for glance-download import method")
	}
	if r, ok := method["glance_region"].(string); !ok || r == "" {
		return imaged.Errorf(imaged.EINVALID, "'glance_region' must be a non-empty string")
	}
	idv, ok := method["glance_image_id"]
	if !ok {
		return imaged.Errorf(imaged.EINVALID, "'glance_image_id' needs to be set for glance-download import method")
	}
	if id, _ := idv.(string); !uuidLike(id) {
		return imaged.Errorf(imaged.EINVALID, "Remote image id does not look like a UUID: %s", pyText(idv))
	}
	if v, ok := method["glance_service_interface"]; !ok {
		method["glance_service_interface"] = "public"
	} else if s, _ := v.(string); s != "public" && s != "internal" && s != "admin" {
		return imaged.Errorf(imaged.EINVALID, "'glance_service_interface' must be one of public, internal, admin")
	}
	return nil
}

// uuidLike accepts what Python's uuid.UUID accepts from a string: 32 hex
// digits, with or without the four hyphens, braces or a urn:uuid: prefix.
func uuidLike(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "urn:"), "uuid:")
	s = strings.Trim(s, "{}")
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// pyText renders a JSON value roughly as Python's %s would.
func pyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// remoteImage is the part of the other region's image record read here.
type remoteImage struct {
	fields          map[string]any
	status          string
	diskFormat      string
	containerFormat string
	size            int64
	checksum        string
	hashAlgo        string
	hashValue       string
}

// glanceDownloadSource is the first half of a glance-download: the remote
// metadata is read and set on the image (under the import's lease), and
// the remote data is opened. It returns the updated image; on failure the
// caller fails the upload, whose onFail reverts the metadata.
func (s *Service) glanceDownloadSource(ctx context.Context, u *upload, img *imaged.Image, req imaged.ImportRequest) (*imaged.Image, io.ReadCloser, int64, error) {
	gd := s.imp.gd
	if gd == nil {
		return nil, nil, 0, imaged.Errorf(imaged.EINVALID, "Unknown import method name '%s'.", req.Method)
	}
	token := userToken(ctx)
	if token == "" {
		return nil, nil, 0, imaged.Errorf(imaged.EUNAUTHORIZED, "glance-download needs the caller's Keystone token, and the import request carried none.")
	}
	method, _ := req.Body["method"].(map[string]any)
	region, _ := method["glance_region"].(string)
	remoteID, _ := method["glance_image_id"].(string)
	iface, _ := method["glance_service_interface"].(string)
	if iface == "" {
		iface = "public"
	}
	endpoint, err := gd.endpoint(ctx, token, region, iface)
	if err != nil {
		return nil, nil, 0, err
	}
	remote, err := gd.image(ctx, token, endpoint, remoteID)
	if err != nil {
		return nil, nil, 0, err
	}
	props := map[string]string{}
	for k, v := range remote.fields {
		if strings.HasPrefix(k, "os_glance") {
			continue // reserved for the local Glance
		}
		for _, p := range gd.props {
			if strings.HasPrefix(k, p) {
				if str, ok := v.(string); ok {
					props[k] = str
				} else if v != nil {
					b, _ := json.Marshal(v)
					props[k] = string(b)
				}
				break
			}
		}
	}
	// Glance's revert: the copied properties go, replaced ones and the
	// formats come back.
	oldDisk, oldContainer := img.DiskFormat, img.ContainerFormat
	oldProps := map[string]*string{}
	for k := range props {
		if v, ok := img.Properties[k]; ok {
			oldProps[k] = &v
		} else {
			oldProps[k] = nil
		}
	}
	prevFail := u.onFail
	u.onFail = func(img *imaged.Image) {
		img.DiskFormat, img.ContainerFormat = oldDisk, oldContainer
		for k, v := range oldProps {
			if v == nil {
				delete(img.Properties, k)
			} else {
				img.Properties[k] = *v
			}
		}
		if prevFail != nil {
			prevFail(img)
		}
	}
	now := s.clock.Now()
	img, err = s.store.UpdateImage(ctx, u.imageID, func(img *imaged.Image) error {
		if img.Status != u.status || img.Lease == nil || img.Lease.ID != u.leaseID {
			return errLostLease(u.imageID)
		}
		img.DiskFormat, img.ContainerFormat = remote.diskFormat, remote.containerFormat
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		for k, v := range props {
			img.Properties[k] = v
		}
		img.UpdatedAt = now
		return nil
	})
	if err != nil {
		if imaged.ErrorCode(err) == imaged.ENOTFOUND {
			return nil, nil, 0, errGone(u.imageID)
		}
		return nil, nil, 0, fmt.Errorf("catalog: glance-download %s: set metadata: %w", u.imageID, err)
	}
	u.verify = remote.verify(region)
	body, err := gd.data(ctx, token, endpoint, remoteID, remote.size)
	if err != nil {
		return nil, nil, 0, err
	}
	return img, body, remote.size, nil
}

// verify checks the downloaded bytes against the remote image's size and
// hashes before they are committed.
func (r *remoteImage) verify(region string) func(uploadSum) error {
	return func(sum uploadSum) error {
		if sum.n != r.size {
			return imaged.Errorf(imaged.ECONFLICT, "The data downloaded from region %s is %d bytes long, but the remote image's size is %d.", region, sum.n, r.size)
		}
		if r.checksum != "" && !strings.EqualFold(hex.EncodeToString(sum.md5), r.checksum) {
			return imaged.Errorf(imaged.ECONFLICT, "The data downloaded from region %s does not match the remote image's checksum.", region)
		}
		if r.hashAlgo == hashAlgo && r.hashValue != "" && !strings.EqualFold(hex.EncodeToString(sum.sha512), r.hashValue) {
			return imaged.Errorf(imaged.ECONFLICT, "The data downloaded from region %s does not match the remote image's os_hash_value.", region)
		}
		return nil
	}
}

// call sends an authenticated GET and returns the response of a 2xx
// answer; other answers become errors worded for the task's message.
func (gd *glanceDownloader) call(ctx context.Context, token, rawURL, what string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "glance-download: the %s URL is malformed.", what)
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Accept", "application/json")
	resp, err := gd.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The error names the URL but never the token (it is a header).
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "glance-download: the %s could not be reached: %s", what, errText(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "glance-download: the %s answered %s", what, resp.Status)
	}
	return resp, nil
}

// errText is a transport error without Go's "Get \"url\": " prefix.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// endpoint finds the image endpoint of a region and interface in the
// caller's catalog, as Glance's get_glance_endpoint does.
func (gd *glanceDownloader) endpoint(ctx context.Context, token, region, iface string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, gd.timeout)
	defer cancel()
	resp, err := gd.call(cctx, token, gd.keystone+"/auth/catalog", "identity service")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc struct {
		Catalog []struct {
			Type      string `json:"type"`
			Endpoints []struct {
				Interface string `json:"interface"`
				Region    string `json:"region"`
				RegionID  string `json:"region_id"`
				URL       string `json:"url"`
			} `json:"endpoints"`
		} `json:"catalog"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&doc); err != nil {
		return "", imaged.Errorf(imaged.EUNAVAILABLE, "glance-download: the identity service sent an unreadable catalog.")
	}
	for _, svc := range doc.Catalog {
		if svc.Type != "image" {
			continue
		}
		for _, e := range svc.Endpoints {
			r := e.RegionID
			if r == "" {
				r = e.Region
			}
			if strings.EqualFold(r, region) && e.Interface == iface && e.URL != "" {
				// Catalogs name Glance's root; some add the version.
				u := strings.TrimRight(e.URL, "/")
				return strings.TrimSuffix(u, "/v2"), nil
			}
		}
	}
	return "", imaged.Errorf(imaged.ENOTFOUND, "%s glance endpoint not found for region %s", iface, region)
}

// checked vets a URL with the import filter, if any.
func (gd *glanceDownloader) checked(rawURL string) error {
	if gd.checkURL == nil {
		return nil
	}
	if err := gd.checkURL(rawURL); err != nil {
		return imaged.Errorf(imaged.EINVALID, "Processed URI for glance-download does not pass filtering: %s (%s)", rawURL, imaged.ErrorMessage(err))
	}
	return nil
}

// image reads the remote image's record; it must be active with a size.
func (gd *glanceDownloader) image(ctx context.Context, token, endpoint, id string) (*remoteImage, error) {
	u := endpoint + "/v2/images/" + url.PathEscape(id)
	if err := gd.checked(u); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, gd.timeout)
	defer cancel()
	resp, err := gd.call(cctx, token, u, "remote image "+id)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var fields map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&fields); err != nil {
		return nil, imaged.Errorf(imaged.EUNAVAILABLE, "glance-download: the remote image %s's record is unreadable.", id)
	}
	str := func(k string) string { v, _ := fields[k].(string); return v }
	r := &remoteImage{fields: fields, status: str("status"), diskFormat: str("disk_format"),
		containerFormat: str("container_format"), checksum: str("checksum"), hashAlgo: str("os_hash_algo"),
		hashValue: str("os_hash_value")}
	if r.status != string(imaged.StatusActive) {
		return nil, imaged.Errorf(imaged.ECONFLICT, "Source image status should be active instead of %s", r.status)
	}
	switch n := fields["size"].(type) {
	case float64:
		r.size = int64(n)
		if float64(r.size) != n || r.size < 0 {
			r.size = -1
		}
	case string:
		if r.size, err = strconv.ParseInt(n, 10, 64); err != nil {
			r.size = -1
		}
	default:
		r.size = -1
	}
	if r.size < 0 {
		return nil, imaged.Errorf(imaged.EINVALID, "Size attribute of remote image %s could not be determined.", id)
	}
	if r.diskFormat == "" || r.containerFormat == "" {
		return nil, imaged.Errorf(imaged.EINVALID, "The remote image %s has no disk_format or container_format.", id)
	}
	return r, nil
}

// data opens the remote image's bytes; the body is closed by the caller.
func (gd *glanceDownloader) data(ctx context.Context, token, endpoint, id string, size int64) (io.ReadCloser, error) {
	u := endpoint + "/v2/images/" + url.PathEscape(id) + "/file"
	if err := gd.checked(u); err != nil {
		return nil, err
	}
	// The transfer may take long, but not stall: it is cancelled when no
	// byte arrives for the timeout.
	rctx, cancel := context.WithCancel(ctx)
	resp, err := gd.call(rctx, token, u, "data of remote image "+id)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != size {
		resp.Body.Close()
		cancel()
		return nil, imaged.Errorf(imaged.ECONFLICT, "The remote image %s's data is %d bytes long, but its size is %d.", id, resp.ContentLength, size)
	}
	b := &stallGuard{rc: resp.Body, cancel: cancel, idle: gd.timeout, parent: ctx}
	b.timer = time.AfterFunc(gd.timeout, func() { b.stalled.Store(true); cancel() })
	return b, nil
}

// stallGuard cancels a download that sends nothing for idle.
type stallGuard struct {
	rc      io.ReadCloser
	cancel  context.CancelFunc
	idle    time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	parent  context.Context
}

func (b *stallGuard) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if b.stalled.Load() && b.parent.Err() == nil {
			return n, imaged.Errorf(imaged.EUNAVAILABLE, "glance-download: the remote region sent nothing for %s.", b.idle)
		}
	}
	return n, err
}

func (b *stallGuard) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}
