// Everything the bench prepares before it measures: the C helpers, the
// FROM-scratch root filesystems, the OCI bundles, the external runtimes, and
// the host checks that prove a run left nothing behind.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = path.resolve(benchDir, '..');
export const outDir = path.join(benchDir, 'out');

/** A numeric command-line option of a bench script (`--runs 300`), or `dflt` when not given. */
export function numberArg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

export const paths = {
  out: outDir,
  bin: {
    floor: path.join(outDir, 'floor'),
    timer: path.join(outDir, 'timer'),
    true: path.join(outDir, 'true'),
    sleep: path.join(outDir, 'sleep'),
    probe: path.join(outDir, 'probe'),
  },
  // Pristine rootfs (only /true) for scratchbox and the floor: both put an
  // overlay on top, so it is never written to.
  rootfs: path.join(outDir, 'rootfs'),
  // Same content, for crun, runc and bubblewrap: they create their mount
  // points (/proc, /dev, /sys) inside the directory itself.
  rootfsExt: path.join(outDir, 'rootfs-ext'),
  rootfsSleep: path.join(outDir, 'rootfs-sleep'),
  rootfsProbe: path.join(outDir, 'rootfs-probe'),
  rootfsProbeExt: path.join(outDir, 'rootfs-probe-ext'),
  bundle: path.join(outDir, 'bundle'),
  bundleProbe: path.join(outDir, 'bundle-probe'),
  state: { runc: path.join(outDir, 'state', 'runc'), crun: path.join(outDir, 'state', 'crun') },
  results: path.join(outDir, 'results.json'),
  docs: path.join(repoDir, 'docs', 'performance.md'),
  svg: path.join(repoDir, 'docs', 'perf-latency.svg'),
};

