/**
 * Several Node processes on one store: imports and gc at once serialise on the store's lock and
 * leave a consistent store; a process killed mid-import leaves nothing that is used, its lock goes
 * stale, and the next import finishes the job.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore } from '../../src-ts/index.js';
import { isRoot, ROOT_REASON } from './helpers.js';
import { dockerSaveOci, layer, listing, sha, writeArchive, type Layer } from './image-fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const worker = `${root}test/integration/image-worker.ts`;

function run(args: string[], onLine?: (line: string, kill: () => void) => void): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  const p = spawn(`${root}node_modules/.bin/vite-node`, [worker, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    for (const line of c.toString().split('\n')) if (line) onLine?.(line, () => p.kill('SIGKILL'));
  });
  p.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((res) => p.on('close', (code, signal) => res({ code, signal, out, err })));
}

describe.skipIf(!isRoot)(`one store, several processes (${ROOT_REASON})`, () => {
  let work: string;
  let base: Layer;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-procs-`);
    base = await layer([{ name: 'base', content: randomBytes(2 << 20) }], 'gzip');
    for (const i of [1, 2, 3]) {
      const top = await layer([{ name: `top${i}`, content: `top${i}` }, { name: '.wh.gone', content: '' }], i === 2 ? 'zstd' : 'gzip');
      await writeArchive(`${work}/img${i}.tar`, dockerSaveOci([base, top], [`test/p:${i}`]).files);
    }
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('three imports and a gc in four processes at once all succeed, sharing the base layer', async () => {
    const dir = `${work}/shared`;
    const results = await Promise.all([
      ...[1, 2, 3].map((i) => run([dir, 'import', `${work}/img${i}.tar`])),
      run([dir, 'gc']),
    ]);
    for (const r of results) expect(r, r.err).toMatchObject({ code: 0 });
    const store = await ImageStore.open(dir);
    expect((await store.list()).map((i) => i.ref)).toEqual(['test/p:1', 'test/p:2', 'test/p:3']);
    expect(readdirSync(`${dir}/layers`)).toHaveLength(4); // the shared base and three tops
    for (const i of [1, 2, 3]) {
      const r = await store.resolve(`test/p:${i}`);
      expect(r.layers[0]).toBe(store.layerPath(sha(base.tar)));
      expect(listing(r.layers[1]!).map((l) => l.split(' ')[3])).toEqual(['gone', `top${i}`]);
    }
    expect(readdirSync(`${dir}/tmp`)).toEqual([]);
    expect(existsSync(`${dir}/lock`)).toBe(false);
  });

  it('a process killed mid-import leaves nothing used; after its lock goes stale the next import completes', async () => {
    const dir = `${work}/crash`;
    const big = await layer([{ name: 'big', content: randomBytes(24 << 20) }]);
    await writeArchive(`${work}/big.tar`, dockerSaveOci([big], ['test/big:1']).files);
    const killed = await run([dir, 'import', `${work}/big.tar`, 'hang'], (line, kill) => line === 'unpacking' && kill());
    expect(killed.signal).toBe('SIGKILL');
    const store = await ImageStore.open(dir, { lockStale: 2000 });
    expect(await store.list()).toEqual([]);
    expect(readdirSync(`${dir}/layers`)).toEqual([]); // the half-unpacked layer is under tmp/, never in layers/
    expect(readdirSync(`${dir}/tmp`).some((n) => n.startsWith('layer-'))).toBe(true);
    expect(existsSync(`${dir}/lock`)).toBe(true); // the dead process's lock, stale soon
    const img = await store.import(`${work}/big.tar`);
    expect(img.ref).toBe('test/big:1');
    const r = await store.resolve('test/big:1');
    expect(listing(r.layers[0]!)).toEqual([expect.stringMatching(/^f 0644 0:0 big [a-f0-9]{12} 25165824 /)]);
    await store.gc();
    expect(readdirSync(`${dir}/tmp`)).toEqual([]);
  });
});
