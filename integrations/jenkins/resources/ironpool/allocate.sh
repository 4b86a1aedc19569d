# withIronpool's allocate step, run by Jenkins as `sh -xe`. Input, from the
# environment: IRONPOOL_OWNER; IRONPOOL_FLAVORS (NAME=COUNT, space-separated);
# IRONPOOL_CONSTRAINTS (space-separated); IRONPOOL_TTL; IRONPOOL_WAIT;
# IRONPOOL_ENV_FILE, where the KEY=VALUE lines for withEnv are written
# (atomically, mode 0600). exec: an abort's SIGTERM reaches the CLI, which
# cancels its queued request before exiting.
set -f
set --
for f in $IRONPOOL_FLAVORS; do set -- "$@" --flavor "$f"; done
for c in $IRONPOOL_CONSTRAINTS; do set -- "$@" --constraint "$c"; done
exec ironpool allocate --owner "$IRONPOOL_OWNER" "$@" ${IRONPOOL_TTL:+--ttl "$IRONPOOL_TTL"} \
    ${IRONPOOL_WAIT:+--wait "$IRONPOOL_WAIT"} -o dotenv --env-file "$IRONPOOL_ENV_FILE"