const sources = {
  floor: { src: 'floor.c', flags: ['-O2', '-Wall'] },
  timer: { src: 'timer.c', flags: ['-O2', '-Wall'] },
  true: { src: 'true.c', flags: ['-static', '-O2'] },
  sleep: { src: 'sleep.c', flags: ['-static', '-O2'] },
  probe: { src: 'probe.c', flags: ['-static', '-O2'] },
};

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** Compiles the C helpers into bench/out when missing or older than their source. */
export function buildHelpers(log) {
  fs.mkdirSync(outDir, { recursive: true });
  const cc = process.env.CC || 'cc';
  for (const [name, { src, flags }] of Object.entries(sources)) {
    const srcPath = path.join(benchDir, src);
    const binPath = paths.bin[name];
    if (mtime(binPath) >= mtime(srcPath)) continue;
    log(`building ${path.relative(repoDir, binPath)} (${cc} ${flags.join(' ')})`);
    execFileSync(cc, [...flags, '-o', binPath, srcPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

function insideOut(dir) {
  const rel = path.relative(outDir, dir);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`refusing to touch ${dir}`);
}

/** Makes `dir` hold exactly the given files (name -> host binary), nothing else. */
function exactRootfs(dir, files) {
  insideOut(dir);
  const want = Object.keys(files).sort();
  let have = null;
  try {
    have = fs.readdirSync(dir).sort();
  } catch {}
  const fresh =
    have &&
    have.length === want.length &&
    have.every((n, i) => n === want[i]) &&
    want.every((n) => mtime(path.join(dir, n)) >= mtime(files[n]));
  if (fresh) return;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  for (const [name, src] of Object.entries(files)) {
    fs.copyFileSync(src, path.join(dir, name));
    fs.chmodSync(path.join(dir, name), 0o755);
  }
}

/** Makes `dir` hold the given files, leaving whatever else the runtimes created. */
function seededRootfs(dir, files) {
  insideOut(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, src] of Object.entries(files)) {
    const dst = path.join(dir, name);
    if (mtime(dst) >= mtime(src)) continue;
    fs.rmSync(dst, { force: true });
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, 0o755);
  }
}

export function prepareRootfs() {
  exactRootfs(paths.rootfs, { true: paths.bin.true });
  exactRootfs(paths.rootfsSleep, { sleep: paths.bin.sleep });
  exactRootfs(paths.rootfsProbe, { true: paths.bin.true, probe: paths.bin.probe });
  seededRootfs(paths.rootfsExt, { true: paths.bin.true });
  seededRootfs(paths.rootfsProbeExt, { true: paths.bin.true, probe: paths.bin.probe });
  for (const d of Object.values(paths.state)) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
}

// ---------------------------------------------------------------------------
// OCI bundle: the defaults `runc spec` / `crun spec` produce (see
// docs in shared/REFERENCE.md), with process.args, root and terminal set for
// a non-interactive run of one static binary.

const defaultCaps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export function ociConfig({ rootfs, args, hostname = 'bench' }) {
  const mount = (destination, type, source, options) =>
    options ? { destination, type, source, options } : { destination, type, source };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: {
        bounding: defaultCaps,
        effective: defaultCaps,
        permitted: defaultCaps,
        ambient: defaultCaps,
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: false },
    hostname,
    mounts: [
      mount('/proc', 'proc', 'proc'),
      mount('/dev', 'tmpfs', 'tmpfs', ['nosuid', 'strictatime', 'mode=755', 'size=65536k']),
      mount('/dev/pts', 'devpts', 'devpts', ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']),
      mount('/dev/shm', 'tmpfs', 'shm', ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']),
      mount('/dev/mqueue', 'mqueue', 'mqueue', ['nosuid', 'noexec', 'nodev']),
      mount('/sys', 'sysfs', 'sysfs', ['nosuid', 'noexec', 'nodev', 'ro']),
      mount('/sys/fs/cgroup', 'cgroup', 'cgroup', ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']),
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
        '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

export function writeBundles() {
  for (const [dir, rootfs, args] of [
    [paths.bundle, paths.rootfsExt, ['/true']],
    [paths.bundleProbe, paths.rootfsProbeExt, ['/probe']],
  ]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(ociConfig({ rootfs, args }), null, 2) + '\n');
  }
}

// ---------------------------------------------------------------------------
// External tools

export function which(bin) {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return null;
}

/**
 * Returns { path } when `bin` is on PATH, installing Debian package `pkg`
 * with apt-get first when allowed; otherwise { path: null, reason }.
 */
export function ensureTool(bin, pkg, { install, log }) {
  let p = which(bin);
  if (p) return { path: p };
  if (!install) return { path: null, reason: `${bin} is not installed (and --no-install was given)` };
  if (process.getuid?.() !== 0) return { path: null, reason: `${bin} is not installed and the bench is not root` };
  if (!which('apt-get')) return { path: null, reason: `${bin} is not installed and there is no apt-get` };
  const apt = (args) =>
    spawnSync('apt-get', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  log(`installing ${pkg} with apt-get (${bin} is missing)`);
  let r = apt(['install', '-y', '-qq', pkg]);
  if (r.status !== 0) {
    apt(['update', '-qq']);
    r = apt(['install', '-y', '-qq', pkg]);
  }
  p = which(bin);
  if (p) return { path: p };
  return { path: null, reason: `${bin} is missing and apt-get install ${pkg} failed: ${String(r.stderr).trim().split('\n').pop()}` };
}

export function toolVersion(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0].trim() || null;
}

// ---------------------------------------------------------------------------
// Host facts and hygiene

export function mountInfo() {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const dash = f.indexOf('-');
      return { mountPoint: f[4], fstype: f[dash + 1], line };
    });
}

/** 'v2' (unified), 'hybrid' (v1 controllers + cgroup2 at /sys/fs/cgroup/unified), 'v1', or 'none'. */
export function cgroupLayout() {
  const m = mountInfo();
  const at = (p) => m.filter((x) => x.mountPoint === p).pop();
  if (at('/sys/fs/cgroup')?.fstype === 'cgroup2') return 'v2';
  if (at('/sys/fs/cgroup/unified')?.fstype === 'cgroup2') return 'hybrid';
  if (m.some((x) => x.fstype === 'cgroup')) return 'v1';
  return 'none';
}

export function hostMountNs() {
  return fs.readlinkSync('/proc/self/ns/mnt');
}

function childrenOf(pid) {
  const kids = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) kids.push({ pid: Number(e), state: rest[0], comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch {}
  }
  return kids;
}

function cgroupLeftovers(idPrefix) {
  const found = [];
  const walk = (dir, depth) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(idPrefix)) found.push(p);
      else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

function dirEntries(dir) {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** A snapshot of everything a bench run must leave as it found it. */
export function hygieneSnapshot(idPrefix) {
  const m = mountInfo();
  return {
    mounts: m.length,
    mountLines: m.map((x) => x.line.split(' ').slice(4, 5).concat(x.fstype).join(' ')),
    cgroupUnifiedMounted: m.some((x) => x.mountPoint === '/sys/fs/cgroup/unified'),
    children: childrenOf(process.pid),
    cgroupLeftovers: cgroupLeftovers(idPrefix),
    runcState: dirEntries(paths.state.runc),
    crunState: dirEntries(paths.state.crun),
  };
}

/** Compares two snapshots; returns a list of problems (empty when clean). */
export function hygieneProblems(before, after) {
  const problems = [];
  const added = after.mountLines.filter((l) => !before.mountLines.includes(l));
  const removed = before.mountLines.filter((l) => !after.mountLines.includes(l));
  if (added.length) problems.push(`host mounts added: ${added.join(', ')}`);
  if (removed.length) problems.push(`host mounts removed: ${removed.join(', ')}`);
  if (before.cgroupUnifiedMounted && !after.cgroupUnifiedMounted)
    problems.push('/sys/fs/cgroup/unified is no longer mounted on the host');
  const kids = after.children.filter((c) => !before.children.some((b) => b.pid === c.pid));
  if (kids.length) problems.push(`child processes left: ${kids.map((k) => `${k.pid} ${k.comm} (${k.state})`).join(', ')}`);
  if (after.cgroupLeftovers.length) problems.push(`cgroups left: ${after.cgroupLeftovers.join(', ')}`);
  if (after.runcState.length) problems.push(`runc state left: ${after.runcState.join(', ')}`);
  if (after.crunState.length) problems.push(`crun state left: ${after.crunState.join(', ')}`);
  return problems;
}

export function machineInfo() {
  const cpu = os.cpus();
  let distro = null;
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
  } catch {}
  return {
    cpuModel: cpu[0]?.model?.trim() ?? null,
    cpus: cpu.length,
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    distro,
    node: process.version,
    cgroups: cgroupLayout(),
  };
}

export function memAvailableKiB() {
  const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function openFds() {
  return fs.readdirSync('/proc/self/fd').length;
}
