package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	imaged "github.com/imaged/imaged"
)

func sum(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenFileFormats(t *testing.T) {
	t.Parallel()
	yamlBody := fmt.Sprintf(`
tokens:
  - token: "alice-secret"
    user_id: alice
    project_id: projA
    roles: [member, reader]
  - sha256: "%s"
    user_id: bob
    roles: [reader]
`, strings.ToUpper(sum("bob-secret")))
	jsonBody := fmt.Sprintf(`{"tokens": [
  {"token": "alice-secret", "user_id": "alice", "project_id": "projA", "roles": ["member", "reader"]},
  {"sha256": "%s", "user_id": "bob", "roles": ["reader"]}]}`, sum("bob-secret"))
	for name, body := range map[string]string{"tokens.yaml": yamlBody, "tokens.json": jsonBody} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := NewTokenFile(writeFile(t, t.TempDir(), name, body))
			if err != nil {
				t.Fatal(err)
			}
			if f.Len() != 2 {
				t.Errorf("Len = %d, want 2", f.Len())
			}
			tests := []struct {
				token string
				want  *imaged.Identity
			}{
				{"alice-secret", &imaged.Identity{UserID: "alice", ProjectID: "projA", Roles: []string{"member", "reader"}}},
				{"bob-secret", &imaged.Identity{UserID: "bob", Roles: []string{"reader"}}},
				{"alice-secret ", nil},
				{"carol-secret", nil},
				{sum("bob-secret"), nil}, // the digest itself is not a token
				{"", nil},
			}
			for _, tc := range tests {
				got, err := f.Authenticate(context.Background(), tc.token)
				if tc.want == nil {
					if imaged.ErrorCode(err) != imaged.EUNAUTHORIZED || got != nil {
						t.Errorf("Authenticate(%q) = %v, %v; want EUNAUTHORIZED", tc.token, got, err)
					}
					if tc.token != "" && strings.Contains(err.Error(), tc.token) {
						t.Errorf("error %q contains the token", err)
					}
					continue
				}
				if err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Errorf("Authenticate(%q) = %+v, %v; want %+v", tc.token, got, err, tc.want)
				}
			}
			// Identities are copies: changing one does not change the table.
			a, _ := f.Authenticate(context.Background(), "alice-secret")
			a.Roles[0] = "admin"
			a.ProjectID = "x"
			b, _ := f.Authenticate(context.Background(), "alice-secret")
			if b.HasRole("admin") || b.ProjectID != "projA" {
				t.Errorf("table changed through a returned identity: %+v", b)
			}
		})
	}
}

