// Package auth implements imaged.Authenticator: a tokens file (YAML or
// JSON, reloadable on SIGHUP) and a static identity for "--auth none".
package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	imaged "github.com/imaged/imaged"
)

// Messages of the 401 answers. Neither names the token.
const (
	msgNoToken  = "Authentication required"
	msgBadToken = "The request you have made requires authentication."
)

// TokenFile authenticates tokens listed in a file:
//
//	tokens:
//	  - token: "alice-secret"        # or  sha256: "<hex of the token>"
//	    user_id: alice
//	    project_id: projA
//	    roles: [member, reader]
//
// Only SHA-256 digests of the tokens are kept in memory. It is safe for
// concurrent use; Reload swaps the whole table at once.
type TokenFile struct {
	path   string
	tokens atomic.Pointer[map[[sha256.Size]byte]imaged.Identity]
}

var _ imaged.Authenticator = (*TokenFile)(nil)

// NewTokenFile reads and validates the tokens file at path.
func NewTokenFile(path string) (*TokenFile, error) {
	f := &TokenFile{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's path.
func (f *TokenFile) Path() string { return f.path }

// Len returns the number of tokens loaded.
func (f *TokenFile) Len() int { return len(*f.tokens.Load()) }

// Reload re-reads the file. If the file cannot be read or is invalid, the
// tokens loaded before stay in force and the error is returned.
func (f *TokenFile) Reload() error {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return imaged.Errorf(imaged.EINVALID, "tokens file: %v", err) // names the path only
	}
	table, err := parseTokens(data)
	if err != nil {
		return imaged.Errorf(imaged.EINVALID, "tokens file %s: %s", f.path, imaged.ErrorMessage(err))
	}
	f.tokens.Store(&table)
	return nil
}

// Authenticate returns the identity of token, or EUNAUTHORIZED if the token
// is empty or unknown. The returned identity is the caller's own copy.
func (f *TokenFile) Authenticate(ctx context.Context, token string) (*imaged.Identity, error) {
	if token == "" {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, msgNoToken)
	}
	// A map lookup by digest leaks at most timing about digests, which
	// an attacker cannot steer towards a secret token.
	id, ok := (*f.tokens.Load())[sha256.Sum256([]byte(token))]
	if !ok {
		return nil, imaged.Errorf(imaged.EUNAUTHORIZED, msgBadToken)
	}
	return cloneIdentity(id), nil
}

type fileDoc struct {
	Tokens *[]fileEntry `yaml:"tokens"`
}

type fileEntry struct {
	Token     *string  `yaml:"token"`
	SHA256    *string  `yaml:"sha256"`
	UserID    string   `yaml:"user_id"`
	ProjectID string   `yaml:"project_id"`
	Roles     []string `yaml:"roles"`
}

// quoted matches the values yaml.v3 quotes in its type errors, which could
// be a secret put in the wrong place.
var quoted = regexp.MustCompile("`[^`]*`")

func parseTokens(data []byte) (map[[sha256.Size]byte]imaged.Identity, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key must not silently drop a field
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, imaged.Errorf(imaged.EINVALID, "empty file: want a \"tokens\" list")
		}
		return nil, imaged.Errorf(imaged.EINVALID, "%s", oneLine(quoted.ReplaceAllString(err.Error(), "(value hidden)")))
	}
	if doc.Tokens == nil {
		return nil, imaged.Errorf(imaged.EINVALID, "no \"tokens\" list")
	}
	table := make(map[[sha256.Size]byte]imaged.Identity, len(*doc.Tokens))
	first := make(map[[sha256.Size]byte]int, len(*doc.Tokens))
	for i, e := range *doc.Tokens {
		var digest [sha256.Size]byte
		switch {
		case e.Token != nil && e.SHA256 != nil:
			return nil, imaged.Errorf(imaged.EINVALID, "entry %d: has both \"token\" and \"sha256\"; give one", i)
		case e.Token != nil:
			if *e.Token == "" {
				return nil, imaged.Errorf(imaged.EINVALID, "entry %d: \"token\" is empty", i)
			}
			digest = sha256.Sum256([]byte(*e.Token))
		case e.SHA256 != nil:
			b, err := hex.DecodeString(strings.TrimSpace(*e.SHA256))
			if err != nil || len(b) != sha256.Size {
				return nil, imaged.Errorf(imaged.EINVALID, "entry %d: \"sha256\" must be 64 hexadecimal digits", i)
			}
			copy(digest[:], b)
		default:
			return nil, imaged.Errorf(imaged.EINVALID, "entry %d: needs \"token\" or \"sha256\"", i)
		}
		if strings.TrimSpace(e.UserID) == "" {
			return nil, imaged.Errorf(imaged.EINVALID, "entry %d: \"user_id\" is missing", i)
		}
		if j, dup := first[digest]; dup {
			return nil, imaged.Errorf(imaged.EINVALID, "entry %d: same token as entry %d", i, j)
		}
		first[digest] = i
		roles := make([]string, 0, len(e.Roles))
		for _, r := range e.Roles {
			if r = strings.TrimSpace(r); r != "" {
				roles = append(roles, r)
			}
		}
		table[digest] = imaged.Identity{UserID: e.UserID, ProjectID: e.ProjectID, Roles: roles}
	}
	return table, nil
}

// oneLine folds yaml.v3's multi-line error lists into one log line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func cloneIdentity(id imaged.Identity) *imaged.Identity {
	id.Roles = append([]string(nil), id.Roles...)
	return &id
}

// NoneIdentity is the identity of every request with "--auth none": user
// and project "admin" with the admin, member and reader roles.
func NoneIdentity() imaged.Identity {
	return imaged.Identity{UserID: "admin", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}}
}

// StaticAuthenticator gives every request, with or without a token, the
// same identity.
type StaticAuthenticator struct {
	id imaged.Identity
}

var _ imaged.Authenticator = StaticAuthenticator{}

// Static returns an Authenticator that ignores the token and answers id.
func Static(id imaged.Identity) StaticAuthenticator {
	return StaticAuthenticator{id: *cloneIdentity(id)}
}

// Authenticate returns a copy of the static identity.
func (s StaticAuthenticator) Authenticate(ctx context.Context, token string) (*imaged.Identity, error) {
	return cloneIdentity(s.id), nil
}
