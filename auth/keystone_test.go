package auth_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/auth"
	"github.com/imaged/imaged/auth/keystonetest"
)

// countingTransport counts the requests that reach Keystone.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func newKeystone(t *testing.T, ks *keystonetest.Server, mod func(*auth.KeystoneConfig)) (*auth.Keystone, *countingTransport) {
	t.Helper()
	ct := &countingTransport{}
	cfg := auth.KeystoneConfig{URL: ks.URL, Username: "imaged", Password: keystonetest.Password, ProjectName: "service",
		Client: &http.Client{Transport: ct}, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	k, err := auth.NewKeystone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k, ct
}

func TestKeystone(t *testing.T) {
	ks := keystonetest.Start(t)
	ctx := context.Background()

	t.Run("personas", func(t *testing.T) {
		k, _ := newKeystone(t, ks, nil)
		for _, tc := range []struct {
			user      string
			wantRoles []string
			notRoles  []string
		}{
			{"admin", []string{"admin", "member", "reader"}, nil},
			{"alice", []string{"member", "reader"}, []string{"admin"}},
			{"rita", []string{"reader"}, []string{"member", "admin"}},
			{"bob", []string{"member", "reader"}, []string{"admin"}},
		} {
			id, err := k.Authenticate(ctx, ks.Token(t, tc.user))
			if err != nil {
				t.Fatalf("%s: %v", tc.user, err)
			}
			p := ks.Personas[tc.user]
			if id.UserID != p.UserID || id.ProjectID != p.ProjectID {
				t.Errorf("%s: identity %+v, want user %s project %s", tc.user, id, p.UserID, p.ProjectID)
			}
			for _, r := range tc.wantRoles {
				if !id.HasRole(r) {
					t.Errorf("%s: roles %v lack %s (Keystone's implied roles)", tc.user, id.Roles, r)
				}
			}
			for _, r := range tc.notRoles {
				if id.HasRole(r) {
					t.Errorf("%s: roles %v have %s", tc.user, id.Roles, r)
				}
			}
		}
	})

	t.Run("bad tokens", func(t *testing.T) {
		k, _ := newKeystone(t, ks, nil)
		for _, tok := range []string{"", "not-a-token", "gAAAAABnot-fernet"} {
			_, err := k.Authenticate(ctx, tok)
			if imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
				t.Errorf("token %q: %v, want unauthorized", tok, err)
			}
		}
	})

	t.Run("warm cache costs no round trip", func(t *testing.T) {
		k, ct := newKeystone(t, ks, nil)
		tok := ks.Token(t, "alice")
		if _, err := k.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		before := ct.n.Load()
		for i := 0; i < 100; i++ {
			if _, err := k.Authenticate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if got := ct.n.Load() - before; got != 0 {
			t.Errorf("100 cached validations made %d Keystone requests, want 0", got)
		}
	})

	t.Run("cache ends with the token and after the TTL", func(t *testing.T) {
		var now atomic.Pointer[time.Time]
		t0 := time.Now().UTC()
		now.Store(&t0)
		k, ct := newKeystone(t, ks, func(c *auth.KeystoneConfig) {
			c.CacheTTL = time.Minute
			c.Clock = imaged.ClockFunc(func() time.Time { return *now.Load() })
		})
		tok := ks.Token(t, "bob")
		if _, err := k.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// Revoked in Keystone: still trusted while cached, refused once
		// the TTL has passed.
		ks.Revoke(t, tok)
		if _, err := k.Authenticate(ctx, tok); err != nil {
			t.Fatalf("within the TTL: %v", err)
		}
		t1 := t0.Add(2 * time.Minute)
		now.Store(&t1)
		n := ct.n.Load()
		if _, err := k.Authenticate(ctx, tok); imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
			t.Fatalf("revoked token after the TTL: %v", err)
		}
		if ct.n.Load() == n {
			t.Error("no Keystone request after the TTL")
		}
		// A token past its own expiry (Keystone's default is one hour)
		// is refused even though the cache TTL is longer.
		k2, _ := newKeystone(t, ks, func(c *auth.KeystoneConfig) {
			c.CacheTTL = 24 * time.Hour
			c.Clock = imaged.ClockFunc(func() time.Time { return *now.Load() })
		})
		t2 := time.Now().UTC()
		now.Store(&t2)
		tok2 := ks.Token(t, "alice")
		if _, err := k2.Authenticate(ctx, tok2); err != nil {
			t.Fatal(err)
		}
		t3 := t2.Add(2 * time.Hour)
		now.Store(&t3)
		if _, err := k2.Authenticate(ctx, tok2); imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
			t.Fatalf("expired token: %v", err)
		}
	})

	t.Run("service token", func(t *testing.T) {
		k, _ := newKeystone(t, ks, nil)
		user, nova := ks.Token(t, "alice"), ks.Token(t, "nova")
		id, err := k.AuthenticateWithService(ctx, user, nova)
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID != ks.Personas["alice"].UserID || len(id.ServiceRoles) == 0 {
			t.Errorf("identity %+v: want alice with service roles", id)
		}
		// A service token without the service role, or a bad one, is refused.
		if _, err := k.AuthenticateWithService(ctx, user, ks.Token(t, "bob")); imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
			t.Errorf("member token as service token: %v", err)
		}
		if _, err := k.AuthenticateWithService(ctx, user, "bogus"); imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
			t.Errorf("bogus service token: %v", err)
		}
	})

	t.Run("bad service credentials", func(t *testing.T) {
		k, _ := newKeystone(t, ks, func(c *auth.KeystoneConfig) { c.Password = "wrong" })
		if _, err := k.Authenticate(ctx, ks.Token(t, "alice")); imaged.ErrorCode(err) != imaged.EUNAVAILABLE {
			t.Errorf("wrong service password: %v, want unavailable", err)
		}
	})
}

// TestKeystoneDown checks that an unreachable or silent Keystone gives 503
// (EUNAVAILABLE) within the timeout instead of hanging.
func TestKeystoneDown(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	for name, url := range map[string]string{"silent": "http://" + l.Addr().String(), "refused": closedURL} {
		k, err := auth.NewKeystone(auth.KeystoneConfig{URL: url, Username: "u", Password: "p", ProjectName: "p", Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = k.Authenticate(context.Background(), "tok")
		if imaged.ErrorCode(err) != imaged.EUNAVAILABLE {
			t.Errorf("%s: %v, want unavailable", name, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}

// BenchmarkKeystoneCached times the validation path with a warm cache.
func BenchmarkKeystoneCached(b *testing.B) {
	ks := keystonetest.Start(b)
	k, err := auth.NewKeystone(auth.KeystoneConfig{URL: ks.URL, Username: "imaged", Password: keystonetest.Password, ProjectName: "service"})
	if err != nil {
		b.Fatal(err)
	}
	tok := ks.Token(b, "alice")
	ctx := context.Background()
	if _, err := k.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
