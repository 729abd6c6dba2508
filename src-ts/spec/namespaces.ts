/**
 * options.namespaces → which namespaces the container has of its own, and which it joins (OCI
 * `linux.namespaces[].path`): `{ path: '/proc/…/ns/net' }`, or `{ container: other }` (the
 * namespace of another running container's process, like `docker run --pid container:x`). Pure;
 * the files are opened and checked by src-ts/container/join.ts, before anything is cloned.
 */
import { invalid } from '../errors.js';
import { checkKeys } from './keys.js';
import type { Container } from '../container/container.js';

export type NamespaceName = 'mount' | 'pid' | 'network' | 'ipc' | 'uts' | 'cgroup' | 'user' | 'time';

/** A namespace to join instead of making one. */
export type NamespaceJoin = { container: Container } | { path: string };

/** Per namespace: own (true), the Node process's (false), or one to join. */
export type NamespaceOption = boolean | NamespaceJoin;

export type NamespacesOption = Partial<Record<Exclude<NamespaceName, 'network'>, NamespaceOption>> & {
  network?: NamespaceOption | 'shared';
};

/** The namespaces that can be joined. */
export type JoinableNamespace = 'pid' | 'network' | 'ipc' | 'uts' | 'cgroup';

/** One join, in the order the plan's fds are given (FD.PLAN0 + index). */
export interface JoinSpec {
  ns: JoinableNamespace;
  source: NamespaceJoin;
}

/** The kernel's name of each namespace (/proc/PID/ns/<file>, and the readlink's "net:[…]"). */
export const NS_FILE: Record<NamespaceName, string> = {
  mount: 'mnt',
  pid: 'pid',
  network: 'net',
  ipc: 'ipc',
  uts: 'uts',
  cgroup: 'cgroup',
  user: 'user',
  time: 'time',
};

export const DEFAULT_NAMESPACES: Record<NamespaceName, boolean> = {
  mount: true,
  pid: true,
  network: true,
  ipc: true,
  uts: true,
  cgroup: false,
  user: false,
  time: false,
};

const JOIN_KEYS = { container: true, path: true } as const;

/** Joined in this order: the pid namespace first (the child is born in it), then the others. */
const JOIN_ORDER: readonly JoinableNamespace[] = ['pid', 'network', 'ipc', 'uts', 'cgroup'];

function joinOf(v: object, option: string): NamespaceJoin {
  checkKeys(v, JOIN_KEYS, option);
  const o = v as { container?: unknown; path?: unknown };
  if ((o.container === undefined) === (o.path === undefined)) throw invalid(option, 'give { container } or { path }');
  if (o.path !== undefined) {
    const p = o.path;
    if (typeof p !== 'string' || p.length === 0 || p.includes('\0')) throw invalid(`${option}.path`, 'must be a non-empty string');
    if (!p.startsWith('/')) throw invalid(`${option}.path`, `${JSON.stringify(p)} is not an absolute path`, 'EINVAL', p);
    return { path: p };
  }
  if (o.container === null || typeof o.container !== 'object') throw invalid(`${option}.container`, 'must be a Container (the object Container.create() returned, not its id)');
  return { container: o.container as Container };
}

export function parseNamespaces(v: unknown): { namespaces: Record<NamespaceName, boolean>; sharedNetwork: boolean; joins: JoinSpec[] } {
  const ns = { ...DEFAULT_NAMESPACES };
  let sharedNetwork = false;
  const given = new Map<JoinableNamespace, NamespaceJoin>();
  const nsIn = v ?? {};
  if (nsIn === null || typeof nsIn !== 'object') throw invalid('namespaces', 'must be an object, e.g. { network: false }');
  checkKeys(nsIn, DEFAULT_NAMESPACES, 'namespaces', 'namespace'); // its keys are the namespaces
  for (const [k, value] of Object.entries(nsIn) as [NamespaceName, unknown][]) {
    const option = `namespaces.${k}`;
    if (k === 'network' && value === 'shared') {
      sharedNetwork = true;
      ns.network = true;
      continue;
    }
    if (typeof value === 'boolean') {
      ns[k] = value;
      continue;
    }
    if (value === null || typeof value !== 'object')
      throw invalid(option, `must be a boolean${k === 'network' ? ", 'shared'" : ''}, { container } or { path }`);
    const join = joinOf(value, option);
    if (k === 'mount')
      throw invalid(option, 'a container always has its own mount namespace (its own root on its own mounts): joining another one has no meaning here');
    if (k === 'user') throw invalid(option, 'user namespaces (rootless containers) are not supported yet', 'ENOTSUP');
    if (k === 'time')
      throw invalid(
        option,
        'joining a time namespace is not supported: the kernel lets only a process that shares its memory with no other join one, and the container is set up on the Node process\'s memory',
        'ENOTSUP',
      );
    ns[k] = false;
    given.set(k, join);
  }
  if (!ns.mount) throw invalid('namespaces.mount', 'a container always has its own mount namespace');
  if (ns.user) throw invalid('namespaces.user', 'user namespaces (rootless containers) are not supported yet', 'ENOTSUP');
  const joins = JOIN_ORDER.filter((k) => given.has(k)).map((k) => ({ ns: k, source: given.get(k)! }));
  return { namespaces: ns, sharedNetwork, joins };
}

/** The join of one namespace, if the spec has one. */
export function joinFor(joins: readonly JoinSpec[], ns: JoinableNamespace): JoinSpec | undefined {
  return joins.find((j) => j.ns === ns);
}
