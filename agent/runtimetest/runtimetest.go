// Package runtimetest is the conformance suite of agent.Runtime: every
// runtime (dir, docker) runs it against a real registry
// (registry/registrytest) it pulls from over plain HTTP on loopback.
package runtimetest

import (
	"context"
	"testing"
	"time"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/agent"
	"github.com/imaged/imaged/registry/registrytest"
)

// Run runs the suite. host is the registry ("127.0.0.1:port"); rt is a
// runtime with an empty image store, shared by the subtests (which run in
// order and use distinct repositories).
func Run(t *testing.T, host string, rt agent.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := registrytest.Pusher{Host: host}
	single := registrytest.NewImage(t, registrytest.Docker, "amd64", map[string]string{"ai.backend.kernelspec": "1"})
	singleDigest := p.WriteImage(t, "rt/single", "1", single)
	p.WriteImage(t, "rt/shared", "a", single)
	p.WriteImage(t, "rt/shared", "b", single)
	p.PushIndex(t, "rt/multi", "1", []string{"amd64", "arm64"}, nil)
	p.PushImage(t, "rt/noprune", "1", "amd64", nil)
	ref := func(repo, tag string) string { return host + "/" + repo + ":" + tag }

	holds := func(t *testing.T, r, arch string) bool {
		t.Helper()
		imgs, err := rt.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, im := range imgs {
			if im.Reference == r && im.Architecture == arch {
				return true
			}
		}
		return false
	}
	wantCode := func(t *testing.T, err error, code string) {
		t.Helper()
		if imaged.ErrorCode(err) != code {
			t.Fatalf("error = %v (code %q), want %q", err, imaged.ErrorCode(err), code)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		imgs, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 0 {
			t.Fatalf("a fresh runtime lists %v", imgs)
		}
		_, err = rt.Remove(ctx, ref("rt/single", "1"), "x86_64", false, false)
		wantCode(t, err, imaged.ENOTFOUND)
	})

	t.Run("PullListRemove", func(t *testing.T) {
		r := ref("rt/single", "1")
		for i := 0; i < 2; i++ { // a second pull is idempotent
			got, err := rt.Pull(ctx, r, "amd64")
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if got.Reference != r || got.Architecture != "x86_64" || got.Size <= 0 || got.Digest != singleDigest {
				t.Fatalf("Pull = %+v, want %s x86_64 digest %s and a size", got, r, singleDigest)
			}
		}
		imgs, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, im := range imgs {
			if im.Reference == r {
				n++
				if im.Architecture != "x86_64" || im.Size <= 0 || im.Digest != singleDigest {
					t.Fatalf("listed %+v", im)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%s listed %d times: %v", r, n, imgs)
		}
		_, err = rt.Remove(ctx, r, "aarch64", false, false)
		wantCode(t, err, imaged.ENOTFOUND)
		freed, err := rt.Remove(ctx, r, "x86_64", false, false)
		if err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if freed <= 0 {
			t.Fatalf("Remove freed %d bytes", freed)
		}
		if holds(t, r, "x86_64") {
			t.Fatal("removed image still listed")
		}
		_, err = rt.Remove(ctx, r, "x86_64", false, false)
		wantCode(t, err, imaged.ENOTFOUND)
	})

	t.Run("MultiArch", func(t *testing.T) {
		r := ref("rt/multi", "1")
		got, err := rt.Pull(ctx, r, "arm64")
		if err != nil {
			t.Fatalf("Pull arm64: %v", err)
		}
		if got.Architecture != "aarch64" || !holds(t, r, "aarch64") {
			t.Fatalf("Pull arm64 = %+v", got)
		}
		if _, err := rt.Remove(ctx, r, "aarch64", false, false); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if holds(t, r, "aarch64") {
			t.Fatal("removed image still listed")
		}
	})

	t.Run("PullMissing", func(t *testing.T) {
		r := ref("rt/nope", "1")
		if _, err := rt.Pull(ctx, r, "amd64"); err == nil {
			t.Fatal("pulling an image the registry lacks succeeded")
		}
		if holds(t, r, "x86_64") {
			t.Fatal("failed pull left an image")
		}
	})

	t.Run("SharedContent", func(t *testing.T) {
		a, b := ref("rt/shared", "a"), ref("rt/shared", "b")
		for _, r := range []string{a, b} {
			if _, err := rt.Pull(ctx, r, "x86_64"); err != nil {
				t.Fatalf("Pull %s: %v", r, err)
			}
		}
		if _, err := rt.Remove(ctx, a, "x86_64", false, false); err != nil {
			t.Fatalf("Remove %s: %v", a, err)
		}
		if holds(t, a, "x86_64") || !holds(t, b, "x86_64") {
			t.Fatal("removing one of two references to the same content removed the wrong one")
		}
		// b is still whole: removing it works and frees its content.
		freed, err := rt.Remove(ctx, b, "x86_64", false, false)
		if err != nil || freed <= 0 {
			t.Fatalf("Remove %s = %d, %v", b, freed, err)
		}
	})

	t.Run("NoPrune", func(t *testing.T) {
		r := ref("rt/noprune", "1")
		if _, err := rt.Pull(ctx, r, "x86_64"); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Remove(ctx, r, "x86_64", true, true); err != nil {
			t.Fatalf("Remove force noprune: %v", err)
		}
		if holds(t, r, "x86_64") {
			t.Fatal("removed image still listed")
		}
	})
}
