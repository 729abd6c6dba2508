// The things the bench compares. Each runner runs `k` container lifecycles
// (create -> start -> exit -> delete of a static /true) and returns their
// latencies in milliseconds.
//
//   scratchbox   in this Node process, through dist/index.js
//   floor        bench/floor.c: clone + the same mounts + pivot_root + execve
//   floor-nonet  the same without a network namespace
//   spawn        fork + execve + waitpid of /true on the host (bench/timer.c)
//   node-spawn   child_process.spawn of /true from this Node process
//   bwrap, crun, runc   timed from bench/timer.c (fork + exec + wait of the CLI)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cgroupLayout, ensureTool, hostMountNs, paths, repoDir, toolVersion } from './setup.mjs';

const rel = (p) => path.relative(repoDir, p);

/** Runs argv; resolves { code, signal, stdout, stderr, ms }. Never rejects on exit status. */
export function runProcess(argv, { env, input } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), {
      env: env ? { ...process.env, ...env } : process.env,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - t0 }),
    );
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the command may exit before reading its input
      child.stdin.end(input);
    }
  });
}

/** Parses one latency in microseconds per line into milliseconds. */
export function parseLatencies(stdout) {
  return stdout
    .split('\n')
    .filter((l) => /^\d/.test(l))
    .map((l) => Number(l) / 1000);
}

// Runs the wrapped command in a private mount namespace with the cgroup2
// mount of a hybrid host removed there (crun 1.8 refuses hybrid hosts). The
// guard compares mount namespace ids so the umount can never hit the host's
// namespace, even if unshare were to misbehave.
const CRUN_HYBRID_WRAPPER = [
  '[ "$(readlink /proc/self/ns/mnt)" != "$SB_HOST_MNTNS" ] || { echo "crun wrapper: not in a private mount namespace" >&2; exit 97; }',
  'umount /sys/fs/cgroup/unified || exit 98',
  'exec "$@"',
].join('\n');

/**
 * An external runner. `inner(k, tag)` is the command that prints k latencies;
 * `wrap` optionally prefixes it (the crun workaround).
 */
