/**
 * Joined namespaces and the init, the parent's side: which Container a `{ container }` names,
 * the namespace files opened and checked before anything is cloned (they become the plan's fds,
 * FD.PLAN0 + index in spec.joins), what inspect() says of each namespace, and where scratch-init
 * is on the host.
 */
import { closeSync, existsSync, fstatSync, openSync, readlinkSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { ContainerError, errnoNumber, invalid } from '../errors.js';
import { packageRoot } from '../native/addon.js';
import { joinFor, NS_FILE, type JoinSpec, type NamespaceName } from '../spec/namespaces.js';
import type { Spec } from '../spec/spec.js';
import { JOIN_FLAG } from '../plan/joins.js';
import type { Op } from '../plan/plan.js';
import { FD } from '../plan/wire.js';
import type { ContainerStatus } from './container.js';

/** What a join needs of the Container it names (the same as an exec's target). */
export interface JoinTarget {
  id: string;
  pid: number;
  spec: Spec;
  status(): ContainerStatus | 'creating';
}

const targets = new WeakMap<object, () => JoinTarget>();

/** Container's constructor registers itself: only a Container of this process can be joined. */
export function registerJoinable(c: object, target: () => JoinTarget): void {
  targets.set(c, target);
}

const CAP_SYS_PTRACE = 19;

function targetOf(j: JoinSpec, option: string): JoinTarget {
  const get = 'container' in j.source ? targets.get(j.source.container) : undefined;
  if (!get) throw invalid(`${option}.container`, 'must be a Container of this process');
  const t = get();
  const status = t.status();
  if (status !== 'running')
    throw new ContainerError(`invalid ${option}: container ${t.id} is ${status === 'creating' ? 'created' : status}: joining its namespaces needs it running${status === 'created' || status === 'creating' ? ' (start() it first)' : ''}`, {
      code: 'ERR_INVALID_STATE',
      stage: 'validate',
      option,
      containerId: t.id,
    });
  // The new container is set up in that pid namespace on the Node process's memory (non-dumpable
  // meanwhile, like an exec's child): only CAP_SYS_PTRACE gets past that (docs/security.md).
  if (j.ns === 'pid' && !t.spec.privileged && Math.floor(t.spec.capabilities.bounding / 2 ** CAP_SYS_PTRACE) % 2 === 1)
    throw invalid(
      `${option}.container`,
      `container ${t.id} may hold CAP_SYS_PTRACE: a process of it could reach the Node process's memory through /proc/<pid>/mem of the container being set up in its pid namespace; refused`,
      'EPERM',
    );
  return t;
}

/**
 * Checks every `{ container }` join (a running Container of this process) and, with a joined UTS
 * namespace, takes the hostname it has (for /etc/hostname and /etc/hosts). Before buildPlan.
 */
export function resolveJoins(spec: Spec): void {
  for (const j of spec.joins) {
    if (!('container' in j.source)) continue;
    const t = targetOf(j, `namespaces.${j.ns}`);
    if (j.ns === 'uts') spec.hostname = t.spec.namespaces.uts || joinFor(t.spec.joins, 'uts') ? t.spec.hostname : osHostname();
  }
}

/** The file a join opens: its path, or the named container's /proc/PID/ns/<type>. */
function fileOf(j: JoinSpec): string {
  if ('path' in j.source) return j.source.path;
  return `/proc/${targetOf(j, `namespaces.${j.ns}`).pid}/ns/${NS_FILE[j.ns]}`;
}

let nsfsDev: number | undefined;

/**
 * Opens each join's namespace file (O_RDONLY, close-on-exec as Node opens everything) and checks
 * it is a namespace of the right type: on nsfs (the device of /proc/self/ns/*), and its link, as
 * the kernel names an nsfs file, `<type>:[<inode>]`. The fds are in spec.joins' order; on any
 * failure the ones opened are closed and a ContainerError (stage 'validate', with `path`) is
 * thrown. The caller closes them once the child has its copies (after `new Child`).
 */
export function openJoins(spec: Spec): number[] {
  const fds: number[] = [];
  try {
    for (const j of spec.joins) {
      const option = `namespaces.${j.ns}`;
      const path = fileOf(j);
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const code = err.code ?? 'EIO';
        throw new ContainerError(`invalid ${option}: ${path}: ${code === 'ENOENT' ? 'does not exist' : err.message}`, {
          code,
          stage: 'validate',
          option,
          path,
          ...(errnoNumber(code) === undefined ? {} : { errno: errnoNumber(code) }),
        });
      }
      fds.push(fd);
      nsfsDev ??= statSync('/proc/self/ns/net').dev;
      const link = fstatSync(fd).dev === nsfsDev ? readlinkSync(`/proc/self/fd/${fd}`) : '';
      const type = /^([a-z_]+):\[\d+\]$/.exec(link)?.[1];
      if (type === undefined) throw invalid(option, `${path} is not a namespace file (like /proc/PID/ns/${NS_FILE[j.ns]})`, 'EINVAL', path);
      if (type !== NS_FILE[j.ns]) throw invalid(option, `${path} is a ${type} namespace, not ${NS_FILE[j.ns]}`, 'EINVAL', path);
    }
  } catch (e) {
    closeJoins(fds);
    throw e;
  }
  return fds;
}

