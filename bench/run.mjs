#!/usr/bin/env node
// scratchbox benchmark: `npm run bench` (= node bench/run.mjs).
//
// Scenarios (all by default, or pick with --only):
//   lifecycle   create → start → exit → delete of a static /true: scratchbox
//               against the C floor (pivot_root, and --base: scratchbox's
//               technique), a plain fork+exec, Node's spawn,
//               bubblewrap, crun and runc, interleaved; p50/p90/p99
//   throughput  containers/s with 1, 2 and 8 concurrent starters
//   scale       latency with 0/100/1000 sleeping containers alive; memory each
//   steadiness  Node RSS and fds before/after 10,000 lifecycles
//   verify      (not in the default set) prints what a process sees inside
//               each runtime's container, to compare their setups
//
// Output: markdown on stdout, JSON in bench/out/results.json, and for a full
// run docs/performance.md + docs/perf-latency.svg.
import fs from 'node:fs';
import { cpuTimes, stealPct } from './lib/steal.mjs';
import path from 'node:path';
import { renderDocs, renderMarkdown, renderSvg } from './lib/report.mjs';
import { externalRunners, loadScratchbox, runProcess, scratchboxRunner, scratchboxVariants } from './lib/runners.mjs';
import { floorSelfCheck, lifecycle, probeMounts, scale, steadiness, throughput } from './lib/scenarios.mjs';
import {
  buildHelpers,
  hygieneProblems,
  hygieneSnapshot,
  machineInfo,
  paths,
  prepareRootfs,
  repoDir,
  writeBundles,
} from './lib/setup.mjs';

const SCENARIOS = ['lifecycle', 'throughput', 'scale', 'steadiness'];
const ALIASES = { 1: 'lifecycle', 2: 'throughput', 3: 'scale', 4: 'steadiness' };
const RUNNER_IDS = ['scratchbox', 'scratchbox-privileged', 'scratchbox-image', 'floor', 'floor-nonet', 'floor-base', 'spawn', 'node-spawn', 'bwrap', 'crun', 'runc'];

const USAGE = `usage: node bench/run.mjs [options]

  --runs N           lifecycle runs per runtime (default 400, runc 40% of it; --quick 60)
  --quick            ~30 s smoke run: fewer runs, smaller levels, 500 steadiness runs
  --only LIST        comma-separated scenarios: ${SCENARIOS.join(', ')} (or 1-4), verify
  --runtimes LIST    comma-separated subset of: ${RUNNER_IDS.join(', ')}
  --steady-runs N    lifecycles for the steadiness scenario (default 10000)
  --module PATH      benchmark this build of scratchbox instead of dist/index.js
  --json PATH        where to write the JSON results (default bench/out/results.json)
  --docs, --no-docs  force / suppress writing docs/performance.md and docs/perf-latency.svg
                     (default: written only by a full run without --quick/--only/--runtimes)
  --no-install       do not apt-get install missing crun/runc/bubblewrap; skip them
  -h, --help         this text
`;

function parseArgs(argv) {
  const opts = { quick: false, only: null, runtimes: null, install: true, docs: null, json: paths.results };
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--runs': opts.runs = num(val(), '--runs'); break;
      case '--steady-runs': opts.steadyRuns = num(val(), '--steady-runs'); break;
      case '--quick': opts.quick = true; break;
      case '--only':
        opts.only = val().split(',').map((s) => ALIASES[s.trim()] ?? s.trim()).filter(Boolean);
        for (const s of opts.only) if (![...SCENARIOS, 'verify'].includes(s)) throw new Error(`unknown scenario ${s}`);
        break;
      case '--runtimes':
        opts.runtimes = val().split(',').map((s) => s.trim()).filter(Boolean);
        for (const s of opts.runtimes) if (!RUNNER_IDS.includes(s)) throw new Error(`unknown runtime ${s}`);
        break;
      case '--json': opts.json = path.resolve(val()); break;
      case '--module': opts.module = path.resolve(val()); break;
      case '--docs': opts.docs = true; break;
      case '--no-docs': opts.docs = false; break;
      case '--no-install': opts.install = false; break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0);
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return opts;
}

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

