/**
 * The host's cgroup layout, found once per process (and only when a container asks for a cgroup):
 * where each v1 controller and the v2 tree are mounted, and where this process sits in each.
 */
import { readFileSync } from 'node:fs';

export interface CgroupLayout {
  /** 'v2': one unified tree with the controllers; 'v1': controllers in trees of their own;
   * 'hybrid': v1 controllers plus a cgroup2 tree (no or few controllers), as here. */
  kind: 'v2' | 'v1' | 'hybrid' | 'none';
  /** v1 controller → its hierarchy's mount point (co-mounted controllers share one). */
  v1: Map<string, string>;
  /** The cgroup2 mount point, or null. */
  v2: string | null;
  /** This process's cgroup: v1 controller → path, and '' → its v2 path. */
  self: Map<string, string>;
}

/** The v1 controllers (a hierarchy's other super options, xattr, name=, noprefix, are not). */
const V1_CONTROLLERS = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc']);

/** Parses /proc/self/mountinfo and /proc/self/cgroup (pure: unit-tested with text). */
export function parseLayout(mountinfo: string, procCgroup: string): CgroupLayout {
  const v1 = new Map<string, string>();
  let v2: string | null = null;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    // Only a hierarchy's root mount: a bind of a subtree (a container's view) names other paths.
    if (left[3] !== '/') continue;
    const mountPoint = left[4]!.replace(/\\040/g, ' ');
    if (fstype === 'cgroup2') v2 ??= mountPoint;
    else if (fstype === 'cgroup')
      for (const opt of superOpts.split(','))
        if (V1_CONTROLLERS.has(opt) && !v1.has(opt)) v1.set(opt, mountPoint);
  }
  const self = new Map<string, string>();
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') self.set('', m[2]!);
    else for (const c of m[1]!.split(',')) if (!c.includes('=')) self.set(c, m[2]!);
  }
  // A v1 host may also mount a v2 tree (hybrid); a v1 tree without controllers (name=systemd) does not count.
  const kind = v1.size > 0 ? (v2 ? 'hybrid' : 'v1') : v2 ? 'v2' : 'none';
  return { kind, v1, v2, self };
}

let cached: CgroupLayout | undefined;

export function cgroupLayout(): CgroupLayout {
  cached ??= parseLayout(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  return cached;
}
