package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	tokenService = "registrytest"
	tokenIssuer  = "registrytest-token-server"
)

// tokenServer implements the Docker registry token spec
// (https://distribution.github.io/distribution/spec/auth/token/): GET
// /token?service=...&scope=... with HTTP Basic credentials answers a JWT
// signed by a self-signed ECDSA certificate that distribution trusts
// through auth.token.rootcertbundle. The certificate travels in the x5c
// header, which distribution 2.8.2 verifies against the bundle.
type tokenServer struct {
	realm    string
	certFile string
	issued   atomic.Int64
}

func startTokenServer(t testing.TB, dir, user, password string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certFile: filepath.Join(dir, "token-root.pem")}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	header := b64json(map[string]any{"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(der)}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest-token"`)
			http.Error(w, `{"details":"invalid credentials"}`, http.StatusUnauthorized)
			return
		}
		// Grant every action asked for: the test user owns the registry.
		var access []map[string]any
		for _, scope := range r.URL.Query()["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) < 3 {
				continue
			}
			typ, name, actions := parts[0], strings.Join(parts[1:len(parts)-1], ":"), strings.Split(parts[len(parts)-1], ",")
			access = append(access, map[string]any{"type": typ, "name": name, "actions": actions})
		}
		now := time.Now()
		claims := b64json(map[string]any{
			"iss": tokenIssuer, "sub": u, "aud": r.URL.Query().Get("service"),
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"jti": randHex(8), "access": access,
		})
		signing := header + "." + claims
		sum := sha256.Sum256([]byte(signing))
		rr, ss, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sig := make([]byte, 64) // JWS ES256: r and s, 32 bytes each
		rr.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		tok := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		ts.issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
	}))
	t.Cleanup(srv.Close)
	// The realm names the token server as "localhost": go-containerregistry
	// (v0.22) refuses realms on private IP literals other than the
	// registry's own host:port, as an SSRF guard, but allows host names.
	ts.realm = "http://localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:] + "/token"
	return ts
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}
