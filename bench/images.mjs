#!/usr/bin/env node
// The image bench: `node bench/images.mjs` (root; needs buildah, skopeo, podman, docker-registry
// and busybox-static, all Debian packages). In one run, and interleaved where it can be:
//
//   import   a docker-save archive of a few hundred MB (three layers of real files from /usr/lib,
//            written once by buildah into bench/out/images/) into a fresh store each time:
//            ImageStore.import against `skopeo copy docker-archive: oci:` and `podman load`
//   pull     the same image from a docker-registry on 127.0.0.1 (gzip layers, as skopeo pushes
//            them): ImageStore.pull against `skopeo copy docker:// oci:` and `podman pull`
//   create   Container.create() of busybox from a directory, from a one-layer image of the same
//            tree (an Image, and a ref string the store looks up), from a five-layer image, and
//            from the directory with keep: true; p50 of a few hundred each, interleaved
//
// Prints a markdown table (and writes it with the raw numbers to bench/out/images.json).
// The page cache is warm for every contender alike after the first repetition (this bench never
// drops caches: the machine is shared). skopeo copies blobs and unpacks nothing; podman and the
// store unpack every layer, so podman is the like-for-like comparison there.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmt, summarize } from './lib/stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoDir = path.resolve(benchDir, '..');
const out = path.join(benchDir, 'out', 'images');
const archive = path.join(out, 'usr-lib.docker.tar');
const LAYERS = [['/usr/lib/gcc'], ['/usr/lib/python3.11', '/usr/lib/python3'], ['/usr/libexec']];

const USAGE = `usage: node bench/images.mjs [--reps N] [--creates N] [--only import,pull,create]

  --reps N      repetitions of each import and pull (default 3; the median is reported)
  --creates N   create() calls per variant (default 300)
  --only LIST   a subset of: import, pull, create
`;

