#!/usr/bin/env bash
# Every test of ironpool: vet, gofmt, the Go suites with the race detector
# (SQLite always; PostgreSQL, a real Ironic and a real Chromium for the
# dashboard as this machine provides them, each reported as skipped with the
# reason otherwise), the fuzz corpora, and the Python Molten Iron client.
# `make test` and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "go vet"
go vet ./...

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi

# PostgreSQL: the project's machines run PostgreSQL 15 on 127.0.0.1:5432.
# Start it if it is installed but down; the PostgreSQL tests skip (saying
# why) only when none can be had.
if [ -z "${IRONPOOL_TEST_POSTGRES:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    step "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    export IRONPOOL_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
  else
    echo "note: no PostgreSQL on 127.0.0.1:5432; PostgreSQL tests will report themselves skipped"
  fi
fi

# The Ironic tests start a real standalone Ironic with hack/ironic/start.sh
# (installing Debian's packages on first use). Install it up front so the
# package download does not count against one test's timeout.
if ! command -v ironic >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "installing Ironic (Debian packages)"
  d=$(mktemp -d)
  if IRONIC_PORT=16385 bash hack/ironic/start.sh "$d" >/dev/null; then bash hack/ironic/stop.sh "$d" --purge >/dev/null 2>&1 || true; fi
fi

# The dashboard test drives the page in a real headless Chromium. Install
# Debian's package when it is missing and we may (root with apt-get); the
# test reports itself skipped, saying why, when no Chromium can be had.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "installing Chromium (Debian package) for the dashboard test"
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/tmp/ironpool-chromium-apt.log 2>&1; }
  apt_install || { apt-get update -q >/dev/null 2>&1 && apt_install; } || echo "note: could not install Chromium; the browser test will report itself skipped"
fi

# The direct-BMC tests talk to real clients and BMCs from Debian:
# OpenIPMI's ipmi_sim with ipmitool as a second client, and python3-sushy
# (Ironic's Redfish library) and redfishtool, which check the project's own
# Redfish simulator. Under CI=true those tests fail when a part is missing.
need=()
command -v ipmi_sim >/dev/null 2>&1 || need+=(openipmi)
command -v ipmitool >/dev/null 2>&1 || need+=(ipmitool)
command -v redfishtool >/dev/null 2>&1 || need+=(redfishtool)
/usr/bin/python3 -c 'import sushy' >/dev/null 2>&1 || need+=(python3-sushy)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "installing ${need[*]} (Debian packages) for the BMC tests"
  bmc_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${need[@]}" >/tmp/ironpool-bmc-apt.log 2>&1; }
  bmc_install || { apt-get update -q >/dev/null 2>&1 && bmc_install; } || echo "note: could not install ${need[*]}; the BMC tests will report themselves skipped (or fail under CI=true)"
fi

# The dashboard test checks every page for accessibility with axe-core,
# which it injects into the page itself (the served pages never load it).
# It comes from npm into a cache outside the repository; the test reports
# its accessibility check skipped, saying why, when it cannot be had.
AXE_DIR="${HOME}/.cache/ironpool/axe"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing npm (Debian package) to fetch axe-core"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/tmp/ironpool-npm-apt.log 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >>/tmp/ironpool-npm-apt.log 2>&1; } || true
  fi
  if command -v npm >/dev/null 2>&1; then
    step "installing axe-core (npm) for the dashboard's accessibility check"
    mkdir -p "$AXE_DIR"
    (cd "$AXE_DIR" && npm install --no-audit --no-fund --silent axe-core@4 >/tmp/ironpool-axe-npm.log 2>&1) ||
      echo "note: could not install axe-core; the accessibility check will report itself skipped"
  fi
fi

# The OpenAPI lint test runs Redocly's CLI from npm, installed into a cache
# outside the repository; the test reports itself skipped when it is missing.
REDOCLY_DIR="${HOME}/.cache/ironpool/redocly"
if [ ! -x "$REDOCLY_DIR/node_modules/.bin/redocly" ] && command -v npm >/dev/null 2>&1; then
  step "installing @redocly/cli (npm) for the OpenAPI lint"
  mkdir -p "$REDOCLY_DIR"
  (cd "$REDOCLY_DIR" && npm install --no-audit --no-fund --silent @redocly/cli@2.77.0 >/tmp/ironpool-redocly-npm.log 2>&1) ||
    echo "note: could not install @redocly/cli; the OpenAPI lint will report itself skipped"
fi

# The container image test builds packaging/Containerfile with Debian's
# buildah; systemd-analyze (package systemd) checks the unit; promtool
# (package prometheus) lints /metrics. Each test
# report themselves skipped, saying why, when the tool cannot be had.
for pkg in buildah:buildah systemd-analyze:systemd dpkg-deb:dpkg promtool:prometheus; do
  tool=${pkg%%:*} deb=${pkg#*:}
  if ! command -v "$tool" >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing $deb (Debian package) for the packaging tests"
    apt_pkg() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "$deb" >"/tmp/ironpool-$deb-apt.log" 2>&1; }
    apt_pkg || { apt-get update -q >/dev/null 2>&1 && apt_pkg; } || echo "note: could not install $deb; its packaging test will report itself skipped"
  fi
done

# The CI recipes' tests (internal/cli/recipes_test.go) run the Zuul role with
# Debian's ansible-playbook and the GitHub action with node. Install what is
# missing when we may; each test reports itself skipped, saying why, when its
# tool cannot be had.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=""
  command -v ansible-playbook >/dev/null 2>&1 || pkgs="$pkgs ansible-core"
  command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
  if [ -n "$pkgs" ]; then
    step "installing$pkgs (Debian packages) for the CI recipe tests"
    rec_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/tmp/ironpool-recipes-apt.log 2>&1; }
    rec_install || { apt-get update -q >/dev/null 2>&1 && rec_install; } || echo "note: could not install$pkgs; those recipe tests will report themselves skipped"
  fi
fi

step "go test -race ./..."
go test -race -count=1 -timeout 25m ./...

# The campaign's CI form: 50,000 client operations against one SQLite
# server and three PostgreSQL replicas (on a PostgreSQL the campaign starts
# itself, so it can restart and crash it), with kill -9, leader pauses,
# PostgreSQL restarts, clock jumps and the fault proxy, the history and the
# audit log judged by internal/soak's checker. Real servers
# for a few minutes, so it runs here once rather than inside `go test ./...`
# (where it skips). `make soak` is the long form.
step "soak campaign (CI form, 50,000 operations)"
IRONPOOL_SOAK_OPS="${IRONPOOL_SOAK_OPS:-50000}" go test -count=1 -run '^TestCampaign' -timeout 20m -v ./internal/soak/

# Fuzz targets: `go test` above ran each seed corpus and every regression
# input under testdata/fuzz. Random exploration is `make fuzz` (hack/fuzz.sh):
# it is not part of this run so that CI gives the same answer every time.

if [ -f test/molteniron/run.sh ]; then
  step "Molten Iron protocol with the Python client"
  bash test/molteniron/run.sh
fi
step "all tests passed"
