#!/usr/bin/env node
// Exec latency: a static /true exec'd into a running container (running a static sleep), start to
// exit, with scratchbox's Container#exec against `runc exec` and `crun exec` (each timed by
// bench/timer.c: fork + exec + wait of the CLI, so Node's own spawn cost is left out).
//
//   node bench/exec.mjs [--runs N]       (default 200; runc and crun N/4)
//
// crun 1.8 refuses hybrid cgroup hosts: it then runs inside a private mount namespace without
// /sys/fs/cgroup/unified (the workaround of bench/lib/runners.mjs, once for the whole batch).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildHelpers, cgroupLayout, hostMountNs, numberArg, ociConfig, paths, prepareRootfs, repoDir, which } from './lib/setup.mjs';
import { fmt, summarize } from './lib/stats.mjs';

const N = numberArg('--runs', 200);
const log = (s) => process.stderr.write(`${s}\n`);

buildHelpers(log);
prepareRootfs();
const rootfs = path.join(paths.out, 'rootfs-exec');
fs.mkdirSync(rootfs, { recursive: true });
for (const [name, src] of [['sleep', paths.bin.sleep], ['true', paths.bin.true]]) fs.copyFileSync(src, path.join(rootfs, name));
const bundle = path.join(paths.out, 'bundle-exec');
fs.mkdirSync(bundle, { recursive: true });
fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(ociConfig({ rootfs, args: ['/sleep'] }), null, 2));

const rows = [];
const row = (label, us, note) => rows.push({ label, ...summarize(us.map((x) => x / 1000)), note });

// scratchbox
{
  const { Container } = await import(path.join(repoDir, 'dist/index.js'));
  const c = await Container.create({ rootfs, args: ['/sleep'], stdio: 'ignore' });
  try {
    await c.start();
    for (let i = 0; i < 20; i++) await c.exec({ args: ['/true'], stdio: 'ignore' });
    const us = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await c.exec({ args: ['/true'], stdio: 'ignore' });
      us.push((performance.now() - t) * 1000);
    }
    row('scratchbox exec()', us, 'in-process: c.exec() to its result');
  } finally {
    await c.delete();
  }
}

// runc and crun: run -d the sleep, time `exec /true`, kill and delete.
const lifecycle = (bin, state, id, k) =>
  [
    `"${bin}" --root "${state}" run -d --bundle "${bundle}" ${id} </dev/null >/dev/null || exit 90`,
    `"${paths.bin.timer}" ${k} -- "${bin}" --root "${state}" exec ${id} /true; s=$?`,
    `"${bin}" --root "${state}" kill ${id} KILL; "${bin}" --root "${state}" delete -f ${id}; exit $s`,
  ].join('\n');
for (const id of ['runc', 'crun']) {
  const bin = which(id);
  if (!bin) {
    log(`${id}: not installed, skipped`);
    continue;
  }
  const k = Math.max(10, Math.floor(N / 4));
  const script = lifecycle(bin, paths.state[id], `sbx-exec-bench-${process.pid}`, k);
  const hybrid = id === 'crun' && cgroupLayout() === 'hybrid';
  const argv = hybrid
    ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `[ "$(readlink /proc/self/ns/mnt)" != "${hostMountNs()}" ] || exit 97\numount /sys/fs/cgroup/unified || exit 98\n${script}`]
    : ['sh', '-c', script];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    log(`${id}: exit ${r.status}, skipped`);
    continue;
  }
  row(`${id} exec`, r.stdout.trim().split('\n').map(Number), hybrid ? 'CLI, timer.c; private mount namespace without cgroup2 (hybrid host)' : 'CLI, timer.c');
}
if (cgroupLayout() === 'hybrid' && !fs.existsSync('/sys/fs/cgroup/unified')) throw new Error('the host lost /sys/fs/cgroup/unified');

console.log(`exec of a static /true into a running container (${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}), ms\n`);
console.log('| runtime | n | p50 | p90 | p99 | note |\n|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${r.note} |`);
