/**
 * The checks that need the file system, run before anything is cloned: the rootfs exists and is a
 * directory, bind sources exist, and no path the plan mounts on or creates crosses a symlink in
 * the rootfs (e.g. /proc -> / or /dev -> /etc), which would otherwise redirect a mount.
 *
 * These give early, precise errors. They are not what makes the container safe: the child resolves
 * every path again with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a rootfs that changes
 * between this check and the clone still cannot redirect anything (it fails with ELOOP then).
 */
import { lstatSync, statSync, type Stats } from 'node:fs';
import { ContainerError, invalid } from '../errors.js';
import type { FsFacts, Op } from '../plan/plan.js';
import type { Spec } from './spec.js';

const ENOENT = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT', errno: -2 }) as NodeJS.ErrnoException;

/** stat/lstat that returns the error instead of throwing it (a missing path is the common case). */
function stat(path: string, follow: boolean): Stats | NodeJS.ErrnoException {
  try {
    return (follow ? statSync(path, { throwIfNoEntry: false }) : lstatSync(path, { throwIfNoEntry: false })) ?? ENOENT;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

export function checkRootfs(spec: Spec): void {
  const st = stat(spec.rootfs, true);
  if (st instanceof Error)
    throw new ContainerError(`rootfs ${spec.rootfs}: ${st.code === 'ENOENT' ? 'no such directory' : st.message}`, {
      code: st.code ?? 'EINVAL',
      stage: 'validate',
      option: 'rootfs',
      path: spec.rootfs,
      ...(st.errno === undefined ? {} : { errno: -st.errno }),
    });
  if (!st.isDirectory()) throw invalid('rootfs', `${spec.rootfs} is not a directory`, 'ENOTDIR', spec.rootfs);
}

/** Bind sources must exist; whether each is a file decides how its target is created. */
export function checkBindSources(spec: Spec): FsFacts {
  const bindSourceIsFile = spec.mounts.map((m, i) => {
    if (m.type !== 'bind') return false;
    const st = stat(m.source, true);
    if (st instanceof Error)
      throw new ContainerError(`mounts[${i}].source ${m.source}: ${st.code === 'ENOENT' ? 'does not exist' : st.message}`, {
        code: st.code ?? 'EINVAL',
        stage: 'validate',
        option: `mounts[${i}].source`,
        path: m.source,
        ...(st.errno === undefined ? {} : { errno: -st.errno }),
      });
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
        throw new ContainerError(`/${path} is inside a bind of ${source}, where ${p} does not exist: scratchbox creates nothing in host directories`, {
          code: st.code ?? 'ENOENT',
          stage: 'validate',
          option: 'mounts',
          path: `/${path}`,
          ...(st.errno === undefined ? {} : { errno: -st.errno }),
        });
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
  const walk = (path: string, replaceable: boolean, dirTarget = false) => {
    const parts = path.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      if (mounted.has(prefix)) {
        const source = mounted.get(prefix);
        if (source && i < parts.length - 1) walkHost(source, parts.slice(i + 1), path, replaceable);
        return;
      }
      const last = i === parts.length - 1;
      let kind = seen.get(prefix);
      if (kind === undefined) {
        const st = stat(`${spec.rootfs}/${prefix}`, false);
        if (st instanceof Error) {
          if (st.code !== 'ENOENT') throw new ContainerError(`rootfs path /${prefix}: ${st.message}`, { code: st.code ?? 'EIO', stage: 'validate', path: `/${prefix}` });
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
      case 'pivot-root':
      case 'chroot':
        return;
      default:
        break;
    }
  }
}
