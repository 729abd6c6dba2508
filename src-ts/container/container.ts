/**
 * The Container class: options → spec → plan → buffer → native child, then the parent's side of
 * the life cycle (events from the addon → status, promises, streams).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { ContainerError, errnoMessage, errnoName, invalid } from '../errors.js';
import { EV, native, type NativeChild } from '../native/addon.js';
import { encodePlan } from '../plan/encode.js';
import { buildPlan, opPath, type Compiled, type Op, type Plan } from '../plan/plan.js';
import { seccompFilter } from '../security/seccomp.js';
import { STAGES } from '../plan/wire.js';
import { checkBindSources, checkExec, checkRootfs, checkSymlinks } from '../spec/check.js';
import { checkOomScoreAdj, checkRlimits, RLIMITS } from '../spec/isolation.js';
import { checkKeys, type KeyTable } from '../spec/keys.js';
import { buildSpec, OPTION_KEYS, type ContainerOptions, type Spec } from '../spec/spec.js';
import { execIn, spawnIn, type ExecOptions, type ExecProcess, type ExecResult, type SpawnOptions } from './exec.js';
import { hostInfo } from './host.js';
import { collect, deferred, exitStatus, nativeError, pipeStreams, settle, signalChild, signalNumber, stdioCode, type Deferred, type ExitStatus } from './proc.js';
import { parseMountinfo, treeOrder, type MountInfo } from './mountinfo.js';

export type ContainerStatus = 'created' | 'running' | 'stopped';
export type { ExitStatus } from './proc.js';

export interface ContainerInfo extends Partial<ExitStatus> {
  id: string;
  pid: number;
  status: ContainerStatus;
  rootfs: string;
  /** readlink of /proc/PID/ns/*, e.g. { pid: 'pid:[4026532301]' }; empty once stopped. */
  namespaces: Record<string, string>;
  /** The mount table as the container sees it, in tree order (treeOrder); empty once stopped. */
  mounts: MountInfo[];
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
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

