/**
 * The Container class: options → spec → plan → buffer → native child, then the parent's side of
 * the life cycle (events from the addon → status, promises, streams).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync, type Stats } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { ContainerError, errnoMessage, errnoName, invalid } from '../errors.js';
import { EV, native, type NativeChild } from '../native/addon.js';
import { encodePlan } from '../plan/encode.js';
import { createCgroup, currentLayout, type CgroupManager } from '../cgroup/manager.js';
import type { CgroupSpec, CgroupStats } from '../cgroup/resources.js';
import { buildPlan, opPath, type Compiled, type Op, type Plan } from '../plan/plan.js';
import { seccompFilter } from '../security/seccomp.js';
import { CLONE, STAGES } from '../plan/wire.js';
import { checkBindSources, checkExec, checkRootfs, checkSymlinks, recordSeen, replaySeen } from '../spec/check.js';
import { checkOomScoreAdj, checkRlimits, RLIMITS } from '../spec/isolation.js';
import { checkKeys, type KeyTable } from '../spec/keys.js';
import { buildSpec, OPTION_KEYS, type ContainerOptions, type Spec, type StdioOption } from '../spec/spec.js';
import type { CommitOptions, CommitSource } from '../image/commit.js';
import type { Image, ImageStore } from '../image/index.js';
import { copyIn, copyOut, readdirInRoot, readInRoot, statInRoot, withRoot, type Root } from './files.js';
import { execIn, spawnIn, type ExecOptions, type ExecProcess, type ExecResult, type SpawnOptions } from './exec.js';
import { hostInfo } from './host.js';
import { bytesFrom, factsKey, lookupTemplate, planFrom, specFrom, storeTemplate, templateKey, type Template } from './templates.js';
import { closeJoins, describeJoinOrInit, initBinary, namespaceSources, openJoins, registerJoinable, resolveJoins, type NamespaceInfo } from './join.js';
import { ConsoleSocket, ttyIo, type Terminal } from './tty.js';
import { checkTimeout, deferred, exitStatus, nativeError, pipeStreams, runFailure, runToEnd, settle, signalChild, signalName, signalNumber, stdioCode, type Deferred } from './proc.js';
import { parseMountinfo, treeOrder, type MountInfo } from './mountinfo.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface ExitStatus {
  /** The exit code, or null when a signal ended the process. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /**
   * With a cgroup: the OOM killer killed a process of the container (its memory limit was hit).
   * Absent for a container without a cgroup.
   */
  oomKilled?: boolean;
}

export interface ContainerInfo extends Partial<ExitStatus> {
  id: string;
  pid: number;
  status: ContainerStatus;
  rootfs: string;
  /** readlink of /proc/PID/ns/*, e.g. { pid: 'pid:[4026532301]' }; empty once stopped. */
  namespaces: Record<string, string>;
  /** Per namespace (the same keys): its inode, and whether it is the container's own or joined. */
  namespaceSources: Record<string, NamespaceInfo>;
  /** The mount table as the container sees it, in tree order (treeOrder); empty once stopped. */
  mounts: MountInfo[];
  /** The processes in the container's PID namespace (empty once stopped), by pid inside. */
  processes: ContainerProcess[];
  /** The live root as the host reaches it: `/proc/PID/root` (absent once stopped). */
  rootPath?: string;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** With a cgroup: its directories and what it reports (until delete()). */
  cgroup?: { dirs: readonly string[]; stats: CgroupStats };
}

export interface ContainerProcess {
  /** The pid inside the container (the last NSpid entry), and on the host. */
  pid: number;
  hostPid: number;
  /** /proc/PID/cmdline; empty for a kernel-less zombie. */
  args: string[];
  /** The State: letter of /proc/PID/status (R, S, D, Z, T, …). */
  state: string;
}

export interface RunOptions extends ContainerOptions {
  /** Kill the container (killSignal, default SIGKILL) after this many milliseconds. */
  timeout?: number;
  /** Written to the container's stdin, which is then closed. */
  input?: string | Uint8Array;
  /** Reject when the process exits non-zero, is killed, or times out (default true, like execa). */
  reject?: boolean;
}

/** RunOptions' keys: run() rejects any other (buildSpec checks the ContainerOptions among them). */
const RUN_OPTION_KEYS = { ...OPTION_KEYS, timeout: true, input: true, reject: true } as const satisfies KeyTable<RunOptions>;

