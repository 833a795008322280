#!/usr/bin/env bash
# Runs every test of imaged (the README's test command; .ci/run runs it too):
# vet, all unit, conformance and end-to-end tests, the race detector on the
# packages with concurrency, and each fuzz target for a short while.
# FUZZTIME=30s scripts/test.sh fuzzes longer; FUZZTIME=0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== go vet"
go vet ./...

echo "== go test"
go test -count=1 ./...

echo "== go test -race (concurrent packages)"
go test -race -count=1 ./auth/... ./sqlstore/... ./catalog/...

fuzztime=${FUZZTIME:-8s}
if [ "$fuzztime" != 0 ]; then
  # Every Fuzz* function in a _test.go file, run alone for $fuzztime.
  grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
    pkg=./$(dirname "${f#./}")
    for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
      echo "== fuzz $pkg $target ($fuzztime)"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
    done
  done
fi
