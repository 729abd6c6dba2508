/**
 * Host-side access to a live container's root: every container path is resolved by the kernel
 * with openat2(RESOLVE_IN_ROOT) against /proc/PID/root, so a symlink or a `..` planted inside
 * can never lead to a host path (the addon's openInRoot). The rest is node:fs on the fd, through
 * /proc/self/fd/N: opening that reopens the very file the fd holds, with no path walk of its own.
 */
import { constants as C, closeSync, fstatSync, openSync, type Dirent, type Stats } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, readFile, readlink, stat, symlink } from 'node:fs/promises';
import { ContainerError, errnoName } from '../errors.js';
import { native } from '../native/addon.js';

/** Linux's O_PATH (the same on x86_64 and aarch64); node:fs has no constant for it. */
const O_PATH = 0o10000000;

const fdPath = (fd: number, name?: string) => `/proc/self/fd/${fd}${name === undefined ? '' : `/${name}`}`;

function filesError(id: string, op: string, path: string, code: string, message: string, errno?: number): ContainerError {
  return new ContainerError(`container ${id}: ${op} ${path}: ${message}`, { code, stage: 'files', path, containerId: id, ...(errno ? { errno } : {}) });
}

/** The container's root, open while `fn` runs. `live` must be checked by the caller synchronously before. */
export async function withRoot<T>(id: string, pid: number, op: string, path: string, fn: (root: Root) => Promise<T>): Promise<T> {
  if (typeof path !== 'string' || path === '' || path.includes('\0'))
    throw new ContainerError(`container ${id}: ${op}: the container path must be a non-empty string`, { code: 'EINVAL', stage: 'validate', option: 'path', containerId: id });
  let fd: number;
  try {
    // Synchronously after the caller's status check: the process is not reaped yet, so this pid is ours.
    fd = openSync(`/proc/${pid}/root`, O_PATH | C.O_DIRECTORY);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw filesError(id, op, path, err.code ?? 'ERR_INTERNAL', `cannot open the container's root (${err.message})`, -(err.errno ?? 0));
  }
  try {
    return await fn(new Root(id, fd, op));
  } finally {
    closeSync(fd);
  }
}

/** One operation's view of the root: opens container paths beneath it, throws ContainerError. */
export class Root {
  constructor(
    readonly id: string,
    readonly fd: number,
    readonly op: string,
  ) {}

  /** An fd for `path` inside the root (relative paths are from its `/`). Close it. */
  open(path: string, flags: number, mode = 0): number {
    const r = native().openInRoot(this.fd, path, flags, mode);
    if (r < 0) {
      const code = errnoName(-r);
      const why = code === 'ELOOP' ? 'a magic link (/proc/…/fd, /proc/…/root) or too many symlinks' : code;
      throw filesError(this.id, this.op, path, code, why, -r);
    }
    return r;
  }

