#!/usr/bin/env bash
# One run of every figure in docs/PERFORMANCE.md, on this machine, so the
# ratios between them are comparable: HTTP end to end on SQLite, on
# PostgreSQL with one and with three replicas, and the store-level
# benchmarks with their raw-SQLite peer. Usage: hack/bench.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
go build -o bin/ironpool ./cmd/ironpool
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { echo "-- $*"; bin/ironpool bench "$@" 2>/dev/null; }
run --nodes 10000 --clients 16 --duration "$dur" --sqlite-synchronous full
run --nodes 10000 --clients 16 --duration "$dur" --sqlite-synchronous normal
if pg_isready -q -h 127.0.0.1 -p 5432; then
  for r in 1 3; do
    db="ironpool_bench_$$_$r"
    psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
    run --nodes 10000 --clients 16 --duration "$dur" --replicas "$r" --db "postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
    psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
  done
else
  echo "-- PostgreSQL: skipped (nothing answers on 127.0.0.1:5432)"
fi
echo "-- store level (allocate+release pair), 1k vs 100k nodes, and the raw SQLite write transaction"
go test -run XXX -bench 'StoreAllocate|SQLiteWriteTx' -benchtime 2000x ./internal/bench/ | grep -E '^Benchmark'
echo "-- store level: synchronous=FULL (default) against NORMAL, 1 and 16 callers"
go test -run XXX -bench 'StoreSynchronous' -benchtime 2000x ./internal/bench/ | grep -E '^Benchmark'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
