#!/usr/bin/env bash
# The long form of the Jepsen-style campaign (make soak): a million client
# operations by default, half against one SQLite server and half against
# three PostgreSQL replicas, with kill -9, leader pauses, a fault proxy to
# PostgreSQL, restarts and crashes of a PostgreSQL the campaign starts for
# itself (initdb, pg_ctl; never the machine's shared one), clock jumps of a
# replica (the soakclock build) and (as root) a full disk. The CI form is the same test with
# 50,000 operations (hack/test.sh). See docs/RELIABILITY.md, "Campaign".
#
#   IRONPOOL_SOAK_OPS=300000 bash hack/soak.sh      # a shorter run
#   IRONPOOL_SOAK_REPORT=/tmp/soak.json              # the figures as JSON
#
# Loopback only; it stops by itself when the operations are done (or after
# two hours per target), and ends only the servers it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export IRONPOOL_SOAK_OPS="${IRONPOOL_SOAK_OPS:-1000000}"
if [ -z "${IRONPOOL_TEST_POSTGRES:-}" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export IRONPOOL_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
fi
if [ -z "${IRONPOOL_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "soak: no initdb and no PostgreSQL on 127.0.0.1:5432 (set IRONPOOL_TEST_POSTGRES); the PostgreSQL half will report itself skipped" >&2
fi
exec go test -count=1 -run '^TestCampaign$' -timeout 5h -v ./internal/soak/