  async with<T>(path: string, flags: number, fn: (fd: number) => Promise<T>, mode = 0): Promise<T> {
    const fd = this.open(path, flags, mode);
    try {
      return await fn(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** fstat works on O_PATH fds: of a symlink itself when opened O_NOFOLLOW. */
  fstat(path: string, fd: number): Stats {
    try {
      return fstatSync(fd);
    } catch (e) {
      this.fail(path, e);
    }
  }

  /** node:fs failures on an fd we opened: the same typed error. */
  fail(path: string, e: unknown): never {
    const err = e as NodeJS.ErrnoException;
    throw filesError(this.id, this.op, path, err.code ?? 'ERR_INTERNAL', err.message, err.errno === undefined ? undefined : -err.errno);
  }
}

export function readInRoot(root: Root, path: string): Promise<Buffer> {
  return root.with(path, C.O_RDONLY, (fd) => readFile(fdPath(fd)).catch((e) => root.fail(path, e)));
}

export function readdirInRoot(root: Root, path: string): Promise<string[]> {
  return root.with(path, O_PATH | C.O_DIRECTORY, async (fd) => (await readdir(fdPath(fd)).catch((e) => root.fail(path, e))).sort());
}

/** stat(2) of `path` (a final symlink followed, inside the root), or lstat with `follow: false`. */
export function statInRoot(root: Root, path: string, follow: boolean): Promise<Stats> {
  return root.with(path, O_PATH | (follow ? 0 : C.O_NOFOLLOW), async (fd) => root.fstat(path, fd));
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

/**
 * Copies a file or a directory tree from the container to the host, like `cp -RH`: a symlink at
 * `path` is followed (inside the root), those within the tree are copied as links.
 */
export async function copyOut(root: Root, path: string, hostPath: string): Promise<void> {
  await root.with(path, O_PATH, async (fd) => {
    await copyOutEntry(root, path, fd, root.fstat(path, fd), hostPath);
  });
}

async function copyOutEntry(root: Root, path: string, fd: number, st: Stats, hostPath: string): Promise<void> {
  try {
    if (st.isSymbolicLink()) {
      // The link's own text: readlink of /proc/self/fd/N would give the fd's path instead, so read
      // it as an entry of its parent directory (readlink never follows the last component).
      const { parent, name } = splitParent(root, path);
      const text = await root.with(parent, O_PATH | C.O_DIRECTORY, (pfd) => readlink(fdPath(pfd, name)));
      return await symlink(text, hostPath);
    }
    if (st.isFile()) return await copyFile(fdPath(fd), hostPath, C.COPYFILE_EXCL);
    if (!st.isDirectory()) throw filesError(root.id, root.op, path, 'ENOTSUP', 'only regular files, directories and symlinks are copied');
    await mkdir(hostPath, { mode: st.mode & 0o7777 });
    const entries: Dirent[] = await readdir(fdPath(fd), { withFileTypes: true });
    for (const e of entries) {
      const child = join(path, e.name);
      await root.with(child, O_PATH | C.O_NOFOLLOW, (cfd) => copyOutEntry(root, child, cfd, root.fstat(child, cfd), `${hostPath}/${e.name}`));
    }
  } catch (e) {
    if (e instanceof ContainerError) throw e;
    root.fail(path, e);
  }
}

/**
 * Copies a host file or directory tree into the container at `path`, like `cp -RH`: a symlink at
 * `hostPath` is followed, those within the tree are copied as links.
 */
export async function copyIn(root: Root, hostPath: string, path: string): Promise<void> {
  const st = await stat(hostPath).catch((e: NodeJS.ErrnoException) => {
    throw new ContainerError(`container ${root.id}: ${root.op}: ${hostPath}: ${e.message}`, { code: e.code ?? 'ERR_INTERNAL', stage: 'files', path: hostPath, containerId: root.id });
  });
  await copyInEntry(root, hostPath, st, path);
}

/** The parent directory of `path` (opened in the root) and the last component's name. */
function splitParent(root: Root, path: string): { parent: string; name: string } {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  const name = trimmed.slice(i + 1);
  if (name === '' || name === '.' || name === '..') throw filesError(root.id, root.op, path, 'EINVAL', 'the target must name an entry (not /, . or ..)');
  return { parent: i <= 0 ? '/' : trimmed.slice(0, i), name };
}

async function copyInEntry(root: Root, hostPath: string, st: Stats, path: string): Promise<void> {
  const { parent, name } = splitParent(root, path);
  await root.with(parent, O_PATH | C.O_DIRECTORY, async (dirfd) => {
    // A single name under a directory fd: mkdir and symlink do not follow an existing link at it.
    const target = fdPath(dirfd, name);
    try {
      if (st.isSymbolicLink()) return await symlink(await readlink(hostPath), target);
      if (st.isFile()) {
        // Opened by openat2 in the root: an existing symlink here is followed inside the root only.
        return await root.with(join(parent, name), C.O_WRONLY | C.O_CREAT | C.O_TRUNC, (fd) => copyFile(hostPath, fdPath(fd)), st.mode & 0o7777);
      }
      if (!st.isDirectory()) throw filesError(root.id, root.op, path, 'ENOTSUP', 'only regular files, directories and symlinks are copied');
      await mkdir(target, { mode: st.mode & 0o7777 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      for (const e of await readdir(hostPath, { withFileTypes: true }))
        await copyInEntry(root, `${hostPath}/${e.name}`, await lstat(`${hostPath}/${e.name}`), join(path, e.name));
    } catch (e) {
      if (e instanceof ContainerError) throw e;
      root.fail(path, e);
    }
  });
}