function parseArgs(argv) {
  const o = { reps: 3, creates: 300, only: new Set(['import', 'pull', 'create']) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`);
      return n;
    };
    if (a === '--reps') o.reps = num();
    else if (a === '--creates') o.creates = num();
    else if (a === '--only') o.only = new Set(String(argv[++i]).split(','));
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}

const log = (m) => process.stderr.write(`[images] ${m}\n`);
const sh = (bin, args, opts = {}) => execFileSync(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, ...opts }).toString();
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
const time = async (fn) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const median = (xs) => summarize(xs).p50;

function need(bins) {
  const missing = bins.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  if (missing.length) throw new Error(`missing tools: ${missing.join(', ')} (apt-get install buildah skopeo podman docker-registry busybox-static)`);
}

/**
 * containers/storage flags of a fresh store under dir (overlay, as podman's default here). The
 * run root goes in /tmp: podman refuses one longer than 50 characters.
 */
const runRoot = (dir) => `/tmp/sbx-bench-${process.pid}-${path.basename(dir)}`;
const storage = (dir) => ['--root', `${dir}/root`, '--runroot', runRoot(dir), '--storage-driver', 'overlay'];

/** The archive, written once by buildah: one layer per entry of LAYERS, as `docker save` lays it out. */
function makeArchive() {
  if (fs.existsSync(archive)) return;
  log(`writing ${path.relative(repoDir, archive)} with buildah (once)`);
  const tmp = path.join(out, 'buildah');
  rm(tmp);
  const b = (...args) => sh('buildah', [...storage(tmp), ...args]).trim();
  let from = 'scratch';
  for (const [i, dirs] of LAYERS.entries()) {
    const c = b('from', from);
    for (const d of dirs) b('copy', c, d, d);
    b('commit', '-q', c, `bench-layer:${i}`);
    b('rm', c);
    from = `bench-layer:${i}`;
  }
  b('push', '-q', from, `docker-archive:${archive}.part:bench/usr-lib:1`);
  fs.renameSync(`${archive}.part`, archive);
  try {
    b('rmi', '--all', '--force');
  } finally {
    rm(tmp);
    rm(runRoot(tmp));
  }
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** docker-registry on loopback holding the archive's image (pushed by skopeo, layers gzip'ed). */
async function startRegistry() {
  const dir = path.join(out, 'registry');
  rm(dir);
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  fs.writeFileSync(`${dir}/config.yml`, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const proc = spawn('docker-registry', ['serve', `${dir}/config.yml`], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    if (await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)) break;
    if (i > 100 || proc.exitCode !== null) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const ref = `127.0.0.1:${port}/bench/usr-lib:1`;
  sh('skopeo', ['copy', '-q', '--insecure-policy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${ref}`]);
  const manifest = await (await fetch(`http://127.0.0.1:${port}/v2/bench/usr-lib/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } })).json();
  const bytes = manifest.layers.reduce((s, l) => s + l.size, 0) + manifest.config.size;
  return { ref, bytes, stop: () => proc.kill('SIGTERM'), dir };
}

/**
 * Runs each contender `reps` times, in rotating order (so none always goes first on a cold
 * cache), each into a fresh destination that is removed afterwards (untimed).
 */
async function rounds(contenders, reps) {
  const ms = Object.fromEntries(contenders.map((c) => [c.id, []]));
  for (let r = 0; r < reps; r++)
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length];
      const dest = path.join(out, `dest-${c.id}`);
      rm(dest);
      fs.mkdirSync(dest, { recursive: true });
      try {
        ms[c.id].push(await time(() => c.run(dest)));
      } finally {
        if (c.cleanup) c.cleanup(dest);
        rm(dest);
      }
    }
  return ms;
}

const podmanCleanup = (dest) => {
  spawnSync('podman', [...storage(dest), 'rmi', '--all', '--force'], { stdio: 'ignore' });
  rm(runRoot(dest));
};

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the image bench needs root (layers hold owners and device nodes; containers are started)');
  need(['buildah', 'skopeo', 'podman', 'docker-registry', 'busybox']);
  const dist = path.join(repoDir, 'dist', 'index.js');
  if (!fs.existsSync(dist)) throw new Error('scratchbox is not built: run npm ci (or npm run compile) first');
  const { Container, ImageStore } = await import(pathToFileURL(dist).href);
  fs.mkdirSync(out, { recursive: true });
  const rows = [];
  const raw = {};
  const versions = {
    skopeo: sh('skopeo', ['--version']).trim(),
    podman: sh('podman', ['--version']).trim(),
    buildah: sh('buildah', ['--version']).trim().split(' (')[0],
  };

  if (opts.only.has('import') || opts.only.has('pull')) makeArchive();
  const archiveBytes = fs.existsSync(archive) ? fs.statSync(archive).size : 0;
  const mb = (bytes, ms) => bytes / 1e6 / (ms / 1000);

  if (opts.only.has('import')) {
    log(`import: ${fmt(archiveBytes / 1e6)} MB archive, ${opts.reps} rounds`);
    const ms = await rounds(
      [
        { id: 'sbx-import', run: async (d) => (await ImageStore.open(`${d}/store`)).import(archive) },
        { id: 'skopeo-import', run: async (d) => sh('skopeo', ['copy', '-q', '--insecure-policy', `docker-archive:${archive}`, `oci:${d}/oci:bench`]) },
        { id: 'podman-load', run: async (d) => sh('podman', [...storage(d), 'load', '-q', '-i', archive]), cleanup: podmanCleanup },
      ],
      opts.reps,
    );
    raw.import = ms;
    const label = { 'sbx-import': 'scratchbox `store.import(archive)`', 'skopeo-import': '`skopeo copy docker-archive: oci:` (blobs only, nothing unpacked)', 'podman-load': '`podman load` (overlay storage)' };
    for (const [id, xs] of Object.entries(ms)) rows.push({ what: `import, ${fmt(archiveBytes / 1e6)} MB docker-save archive, 3 layers`, who: label[id], value: `${fmt(mb(archiveBytes, median(xs)))} MB/s`, detail: `${fmt(median(xs) / 1000)} s median of ${xs.length}` });
  }

  if (opts.only.has('pull')) {
    const reg = await startRegistry();
    try {
      log(`pull: ${fmt(reg.bytes / 1e6)} MB (compressed) from ${reg.ref}, ${opts.reps} rounds`);
      const ms = await rounds(
        [
          { id: 'sbx-pull', run: async (d) => (await ImageStore.open(`${d}/store`)).pull(reg.ref, { insecure: true }) },
          { id: 'skopeo-pull', run: async (d) => sh('skopeo', ['copy', '-q', '--insecure-policy', '--src-tls-verify=false', `docker://${reg.ref}`, `oci:${d}/oci:bench`]) },
          { id: 'podman-pull', run: async (d) => sh('podman', [...storage(d), 'pull', '-q', '--tls-verify=false', reg.ref]), cleanup: podmanCleanup },
        ],
        opts.reps,
      );
      raw.pull = ms;
      const label = { 'sbx-pull': 'scratchbox `store.pull(ref, { insecure: true })`', 'skopeo-pull': '`skopeo copy docker:// oci:` (blobs only, nothing unpacked)', 'podman-pull': '`podman pull` (overlay storage)' };
      for (const [id, xs] of Object.entries(ms)) rows.push({ what: `pull, ${fmt(reg.bytes / 1e6)} MB of gzip layers from docker-registry on 127.0.0.1`, who: label[id], value: `${fmt(mb(reg.bytes, median(xs)))} MB/s`, detail: `${fmt(median(xs) / 1000)} s median of ${xs.length}` });
    } finally {
      reg.stop();
      rm(reg.dir);
    }
  }

  if (opts.only.has('create')) {
    const dir = path.join(out, 'create');
    rm(dir);
    const tree = `${dir}/busybox`;
    fs.mkdirSync(`${tree}/bin`, { recursive: true });
    fs.copyFileSync(fs.realpathSync(sh('sh', ['-c', 'command -v busybox']).trim()), `${tree}/bin/busybox`);
    for (const a of ['sh', 'true', 'echo', 'cat', 'ls']) fs.symlinkSync('busybox', `${tree}/bin/${a}`);
    const store = await ImageStore.open(`${dir}/store`);
    const one = await store.scratch().copy(tree, '/').build('bench-busybox:1');
    // Four more layers, each a commit of a container that wrote one file.
    let five = one;
    for (let i = 1; i < 5; i++) {
      const c = await Container.create({ image: five, store, keep: true, args: ['/bin/sh', '-c', `echo ${i} > /layer-${i}`], stdio: 'ignore' });
      await c.start();
      await c.wait();
      five = await c.commit(`bench-busybox:${i + 1}-layers`);
      await c.delete();
      rm(c.keptDir);
    }
    const base = { args: ['/bin/true'], stdio: 'ignore' };
    const variants = [
      { id: 'dir', label: '`{ rootfs }` (the tree as a directory)', opts: { ...base, rootfs: tree } },
      { id: 'image', label: '`{ image }`, a one-layer Image of the same tree', opts: { ...base, image: one, store } },
      { id: 'ref', label: "`{ image: 'bench-busybox:1', store }` (looked up by ref)", opts: { ...base, image: 'bench-busybox:1', store } },
      { id: 'five', label: '`{ image }`, five layers (four commits on it)', opts: { ...base, image: five, store } },
      { id: 'keep', label: '`{ rootfs, keep: true }` (upper layer a directory of the store)', opts: { ...base, rootfs: tree, store, keep: true } },
    ];
    const ms = Object.fromEntries(variants.map((v) => [v.id, []]));
    log(`create: ${opts.creates} of each of ${variants.length} variants, interleaved`);
    const once = async (v) => {
      const t0 = performance.now();
      const c = await Container.create(v.opts);
      const t = performance.now() - t0;
      await c.delete();
      if (c.keptDir) rm(c.keptDir);
      return t;
    };
    for (let i = 0; i < 10; i++) for (const v of variants) await once(v); // warm-up: caches, the netns pool
    for (let i = 0; i < opts.creates; i++)
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(i + k) % variants.length];
        ms[v.id].push(await once(v));
      }
    raw.create = ms;
    const dirP50 = summarize(ms.dir).p50;
    for (const v of variants) {
      const s = summarize(ms[v.id]);
      rows.push({ what: 'Container.create() of busybox (never started; delete() untimed)', who: v.label, value: `${fmt(s.p50)} ms p50`, detail: `p90 ${fmt(s.p90)} ms${v.id === 'dir' ? '' : `, ${s.p50 >= dirP50 ? '+' : ''}${fmt(s.p50 - dirP50)} ms vs the directory`}` });
    }
    rm(dir);
  }

  const lines = ['| what | who | result | detail |', '|---|---|---|---|'];
  let last = '';
  for (const r of rows) {
    lines.push(`| ${r.what === last ? '' : r.what} | ${r.who} | ${r.value} | ${r.detail} |`);
    last = r.what;
  }
  const table = lines.join('\n');
  const cpu = (await import('node:os')).cpus();
  const header = `\`node bench/images.mjs --reps ${opts.reps} --creates ${opts.creates}\` on ${cpu.length} × ${cpu[0]?.model?.trim()}, kernel ${(await import('node:os')).release()}, ${versions.skopeo}, ${versions.podman}, ${versions.buildah}:`;
  process.stdout.write(`${header}\n\n${table}\n`);
  fs.writeFileSync(path.join(benchDir, 'out', 'images.json'), JSON.stringify({ header, rows, raw, archiveBytes }, null, 2));
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
