# shellcheck shell=bash
# Sourced by scripts/install-test-deps.sh (which defines have): installs
# versitygw, an S3-compatible gateway over a directory, for blob/s3's tests
# (and cmd/imaged's s3 store test). `go install` puts it in
# $(go env GOPATH)/bin, where blob/s3/s3test looks besides PATH; the tests
# start it themselves on a free loopback port. Idempotent and quick when
# v1.8.0 is already there; never exits.
versitygw_dep_install() {
  local want=v1.8.0 bin
  have go || { echo "install-test-deps: no go, cannot install versitygw" >&2; return 1; }
  bin=$(command -v versitygw 2>/dev/null || echo "$(go env GOPATH)/bin/versitygw")
  if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$want([[:space:]]|$)"; then
    return 0
  fi
  echo "install-test-deps: installing versitygw $want (go install, a few minutes)"
  go install "github.com/versity/versitygw/cmd/versitygw@$want" || {
    echo "install-test-deps: could not install versitygw (blob/s3 tests will skip, or fail under CI=true)" >&2
    return 1
  }
}
versitygw_dep_install
