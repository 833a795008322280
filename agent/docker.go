package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/imaged/imaged"
)

// dockerAPI is the Engine API version the runtime speaks; Docker and
// podman's compat service both answer it.
const dockerAPI = "/v1.41"

// DockerRuntime talks the Docker Engine API (images/json, images/create,
// DELETE images/{name}) to dockerd or podman's compatible service. Docker
// holds one image per tag, so pulling another architecture of a tag
// replaces the previous one (podman leaves it dangling, untagged).
type DockerRuntime struct {
	client   *http.Client
	base     string // "http://docker" or "http://127.0.0.1:port"
	nodeArch string
}

// NewDockerRuntime connects to host: "unix:///path/docker.sock" or
// "tcp://127.0.0.1:2375" (plain HTTP).
func NewDockerRuntime(host string) (*DockerRuntime, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "bad docker host %q: %v", host, err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	base := ""
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "docker host %q names no socket", host)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case "tcp", "http":
		if u.Host == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "docker host %q names no address", host)
		}
		base = "http://" + u.Host
	default:
		return nil, imaged.Errorf(imaged.EINVALID, "docker host %q: want unix:///path or tcp://host:port", host)
	}
	return &DockerRuntime{client: &http.Client{Transport: tr}, base: base, nodeArch: runtime.GOARCH}, nil
}

// Name implements Runtime.
func (d *DockerRuntime) Name() string { return imaged.AgentRuntimeDocker }

// dockerError is an error answer of the engine.
type dockerError struct {
	status int
	msg    string
}

func (e *dockerError) Error() string {
	return fmt.Sprintf("docker engine answered %d: %s", e.status, e.msg)
}

// do sends a request and decodes a JSON answer into out (nil = drain).
func (d *DockerRuntime) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := d.base + dockerAPI + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return imaged.Errorf(imaged.EINVALID, "bad image name in %s", path)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return imaged.Errorf(imaged.EUNAVAILABLE, "docker engine unreachable: %v", err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 64<<20)
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(body, 4096))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return &dockerError{status: resp.StatusCode, msg: msg}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, body)
		return err
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return imaged.Errorf(imaged.EUNAVAILABLE, "docker engine sent bad JSON for %s: %v", path, err)
	}
	return nil
}

type dockerInspect struct {
	ID           string   `json:"Id"`
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	Architecture string   `json:"Architecture"`
	Size         int64    `json:"Size"`
}

func (d *DockerRuntime) inspect(ctx context.Context, ref string) (*dockerInspect, error) {
	var in dockerInspect
	if err := d.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// repoDigest returns the manifest digest of the RepoDigests entry of
// ref's repository ("" if none).
func repoDigest(in *dockerInspect, ref string) string {
	repo := ref
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	for _, rd := range in.RepoDigests {
		name, dg, ok := strings.Cut(rd, "@")
		if ok && CanonicalRef(name+":x") == CanonicalRef(repo+":x") {
			return dg
		}
	}
	return ""
}

// List implements Runtime: one entry per tag of every image (dangling
// images, which have no tag, are not listed).
func (d *DockerRuntime) List(ctx context.Context) ([]imaged.AgentImage, error) {
	var sums []struct {
		ID       string   `json:"Id"`
		RepoTags []string `json:"RepoTags"`
	}
	if err := d.do(ctx, http.MethodGet, "/images/json", nil, &sums); err != nil {
		return nil, classifyDocker(err, "list images")
	}
	out := []imaged.AgentImage{}
	for _, s := range sums {
		var tags []string
		for _, t := range s.RepoTags {
			if t != "" && t != "<none>:<none>" {
				tags = append(tags, t)
			}
		}
		if len(tags) == 0 {
			continue
		}
		in, err := d.inspect(ctx, s.ID)
		if err != nil {
			if de, ok := err.(*dockerError); ok && de.status == http.StatusNotFound {
				continue // removed since the listing
			}
			return nil, classifyDocker(err, "inspect "+s.ID)
		}
		for _, t := range tags {
			ref := CanonicalRef(t)
			out = append(out, imaged.AgentImage{Reference: ref, Architecture: imaged.NormalizeArch(in.Architecture),
				Digest: repoDigest(in, t), Size: in.Size})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Reference != out[j].Reference {
			return out[i].Reference < out[j].Reference
		}
		return out[i].Architecture < out[j].Architecture
	})
	return out, nil
}

// engineRef is the name the engine is given for a canonical reference:
// Docker Hub images without index.docker.io, which podman does not map.
func engineRef(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "index.docker.io/"); ok {
		return "docker.io/" + rest
	}
	return ref
}

