// Post step (post-if: always()): release whatever the job's owner holds or
// still has queued. Release is idempotent and retries connection errors.
'use strict';
const { run } = require('./lib.js');

async function post() {
  const owner = process.env.STATE_owner;
  if (!owner) {
    console.log('ironpool: the main step saved no owner; nothing to release');
    return;
  }
  const code = await run(['release', '--owner', owner]);
  if (code !== 0) {
    console.log(`::warning::ironpool release --owner ${owner} failed (exit ${code}); its lease will still expire`);
    process.exitCode = code;
  }
}

post().catch((err) => {
  console.log(`::error::${err.message}`);
  process.exitCode = 1;
});
