/** Image config → container process: argv, env, cwd, and users looked up in the image's own files. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageProcess, resolveImageUser } from '../../src-ts/image/index.js';
import type { ResolvedImage } from '../../src-ts/index.js';

const isRoot = process.getuid?.() === 0;

describe('imageProcess', () => {
  let dir: string;
  let layers: string[];
  beforeAll(() => {
    dir = mkdtempSync(`${tmpdir()}/sbx-proc-`);
    layers = [`${dir}/l0`, `${dir}/l1`];
    for (const l of layers) mkdirSync(`${l}/etc`, { recursive: true });
    writeFileSync(`${dir}/l0/etc/passwd`, 'root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n');
    writeFileSync(`${dir}/l1/etc/passwd`, '# top layer wins\nroot:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/srv:/bin/sh\n');
    writeFileSync(`${dir}/l0/etc/group`, 'root:x:0:\nstaff:x:50:web\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const image = (config: Partial<ResolvedImage['config']>): ResolvedImage => ({
    layers,
    digest: `sha256:${'a'.repeat(64)}`,
    config: { entrypoint: [], cmd: [], env: [], workingDir: '/', user: '', labels: {}, ...config },
  });

  it("entrypoint + cmd, or the caller's args as the whole command; env merged, the caller's winning", async () => {
    const img = image({ entrypoint: ['/sleep'], cmd: ['1000'], env: ['PATH=/bin', 'A=image'], workingDir: '/w' });
    expect(await imageProcess(img)).toEqual({ args: ['/sleep', '1000'], env: ['PATH=/bin', 'A=image'], cwd: '/w', user: { uid: 0, gid: 0, additionalGids: [] } });
    const p = await imageProcess(img, { args: ['/sleep', '5'], env: { A: 'mine', B: 'x' }, cwd: '/', user: { uid: 7, gid: 8 } });
    expect(p).toEqual({ args: ['/sleep', '5'], env: ['PATH=/bin', 'A=mine', 'B=x'], cwd: '/', user: { uid: 7, gid: 8, additionalGids: [] } });
    await expect(imageProcess(image({}))).rejects.toMatchObject({ code: 'EINVAL', stage: 'image', option: 'args' });
  });

  it("users by number or by name, from the image's topmost /etc/passwd and /etc/group", async () => {
    expect(await resolveImageUser(layers, '0:0')).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(await resolveImageUser(layers, '1000')).toEqual({ uid: 1000, gid: 1001, additionalGids: [] });
    expect(await resolveImageUser(layers, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [] });
    expect(await resolveImageUser(layers, 'web')).toEqual({ uid: 1000, gid: 1001, additionalGids: [] });
    expect(await resolveImageUser(layers, 'web:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [] });
    expect(await resolveImageUser(layers, 'web:9')).toEqual({ uid: 1000, gid: 9, additionalGids: [] });
    await expect(resolveImageUser(layers, 'old')).rejects.toMatchObject({ code: 'ENOENT', option: 'user', path: '/etc/passwd' }); // shadowed by l1's passwd
    await expect(resolveImageUser(layers, 'web:nogroup')).rejects.toMatchObject({ code: 'ENOENT', path: '/etc/group' });
  });

  it.skipIf(!isRoot)('a whiteout in a higher layer hides a lower /etc/passwd (making the whiteout, a 0:0 device, needs root)', async () => {
    const l2 = `${dir}/l2`;
    mkdirSync(`${l2}/etc`, { recursive: true });
    execFileSync('mknod', [`${l2}/etc/passwd`, 'c', '0', '0']);
    await expect(resolveImageUser([...layers, l2], 'web')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await resolveImageUser([...layers, l2], 'web:staff').catch((e: { code: string }) => e.code)).toBe('ENOENT');
  });
});
