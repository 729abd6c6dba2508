/**
 * Exec into a running container: Container#exec (collects the output, like run()) and
 * Container#spawn (a handle with streams, wait() and kill()). The process joins the container's
 * namespaces and root and gets its capabilities, seccomp filter, no_new_privs, rlimits, umask and
 * (unless given) user, cwd and env; capabilities may be narrowed per exec, never widened. The plan
 * is ../plan/exec.ts; the native side src-native/child/ops_join.c and src-native/parent/exec.cc.
 */
import { closeSync, openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { ContainerError, errnoName, invalid } from '../errors.js';
import { EV, native, type NativeChild } from '../native/addon.js';
import { encodePlan } from '../plan/encode.js';
import { buildExecPlan } from '../plan/exec.js';
import type { Plan, ProcessSpec } from '../plan/plan.js';
import { capabilityNames, type CapabilitiesOption, type CapSets } from '../security/capabilities.js';
import type { CgroupManager } from '../cgroup/manager.js';
import { checkKeys, type KeyTable } from '../spec/keys.js';
import { buildSpec, type ContainerOptions, type Spec, type StdioOption, type UserOption } from '../spec/spec.js';
import { childError, compiledFor, type ContainerStatus } from './container.js';
import { checkOwnDevpts, type TtySizeOption, type TtySpec } from '../spec/tty.js';
import { ConsoleSocket, ttyIo, type Terminal } from './tty.js';
import { checkTimeout, collect, deferred, exitStatus, nativeError, pipeStreams, runFailure, runToEnd, settle, signalChild, signalNumber, stdioCode, type ExitStatus } from './proc.js';

export interface SpawnOptions {
  /** args[0] is looked up inside the container (its PATH, or this exec's env PATH). */
  args: readonly string[];
  /** Merged over the container's environment (a key given here wins). */
  env?: Readonly<Record<string, string>> | readonly string[];
  /** Default: the container's cwd. */
  cwd?: string;
  /** Default: the container's user. */
  user?: UserOption;
  /** Default 'pipe' (exec(): stdin 'ignore' unless `input`). */
  stdio?: ContainerOptions['stdio'];
  /** Narrower sets than the container's (the same forms as its option); more is EPERM. */
  capabilities?: CapabilitiesOption;
  /** Kills the process (with killSignal, default SIGKILL). */
  signal?: AbortSignal;
  killSignal?: NodeJS.Signals | number;
  /** A terminal from the container's devpts as its stdio, like `docker exec -t` (docs/tty.md). Not with `stdio`. */
  tty?: boolean;
  /** With tty: the window size before the process starts. Default 80 x 24. */
  ttySize?: TtySizeOption;
}

export interface ExecOptions extends SpawnOptions {
  timeout?: number;
  input?: string | Uint8Array;
  /** Reject when the process exits non-zero, is killed, or times out (default true, like run()). */
  reject?: boolean;
}

export interface ExecResult extends ExitStatus {
  /** The container's id. */
  id: string;
  /** The exec'd process's pid, as the host sees it. */
  pid: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** Test hooks, under a symbol key of the options (scratchbox/internals). */
export const EXEC_HOOKS = Symbol('scratchbox.execHooks');
export interface ExecHooks {
  /** Stops the child at a sync point after its credentials are set, until `resume()`. */
  pause?: (pid: number, resume: () => void) => void;
}
type Hooked<T> = T & { [EXEC_HOOKS]?: ExecHooks };

const SPAWN_KEYS = {
  args: true,
  env: true,
  cwd: true,
  user: true,
  stdio: true,
  capabilities: true,
  signal: true,
  killSignal: true,
  tty: true,
  ttySize: true,
} as const satisfies KeyTable<SpawnOptions>;
const EXEC_KEYS = { ...SPAWN_KEYS, timeout: true, input: true, reject: true } as const satisfies KeyTable<ExecOptions>;

/** What an exec needs of its Container. */
export interface ExecTarget {
  id: string;
  pid: number;
  spec: Spec;
  status(): ContainerStatus | 'creating';
  /** The container's cgroup, if it has one: the exec'd process goes into it too. */
  cgroup?: CgroupManager | null;
}

const CAP_SYS_PTRACE = 19;
const O_PATH = 0o10000000;
const O_DIRECTORY = 0o200000;
const SETS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;
const SYNC_POINT = 70;

/** The exec's own process spec: the container's, with what the options change. */
function processSpec(target: ExecTarget, o: SpawnOptions): { proc: ProcessSpec; stdio: [StdioOption, StdioOption, StdioOption]; tty: TtySpec | null } {
  const c = target.spec;
  const parsed = buildSpec(
    {
      rootfs: c.rootfs,
      args: o.args,
      ...(o.env === undefined ? {} : { env: o.env }),
      cwd: o.cwd ?? c.cwd,
      user: o.user ?? c.user,
      ...(o.stdio === undefined ? {} : { stdio: o.stdio }),
      ...(o.capabilities === undefined ? {} : { capabilities: o.capabilities }),
      ...(o.tty === undefined ? {} : { tty: o.tty }),
      ...(o.ttySize === undefined ? {} : { ttySize: o.ttySize }),
    },
    () => target.id,
  );
  let env = c.env;
  if (o.env !== undefined) {
    // buildSpec adds the default PATH when none is given: the container's PATH stays then.
    const gavePath = Array.isArray(o.env) ? o.env.some((kv) => String(kv).startsWith('PATH=')) : Object.hasOwn(o.env, 'PATH');
    const given = parsed.env.filter((kv) => gavePath || !kv.startsWith('PATH='));
    const keys = new Set(given.map((kv) => kv.slice(0, kv.indexOf('='))));
    env = [...c.env.filter((kv) => !keys.has(kv.slice(0, kv.indexOf('=')))), ...given];
  }
  const capabilities = o.capabilities === undefined ? c.capabilities : narrower(parsed.capabilities, c.capabilities);
  return {
    proc: { args: parsed.args, env, cwd: parsed.cwd, user: parsed.user, umask: c.umask, capabilities, rlimits: c.rlimits, noNewPrivileges: c.noNewPrivileges },
    stdio: parsed.stdio,
    tty: parsed.tty,
  };
}

/** Each set at most the container's: an exec never gets more than the container has. */
function narrower(given: CapSets, container: CapSets): CapSets {
  for (const set of SETS) {
    const extra = BigInt(given[set]) & ~BigInt(container[set]);
    if (extra !== 0n)
      throw invalid('capabilities', `${set} would hold ${capabilityNames(Number(extra)).join(', ')}, which the container's ${set} set has not: an exec gets at most the container's capabilities`, 'EPERM');
  }
  return given;
}

function checkTarget(target: ExecTarget): void {
  const status = target.status();
  if (status !== 'running')
    throw new ContainerError(`container ${target.id} is ${status === 'creating' ? 'created' : status}: exec needs a running container${status === 'created' || status === 'creating' ? ' (start() it first)' : ''}`, {
      code: 'ERR_INVALID_STATE',
      stage: 'validate',
      containerId: target.id,
    });
  const c = target.spec;
  if (c.namespaces.time)
    throw invalid('namespaces.time', 'exec into a container with a time namespace is not supported (the kernel lets only a process that shares its memory with no other join one)', 'ENOTSUP');
  // While the exec'd child is set up it runs on the Node process's memory, which is then
  // non-dumpable: only CAP_SYS_PTRACE gets past that (docs/security.md).
  if (!c.privileged && Math.floor(c.capabilities.bounding / 2 ** CAP_SYS_PTRACE) % 2 === 1)
    throw invalid(
      'capabilities',
      `container ${target.id} may hold CAP_SYS_PTRACE: a process of it could reach the Node process's memory through /proc/<pid>/mem of an exec being set up; exec is refused (only privileged containers, which hold the host anyway, allow it)`,
      'EPERM',
    );
}

/** A process exec'd into a running container (Container#spawn). */
export class ExecProcess {
  /** Host pid of the exec'd process. */
  readonly pid: number;
  readonly containerId: string;
  #stdin: Writable | null = null;
  #stdout: Readable | null = null;
  #stderr: Readable | null = null;
  #tty: Terminal | null = null;
  readonly #console: ConsoleSocket | null;

  readonly #plan: Plan;
  readonly #child: NativeChild;
  readonly #hooks: ExecHooks | undefined;
  #error?: ContainerError;
  #eof = false;
  #started = false;
  #streamsOpen = false;
  #exit?: ExitStatus;
  #running = deferred<void>();
  #exited = deferred<ExitStatus>();

  /** @internal Use Container#spawn. */
  constructor(target: ExecTarget, plan: Plan, stdio: readonly StdioOption[], hooks: ExecHooks | undefined, tty = false) {
    this.containerId = target.id;
    this.#plan = plan;
    this.#hooks = hooks;
    this.#console = tty ? new ConsoleSocket() : null;
    const { Child, pidfdOpen } = native();
    // The pid is the container's PID 1 until its exit is seen, which is after checkTarget: it was
    // not reaped, so it names no other process.
    let pidfd = -1;
    let root = -1;
    let cgroupFd = -1;
    const cg = target.cgroup ?? null;
    try {
      try {
        pidfd = pidfdOpen(target.pid);
        root = openSync(`/proc/${target.pid}/root`, O_PATH | O_DIRECTORY);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new ContainerError(`container ${target.id}: its process is gone (${err.code ?? err.message}): exec needs a running container`, {
          code: 'ERR_INVALID_STATE',
          stage: 'validate',
          containerId: target.id,
        });
      }
      // v2: born in the container's cgroup (CLONE_INTO_CGROUP), as the container's process was.
      if (cg) cgroupFd = cg.openDir(target.id);
      const onEvent = (ev: number, a: number, b: number, c: number) => this.#onEvent(ev, a, b, c);
      try {
        const buf = encodePlan(plan);
        const codes = stdio.map(stdioCode) as [number, number, number];
        const fds = this.#console ? [pidfd, root, this.#console.childEnd] : [pidfd, root];
        this.#child = cgroupFd >= 0 ? new Child(buf, codes, onEvent, fds, cgroupFd) : new Child(buf, codes, onEvent, fds);
      } catch (e) {
        throw nativeError(target.id, e);
      }
    } catch (e) {
      this.#console?.close();
      throw e;
    } finally {
      this.#console?.closeChildEnd();
      // The child got its own copies in MSG_FDS, before clone3.
      if (pidfd >= 0) closeSync(pidfd);
      if (root >= 0) closeSync(root);
      if (cgroupFd >= 0) closeSync(cgroupFd);
    }
    this.pid = this.#child.pid;
    // v1: moved in now, before READY can start it (it waits at wait-start until then). A failure
    // fails the exec: READY then kills it instead of starting it.
    if (cg?.kind === 'v1')
      try {
        cg.add(this.pid);
      } catch (e) {
        if (!(e instanceof ContainerError && e.code === 'ESRCH'))
          this.#error = e instanceof ContainerError ? new ContainerError(`container ${target.id}: exec: ${e.message}`, { ...e, code: e.code, containerId: target.id, cause: e }) : (e as ContainerError);
      }
  }

  /**
   * The streams are made once the binary runs, in the event that resolves spawn(): a pipe's
   * stream starts reading as soon as it exists, and an empty output would end (and 'end' be
   * emitted) before the caller could listen. Until then the output waits in the pipe.
   */
  #openStreams(): void {
    if (this.#streamsOpen) return;
    this.#streamsOpen = true;
    ({ stdin: this.#stdin, stdout: this.#stdout, stderr: this.#stderr } = pipeStreams(this.#child.stdio));
  }

  /** With stdio 'pipe': Node streams of its stdin, stdout and stderr (from spawn()'s resolution on). */
  get stdin(): Writable | null {
    return this.#stdin;
  }
  get stdout(): Readable | null {
    return this.#stdout;
  }
  get stderr(): Readable | null {
    return this.#stderr;
  }
  /** With tty: the terminal's master, a Duplex (stdin, stdout and stderr are null then). */
  get tty(): Terminal | null {
    return this.#tty;
  }

  /** With tty: the terminal's window size (the process gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    if (!this.#tty) throw new ContainerError(`container ${this.containerId}: resize: exec ${this.pid} has no terminal (tty: true)`, { code: 'ERR_INVALID_STATE', stage: 'run', containerId: this.containerId });
    this.#tty.resize(cols, rows);
  }

  #onEvent(ev: number, a: number, b: number, c: number): void {
    switch (ev) {
      case EV.SYNC:
        if (this.#hooks?.pause) this.#hooks.pause(this.pid, () => this.#child.resume(a));
        else this.#child.resume(a);
        break;
      case EV.READY: {
        if (this.#error) {
          this.#console?.close();
          this.kill('SIGKILL'); // not placed in the container's cgroup: it never runs
          break;
        }
        // No create/start split for an exec: start at once (the terminal first: it came before READY).
        if (this.#console) {
          try {
            this.#tty = this.#console.take(this.containerId);
          } catch (e) {
            this.#error ??= e as ContainerError;
            this.kill('SIGKILL');
            break;
          }
        }
        this.#started = true;
        const r = this.#child.start();
        if (r < 0) this.#error ??= new ContainerError(`container ${this.containerId}: exec: start: ${errnoName(-r)}`, { code: errnoName(-r), errno: -r, stage: 'sync', containerId: this.containerId });
        break;
      }
      case EV.ERROR:
        this.#error = childError(this.#plan, this.containerId, a, b, c);
        break;
      case EV.EOF:
        this.#eof = true;
        break;
      case EV.EXIT:
        this.#exit = exitStatus(a, b);
        settle(this.#exited, true, this.#exit);
        break;
    }
    // EOF after START without an ERROR: its execve succeeded (the process may have exited since,
    // in any order of EOF and EXIT). EOF and EXIT before READY: it died during setup.
    if (this.#error) settle(this.#running, false, this.#error);
    else if (this.#eof && this.#started && !this.#running.settled) {
      this.#openStreams();
      settle(this.#running, true, undefined);
    }
    else if (this.#eof && this.#exit)
      settle(this.#running, false, new ContainerError(`container ${this.containerId}: the exec'd process died during setup (${this.#exit.signal ?? `exit code ${this.#exit.exitCode}`})`, { code: 'ECHILD', stage: 'sync', containerId: this.containerId, ...this.#exit }));
  }

  /** Resolves once the binary runs (EOF on the sync socket: its end closed at execve). */
  get running(): Promise<void> {
    return this.#running.promise;
  }

  /** Resolves when the process has exited (reaped through its pidfd). */
  wait(): Promise<ExitStatus> {
    return this.#exited.promise;
  }

  /** Signals it through its pidfd; false when it is gone. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    return signalChild(this.#child, signal, this.containerId, `kill exec ${this.pid}`);
  }

  /** Kills it if need be, waits for it, and closes its streams. */
  async release(): Promise<void> {
    if (!this.#exit) this.kill('SIGKILL');
    await this.#exited.promise;
    this.#openStreams(); // a failed spawn's pipes: closed through their streams
    this.#stdin?.destroy();
    for (const s of [this.#stdout, this.#stderr]) if (s && !s.readableEnded) s.destroy();
    this.#console?.close();
    this.#tty?.destroy();
  }
}

export async function spawnIn(target: ExecTarget, options: Hooked<SpawnOptions>, keys: object = SPAWN_KEYS): Promise<ExecProcess> {
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  checkKeys(options, keys, '');
  const killSignal = signalNumber(options.killSignal ?? 'SIGKILL', 'killSignal');
  checkTarget(target);
  const { proc, stdio, tty } = processSpec(target, options);
  if (tty) checkOwnDevpts(target.spec.mounts);
  const hooks = options[EXEC_HOOKS];
  const plan = buildExecPlan(target.spec, proc, compiledFor(target.spec), { ...(hooks?.pause ? { syncPoint: SYNC_POINT } : {}), tty });
  const abort = options.signal;
  if (abort?.aborted) throw new ContainerError(`container ${target.id}: exec aborted before it began`, { code: 'ABORT_ERR', stage: 'validate', containerId: target.id, cause: abort.reason });
  const p = new ExecProcess(target, plan, stdio, hooks, tty !== null);
  const listener = () => p.kill(killSignal);
  abort?.addEventListener('abort', listener, { once: true });
  void p.wait().then(() => abort?.removeEventListener('abort', listener));
  try {
    await p.running;
  } catch (e) {
    await p.release(); // reaped before the rejection, like create()
    throw e;
  }
  return p;
}

export async function execIn(target: ExecTarget, options: Hooked<ExecOptions>): Promise<ExecResult> {
  const t0 = performance.now();
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object');
  checkKeys(options, EXEC_KEYS, '');
  const { timeout, input, reject = true, ...rest } = options;
  checkTimeout(timeout);
  const stdio = rest.stdio ?? (rest.tty ? undefined : [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
  const p = await spawnIn(target, { ...rest, ...(stdio === undefined ? {} : { stdio }), ...(options[EXEC_HOOKS] ? { [EXEC_HOOKS]: options[EXEC_HOOKS] } : {}) });
  try {
    const killSignal = signalNumber(rest.killSignal ?? 'SIGKILL', 'killSignal');
    const io = p.tty ? ttyIo(p.tty, input, async () => {}) : { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, input, begin: undefined };
    const r = await runToEnd({ ...io, wait: () => p.wait(), kill: () => p.kill(killSignal) }, { timeout, input: io.input, ...(io.begin ? { begin: io.begin } : {}) });
    const result: ExecResult = { id: target.id, pid: p.pid, ...r.exit, stdout: r.stdout, stderr: r.stderr, durationMs: performance.now() - t0, timedOut: r.timedOut };
    const failure = reject ? runFailure(`container ${target.id}: exec ${proc0(options.args)}`, result, timeout, rest.signal?.aborted === true) : undefined;
    if (failure) throw failure;
    return result;
  } finally {
    await p.release();
  }
}

const proc0 = (args: readonly string[]) => args.join(' ');
