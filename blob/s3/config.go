package s3

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/imaged/imaged/blob"
)

// Part sizes. S3 refuses parts under 5 MiB except the last, and an upload
// has at most 10000 parts. A writer holds at most two parts in memory, so
// the part size is what an upload costs in memory: it starts at the
// configured size (DefaultPartSize: 8 MiB, 16 MiB of buffers) and doubles
// every partsPerSize parts, so that a blob may still reach terabytes
// (8 MiB parts: 8 GiB in the first 1000 parts, 16 GiB in the next 1000,
// ...) while the common image, a few GiB, never costs more than 16 MiB.
const (
	MinPartSize     = 5 << 20
	MaxPartSize     = 5 << 30
	DefaultPartSize = 8 << 20
	maxParts        = 10000
	partsPerSize    = 1000
)

// DefaultRegion is the region requests are signed for when the URL names
// none; most S3-compatible servers accept any region, or this one.
const DefaultRegion = "us-east-1"

// The environment variables that hold credentials when the URL has none:
// imaged's own first, then the AWS tools' conventional pair.
const (
	EnvAccessKey    = "IMAGED_S3_ACCESS_KEY"
	EnvSecretKey    = "IMAGED_S3_SECRET_KEY"
	EnvAWSAccessKey = "AWS_ACCESS_KEY_ID"
	EnvAWSSecretKey = "AWS_SECRET_ACCESS_KEY"
)

// Config is where a Store keeps its blobs and how it signs requests. Its
// String, GoString and LogValue hide SecretKey, so a Config may be logged
// or printed whole; never format SecretKey on its own.
type Config struct {
	// Endpoint is the server's base URL, http(s)://host[:port].
	Endpoint string
	// Bucket holds the blobs; Prefix ("" or segments ending in "/")
	// is prepended to every object name, so that several stores (or
	// other data) can share a bucket.
	Bucket, Prefix string
	Region         string
	AccessKey      string
	SecretKey      string
	// PartSize is the size of multipart upload parts (0: DefaultPartSize).
	PartSize int64
}

// redacted stands for the secret key wherever a Config is shown.
const redacted = "xxxxx"

// String returns the Config as an s3:// URL with the secret key replaced.
func (c Config) String() string { return c.url(redacted) }

// GoString keeps %#v from printing the secret key.
func (c Config) GoString() string { return "s3.Config(" + c.String() + ")" }

