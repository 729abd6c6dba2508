/**
 * Process-wide settings of the engine. They apply from the first container on, so configure()
 * must come before it (later, it throws ERR_INVALID_STATE). The same settings can be given in the
 * environment, read when the addon loads: SCRATCHBOX_NETNS_POOL and SCRATCHBOX_BASE_MNTNS=0.
 */
import { ContainerError, invalid } from './errors.js';
import { native } from './native/addon.js';

export interface Settings {
  /**
   * Fresh network namespaces the addon's helper thread makes ahead of need (each used by one
   * container only). 0 turns the pool off: each child makes its own. At most 64. Default: 2,
   * growing by one for each container that finds the pool empty, up to 8; a size given here stays.
   */
  netnsPool?: number;
  /**
   * Copy containers' mount namespaces from an empty base namespace and chroot (default, where the
   * kernel allows: Linux 6.15), instead of copying the host's and pivot_root.
   */
  baseMountNamespace?: boolean;
}

const KEYS = new Set(['netnsPool', 'baseMountNamespace']);

export function configure(settings: Settings): void {
  if (settings === null || typeof settings !== 'object') throw invalid('settings', 'must be an object');
  for (const k of Object.keys(settings)) if (!KEYS.has(k)) throw invalid(`settings.${k}`, `unknown setting (known: ${[...KEYS].join(', ')})`);
  const { netnsPool, baseMountNamespace } = settings;
  if (netnsPool !== undefined && (!Number.isInteger(netnsPool) || netnsPool < 0 || netnsPool > 64))
    throw invalid('settings.netnsPool', 'must be an integer from 0 to 64');
  if (baseMountNamespace !== undefined && typeof baseMountNamespace !== 'boolean')
    throw invalid('settings.baseMountNamespace', 'must be a boolean');
  try {
    native().configure(settings);
  } catch (e) {
    throw new ContainerError(`configure: ${(e as Error).message}`, { code: 'ERR_INVALID_STATE', stage: 'validate', cause: e });
  }
}
