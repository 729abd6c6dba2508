// Turning results into markdown tables (stdout and docs/performance.md) and
// the latency chart (docs/perf-latency.svg, hand-written SVG, log scale).
import os from 'node:os';
import { fmt, ratio } from './stats.mjs';

export function table(headers, rows, align) {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const sep = a.map((x) => (x === 'r' ? '---:' : x === 'c' ? ':---:' : '---'));
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(sep), ...rows.map(line)].join('\n');
}

const ms = (x) => fmt(x);
const kib = (x) => (Number.isFinite(x) ? `${fmt(x / 1024)} MiB` : '—');

// ---------------------------------------------------------------------------
// Scenario tables

export function lifecycleTable(res) {
  const byId = Object.fromEntries(res.rows.map((r) => [r.id, r]));
  const sb = byId.scratchbox?.available ? byId.scratchbox.stats.p50 : NaN;
  const floor = byId.floor?.available ? byId.floor.stats.p50 : NaN;
  const rows = res.rows.map((r) =>
    r.available
      ? [r.label, String(r.stats.n), ms(r.stats.p50), ms(r.stats.p90), ms(r.stats.p99), ms(r.stats.mean), ratio(r.stats.p50, sb), ratio(r.stats.p50, floor)]
      : [r.label, '0', '—', '—', '—', '—', '—', `skipped: ${r.reason}`],
  );
  return table(['runtime', 'runs', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ms', 'p50 / scratchbox', 'p50 / floor'], rows);
}

/** The isolation defaults' cost (scenarios.mjs isolationCost), one line. */
export function isolationLine(res) {
  const c = res.isolation;
  if (!c) return null;
  return `Isolation defaults (scratchbox − its privileged variant): ${ms(c.p50Diff)} ms between the p50s; ${ms(c.pairedMedian)} ms paired by round (median of ${c.rounds} per-round differences, interquartile range ${ms(c.q25)} to ${ms(c.q75)} ms).`;
}

/** How much of the machine's CPU time its host took during the section (a shared VM). */
export function stealLine(res) {
  if (typeof res.stealPct !== 'number') return null;
  return `CPU time taken by the VM's host during this section (steal, /proc/stat): ${res.stealPct}%. Above a few percent every row is slower; the ratios within the run still compare like with like.`;
}

export function phasesTable(res) {
  const p = res.rows.find((r) => r.id === 'scratchbox')?.phases;
  if (!p) return null;
  return table(
    ['scratchbox phase', 'p50 ms', 'p90 ms', 'p99 ms'],
    Object.entries(p).map(([k, s]) => [`${k}()`, ms(s.p50), ms(s.p90), ms(s.p99)]),
  );
}

export function throughputTable(res) {
  const rows = res.rows.map((r) => {
    if (!r.available) return [r.label, ...res.concurrency.map(() => '—'), `skipped: ${r.reason}`];
    const cells = res.concurrency.map((c) => {
      const x = r.byConcurrency[c];
      if (!x) return '—';
      const cpu = Number.isFinite(x.cpuMsPerContainer) ? `, ${ms(x.cpuMsPerContainer)} ms CPU` : '';
      return `${x.perSec.toFixed(0)}/s (p50 ${ms(x.latency.p50)} ms${cpu})`;
    });
    return [r.label, ...cells, ''];
  });
  return table(['runtime', ...res.concurrency.map((c) => `${c} starter${c > 1 ? 's' : ''}`), 'note'], rows);
}

export function scaleTables(res) {
  const out = [];
  const sb = res.scratchbox;
  if (sb?.levels) {
    out.push(
      table(
        ['scratchbox, live containers', 'create() p50 ms', 'create() p99 ms', 'lifecycle p50 ms', 'lifecycle p99 ms', 'start of a sleeper ms', 'MemAvailable Δ', 'Node RSS Δ'],
        sb.levels.map((l) => [
          String(l.live), ms(l.create.p50), ms(l.create.p99), ms(l.lifecycle.p50), ms(l.lifecycle.p99),
          ms(l.startSleeperMs), kib(l.memAvailDeltaKiB), kib(l.nodeRssDeltaKiB),
        ]),
      ),
    );
    if (sb.perContainer)
      out.push(
        `Memory per live scratchbox container: ${fmt(sb.perContainer.memAvailKiB)} KiB of MemAvailable, ${fmt(sb.perContainer.nodeRssKiB)} KiB of Node RSS.`,
      );
  } else out.push(sb?.error ?? 'scratchbox: not run');
  const fl = res.floor;
  if (fl?.levels) {
    out.push(
      table(
        ['C floor, live containers', 'lifecycle p50 ms', 'lifecycle p99 ms', 'start of a sleeper ms', 'MemAvailable Δ'],
        fl.levels.map((l) => [String(l.live), ms(l.lifecycle.p50), ms(l.lifecycle.p99), ms(l.startSleeperMs), kib(l.memAvailDeltaKiB)]),
      ),
    );
    if (fl.perContainer) out.push(`Memory per live floor container (kernel side only): ${fmt(fl.perContainer.memAvailKiB)} KiB of MemAvailable.`);
  } else if (fl?.error) out.push(`floor: ${fl.error}`);
  return out.join('\n\n');
}

export function steadinessTable(res) {
  if (res.error) return res.error;
  const keys = [
    ['rssKiB', 'Node RSS', kib],
    ['heapUsedKiB', 'V8 heap used', kib],
    ['heapTotalKiB', 'V8 heap committed (part of RSS)', kib],
    ['externalKiB', 'external memory', kib],
    ['fds', 'open fds', String],
    ['hostMounts', 'host mounts', String],
  ];
  const t = table(
    ['after warm-up → after', 'before', 'after', 'Δ'],
    keys.map(([k, label, f]) => [label, f(res.before[k]), f(res.after[k]), k === 'fds' || k === 'hostMounts' ? String(res.delta[k]) : kib(res.delta[k])]),
  );
  return [
    t,
    `${res.runs} lifecycles in ${(res.wallMs / 1000).toFixed(1)} s (${res.perSec.toFixed(0)}/s); p50 of the first tenth ${ms(res.firstTenth.p50)} ms, of the last tenth ${ms(res.lastTenth.p50)} ms${res.gcExposed ? '; gc() run before each measurement' : ''}.`,
  ].join('\n\n');
}

// ---------------------------------------------------------------------------
// stdout report

export function renderMarkdown(results) {
  const parts = [];
  const m = results.machine;
  parts.push(`# scratchbox bench${results.quick ? ' (quick)' : ''}`);
  parts.push(`${m.cpus} × ${m.cpuModel}, ${m.memTotalMiB} MiB, Linux ${m.kernel}, ${m.distro ?? ''}, Node ${m.node}, cgroups ${m.cgroups}. ${results.date}`);
  if (results.scratchbox && !results.scratchbox.available) parts.push(`**${results.scratchbox.reason}** — scratchbox rows are skipped.`);
  if (results.floorCheck) parts.push(`Floor self-check: ${results.floorCheck.ok ? 'ok (mounts, devices, /etc files, lo, hostname, pid 1, no leaked descriptors)' : `FAILED: ${results.floorCheck.problems.join('; ')}`}`);
  const s = results.scenarios;
  if (s.lifecycle) {
    parts.push(`## 1. Lifecycle: create → start → exit → delete of a static /true`);
    parts.push(`${s.lifecycle.runsPerRuntime} runs per runtime (runc ${s.lifecycle.runsRunc}) in ${s.lifecycle.rounds} interleaved rounds, after a warm-up.`);
    parts.push(lifecycleTable(s.lifecycle));
    const iso = isolationLine(s.lifecycle);
    if (iso) parts.push(iso);
    const st = stealLine(s.lifecycle);
    if (st) parts.push(st);
    const ph = phasesTable(s.lifecycle);
    if (ph) parts.push(ph);
  }
  if (s.throughput) {
    parts.push(`## 2. Throughput (containers/s, ~${s.throughput.durationMs / 1000} s per cell)`);
    parts.push(throughputTable(s.throughput));
  }
  if (s.scale) {
    parts.push(`## 3. Scale: latency with ${s.scale.levels.join('/')} sleeping containers alive (${s.scale.samples} samples each)`);
    parts.push(scaleTables(s.scale));
  }
  if (s.steadiness) {
    parts.push(`## 4. Steadiness over ${s.steadiness.runs} lifecycles`);
    parts.push(steadinessTable(s.steadiness));
  }
  if (results.hygiene) {
    parts.push(`## Hygiene`);
    parts.push(results.hygiene.problems.length ? `PROBLEMS: ${results.hygiene.problems.join('; ')}` : 'Clean: no host mounts added or removed, /sys/fs/cgroup/unified still mounted on the host, no child processes, no runtime state or cgroups left.');
  }
  return parts.join('\n\n') + '\n';
}

// ---------------------------------------------------------------------------
// SVG chart: one row per runtime, log-scale x axis, a bar to the median and
// a whisker with marks at p90 and p99.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderSvg(lifecycleRes, machine) {
  const rows = lifecycleRes.rows.filter((r) => r.available && r.stats.n > 0).sort((a, b) => a.stats.p50 - b.stats.p50);
  const W = 820;
  const left = 210;
  const right = 110;
  const top = 74;
  const rowH = 34;
  const plotW = W - left - right;
  const H = top + rows.length * rowH + 46;
  const lo = Math.min(...rows.map((r) => r.stats.p50));
  const hi = Math.max(...rows.map((r) => r.stats.p99));
  const d0 = Math.floor(Math.log10(lo * 0.9));
  const d1 = Math.ceil(Math.log10(hi * 1.05));
  const x = (v) => left + ((Math.log10(v) - d0) / (d1 - d0)) * plotW;
  const color = (id) => (id === 'scratchbox' ? '#d9480f' : id.startsWith('floor') ? '#495057' : id.includes('spawn') ? '#868e96' : '#1971c2');
  const el = [];
  el.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`);
  el.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  el.push(`<text x="16" y="24" font-size="15" font-weight="600" fill="#212529">Container lifecycle latency: create → start → exit → delete of a static /true</text>`);
  el.push(
    `<text x="16" y="44" fill="#495057">${esc(`${machine.cpus} × ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}; log scale; bar = median, ● = p90, | = p99`)}</text>`,
  );
  // grid
  const gridBottom = top + rows.length * rowH;
  for (let d = d0; d <= d1; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (d === d1 && m > 1) continue;
      const gx = x(v).toFixed(1);
      el.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${gridBottom}" stroke="${m === 1 ? '#ced4da' : '#f1f3f5'}" stroke-width="1"/>`);
      if (m === 1 || d1 - d0 <= 2)
        el.push(`<text x="${gx}" y="${gridBottom + 18}" text-anchor="middle" fill="#495057">${esc(v >= 1 ? `${v} ms` : `${v.toPrecision(1)} ms`)}</text>`);
    }
  }
  rows.forEach((r, i) => {
    const cy = top + i * rowH + rowH / 2;
    const c = color(r.id);
    const s = r.stats;
    const weight = r.id === 'scratchbox' ? ' font-weight="700"' : '';
    el.push(`<text x="${left - 10}" y="${cy + 4}" text-anchor="end" fill="#212529"${weight}>${esc(r.label)}</text>`);
    el.push(`<rect x="${left}" y="${cy - 8}" width="${Math.max(1, x(s.p50) - left).toFixed(1)}" height="16" fill="${c}" opacity="0.85"/>`);
    el.push(`<line x1="${x(s.p50).toFixed(1)}" y1="${cy}" x2="${x(s.p99).toFixed(1)}" y2="${cy}" stroke="${c}" stroke-width="2"/>`);
    el.push(`<circle cx="${x(s.p90).toFixed(1)}" cy="${cy}" r="3.5" fill="${c}"/>`);
    el.push(`<line x1="${x(s.p99).toFixed(1)}" y1="${cy - 7}" x2="${x(s.p99).toFixed(1)}" y2="${cy + 7}" stroke="${c}" stroke-width="2"/>`);
    el.push(`<text x="${W - right + 10}" y="${cy + 4}" fill="#212529"${weight}>${esc(`${fmt(s.p50)} ms`)}</text>`);
    el.push(`<title>${esc(`${r.label}: p50 ${fmt(s.p50)} ms, p90 ${fmt(s.p90)} ms, p99 ${fmt(s.p99)} ms, n=${s.n}`)}</title>`);
  });
  el.push(`<text x="${left + plotW / 2}" y="${H - 8}" text-anchor="middle" fill="#868e96">milliseconds (log scale)</text>`);
  el.push('</svg>');
  return el.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// docs/performance.md

