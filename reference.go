package imaged

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Container image references follow Backend.AI's parse_image_str (spec
// §2.1) with the OCI distribution grammar for the parts. Deliberate
// deviations from upstream, all in the direction of rejecting what no
// registry could serve:
//   - path components must match the OCI component grammar (lowercase
//     alnum with ".", "_", "__" or "-" separators), so "::1/python:3.6"
//     (a bare IPv6 that upstream keeps as a Docker Hub path) is invalid;
//   - a first segment that is not recognised goes to DefaultRegistry;
//     upstream's "hint prepended" behaviour is obtained by setting
//     DefaultRegistry to the hint (then a slash-less name goes there too);
//   - digests ("@sha256:<64 hex>", "@sha512:<128 hex>") are accepted.

// DockerHubRegistry is the canonical registry host of Docker Hub.
const DockerHubRegistry = "index.docker.io"

const (
	maxReferenceNameLen = 255 // registry + "/" + path, as distribution limits names
	maxTagLen           = 128
	maxInputLen         = 1024 // anything longer cannot be valid; bounds the work done on junk
)

var (
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	digestRE    = regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
	domainRE    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// ParseReference parses a container image reference such as "python:3.9",
// "lablup/python:3.9-ubuntu20.04", "127.0.0.1:5000/bai/python:3.9" or
// "cr.example.com/bai/python@sha256:...". The returned Reference has
// Project "" and Name = the whole path inside the registry (use InProject
// to split a project off). Errors are EINVALID.
func ParseReference(s string, opts ReferenceOptions) (Reference, error) {
	if s == "" {
		return Reference{}, Errorf(EINVALID, "invalid image name \"\": empty reference")
	}
	if len(s) > maxInputLen {
		return Reference{}, Errorf(EINVALID, "invalid image name %s: longer than %d characters", quoteShort(s), maxInputLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return Reference{}, Errorf(EINVALID, "invalid image name %s: contains whitespace, a control or a non-ASCII character at offset %d", quoteShort(s), i)
		}
	}
	if strings.Contains(s, "://") || strings.HasPrefix(s, "//") {
		return Reference{}, Errorf(EINVALID, "invalid image name %s: a reference has no URL scheme or leading \"//\"", quoteShort(s))
	}

	rest, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest && !digestRE.MatchString(digest) {
		return Reference{}, Errorf(EINVALID, "invalid image digest %s: want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>", quoteShort(digest))
	}

	var registry, path string
	if first, after, ok := strings.Cut(rest, "/"); !ok {
		registry, path = defaultRegistry(opts), rest
	} else if host, known := recognizeRegistry(first, opts.KnownRegistries); known {
		registry, path = host, after
	} else {
		registry, path = defaultRegistry(opts), rest
	}
	if registry == "docker.io" {
		registry = DockerHubRegistry
	}

	// The tag follows the last ':' of the path (spec §2.1 step 4): a
	// colon in an earlier segment therefore makes an invalid tag, which is
	// how "myregistry.org:999/python" without a hint is refused.
	name, tag := path, ""
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		name, tag = path[:i], path[i+1:]
		if tag == "" {
			return Reference{}, Errorf(EINVALID, "invalid image tag in %s: empty tag after ':'", quoteShort(s))
		}
		if len(tag) > maxTagLen {
			return Reference{}, Errorf(EINVALID, "invalid image tag %s: longer than %d characters", quoteShort(tag), maxTagLen)
		}
		if !tagRE.MatchString(tag) {
			return Reference{}, Errorf(EINVALID, "invalid image tag %s: must be letters, digits, '.', '_' or '-', starting and ending with a letter or digit", quoteShort(tag))
		}
	} else if !hasDigest {
		tag = "latest"
	}
	if name == "" {
		return Reference{}, Errorf(EINVALID, "invalid image name %s: empty repository name", quoteShort(s))
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" {
			return Reference{}, Errorf(EINVALID, "invalid image name %s: empty path component", quoteShort(s))
		}
		if !componentRE.MatchString(c) {
			return Reference{}, Errorf(EINVALID, "invalid image name %s: path component %s must be lowercase letters and digits separated by '.', '_', '__' or '-'", quoteShort(s), quoteShort(c))
		}
	}
	if isDockerHub(registry) && !strings.Contains(name, "/") {
		ns := opts.DefaultNamespace
		if ns == "" {
			ns = "library"
		}
		name = ns + "/" + name
	}
	if n := len(registry) + 1 + len(name); n > maxReferenceNameLen {
		return Reference{}, Errorf(EINVALID, "invalid image name %s: registry and path are %d characters, more than %d", quoteShort(s), n, maxReferenceNameLen)
	}
	return Reference{Registry: registry, Name: name, Tag: tag, Digest: digest}, nil
}

func defaultRegistry(opts ReferenceOptions) string {
	if opts.DefaultRegistry != "" {
		return opts.DefaultRegistry
	}
	return DockerHubRegistry
}

