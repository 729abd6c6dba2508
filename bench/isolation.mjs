#!/usr/bin/env node
// What each isolation default costs per container: create → start → wait → delete of a static
// /true with the defaults, without each one of them, and privileged (none), paired in one process.
// Run as root after `npm ci` and `npm run build`:  node bench/isolation.mjs [--rounds N] [--batch N]
//
// Rounds of `batch` lifecycles per configuration, in an order drawn anew every round; each
// configuration's median per round is compared with the defaults' median of the same round, and
// the table gives the median of those differences (with its interquartile range). The machine's
// drift between rounds (±30% within minutes on a shared VM) falls out of a paired figure; it does
// not out of a difference of two p50s measured minutes apart.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { numberArg, repoDir } from './lib/setup.mjs';
import { roundOrder } from './lib/stats.mjs';
import { cpuTimes, stealPct } from './lib/steal.mjs';

const ROUNDS = numberArg('--rounds', 25);
const BATCH = numberArg('--batch', 25);

const { Container } = await import(path.join(repoDir, 'dist/index.js'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-isobench-'));
const rootfs = path.join(work, 'rootfs');
fs.mkdirSync(rootfs);
execFileSync('gcc', ['-static', '-O2', '-o', path.join(rootfs, 'true'), path.join(repoDir, 'bench/true.c')]);

const base = { rootfs, args: ['/true'], stdio: 'ignore' };
const CONFIGS = [
  ['the defaults', base],
  ['privileged (none of them)', { ...base, privileged: true, noNewPrivileges: false }],
  ["seccomp: 'unconfined'", { ...base, seccomp: 'unconfined' }],
  ['maskedPaths: []', { ...base, maskedPaths: [] }],
  ['readonlyPaths: []', { ...base, readonlyPaths: [] }],
  ["capabilities: { add: ['ALL'] }", { ...base, capabilities: { add: ['ALL'] } }],
  ['noNewPrivileges: false', { ...base, noNewPrivileges: false }],
];

const median = (x) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (x, q) => {
  const s = [...x].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function lifecycle(opts) {
  const t0 = performance.now();
  const c = await Container.create(opts);
  await c.start();
  await c.wait();
  await c.delete();
  return performance.now() - t0;
}

const perRound = CONFIGS.map(() => []);
const cpu0 = cpuTimes();
const all = CONFIGS.map(() => []);
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of roundOrder(CONFIGS.keys(), r)) {
      const lat = [];
      // Two first: the root pool builds ahead once two in a row come from the same options.
      for (let i = 0; i < BATCH + 2; i++) {
        const ms = await lifecycle(CONFIGS[k][1]);
        if (i >= 2) lat.push(ms);
      }
      perRound[k].push(median(lat));
      all[k].push(...lat);
    }
    if (process.stderr.isTTY) process.stderr.write(`\r  round ${r + 1}/${ROUNDS}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

const f = (x) => x.toFixed(3);
console.log(`${ROUNDS} rounds × ${BATCH} lifecycles per configuration, ${os.cpus().length} CPUs, Linux ${os.release()}\n`);
console.log('| configuration | p50 ms | against the defaults, paired by round: median ms | interquartile range ms |');
console.log('| --- | ---: | ---: | ---: |');
CONFIGS.forEach(([name], k) => {
  const d = perRound[k].map((x, i) => x - perRound[0][i]);
  const paired = k === 0 ? '—' : f(median(d));
  const iqr = k === 0 ? '—' : `${f(quantile(d, 0.25))} to ${f(quantile(d, 0.75))}`;
  console.log(`| ${name} | ${f(median(all[k]))} | ${paired} | ${iqr} |`);
});
console.log('\nA negative difference is what that default costs: the lifecycle is that much shorter without it.');
console.log(`CPU time taken by the VM's host meanwhile (steal): ${stealPct(cpu0, cpuTimes())}%.`);
