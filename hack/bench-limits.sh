#!/usr/bin/env bash
# The figures of docs/PERFORMANCE.md's "limits" sections in one go, each
# with the floor (a trivial JSON handler, same clients) measured in the same
# invocation, so ratios compare across a loaded machine:
#   1. 10k nodes, 32 clients, with the floor
#   2. lease churn: 10k leases expiring during the load, against no churn
#   3. pool size: 10k, 100k and 1M nodes, server in a process of its own (RSS)
#   4. seeding: bulk against the HTTP import, 100k nodes
#   5. Ironic's allocation API as a peer, if IRONIC_URL is set
# Usage: hack/bench-limits.sh [DURATION]   (not niced: the machine is shared,
# the load average is printed with every figure)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
go build -o bin/ironpool ./cmd/ironpool
run() { echo "-- ironpool bench $*"; bin/ironpool bench "$@" 2>/dev/null; echo; }
run --nodes 10000 --clients 32 --duration "$dur" --floor
run --nodes 10000 --clients 32 --duration "$dur" --floor --churn
for n in 10000 100000 1000000; do
  run --nodes "$n" --clients 32 --duration "$dur" --floor --server-process
done
run --nodes 100000 --clients 32 --duration 1s --seed bulk
run --nodes 100000 --clients 32 --duration 1s --seed api
if [ -n "${IRONIC_URL:-}" ]; then
  run --nodes 50 --clients 32 --duration "$dur" --floor --peer "ironic=$IRONIC_URL"
fi
