#!/usr/bin/env bash
# ipmi-sim.sh — a simulated IPMI BMC on loopback (OpenIPMI's ipmi_sim, Debian
# package "openipmi"), so Ironic's `ipmi` hardware type + ipmitool can be tested
# without hardware. Power / boot-device state lives in plain files in STATE_DIR.
#
# Usage:
#   ipmi-sim.sh start [STATE_DIR]   -> prints "127.0.0.1 PORT USER PASSWORD"
#   ipmi-sim.sh stop  STATE_DIR     -> kills the saved ipmi_sim PID
# Env: IPMI_SIM_PORT (default 6230), IPMI_SIM_USER (admin), IPMI_SIM_PASSWORD (password)
#
# Ironic node for it (driver_info):
#   {"ipmi_address":"127.0.0.1","ipmi_port":6230,"ipmi_username":"admin",
#    "ipmi_password":"password","ipmi_cipher_suite":3}
# ipmi_cipher_suite=3 matters: ipmitool's default suite 17 is not supported by
# ipmi_sim, and the fallback costs ~10 s per ipmitool call.
set -euo pipefail
cmd=${1:-}
STATE_DIR=${2:-${IPMI_SIM_DIR:-}}
PORT=${IPMI_SIM_PORT:-6230}
USER_=${IPMI_SIM_USER:-admin}
PASS=${IPMI_SIM_PASSWORD:-password}

case "$cmd" in
start)
  if ! command -v ipmi_sim >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "need root to install openipmi" >&2; exit 1; }
    # apt-get update only when the install fails without it (stale lists).
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends openipmi ipmitool </dev/null >/dev/null; }
    apt_install || { DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >/dev/null && apt_install; }
  fi
  [ -n "$STATE_DIR" ] || STATE_DIR=$(mktemp -d -t ipmi-sim.XXXXXX)
  mkdir -p "$STATE_DIR/state"
  STATE_DIR=$(cd "$STATE_DIR" && pwd)
  # chassis_control hook: called as  <script> <mc> get|set|check [parm [val]]...
  # parms: power (0/1), reset, boot (none|pxe|cdrom|bios|default)
  cat >"$STATE_DIR/chassis_control.sh" <<EOF
#!/bin/sh
D="$STATE_DIR"
mc=\$1; op=\$2; shift 2
case "\$op" in
  get) for p in "\$@"; do v=\$(cat "\$D/\$p.state" 2>/dev/null || echo 0); echo "\$p:\$v"; done ;;
  set) while [ \$# -ge 2 ]; do echo "\$2" > "\$D/\$1.state"; echo "\$(date +%T.%N) set \$1=\$2" >> "\$D/chassis.log"; shift 2; done ;;
  check) exit 0 ;;
esac
exit 0
EOF
  chmod +x "$STATE_DIR/chassis_control.sh"
  [ -f "$STATE_DIR/power.state" ] || echo 0 >"$STATE_DIR/power.state"
  cat >"$STATE_DIR/lan.conf" <<EOF
name "simbmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $PORT
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$STATE_DIR/chassis_control.sh 0x20"
  user 2 true "$USER_" "$PASS" admin 10 none md2 md5 straight
EOF
  cat >"$STATE_DIR/sim.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
EOF
  nohup ipmi_sim -c "$STATE_DIR/lan.conf" -f "$STATE_DIR/sim.emu" -s "$STATE_DIR/state" -n \
    >"$STATE_DIR/ipmi_sim.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/ipmi_sim.pid"
  for _ in $(seq 1 40); do
    if ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$PORT" -U "$USER_" -P "$PASS" chassis power status >/dev/null 2>&1; then
      echo "127.0.0.1 $PORT $USER_ $PASS"
      echo "[ipmi-sim] ready, state dir $STATE_DIR, PID $(cat "$STATE_DIR/ipmi_sim.pid")" >&2
      exit 0
    fi
    sleep 0.25
  done
  echo "[ipmi-sim] did not answer; see $STATE_DIR/ipmi_sim.log" >&2
  kill "$(cat "$STATE_DIR/ipmi_sim.pid")" 2>/dev/null || true
  exit 1
  ;;
stop)
  [ -n "$STATE_DIR" ] && [ -f "$STATE_DIR/ipmi_sim.pid" ] || { echo "usage: $0 stop STATE_DIR" >&2; exit 2; }
  PID=$(cat "$STATE_DIR/ipmi_sim.pid")
  CMDLINE=$(tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null || true)
  case "$CMDLINE" in
    *ipmi_sim*"$STATE_DIR/lan.conf"*)
      kill "$PID" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null || true
      ;;
    *) echo "[ipmi-sim] PID $PID is not this ipmi_sim; not touching it" >&2 ;;
  esac
  rm -f "$STATE_DIR/ipmi_sim.pid"
  ;;
*)
  echo "usage: $0 start [STATE_DIR] | stop STATE_DIR" >&2; exit 2 ;;
esac
