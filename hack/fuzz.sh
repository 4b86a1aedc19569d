#!/usr/bin/env bash
# Random exploration for every fuzz target: `make fuzz` (FUZZTIME per
# target, default 60s). `make test` does not explore: it runs each target's
# seed corpus and every regression input saved under testdata/fuzz, which
# keeps CI deterministic. A failure found here is saved under testdata/fuzz;
# commit it with the fix so it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
for target in $(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | awk '{print $2}' | sort -u); do
  pkg=$(dirname "$(grep -rlE "^func ${target}\(" --include='*_test.go' . | head -1)")
  echo "-- $target ($pkg, $fuzztime)"
  out=$(go test -run XXX -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1) || { echo "$out" | grep -v '^fuzz: elapsed'; exit 1; }
  echo "$out" | tail -1
done
