package s3

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// envOf is a getenv over a map.
func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseURL(t *testing.T) {
	t.Parallel()
	base := Config{Endpoint: "https://s3.example.test", Bucket: "images", Region: DefaultRegion, AccessKey: "AK", SecretKey: "SK"}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name    string
		raw     string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{name: "minimal", raw: "s3://AK:SK@s3.example.test/images", want: base},
		{name: "trailing slash", raw: "s3://AK:SK@s3.example.test/images/", want: base},
		{name: "port, prefix, region, insecure", raw: "s3://AK:SK@127.0.0.1:7070/images/imaged/prod/?region=eu-west-1&insecure=true",
			want: with(func(c *Config) {
				c.Endpoint, c.Prefix, c.Region = "http://127.0.0.1:7070", "imaged/prod/", "eu-west-1"
			})},
		{name: "insecure=false", raw: "s3://AK:SK@s3.example.test/images?insecure=false", want: base},
		{name: "part size", raw: "s3://AK:SK@s3.example.test/images?part_size=64MiB", want: with(func(c *Config) { c.PartSize = 64 << 20 })},
		{name: "part size in bytes", raw: "s3://AK:SK@s3.example.test/images?part_size=5242880", want: with(func(c *Config) { c.PartSize = 5 << 20 })},
		{name: "IPv6", raw: "s3://AK:SK@[::1]:9000/images?insecure=1", want: with(func(c *Config) { c.Endpoint = "http://[::1]:9000" })},
		{name: "escaped secret", raw: "s3://AK:s%2Fe%40c%3Aret@s3.example.test/images", want: with(func(c *Config) { c.SecretKey = "s/e@c:ret" })},
		{name: "imaged env", raw: "s3://s3.example.test/images", env: map[string]string{EnvAccessKey: "AK", EnvSecretKey: "SK", EnvAWSAccessKey: "x", EnvAWSSecretKey: "y"}, want: base},
		{name: "aws env", raw: "s3://s3.example.test/images", env: map[string]string{EnvAWSAccessKey: "AK", EnvAWSSecretKey: "SK"}, want: base},
		{name: "URL wins over env", raw: "s3://AK:SK@s3.example.test/images", env: map[string]string{EnvAccessKey: "x", EnvSecretKey: "y"}, want: base},

		{name: "no credentials", raw: "s3://s3.example.test/images", wantErr: "no credentials"},
		{name: "half env", raw: "s3://s3.example.test/images", env: map[string]string{EnvAccessKey: "AK"}, wantErr: "set both"},
		{name: "no password", raw: "s3://AK@s3.example.test/images", wantErr: "ACCESS:SECRET"},
		{name: "empty password", raw: "s3://AK:@s3.example.test/images", wantErr: "ACCESS:SECRET"},
		{name: "other scheme", raw: "https://AK:SK@s3.example.test/images", wantErr: "want s3://"},
		{name: "opaque", raw: "s3:images", wantErr: "want s3://"},
		{name: "no host", raw: "s3://AK:SK@/images", wantErr: "host"},
		{name: "bad port", raw: "s3://AK:SK@host:99999/images", wantErr: "port"},
		{name: "empty port", raw: "s3://AK:SK@host:/images", wantErr: "port"},
		{name: "no bucket", raw: "s3://AK:SK@host", wantErr: "bucket"},
		{name: "short bucket", raw: "s3://AK:SK@host/ab", wantErr: "bucket"},
		{name: "upper-case bucket", raw: "s3://AK:SK@host/Images", wantErr: "bucket"},
		{name: "bucket ends in dash", raw: "s3://AK:SK@host/images-", wantErr: "bucket"},
		{name: "bad prefix", raw: "s3://AK:SK@host/images/a//b", wantErr: "prefix"},
		{name: "dot-dot prefix", raw: "s3://AK:SK@host/images/../x", wantErr: "prefix"},
		{name: "unknown parameter", raw: "s3://AK:SK@host/images?regoin=x", wantErr: "unknown parameter"},
		{name: "repeated parameter", raw: "s3://AK:SK@host/images?region=a&region=b", wantErr: "2 times"},
		{name: "bad insecure", raw: "s3://AK:SK@host/images?insecure=yes", wantErr: "insecure"},
		{name: "bad region", raw: "s3://AK:SK@host/images?region=a%20b", wantErr: "region"},
		{name: "part size too small", raw: "s3://AK:SK@host/images?part_size=1MiB", wantErr: "part size"},
		{name: "part size too big", raw: "s3://AK:SK@host/images?part_size=6GiB", wantErr: "part_size"},
		{name: "part size junk", raw: "s3://AK:SK@host/images?part_size=big", wantErr: "part_size"},
		{name: "fragment", raw: "s3://AK:SK@host/images#x", wantErr: "fragment"},
		{name: "bad escape", raw: "s3://AK:S%zzK@host/images", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.raw, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) = %v, %v; want an error containing %q", tt.raw, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Fatalf("ParseURL(%q) =\n %#v\nwant\n %#v\n(secrets %q, %q)", tt.raw, got, tt.want, got.SecretKey, tt.want.SecretKey)
			}
		})
	}
}

