/**
 * The default profile's filter, compiled when the package is built (scripts/seccomp-cache.mjs,
 * which `npm install` and `npm ci` run once the addon and dist/ exist) and read back at a
 * process's first create(). Compiling it there costs ~30 ms (libseccomp ~9, the optimizer ~15,
 * its equivalence check 7-13): half of a first create(). Reading it back costs ~2 ms.
 *
 * The file lies beside the code (dist/security/) and is trusted as that code is. Its key is a
 * hash of everything the bytes come from: the flattened profile, the architecture, the addon
 * file (size and modification time: libseccomp is linked into it, with seccomp.cc), and the
 * JavaScript that compiles and optimizes (seccomp.js, bpf-optimize.js). When any of them differs,
 * or the file is missing or unreadable, the filter is compiled as before.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot, type FlatSeccomp } from '../native/addon.js';

/** What the cache holds of a compiled filter (a SeccompFilter's fields). */
export interface CachedFilter {
  readonly bpf: Uint8Array;
  readonly flags: number;
  readonly unknownSyscalls: readonly string[];
  readonly skippedArchitectures: readonly string[];
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** .js in dist/, .ts when the tests run the sources. */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const FILE = `default-seccomp.${process.arch}.json`;

function addonPath(): string {
  const require = createRequire(import.meta.url);
  return (require('node-gyp-build') as { path(dir: string): string }).path(packageRoot);
}

/** The key of a filter compiled from `flat` by this addon and this code. */
export function cacheKey(flat: FlatSeccomp): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(flat));
  h.update(`\0${process.arch}\0`);
  const addon = statSync(addonPath());
  h.update(`${addon.size}:${addon.mtimeMs}\0`);
  for (const f of ['seccomp', 'bpf-optimize']) h.update(readFileSync(join(HERE, f + EXT)));
  return h.digest('hex');
}

/** The cached filter for `flat`, or undefined (no file, another key, anything unreadable). */
export function readCachedFilter(flat: FlatSeccomp, dir = HERE): CachedFilter | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Record<string, unknown>;
    if (c.key !== cacheKey(flat) || typeof c.bpf !== 'string' || typeof c.flags !== 'number') return undefined;
    const bpf = new Uint8Array(Buffer.from(c.bpf, 'base64'));
    const strings = (v: unknown) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined);
    const unknownSyscalls = strings(c.unknownSyscalls);
    const skippedArchitectures = strings(c.skippedArchitectures);
    if (bpf.length === 0 || bpf.length % 8 !== 0 || !unknownSyscalls || !skippedArchitectures) return undefined;
    return { bpf, flags: c.flags, unknownSyscalls, skippedArchitectures };
  } catch {
    return undefined;
  }
}

/** Writes the filter compiled from `flat` (atomically: a reader sees the old file or the new). Returns the path. */
export function writeCachedFilter(flat: FlatSeccomp, filter: CachedFilter, dir = HERE): string {
  const path = join(dir, FILE);
  const body = {
    key: cacheKey(flat),
    bpf: Buffer.from(filter.bpf).toString('base64'),
    flags: filter.flags,
    unknownSyscalls: [...filter.unknownSyscalls],
    skippedArchitectures: [...filter.skippedArchitectures],
  };
  writeFileSync(`${path}.tmp`, `${JSON.stringify(body)}\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}