function describe(op: Op | undefined): string {
  if (!op) return 'setting up the process';
  switch (op.kind) {
    case 'join':
      return "join the container's namespaces";
    case 'enter-root':
      return "enter the container's root";
    case 'mount':
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

/**
 * options with `image` → the same options with `rootfs` (the image's top layer), the process from
 * the image's config (the options win), and the layers. The image code loads only here.
 */
async function fromImage(options: ContainerOptions): Promise<{ resolved: ContainerOptions; layers: string[] }> {
  checkKeys(options, OPTION_KEYS, '');
  if (options.rootfs !== undefined) throw invalid('rootfs', 'give rootfs or image, not both');
  const { ImageStore, Image, imageProcess } = await import('../image/index.js');
  const { image, store: given, ...rest } = options;
  if (typeof image !== 'string' && !(image instanceof Image)) throw invalid('image', 'must be an Image or a reference string');
  if (given !== undefined && !(given instanceof ImageStore)) throw invalid('store', 'must be an ImageStore (ImageStore.open())');
  const store = given ?? (image instanceof Image ? image.store : await ImageStore.open());
  const img = await store.resolve(image);
  if (img.layers.length === 0) throw invalid('image', `image ${img.ref ?? img.digest} has no layers`);
  const proc = await imageProcess(img, {
    ...(rest.args === undefined ? {} : { args: rest.args }),
    ...(rest.env === undefined ? {} : { env: rest.env }),
    ...(rest.cwd === undefined ? {} : { cwd: rest.cwd }),
    ...(rest.user === undefined ? {} : { user: rest.user }),
  });
  return { resolved: { ...rest, rootfs: img.layers.at(-1)!, args: proc.args, env: proc.env, cwd: proc.cwd, user: proc.user }, layers: img.layers };
}

/** What the plan needs compiled: the seccomp program (a cache hit after the first container). */
export function compiledFor(spec: Spec): Compiled {
  if (spec.seccomp === null) return {};
  const f = seccompFilter(spec.seccomp === 'default' ? undefined : spec.seccomp);
  return { seccomp: { bpf: f.bpf, flags: f.flags } };
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
  #deleted = false;
  #ready = deferred<void>();
  #start?: Deferred<void>;
  #exited = deferred<ExitStatus>();
  #abort?: { signal: AbortSignal; listener: () => void };

  /** Creates the container: its process is set up and waits for start(). */
  static async create(options: ContainerOptions): Promise<Container> {
    const { resolved, layers } = options !== null && typeof options === 'object' && options.image !== undefined ? await fromImage(options) : { resolved: options, layers: undefined };
    const spec = buildSpec(resolved, newId, layers ? { layers } : {});
    if (liveIds.has(spec.id))
      throw invalid('id', `${JSON.stringify(spec.id)} is the id of a live container of this process (delete() it first)`, 'EEXIST');
    const killSignal = signalNumber(options.killSignal ?? 'SIGKILL', 'killSignal');
    checkRootfs(spec);
    checkRlimits(spec.rlimits);
    checkOomScoreAdj(spec.oomScoreAdj);
    const facts = checkBindSources(spec);
    const plan = buildPlan(spec, hostInfo(), facts, compiledFor(spec));
    checkSymlinks(spec, plan.ops);
    checkExec(spec);
    const abort = options.signal;
    if (abort?.aborted)
      throw new ContainerError(`container ${spec.id}: aborted before create`, { code: 'ABORT_ERR', stage: 'validate', containerId: spec.id, cause: abort.reason });
    // Everything since the check above is synchronous: no other create() took the id meanwhile.
    liveIds.add(spec.id);
    let c: Container;
    try {
      c = new Container(spec, plan, encodePlan(plan), killSignal, abort);
    } catch (e) {
      liveIds.delete(spec.id);
      throw e;
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
    if (timeout !== undefined && (!Number.isFinite(timeout) || timeout <= 0)) throw invalid('timeout', 'must be a positive number of milliseconds');
    const stdio = rest.stdio ?? [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'];
    const c = await Container.create({ ...rest, stdio });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      const out = collect(c.stdout);
      const err = collect(c.stderr);
      if (timeout !== undefined)
        timer = setTimeout(() => {
          timedOut = true;
          c.kill(c.#killSignal);
        }, timeout);
      await c.start();
      if (input !== undefined && c.stdin) c.stdin.end(input);
      const exit = await c.wait();
      const [stdout, stderr] = await Promise.all([out, err]);
      const result: RunResult = { id: c.id, ...exit, stdout, stderr, durationMs: performance.now() - t0, timedOut };
      if (reject && (timedOut || exit.exitCode !== 0)) {
        const why = timedOut
          ? `timed out after ${timeout} ms`
          : exit.signal
            ? `was killed by ${exit.signal}`
            : `exited with code ${exit.exitCode}`;
        const code = timedOut ? 'ETIMEDOUT' : options.signal?.aborted ? 'ABORT_ERR' : 'ERR_CONTAINER_EXIT';
        const { id: containerId, ...fields } = result; // one name for the id on errors
        throw new ContainerError(`container ${c.id} (${c.#argv.join(' ')}) ${why}`, { code, stage: 'run', containerId, ...fields });
      }
      return result;
    } finally {
      if (timer) clearTimeout(timer);
      await c.delete();
    }
  }

  private constructor(spec: Spec, plan: Plan, buf: Buffer, killSignal: number, abort: AbortSignal | undefined) {
    this.id = spec.id;
    this.rootfs = spec.rootfs;
    this.#plan = plan;
    this.#spec = spec;
    this.#argv = spec.args;
    this.#killSignal = killSignal;
    this.#oomScoreAdj = spec.oomScoreAdj;
    const { Child } = native();
    try {
      this.#child = new Child(buf, spec.stdio.map(stdioCode) as [number, number, number], (ev, a, b, c) => this.#onEvent(ev, a, b, c));
    } catch (e) {
      throw nativeError(spec.id, e);
    }
    this.pid = this.#child.pid;
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
        this.#status = 'created';
        settle(this.#ready, true, undefined);
        break;
      case EV.ERROR:
        this.#error = childError(this.#plan, this.id, a, b, c);
        break;
      case EV.EOF:
        this.#eof = true;
        break;
      case EV.EXIT:
        // (-1, 0): reaped by someone else (a waitpid(-1) elsewhere in this process), status lost.
        this.#exit = exitStatus(a, b);
        this.#status = 'stopped';
        this.#finishedAt = new Date();
        settle(this.#exited, true, this.#exit);
        break;
    }
    this.#settle();
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
      else if (!this.#applyOomScore()) return;
      else {
        if (this.#status === 'created') this.#status = 'running';
        settle(this.#start, true, undefined);
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
    return this.#status === 'creating' ? 'created' : this.#status;
  }

  /** Execs the user's binary in the created container (the OCI create/start split). */
  async start(): Promise<void> {
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

  /** Sends a signal through the pidfd (no PID-reuse race). False when the process is gone. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    return signalChild(this.#child, signal, this.id);
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
    return { id: this.id, pid: this.pid, spec: this.#spec, status: () => (this.#status === 'running' && this.#deleted ? 'stopped' : this.#status) };
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
      mounts: [],
      createdAt: this.#createdAt,
      ...(this.#startedAt ? { startedAt: this.#startedAt } : {}),
      ...(this.#finishedAt ? { finishedAt: this.#finishedAt } : {}),
      ...(this.#exit ?? {}),
    };
    // Synchronous reads: no event-loop turn can reap the process (and free its pid) in between.
    if (!this.#exit) {
      try {
        for (const ns of NAMESPACE_FILES) info.namespaces[ns] = readlinkSync(`/proc/${this.pid}/ns/${ns}`);
        info.mounts = treeOrder(parseMountinfo(readFileSync(`/proc/${this.pid}/mountinfo`, 'utf8')));
      } catch {
        /* exited while we looked: status says so on the next call */
      }
    }
    return info;
  }

  /** Kills the process if needed, waits for it, and releases everything. Idempotent. */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    this.#deleted = true;
    if (this.#abort) this.#abort.signal.removeEventListener('abort', this.#abort.listener);
    if (!this.#exit) this.kill('SIGKILL');
    await this.#exited.promise;
    liveIds.delete(this.id);
    this.stdin?.destroy();
    for (const s of [this.stdout, this.stderr]) if (s && !s.readableEnded) s.destroy();
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

function abortError(id: string, signal: AbortSignal, cause?: unknown): ContainerError {
  return new ContainerError(`container ${id}: aborted`, { code: 'ABORT_ERR', stage: 'sync', containerId: id, cause: cause ?? signal.reason });
}
