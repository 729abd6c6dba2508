#!/usr/bin/env node
// What cgroup limits cost per container: create → start → wait → delete of `/probe exit 0`,
// with and without a memory + pids limit, for scratchbox and for crun with the same limits, in
// interleaved batches of one run (and, for scratchbox, also in blocks: a batch without, a batch with). A small script of its own (not a scenario of run.mjs), for
// the cgroup work; run it as root after `npm ci`:  node bench/cgroups.mjs [--runs N] [--batch N]
//
// crun 1.8 refuses a hybrid host: as in run.mjs, it runs inside a private mount namespace with
// /sys/fs/cgroup/unified unmounted there (so it uses the v1 controllers, as scratchbox does here).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { numberArg, ociConfig, repoDir } from './lib/setup.mjs';
import { median, roundOrder } from './lib/stats.mjs';
import { cpuTimes, stealPct } from './lib/steal.mjs';

const RUNS = numberArg('--runs', 300);
const cpu0 = cpuTimes();
const BATCH = numberArg('--batch', 50);
const MiB = 1 << 20;
const LIMITS = { memory: { limit: 64 * MiB }, pids: { limit: 64 } };

const { Container } = await import(path.join(repoDir, 'dist/index.js'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-cgbench-'));
const rootfs = path.join(work, 'rootfs');
fs.mkdirSync(rootfs);
execFileSync('gcc', ['-static', '-O2', '-o', path.join(rootfs, 'probe'), path.join(repoDir, 'test/fixtures/probe.c')]);
const timer = path.join(work, 'timer');
execFileSync('gcc', ['-O2', '-o', timer, path.join(repoDir, 'bench/timer.c')]);

async function lifecycle(resources) {
  const t0 = performance.now();
  const c = await Container.create({ rootfs, args: ['/probe', 'exit', '0'], stdio: 'ignore', ...(resources ? { resources } : {}) });
  await c.start();
  await c.wait();
  await c.delete();
  return performance.now() - t0;
}

// Without and with limits alternate run by run, so that the load of a shared machine falls on
// both alike; the pairs' differences are reported too.
async function sbxBatch(n) {
  const out = { none: [], limits: [], diff: [] };
  for (let i = 0; i < n; i++) {
    const a = await lifecycle(undefined);
    const b = await lifecycle(LIMITS);
    out.none.push(a);
    out.limits.push(b);
    out.diff.push(b - a);
  }
  return out;
}

const crun = spawnSync('which', ['crun'], { encoding: 'utf8' }).stdout.trim();
const hybrid = fs.existsSync('/sys/fs/cgroup/unified/cgroup.procs');
const WRAPPER = [
  '[ "$(readlink /proc/self/ns/mnt)" != "$SB_HOST_MNTNS" ] || { echo "not in a private mount namespace" >&2; exit 97; }',
  'umount /sys/fs/cgroup/unified || exit 98',
  'exec "$@"',
].join('\n');
const bundles = {};
for (const [name, resources] of [['crun', undefined], ['crun+limits', LIMITS]]) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const cfg = ociConfig({ rootfs, args: ['/probe', 'exit', '0'] });
  if (resources) Object.assign(cfg.linux.resources, resources);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  bundles[name] = dir;
}
let batchNo = 0;
function crunBatch(n, name) {
  const cmd = [timer, '--id', `sbxcg${process.pid}-${batchNo++}`, String(n), '--', crun, 'run', '--bundle', bundles[name], '{ID}'];
  const full = hybrid ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', WRAPPER, 'crun-bench', ...cmd] : cmd;
  const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', env: { ...process.env, SB_HOST_MNTNS: fs.readlinkSync('/proc/self/ns/mnt') } });
  if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
  if (hybrid && !fs.existsSync('/sys/fs/cgroup/unified/cgroup.procs')) throw new Error('the host lost /sys/fs/cgroup/unified: stopping');
  return r.stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => Number(l) / 1000);
}