export interface RunResult extends ExitStatus {
  /** The container's id. */
  id: string;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

const NAMESPACE_FILES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;


/** Signals whose default action neither ends nor stops a process: a created container survives them. */
const HARMLESS = new Set([0, osConstants.signals.SIGCHLD, osConstants.signals.SIGCONT, osConstants.signals.SIGURG, osConstants.signals.SIGWINCH]);
const STOPS = new Set([osConstants.signals.SIGSTOP, osConstants.signals.SIGTSTP, osConstants.signals.SIGTTIN, osConstants.signals.SIGTTOU]);

/**
 * The processes in the container: those in its PID namespace (by /proc/N/ns/pid), or, when it
 * shares the host's, its process and descendants. Nested PID namespaces are not followed.
 */
function containerProcesses(pid: number, pidns: string | undefined): ContainerProcess[] {
  const own = pidns === readlinkSync('/proc/self/ns/pid');
  const all: { hostPid: number; ppid: number; status: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (!own && readlinkSync(`/proc/${e}/ns/pid`) !== pidns) continue;
      const status = readFileSync(`/proc/${e}/status`, 'utf8');
      all.push({ hostPid: Number(e), ppid: Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]), status });
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  let mine = all;
  if (own) {
    const keep = new Set([pid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of all)
        if (!keep.has(p.hostPid) && keep.has(p.ppid)) {
          keep.add(p.hostPid);
          grew = true;
        }
    }
    mine = all.filter((p) => keep.has(p.hostPid));
  }
  const out: ContainerProcess[] = [];
  for (const p of mine) {
    let args: string[] = [];
    try {
      args = readFileSync(`/proc/${p.hostPid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    } catch {
      /* exited meanwhile */
    }
    const nspid = /^NSpid:\s*(.*)$/m.exec(p.status)?.[1]?.trim().split(/\s+/).map(Number) ?? [p.hostPid];
    out.push({ pid: nspid.at(-1)!, hostPid: p.hostPid, args, state: /^State:\s*(\S)/m.exec(p.status)?.[1] ?? '?' });
  }
  return out.sort((a, b) => a.pid - b.pid);
}


function describe(op: Op | undefined): string {
  if (!op) return 'setting up the process';
  switch (op.kind) {
    case 'join':
      return "join the container's namespaces";
    case 'setns':
    case 'exec-init':
      return describeJoinOrInit(op);
    case 'enter-root':
      return "enter the container's root";
    case 'tty-open':
      return `open a terminal on /${op.path}`;
    case 'mount':
    case 'mount-detached':
      return `mount ${op.fstype} on /${op.target}`;
    case 'bind':
      return `bind ${op.source} on /${op.target}`;
    case 'mknod':
      return `mknod /${op.path}`;
    case 'symlink':
      return `symlink /${op.path} -> ${op.target}`;
    case 'write-file':
      return `write /${op.path}`;
    case 'mkdir':
      return `mkdir /${op.path}`;
    case 'root-overlay':
    case 'root-overlay-detached':
      return 'mount the overlay root';
    case 'root-upper-dir':
      return `use ${op.dir} as the upper layer`;
    case 'resolve-exec':
      return `find ${op.file} in the container`;
    case 'exec':
      return `exec ${op.args[0]}`;
    case 'chdir':
      return `chdir ${op.path}`;
    case 'setuser':
      return `set user ${op.uid}:${op.gid}`;
    case 'seccomp':
      return `load the seccomp filter (${op.instructions} instructions)`;
    case 'no-new-privs':
      return 'set no_new_privs';
    case 'cap-bounding':
      return 'drop capabilities from the bounding set';
    case 'keep-caps':
      return 'keep capabilities across the user change';
    case 'capset':
      return 'set the capabilities';
    case 'cap-ambient':
      return 'raise the ambient capabilities';
    case 'mask-path':
      return `mask /${op.path} (maskedPaths; a symlink there is refused, a file needs /${op.nullDevice} as c 1:3)`;
    case 'readonly-path':
      return `make /${op.path} read-only (readonlyPaths; a symlink there is refused)`;
    case 'rlimit':
      return `set ${Object.keys(RLIMITS)[op.resource] ?? `rlimit ${op.resource}`}`;
    case 'sysctl':
      return `write /${op.path}`;
    case 'chown':
      return `chown /${op.path} to ${op.uid}:${op.gid}`;
    case 'root-readonly':
      return 'make the root read-only';
    default:
      return op.kind;
  }
}

export function childError(plan: Plan, id: string, stage: number, opIndex: number, errno: number): ContainerError {
  const op = opIndex >= 0 ? plan.ops[opIndex] : undefined;
  const code = errnoName(errno);
  const path = op ? opPath(op) : undefined;
  const hint = code === 'ELOOP' && path ? ' (a symlink in the rootfs; scratchbox never follows one for a mount or a runtime file)' : '';
  return new ContainerError(`container ${id}: ${describe(op)}: ${code}: ${errnoMessage(errno)}${hint}`, {
    code,
    errno,
    stage: (STAGES[stage] ?? 'prepare') as ContainerError['stage'] & string,
    op: opIndex,
    containerId: id,
    ...(path === undefined ? {} : { path }),
  });
}

// randomUUID draws from a cached pool of entropy: no getrandom call per container.
const newId = () => randomUUID().replace(/-/g, '').slice(0, 16);

let imageModule: typeof import('../image/index.js') | undefined;
/**
 * The default store, opened once per directory ($XDG_CACHE_HOME may change): a store opened anew
 * for each create() from a ref makes its directories again and reads the image's manifest and
 * config again (~0.9 ms a create() here). Opened again if its directory went away.
 */
const defaultStores = new Map<string, Promise<ImageStore>>();
function defaultStore(m: typeof import('../image/index.js')): Promise<ImageStore> {
  const dir = m.defaultStoreDir();
  let p = defaultStores.get(dir);
  if (!p || !existsSync(dir)) {
    p = m.ImageStore.open(dir);
    defaultStores.set(dir, p);
    p.catch(() => defaultStores.delete(dir));
  }
  return p;
}

/**
 * options with `image` → the same options with `rootfs` (the image's top layer), the process from
 * the image's config (the options win), and the layers. The image code loads only here.
 */
async function fromImage(options: ContainerOptions): Promise<{ resolved: ContainerOptions; layers: string[]; store: ImageStore; digest: string }> {
  checkKeys(options, OPTION_KEYS, '');
  if (options.rootfs !== undefined) throw invalid('rootfs', 'give rootfs or image, not both');
  // Imported once: an import() of a loaded module still resolves it again (~20 µs a create()).
  const m = (imageModule ??= await import('../image/index.js'));
  const { ImageStore, Image, imageProcess } = m;
  const { image, store: given, ...rest } = options;
  if (typeof image !== 'string' && !(image instanceof Image)) throw invalid('image', 'must be an Image or a reference string');
  if (given !== undefined && !(given instanceof ImageStore)) throw invalid('store', 'must be an ImageStore (ImageStore.open())');
  const store = given ?? (image instanceof Image ? image.store : await defaultStore(m));
  const img = await store.resolve(image);
  if (img.layers.length === 0) throw invalid('image', `image ${img.ref ?? img.digest} has no layers`);
  const proc = await imageProcess(img, {
    ...(rest.args === undefined ? {} : { args: rest.args }),
    ...(rest.env === undefined ? {} : { env: rest.env }),
    ...(rest.cwd === undefined ? {} : { cwd: rest.cwd }),
    ...(rest.user === undefined ? {} : { user: rest.user }),
  });
  return { resolved: { ...rest, rootfs: img.layers.at(-1)!, args: proc.args, env: proc.env, cwd: proc.cwd, user: proc.user }, layers: img.layers, store, digest: img.digest };
}

/** What the plan needs compiled: the seccomp program (a cache hit after the first container). */
export function compiledFor(spec: Spec): Compiled {
  if (spec.seccomp === null) return {};
  const f = seccompFilter(spec.seccomp === 'default' ? undefined : spec.seccomp);
  return { seccomp: { bpf: f.bpf, flags: f.flags } };
}

/** Checks for roots built ahead that no container came for (root_pool.h): 2.5 s after the last create(). */
let rootExpiry: NodeJS.Timeout | undefined;
const ROOT_EXPIRY_MS = 2500;

/**
 * A root built ahead holds its overlay's layers and its bind sources' trees: were no container to
 * come, a file system under them would stay in use (its superblock alive after an umount). So
 * once creates stop, the addon drops the roots that wait. The timer does not keep Node alive.
 */
function armRootExpiry(): void {
  if (rootExpiry) {
    rootExpiry.refresh();
    return;
  }
  const expire = () => {
    rootExpiry = native().expireRoots() ? setTimeout(expire, ROOT_EXPIRY_MS).unref() : undefined;
  };
  rootExpiry = setTimeout(expire, ROOT_EXPIRY_MS).unref();
}

/** Ids of this process's containers from create() until delete() (or a failed create()). */
const liveIds = new Set<string>();

export class Container implements AsyncDisposable {
  readonly id: string;
  readonly rootfs: string;
  /** The container's process as seen from the host (valid from create() on). */
  readonly pid: number;
  /** With stdio 'pipe': Node streams of the container's stdin, stdout and stderr. */
  readonly stdin: Writable | null = null;
  readonly stdout: Readable | null = null;
  readonly stderr: Readable | null = null;
  #tty: Terminal | null = null;
  #console: ConsoleSocket | null = null;

  readonly #plan: Plan;
  readonly #spec: Spec;
  readonly #argv: readonly string[];
  readonly #child: NativeChild;
  readonly #killSignal: number;
  readonly #oomScoreAdj: number | null;
  #status: ContainerStatus | 'creating' = 'creating';
  #createdAt = new Date();
  #startedAt?: Date;
  #finishedAt?: Date;
  #exit?: ExitStatus;
  #error?: ContainerError;
  #eof = false;
  /** EV_EOF after START came from a successful execve (not from a death before it). */
  #execd = false;
  /** A kill() that ends the process reached it while created: start() can no longer succeed. */
  #killedBeforeStart?: NodeJS.Signals;
  #deleted = false;
  #ready = deferred<void>();
  #start?: Deferred<void>;
  #exited = deferred<ExitStatus>();
  #abort?: { signal: AbortSignal; listener: () => void };
  /** Only when the container asked for one (resources or cgroup): the default path has none. */
  #cgroup: CgroupManager | null;
  #paused = false;
  readonly #kept: Kept | undefined;

  /** Creates the container: its process is set up and waits for start(). */
  static async create(options: ContainerOptions): Promise<Container> {
    const img = options !== null && typeof options === 'object' && options.image !== undefined ? await fromImage(options) : undefined;
    const key = img ? templateKey(img.resolved, img.layers) : templateKey(options);
    const tpl = lookupTemplate(key);
    const fromTpl = tpl ? specFrom(tpl, img?.resolved ?? options, newId) : null;
    const spec = fromTpl ?? buildSpec(img?.resolved ?? options, newId, img ? { layers: img.layers } : {});
    const kept = spec.keep ? await keepUpper(spec, img?.store ?? options.store, img?.digest) : undefined;
    try {
      return await Container.#create(options, spec, kept, key, fromTpl ? tpl : undefined);
    } catch (e) {
      if (kept) await (await import('../image/commit.js')).dropKept(kept.dir);
      throw e;
    }
  }

  static async #create(options: ContainerOptions, spec: Spec, kept: Kept | undefined, key: string | null, tpl: Template | undefined): Promise<Container> {
    if (liveIds.has(spec.id))
      throw invalid('id', `${JSON.stringify(spec.id)} is the id of a live container of this process (delete() it first)`, 'EEXIST');
    const killSignal = signalNumber(options.killSignal ?? 'SIGKILL', 'killSignal');
    // The disk checks of a template's last container, replayed: unchanged, they pass again (below).
    const replayed = tpl?.checked !== undefined && replaySeen(tpl.checked);
    if (!replayed) checkRootfs(spec);
    checkRlimits(spec.rlimits);
    checkOomScoreAdj(spec.oomScoreAdj);
    const facts = checkBindSources(spec);
    resolveJoins(spec);
    if (spec.init) facts.initBinary = initBinary();
    const layout = spec.cgroup ? currentLayout().kind : undefined;
    const host = layout ? { ...hostInfo(), cgroup: layout } : hostInfo();
    // A template made from the same options and facts, or the full build (which makes one).
    const same = tpl !== undefined && tpl.facts === factsKey(facts) && tpl.layout === layout;
    let buf: Buffer | undefined;
    let plan: Plan;
    if (same) plan = planFrom(tpl!, spec.hostname);
    else {
      const compiled = compiledFor(spec);
      plan = buildPlan(spec, host, facts, compiled);
      buf = storeTemplate(key, options, spec, plan, facts, layout, encodePlan, (s) => buildPlan(s, host, facts, compiled));
    }
    // The disk checks, unless replayed for this very plan: what they look at is kept with the
    // template (templates.ts), and the next container's create() repeats only those calls.
    if (!(replayed && same)) {
      const checked = recordSeen(() => {
        checkRootfs(spec);
        checkSymlinks(spec, plan.ops);
        checkExec(spec);
      });
      const stored = same ? tpl : lookupTemplate(key);
      if (stored && (stored === tpl || stored.plan === plan)) stored.checked = checked; // this spec's and plan's
    }
    const abort = options.signal;
    if (abort?.aborted)
      throw new ContainerError(`container ${spec.id}: aborted before create`, { code: 'ABORT_ERR', stage: 'validate', containerId: spec.id, cause: abort.reason });
    // Everything since the check above is synchronous: no other create() took the id meanwhile.
    liveIds.add(spec.id);
    let c: Container;
    let cgroup: CgroupManager | null = null;
    let fds: number[] = [];
    // v2: the child is born in its cgroup (CLONE_INTO_CGROUP), made first. v1 (and hybrid) hosts
    // have no such clone: the cgroups are made and the child moved in right after the clone,
    // while it sets up on the other core (docs/cgroups.md), and before create() resolves, so
    // before it can exec.
    const afterClone = spec.cgroup !== null && layout !== 'v2';
    try {
      cgroup = spec.cgroup && !afterClone ? createCgroup(spec.cgroup, spec.id) : null;
      fds = openJoins(spec);
      const bytes = buf ?? bytesFrom(tpl!, spec.hostname);
      c = new Container(spec, plan, bytes, killSignal, abort, cgroup, kept, fds);
      // A root for the next container, built ahead on the helper thread while this one runs:
      // the addon builds it when the last two containers' roots were alike (root_pool.h), so
      // options that alternate but share a root (another command, the same rootfs) get one too.
      if (plan.base) {
        native().prepareRoot(bytes); // host mode: no prefix to pool
        armRootExpiry();
      }
    } catch (e) {
      liveIds.delete(spec.id);
      await cgroup?.destroy();
      throw e;
    } finally {
      closeJoins(fds); // the child got its own copies in MSG_FDS, before clone3
    }
    if (afterClone) {
      try {
        c.#placeV1(spec.cgroup!);
      } catch (e) {
        await c.delete();
        throw e;
      }
    }
    try {
      await c.#ready.promise;
      // Aborted while READY was on its way: the abort listener has killed the process already.
      if (abort?.aborted) throw abortError(spec.id, abort);
    } catch (e) {
      await c.delete();
      if (e instanceof ContainerError && e.code === 'ABORT_ERR') throw e;
      throw abort?.aborted ? abortError(spec.id, abort, e) : e;
    }
    return c;
  }

  /** create + start + wait + delete, collecting output: like execa(). */
  static async run(options: RunOptions): Promise<RunResult> {
    const t0 = performance.now();
    if (options !== null && typeof options === 'object') checkKeys(options, RUN_OPTION_KEYS, '');
    const { timeout, input, reject = true, ...rest } = options;
    checkTimeout(timeout);
    const stdio = rest.stdio ?? (rest.tty ? undefined : [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
    const c = await Container.create({ ...rest, ...(stdio === undefined ? {} : { stdio }) });
    try {
      const io = c.tty ? ttyIo(c.tty, input, () => c.start()) : { stdin: c.stdin, stdout: c.stdout, stderr: c.stderr, input, begin: () => c.start() };
      const r = await runToEnd({ ...io, wait: () => c.wait(), kill: () => c.kill(c.#killSignal) }, { timeout, input: io.input, begin: io.begin });
      const result: RunResult = { id: c.id, ...r.exit, stdout: r.stdout, stderr: r.stderr, durationMs: performance.now() - t0, timedOut: r.timedOut };
      const failure = reject ? runFailure(`container ${c.id} (${c.#argv.join(' ')})`, result, timeout, options.signal?.aborted === true) : undefined;
      if (failure) throw failure;
      return result;
    } finally {
      await c.delete();
    }
  }

  private constructor(spec: Spec, plan: Plan, buf: Buffer, killSignal: number, abort: AbortSignal | undefined, cgroup: CgroupManager | null, kept: Kept | undefined, fds: number[]) {
    this.id = spec.id;
    this.#kept = kept;
    this.rootfs = spec.rootfs;
    this.#plan = plan;
    this.#spec = spec;
    this.#argv = spec.args;
    this.#killSignal = killSignal;
    this.#oomScoreAdj = spec.oomScoreAdj;
    this.#cgroup = cgroup;
    const { Child } = native();
    try {
      const stdio = spec.stdio.map(stdioCode) as [number, number, number];
      const onEvent = (ev: number, a: number, b: number, c: number) => this.#onEvent(ev, a, b, c);
      this.#console = spec.tty ? new ConsoleSocket() : null;
      // Plan fds: the joined namespaces', then the console socket (plan.ts ttySocketFd).
      const all = this.#console ? [...fds, this.#console.childEnd] : fds;
      this.#child = new Child(buf, stdio, onEvent, all, cgroup?.cloneFd);
    } catch (e) {
      this.#console?.close();
      const err = e as Error & { errno?: number; stage?: string; path?: string; syscall?: string };
      const path = err.path ?? (err.stage === 'cgroup' ? cgroup?.dirs[0] : undefined);
      throw new ContainerError(`container ${spec.id}: ${err.message}${err.stage === 'cgroup' ? ` (CLONE_INTO_CGROUP ${path})` : ''}`, {
        code: err.errno ? errnoName(err.errno) : 'ERR_INTERNAL',
        stage: (err.stage ?? 'clone') as ContainerError['stage'] & string,
        containerId: spec.id,
        ...(err.errno ? { errno: err.errno } : {}),
        ...(path ? { path } : {}),
        ...(err.syscall ? { syscall: err.syscall } : {}),
      });
    } finally {
      cgroup?.closeCloneFd(); // the child was born in it (or never): the fd has done its job
      this.#console?.closeChildEnd();
    }
    this.pid = this.#child.pid;
    registerJoinable(this, () => this.#execTarget());
    ({ stdin: this.stdin, stdout: this.stdout, stderr: this.stderr } = pipeStreams(this.#child.stdio));
    if (abort) {
      const listener = () => this.kill(this.#killSignal);
      abort.addEventListener('abort', listener, { once: true });
      this.#abort = { signal: abort, listener };
    }
  }

  #onEvent(ev: number, a: number, b: number, c: number): void {
    switch (ev) {
      case EV.READY:
        if (this.#console && !this.#takeTty()) break;
        this.#status = 'created';
        settle(this.#ready, true, undefined);
        break;
      case EV.ERROR:
        this.#error = childError(this.#plan, this.id, a, b, c);
        break;
      case EV.EOF:
        this.#eof = true;
        this.#execd = a === 1;
        break;
      case EV.EXIT:
        // (-1, 0): reaped by someone else (a waitpid(-1) elsewhere in this process), status lost.
        this.#exit = a >= 0 ? { exitCode: a, signal: null } : { exitCode: null, signal: b ? signalName(b) : null };
        if (this.#cgroup) this.#exit.oomKilled = this.#cgroup.oomKills() > 0;
        this.#status = 'stopped';
        this.#finishedAt = new Date();
        settle(this.#exited, true, this.#exit);
        break;
    }
    this.#settle();
  }

  /**
   * With `tty: true`: the master of the process's terminal, a Duplex (from create() on; stdin,
   * stdout and stderr are null then). It ends when the process (and whatever holds the terminal)
   * has exited, and is closed by delete().
   */
  get tty(): Terminal | null {
    return this.#tty;
  }

  /** With `tty: true`: the terminal's window size (the process gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    if (!this.#tty) throw new ContainerError(`container ${this.id}: resize: the container has no terminal (tty: true)`, { code: 'ERR_INVALID_STATE', stage: 'run', containerId: this.id });
    this.#tty.resize(cols, rows);
  }

  /** The master the child's tty-open sent before READY (a failure to get it fails create()). */
  #takeTty(): boolean {
    try {
      this.#tty = this.#console!.take(this.id);
      return true;
    } catch (e) {
      this.#error ??= e as ContainerError;
      this.kill('SIGKILL');
      return false;
    }
  }

  /**
   * v1: makes the cgroups (limits written) and moves the child into every hierarchy, right after
   * the clone. A child that died meanwhile (ESRCH) is left to the usual report of its death.
   */
  #placeV1(spec: CgroupSpec): void {
    const cg = createCgroup(spec, this.id);
    this.#cgroup = cg;
    try {
      cg.add(this.pid);
    } catch (e) {
      if (e instanceof ContainerError && e.code === 'ESRCH') return;
      throw e instanceof ContainerError ? new ContainerError(`container ${this.id}: ${e.message}`, { ...e, code: e.code, containerId: this.id, cause: e }) : e;
    }
  }

  /**
   * create() settles on READY, on an ERROR message, or when the process died (EOF and EXIT both
   * seen); start() settles on EOF (its end closes at execve) or an ERROR message.
   */
  #settle(): void {
    const failure = () =>
      this.#error ??
      new ContainerError(
        `container ${this.id}: the process died during setup (${this.#exit?.signal ?? `exit code ${this.#exit?.exitCode}`})`,
        { code: 'ECHILD', stage: 'sync', containerId: this.id, ...this.#exit },
      );
    if (!this.#ready.settled && (this.#error || (this.#eof && this.#exit))) {
      if (this.#error || this.#exit) settle(this.#ready, false, failure());
    }
    if (this.#start && !this.#start.settled && this.#eof) {
      if (this.#error) settle(this.#start, false, this.#error);
      else if (this.#execd) {
        if (!this.#applyOomScore()) return;
        if (this.#status === 'created') this.#status = 'running';
        settle(this.#start, true, undefined);
      } else if (this.#exit) {
        // Died between START and execve (a signal: the child exits by itself only after an ERROR).
        const how = this.#exit.signal ?? `exit code ${this.#exit.exitCode}`;
        settle(this.#start, false, new ContainerError(`container ${this.id}: the process died before execve (${how})`, { code: 'ECHILD', stage: 'exec', containerId: this.id, ...this.#exit }));
      }
    }
  }

  /**
   * oom_score_adj, written once the child has exec'd: before, it shares the Node process's mm,
   * and the kernel would give the score to Node too. Until EXIT is handled the pid is not reaped,
   * so it is still this container's. False when start() was rejected (and the process killed).
   */
  #applyOomScore(): boolean {
    if (this.#oomScoreAdj === null || this.#exit) return true;
    try {
      writeFileSync(`/proc/${this.pid}/oom_score_adj`, String(this.#oomScoreAdj));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ESRCH' || err.code === 'ENOENT') return true; // exited already
      this.kill('SIGKILL');
      settle(
        this.#start,
        false,
        new ContainerError(`container ${this.id}: set oom_score_adj to ${this.#oomScoreAdj}: ${err.code ?? 'EIO'}`, {
          code: err.code ?? 'EIO',
          ...(err.errno === undefined ? {} : { errno: -err.errno }),
          stage: 'security',
          option: 'oomScoreAdj',
          containerId: this.id,
        }),
      );
      return false;
    }
    return true;
  }

  get status(): ContainerStatus {
    if (this.#paused && this.#status === 'running') return 'paused';
    return this.#status === 'creating' ? 'created' : this.#status;
  }

  #needCgroup(what: string): CgroupManager {
    if (this.#cgroup && !this.#deleted) return this.#cgroup;
    throw new ContainerError(
      `container ${this.id}: ${what} needs a cgroup: ${this.#deleted ? 'the container was deleted' : 'create it with resources or cgroup: {}'}`,
      { code: 'ERR_INVALID_STATE', stage: 'cgroup', containerId: this.id },
    );
  }

  /** Freezes every process of the container (cgroup freezer; cgroup.freeze on v2). */
  async pause(): Promise<void> {
    const cg = this.#needCgroup('pause()');
    if (this.status !== 'running')
      throw new ContainerError(`container ${this.id} is ${this.status}, not running`, { code: 'ERR_INVALID_STATE', stage: 'cgroup', containerId: this.id });
    await cg.freeze();
    this.#paused = true;
  }

  /** Thaws what pause() froze. */
  resume(): void {
    const cg = this.#needCgroup('resume()');
    if (this.status !== 'paused')
      throw new ContainerError(`container ${this.id} is ${this.status}, not paused`, { code: 'ERR_INVALID_STATE', stage: 'cgroup', containerId: this.id });
    cg.thaw();
    this.#paused = false;
  }

  /**
   * SIGKILLs every process in the container's cgroup, PID 1 or not, forked or double-forked, and
   * resolves when none is left (cgroup.kill on v2; freeze, kill, thaw on v1).
   */
  async killAll(): Promise<void> {
    const cg = this.#needCgroup('killAll()');
    await cg.killAll();
    this.#paused = false;
  }

  /** What the container's cgroup reports: memory, cpu, pids, OOM events (docs/cgroups.md). */
  stats(): CgroupStats {
    return this.#needCgroup('stats()').stats();
  }

  /** Execs the user's binary in the created container (the OCI create/start split). */
  async start(): Promise<void> {
    if (this.#killedBeforeStart && !this.#start)
      throw new ContainerError(`container ${this.id} was killed before start (kill ${this.#killedBeforeStart}, delivered as SIGKILL)`, {
        code: 'ERR_INVALID_STATE',
        stage: 'sync',
        containerId: this.id,
        ...(this.#exit ?? {}),
      });
    if (this.#status !== 'created' || this.#start)
      throw new ContainerError(`container ${this.id} is ${this.#start ? 'already started' : this.#status}`, {
        code: 'ERR_INVALID_STATE',
        stage: 'sync',
        containerId: this.id,
      });
    this.#start = deferred<void>();
    this.#startedAt = new Date();
    const r = this.#child.start();
    if (r < 0 && !this.#eof) {
      settle(this.#start, false, new ContainerError(`container ${this.id}: start: ${errnoName(-r)}`, { code: errnoName(-r), errno: -r, stage: 'sync', containerId: this.id }));
    }
    this.#settle();
    return this.#start.promise;
  }

  /**
   * Sends a signal through the pidfd (no PID-reuse race). False when the process is gone. A
   * created container (waiting for start()) gets it at once, with the default action: SIGTERM
   * ends it (its exit says SIGTERM) and start() is then ERR_INVALID_STATE. Until the exec, a
   * core-dumping signal (SIGQUIT, SIGABRT, SIGSEGV, …) is sent as SIGKILL: the process still
   * shares Node's memory, which a dump would write out.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const n = signalNumber(signal, 'signal');
    const r = this.#child.kill(n);
    if (r === 0) {
      if (this.#status !== 'running' && !this.#start && !HARMLESS.has(n) && !STOPS.has(n)) this.#killedBeforeStart ??= signalName(n);
      return true;
    }
    if (r === -3 /* ESRCH */) return false;
    throw new ContainerError(`container ${this.id}: kill: ${errnoName(-r)}`, { code: errnoName(-r), errno: -r, stage: 'run', containerId: this.id });
  }

  /**
   * Like ChildProcess#unref(): the container (its process and its stdio streams) no longer keeps
   * the event loop alive. Node may then exit while it runs; it dies with Node unless `detached`
   * (a detached one that was started lives on; one never started exits at once either way).
   */
  unref(): this {
    this.#child.unref();
    for (const s of [this.stdin, this.stdout, this.stderr, this.tty]) (s as Socket | null)?.unref();
    return this;
  }

  /** Undoes unref(). */
  ref(): this {
    this.#child.ref();
    for (const s of [this.stdin, this.stdout, this.stderr, this.tty]) (s as Socket | null)?.ref();
    return this;
  }

  /**
   * Runs a process inside the running container (src-ts/container/exec.ts): it joins the
   * container's namespaces and root and gets its capabilities, seccomp filter, no_new_privs,
   * rlimits and user. Collects the output like run(); rejects on a non-zero exit unless
   * `reject: false`.
   */
  exec(options: ExecOptions): Promise<ExecResult> {
    return execIn(this.#execTarget(), options);
  }

  /** Like exec(), but resolves once the binary runs, with a handle: pid, streams, wait(), kill(). */
  spawn(options: SpawnOptions): Promise<ExecProcess> {
    return spawnIn(this.#execTarget(), options);
  }

  #execTarget() {
    return { id: this.id, pid: this.pid, spec: this.#spec, cgroup: this.#cgroup, status: () => (this.#status === 'running' && this.#deleted ? 'stopped' : this.#status) };
  }

  /** Resolves when the container's process has exited (it is reaped through its pidfd). */
  wait(): Promise<ExitStatus> {
    return this.#exited.promise;
  }

  async inspect(): Promise<ContainerInfo> {
    const info: ContainerInfo = {
      id: this.id,
      pid: this.pid,
      status: this.status,
      rootfs: this.rootfs,
      namespaces: {},
      namespaceSources: {},
      mounts: [],
      processes: [],
      createdAt: this.#createdAt,
      ...(this.#startedAt ? { startedAt: this.#startedAt } : {}),
      ...(this.#finishedAt ? { finishedAt: this.#finishedAt } : {}),
      ...(this.#exit ?? {}),
    };
    if (this.#cgroup && !this.#deleted) info.cgroup = { dirs: this.#cgroup.dirs, stats: this.#cgroup.stats() };
    // Synchronous reads: no event-loop turn can reap the process (and free its pid) in between.
    if (!this.#exit) {
      try {
        for (const ns of NAMESPACE_FILES) info.namespaces[ns] = readlinkSync(`/proc/${this.pid}/ns/${ns}`);
        info.namespaceSources = namespaceSources(this.#spec, info.namespaces);
        info.mounts = treeOrder(parseMountinfo(readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8')));
        info.processes = containerProcesses(this.pid, info.namespaces.pid);
        info.rootPath = `/proc/${this.pid}/root`;
      } catch {
        /* exited while we looked: status says so on the next call */
      }
    }
    return info;
  }

  /**
   * Host-side access to the live root (created or running; stopped: ERR_INVALID_STATE). Paths are
   * the container's: every symlink and `..` resolves inside its root (openat2 RESOLVE_IN_ROOT),
   * never to a host path. Failures are ContainerError at stage 'files' with the errno's code.
   */
  readFile(path: string): Promise<Buffer>;
  readFile(path: string, encoding: BufferEncoding): Promise<string>;
  async readFile(path: string, encoding?: BufferEncoding): Promise<Buffer | string> {
    const buf = await this.#inRoot('readFile', path, (root) => readInRoot(root, path));
    return encoding === undefined ? buf : buf.toString(encoding);
  }

  /** The names in a directory of the live root, sorted. */
  readdir(path: string): Promise<string[]> {
    return this.#inRoot('readdir', path, (root) => readdirInRoot(root, path));
  }

  /** stat of a path in the live root (a final symlink followed inside it; `{ follow: false }`: lstat). */
  stat(path: string, options: { follow?: boolean } = {}): Promise<Stats> {
    return this.#inRoot('stat', path, (root) => statInRoot(root, path, options.follow ?? true));
  }

  /** Copies a host file or directory tree to `path` in the live root (`cp -RH`: links in the tree stay links). */
  copyIn(hostPath: string, path: string): Promise<void> {
    return this.#inRoot('copyIn', path, (root) => copyIn(root, hostPath, path));
  }

  /** Copies a file or directory tree of the live root to `hostPath`, which must not exist (`cp -RH`). */
  copyOut(path: string, hostPath: string): Promise<void> {
    return this.#inRoot('copyOut', path, (root) => copyOut(root, path, hostPath));
  }

  #inRoot<T>(op: string, path: string, fn: (root: Root) => Promise<T>): Promise<T> {
    if (this.#exit || this.#status === 'creating')
      return Promise.reject(
        new ContainerError(`container ${this.id}: ${op}: the container is ${this.#exit ? 'stopped' : 'not created yet'}: its root is gone`, {
          code: 'ERR_INVALID_STATE',
          stage: 'files',
          containerId: this.id,
          ...(typeof path === 'string' ? { path } : {}),
        }),
      );
    return withRoot(this.id, this.pid, op, path, fn);
  }

  /** Kills the process if needed, waits for it, and releases everything. Idempotent. */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    this.#deleted = true;
    if (this.#abort) this.#abort.signal.removeEventListener('abort', this.#abort.listener);
    try {
      // Without a PID namespace, what PID 1 forked outlives it: kill everything in the cgroup. (With
      // one, the kernel kills the rest with PID 1; and destroy() finds any straggler: EBUSY.)
      // Paused: a frozen process acts on SIGKILL only once thawed, which killAll() does.
      if (this.#cgroup && !this.#exit && (this.#paused || !(this.#plan.cloneFlags & CLONE.NEWPID))) await this.#cgroup.killAll();
    } finally {
      if (!this.#exit) this.kill('SIGKILL');
      await this.#exited.promise;
      try {
        await this.#cgroup?.destroy();
      } finally {
        liveIds.delete(this.id);
      }
    }
    this.stdin?.destroy();
    for (const s of [this.stdout, this.stderr]) if (s && !s.readableEnded) s.destroy();
    this.#console?.close();
    this.#tty?.destroy();
  }

  /** With `keep: true`: the directory holding the upper layer (upper/, work/), kept after delete(). */
  get keptDir(): string | null {
    return this.#kept?.dir ?? null;
  }

  /**
   * With `keep: true`, once the process has exited (or before start()): the container's changes as
   * a new layer on its image (or on its rootfs), stored in its store and tagged `ref`. See
   * docs/images.md.
   */
  async commit(ref?: string, opts?: CommitOptions): Promise<Image> {
    const state = (why: string) => new ContainerError(`container ${this.id}: cannot commit: ${why}`, { code: 'ERR_INVALID_STATE', stage: 'image', containerId: this.id });
    if (!this.#kept) throw state('it was not created with keep: true (its upper layer was a tmpfs)');
    if (this.#status === 'running') throw state('it is running (its files may be changing): commit once it has exited (kill() and wait())');
    const { commitContainer, runtimeEntries } = await import('../image/commit.js');
    return commitContainer({ ...this.#kept, runtime: runtimeEntries(this.#plan.ops) }, ref, opts);
  }

  /**
   * With `trace: true`: how long each setup op took in the child (clone to READY), in µs, in plan
   * order. Null without tracing.
   */
  setupTrace(): { op: number; kind: Op['kind']; stage: string; path?: string; us: number }[] | null {
    const t = this.#child.trace();
    if (t.length === 0) return null;
    return Array.from(t.subarray(1), (end, i) => {
      const op = this.#plan.ops[i]!;
      const path = opPath(op);
      return { op: i, kind: op.kind, stage: op.stage, ...(path ? { path } : {}), us: (end - t[i]!) / 1000 };
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}

type Kept = Omit<CommitSource, 'runtime'>;

/** keep: the upper layer's directory in the store (made now: the plan names it). */
async function keepUpper(spec: Spec, given: ImageStore | undefined, digest: string | undefined): Promise<Kept> {
  const { ImageStore } = await import('../image/index.js');
  const { prepareKept } = await import('../image/commit.js');
  if (given !== undefined && !(given instanceof ImageStore)) throw invalid('store', 'must be an ImageStore (ImageStore.open())');
  const store = given ?? (await ImageStore.open());
  spec.upperDir = await prepareKept(store, spec.id);
  const { args, env, cwd, user, rootfs } = spec;
  return { store, id: spec.id, dir: spec.upperDir, rootfs, process: { args, env, cwd, user }, ...(digest === undefined ? {} : { image: digest }) };
}

function abortError(id: string, signal: AbortSignal, cause?: unknown): ContainerError {
  return new ContainerError(`container ${id}: aborted`, { code: 'ABORT_ERR', stage: 'sync', containerId: id, cause: cause ?? signal.reason });
}