// Pull implements Runtime. The engine answers 200 with a progress stream
// even when the pull fails (podman always does): the stream is read to
// its end and an "error" object in it is the outcome.
func (d *DockerRuntime) Pull(ctx context.Context, ref, arch string) (imaged.AgentImage, error) {
	arch = archOrDefault(arch, d.nodeArch)
	er := engineRef(ref)
	from, tag := er, ""
	if name, dg, ok := strings.Cut(er, "@"); ok {
		from, tag = name, dg
	} else if i := strings.LastIndexByte(er, ':'); i > strings.LastIndexByte(er, '/') {
		from, tag = er[:i], er[i+1:]
	}
	q := url.Values{"fromImage": {from}, "platform": {"linux/" + imaged.DockerArch(arch)}}
	if tag != "" {
		q.Set("tag", tag)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+dockerAPI+"/images/create?"+q.Encode(), nil)
	if err != nil {
		return imaged.AgentImage{}, imaged.Errorf(imaged.EINVALID, "bad image reference %q", ref)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return imaged.AgentImage{}, ctx.Err()
		}
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "docker engine unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return imaged.AgentImage{}, classifyDocker(&dockerError{status: resp.StatusCode, msg: strings.TrimSpace(string(raw))}, "pull "+ref)
	}
	if msg, err := pullStreamError(resp.Body); err != nil {
		if ctx.Err() != nil {
			return imaged.AgentImage{}, ctx.Err()
		}
		return imaged.AgentImage{}, imaged.Errorf(imaged.EUNAVAILABLE, "pull of %s: bad progress stream: %v", ref, err)
	} else if msg != "" {
		code := imaged.EUNAVAILABLE
		if l := strings.ToLower(msg); strings.Contains(l, "not found") || strings.Contains(l, "manifest unknown") || strings.Contains(l, "no image found") {
			code = imaged.ENOTFOUND
		}
		return imaged.AgentImage{}, imaged.Errorf(code, "pull of %s failed: %s", ref, msg)
	}
	in, err := d.inspect(ctx, er)
	if err != nil {
		return imaged.AgentImage{}, classifyDocker(err, "inspect "+ref)
	}
	if got := imaged.NormalizeArch(in.Architecture); got != "" && got != arch {
		return imaged.AgentImage{}, imaged.Errorf(imaged.ENOTFOUND, "image %s has no %s variant (it is %s)", ref, arch, got)
	}
	return imaged.AgentImage{Reference: ref, Architecture: arch, Digest: repoDigest(in, er), Size: in.Size}, nil
}

// pullStreamError reads a pull's progress stream (concatenated JSON
// objects) and returns the message of its error object, if any.
func pullStreamError(r io.Reader) (string, error) {
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(r, 256<<20)))
	msg := ""
	for {
		var ev struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&ev); err == io.EOF {
			return msg, nil
		} else if err != nil {
			return "", err
		}
		if ev.ErrorDetail.Message != "" {
			msg = ev.ErrorDetail.Message
		} else if ev.Error != "" {
			msg = ev.Error
		}
	}
}

// Remove implements Runtime. The image is inspected first: an absent
// image, or one of another architecture under that tag, is ENOTFOUND; its
// size is what the removal frees when the engine reports a deleted layer
// set ("Deleted"), nothing when it only untagged it.
func (d *DockerRuntime) Remove(ctx context.Context, ref, arch string, force, noprune bool) (int64, error) {
	arch = archOrDefault(arch, d.nodeArch)
	er := engineRef(ref)
	in, err := d.inspect(ctx, er)
	if err != nil {
		if de, ok := err.(*dockerError); ok && de.status == http.StatusNotFound {
			return 0, notPresent(ref, arch)
		}
		return 0, classifyDocker(err, "inspect "+ref)
	}
	if got := imaged.NormalizeArch(in.Architecture); got != "" && got != arch {
		return 0, notPresent(ref, arch)
	}
	var answer []struct {
		Deleted  string `json:"Deleted"`
		Untagged string `json:"Untagged"`
	}
	q := url.Values{"force": {strconv.FormatBool(force)}, "noprune": {strconv.FormatBool(noprune)}}
	if err := d.do(ctx, http.MethodDelete, "/images/"+er, q, &answer); err != nil {
		if de, ok := err.(*dockerError); ok && de.status == http.StatusNotFound {
			return 0, notPresent(ref, arch)
		}
		return 0, classifyDocker(err, "remove "+ref)
	}
	for _, a := range answer {
		if a.Deleted != "" {
			return in.Size, nil
		}
	}
	return 0, nil
}

// classifyDocker maps an engine error to an imaged error.
func classifyDocker(err error, what string) error {
	de, ok := err.(*dockerError)
	if !ok {
		return err
	}
	switch de.status {
	case http.StatusNotFound:
		return imaged.Errorf(imaged.ENOTFOUND, "%s: %s", what, de.msg)
	case http.StatusConflict:
		return imaged.Errorf(imaged.ECONFLICT, "%s: %s", what, de.msg)
	case http.StatusBadRequest:
		return imaged.Errorf(imaged.EINVALID, "%s: %s", what, de.msg)
	}
	return imaged.Errorf(imaged.EUNAVAILABLE, "%s: %s", what, de.msg)
}