// LogValue implements slog.LogValuer: the URL form, secret hidden.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// url renders the Config in ParseURL's form with secret as the secret key.
func (c Config) url(secret string) string {
	u := url.URL{Scheme: "s3", Path: "/" + c.Bucket + "/" + c.Prefix}
	host, insecure := strings.CutPrefix(c.Endpoint, "http://")
	if !insecure {
		host = strings.TrimPrefix(host, "https://")
	}
	u.Host = host
	if c.AccessKey != "" || c.SecretKey != "" {
		u.User = url.UserPassword(c.AccessKey, secret)
	}
	q := url.Values{}
	if c.Region != "" && c.Region != DefaultRegion {
		q.Set("region", c.Region)
	}
	if insecure {
		q.Set("insecure", "true")
	}
	if c.PartSize != 0 {
		q.Set("part_size", strconv.FormatInt(c.PartSize, 10))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ParseURL parses a store URL:
//
//	s3://ACCESS:SECRET@host[:port]/bucket[/prefix...][?region=R&insecure=true&part_size=N]
//
// Without credentials in the URL it takes them from getenv (os.Getenv in
// production): IMAGED_S3_ACCESS_KEY and IMAGED_S3_SECRET_KEY, else
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. insecure=true speaks plain
// http (a server on a trusted network); the default is https. part_size
// is in bytes, or with a KiB, MiB or GiB suffix. Percent-encode reserved
// characters of the keys ("/" is %2F).
//
// Errors never quote the URL, which may hold the secret key.
func ParseURL(raw string, getenv func(string) string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the input (and so the secret): drop them.
		return Config{}, errors.New("invalid S3 store URL: not a valid URL (check that reserved characters in the credentials are percent-encoded)")
	}
	if u.Scheme != "s3" || u.Opaque != "" {
		return Config{}, errors.New("invalid S3 store URL: want s3://[ACCESS:SECRET@]host[:port]/bucket[/prefix]")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return Config{}, errors.New("invalid S3 store URL: unexpected #fragment")
	}
	var c Config
	if u.User != nil {
		secret, ok := u.User.Password()
		c.AccessKey, c.SecretKey = u.User.Username(), secret
		if !ok || c.AccessKey == "" || c.SecretKey == "" {
			return Config{}, errors.New("invalid S3 store URL: credentials must be ACCESS:SECRET@, both non-empty")
		}
	} else {
		if getenv == nil {
			return Config{}, errors.New("invalid S3 store URL: no credentials in the URL and no environment to read them from")
		}
		for _, pair := range [][2]string{{EnvAccessKey, EnvSecretKey}, {EnvAWSAccessKey, EnvAWSSecretKey}} {
			if a, s := getenv(pair[0]), getenv(pair[1]); a != "" || s != "" {
				if a == "" || s == "" {
					return Config{}, fmt.Errorf("invalid S3 store credentials: set both %s and %s", pair[0], pair[1])
				}
				c.AccessKey, c.SecretKey = a, s
				break
			}
		}
		if c.AccessKey == "" {
			return Config{}, fmt.Errorf("invalid S3 store URL: no credentials: put ACCESS:SECRET@ in the URL or set %s and %s", EnvAccessKey, EnvSecretKey)
		}
	}
	if err := validHost(u.Host); err != nil {
		return Config{}, err
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if err := validBucket(bucket); err != nil {
		return Config{}, err
	}
	c.Bucket = bucket
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
		for seg := range strings.SplitSeq(prefix, "/") {
			if !blob.ValidSegment(seg) {
				return Config{}, fmt.Errorf("invalid S3 store URL: the key prefix %q must be slash-separated segments of [A-Za-z0-9._-]", prefix)
			}
		}
		c.Prefix = prefix + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, errors.New("invalid S3 store URL: malformed query")
	}
	c.Region, c.Endpoint = DefaultRegion, "https://"+u.Host
	for name, vs := range q {
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("invalid S3 store URL: %q given %d times", name, len(vs))
		}
		v := vs[0]
		switch name {
		case "region":
			if !validRegion(v) {
				return Config{}, fmt.Errorf("invalid S3 store URL: bad region %q", v)
			}
			c.Region = v
		case "insecure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("invalid S3 store URL: insecure=%q, want true or false", v)
			}
			if b {
				c.Endpoint = "http://" + u.Host
			}
		case "part_size":
			n, err := parseSize(v)
			if err != nil {
				return Config{}, err
			}
			c.PartSize = n
		default:
			return Config{}, fmt.Errorf("invalid S3 store URL: unknown parameter %q (want region, insecure or part_size)", name)
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// validate checks a Config built by hand as ParseURL checks a URL.
func (c Config) validate() error {
	host, ok := strings.CutPrefix(c.Endpoint, "https://")
	if !ok {
		host, ok = strings.CutPrefix(c.Endpoint, "http://")
	}
	if !ok {
		return errors.New("invalid S3 store: the endpoint must be an http:// or https:// URL")
	}
	if err := validHost(host); err != nil {
		return err
	}
	if err := validBucket(c.Bucket); err != nil {
		return err
	}
	if c.Prefix != "" && (!strings.HasSuffix(c.Prefix, "/") || blob.ValidKey(strings.TrimSuffix(c.Prefix, "/")) != nil) {
		return fmt.Errorf("invalid S3 store: the key prefix %q must be segments of [A-Za-z0-9._-] ending in /", c.Prefix)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("invalid S3 store: credentials are missing")
	}
	if !validRegion(c.Region) {
		return fmt.Errorf("invalid S3 store: bad region %q", c.Region)
	}
	if c.PartSize != 0 && (c.PartSize < MinPartSize || c.PartSize > MaxPartSize) {
		return fmt.Errorf("invalid S3 store: part size %d is not between %d (5 MiB) and %d (5 GiB)", c.PartSize, MinPartSize, MaxPartSize)
	}
	return nil
}

func validHost(host string) error {
	// url.Parse has checked the port's digits and the IPv6 brackets;
	// refuse what would change the meaning of the endpoint URL.
	if host == "" || strings.ContainsAny(host, "/?#@ \\") {
		return errors.New("invalid S3 store URL: missing or bad host")
	}
	h := host
	if hh, port, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("invalid S3 store URL: bad port")
		}
		h = hh
	} else if b, ok := strings.CutPrefix(host, "["); ok {
		h = strings.TrimSuffix(b, "]")
	} else if strings.Contains(host, ":") {
		return errors.New("invalid S3 store URL: bad host or port")
	}
	if h == "" {
		return errors.New("invalid S3 store URL: the host is missing")
	}
	return nil
}

// validBucket applies S3's bucket naming rules: 3 to 63 characters of
// [a-z0-9.-], starting and ending with a letter or digit.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("invalid S3 store URL: the bucket name (first path segment) must have 3 to 63 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return fmt.Errorf("invalid S3 store URL: bad bucket name %q", b)
		}
	}
	return nil
}

func validRegion(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseSize parses a part size: bytes, or a number with KiB, MiB or GiB.
func parseSize(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > MaxPartSize/mult {
		return 0, fmt.Errorf("invalid S3 store URL: part_size=%q, want bytes or a number with KiB, MiB or GiB, at most 5GiB", v)
	}
	return n * mult, nil
}
