package agents

import (
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/imaged/imaged"
)

// validID is the shape of agent ids: they appear in URL paths and logs.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidAgentID reports whether id is a well-formed agent id.
func ValidAgentID(id string) bool { return validID.MatchString(id) }

// ParseTokens reads an agent tokens file (YAML or JSON):
//
//	agents:
//	  - id: node1
//	    token: "node1-secret"     # or  sha256: "<hex of the token>"
//
// and returns agent id → token digest (hex SHA-256). Plain tokens are
// hashed at once and never kept.
func ParseTokens(data []byte) (map[string]string, error) {
	var f struct {
		Agents []struct {
			ID     string `yaml:"id"`
			Token  string `yaml:"token"`
			SHA256 string `yaml:"sha256"`
		} `yaml:"agents"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		// The decoder's message may quote the file; it names no token
		// value because tokens are plain strings and never fail to decode.
		return nil, imaged.Errorf(imaged.EINVALID, "agent tokens file: %s", firstLine(err.Error()))
	}
	out := make(map[string]string, len(f.Agents))
	for i, a := range f.Agents {
		if !ValidAgentID(a.ID) {
			return nil, imaged.Errorf(imaged.EINVALID, "agent tokens file: agents[%d]: bad id %q", i, a.ID)
		}
		if _, dup := out[a.ID]; dup {
			return nil, imaged.Errorf(imaged.EINVALID, "agent tokens file: agent %q listed twice", a.ID)
		}
		d, err := tokenDigest(a.Token, a.SHA256)
		if err != nil {
			return nil, imaged.Errorf(imaged.EINVALID, "agent tokens file: agent %q: %s", a.ID, imaged.ErrorMessage(err))
		}
		out[a.ID] = d
	}
	return out, nil
}

// LoadTokens reads ParseTokens' format from a file.
func LoadTokens(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, imaged.Errorf(imaged.EINVALID, "agent tokens file: %v", err)
	}
	return ParseTokens(data)
}

// tokenDigest returns the digest of exactly one of token or digest.
func tokenDigest(token, digest string) (string, error) {
	switch {
	case token != "" && digest != "":
		return "", imaged.Errorf(imaged.EINVALID, "give token or sha256, not both")
	case token != "":
		if len(token) < 16 {
			return "", imaged.Errorf(imaged.EINVALID, "a token must have at least 16 characters")
		}
		return imaged.AgentTokenDigest(token), nil
	case digest != "":
		d := strings.ToLower(digest)
		if b, err := hex.DecodeString(d); err != nil || len(b) != 32 {
			return "", imaged.Errorf(imaged.EINVALID, "sha256 must be 64 hex digits")
		}
		return d, nil
	}
	return "", imaged.Errorf(imaged.EINVALID, "a token or its sha256 is required")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
