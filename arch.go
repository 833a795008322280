package imaged

import "strings"

// Architectures are stored in Backend.AI's form (uname style: x86_64,
// aarch64, x86) and sent to Docker/OCI APIs in GOARCH form (amd64, arm64,
// 386). Unlike upstream, every lookup normalises first, so "amd64" finds
// an "x86_64" image (spec §2.4 notes upstream compares verbatim).

// NormalizeArch returns the stored form of an architecture name: trimmed,
// lowercased and with the common aliases folded (arm64→aarch64,
// amd64/x64/x86-64→x86_64, x32/i386/i686/386→x86). Unknown names are
// returned lowercased.
func NormalizeArch(s string) string {
	a := strings.ToLower(strings.TrimSpace(s))
	switch a {
	case "arm64", "aarch64":
		return "aarch64"
	case "amd64", "x64", "x86_64", "x86-64":
		return "x86_64"
	case "x32", "i386", "i686", "386", "x86":
		return "x86"
	}
	return a
}

// DockerArch returns the Docker/OCI (GOARCH) form of an architecture.
func DockerArch(s string) string {
	a := NormalizeArch(s)
	switch a {
	case "aarch64":
		return "arm64"
	case "x86_64":
		return "amd64"
	case "x86":
		return "386"
	}
	return a
}

// ArchFromTag guesses the architecture of an image whose manifest and
// config do not say (spec §4.3): a tag ending in "-arm64" or "-aarch64"
// is aarch64, anything else x86_64.
func ArchFromTag(tag string) string {
	t := strings.ToLower(tag)
	if strings.HasSuffix(t, "-arm64") || strings.HasSuffix(t, "-aarch64") {
		return "aarch64"
	}
	return "x86_64"
}
