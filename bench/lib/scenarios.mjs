// The four scenarios of the bench. Each takes a context
//   { runners, sb, quick, opts, log, tag(name), results }
// and returns a JSON-able result object; report.mjs turns those into tables.
import fs from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parseLatencies, runProcess, sbLifecycle, sbStop } from './runners.mjs';
import { memAvailableKiB, mountInfo, openFds, paths } from './setup.mjs';
import { median, roundOrder, summarize } from './stats.mjs';

const round3 = (x) => Math.round(x * 1000) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A runner's share of the scenario-1 runs: runc is slow, so it gets fewer. */
function runsFor(id, n) {
  return id === 'runc' ? Math.min(n, Math.max(10, Math.round(n * 0.4))) : n;
}

// ---------------------------------------------------------------------------
// Scenario 1: lifecycle latency, interleaved

export async function lifecycle(ctx) {
  const { runners, log, quick, opts } = ctx;
  const n = opts.runs ?? (quick ? 60 : 400);
  const batch = quick ? 10 : 25;
  const rounds = Math.max(1, Math.ceil(n / batch));
  const active = runners.filter((r) => r.available);
  const rows = new Map(runners.map((r) => [r.id, { r, lat: [], perRound: [], error: null, target: runsFor(r.id, n) }]));

  log(`lifecycle: warm-up (${active.map((r) => r.id).join(', ')})`);
  for (const r of active) {
    const row = rows.get(r.id);
    try {
      await r.batch(Math.min(10, row.target), ctx.tag(`w-${r.id}`), { record: false });
    } catch (e) {
      row.error = e.message;
    }
  }
  log(`lifecycle: ${rounds} interleaved rounds, ${n} runs per runtime (runc ${runsFor('runc', n)})`);
  for (let i = 0; i < rounds; i++) {
    // A new order every round, so that no runtime always follows the same one (roundOrder).
    const order = roundOrder(active, i);
    for (const r of order) {
      const row = rows.get(r.id);
      if (row.error) continue;
      const per = Math.ceil(row.target / rounds);
      const k = Math.min(per, row.target - row.lat.length);
      if (k <= 0) continue;
      try {
        const lat = await r.batch(k, ctx.tag(`${r.id}-${i}`));
        row.lat.push(...lat);
        row.perRound[i] = median(lat);
      } catch (e) {
        row.error = e.message;
        log(`lifecycle: ${r.id} failed: ${e.message}`);
      }
    }
    if (process.stderr.isTTY) process.stderr.write(`\r  round ${i + 1}/${rounds}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');

  const out = [];
  for (const { r, lat, error } of rows.values()) {
    const row = {
      id: r.id,
      label: r.label,
      note: r.note ?? null,
      available: r.available && !error,
      reason: r.available ? error : r.reason,
      version: r.version ?? null,
      command: r.command ?? null,
      stats: summarize(lat),
      samplesMs: lat.map(round3),
    };
    if (r.phases?.length) {
      const ph = r.phases;
      row.phases = Object.fromEntries(['create', 'start', 'wait', 'delete'].map((name, j) => [name, summarize(ph.map((p) => p[j]))]));
    }
    out.push(row);
  }
  return { runsPerRuntime: n, runsRunc: runsFor('runc', n), rounds, rows: out, isolation: isolationCost(rows) };
}

/**
 * What the isolation defaults cost: the scratchbox row against its privileged variant, as the
 * difference of their p50s and, paired by round (the two ran minutes apart at most within one
 * round, in the rotating order), the median of the per-round differences of their medians, with
 * its interquartile range: the machine's drift between rounds falls out of the paired figure.
 */
function isolationCost(rows) {
  const a = rows.get('scratchbox'), b = rows.get('scratchbox-privileged');
  if (!a || !b || a.error || b.error || a.lat.length === 0 || b.lat.length === 0) return null;
  const d = a.perRound.map((x, i) => x - b.perRound[i]).filter(Number.isFinite).sort((p, q) => p - q);
  if (d.length === 0) return null;
  const q = (f) => d[Math.min(d.length - 1, Math.floor(f * d.length))];
  return { p50Diff: median(a.lat) - median(b.lat), pairedMedian: median(d), q25: q(0.25), q75: q(0.75), rounds: d.length };
}

// ---------------------------------------------------------------------------
// Scenario 2: throughput with 1, 2 and 8 concurrent starters

/** Busy CPU time of the whole machine so far, in ms (/proc/stat: user, nice, system, irq, softirq, steal). */
function machineBusyMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 1000) / 100; // USER_HZ = 100
}

/**
 * Waits until the machine is idle (under 10% of its CPUs busy over 250 ms, at most 8 s): the
 * kernel goes on tearing down the namespaces of the previous cell's containers (network namespaces
 * especially) for a while, and that work would otherwise be charged to the next cell.
 */
async function settleCpu() {
  const cpus = os.cpus().length;
  let frac = 0;
  for (const t0 = performance.now(); performance.now() - t0 < 8000; ) {
    const b0 = machineBusyMs();
    await sleep(250);
    frac = (machineBusyMs() - b0) / (250 * cpus);
    if (frac < 0.1) break;
  }
  return frac; // the machine's busy fraction when idle: its background
}

/**
 * Runs one throughput cell between two idle points and adds the machine's CPU time per completed
 * container: everything every CPU spent from the start of the cell until the kernel had finished
 * the teardown it left behind, less the idle background. On N cores no runtime can complete more
 * than N × 1000 / (CPU ms per container) containers per second.
 */
async function cpuAccounted(run) {
  const cpus = os.cpus().length;
  const idle = await settleCpu();
  const b0 = machineBusyMs();
  const t0 = performance.now();
  const res = await run();
  await settleCpu();
  const busy = machineBusyMs() - b0 - idle * cpus * (performance.now() - t0);
  return { ...res, cpuMsPerContainer: Math.max(0, busy) / res.completed };
}

async function externalThroughput(r, c, durationMs, medMs, tag) {
  const cpus = os.cpus().length;
  const count = Math.max(2, Math.round(((durationMs / medMs) * Math.min(c, cpus)) / c));
  const t0 = performance.now();
  const res = await Promise.all(Array.from({ length: c }, (_, i) => runProcess(r.argv(count, `${tag}-${i}`), { env: r.env })));
  const wall = performance.now() - t0;
  r.check();
  const lat = [];
  for (const x of res) {
    const l = parseLatencies(x.stdout);
    if (x.code !== 0 || l.length !== count) throw new Error(`${r.id}: exit ${x.code}: ${x.stderr.trim().split('\n').pop()}`);
    lat.push(...l);
  }
  return { completed: lat.length, wallMs: wall, perSec: lat.length / (wall / 1000), latency: summarize(lat) };
}

async function sbThroughput(Container, c, durationMs, namespaces) {
  const lat = [];
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < deadline) lat.push(await sbLifecycle(Container, paths.rootfs, undefined, namespaces));
    }),
  );
  const wall = performance.now() - t0;
  return { completed: lat.length, wallMs: wall, perSec: lat.length / (wall / 1000), latency: summarize(lat) };
}

export async function throughput(ctx) {
  const { runners, sb, log, quick, results } = ctx;
  const durationMs = quick ? 700 : 3000;
  const concurrency = [1, 2, 8];
  // scratchbox-shared: the opt-in namespaces.network 'shared' (one empty loopback-only network
  // namespace for all containers instead of a fresh one each), next to the floor without a netns.
  const ids = ['scratchbox', 'scratchbox-shared', 'floor', 'floor-base', 'floor-nonet', 'spawn', 'bwrap', 'crun', 'runc'];
  const rows = [];
  for (const id of ids) {
    const r = runners.find((x) => x.id === (id === 'scratchbox-shared' ? 'scratchbox' : id));
    if (!r) continue;
    const label = id === 'scratchbox-shared' ? `${r.label}, network 'shared'` : r.label;
    const row = { id, label, available: r.available, reason: r.reason ?? null, byConcurrency: {} };
    rows.push(row);
    if (!r.available) continue;
    try {
      if (id.startsWith('scratchbox')) {
        const ns = id === 'scratchbox-shared' ? { network: 'shared' } : undefined;
        await sbLifecycle(sb.Container, paths.rootfs, undefined, ns);
        for (const c of concurrency) {
          log(`throughput: ${id} × ${c}`);
          row.byConcurrency[c] = await cpuAccounted(() => sbThroughput(sb.Container, c, durationMs, ns));
        }
      } else {
        let med = results.lifecycle?.rows.find((x) => x.id === id)?.stats.p50;
        if (!Number.isFinite(med)) med = median(await r.batch(5, ctx.tag(`tc-${id}`)));
        for (const c of concurrency) {
          log(`throughput: ${id} × ${c}`);
          row.byConcurrency[c] = await cpuAccounted(() => externalThroughput(r, c, durationMs, med, ctx.tag(`t-${id}-${c}`)));
        }
      }
    } catch (e) {
      row.available = false;
      row.reason = e.message;
      log(`throughput: ${id} failed: ${e.message}`);
    }
  }
  return { durationMs, concurrency, rows };
}

// ---------------------------------------------------------------------------
// Scenario 3: create latency with 0/100/1000 sleeping containers alive

function gcFunction() {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc');
  } catch {
    return null;
  }
}
const gc = gcFunction();

async function settle() {
  gc?.();
  await sleep(300);
  return { memAvailKiB: memAvailableKiB(), rssKiB: Math.round(process.memoryUsage().rss / 1024) };
}

/**
 * After many containers went away the kernel keeps tearing their namespaces
 * down in the background (network namespaces especially); give it time so
 * the next measurement does not pay for it.
 */
async function quiesce(containers, log) {
  if (containers < 50) return;
  const ms = Math.min(10000, 1000 + containers * 3);
  log(`scale: letting the kernel finish tearing down ${containers} containers (${ms / 1000} s)`);
  await sleep(ms);
}

async function sbScale(Container, levels, samples, log) {
  const live = [];
  const out = [];
  let base = await settle();
  try {
    for (const level of levels) {
      const t0 = performance.now();
      const added = level - live.length;
      while (live.length < level) {
        const c = await Container.create({ rootfs: paths.rootfsSleep, args: ['/sleep'], stdio: 'ignore' });
        try {
          await c.start();
        } catch (e) {
          await c.delete().catch(() => {});
          throw e;
        }
        live.push(c);
      }
      const startMs = added > 0 ? (performance.now() - t0) / added : null;
      const mem = await settle();
      if (level === 0) base = mem; // the zero row is the baseline by definition
      log(`scale: scratchbox with ${level} live containers`);
      const phases = [];
      const lat = [];
      for (let i = 0; i < samples; i++) lat.push(await sbLifecycle(Container, paths.rootfs, phases));
      out.push({
        live: level,
        startSleeperMs: startMs,
        create: summarize(phases.map((p) => p[0])),
        lifecycle: summarize(lat),
        memAvailDeltaKiB: base.memAvailKiB - mem.memAvailKiB,
        nodeRssDeltaKiB: mem.rssKiB - base.rssKiB,
      });
    }
  } finally {
    log(`scale: stopping ${live.length} containers`);
    const t0 = performance.now();
    // Stop in chunks so a huge level does not fire thousands of kills at once.
    for (let i = 0; i < live.length; i += 50) await Promise.all(live.slice(i, i + 50).map((c) => sbStop(c).catch(() => {})));
    if (live.length) log(`scale: stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await quiesce(live.length, log);
  }
  const top = out[out.length - 1];
  return {
    levels: out,
    perContainer:
      top && top.live > 0
        ? { memAvailKiB: top.memAvailDeltaKiB / top.live, nodeRssKiB: top.nodeRssDeltaKiB / top.live }
        : null,
  };
}

async function floorScale(levels, samples, log) {
  const out = [];
  for (const level of levels) {
    log(`scale: floor with ${level} live containers`);
    const argv = [paths.bin.floor, paths.rootfs, String(samples)];
    if (level > 0) argv.push('--hold', String(level), '--hold-rootfs', paths.rootfsSleep, '--hold-exec', '/sleep');
    const r = await runProcess(argv);
    const lat = parseLatencies(r.stdout);
    if (r.code !== 0 || lat.length !== samples) throw new Error(`floor --hold ${level}: exit ${r.code}: ${r.stderr.trim()}`);
    const m = /# held (\d+) memavail_kb_delta=(-?\d+) start_ms=([\d.]+)/.exec(r.stderr);
    out.push({
      live: level,
      startSleeperMs: m && level > 0 ? Number(m[3]) / level : null,
      lifecycle: summarize(lat),
      memAvailDeltaKiB: m ? Number(m[2]) : 0,
    });
    await quiesce(level, log);
  }
  const top = out[out.length - 1];
  return { levels: out, perContainer: top && top.live > 0 ? { memAvailKiB: top.memAvailDeltaKiB / top.live } : null };
}

export async function scale(ctx) {
  const { runners, sb, log, quick } = ctx;
  const levels = quick ? [0, 20, 100] : [0, 100, 1000];
  const samples = quick ? 20 : 100;
  const result = { levels, samples, scratchbox: null, floor: null };
  if (sb.available) {
    try {
      result.scratchbox = await sbScale(sb.Container, levels, samples, log);
    } catch (e) {
      result.scratchbox = { error: `scratchbox failed: ${e.message}` };
      log(`scale: scratchbox failed: ${e.message}`);
    }
  } else result.scratchbox = { error: sb.reason };
  if (runners.some((r) => r.id === 'floor' && r.available)) {
    try {
      result.floor = await floorScale(levels, samples, log);
    } catch (e) {
      result.floor = { error: `floor failed: ${e.message}` };
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Scenario 4: steadiness over many lifecycles

function processSample(gc) {
  gc?.();
  const m = process.memoryUsage();
  return {
    rssKiB: Math.round(m.rss / 1024),
    heapUsedKiB: Math.round(m.heapUsed / 1024),
    heapTotalKiB: Math.round(m.heapTotal / 1024),
    externalKiB: Math.round(m.external / 1024),
    fds: openFds(),
    hostMounts: mountInfo().length,
  };
}

export async function steadiness(ctx) {
  const { sb, log, quick, opts } = ctx;
  const total = opts.steadyRuns ?? (quick ? 500 : 10000);
  if (!sb.available) return { runs: total, error: sb.reason };
  log(`steadiness: warm-up`);
  for (let i = 0; i < 100; i++) await sbLifecycle(sb.Container, paths.rootfs);
  const before = processSample(gc);
  const trace = [{ done: 0, ...before }];
  const lat = [];
  const step = Math.max(1, Math.round(total / 10));
  log(`steadiness: ${total} lifecycles`);
  const t0 = performance.now();
  for (let i = 1; i <= total; i++) {
    lat.push(await sbLifecycle(sb.Container, paths.rootfs));
    if (i % step === 0 || i === total) {
      trace.push({ done: i, ...processSample(null) });
      if (process.stderr.isTTY) process.stderr.write(`\r  ${i}/${total}`);
    }
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  const wallMs = performance.now() - t0;
  const after = processSample(gc);
  const tenth = Math.max(1, Math.floor(total / 10));
  return {
    runs: total,
    gcExposed: Boolean(gc),
    wallMs,
    perSec: total / (wallMs / 1000),
    before,
    after,
    delta: Object.fromEntries(Object.keys(before).map((k) => [k, after[k] - before[k]])),
    firstTenth: summarize(lat.slice(0, tenth)),
    lastTenth: summarize(lat.slice(-tenth)),
    trace,
  };
}

// ---------------------------------------------------------------------------
// Self-check: what does a process inside each container see?

/** Mount points inside, from the probe's /proc/self/mountinfo dump. */
export function probeMounts(text) {
  const i = text.indexOf('== /proc/self/mountinfo');
  if (i < 0) return [];
  return text
    .slice(i)
    .split('\n')
    .slice(1)
    .filter((l) => / - /.test(l))
    .map((l) => {
      const f = l.split(' ');
      return `${f[4]} ${f[f.indexOf('-') + 1]}`;
    });
}

const expectedFloor = [
  '/ overlay', '/proc proc', '/dev tmpfs', '/dev/pts devpts', '/dev/shm tmpfs', '/dev/mqueue mqueue',
  '/sys sysfs', '/sys/fs/cgroup tmpfs',
];
const expectedDev = ['null c 1:3 0666', 'zero c 1:5 0666', 'full c 1:7 0666', 'random c 1:8 0666', 'urandom c 1:9 0666', 'tty c 5:0 0666',
  'fd -> /proc/self/fd', 'stdin -> /proc/self/fd/0', 'stdout -> /proc/self/fd/1', 'stderr -> /proc/self/fd/2', 'ptmx -> pts/ptmx', 'core -> /proc/kcore'];
const expectedEtc = ['hostname f', 'hosts f', 'resolv.conf f', 'mtab -> /proc/mounts'];

/** Runs /probe in the floor and checks the container has what the floor claims. */
export async function floorSelfCheck(extra = []) {
  const r = await runProcess([paths.bin.floor, paths.rootfsProbe, '1', '--exec', '/probe', '--verbose', ...extra]);
  const problems = [];
  if (r.code !== 0) problems.push(`floor probe exited ${r.code}: ${r.stderr.trim()}`);
  const out = r.stdout;
  if (!/^pid 1 hostname floor$/m.test(out)) problems.push('not pid 1 with hostname floor');
  if (!/^lo UP$/m.test(out)) problems.push('lo is not up');
  const mounts = probeMounts(out);
  for (const m of expectedFloor) if (!mounts.includes(m)) problems.push(`missing mount ${m}`);
  if (!mounts.some((m) => m.startsWith('/sys/fs/cgroup/'))) problems.push('cgroup bind is not recursive');
  const section = (name) => {
    const s = out.indexOf(name === 'fds' ? '== fds\n' : `== ls ${name}\n`);
    if (s < 0) return '';
    const e = out.indexOf('\n==', s + 1);
    return out.slice(s, e < 0 ? undefined : e);
  };
  for (const d of expectedDev) if (!section('/dev').includes(d)) problems.push(`missing /dev/${d}`);
  for (const d of expectedEtc) if (!section('/etc').includes(d)) problems.push(`missing /etc/${d}`);
  const fdLines = section('fds').split('\n').slice(1).filter(Boolean);
  const leaked = fdLines.filter((l) => !/^[012] -> /.test(l));
  if (leaked.length) problems.push(`descriptors leaked into the container: ${leaked.join(', ')}`);
  const ro = out.split('\n').filter((l) => / \/sys(\/fs\/cgroup\S*)? ro,/.test(l)).length;
  if (ro < 2) problems.push('/sys or /sys/fs/cgroup is not read-only');
  return { ok: problems.length === 0, problems, mounts, output: out };
}
