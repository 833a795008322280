//go:build !containerd

package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
)

// The default build says how to get the containerd runtime instead of
// failing obscurely.
func TestContainerdRuntimeNeedsBuildTag(t *testing.T) {
	t.Parallel()
	_, err := agent.NewContainerdRuntime(context.Background(), agent.ContainerdOptions{})
	if imaged.ErrorCode(err) != imaged.EREFUSED || !strings.Contains(err.Error(), "-tags containerd") {
		t.Fatalf("NewContainerdRuntime without the build tag = %v", err)
	}
}
