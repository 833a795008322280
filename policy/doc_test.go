package policy

import (
	"os"
	"strings"
	"testing"
)

// TestDocMatchesMarkdown keeps the package documentation and
// docs/policy.md, which the catalog is written from, the same text.
func TestDocMatchesMarkdown(t *testing.T) {
	t.Parallel()
	md, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Skipf("docs/policy.md not readable: %v", err)
	}
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	inBlock := false
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(l, "//\t"):
			inBlock = true
			lines = append(lines, strings.TrimPrefix(l, "//\t"))
		case l == "//" && inBlock:
			lines = append(lines, "")
		}
	}
	got := strings.TrimRight(strings.Join(lines, "\n"), "\n")
	want := strings.TrimRight(string(md), "\n")
	if got != want {
		t.Error("policy/doc.go and docs/policy.md differ; regenerate doc.go from the markdown")
	}
}
