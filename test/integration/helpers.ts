import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { expect, it } from 'vitest';
import { native } from '../../src-ts/native/addon.js';
import { ContainerError } from '../../src-ts/index.js';
import { fileURLToPath } from 'node:url';

export const isRoot = process.getuid?.() === 0;
/** Why integration tests skip: they start real containers, which needs root (CI runs as root). */
export const ROOT_REASON = 'needs root: starts real containers (CI runs as root)';

/** Where a container's mount namespace is copied from (src-native/addon.cc, Helper::BaseMntns). */
export type MountMode = 'base' | 'host';

const [kernelMajor = 0, kernelMinor = 0] = release().split('.').map(Number);
/** The base mount namespace needs overlayfs to take detached mounts and O_PATH fds as layers: Linux 6.15 and later. */
export const BASE_REASON = 'needs Linux 6.15+ (overlayfs layers by fd, detached): the base mount namespace falls back to the host mode';
const baseSupported = kernelMajor > 6 || (kernelMajor === 6 && kernelMinor >= 15);

/** Why a suite for this mount mode skips, or null when it runs. */
export function suiteSkip(mode: MountMode): string | null {
  if (!isRoot) return ROOT_REASON;
  if (mode === 'base' && !baseSupported) return BASE_REASON;
  return null;
}

/** A test that the addon really runs containers in the mode the suite is about. */
export function expectMountMode(mode: MountMode): void {
  it(`gives every container a copy of the ${mode} mount namespace`, () => {
    expect(native().mountMode()).toBe(mode);
  });
}

export const buildDir = fileURLToPath(new URL('../.build/', import.meta.url));

/** A FROM-scratch rootfs in a temp dir: only the given binaries from test/.build (probe, sleep). */
export function scratchRootfs(bins: string[] = ['probe']): string {
  const dir = mkdtempSync(`${tmpdir()}/sbx-test-`);
  for (const b of bins) copyFileSync(`${buildDir}${b}`, `${dir}/${b}`);
  return dir;
}

export function removeRootfs(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A digest of a whole tree: paths, types, modes, owners, sizes, mtimes, contents, link targets. */
export function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    const p = rel ? `${dir}/${rel}` : dir;
    const st = lstatSync(p);
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0${st.mtimeMs}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(readFileSync(p));
    else if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(rel ? `${rel}/${e}` : e);
  };
  walk('');
  return h.digest('hex');
}

/** This process's children, with their state letter (Z = zombie). */
export function children(): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[1]) === process.pid) out.push({ pid: Number(e), state: rest[0]! });
  }
  return out;
}

const SYSFS_MAGIC = 0x62656572;

/**
 * This process's open fds with what they point at, less what the addon's helper thread keeps
 * ready for the next containers: fresh network namespaces and a detached sysfs for each (a pool of
 * a fixed size whose fd numbers change as it is used and refilled), and the thread's own netns.
 * Those are counted apart.
 */
export function openFds(): { fds: string[]; pooled: number } {
  const fds: string[] = [];
  let pooled = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith('net:[') || (target === '/' && statfsSync(`/proc/self/fd/${fd}`).type === SYSFS_MAGIC)) {
        pooled++;
        continue;
      }
    } catch {
      continue; // the directory's own fd, closed by now
    }
    fds.push(`${fd} -> ${target}`);
  }
  return { fds: fds.sort(), pooled };
}

export function hostMountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

export interface ProbeReport {
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  groups: number[];
  umask: number;
  hostname: string;
  cwd: string;
  argv: string[];
  env: string[];
  fds: number[];
  procPids: number[];
  netIfaces: string[];
  loUp: boolean | null;
  mtab: string | null;
  etc: { hostname: string | null; hosts: string | null; resolvConf: string | null };
  mountinfo: string;
  rootEntries: string[];
  devEntries: Record<string, string>;
  ns: Record<string, string | null>;
  sigmask: { SigBlk: string; SigIgn: string };
  pdeathsig: number;
  /** /proc/self/status Seccomp: '0' off, '2' a filter. */
  seccomp: string | null;
  /** prctl(PR_GET_NO_NEW_PRIVS). */
  noNewPrivs: number | null;
  /** The capability sets of /proc/self/status, as it shows them (16 hex digits). */
  caps: { CapInh: string; CapPrm: string; CapEff: string; CapBnd: string; CapAmb: string };
  /** getrlimit of a few resources: [soft, hard], -1 for RLIM_INFINITY. */
  rlimits: Record<'NOFILE' | 'NPROC' | 'CORE' | 'STACK' | 'MEMLOCK' | 'FSIZE', [number, number] | null>;
  /** /proc/self/oom_score_adj as the process read it at its start. */
  oomScoreAdj: number | null;
}

/** OCI's default capability set (AUDIT_WRITE, KILL, NET_BIND_SERVICE) as /proc/self/status shows it. */
export const OCI_DEFAULT_CAPS = '0000000020000420';

/** Awaits a promise that must reject with a ContainerError, and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<ContainerError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ContainerError);
  return e as ContainerError;
}

/** busybox-static's binary: a shell and the usual tools in one static file. */
export const BUSYBOX = '/bin/busybox';
/** Why busybox tests skip, or null when they run. */
export const busyboxSkip: string | null = !isRoot
  ? ROOT_REASON
  : existsSync(BUSYBOX) && !readFileSync(BUSYBOX).includes('/ld-linux')
    ? null
    : `needs ${BUSYBOX} from the Debian package busybox-static (missing tool)`;

/** A rootfs holding only busybox-static as /bin/busybox and links to it (/bin/sh, /bin/echo, …). */
export function busyboxRootfs(): string {
  const dir = mkdtempSync(`${tmpdir()}/sbx-busybox-`);
  mkdirSync(`${dir}/bin`);
  copyFileSync(BUSYBOX, `${dir}/bin/busybox`);
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'sleep', 'true', 'false', 'printf', 'hostname'])
    symlinkSync('busybox', `${dir}/bin/${applet}`);
  return dir;
}

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