function externalRunner({ id, label, note, tool, version, inner, wrap, env, command, after }) {
  const argv = (k, tag) => (wrap ? wrap(inner(k, tag)) : inner(k, tag));
  return {
    id,
    label,
    note,
    kind: 'external',
    available: true,
    tool,
    version,
    command,
    argv,
    env,
    /** Host check after a batch (the crun workaround verifies the host kept its cgroup2 mount). */
    check: after ?? (() => {}),
    async batch(k, tag) {
      const r = await runProcess(argv(k, tag), { env });
      after?.();
      const lat = parseLatencies(r.stdout);
      if (r.code !== 0 || lat.length !== k)
        throw new Error(`${id}: exit ${r.code ?? r.signal}, ${lat.length}/${k} runs: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return lat;
    },
  };
}

function unavailable(id, label, reason, note) {
  return { id, label, note, kind: 'external', available: false, reason };
}

/** floor, floor-nonet, spawn, node-spawn, bwrap, crun, runc (in that order). */
export function externalRunners({ install, log, only }) {
  const want = (id) => !only || only.includes(id);
  const T = paths.bin.timer;
  const runners = [];

  if (want('floor'))
    runners.push(
      externalRunner({
        id: 'floor',
        label: 'C floor',
        note: 'bench/floor.c: clone(CLONE_VM|CLONE_VFORK + 5 namespaces) + same mounts/devices/etc + pivot_root + execve, waitpid',
        inner: (k) => [paths.bin.floor, paths.rootfs, String(k)],
        command: `${rel(paths.bin.floor)} ${rel(paths.rootfs)} N`,
      }),
    );
  if (want('floor-nonet'))
    runners.push(
      externalRunner({
        id: 'floor-nonet',
        label: 'C floor, no netns',
        note: 'the floor without CLONE_NEWNET (and without bringing lo up)',
        inner: (k) => [paths.bin.floor, paths.rootfs, String(k), '--no-net'],
        command: `${rel(paths.bin.floor)} ${rel(paths.rootfs)} N --no-net`,
      }),
    );
  if (want('floor-base'))
    runners.push(
      externalRunner({
        id: 'floor-base',
        label: 'C floor, base mount namespace',
        note: "the floor with scratchbox's technique (--base): the root built detached while the child still sees the host, a mount namespace copied from an empty base, the root attached there, chroot instead of pivot_root",
        inner: (k) => [paths.bin.floor, paths.rootfs, String(k), '--base'],
        command: `${rel(paths.bin.floor)} ${rel(paths.rootfs)} N --base`,
      }),
    );
  if (want('spawn'))
    runners.push(
      externalRunner({
        id: 'spawn',
        label: 'plain fork+exec',
        note: 'fork + execve + waitpid of the same static /true on the host, no isolation',
        inner: (k) => [T, String(k), '--', path.join(paths.rootfs, 'true')],
        command: `${rel(T)} N -- ${rel(path.join(paths.rootfs, 'true'))}`,
      }),
    );
  if (want('node-spawn')) runners.push(nodeSpawnRunner());

  if (want('bwrap')) {
    const t = ensureTool('bwrap', 'bubblewrap', { install, log });
    const bwrapArgs = [
      '--unshare-pid', '--unshare-net', '--unshare-ipc', '--unshare-uts',
      '--bind', paths.rootfsExt, '/',
      '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/dev/shm', '--mqueue', '/dev/mqueue',
      '--ro-bind', '/sys', '/sys', '--hostname', 'bench', '--', '/true',
    ];
    runners.push(
      t.path
        ? externalRunner({
            id: 'bwrap',
            label: 'bubblewrap',
            note: 'bwrap with pid/net/ipc/uts/mount namespaces, proc, dev, shm, mqueue, ro /sys; no /etc files',
            tool: t.path,
            version: toolVersion(t.path),
            inner: (k) => [T, String(k), '--', t.path, ...bwrapArgs],
            command: `${rel(T)} N -- bwrap ${bwrapArgs.map((a) => (a.startsWith('/') && a.length > 20 ? rel(a) : a)).join(' ')}`,
          })
        : unavailable('bwrap', 'bubblewrap', t.reason),
    );
  }

  for (const [id, label] of [
    ['crun', 'crun run'],
    ['runc', 'runc run'],
  ]) {
    if (!want(id)) continue;
    const t = ensureTool(id, id, { install, log });
    if (!t.path) {
      runners.push(unavailable(id, label, t.reason));
      continue;
    }
    const state = paths.state[id];
    const inner = (k, tag) => [T, '--id', tag, String(k), '--', t.path, '--root', state, 'run', '--bundle', paths.bundle, '{ID}'];
    let wrap;
    let env;
    let after;
    let command = `${rel(T)} --id TAG N -- ${id} --root ${rel(state)} run --bundle ${rel(paths.bundle)} TAG-<i>`;
    if (id === 'crun' && cgroupLayout() === 'hybrid') {
      if (!fs.existsSync('/usr/bin/unshare') && !fs.existsSync('/bin/unshare')) {
        runners.push(unavailable(id, label, 'crun 1.8 refuses hybrid cgroup hosts and unshare(1) is missing for the workaround'));
        continue;
      }
      env = { SB_HOST_MNTNS: hostMountNs() };
      wrap = (cmd) => ['unshare', '-m', '--propagation', 'private', 'sh', '-c', CRUN_HYBRID_WRAPPER, 'crun-bench', ...cmd];
      after = () => {
        if (cgroupLayout() !== 'hybrid') throw new Error('host lost /sys/fs/cgroup/unified after a crun batch: stopping');
      };
      command = `unshare -m --propagation private sh -c '<check private mnt ns>; umount /sys/fs/cgroup/unified && exec "$@"' crun-bench ${command}`;
    }
    runners.push(
      externalRunner({
        id,
        label,
        note:
          id === 'crun' && wrap
            ? 'OCI bundle with the `crun spec` defaults; run inside a private mount namespace without /sys/fs/cgroup/unified (hybrid-host workaround, paid once per batch, not per run)'
            : 'OCI bundle with the `runc spec` defaults (cgroups v1 on this host)',
        tool: t.path,
        version: toolVersion(t.path),
        inner,
        wrap,
        env,
        after,
        command,
      }),
    );
  }
  return runners;
}

function nodeSpawnRunner() {
  const bin = path.join(paths.rootfs, 'true');
  const once = () =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const c = spawn(bin, [], { stdio: 'ignore' });
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`node-spawn: exit ${code}`))));
    });
  return {
    id: 'node-spawn',
    label: 'Node child_process.spawn',
    note: "child_process.spawn of the host /true from this Node process, awaited on 'exit'; no isolation",
    kind: 'inproc',
    available: true,
    command: `spawn('${rel(bin)}', [], { stdio: 'ignore' }) → 'exit'`,
    async batch(k) {
      const lat = [];
      for (let i = 0; i < k; i++) lat.push(await once());
      return lat;
    },
  };
}

// ---------------------------------------------------------------------------
// scratchbox

/** Loads dist/index.js; resolves { available, reason?, Container?, version? }. */
export async function loadScratchbox(modulePath) {
  const entry = modulePath ?? path.join(repoDir, 'dist', 'index.js');
  if (!fs.existsSync(entry))
    return {
      available: false,
      reason: modulePath ? `scratchbox: ${modulePath} does not exist` : 'scratchbox: not built (dist/index.js is missing; run `npm run compile`)',
    };
  let mod;
  try {
    mod = await import(pathToFileURL(entry).href);
  } catch (e) {
    return { available: false, reason: `scratchbox: ${rel(entry)} failed to load: ${e.message}` };
  }
  const Container = mod.Container ?? mod.default?.Container;
  if (typeof Container?.create !== 'function') return { available: false, reason: `scratchbox: ${rel(entry)} exports no Container.create` };
  let version = null;
  try {
    version = JSON.parse(fs.readFileSync(path.join(repoDir, 'package.json'), 'utf8')).version;
  } catch {}
  return { available: true, Container, ImageStore: mod.ImageStore ?? null, version, module: rel(entry) };
}

/**
 * One create -> start -> wait -> delete. Returns the total in ms and, when
 * `phases` is given, pushes [create, start, wait, delete] ms onto it.
 */
export async function sbLifecycle(Container, rootfs, phases, namespaces, extra) {
  const t0 = performance.now();
  const where = extra?.image ? {} : { rootfs };
  const c = await Container.create({ ...where, args: ['/true'], stdio: 'ignore', ...(namespaces ? { namespaces } : {}), ...extra });
  let t1, t2, t3, exitCode;
  try {
    t1 = performance.now();
    await c.start();
    t2 = performance.now();
    ({ exitCode } = await c.wait());
    t3 = performance.now();
  } catch (e) {
    await c.delete().catch(() => {});
    throw e;
  }
  await c.delete();
  const t4 = performance.now();
  if (exitCode !== 0) throw new Error(`scratchbox: /true exited ${exitCode}`);
  phases?.push([t1 - t0, t2 - t1, t3 - t2, t4 - t3]);
  return t4 - t0;
}

/** Stops a long-running container (SIGTERM), waits for it and deletes it. */
export async function sbStop(c) {
  try {
    if (typeof c.kill === 'function') await c.kill('SIGTERM');
    else if (c.pid) process.kill(c.pid, 'SIGTERM');
  } catch {}
  try {
    await c.wait();
  } finally {
    await c.delete();
  }
}

export function scratchboxRunner(sb) {
  if (!sb.available) return { id: 'scratchbox', label: 'scratchbox', kind: 'inproc', available: false, reason: sb.reason };
  const phases = [];
  return {
    id: 'scratchbox',
    label: 'scratchbox',
    note: 'Container.create({ rootfs, args: ["/true"], stdio: "ignore" }) → start() → wait() → delete(), in this Node process, with the default isolation (seccomp, no_new_privs, and whatever else the version has by default)',
    kind: 'inproc',
    available: true,
    version: sb.version,
    command: `await Container.create({ rootfs: '${rel(paths.rootfs)}', args: ['/true'], stdio: 'ignore' }); start(); wait(); delete()`,
    phases,
    async batch(k, _tag, { record = true } = {}) {
      const lat = [];
      for (let i = 0; i < k; i++) lat.push(await sbLifecycle(sb.Container, paths.rootfs, record ? phases : undefined));
      return lat;
    },
  };
}

/**
 * Variants of the scratchbox row, in the same run: 'privileged' (privileged: true, and no
 * no_new_privs: what a container was before the isolation defaults, so the difference to the
 * first row is their cost), and 'image' (the same /true from a one-layer image of an ImageStore
 * instead of the rootfs directory).
 */
export async function scratchboxVariants(sb, storeDir) {
  if (!sb.available) return [];
  const out = [];
  const make = (id, label, note, command, extra) => ({
    id,
    label,
    note,
    kind: 'inproc',
    available: true,
    version: sb.version,
    command,
    async batch(k) {
      const lat = [];
      for (let i = 0; i < k; i++) lat.push(await sbLifecycle(sb.Container, paths.rootfs, undefined, undefined, extra));
      return lat;
    },
  });
  out.push(
    make(
      'scratchbox-privileged',
      'scratchbox, privileged (no isolation defaults)',
      'the scratchbox row with privileged: true and noNewPrivileges: false: no seccomp filter, no capability drop, no masked paths',
      `Container.create({ rootfs, args: ['/true'], stdio: 'ignore', privileged: true, noNewPrivileges: false })`,
      { privileged: true, noNewPrivileges: false },
    ),
  );
  if (sb.ImageStore) {
    fs.rmSync(storeDir, { recursive: true, force: true });
    const store = await sb.ImageStore.open(storeDir);
    const image = await store.scratch().copy(path.join(paths.rootfs, 'true'), '/true').build('bench-true:latest');
    out.push(
      make(
        'scratchbox-image',
        'scratchbox, from an image',
        'the scratchbox row with the same /true as a one-layer image of an ImageStore (its layer directory the overlay\'s lower layer)',
        `Container.create({ image, args: ['/true'], stdio: 'ignore' }) with image = store.scratch().copy(true, '/true').build()`,
        { image },
      ),
    );
  }
  return out;
}
