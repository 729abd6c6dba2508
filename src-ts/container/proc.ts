/**
 * What a container's process and an exec'd one share on the parent's side (./container.ts,
 * ./exec.ts): promises settled by the addon's events, signals by name, stdio codes and streams,
 * output collection, and the addon's own errors as ContainerErrors.
 */
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { ContainerError, errnoName, invalid } from '../errors.js';
import { STDIO, type NativeChild } from '../native/addon.js';
import type { StdioOption } from '../spec/spec.js';

export interface ExitStatus {
  /** The exit code, or null when a signal ended the process. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // settled by events; a rejection nobody awaits is not an unhandled one
  return { promise, resolve, reject, settled: false };
}
export type Deferred<T> = ReturnType<typeof deferred<T>>;

export function settle<T>(d: Deferred<T> | undefined, ok: boolean, value: T | unknown) {
  if (!d || d.settled) return;
  d.settled = true;
  if (ok) d.resolve(value as T);
  else d.reject(value);
}

export function signalNumber(sig: NodeJS.Signals | number, option: string): number {
  if (typeof sig === 'number' && Number.isInteger(sig) && sig >= 0 && sig <= 64) return sig;
  const n = typeof sig === 'string' ? (osConstants.signals as Record<string, number>)[sig] : undefined;
  if (n === undefined) throw invalid(option, `unknown signal ${String(sig)}`);
  return n;
}

export function signalName(n: number): NodeJS.Signals {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return `SIG${n}` as NodeJS.Signals;
}

/** EV_EXIT's (code, signal) as an ExitStatus; (-1, 0): reaped by someone else, status lost. */
export function exitStatus(code: number, signal: number): ExitStatus {
  return code >= 0 ? { exitCode: code, signal: null } : { exitCode: null, signal: signal ? signalName(signal) : null };
}

/** Signals a process through its pidfd (no PID-reuse race): false when it is gone. */
export function signalChild(child: NativeChild, signal: NodeJS.Signals | number, id: string, what = 'kill'): boolean {
  const r = child.kill(signalNumber(signal, 'signal'));
  if (r === 0) return true;
  if (r === -3 /* ESRCH */) return false;
  throw new ContainerError(`container ${id}: ${what}: ${errnoName(-r)}`, { code: errnoName(-r), errno: -r, stage: 'run', containerId: id });
}

export function stdioCode(s: StdioOption, i: number): number {
  if (s === 'pipe') return STDIO.PIPE;
  // Node marks its own fds 0-2 O_CLOEXEC at start-up: an fd the child merely keeps would close at
  // execve. Passed by number, the child dup3s it onto i without the flag, as child_process does.
  if (s === 'inherit') return i;
  if (s === 'ignore') return STDIO.IGNORE;
  return s;
}

/** Node streams on the parent ends of 'pipe' stdio (-1: not a pipe). */
export function pipeStreams(fds: readonly [number, number, number]): { stdin: Writable | null; stdout: Readable | null; stderr: Readable | null } {
  const [inFd, outFd, errFd] = fds;
  return {
    stdin: inFd >= 0 ? new Socket({ fd: inFd, readable: false, writable: true }) : null,
    stdout: outFd >= 0 ? new Socket({ fd: outFd, readable: true, writable: false }) : null,
    stderr: errFd >= 0 ? new Socket({ fd: errFd, readable: true, writable: false }) : null,
  };
}

export function collect(stream: Readable | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}

/** run()'s and exec()'s `timeout`: undefined or a positive number of milliseconds. */
export function checkTimeout(timeout: unknown): void {
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0))
    throw invalid('timeout', 'must be a positive number of milliseconds');
}

/** A process run to its end and its output collected, like execa: Container.run() and exec(). */
export async function runToEnd(
  p: { stdin: Writable | null; stdout: Readable | null; stderr: Readable | null; wait(): Promise<ExitStatus>; kill(): unknown },
  o: { timeout?: number | undefined; input?: string | Uint8Array | undefined; begin?: () => Promise<void> },
): Promise<{ exit: ExitStatus; stdout: string; stderr: string; timedOut: boolean }> {
  const out = collect(p.stdout);
  const err = collect(p.stderr);
  let timedOut = false;
  const timer =
    o.timeout === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          p.kill();
        }, o.timeout);
  try {
    await o.begin?.();
    if (o.input !== undefined && p.stdin) p.stdin.end(o.input);
    const exit = await p.wait();
    const [stdout, stderr] = await Promise.all([out, err]);
    return { exit, stdout, stderr, timedOut };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * What run() and exec() reject with (reject: true) when the process timed out, was killed or
 * exited non-zero; undefined when it did not. `result` carries `id`, named containerId here.
 */
export function runFailure<R extends ExitStatus & { id: string; timedOut: boolean }>(what: string, result: R, timeout: number | undefined, aborted: boolean): ContainerError | undefined {
  if (!result.timedOut && result.exitCode === 0) return undefined;
  const why = result.timedOut ? `timed out after ${timeout} ms` : result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
  const code = result.timedOut ? 'ETIMEDOUT' : aborted ? 'ABORT_ERR' : 'ERR_CONTAINER_EXIT';
  const { id: containerId, ...fields } = result; // one name for the id on errors
  return new ContainerError(`${what} ${why}`, { code, stage: 'run', containerId, ...fields });
}

/** What `new Child()` threw (a plan the addon refused, a failed syscall) as a ContainerError. */
export function nativeError(id: string, e: unknown): ContainerError {
  const err = e as Error & { errno?: number; stage?: string; path?: string; syscall?: string };
  return new ContainerError(`container ${id}: ${err.message}`, {
    code: err.errno ? errnoName(err.errno) : 'ERR_INTERNAL',
    stage: (err.stage ?? 'clone') as ContainerError['stage'] & string,
    containerId: id,
    ...(err.errno ? { errno: err.errno } : {}),
    ...(err.path ? { path: err.path } : {}),
    ...(err.syscall ? { syscall: err.syscall } : {}),
  });
}