export function renderDocs(results) {
  const m = results.machine;
  const s = results.scenarios;
  const L = [];
  L.push('# Performance');
  L.push('');
  L.push('<!-- Generated by `npm run bench` (bench/run.mjs). Edit the generator, not this file. -->');
  L.push('');
  L.push(
    `Measured ${results.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memTotalMiB} MiB RAM, Linux ${m.kernel} (${m.distro ?? 'unknown distribution'}), Node ${m.node}, cgroups ${m.cgroups}. ` +
      'Every number comes from one run of `npm run bench`; the raw samples are in `bench/out/results.json` after a run.',
  );
  if (results.scratchbox && !results.scratchbox.available) {
    L.push('');
    L.push(`> **${results.scratchbox.reason}.** The scratchbox rows are missing from this run.`);
  }
  if (s.lifecycle) {
    L.push('', '## 1. Lifecycle latency', '');
    L.push(
      'One container that runs a static `/true` from a FROM-scratch root filesystem (that binary and nothing else), from the first call to the moment it is gone: ' +
        'create → start → exit → delete. Isolation is the default of every runtime: pid, network, ipc, uts and mount namespaces, the default mounts and devices, a root of its own ' +
        '(pivot_root for the others; scratchbox chroots in a mount namespace copied from an empty base, see below). ' +
        `Each runtime ran ${s.lifecycle.runsPerRuntime} times (runc ${s.lifecycle.runsRunc}) after a warm-up, in ${s.lifecycle.rounds} interleaved rounds, in an order drawn anew for each round, so that machine noise and what one runtime leaves behind for the next hit all of them alike.`,
    );
    L.push('', '![Lifecycle latency per runtime, log scale](perf-latency.svg)', '');
    L.push(lifecycleTable(s.lifecycle));
    const iso = isolationLine(s.lifecycle);
    if (iso) L.push('', iso);
    const st = stealLine(s.lifecycle);
    if (st) L.push('', st);
    const ph = phasesTable(s.lifecycle);
    if (ph) L.push('', 'Where scratchbox spends its time:', '', ph);
    L.push('', HOW_SCRATCHBOX_GETS_THERE);
    L.push('', '### What each row runs', '');
    for (const r of s.lifecycle.rows) {
      L.push(`- **${r.label}**${r.version ? ` (${r.version})` : ''}: ${r.note ?? ''}${r.available ? '' : ` — skipped: ${r.reason}`}`);
      if (r.command) L.push(`  \`${r.command}\``);
    }
    L.push('');
    L.push(
      'The external runtimes are timed by `bench/timer.c`: fork + execve + waitpid of the command line, in C, so Node\'s own spawn cost is not charged to them ' +
        '(the `Node child_process.spawn` row shows what that cost is). timer is a child subreaper and a run ends only when every process it started has been reaped ' +
        '(bubblewrap run as root exits before its pid-namespace init is reaped). crun and runc get an OCI bundle generated by the bench with the defaults of `runc spec` ' +
        '(masked and read-only paths, three capabilities, RLIMIT_NOFILE, noNewPrivileges, a deny-all device cgroup rule) and remove their state at exit (`run` without `--detach`). ' +
        'They and bubblewrap run on a copy of the root filesystem, because they create their mount points in it; scratchbox and the floor put an overlay on the pristine one.',
    );
    L.push('');
    L.push(
      'Differences that remain: crun, runc and bubblewrap write no `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`; runc and crun also create cgroups, drop capabilities and mask paths; ' +
        'bubblewrap bind-mounts the host\'s device nodes and `/sys` (read-only) and keeps itself as pid 1 of the container. ' +
        'The C floor does the namespace, mount, device, /etc, loopback and pivot_root work listed in `bench/floor.c` and nothing else (no masked paths, capabilities, rlimits or seccomp): ' +
        'a lower bound for that work, not a runtime. The issue that asked for this bench defines the floor with pivot_root, and the ratios above use that one; ' +
        "`C floor, base mount namespace` (`floor --base`) is the same program with scratchbox's technique, the lower bound for what scratchbox does now.",
    );
  }
  if (s.throughput) {
    L.push('', '## 2. Throughput', '');
    L.push(
      `Complete lifecycles per second with 1, 2 and 8 concurrent starters, ~${s.throughput.durationMs / 1000} s per cell. ` +
        'scratchbox starters are async loops in one Node process; for the others each starter is its own timer/floor process. ' +
        'Before and after each cell the bench waits until the machine is idle (under 10% CPU over 250 ms, at most 8 s), so that the kernel ' +
        "has finished tearing down the previous cell's namespaces; \"ms CPU\" is the time all CPUs spent per completed container from the start " +
        'of the cell to that idle point (the idle background taken out), kernel work on other threads and in the background included. ' +
        `On ${os.cpus().length} cores no runtime can complete more than ${os.cpus().length} × 1000 / (ms CPU) containers per second: ` +
        'the throughput of containers that each get a fresh network namespace is bound by the kernel (the C floor pays the same), ' +
        "and `namespaces.network: 'shared'` is the opt-in that leaves that cost out.",
    );
    L.push('', throughputTable(s.throughput));
  }
  if (s.scale) {
    L.push('', '## 3. Scale', '');
    L.push(
      `Latency of new containers while ${s.scale.levels.join(', ')} containers running a static \`/sleep\` stay alive, and what each live container costs ` +
        '(MemAvailable from /proc/meminfo and the Node process RSS, measured after the sleepers started).',
    );
    L.push('', scaleTables(s.scale));
  }
  if (s.steadiness) {
    L.push('', '## 4. Steadiness', '');
    L.push(`Node process RSS, heap and open file descriptors before and after ${s.steadiness.runs} sequential lifecycles in one process.`);
    L.push('', steadinessTable(s.steadiness));
  }
  L.push('', '## Reproduce', '');
  L.push('```sh');
  L.push('npm run compile      # scratchbox itself (build/ and dist/)');
  L.push('npm run bench        # all scenarios, ~5 min; writes bench/out/results.json and this page');
  L.push('node bench/run.mjs --quick              # ~30 s smoke run (does not rewrite this page)');
  L.push('node bench/run.mjs --only lifecycle --runs 1000');
  L.push("node bench/isolation.mjs              # each isolation default's cost, paired by round (docs/security.md)");
  L.push('node bench/cgroups.mjs                # what cgroup limits add, against crun (docs/cgroups.md)');
  L.push('```');
  L.push('');
  L.push('The bench must run as root. It builds its C helpers into `bench/out/`, installs crun, runc and bubblewrap with apt-get when they are missing, and checks afterwards that it left no mounts, processes, cgroups or runtime state behind.');
  return L.join('\n') + '\n';
}

