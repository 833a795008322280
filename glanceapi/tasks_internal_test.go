package glanceapi

import (
	"encoding/json"
	"testing"

	"github.com/imaged/imaged"
)

// FuzzValidateTaskBody: any JSON body gets nil or a 400, never a panic.
func FuzzValidateTaskBody(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `["type", "input"]`, `{"type": "import", "input": {}}`,
		`{"type": 1, "input": null, "id": "x", "expires_at": null}`, `{"type": "import", "input": {}, "a'b": 1, "c": 2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		if err := validateTaskBody(v); err != nil && imaged.ErrorCode(err) != imaged.EINVALID {
			t.Fatalf("%s: %v", s, err)
		}
	})
}