export function closeJoins(fds: readonly number[]): void {
  for (const fd of fds) closeSync(fd);
}

/** One namespace of a container, for inspect(). */
export interface NamespaceInfo {
  /** The namespace's inode (the number in /proc/PID/ns/<type>'s link). */
  inode: number;
  /**
   * 'own': made for this container; 'joined': given in options.namespaces; 'shared': network
   * 'shared'; 'host': the Node process's (the namespace was set to false).
   */
  source: 'own' | 'joined' | 'shared' | 'host';
  /** With 'joined': the container whose namespace it is, or the file given. */
  container?: string;
  path?: string;
}

const BY_FILE = Object.fromEntries(Object.entries(NS_FILE).map(([k, v]) => [v, k as NamespaceName])) as Record<string, NamespaceName>;

/** inspect()'s namespaceSources, from its namespaces (the readlinks of /proc/PID/ns/*). */
export function namespaceSources(spec: Spec, links: Readonly<Record<string, string>>): Record<string, NamespaceInfo> {
  const out: Record<string, NamespaceInfo> = {};
  for (const [file, link] of Object.entries(links)) {
    const ns = BY_FILE[file];
    const inode = Number(/\[(\d+)\]/.exec(link)?.[1]);
    if (!ns) continue;
    const join = spec.joins.find((j) => j.ns === ns);
    if (join) {
      const t = 'container' in join.source ? targets.get(join.source.container)?.() : undefined;
      out[file] = { inode, source: 'joined', ...('path' in join.source ? { path: join.source.path } : t ? { container: t.id } : {}) };
    } else out[file] = { inode, source: ns === 'network' && spec.sharedNetwork ? 'shared' : spec.namespaces[ns] ? 'own' : 'host' };
  }
  return out;
}

const NS_OF_FLAG = new Map(Object.entries(JOIN_FLAG).map(([k, v]) => [v, k]));

/** An error message's words for a setns or exec-init op. */
export function describeJoinOrInit(op: Extract<Op, { kind: 'setns' | 'exec-init' }>): string {
  if (op.kind === 'exec-init') return `exec the init ${op.init} for ${op.args[0]}`;
  if (op.fd === FD.BASE_MNTNS) return 'enter the base mount namespace';
  if (op.fd === FD.SHARED_NETNS) return "join network 'shared'";
  return `join the ${NS_OF_FLAG.get(op.nstype) ?? 'given'} namespace (namespaces.${NS_OF_FLAG.get(op.nstype) ?? '?'})`;
}

/** scratch-init, built with the addon (build/Release) or shipped next to a prebuilt one. */
export function initBinary(): string {
  const candidates = [`${packageRoot}build/Release/scratch-init`, `${packageRoot}prebuilds/linux-${process.arch}/scratch-init`];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw invalid('init', `scratch-init is missing (${candidates.join(', ')}): build the package (npm ci, or npm run compile)`, 'ENOENT', candidates[0]);
  return found;
}