// TestSecretHidden: however a Config is printed or logged, and whatever
// error a URL with the secret gives, the secret does not show.
func TestSecretHidden(t *testing.T) {
	t.Parallel()
	const secret = "Very-Secret-Key-42"
	c, err := ParseURL("s3://AK:"+secret+"@127.0.0.1:1/images/p?insecure=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("store", "config", c, "ptr", &c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("store", "config", c)
	shown := []string{c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintf("%+v %#v %s %q %v", c, c, c, c, &c),
		fmt.Sprintf("%+v", struct{ C *Config }{&c}), logged.String()}
	for _, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("secret shown in %q", s)
		}
	}
	if !strings.Contains(c.String(), "AK:xxxxx@127.0.0.1:1/images/p/") {
		t.Errorf("String() = %q, want the URL with the secret redacted", c.String())
	}
	for _, raw := range []string{
		"s3://AK:" + secret + "%zz@host/images",
		"s3://AK:" + secret + "@host:bad/images",
		"s3://AK:" + secret + "@host/IMAGES",
		"s3://AK:" + secret + "@host/images?x=1",
		"s3://AK:" + secret + "@/images",
		"http://AK:" + secret + "@host/images",
		"s3://AK:" + secret + "@host/images#frag",
		"s3://AK:" + secret + "@host/images?part_size=1",
		"s3://AK:" + secret + "@ho st/images",
	} {
		if _, err := ParseURL(raw, nil); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(...) error %v: want an error without the secret", err)
		}
	}
}

// FuzzParseURL: ParseURL never panics, never puts the secret in an error
// or in String, and what it accepts renders back to a URL that parses to
// the same Config.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://AK:SK@s3.example.test/images",
		"s3://AK:SK@127.0.0.1:7070/images/imaged/prod/?region=eu-west-1&insecure=true&part_size=8MiB",
		"s3://s3.example.test/images",
		"s3://AK:s%2Fe%40c@[::1]:9000/bucket.name/a/b",
		"s3://AK:SK@host/images?part_size=5242880",
		"s3://AK:SK@host:0/x",
		"s3:opaque",
		"",
	} {
		f.Add(s, "Secret-Of-Fuzz-0")
	}
	f.Fuzz(func(t *testing.T, raw, secret string) {
		env := envOf(map[string]string{EnvAccessKey: "envAK", EnvSecretKey: secret})
		c, err := ParseURL(raw, env)
		// The same URL with the secret as its password: the escaped
		// secret holds no '/', '?' or '#', so it stays in the authority
		// whatever raw's authority holds.
		escaped := strings.NewReplacer("%", "%25", "@", "%40", "/", "%2F", ":", "%3A", "?", "%3F", "#", "%23").Replace(secret)
		withSecret := "s3://AK:" + escaped + "@" + strings.TrimPrefix(raw, "s3://")
		c2, err2 := ParseURL(withSecret, env)
		if len(secret) >= 8 && !strings.Contains(raw, secret) {
			for _, e := range []error{err, err2} {
				if e != nil && strings.Contains(e.Error(), secret) {
					t.Fatalf("error %q shows the secret", e)
				}
			}
			for _, ok := range []struct {
				c   Config
				err error
			}{{c, err}, {c2, err2}} {
				if ok.err == nil && strings.Contains(ok.c.String()+ok.c.GoString(), secret) {
					t.Fatalf("String %q shows the secret", ok.c.String())
				}
			}
		}
		for _, got := range []struct {
			c   Config
			err error
		}{{c, err}, {c2, err2}} {
			if got.err != nil {
				continue
			}
			if err := got.c.validate(); err != nil {
				t.Fatalf("ParseURL accepted %q but its Config is invalid: %v", raw, err)
			}
			back, err := ParseURL(got.c.url(got.c.SecretKey), nil)
			if err != nil || back != got.c {
				t.Fatalf("round trip of %#v: %#v, %v", got.c, back, err)
			}
		}
	})
}
