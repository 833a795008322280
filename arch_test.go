package imaged

import "testing"

func TestArchAliases(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, norm, docker string }{
		{"arm64", "aarch64", "arm64"},
		{"aarch64", "aarch64", "arm64"},
		{" ARM64 ", "aarch64", "arm64"},
		{"amd64", "x86_64", "amd64"},
		{"x64", "x86_64", "amd64"},
		{"x86_64", "x86_64", "amd64"},
		{"X86-64", "x86_64", "amd64"},
		{"x32", "x86", "386"},
		{"i386", "x86", "386"},
		{"i686", "x86", "386"},
		{"386", "x86", "386"},
		{"x86", "x86", "386"},
		{"ppc64le", "ppc64le", "ppc64le"},
		{"S390X", "s390x", "s390x"},
		{"", "", ""},
	}
	for _, c := range cases {
		if got := NormalizeArch(c.in); got != c.norm {
			t.Errorf("NormalizeArch(%q) = %q, want %q", c.in, got, c.norm)
		}
		if got := DockerArch(c.in); got != c.docker {
			t.Errorf("DockerArch(%q) = %q, want %q", c.in, got, c.docker)
		}
	}
}

func TestArchFromTag(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"3.9-ubuntu20.04-arm64":   "aarch64",
		"3.9-ubuntu20.04-aarch64": "aarch64",
		"3.9-ARM64":               "aarch64",
		"3.9-ubuntu20.04":         "x86_64",
		"arm64":                   "x86_64", // the heuristic wants a "-" suffix
		"3.9-arm64-cuda":          "x86_64",
		"":                        "x86_64",
	}
	for tag, want := range cases {
		if got := ArchFromTag(tag); got != want {
			t.Errorf("ArchFromTag(%q) = %q, want %q", tag, got, want)
		}
	}
}
