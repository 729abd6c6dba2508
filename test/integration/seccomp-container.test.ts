/**
 * Seccomp and no_new_privs in real containers: the default profile is loaded last before execve,
 * the classic escapes it covers fail with EPERM, and the options change that (a custom OCI profile,
 * 'unconfined', privileged, noNewPrivileges: false). The filters themselves are tested in
 * seccomp-filter.test.ts; this is about the container's process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Container, parseSeccomp, type ContainerOptions } from '../../src-ts/index.js';
import { isRoot, rejection, removeRootfs, ROOT_REASON, scratchRootfs, type ProbeReport } from './helpers.js';

let rootfs = '';

const ESCAPES = ['unshare-user', 'setns', 'kexec_load', 'bpf', 'open_by_handle_at', 'init_module', 'keyctl', 'mount', 'ptrace'];

async function tryAll(o: Partial<ContainerOptions> = {}, names = ESCAPES): Promise<Record<string, string>> {
  const r = await Container.run({ rootfs, args: ['/probe', 'try', ...names], ...o });
  return JSON.parse(r.stdout) as Record<string, string>;
}

async function report(o: Partial<ContainerOptions> = {}): Promise<ProbeReport> {
  const r = await Container.run({ rootfs, args: ['/probe', 'report'], ...o });
  return JSON.parse(r.stdout) as ProbeReport;
}

describe.skipIf(!isRoot)(`seccomp in containers (${ROOT_REASON})`, () => {
  beforeAll(() => {
    rootfs = scratchRootfs(['probe']);
  });
  afterAll(() => removeRootfs(rootfs));

  it('by default: a filter (Seccomp 2) and no_new_privs; the escapes it covers fail with EPERM', async () => {
    const r = await report();
    expect([r.seccomp, r.noNewPrivs]).toEqual(['2', 1]);
    const t = await tryAll();
    for (const name of ESCAPES) expect(t[name], name).toBe('EPERM');
    expect((await tryAll({}, ['getpid'])).getpid).toBe('OK');
  });

  it("'unconfined' and privileged: no filter, and the same calls reach the kernel (and its capability checks)", async () => {
    expect((await report({ seccomp: 'unconfined' })).seccomp).toBe('0');
    // Without the filter, mount still needs CAP_SYS_ADMIN, which the default set lacks.
    expect(await tryAll({ seccomp: 'unconfined' }, ['keyctl', 'unshare-user', 'mount'])).toEqual({ keyctl: 'OK', 'unshare-user': 'OK', mount: 'EPERM' });
    expect((await report({ privileged: true })).seccomp).toBe('0');
    expect(await tryAll({ privileged: true }, ['keyctl', 'unshare-user', 'mount', 'mknod-block'])).toEqual({ keyctl: 'OK', 'unshare-user': 'OK', mount: 'OK', 'mknod-block': 'OK' });
  });

  it('a custom profile that refuses one syscall (getpid with errnoRet 38) takes effect; parsed once, reused', async () => {
    const profile = parseSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }],
    });
    for (let i = 0; i < 2; i++) {
      const t = await tryAll({ seccomp: profile }, ['getpid', 'keyctl']);
      expect(t).toEqual({ getpid: 'ENOSYS', keyctl: 'OK' });
    }
  });

  it('noNewPrivileges: false: no_new_privs stays off and the filter is still loaded (before the user switch)', async () => {
    const r = await report({ noNewPrivileges: false, user: { uid: 1000, gid: 1000 } });
    expect([r.seccomp, r.noNewPrivs, r.uid]).toEqual(['2', 0, 1000]);
  });

  it('bad options are typed errors before anything is cloned', async () => {
    const e1 = await rejection(Container.create({ rootfs, args: ['/probe'], seccomp: { defaultAction: 'SCMP_ACT_NOPE' } as never }));
    expect([e1.code, e1.stage, e1.option]).toEqual(['EINVAL', 'validate', 'seccomp.defaultAction']);
    const e2 = await rejection(Container.create({ rootfs, args: ['/probe'], privileged: true, seccomp: { defaultAction: 'SCMP_ACT_ALLOW' } }));
    expect([e2.code, e2.option]).toEqual(['EINVAL', 'seccomp']);
    const e3 = await rejection(Container.create({ rootfs, args: ['/probe'], noNewPrivileges: 'yes' as never }));
    expect([e3.code, e3.option]).toEqual(['EINVAL', 'noNewPrivileges']);
  });
});
