#!/usr/bin/env bash
# start.sh — install (Debian packages), configure and start a REAL OpenStack
# Ironic (Debian 12 "bookworm" ships Ironic 21.4.x = 2023.1 "Antelope") as ONE
# process on 127.0.0.1, for ironpool's integration tests and as a performance peer.
#
#   * all-in-one `ironic` executable (API + conductor in one process),
#     rpc_transport=none  -> no RabbitMQ, no json-rpc, no second process
#   * auth_strategy=noauth  -> no Keystone
#   * SQLite database       -> no MySQL/PostgreSQL server
#   * dhcp_provider=none, network_interface=noop -> no Neutron; no Glance needed
#     for the fake deploy interface
#   * hardware types: fake-hardware (every interface = fake by default for that
#     type), plus ipmi and redfish (they load; they need a reachable BMC to work)
#
# Usage:
#   hack/ironic/start.sh STATE_DIR
#   STATE_DIR (or $IRONIC_STANDALONE_DIR) holds config, SQLite DB, logs, PID and
#   an `env` file. Default: a new directory from `mktemp -d`.
#   Stop with hack/ironic/stop.sh STATE_DIR [--purge].
#
# Environment knobs (all optional):
#   IRONIC_PORT             API port on 127.0.0.1 (default 6385)
#   IRONIC_HW_TYPES         enabled_hardware_types (default fake-hardware,ipmi,redfish)
#   IRONIC_AUTOMATED_CLEAN  true|false (default true; fake cleaning takes ~50 ms)
#   IRONIC_DEBUG            true|false (default false; true = very chatty log)
#   IRONIC_FAKE_DELAY       e.g. "0.5" or "0.2,1.5": seconds the fake power/boot/deploy/
#                           management/inspect interfaces sleep per call (default: none)
#   IRONIC_EXTRA_CONF       path of an ini snippet appended verbatim to ironic.conf
#   IRONIC_BASIC_AUTH       USER:PASSWORD: auth_strategy=http_basic with that one user
#                           (bcrypt htpasswd written into STATE_DIR) instead of noauth
#   IRONIC_SKIP_INSTALL=1   never call apt-get (fail if Ironic is missing)
#   IRONIC_START_TIMEOUT    seconds to wait for the API (default 60)
#
# Works as root without a TTY (CI=true): apt runs non-interactively, debconf is
# preseeded, and `apt-get update` runs only when the install fails without it
# (stale or empty package lists), so warm machines do not pay for it.
#
# On success prints the endpoint (one line on stdout; all chatter goes to
# stderr), writes STATE_DIR/env (IRONIC_URL=..., IRONIC_PID=...) and
# STATE_DIR/ironic.pid. Exit status is non-zero on any failure.
set -euo pipefail

log() { printf '[ironic-start] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

STATE_DIR=${1:-${IRONIC_STANDALONE_DIR:-}}
if [ -z "$STATE_DIR" ]; then
  STATE_DIR=$(mktemp -d -t ironic-standalone.XXXXXX)
fi
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)

PORT=${IRONIC_PORT:-6385}
HW_TYPES=${IRONIC_HW_TYPES:-fake-hardware,ipmi,redfish}
AUTO_CLEAN=${IRONIC_AUTOMATED_CLEAN:-true}
DEBUG=${IRONIC_DEBUG:-false}
START_TIMEOUT=${IRONIC_START_TIMEOUT:-60}
URL="http://127.0.0.1:${PORT}"

case "$PORT" in ''|*[!0-9]*) die "IRONIC_PORT=$PORT is not a port number" ;; esac

# ---------------------------------------------------------------- 1. install
# python3-ironic = the Python code; ironic-common = /usr/bin/ironic (all-in-one),
# ironic-dbsync, and pulls ipmitool + sqlite3. We deliberately do NOT install
# ironic-api / ironic-conductor: those only add systemd units and pull daemons
# (tftpd-hpa, xinetd, open-iscsi ...). --no-install-recommends keeps it at ~187
# packages / ~170 MiB.
PKGS=()
if ! command -v ironic >/dev/null 2>&1 || ! command -v ironic-dbsync >/dev/null 2>&1; then
  PKGS+=(python3-ironic ironic-common)
