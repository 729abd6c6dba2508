/**
 * The checks that need the file system, run before anything is cloned: the rootfs exists and is a
 * directory, bind sources exist, and no path the plan mounts on or creates crosses a symlink in
 * the rootfs (e.g. /proc -> / or /dev -> /etc), which would otherwise redirect a mount.
 *
 * These give early, precise errors. They are not what makes the container safe: the child resolves
 * every path again with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a rootfs that changes
 * between this check and the clone still cannot redirect anything (it fails with ELOOP then).
 */
import { closeSync, constants as fsConstants, lstatSync, openSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { ContainerError, invalid } from '../errors.js';
import type { FsFacts, Op } from '../plan/plan.js';
import type { Spec } from './spec.js';

const ENOENT = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT', errno: -2 }) as NodeJS.ErrnoException;

/** stat/lstat that returns the error instead of throwing it (a missing path is the common case). */
function stat(path: string, follow: boolean): Stats | NodeJS.ErrnoException {
  const st = rawStat(path, follow);
  seen?.push([follow ? 1 : 0, path, valueOf(st)]);
  return st;
}

function rawStat(path: string, follow: boolean): Stats | NodeJS.ErrnoException {
  try {
    return (follow ? statSync(path, { throwIfNoEntry: false }) : lstatSync(path, { throwIfNoEntry: false })) ?? ENOENT;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

function readlink(path: string): string {
  const target = readlinkSync(path);
  seen?.push([2, path, target]);
  return target;
}

/**
 * What the checks below looked at, in order: [0 lstat | 1 stat | 2 readlink, path, what it
 * gave]. A stat's value is the file's type, mode and identity (dev, inode, size, mtime, ctime):
 * the ELF or #! header checkExec reads is then the same file with the same contents.
 */
export type Seen = [op: 0 | 1 | 2, path: string, value: string][];
let seen: Seen | null = null;

function valueOf(st: Stats | NodeJS.ErrnoException): string {
  if (st instanceof Error) return `E${st.code}`;
  return `${st.mode}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Runs checks that passed, and records what they looked at (replaySeen tells if it is unchanged). */
export function recordSeen(checks: () => void): Seen {
  const mine: Seen = [];
  seen = mine;
  try {
    checks();
  } finally {
    seen = null;
  }
  return mine;
}

/**
 * True when every stat and readlink of `s` gives what it gave: the checks, which decide on those
 * alone (for a given spec and plan), would pass again. The same calls, without the walk around them.
 */
export function replaySeen(s: Seen): boolean {
  for (const [op, path, value] of s) {
    if (op === 2) {
      try {
        if (readlinkSync(path) !== value) return false;
      } catch {
        return false;
      }
    } else if (valueOf(rawStat(path, op === 1)) !== value) return false;
  }
  return true;
}

/** The validation error for a failed stat: Node's code and errno, or `fallback` without them. */
function statError(st: NodeJS.ErrnoException, message: string, path: string, option: string | undefined, fallback: string): ContainerError {
  return new ContainerError(message, {
    code: st.code ?? fallback,
    stage: 'validate',
    path,
    ...(option === undefined ? {} : { option }),
    ...(st.errno === undefined ? {} : { errno: -st.errno }),
  });
}

export function checkRootfs(spec: Spec): void {
  const st = stat(spec.rootfs, true);
  if (st instanceof Error)
    throw statError(st, `rootfs ${spec.rootfs}: ${st.code === 'ENOENT' ? 'no such directory' : st.message}`, spec.rootfs, 'rootfs', 'EINVAL');
  if (!st.isDirectory()) throw invalid('rootfs', `${spec.rootfs} is not a directory`, 'ENOTDIR', spec.rootfs);
}

/** Bind sources must exist; whether each is a file decides how its target is created. */
export function checkBindSources(spec: Spec): FsFacts {
  const bindSourceIsFile = spec.mounts.map((m, i) => {
    if (m.type !== 'bind') return false;
    const st = stat(m.source, true);
    if (st instanceof Error)
      throw statError(st, `mounts[${i}].source ${m.source}: ${st.code === 'ENOENT' ? 'does not exist' : st.message}`, m.source, `mounts[${i}].source`, 'EINVAL');
    return !st.isDirectory();
  });
  return { bindSourceIsFile };
}

/**
 * Walks every path the plan touches under the rootfs, one component at a time, with lstat.
 * A component below a mount the plan made earlier is not in the rootfs and is not walked; a
 * missing component ends the walk (the child creates it in the overlay's upper layer).
 * `replaceable`: ops whose last component the child replaces (files, links) may be symlinks.
 */
export function checkSymlinks(spec: Spec, ops: readonly Op[]): void {
  // Targets mounted so far; for binds, the host directory now seen there.
  const mounted = new Map<string, string | null>();
  /** Below a bind, the child would create missing components in the host directory: refuse. */
  const walkHost = (source: string, rest: string[], path: string, replaceable: boolean) => {
    let p = source;
    rest.forEach((part, i) => {
      p = `${p}/${part}`;
      const st = stat(p, false);
      const last = i === rest.length - 1;
      if (st instanceof Error)
        throw statError(st, `/${path} is inside a bind of ${source}, where ${p} does not exist: scratchbox creates nothing in host directories`, `/${path}`, 'mounts', 'ENOENT');
      if (st.isSymbolicLink() && !(last && replaceable))
        throw new ContainerError(`/${path}: ${p} is a symlink inside a bind of ${source}; refusing to follow it`, {
          code: 'ELOOP',
          errno: 40,
          stage: 'validate',
          option: 'mounts',
          path: `/${path}`,
        });
    });
  };
  const seen = new Map<string, 'missing' | 'dir' | 'other'>();
  const walk = (path: string, replaceable: boolean, dirTarget = false, optional = false) => {
    const parts = path.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      if (mounted.has(prefix)) {
        const source = mounted.get(prefix);
        if (source && i < parts.length - 1 && !optional) walkHost(source, parts.slice(i + 1), path, replaceable);
        return;
      }
      const last = i === parts.length - 1;
      let kind = seen.get(prefix);
      if (kind === undefined) {
        const st = stat(`${spec.rootfs}/${prefix}`, false);
        if (st instanceof Error) {
          if (st.code !== 'ENOENT') throw statError(st, `rootfs path /${prefix}: ${st.message}`, `/${prefix}`, undefined, 'EIO');
          kind = 'missing';
        } else if (st.isSymbolicLink()) {
          if (last && replaceable) return;
          throw new ContainerError(
            `/${prefix} is a symlink in the rootfs: refusing to follow it for /${path} (a mount or file would land elsewhere)`,
            { code: 'ELOOP', errno: 40, stage: 'validate', option: 'rootfs', path: `/${prefix}` },
          );
        } else kind = st.isDirectory() ? 'dir' : 'other';
        seen.set(prefix, kind);
      }
      if (kind === 'missing') return;
      if (kind === 'other' && (!last || dirTarget))
        throw new ContainerError(`/${prefix} in the rootfs is not a directory (needed for /${path})`, {
          code: 'ENOTDIR',
          errno: 20,
          stage: 'validate',
          option: 'rootfs',
          path: `/${prefix}`,
        });
    }
  };
  for (const op of ops) {
    switch (op.kind) {
      case 'mount':
      case 'mount-detached':
        walk(op.target, false, true);
        mounted.set(op.target, null);
        break;
      case 'bind':
        walk(op.target, false, !op.file);
        mounted.set(op.target, op.source);
        break;
      case 'mkdir':
        walk(op.path, false, !op.file);
        break;
      case 'mknod':
      case 'symlink':
      case 'write-file':
        walk(op.path, true);
        break;
      case 'mask-path':
      case 'readonly-path':
        // Missing is fine (the child skips it); a symlink on the way is refused, here and again
        // in the child (which also sees inside binds and /proc).
        walk(op.path, false, false, true);
        break;
      case 'pivot-root':
      case 'chroot':
        return;
      default:
        break;
    }
  }
}

/** How a container path resolved in the rootfs (see resolveInRootfs). */
type Resolved =
  | { kind: 'file'; path: string; host: string; st: Stats }
  | { kind: 'other'; path: string } // a directory, device, …: the child reports it (EACCES)
  | { kind: 'missing'; path: string }
  | { kind: 'mounted'; path: string }; // under a mount of the spec: not in the rootfs, the child finds out

const MAX_SYMLINKS = 40; // the kernel's limit for one lookup
const BINPRM_BUF = 256; // what the kernel reads of a file to choose its loader (the #! line must fit)
const HEAD = 1024; // read at once: the ELF header and, in most binaries, the program headers too
const MAX_INTERP_DEPTH = 4; // scripts whose interpreter is a script, as the kernel allows

/**
 * Resolves a container path the way the child will see it in the rootfs: relative to `cwd`,
 * symlinks followed as if the rootfs were '/', and '..' never climbing out of it. A prefix that is
 * a mount destination of the spec stops the walk: what lies there is not in the rootfs.
 */
function resolveInRootfs(spec: Spec, path: string): Resolved {
  const todo = (path.startsWith('/') ? path : `${spec.cwd}/${path}`).split('/').reverse();
  const parts: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      parts.pop();
      continue;
    }
    parts.push(part);
    const at = `/${parts.join('/')}`;
    if (spec.mounts.some((m) => at === m.destination || at.startsWith(`${m.destination}/`))) return { kind: 'mounted', path: at };
    const host = `${spec.rootfs}${at}`;
    const st = stat(host, false);
    if (st instanceof Error) return { kind: 'missing', path: at };
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return { kind: 'missing', path: at };
      let target: string;
      try {
        target = readlink(host);
      } catch {
        return { kind: 'missing', path: at };
      }
      parts.pop();
      if (target.startsWith('/')) parts.length = 0;
      todo.push(...target.split('/').reverse());
      continue;
    }
    if (todo.some((p) => p !== '' && p !== '.') && !st.isDirectory()) return { kind: 'missing', path: at };
    if (todo.length === 0 || todo.every((p) => p === '' || p === '.'))
      return st.isFile() ? { kind: 'file', path: at, host, st } : { kind: 'other', path: at };
  }
  return { kind: 'other', path: '/' };
}

/** Which file execve will run for args[0]: a PATH search (execvpe's) for a name without '/'. */
function findProgram(spec: Spec): Resolved {
  const name = spec.args[0]!;
  if (name.includes('/')) return resolveInRootfs(spec, name);
  const pathVar = spec.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '';
  let last: Resolved = { kind: 'missing', path: name };
  for (const dir of pathVar.split(':')) {
    const r = resolveInRootfs(spec, `${dir || '.'}/${name}`);
    if (r.kind === 'mounted') return r; // maybe it is there: the child's search decides
    if (r.kind === 'file' && (r.st.mode & 0o111) !== 0) return r;
    if (r.kind !== 'missing') last = r;
  }
  return last;
}

/** The interpreter the kernel would load for this file: PT_INTERP of an ELF, or a `#!` line's. */
function interpreterOf(host: string): { interp: string; script: boolean } | null {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO swapped in since the lstat must not hang create().
    fd = openSync(host, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const head = Buffer.alloc(HEAD);
    const n = readSync(fd, head, 0, HEAD, 0);
    if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) {
      const line = head.subarray(2, Math.min(n, BINPRM_BUF)).toString('latin1').split('\n', 1)[0]!;
      const interp = line.trim().split(/[ \t]/, 1)[0]!;
      return interp ? { interp, script: true } : null;
    }
    if (n < 64 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = word(head, is64 ? 32 : 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = u16(head, is64 ? 56 : 44);
    if (phentsize < (is64 ? 56 : 32) || phnum * phentsize > 65536) return null; // the kernel refuses these too
    let ph = head.subarray(phoff, phoff + phnum * phentsize);
    if (phoff + phnum * phentsize > n) {
      ph = Buffer.alloc(phnum * phentsize);
      if (readSync(fd, ph, 0, ph.length, phoff) !== ph.length) return null;
    }
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (u32(ph, o) !== 3 /* PT_INTERP */) continue;
      const offset = word(ph, o + (is64 ? 8 : 4));
      const size = word(ph, o + (is64 ? 32 : 16));
      if (size < 2 || size > 4096) return null;
      const buf = Buffer.alloc(size);
      if (readSync(fd, buf, 0, size, offset) !== size) return null;
      return { interp: buf.toString('latin1').replace(/\0.*$/s, ''), script: false };
    }
    return null; // static
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * A dynamically linked binary copied alone into a rootfs passes every other check and fails at
 * execve with a bare ENOENT: find args[0] as the child will, and check that its ELF interpreter
 * (or a script's #! interpreter, and so on down) is in the rootfs. What is not found here, or lies
 * under a mount of the spec, is left to the child, which resolves args[0] again after setup.
 */
export function checkExec(spec: Spec): void {
  // An image of several layers: the merged tree exists only in the container (whiteouts, opaque
  // directories); the child's resolve-exec finds a missing binary there.
  if (spec.layers.length > 1) return;
  let program = findProgram(spec);
  if (program.kind !== 'file' || (program.st.mode & 0o111) === 0) return; // the child's EACCES or ENOENT
  let chain = program.path;
  for (let depth = 0; depth < MAX_INTERP_DEPTH && program.kind === 'file'; depth++) {
    const found = interpreterOf(program.host);
    if (!found) return;
    const interp = resolveInRootfs(spec, found.interp);
    if (interp.kind === 'missing')
      throw new ContainerError(`${chain} needs ${found.interp}, which the rootfs lacks`, {
        code: 'ENOENT',
        errno: 2,
        stage: 'exec',
        option: 'args',
        path: found.interp,
        containerId: spec.id,
      });
    if (!found.script) return; // the kernel loads an ELF interpreter as it is
    program = interp;
    chain = `${chain} runs ${found.interp}, which`;
  }
}
