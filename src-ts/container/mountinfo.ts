/** /proc/PID/mountinfo, parsed (proc(5)). Paths are as the process sees them, from its root. */
export interface MountInfo {
  id: number;
  parentId: number;
  /** major:minor of the device */
  device: string;
  /** The root of the mount within its file system. */
  root: string;
  mountPoint: string;
  /** Per-mount options: rw/ro, nosuid, nodev, noexec, relatime, … */
  options: string[];
  /** Optional fields: shared:N, master:N, propagate_from:N, unbindable */
  optional: string[];
  fstype: string;
  source: string;
  /** Per-superblock options: mode=755, size=65536k, … */
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) throw new Error(`unparsable mountinfo line: ${line}`);
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      options: f[5]!.split(','),
      optional: f.slice(6, sep),
      fstype: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return out;
}

/**
 * The mounts in tree order: each after the mount it sits on, siblings in the order given (the
 * kernel's, by mount id). /proc/PID/mountinfo itself lists mounts by id, and a container's bind
 * mounts are cloned before its root is made, so there they come before `/`.
 */
export function treeOrder(mounts: readonly MountInfo[]): MountInfo[] {
  const ids = new Set(mounts.map((m) => m.id));
  const children = new Map<number, MountInfo[]>();
  const roots: MountInfo[] = [];
  for (const m of mounts) {
    if (m.parentId === m.id || !ids.has(m.parentId)) roots.push(m);
    else children.set(m.parentId, [...(children.get(m.parentId) ?? []), m]);
  }
  const out: MountInfo[] = [];
  const seen = new Set<number>();
  const visit = (m: MountInfo) => {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    out.push(m);
    for (const c of children.get(m.id) ?? []) visit(c);
  };
  for (const r of roots) visit(r);
  for (const m of mounts) visit(m); // a cycle (not in a sane table): keep what is left, as given
  return out;
}