fi
command -v curl >/dev/null 2>&1 || PKGS+=(curl)
if [ "${#PKGS[@]}" -gt 0 ]; then
  [ "${IRONIC_SKIP_INSTALL:-0}" = 1 ] && die "missing ${PKGS[*]} and IRONIC_SKIP_INSTALL=1"
  command -v apt-get >/dev/null 2>&1 || die "missing ${PKGS[*]} and no apt-get to install them"
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    # -n: never prompt; without a TTY a password prompt would hang CI.
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
      || die "need root (or password-less sudo) to apt-get install ${PKGS[*]}"
    SUDO=(sudo -n)
  fi
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get
       -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
       -o Dpkg::Options::=--force-confold)
  # ironic-common's debconf would otherwise offer to configure a DB via dbconfig-common.
  echo "ironic-common ironic/configure_db boolean false" | "${SUDO[@]}" debconf-set-selections
  log "installing ${PKGS[*]} (apt) ..."
  if ! "${APT[@]}" install --no-install-recommends "${PKGS[@]}" \
        >"$STATE_DIR/apt-install.log" 2>&1 </dev/null; then
    log "install failed; running apt-get update and retrying once"
    "${APT[@]}" update >>"$STATE_DIR/apt-install.log" 2>&1 </dev/null \
      || { tail -20 "$STATE_DIR/apt-install.log" >&2; die "apt-get update failed"; }
    "${APT[@]}" install --no-install-recommends "${PKGS[@]}" \
        >>"$STATE_DIR/apt-install.log" 2>&1 </dev/null \
      || { tail -20 "$STATE_DIR/apt-install.log" >&2; die "apt-get install ${PKGS[*]} failed"; }
  fi
  command -v ironic >/dev/null 2>&1 || die "installed, but no ironic executable on PATH"
fi

# ---------------------------------------------------------------- 2. refuse double start
if [ -f "$STATE_DIR/ironic.pid" ] && kill -0 "$(cat "$STATE_DIR/ironic.pid")" 2>/dev/null; then
  die "already running with PID $(cat "$STATE_DIR/ironic.pid") (state dir $STATE_DIR)"
fi
if curl -s -o /dev/null -m 2 "$URL/" 2>/dev/null; then
  die "something already answers on $URL (choose another IRONIC_PORT)"
fi

# ---------------------------------------------------------------- 3. config
mkdir -p "$STATE_DIR"/{log,lock,tmp,httpboot,tftpboot/master_images,images,master_images}
CONF="$STATE_DIR/ironic.conf"
AUTH_STRATEGY=noauth
CURL_AUTH=()
if [ -n "${IRONIC_BASIC_AUTH:-}" ]; then
  case "$IRONIC_BASIC_AUTH" in *:*) ;; *) die "IRONIC_BASIC_AUTH must be USER:PASSWORD" ;; esac
  AUTH_STRATEGY=http_basic
  # Ironic checks the file with bcrypt; Debian's python3-bcrypt comes with it.
  IRONIC_BASIC_AUTH="$IRONIC_BASIC_AUTH" /usr/bin/python3 -c '
import bcrypt, os
user, pw = os.environ["IRONIC_BASIC_AUTH"].split(":", 1)
print(user + ":" + bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode())' >"$STATE_DIR/htpasswd" \
    || die "cannot write the htpasswd file (python3-bcrypt missing?)"
  chmod 600 "$STATE_DIR/htpasswd"
  CURL_AUTH=(-u "$IRONIC_BASIC_AUTH")
fi
cat >"$CONF" <<EOF
# Generated by hack/ironic/start.sh — standalone Ironic on loopback.
[DEFAULT]
auth_strategy = ${AUTH_STRATEGY}
http_basic_auth_user_file = ${STATE_DIR}/htpasswd
# API and conductor in one process; no message bus, no json-rpc.
rpc_transport = none
host = ironic-standalone
enabled_hardware_types = ${HW_TYPES}
# Enable fake + the real interfaces used by ipmi/redfish. Do NOT set global
# default_<x>_interface = fake: ipmi/redfish do not support "fake" and the
# conductor then refuses to start ("no default value found for raid interface").
# fake-hardware lists fake first, so new fake-hardware nodes get fake anyway.
enabled_bios_interfaces = fake,no-bios,redfish
enabled_boot_interfaces = fake,pxe,ipxe,redfish-virtual-media
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake,direct,ramdisk
enabled_inspect_interfaces = fake,no-inspect,redfish
enabled_management_interfaces = fake,ipmitool,redfish
enabled_network_interfaces = noop
enabled_power_interfaces = fake,ipmitool,redfish
enabled_raid_interfaces = fake,no-raid,agent,redfish
enabled_rescue_interfaces = fake,no-rescue
enabled_storage_interfaces = noop,fake
enabled_vendor_interfaces = fake,no-vendor,ipmitool,redfish
default_network_interface = noop
default_storage_interface = noop
# do not throttle on "low memory" heuristics in CI
minimum_memory_warning_only = true
tempdir = ${STATE_DIR}/tmp
log_dir = ${STATE_DIR}/log
log_file = ironic.log
use_stderr = false
debug = ${DEBUG}

[api]
host_ip = 127.0.0.1
port = ${PORT}

