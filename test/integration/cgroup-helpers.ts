/** Shared by the cgroup suites: a parent cgroup of the test file's own, and reading output. */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { CgroupLayout } from '../../src-ts/cgroup/layout.js';
import type { RunOptions } from '../../src-ts/index.js';

/** A container running test/fixtures/cgroup-load (mode and its arguments), under `parent`. */
export function loadOptions(rootfs: string, parent: string, args: string[], more: Partial<RunOptions> = {}): RunOptions {
  return { rootfs, args: ['/cgroup-load', ...args], stdio: ['ignore', 'pipe', 'pipe'], cgroup: { path: parent }, ...more };
}

/** Every hierarchy root of a layout (v1 mount points, deduplicated, and the v2 tree). */
export function hierarchyRoots(layout: CgroupLayout): string[] {
  const roots = layout.kind === 'v2' ? [layout.v2!] : [...new Set(layout.v1.values())];
  return roots;
}

/** The directories `parent` names in every hierarchy that has it. */
export function parentDirs(layout: CgroupLayout, parent: string): string[] {
  return hierarchyRoots(layout)
    .map((r) => r + parent)
    .filter((d) => existsSync(d));
}

/** Container cgroups (sbx-*) left under `parent`, in any hierarchy. */
export function leftovers(layout: CgroupLayout, parent: string): string[] {
  return parentDirs(layout, parent).flatMap((d) => readdirSync(d).filter((e) => e.startsWith('sbx-')).map((e) => `${d}/${e}`));
}

/** Removes the test's parent cgroup (and only that: it must be empty of containers by then). */
export function removeParent(layout: CgroupLayout, parent: string): void {
  for (const d of parentDirs(layout, parent).reverse()) rmdirSync(d);
}

/** Resolves with the output so far once `pred` holds for it. */
export function outputUntil(stream: Readable, pred: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out; output so far: ${JSON.stringify(text.slice(-200))}`)), timeoutMs);
    const onData = (d: Buffer) => {
      text += d.toString('utf8');
      if (pred(text)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(text);
      }
    };
    stream.on('data', onData);
  });
}

/** Collects everything a stream emits from now on, in one growing string. */
export function tap(stream: Readable): { text: () => string } {
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
  return { text: () => text };
}

/** The last whole number a counter printed. */
export function lastNumber(text: string): number {
  const lines = text.trim().split('\n');
  return Number(lines[lines.length - 1]);
}

/** The process exists and is not a zombie (a killed orphan waits for the host's init to reap it). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
