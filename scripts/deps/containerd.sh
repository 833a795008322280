# shellcheck shell=bash
# Sourced by scripts/install-test-deps.sh (which defines have and
# apt_install): installs Debian's containerd (1.6), the real daemon the
# node agent's containerd runtime is tested against. No system service is
# started (apt_install's policy-rc.d); the tests run their own
# `containerd --config <tmp>/config.toml` with root, state and sockets in a
# temp dir, the CRI plugin off and the native snapshotter. runc comes
# along as a dependency (unused: the tests run no containers).
# Idempotent; never exits.
containerd_dep_install() {
  have containerd && return 0
  echo "install-test-deps: installing containerd"
  apt_install containerd || {
    echo "install-test-deps: could not install containerd (containerd-runtime agent tests will skip, or fail under CI=true)" >&2
    return 1
  }
}
containerd_dep_install