[database]
connection = sqlite:///${STATE_DIR}/ironic.sqlite

[dhcp]
dhcp_provider = none

[conductor]
automated_clean = ${AUTO_CLEAN}

# The ipxe/pxe boot interfaces write files at load time; keep them in STATE_DIR
# (default /httpboot and /tftpboot make the conductor die at start-up).
[deploy]
http_root = ${STATE_DIR}/httpboot
http_url = http://127.0.0.1:8088

[pxe]
tftp_root = ${STATE_DIR}/tftpboot
tftp_master_path = ${STATE_DIR}/tftpboot/master_images
images_path = ${STATE_DIR}/images
instance_master_path = ${STATE_DIR}/master_images

[oslo_concurrency]
lock_path = ${STATE_DIR}/lock
EOF
if [ -n "${IRONIC_FAKE_DELAY:-}" ]; then
  cat >>"$CONF" <<EOF

[fake]
power_delay = ${IRONIC_FAKE_DELAY}
boot_delay = ${IRONIC_FAKE_DELAY}
deploy_delay = ${IRONIC_FAKE_DELAY}
management_delay = ${IRONIC_FAKE_DELAY}
inspect_delay = ${IRONIC_FAKE_DELAY}
EOF
fi
if [ -n "${IRONIC_EXTRA_CONF:-}" ]; then
  [ -r "$IRONIC_EXTRA_CONF" ] || die "IRONIC_EXTRA_CONF=$IRONIC_EXTRA_CONF not readable"
  { echo; cat "$IRONIC_EXTRA_CONF"; } >>"$CONF"
fi

# ---------------------------------------------------------------- 4. database
# create_schema on a fresh DB (fast path), upgrade on an existing one.
cd "$STATE_DIR"
if [ ! -s "$STATE_DIR/ironic.sqlite" ]; then
  ironic-dbsync --config-file "$CONF" create_schema >"$STATE_DIR/log/dbsync.log" 2>&1 </dev/null \
    || { tail -20 "$STATE_DIR/log/dbsync.log" >&2; die "ironic-dbsync create_schema failed"; }
fi
ironic-dbsync --config-file "$CONF" upgrade >>"$STATE_DIR/log/dbsync.log" 2>&1 </dev/null \
  || { tail -20 "$STATE_DIR/log/dbsync.log" >&2; die "ironic-dbsync upgrade failed"; }

# ---------------------------------------------------------------- 5. start
# --config-file alone => /etc/ironic/ironic.conf from the package is NOT read.
# stop.sh stops it by the PID saved here (checking its command line first).
nohup ironic --config-file "$CONF" >"$STATE_DIR/log/stdout.log" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$STATE_DIR/ironic.pid"
log "started ironic PID $PID, waiting for $URL ..."

# ---------------------------------------------------------------- 6. wait
# Ready = API answers AND the conductor registered its hardware types. Gotcha:
# when the conductor fails to start (bad interface config) the process may hang
# instead of exiting, so also watch the log for the failure line.
fail_start() {
  kill "$PID" 2>/dev/null || true
  rm -f "$STATE_DIR/ironic.pid"
  die "$*"
}
deadline=$(( $(date +%s) + START_TIMEOUT ))
while :; do
  if ! kill -0 "$PID" 2>/dev/null; then
    tail -30 "$STATE_DIR/log/ironic.log" "$STATE_DIR/log/stdout.log" >&2 || true
    rm -f "$STATE_DIR/ironic.pid"
    die "ironic exited during start-up (see $STATE_DIR/log)"
  fi
  if grep -qE 'Failed to register hardware types|Error starting thread' "$STATE_DIR/log/ironic.log" 2>/dev/null; then
    grep -E 'ERROR' "$STATE_DIR/log/ironic.log" | tail -5 >&2 || true
    fail_start "conductor failed to start (see $STATE_DIR/log/ironic.log)"
  fi
  if curl -sf -m 2 "${CURL_AUTH[@]}" -H 'X-OpenStack-Ironic-API-Version: latest' "$URL/v1/drivers" 2>/dev/null \
       | grep -q '"fake-hardware"\|"ipmi"\|"redfish"'; then
    break
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    fail_start "timed out after ${START_TIMEOUT}s waiting for $URL"
  fi
  sleep 0.2
done

MAXV=$(curl -s -m 2 "$URL/" | sed -n 's/.*"version": *"\([0-9.]*\)".*/\1/p' | head -1)
cat >"$STATE_DIR/env" <<EOF
IRONIC_URL=$URL
IRONIC_API_MAX_VERSION=$MAXV
IRONIC_PID=$PID
IRONIC_STANDALONE_DIR=$STATE_DIR
EOF
log "ready: $URL (API max microversion $MAXV), state dir $STATE_DIR"
echo "$URL"
