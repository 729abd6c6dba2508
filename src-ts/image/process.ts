/**
 * From an image's config to a container's process: argv, env, cwd and user, the way docker reads
 * them, with the caller's options winning. User names are looked up in the image's own
 * /etc/passwd and /etc/group (the topmost layer that has the file), never the host's.
 */
import { lstat, readFile } from 'node:fs/promises';
import type { ResolvedImage } from './store.js';
import { imageError } from './util.js';

export interface ImageProcessOptions {
  /** The whole command (entrypoint and cmd of the image are not used then). */
  args?: readonly string[];
  /** Added to the image's env; these win. */
  env?: Readonly<Record<string, string>> | readonly string[];
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: readonly number[] };
}

export interface ImageProcess {
  args: string[];
  /** "NAME=value", the image's first, then the caller's (a later one replaces an earlier NAME). */
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
}

/** A file of the image as the merged tree would show it: the topmost layer that has it, unless a whiteout hides it. */
async function imageFile(layers: readonly string[], path: string): Promise<string | null> {
  const parts = path.split('/').filter(Boolean);
  for (let i = layers.length - 1; i >= 0; i--) {
    // A whiteout (0:0 char device) of the file or of a parent in a higher layer hides the lower ones.
    for (let j = 1; j <= parts.length; j++) {
      const st = await lstat(`${layers[i]}/${parts.slice(0, j).join('/')}`).catch(() => null);
      if (st?.isCharacterDevice() && Number(st.rdev) === 0) return null;
      if (!st) break;
      if (j === parts.length && st.isFile()) return readFile(`${layers[i]}/${path}`, 'utf8');
    }
  }
  return null;
}

function table(text: string | null): string[][] {
  return (text ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

const ID = /^\d+$/;

/** "uid", "uid:gid", "name", "name:group" (docker's USER) against the image's passwd and group files. */
export async function resolveImageUser(layers: readonly string[], user: string): Promise<ImageProcess['user']> {
  if (user === '') return { uid: 0, gid: 0, additionalGids: [] };
  const [u = '', g] = user.split(':');
  // passwd is needed for a name, and for a numeric uid's primary group when no group is given.
  const passwd = !ID.test(u) || g === undefined ? table(await imageFile(layers, '/etc/passwd')) : [];
  const entry = ID.test(u) ? passwd.find((p) => p[2] === u) : passwd.find((p) => p[0] === u);
  if (!ID.test(u) && !entry) throw imageError('ENOENT', `user ${JSON.stringify(u)} is not in the image's /etc/passwd`, { option: 'user', path: '/etc/passwd' });
  const uid = ID.test(u) ? Number(u) : Number(entry![2]);
  let gid: number;
  if (g === undefined) gid = entry ? Number(entry[3]) : 0;
  else if (ID.test(g)) gid = Number(g);
  else {
    const grp = table(await imageFile(layers, '/etc/group')).find((e) => e[0] === g);
    if (!grp) throw imageError('ENOENT', `group ${JSON.stringify(g)} is not in the image's /etc/group`, { option: 'user', path: '/etc/group' });
    gid = Number(grp[2]);
  }
  if (![uid, gid].every((n) => Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32)) throw imageError('EINVAL', `user ${JSON.stringify(user)} gives a bad uid or gid`, { option: 'user' });
  return { uid, gid, additionalGids: [] };
}

/** The process a container of this image runs, given the caller's options. */
export async function imageProcess(image: ResolvedImage, opts: ImageProcessOptions = {}): Promise<ImageProcess> {
  const c = image.config;
  const args = opts.args ? [...opts.args] : [...c.entrypoint, ...c.cmd];
  if (args.length === 0) throw imageError('EINVAL', `image ${image.ref ?? image.digest} has no entrypoint or cmd: pass args`, { option: 'args' });
  const env = new Map<string, string>();
  const add = (kv: string) => {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv);
  };
  c.env.forEach(add);
  if (Array.isArray(opts.env)) opts.env.forEach(add);
  else if (opts.env) for (const [k, v] of Object.entries(opts.env)) add(`${k}=${v}`);
  const user = opts.user ? { uid: opts.user.uid, gid: opts.user.gid, additionalGids: [...(opts.user.additionalGids ?? [])] } : await resolveImageUser(image.layers, c.user);
  return { args, env: [...env.values()], cwd: opts.cwd ?? c.workingDir, user };
}
