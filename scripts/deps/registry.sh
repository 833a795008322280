# shellcheck shell=bash
# Sourced by scripts/install-test-deps.sh (which defines have and
# apt_install): installs a real OCI registry for the registry package's
# tests, the Debian docker-registry package (CNCF distribution 2.8.2).
# Its system service is not started (apt_install's policy-rc.d); the tests
# run `docker-registry serve <config>` themselves on a free loopback port.
# Idempotent and silent when the binary is already there; never exits.
registry_dep_install() {
  have docker-registry && return 0
  echo "install-test-deps: installing docker-registry"
  apt_install docker-registry || {
    echo "install-test-deps: could not install docker-registry (registry tests will skip, or fail under CI=true)" >&2
    return 1
  }
}
registry_dep_install