/** Why scratchbox can match a C program that does the same work: said next to the numbers. */
const HOW_SCRATCHBOX_GETS_THERE =
  'How scratchbox comes near (or below) the C floor, which does the same kernel work in a tight loop (but no seccomp, no capability drop, no masked paths): the clone shares the Node ' +
  'process\'s memory (CLONE_VM, no page-table copy); the namespaces other than pid are made by the child, off the event loop; ' +
  'the container\'s mount namespace is a copy of a base namespace that holds one empty tmpfs rather than a copy of the host\'s, so ' +
  'there are no host mounts to copy, make private and detach, and the root is entered with chroot instead of pivot_root (which ' +
  'checks every task in the system, a cost that grows with the number of containers alive: see the scale table; ' +
  'docs/architecture.md explains why nothing of the host is left to escape to); ' +
  'mount points and /etc files are written into the overlay\'s empty upper layer before it is mounted; repeated options reuse ' +
  'their spec, plan and encoded buffer (a template: only the id and hostname change) and repeat only the system calls of the ' +
  'disk checks; and a helper thread in the addon, at idle priority, makes fresh network and IPC namespaces ahead of need, builds ' +
  'the next container\'s root (bind-source trees, upper tmpfs, overlay) for the options of the last two (each namespace and root ' +
  'used by one container only) and drops the exited container\'s mount namespace after the exit is reported. The last two move ' +
  'kernel work off the critical path onto the second core, ' +
  'not out of the machine: the throughput table below shows what it costs in CPU (a fresh network namespace per container ' +
  'is the largest item; `namespaces.network: \'shared\'` is the opt-in that avoids it).';
