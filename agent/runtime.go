// Package agent is the node side of imaged's node agents (`imaged agent`):
// a small authenticated HTTP API over a container runtime (list, purge and
// preload images), and a loop that registers with the service and sends
// heartbeats carrying the runtime's inventory.
//
// Runtimes sit behind one small interface, Runtime; every implementation
// passes the conformance suite in agent/runtimetest:
//
//   - dir (DirRuntime): a built-in cache directory in OCI image layout,
//     pulled from registries with go-containerregistry; the zero-config
//     default.
//   - docker (DockerRuntime): the Docker Engine API over a unix socket or
//     TCP; tested against podman's Docker-compatible service.
package agent

import (
	"context"
	"strings"

	"github.com/imaged/imaged"
)

// Runtime is a node's image store. References are imaged's canonical
// references; architectures are normalised (imaged.NormalizeArch).
type Runtime interface {
	// Name is the runtime's kind (imaged.AgentRuntimeDir, ...).
	Name() string
	// List returns the images held, one per (reference, architecture).
	List(ctx context.Context) ([]imaged.AgentImage, error)
	// Pull fetches the image for arch ("" = the node's architecture) from
	// its registry and returns what is now held.
	Pull(ctx context.Context, ref, arch string) (imaged.AgentImage, error)
	// Remove deletes an image and returns the bytes that freed. An image
	// the runtime does not hold (for that architecture) is ENOTFOUND.
	// force removes an image in use; noprune keeps data other images do
	// not use (no bytes freed then).
	Remove(ctx context.Context, ref, arch string, force, noprune bool) (int64, error)
}

// notPresent is the error of Remove for an image the runtime lacks.
func notPresent(ref, arch string) error {
	return imaged.Errorf(imaged.ENOTFOUND, "image %s (%s) is not present", ref, arch)
}

// CanonicalRef turns a runtime's name of an image ("lablup/python:3.9",
// "docker.io/library/ubuntu:22.04", "127.0.0.1:5000/x/y:1") into imaged's
// canonical form: Docker Hub is index.docker.io, its single-segment names
// are under library/, a missing tag is "latest".
func CanonicalRef(s string) string {
	name, digest, _ := strings.Cut(s, "@")
	first, rest, hasSlash := strings.Cut(name, "/")
	registry := ""
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		registry, name = first, rest
	}
	if registry == "" || registry == "docker.io" || registry == "registry-1.docker.io" {
		registry = "index.docker.io"
		if !strings.Contains(name, "/") {
			name = "library/" + name
		}
	}
	last := name[strings.LastIndexByte(name, '/')+1:]
	if !strings.Contains(last, ":") && digest == "" {
		name += ":latest"
	}
	out := registry + "/" + name
	if digest != "" {
		out += "@" + digest
	}
	return out
}

// archOrDefault normalises arch; "" is the architecture of the node.
func archOrDefault(arch, node string) string {
	if arch == "" {
		return imaged.NormalizeArch(node)
	}
	return imaged.NormalizeArch(arch)
}
