/** `scratchbox image …` in-process: exit codes, output, and usage on bad input. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { imageCommand } from '../../src-ts/cli/image.js';
import { ImageStore } from '../../src-ts/index.js';
import { buildDir } from './helpers.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true));
  try {
    return { code: await imageCommand(argv), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('scratchbox image', () => {
  let work: string;
  let store: string;
  beforeAll(async () => {
    work = mkdtempSync(`${tmpdir()}/sbx-cli-`);
    store = `${work}/store`;
    const s = await ImageStore.open(`${work}/src`);
    const img = await s.scratch().copy(`${buildDir}sleep`, '/sleep').entrypoint(['/sleep']).build('sleep:latest');
    await img.export(`${work}/sleep.tar`);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('import, ls, export, rm, gc', async () => {
    const imp = await cli('import', `${work}/sleep.tar`, '--store', store);
    expect(imp).toMatchObject({ code: 0 });
    expect(imp.out).toMatch(/^sleep:latest sha256:[a-f0-9]{64}\n$/);
    expect(imp.err).toMatch(/unpack layer 1\/1 sha256:/); // not a TTY: a line per layer
    const ls = await cli('ls', '--store', store);
    expect(ls.out.split('\n')[0]).toMatch(/^REF +DIGEST +LAYERS +SIZE$/);
    expect(ls.out).toMatch(/\nsleep:latest +sha256:[a-f0-9]{12} +1 +0\.0 MiB\n/);
    const json = JSON.parse((await cli('ls', '--json', '--store', store)).out) as { ref: string; config: { entrypoint: string[] } }[];
    expect(json.map((j) => [j.ref, j.config.entrypoint])).toEqual([['sleep:latest', ['/sleep']]]);
    expect((await cli('import', `${work}/sleep.tar`, '--ref', 'again:1', '--store', store)).out).toMatch(/^again:1 /);
    expect(await cli('export', 'sleep:latest', `${work}/out`, '--format', 'oci-dir', '--store', store)).toMatchObject({ code: 0, out: `wrote ${work}/out (oci-dir)\n` });
    expect(existsSync(`${work}/out/index.json`)).toBe(true);
    expect(await cli('rm', 'sleep:latest', 'again:1', '--store', store)).toMatchObject({ code: 0, out: 'removed sleep:latest\nremoved again:1\n' });
    expect((await cli('gc', '--store', store)).out).toMatch(/^removed 3 blobs \(0\.0 MiB\) and 1 layer directories\n$/);
  });

  it('failures are exit code 1 with the error code; bad usage is 2 with the usage text', async () => {
    const missing = await cli('rm', 'nope:1', '--store', store);
    expect(missing).toMatchObject({ code: 1, out: '' });
    expect(missing.err).toContain('(code ENOENT)');
    expect((await cli('export', 'x:1', `${work}/y`, '--format', 'zip', '--store', store)).code).toBe(1);
    for (const argv of [['import', '--bogus', 'x'], ['frobnicate'], [], ['import'], ['ls', 'extra'], ['pull', 'x', '--password-stdin'], ['pull', 'x', '--platform', 'amd64']]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain('usage: scratchbox image');
    }
    expect(await cli('--help')).toMatchObject({ code: 0, out: expect.stringContaining('usage: scratchbox image') });
  });
});