// The same in blocks: a batch without limits, and one with, each a step of its own. Options that
// repeat is how a program uses them (and what the addon's per-options caches, templates and
// pooled roots, are for); alternating run by run puts a change of options between every two
// containers. The first two of a block are not counted: a root is built ahead only once two
// containers in a row had the same options.
async function sbxBlock(n, resources) {
  const out = [];
  for (let i = 0; i < n + 2; i++) {
    const ms = await lifecycle(resources);
    if (i >= 2) out.push(ms);
  }
  return out;
}

const samples = { scratchbox: [], 'scratchbox+limits': [], 'scratchbox, in blocks': [], 'scratchbox+limits, in blocks': [], crun: [], 'crun+limits': [] };
const pairs = [];
const blockRounds = { none: [], limits: [] };
await sbxBatch(20); // warm-up: the addon, the base mount namespace, the layout
for (let done = 0, round = 0; done < RUNS; done += BATCH, round++) {
  const n = Math.min(BATCH, RUNS - done);
  // The steps of a round in an order drawn anew each round (bench/lib/stats.mjs roundOrder): what
  // one leaves behind in the kernel (crun's cgroups and namespaces torn down) falls on all alike.
  const steps = {
    alternating: async () => {
      const s = await sbxBatch(n);
      samples.scratchbox.push(...s.none);
      samples['scratchbox+limits'].push(...s.limits);
      pairs.push(...s.diff);
    },
    'block without': async () => {
      const xs = await sbxBlock(n, undefined);
      samples['scratchbox, in blocks'].push(...xs);
      blockRounds.none.push(median(xs));
    },
    'block with': async () => {
      const xs = await sbxBlock(n, LIMITS);
      samples['scratchbox+limits, in blocks'].push(...xs);
      blockRounds.limits.push(median(xs));
    },
    ...(crun ? { crun: async () => samples.crun.push(...crunBatch(n, 'crun')), 'crun+limits': async () => samples['crun+limits'].push(...crunBatch(n, 'crun+limits')) } : {}),
  };
  for (const name of roundOrder(Object.keys(steps), round)) await steps[name]();
}
fs.rmSync(work, { recursive: true, force: true });

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
console.log(`create+start+wait+delete of /probe exit 0, ${RUNS} runs each, batches of ${BATCH}, interleaved; limits: memory 64 MiB + pids 64`);
console.log(`scratchbox: with and without limits alternate run by run; "in blocks": ${BATCH} without and ${BATCH} with (after 2 not counted), as steps of a round in a new order each round`);
console.log('| runtime | p50 ms | p90 ms | limits add (p50) |');
console.log('|---|---|---|---|');
for (const [name, xs] of Object.entries(samples)) {
  if (xs.length === 0) continue;
  const base = name.includes('+limits') ? samples[name.replace('+limits', '')] : null;
  const delta = base && base.length ? `${(q(xs, 0.5) - q(base, 0.5)).toFixed(3)} ms` : '';
  console.log(`| ${name} | ${q(xs, 0.5).toFixed(3)} | ${q(xs, 0.9).toFixed(3)} | ${delta} |`);
}
console.log(`scratchbox, run-by-run pairs (limits − none): median ${q(pairs, 0.5).toFixed(3)} ms, p25 ${q(pairs, 0.25).toFixed(3)}, p75 ${q(pairs, 0.75).toFixed(3)}`);
const blockDiff = blockRounds.limits.map((x, i) => x - blockRounds.none[i]);
console.log(`scratchbox in blocks, paired by round (limits − none): median ${q(blockDiff, 0.5).toFixed(3)} ms of ${blockDiff.length} rounds, p25 ${q(blockDiff, 0.25).toFixed(3)}, p75 ${q(blockDiff, 0.75).toFixed(3)}`);
console.log(`CPU time taken by the VM's host meanwhile (steal): ${stealPct(cpu0, cpuTimes())}%.`);
