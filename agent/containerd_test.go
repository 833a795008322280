//go:build containerd

package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/agent/runtimetest"
	"github.com/imaged/imaged/registry/registrytest"
)

// skipOrFail skips locally and fails under CI=true, where every
// dependency must be present.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (required: CI=true)")
	}
	t.Skip(msg + ", skipping")
}

// startContainerd runs a private containerd (Debian's 1.6 here) as our
// child: root, state and sockets in a temp dir, the CRI plugin off (it
// wants CNI and more), the snapshotters that need special filesystems
// off. It returns the gRPC socket; the daemon is stopped by pid at
// cleanup.
func startContainerd(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("containerd")
	if err != nil {
		skipOrFail(t, "containerd is not installed; run scripts/install-test-deps.sh (scripts/deps/containerd.sh)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "containerd needs root (it mounts snapshots while unpacking)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		skipOrFail(t, "cannot start containerd: "+err.Error())
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Our own child's process group only.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			skipOrFail(t, "containerd exited at startup (this machine refuses to run it):\n"+string(log))
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			c, err := containerd.New(sock, containerd.WithTimeout(2*time.Second))
			if err == nil {
				_, err = c.Version(context.Background())
				c.Close()
				if err == nil {
					return sock
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("containerd did not answer on %s:\n%s", sock, log)
	return ""
}

func newContainerdRuntime(t testing.TB, sock, ns string) *agent.ContainerdRuntime {
	t.Helper()
	rt, err := agent.NewContainerdRuntime(context.Background(), agent.ContainerdOptions{Address: sock, Namespace: ns, Snapshotter: "native"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// One daemon serves all the tests below, each in a namespace of its own
// (that is what the namespace option is for), to start containerd once.
func TestContainerdRuntime(t *testing.T) {
	t.Parallel()
	sock := startContainerd(t)
	reg := registrytest.Start(t, registrytest.Options{})

	t.Run("Conformance", func(t *testing.T) {
		runtimetest.Run(t, reg.Host, newContainerdRuntime(t, sock, "conformance"))
	})

	t.Run("NamespacesAreSeparate", func(t *testing.T) {
		ctx := context.Background()
		registrytest.PushImage(t, reg.Host, "ns/img", "1", "amd64", nil)
		a, b := newContainerdRuntime(t, sock, "ns-a"), newContainerdRuntime(t, sock, "ns-b")
		ref := reg.Host + "/ns/img:1"
		if _, err := a.Pull(ctx, ref, "x86_64"); err != nil {
			t.Fatal(err)
		}
		if imgs, err := b.List(ctx); err != nil || len(imgs) != 0 {
			t.Fatalf("namespace ns-b lists %v, %v", imgs, err)
		}
		if _, err := b.Remove(ctx, ref, "x86_64", false, false); imaged.ErrorCode(err) != imaged.ENOTFOUND {
			t.Fatalf("Remove in the other namespace = %v", err)
		}
		if imgs, err := a.List(ctx); err != nil || len(imgs) != 1 || imgs[0].Reference != ref {
			t.Fatalf("namespace ns-a lists %v, %v", imgs, err)
		}
	})

	t.Run("WrongArchLeavesNothing", func(t *testing.T) {
		ctx := context.Background()
		registrytest.PushImage(t, reg.Host, "arch/amd", "1", "amd64", nil)
		rt := newContainerdRuntime(t, sock, "arch")
		ref := reg.Host + "/arch/amd:1"
		_, err := rt.Pull(ctx, ref, "aarch64")
		if imaged.ErrorCode(err) != imaged.ENOTFOUND {
			t.Fatalf("Pull of an amd64-only image for aarch64 = %v, want ENOTFOUND", err)
		}
		if imgs, err := rt.List(ctx); err != nil || len(imgs) != 0 {
			t.Fatalf("failed pull left %v, %v", imgs, err)
		}
	})

	t.Run("SnapshotIsUnpacked", func(t *testing.T) {
		ctx := namespaces.WithNamespace(context.Background(), "unpack")
		registrytest.PushImage(t, reg.Host, "unpack/img", "1", "amd64", nil)
		rt := newContainerdRuntime(t, sock, "unpack")
		ref := reg.Host + "/unpack/img:1"
		if _, err := rt.Pull(ctx, ref, "x86_64"); err != nil {
			t.Fatal(err)
		}
		c, err := containerd.New(sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		img, err := c.GetImage(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := img.IsUnpacked(ctx, "native")
		if err != nil || !ok {
			t.Fatalf("pulled image is not unpacked into native: %v, %v", ok, err)
		}
	})

	t.Run("InUseNeedsForce", func(t *testing.T) {
		ctx := namespaces.WithNamespace(context.Background(), "inuse")
		registrytest.PushImage(t, reg.Host, "inuse/img", "1", "amd64", nil)
		rt := newContainerdRuntime(t, sock, "inuse")
		ref := reg.Host + "/inuse/img:1"
		if _, err := rt.Pull(ctx, ref, "x86_64"); err != nil {
			t.Fatal(err)
		}
		c, err := containerd.New(sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A container record naming the image (no task: nothing runs).
		if _, err := c.NewContainer(ctx, "user", containerd.WithImageName(ref), containerd.WithSpec(&oci.Spec{Version: "1.0.2"})); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Remove(ctx, ref, "x86_64", false, false); imaged.ErrorCode(err) != imaged.ECONFLICT {
			t.Fatalf("Remove of an image in use = %v, want ECONFLICT", err)
		}
		if _, err := rt.Remove(ctx, ref, "x86_64", true, false); err != nil {
			t.Fatalf("forced Remove: %v", err)
		}
	})

	t.Run("NoPruneKeepsContentUntilGC", func(t *testing.T) {
		ctx := namespaces.WithNamespace(context.Background(), "noprune")
		registrytest.PushImage(t, reg.Host, "np/img", "1", "amd64", nil)
		rt := newContainerdRuntime(t, sock, "noprune")
		ref := reg.Host + "/np/img:1"
		got, err := rt.Pull(ctx, ref, "x86_64")
		if err != nil {
			t.Fatal(err)
		}
		freed, err := rt.Remove(ctx, ref, "x86_64", false, true)
		if err != nil || freed != 0 {
			t.Fatalf("Remove noprune = %d, %v; want 0 bytes", freed, err)
		}
		// A pull of the same content again frees its size on removal.
		if _, err := rt.Pull(ctx, ref, "x86_64"); err != nil {
			t.Fatal(err)
		}
		freed, err = rt.Remove(ctx, ref, "x86_64", false, false)
		if err != nil || freed != got.Size {
			t.Fatalf("Remove = %d, %v; want the image's size %d", freed, err, got.Size)
		}
	})

	t.Run("ConfigWithoutArchitecture", func(t *testing.T) {
		ctx := context.Background()
		// go-containerregistry's random images name no architecture.
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		p := registrytest.Pusher{Host: reg.Host}
		p.WriteImage(t, "silent/img", "1", img)
		p.WriteImage(t, "silent/img", "1-arm64", img)
		rt := newContainerdRuntime(t, sock, "silent")
		for _, tc := range []struct{ tag, arch, other string }{
			{"1", "x86_64", "aarch64"},
			{"1-arm64", "aarch64", "x86_64"},
		} {
			ref := reg.Host + "/silent/img:" + tc.tag
			// Placed by its tag, as the catalog does (spec §4.3).
			if _, err := rt.Pull(ctx, ref, tc.other); imaged.ErrorCode(err) != imaged.ENOTFOUND {
				t.Fatalf("Pull %s for %s = %v, want ENOTFOUND", ref, tc.other, err)
			}
			got, err := rt.Pull(ctx, ref, tc.arch)
			if err != nil || got.Architecture != tc.arch || got.Size <= 0 {
				t.Fatalf("Pull %s for %s = %+v, %v", ref, tc.arch, got, err)
			}
		}
		imgs, err := rt.List(ctx)
		if err != nil || len(imgs) != 2 {
			t.Fatalf("List = %v, %v", imgs, err)
		}
		// Both tags share all content: the first removal frees nothing,
		// the last all of it.
		if n, err := rt.Remove(ctx, reg.Host+"/silent/img:1", "x86_64", false, false); err != nil || n != 0 {
			t.Fatalf("Remove of a tag sharing its content = %d, %v; want 0", n, err)
		}
		if n, err := rt.Remove(ctx, reg.Host+"/silent/img:1-arm64", "aarch64", false, false); err != nil || n != imgs[0].Size {
			t.Fatalf("Remove of the last tag = %d, %v; want %d", n, err, imgs[0].Size)
		}
	})

	t.Run("BadReferences", func(t *testing.T) {
		rt := newContainerdRuntime(t, sock, "bad")
		for _, ref := range []string{"", "index.docker.io/UPPER/case:1", "not/qualified:1", reg.Host + "/a b:1", "x@sha256:zz"} {
			if _, err := rt.Pull(context.Background(), ref, "x86_64"); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("Pull(%q) = %v, want EINVALID", ref, err)
			}
			if _, err := rt.Remove(context.Background(), ref, "x86_64", false, false); imaged.ErrorCode(err) != imaged.EINVALID {
				t.Errorf("Remove(%q) = %v, want EINVALID", ref, err)
			}
		}
	})
}

func TestNewContainerdRuntimeErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := agent.NewContainerdRuntime(ctx, agent.ContainerdOptions{Address: "/nonexistent", Namespace: "bad/ns"}); imaged.ErrorCode(err) != imaged.EINVALID {
		t.Errorf("bad namespace = %v, want EINVALID", err)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := agent.NewContainerdRuntime(ctx, agent.ContainerdOptions{Address: sock})
	if imaged.ErrorCode(err) != imaged.EUNAVAILABLE || !strings.Contains(err.Error(), sock) {
		t.Errorf("no daemon = %v, want EUNAVAILABLE naming the socket", err)
	}
}
