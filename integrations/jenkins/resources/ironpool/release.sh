# withIronpool's release step (in finally), run by Jenkins as `sh -xe`:
# releases everything IRONPOOL_OWNER holds or has queued, retrying
# connection errors, and removes the env file with the BMC passwords.
rm -f "$IRONPOOL_ENV_FILE"
exec ironpool release --owner "$IRONPOOL_OWNER"
