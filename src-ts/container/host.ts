/** Facts about the host the plan depends on, read once per process. */
import { existsSync, lstatSync, readFileSync, statfsSync } from 'node:fs';
import { native } from '../native/addon.js';
import { BUILTIN_PROC_ENTRIES, type HostInfo } from '../plan/plan.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;

function cgroupMode(): HostInfo['cgroup'] {
  try {
    if (statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC) return 'v2';
  } catch {
    return 'none';
  }
  try {
    if (statfsSync('/sys/fs/cgroup/unified').type === CGROUP2_SUPER_MAGIC) return 'hybrid';
  } catch {
    /* no unified hierarchy */
  }
  return 'v1';
}

const PROC_SUPER_MAGIC = 0x9fa0;

/**
 * The entries of BUILTIN_PROC_ENTRIES this kernel does not have. Only code built into the kernel
 * makes them, at boot, so one missing now is missing in every container's proc for good. Read from
 * the host's /proc only when it shows everything (a proc, not mounted subset=pid: /proc/meminfo
 * is there); else none is known missing.
 */
function procAbsent(): string[] {
  try {
    if (statfsSync('/proc').type !== PROC_SUPER_MAGIC || !existsSync('/proc/meminfo')) return [];
  } catch {
    return [];
  }
  return BUILTIN_PROC_ENTRIES.filter((p) => {
    try {
      lstatSync(p);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  });
}

let cached: HostInfo | undefined;

export function hostInfo(): HostInfo {
  if (!cached) {
    let resolvConf = '';
    try {
      resolvConf = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* a host without one: the container gets an empty file */
    }
    // Asking the addon makes its base mount namespace, once (or finds it cannot be made).
    cached = { cgroup: cgroupMode(), resolvConf, mountMode: native().mountMode(), procAbsent: procAbsent() };
  }
  return cached;
}
