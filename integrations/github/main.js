// Main step: allocate, then export the nodes to the job's later steps.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { input, lines, defaultOwner, run, appendFile } = require('./lib.js');

async function main() {
  const owner = input('owner') || defaultOwner();
  // Saved first: the post step releases by owner even if this step is
  // cancelled before the allocation is granted.
  appendFile('GITHUB_STATE', `owner=${owner}\n`);
  const args = ['allocate', '--owner', owner];
  for (const f of lines(input('flavors'))) args.push('--flavor', f);
  for (const c of lines(input('constraints'))) args.push('--constraint', c);
  if (input('ttl')) args.push('--ttl', input('ttl'));
  if (input('wait')) args.push('--wait', input('wait'));
  if (process.env.GITHUB_SERVER_URL && process.env.GITHUB_RUN_ID) {
    args.push('--metadata', `job_url=${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}`);
  }
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'ironpool-'));
  const file = path.join(dir, 'ironpool.env');
  args.push('-o', 'dotenv', '--env-file', file);
  const code = await run(args);
  if (code !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`::error::ironpool allocate failed (exit ${code})`);
    process.exitCode = code;
    return;
  }
  const text = fs.readFileSync(file, 'utf8');
  fs.rmSync(dir, { recursive: true, force: true });
  // Mask the passwords in the job log before any step can print them.
  for (const line of text.split('\n')) {
    const m = /^IRONPOOL_NODE_\d+_BMC_PASSWORD=(.+)$/.exec(line);
    if (m) console.log(`::add-mask::${m[1]}`);
  }
  appendFile('GITHUB_ENV', text);
  const id = /^IRONPOOL_ALLOCATION_ID=(.*)$/m.exec(text);
  if (id && process.env.GITHUB_OUTPUT) appendFile('GITHUB_OUTPUT', `allocation-id=${id[1]}\n`);
}

main().catch((err) => {
  console.log(`::error::${err.message}`);
  process.exitCode = 1;
});
