package agents_test

import (
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agents"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	digest := imaged.AgentTokenDigest("node2-secret-0123456789")
	got, err := agents.ParseTokens([]byte("agents:\n  - id: node1\n    token: node1-secret-0123456789\n  - id: node2\n    sha256: " + strings.ToUpper(digest) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got["node1"] != imaged.AgentTokenDigest("node1-secret-0123456789") || got["node2"] != digest || len(got) != 2 {
		t.Fatalf("ParseTokens = %v", got)
	}
	json, err := agents.ParseTokens([]byte(`{"agents":[{"id":"n1","token":"n1-secret-0123456789"}]}`))
	if err != nil || len(json) != 1 {
		t.Fatalf("JSON form: %v %v", json, err)
	}
	for name, in := range map[string]string{
		"bad id":        "agents:\n  - id: ../x\n    token: abcdefghijklmnopq\n",
		"duplicate":     "agents:\n  - {id: a, token: abcdefghijklmnopq}\n  - {id: a, token: abcdefghijklmnopr}\n",
		"short token":   "agents:\n  - {id: a, token: short}\n",
		"both":          "agents:\n  - {id: a, token: abcdefghijklmnopq, sha256: " + digest + "}\n",
		"neither":       "agents:\n  - {id: a}\n",
		"bad digest":    "agents:\n  - {id: a, sha256: xyz}\n",
		"unknown field": "agents:\n  - {id: a, token: abcdefghijklmnopq, role: admin}\n",
		"not yaml":      "agents: [",
	} {
		if _, err := agents.ParseTokens([]byte(in)); imaged.ErrorCode(err) != imaged.EINVALID {
			t.Errorf("%s: err = %v", name, err)
		} else if strings.Contains(err.Error(), "abcdefghijklmnopq") {
			t.Errorf("%s: the error quotes a token: %v", name, err)
		}
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("agents:\n  - id: node1\n    token: node1-secret-0123456789\n"))
	f.Add([]byte(`{"agents":[{"id":"n1","sha256":"00"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := agents.ParseTokens(data)
		if err != nil {
			if imaged.ErrorCode(err) != imaged.EINVALID {
				t.Fatalf("code %s", imaged.ErrorCode(err))
			}
			return
		}
		for id, d := range got {
			if !agents.ValidAgentID(id) || len(d) != 64 {
				t.Fatalf("accepted %q -> %q", id, d)
			}
		}
	})
}
