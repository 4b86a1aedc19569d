#!/bin/sh
# Creates the system user the unit runs as, then (re)starts the service
# when systemd is running. The state directory is made by systemd
# (StateDirectory=), so nothing else is created here.
set -e
if ! getent passwd ironpool >/dev/null; then
    adduser --system --group --home /var/lib/ironpool --no-create-home --shell /usr/sbin/nologin ironpool >/dev/null 2>&1 ||
        useradd --system --user-group --home-dir /var/lib/ironpool --shell /usr/sbin/nologin ironpool
fi
chgrp ironpool /etc/ironpool/config.yaml 2>/dev/null || true
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl enable ironpool.service >/dev/null 2>&1 || true
    systemctl try-restart ironpool.service >/dev/null 2>&1 || true
fi
