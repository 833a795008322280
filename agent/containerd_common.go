package agent

import (
	"log/slog"

	"github.com/imaged/imaged"
)

// RuntimeContainerd is the --runtime of the containerd runtime.
const RuntimeContainerd = imaged.AgentRuntimeContainerd

// ContainerdOptions configure NewContainerdRuntime.
type ContainerdOptions struct {
	// Address is containerd's gRPC socket, e.g.
	// /run/containerd/containerd.sock.
	Address string
	// Namespace keeps the agent's images apart from those of other
	// clients of the same daemon (Kubernetes uses k8s.io, ctr default).
	Namespace string
	// Snapshotter unpacks pulled images ("" = the namespace's default
	// label, else overlayfs, as the containerd client decides).
	Snapshotter string
	// PlainHTTP lists registry hosts ("host:port") pulled from over plain
	// HTTP; loopback registries (127.0.0.1, ::1, localhost) always are,
	// as with ctr and dockerd.
	PlainHTTP []string
	// Logger receives the containerd client's warnings and errors (nil =
	// slog.Default()).
	Logger *slog.Logger
}

// withDefaults fills the defaults of o.
func (o ContainerdOptions) withDefaults() ContainerdOptions {
	if o.Address == "" {
		o.Address = "/run/containerd/containerd.sock"
	}
	if o.Namespace == "" {
		o.Namespace = "imaged"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
