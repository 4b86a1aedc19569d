// Shared by main.js and post.js. No dependencies beyond Node itself, so the
// action needs no npm install: it runs the ironpool CLI, which must be on
// PATH (install it in an earlier step).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');

// input reads an action input the way the runner passes it: INPUT_<NAME>.
function input(name) {
  return (process.env['INPUT_' + name.replace(/ /g, '_').toUpperCase()] || '').trim();
}

function lines(s) {
  return s.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

// defaultOwner names the job uniquely and is recomputed identically by the
// post step, which can therefore release even if main died mid-way.
function defaultOwner() {
  const e = process.env;
  const raw = ['gh', e.GITHUB_REPOSITORY, e.GITHUB_RUN_ID, e.GITHUB_RUN_ATTEMPT, e.GITHUB_JOB].filter(Boolean).join('-');
  return raw.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
}

// ironpoolEnv is the environment for the CLI, with url and token inputs.
function ironpoolEnv() {
  const env = { ...process.env };
  if (input('url')) env.IRONPOOL_URL = input('url');
  if (input('token')) env.IRONPOOL_TOKEN = input('token');
  return env;
}

// run starts ironpool with args and resolves with its exit code. SIGINT and
// SIGTERM (what the runner sends on cancel) are passed on to it, so that it
// cancels its queued request or releases what it holds before exiting.
function run(args) {
  return new Promise((resolve) => {
    const child = spawn('ironpool', args, { stdio: 'inherit', env: ironpoolEnv() });
    const forward = (sig) => () => child.kill(sig);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('error', (err) => {
      console.log(`::error::cannot run ironpool: ${err.message} (is it on PATH?)`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code === null ? 128 + (signal === 'SIGINT' ? 2 : 15) : code);
    });
  });
}

// appendFile adds text to one of the runner's command files.
function appendFile(name, text) {
  const file = process.env[name];
  if (!file) throw new Error(`${name} is not set: not running under a GitHub runner?`);
  fs.appendFileSync(file, text);
}

module.exports = { input, lines, defaultOwner, run, appendFile };
