package agent_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/agent/runtimetest"
	"github.com/imaged/imaged/registry/registrytest"
)

func TestDirRuntimeConformance(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	rt, err := agent.NewDirRuntime(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	runtimetest.Run(t, reg.Host, rt)
}

func TestDirRuntimeReopens(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	registrytest.PushImage(t, reg.Host, "re/open", "1", "amd64", nil)
	dir := filepath.Join(t.TempDir(), "cache")
	rt, err := agent.NewDirRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/re/open:1"
	if _, err := rt.Pull(context.Background(), ref, "x86_64"); err != nil {
		t.Fatal(err)
	}
	// A restarted agent finds its cache as it left it.
	rt2, err := agent.NewDirRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := rt2.List(context.Background())
	if err != nil || len(imgs) != 1 || imgs[0].Reference != ref {
		t.Fatalf("reopened cache lists %v, %v", imgs, err)
	}
}

func TestDockerRuntimeConformancePodman(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	host := runtimetest.StartPodman(t, reg.Host)
	rt, err := agent.NewDockerRuntime(host)
	if err != nil {
		t.Fatal(err)
	}
	runtimetest.Run(t, reg.Host, rt)
}

func TestDockerRuntimeFailedPullIsAnError(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.Options{})
	host := runtimetest.StartPodman(t, reg.Host)
	rt, err := agent.NewDockerRuntime(host)
	if err != nil {
		t.Fatal(err)
	}
	// podman answers 200 and reports the failure inside the stream.
	_, err = rt.Pull(context.Background(), reg.Host+"/nothing/here:1", "x86_64")
	if err == nil || !strings.Contains(err.Error(), "nothing/here") {
		t.Fatalf("Pull of a missing image = %v, want an error naming it", err)
	}
}

func TestNewDockerRuntimeRejectsBadHosts(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "ftp://x", "unix://", "tcp://", "::"} {
		if _, err := agent.NewDockerRuntime(h); err == nil {
			t.Errorf("NewDockerRuntime(%q) accepted", h)
		}
	}
}

func TestCanonicalRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ubuntu":                            "index.docker.io/library/ubuntu:latest",
		"lablup/python:3.9":                 "index.docker.io/lablup/python:3.9",
		"docker.io/lablup/python:3.9":       "index.docker.io/lablup/python:3.9",
		"docker.io/library/ubuntu:22.04":    "index.docker.io/library/ubuntu:22.04",
		"127.0.0.1:5055/bai/python:3.9-x":   "127.0.0.1:5055/bai/python:3.9-x",
		"localhost/x/y":                     "localhost/x/y:latest",
		"reg.example.com/a/b@sha256:abc":    "reg.example.com/a/b@sha256:abc",
		"index.docker.io/lablup/python:3.9": "index.docker.io/lablup/python:3.9",
	} {
		if got := agent.CanonicalRef(in); got != want {
			t.Errorf("CanonicalRef(%q) = %q, want %q", in, got, want)
		}
	}
}
