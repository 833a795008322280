//go:build !containerd

package agent

import (
	"context"

	"github.com/imaged/imaged"
)

// ContainerdRuntime is only built with -tags containerd: its client pulls
// in ~45 modules (gRPC, protobuf, OpenTelemetry, hcsshim, ...) that the
// default build of imaged does without.
type ContainerdRuntime struct{ Runtime }

// NewContainerdRuntime reports that this binary lacks containerd support.
func NewContainerdRuntime(_ context.Context, _ ContainerdOptions) (*ContainerdRuntime, error) {
	return nil, imaged.Errorf(imaged.EREFUSED, "the containerd runtime is not built into this imaged; rebuild with `go build -tags containerd ./cmd/imaged`")
}

// Close implements io.Closer.
func (c *ContainerdRuntime) Close() error { return nil }
