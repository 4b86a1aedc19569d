#!/bin/sh
# Stops the service on removal; the state (/var/lib/ironpool) is kept.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl disable --now ironpool.service >/dev/null 2>&1 || true
fi
