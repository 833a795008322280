# shellcheck shell=bash
# Sourced by scripts/install-test-deps.sh (which defines have and
# apt_install): installs Debian's podman, the real container engine the
# node agent's docker runtime is tested against (its Docker-compatible API
# service). No system service is started (apt_install's policy-rc.d); the
# tests run `podman system service --time=0 unix://...` themselves with a
# private vfs config in a temp dir. Idempotent; never exits.
podman_dep_install() {
  have podman && return 0
  echo "install-test-deps: installing podman"
  apt_install podman || {
    echo "install-test-deps: could not install podman (docker-runtime agent tests will skip, or fail under CI=true)" >&2
    return 1
  }
}
podman_dep_install
