/** Facts about the host the plan depends on, read once per process. */
import { readFileSync, statfsSync } from 'node:fs';
import { native } from '../native/addon.js';
import type { HostInfo } from '../plan/plan.js';

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
    cached = { cgroup: cgroupMode(), resolvConf, mountMode: native().mountMode() };
  }
  return cached;
}
