#!/usr/bin/env bash
# stop.sh — stop the Ironic started by start.sh, by its saved PID.
#
# Usage: stop.sh [STATE_DIR] [--purge]
#   STATE_DIR (or $IRONIC_STANDALONE_DIR): the directory given to / printed by
#   start.sh. --purge also deletes that directory afterwards.
# Only the PID in STATE_DIR/ironic.pid is signalled, and only if that process
# is really `ironic --config-file STATE_DIR/ironic.conf` (guards against PID reuse).
set -euo pipefail

log() { printf '[ironic-stop] %s\n' "$*" >&2; }

PURGE=0
STATE_DIR=""
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    *) STATE_DIR=$a ;;
  esac
done
STATE_DIR=${STATE_DIR:-${IRONIC_STANDALONE_DIR:-}}
[ -n "$STATE_DIR" ] || { log "usage: stop.sh STATE_DIR [--purge]"; exit 2; }
[ -d "$STATE_DIR" ] || { log "no such dir: $STATE_DIR"; exit 1; }
STATE_DIR=$(cd "$STATE_DIR" && pwd)
PIDFILE="$STATE_DIR/ironic.pid"

if [ -f "$PIDFILE" ]; then
  PID=$(cat "$PIDFILE")
  if kill -0 "$PID" 2>/dev/null; then
    CMD=$(tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null || true)
    case "$CMD" in
      *ironic*"$STATE_DIR/ironic.conf"*)
        log "stopping ironic PID $PID (SIGTERM)"
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 80); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$PID" 2>/dev/null; then
          log "still alive after 20s, SIGKILL $PID"
          kill -KILL "$PID" 2>/dev/null || true
        fi
        ;;
      *)
        log "PID $PID is not this Ironic ($CMD); not touching it"
        ;;
    esac
  else
    log "PID $PID not running"
  fi
  rm -f "$PIDFILE"
else
  log "no PID file in $STATE_DIR (not running?)"
fi

if [ "$PURGE" = 1 ]; then
  rm -rf -- "$STATE_DIR"
  log "removed $STATE_DIR"
fi
