/**
 * `tty` and `ttySize`: whether the process gets a pseudo-terminal of the container's own devpts
 * instead of its stdio, and the window size it starts with (docs/tty.md). Pure checks, before
 * anything is cloned.
 */
import { invalid } from '../errors.js';
import { checkKeys, type KeyTable } from './keys.js';
import type { ParsedMount } from './mounts.js';

export interface TtySizeOption {
  cols: number;
  rows: number;
}

/** The terminal the process gets: its window size (TIOCSWINSZ before execve). */
export interface TtySpec {
  cols: number;
  rows: number;
}

/** Like docker's: 80 columns by 24 rows when no size is given. */
export const DEFAULT_TTY_SIZE: TtySpec = { cols: 80, rows: 24 };

/** Where the ptmx of the container's devpts is, under its root (not /dev/ptmx: a symlink to it). */
export const PTMX_PATH = 'dev/pts/ptmx';

const SIZE_KEYS = { cols: true, rows: true } as const satisfies KeyTable<TtySizeOption>;

/** A window dimension: what struct winsize holds (1..65535). */
export function ttyDimension(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffff) throw invalid(option, 'must be an integer from 1 to 65535');
  return v;
}

/**
 * options.tty / ttySize / stdio → the terminal, or null. `stdio` with a tty is refused unless it
 * is the default ('pipe'): the terminal replaces the three pipes, as docker's -t does.
 */
export function parseTty(tty: unknown, size: unknown, stdio: unknown): TtySpec | null {
  if (tty !== undefined && typeof tty !== 'boolean') throw invalid('tty', 'must be a boolean');
  if (!tty) {
    if (size !== undefined) throw invalid('ttySize', 'needs tty: true');
    return null;
  }
  if (stdio !== undefined && stdio !== 'pipe')
    throw invalid('stdio', "cannot be given with tty: true (the terminal is the process's stdin, stdout and stderr; read and write container.tty)");
  if (size === undefined) return { ...DEFAULT_TTY_SIZE };
  if (size === null || typeof size !== 'object' || Array.isArray(size)) throw invalid('ttySize', 'must be { cols, rows }');
  checkKeys(size, SIZE_KEYS, 'ttySize');
  const s = size as TtySizeOption;
  return { cols: ttyDimension(s.cols, 'ttySize.cols'), rows: ttyDimension(s.rows, 'ttySize.rows') };
}

/**
 * The pty must come from a devpts instance of the container's own at /dev/pts: a devpts mount
 * there that no later mount covers (of /dev/pts, /dev or /). Else the ptmx would be missing, or a
 * host directory's.
 */
export function checkOwnDevpts(mounts: readonly ParsedMount[], option = 'tty'): void {
  const last = [...mounts].reverse().find((m) => m.destination === '/dev/pts' || m.destination === '/dev' || m.destination === '/');
  if (!last || last.destination !== '/dev/pts' || last.type !== 'devpts')
    throw invalid(option, "needs the container's own devpts at /dev/pts (a devpts mount there, not covered by a later mount): the terminal comes from it", 'EINVAL', '/dev/pts');
}
