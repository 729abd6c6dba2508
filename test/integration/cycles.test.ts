/**
 * 1,000 create/start/wait/delete cycles in one process leave nothing behind: no zombie, no extra
 * fd, no mount on the host, and a byte-identical rootfs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container } from '../../src-ts/index.js';
import { children, hostMountinfo, isRoot, openFds, removeRootfs, ROOT_REASON, scratchRootfs, treeDigest } from './helpers.js';

describe.skipIf(!isRoot)(`1,000 cycles (${ROOT_REASON})`, () => {
  let rootfs: string;
  beforeAll(() => {
    rootfs = scratchRootfs(['probe']);
  });
  afterAll(() => removeRootfs(rootfs));

  it('leave no zombie, no fd, no host mount, and the rootfs unchanged', async () => {
    // Warm up: the first container opens the addon's one shared /dev/null fd.
    await Container.run({ rootfs, args: ['/probe', 'exit', '0'], stdio: 'ignore' });
    const fds = openFds();
    const mounts = hostMountinfo();
    const digest = treeDigest(rootfs);
    let failures = 0;
    for (let i = 0; i < 1000; i++) {
      // Alternate pipes and /dev/null so both stdio paths are counted.
      const c = await Container.create({ rootfs, args: ['/probe', 'exit', String(i % 3)], stdio: i % 2 ? 'pipe' : 'ignore' });
      await c.start();
      const { exitCode } = await c.wait();
      if (exitCode !== i % 3) failures++;
      await c.delete();
    }
    expect(failures).toBe(0);
    // Stream handles close on the next turns of the event loop.
    await new Promise((r) => setTimeout(r, 50));
    expect(children()).toEqual([]);
    const after = openFds();
    expect(after.fds).toEqual(fds.fds);
    // The helper's pool: 2 network namespaces and their 2 sysfs mounts, and its thread's own netns.
    expect(after.pooled).toBeLessThanOrEqual(5);
    expect(hostMountinfo()).toBe(mounts);
    expect(treeDigest(rootfs)).toBe(digest);
  });
});