func TestTokenFileValidation(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value-never-shown"
	tests := []struct {
		name string
		body string
		want string // in the error
	}{
		{"both", "tokens:\n  - token: " + secret + "\n    sha256: " + sum(secret) + "\n    user_id: a\n", "entry 0: has both"},
		{"neither", "tokens:\n  - user_id: a\n", "entry 0: needs"},
		{"empty token", "tokens:\n  - user_id: a\n    token: \"\"\n", "entry 0: \"token\" is empty"},
		{"short sha", "tokens:\n  - token: ok1\n    user_id: a\n  - sha256: abcd\n    user_id: b\n", "entry 1: \"sha256\" must be 64"},
		{"bad hex", "tokens:\n  - sha256: " + strings.Repeat("zz", 32) + "\n    user_id: b\n", "entry 0: \"sha256\" must be 64"},
		{"no user", "tokens:\n  - token: " + secret + "\n    project_id: p\n", "entry 0: \"user_id\" is missing"},
		{"duplicate", "tokens:\n  - token: " + secret + "\n    user_id: a\n  - token: other\n    user_id: b\n  - sha256: " + sum(secret) + "\n    user_id: c\n", "entry 2: same token as entry 0"},
		{"unknown key", "tokens:\n  - token: " + secret + "\n    user: a\n", "field user not found"},
		{"secret as roles", "tokens:\n  - token: x\n    user_id: a\n    roles: " + secret + "\n", "cannot unmarshal"},
		{"secret as list", "tokens: " + secret + "\n", "cannot unmarshal"},
		{"null tokens", "tokens:\n", "no \"tokens\" list"},
		{"unknown top key", "users: []\n", "field users not found"},
		{"comment only", "# nothing yet\n", "empty file"},
		{"empty file", "", "empty file"},
		{"syntax", "tokens: [\n  {token: " + secret + ",\n", "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewTokenFile(writeFile(t, t.TempDir(), "t.yaml", tc.body))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("code %q, want EINVALID", imaged.ErrorCode(err))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	t.Run("empty list is valid", func(t *testing.T) {
		t.Parallel()
		f, err := NewTokenFile(writeFile(t, t.TempDir(), "t.yaml", "tokens: []\n"))
		if err != nil || f.Len() != 0 {
			t.Fatalf("got %v, %v", f, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		if _, err := NewTokenFile(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
			t.Fatal("no error for a missing file")
		}
	})
}

func TestReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "t.yaml", "tokens:\n  - token: old\n    user_id: a\n")
	f, err := NewTokenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writeFile(t, dir, "t.yaml", "tokens:\n  - token: new\n    user_id: b\n")
	if _, err := f.Authenticate(ctx, "new"); err == nil {
		t.Fatal("new token works before Reload")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if id, err := f.Authenticate(ctx, "new"); err != nil || id.UserID != "b" {
		t.Fatalf("after reload: %v, %v", id, err)
	}
	if _, err := f.Authenticate(ctx, "old"); imaged.ErrorCode(err) != imaged.EUNAUTHORIZED {
		t.Fatalf("old token after reload: %v", err)
	}
	// A bad file keeps the tokens in force.
	writeFile(t, dir, "t.yaml", "tokens:\n  - token: newer\n")
	if err := f.Reload(); err == nil {
		t.Fatal("Reload of an invalid file succeeded")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if id, err := f.Authenticate(ctx, "new"); err != nil || id.UserID != "b" {
		t.Fatalf("after failed reloads: %v, %v", id, err)
	}
}

// TestReloadConcurrent runs Authenticate calls while the file flips between
// two valid versions and one invalid one; run with -race. Every answer must
// be one of the two versions' answers, never a mix.
func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	versions := []string{
		"tokens:\n  - token: stable\n    user_id: u1\n    project_id: p1\n    roles: [member]\n",
		"tokens:\n  - token: stable\n    user_id: u2\n    project_id: p2\n    roles: [reader]\n  - token: extra\n    user_id: x\n",
		"tokens:\n  - token: stable\n", // invalid: no user_id
	}
	p := writeFile(t, dir, "t.yaml", versions[0])
	f, err := NewTokenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "t.yaml.tmp")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := f.Authenticate(context.Background(), "stable")
				if err != nil {
					errs <- err
					return
				}
				ok := (id.UserID == "u1" && id.ProjectID == "p1" && reflect.DeepEqual(id.Roles, []string{"member"})) ||
					(id.UserID == "u2" && id.ProjectID == "p2" && reflect.DeepEqual(id.Roles, []string{"reader"}))
				if !ok {
					errs <- fmt.Errorf("mixed identity %+v", id)
					return
				}
			}
		}()
	}
	for i := 0; i < 300; i++ {
		v := i % len(versions)
		// Replace the file by rename, as an operator's editor or a config
		// manager does, so Reload never reads a half-written file.
		if err := os.WriteFile(tmp, []byte(versions[v]), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		if err := f.Reload(); (err != nil) != (v == 2) {
			t.Fatalf("reload of version %d: %v", v, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	none := NoneIdentity()
	want := imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}}
	if !reflect.DeepEqual(none, want) {
		t.Fatalf("NoneIdentity = %+v", none)
	}
	a := Static(none)
	none.Roles[0] = "changed" // the authenticator keeps its own copy
	for _, token := range []string{"", "anything"} {
		id, err := a.Authenticate(context.Background(), token)
		if err != nil || !reflect.DeepEqual(*id, want) {
			t.Fatalf("Authenticate(%q) = %+v, %v", token, id, err)
		}
		id.Roles[0] = "x"
	}
	var _ imaged.Authenticator = a
}