func isDockerHub(registry string) bool {
	r := strings.ToLower(registry)
	return r == "docker.io" || strings.HasSuffix(r, ".docker.io")
}

// recognizeRegistry says whether the first path segment names a registry:
// a known host (case-insensitively; the known spelling is returned), any
// plausible host when "*" is known, an IP address (IPv4 with optional
// port, bracketed IPv6 with optional port) or localhost[:port].
func recognizeRegistry(first string, known []string) (string, bool) {
	for _, k := range known {
		if k != "*" && strings.EqualFold(k, first) {
			return k, true
		}
	}
	if isIPHost(first) {
		return first, true
	}
	host, port, hasPort := splitHostPort(first)
	if hasPort && !validPort(port) {
		return "", false
	}
	if strings.EqualFold(host, "localhost") {
		return first, true
	}
	for _, k := range known {
		if k == "*" && domainRE.MatchString(host) {
			return first, true
		}
	}
	return "", false
}

// splitHostPort splits "host:port" at the last colon outside brackets.
func splitHostPort(s string) (host, port string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.Contains(s[i:], "]") {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func isIPHost(s string) bool {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if tail := s[end+1:]; tail != "" && (tail[0] != ':' || !validPort(tail[1:])) {
			return false
		}
		a, err := netip.ParseAddr(s[1:end])
		return err == nil && a.Is6() && a.Zone() == ""
	}
	host, port, hasPort := splitHostPort(s)
	if hasPort && !validPort(port) {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is4()
}

// quoteShort quotes user input for an error message, cut to a readable
// length.
func quoteShort(s string) string {
	const n = 80
	if len(s) > n {
		return strconv.Quote(s[:n]) + "..."
	}
	return strconv.Quote(s)
}

// String returns the canonical form: the non-empty parts of registry,
// project and name joined by "/", then ":tag" and "@digest" when set.
func (r Reference) String() string {
	var b strings.Builder
	for _, p := range []string{r.Registry, r.Project, r.Name} {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	if r.Tag != "" {
		b.WriteString(":" + r.Tag)
	}
	if r.Digest != "" {
		b.WriteString("@" + r.Digest)
	}
	return b.String()
}

// Path returns the repository path inside the registry (project/name,
// empty parts left out).
func (r Reference) Path() string {
	switch {
	case r.Project == "":
		return r.Name
	case r.Name == "":
		return r.Project
	}
	return r.Project + "/" + r.Name
}

// Short returns path:tag (spec §2.1 "short"), with "@digest" appended
// when the reference has one so that a digest reference stays precise.
func (r Reference) Short() string {
	s := r.Path()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// InProject splits the path into project and name as from_image_str does
// (spec §2.2): project "" keeps the whole path as the name; a path equal
// to the project makes the project the image (name "", GitLab style); a
// path under project+"/" keeps the remainder as the name. Anything else
// is EINVALID (project mismatch). The canonical String() is unchanged.
func (r Reference) InProject(project string) (Reference, error) {
	path := r.Path()
	out := r
	switch {
	case project == "":
		out.Project, out.Name = "", path
	case path == project:
		out.Project, out.Name = project, ""
	case strings.HasPrefix(path, project+"/"):
		out.Project, out.Name = project, path[len(project)+1:]
	default:
		return Reference{}, Errorf(EINVALID, "project mismatch: image path %s is not in project %s", quoteShort(path), quoteShort(project))
	}
	return out, nil
}

// tagElementRE is upstream's PLATFORM_TAG_RE: a key of letters or
// underscores, then an optional version of digits[.digits...] and
// lowercase alphanumerics.
var tagElementRE = regexp.MustCompile(`^([A-Za-z_]+)(\d+(?:\.\d+)*[a-z0-9]*)?$`)

// ParseTagSet splits a tag into its version and platform tags (spec
// §2.3): "3.6-cuda9-ubuntu16.04" is version "3.6" with {cuda: "9",
// ubuntu: "16.04"}. A platform element starting with a digit, an empty
// element or a duplicate key is EINVALID. platform is never nil.
func ParseTagSet(tag string) (version string, platform map[string]string, err error) {
	parts := strings.Split(tag, "-")
	platform = make(map[string]string, len(parts)-1)
	for _, p := range parts[1:] {
		m := tagElementRE.FindStringSubmatch(p)
		if m == nil {
			return "", nil, Errorf(EINVALID, "invalid image tag %s: platform tag %s must be letters or '_' optionally followed by a version starting with a digit", quoteShort(tag), quoteShort(p))
		}
		if _, dup := platform[m[1]]; dup {
			return "", nil, Errorf(EINVALID, "invalid image tag %s: duplicate platform tag %s", quoteShort(tag), quoteShort(m[1]))
		}
		platform[m[1]] = m[2]
	}
	return parts[0], platform, nil
}