async function verify(runners, sb) {
  // Runs /probe (prints pid, hostname, lo, /, /dev, /etc, mountinfo) in every runtime.
  const out = [];
  const show = (label, text) => {
    out.push(`## ${label}\n\nmounts: ${probeMounts(text).join(', ')}\n\n\`\`\`\n${text.trim()}\n\`\`\``);
  };
  const get = (id) => runners.find((r) => r.id === id && r.available);
  if (get('floor')) {
    const r = await runProcess([paths.bin.floor, paths.rootfsProbe, '1', '--exec', '/probe', '--verbose']);
    show('C floor', r.stdout + r.stderr);
  }
  if (sb.available) {
    try {
      const r = await sb.Container.run({ rootfs: paths.rootfsProbe, args: ['/probe'] });
      show('scratchbox', String(r.stdout ?? '') + String(r.stderr ?? ''));
    } catch (e) {
      show('scratchbox', `Container.run failed: ${e.stack}`);
    }
  } else out.push(`## scratchbox\n\n${sb.reason}`);
  const b = get('bwrap');
  if (b) {
    const r = await runProcess([b.tool, '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts', '--bind', paths.rootfsProbeExt, '/',
      '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/dev/shm', '--mqueue', '/dev/mqueue', '--ro-bind', '/sys', '/sys', '--hostname', 'bench', '--', '/probe']);
    show('bubblewrap', r.stdout + r.stderr);
  }
  for (const id of ['crun', 'runc']) {
    const x = get(id);
    if (!x) continue;
    // Reuse the runner's command line (including the crun workaround) but
    // without the timer, so the probe's stdout reaches us.
    const argv = x.argv(1, `sbbench-${process.pid}-verify`);
    const t = argv.indexOf(paths.bin.timer);
    const cmd = [...argv.slice(0, t), ...argv.slice(argv.indexOf('--', t) + 1)].map((a) =>
      a === paths.bundle ? paths.bundleProbe : a === '{ID}' ? `sbbench-${process.pid}-verify-${id}` : a,
    );
    const r = await runProcess(cmd, { env: x.env });
    show(id, r.stdout + r.stderr);
  }
  return out.join('\n\n') + '\n';
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (namespaces, mounts, OCI runtimes)\n');
    process.exit(2);
  }
  const scenarios = opts.only ?? SCENARIOS;
  const writeDocs = opts.docs ?? (!opts.quick && !opts.only && !opts.runtimes);

  buildHelpers(log);
  prepareRootfs();
  writeBundles();

  const idPrefix = `sbbench-${process.pid}`;
  const before = hygieneSnapshot(idPrefix);

  const sb = await loadScratchbox(opts.module);
  let sbRunner = scratchboxRunner(sb);
  if (sb.available) {
    try {
      await sbRunner.batch(1, null, { record: false });
    } catch (e) {
      sb.available = false;
      sb.reason = `scratchbox: a first lifecycle failed: ${e.message}`;
      sbRunner = scratchboxRunner(sb);
    }
  }
  if (!sb.available) log(sb.reason);

  const wanted = (id) => !opts.runtimes || opts.runtimes.includes(id);
  const variants = (await scratchboxVariants(sb, path.join(paths.out, 'images'))).filter((r) => wanted(r.id));
  const runners = [...(wanted('scratchbox') ? [sbRunner] : []), ...variants, ...externalRunners({ install: opts.install, log, only: opts.runtimes })];
  for (const r of runners) if (!r.available) log(`${r.id}: skipped: ${r.reason}`);

  const results = {
    date: new Date().toISOString(),
    quick: opts.quick,
    machine: machineInfo(),
    scratchbox: { available: sb.available, reason: sb.reason ?? null, version: sb.version ?? null, module: sb.module ?? null },
    runtimes: Object.fromEntries(runners.map((r) => [r.id, { available: r.available, reason: r.reason ?? null, version: r.version ?? null, command: r.command ?? null }])),
    floorCheck: null,
    scenarios: {},
    hygiene: null,
  };

  // The floor's claims, checked by a probe inside it (each mode the run uses).
  const floorModes = [['floor', []], ['floor-base', ['--base']]].filter(([id]) => runners.some((r) => r.id === id));
  if (floorModes.length) {
    const checks = [];
    for (const [id, extra] of floorModes) checks.push([id, await floorSelfCheck(extra)]);
    const problems = checks.flatMap(([id, c]) => c.problems.map((p) => `${id}: ${p}`));
    results.floorCheck = { ok: problems.length === 0, problems, mounts: checks[0][1].mounts };
    if (problems.length) log(`floor self-check FAILED: ${problems.join('; ')}`);
  }

  let verifyText = null;
  const ctx = { runners, sb, quick: opts.quick, opts, log, tag: (name) => `${idPrefix}-${name}`, results: results.scenarios };
  const fns = { lifecycle, throughput, scale, steadiness };
  let failed = false;
  for (const name of scenarios) {
    if (name === 'verify') {
      verifyText = await verify(runners, sb);
      continue;
    }
    const t0 = performance.now();
    const cpu0 = cpuTimes();
    try {
      results.scenarios[name] = await fns[name](ctx);
      results.scenarios[name].stealPct = stealPct(cpu0, cpuTimes());
    } catch (e) {
      failed = true;
      results.scenarios[name] = { error: e.stack };
      log(`${name} failed: ${e.stack}`);
    }
    log(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  const after = hygieneSnapshot(idPrefix);
  const problems = hygieneProblems(before, after);
  results.hygiene = { problems, mountsBefore: before.mounts, mountsAfter: after.mounts, cgroupUnifiedMounted: after.cgroupUnifiedMounted };

  fs.mkdirSync(path.dirname(opts.json), { recursive: true });
  fs.writeFileSync(opts.json, JSON.stringify(results, null, 1) + '\n');
  const okScenarios = Object.fromEntries(Object.entries(results.scenarios).filter(([, v]) => !v.error || v.runs));
  const printable = { ...results, scenarios: okScenarios };
  process.stdout.write(renderMarkdown(printable));
  if (verifyText) process.stdout.write('\n' + verifyText);

  if (writeDocs) {
    fs.mkdirSync(path.dirname(paths.docs), { recursive: true });
    if (okScenarios.lifecycle) fs.writeFileSync(paths.svg, renderSvg(okScenarios.lifecycle, results.machine));
    fs.writeFileSync(paths.docs, renderDocs(printable));
    log(`wrote ${path.relative(repoDir, paths.docs)}${okScenarios.lifecycle ? ` and ${path.relative(repoDir, paths.svg)}` : ''}`);
  }
  log(`wrote ${path.relative(process.cwd(), opts.json)}`);
  if (problems.length) log(`HYGIENE PROBLEMS: ${problems.join('; ')}`);
  if (problems.length || failed || (results.floorCheck && !results.floorCheck.ok)) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack}\n`);
  process.exit(1);
});
