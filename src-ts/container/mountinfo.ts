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
