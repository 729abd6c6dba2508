import { ERRNO_ALIASES, ERRNO_TABLE } from './errno.js';

/**
 * Where a failure happened. 'validate' is before anything is cloned; 'clone' and 'plan' are the
 * parent's native call; 'prepare' … 'exec' are steps of the child (the failing op's stage, see
 * docs/errors.md); 'sync' is the parent/child handshake; 'cgroup' the container's cgroup (parent
 * side); 'image' the image store; 'files' host-side access to a live root (readFile, copyIn, …);
 * 'run' is run() and kill().
 */
export type Stage =
  | 'validate'
  | 'plan'
  | 'clone'
  | 'prepare'
  | 'rootfs'
  | 'mount'
  | 'device'
  | 'file'
  | 'network'
  | 'hostname'
  | 'pivot'
  | 'user'
  | 'cwd'
  | 'sync'
  | 'exec'
  | 'security'
  | 'cgroup'
  | 'image'
  | 'files'
  | 'run';

export interface ContainerErrorFields {
  code: string;
  stage?: Stage;
  path?: string;
  errno?: number;
  syscall?: string;
  /** Index of the failing op in the plan (child failures). */
  op?: number;
  /** The option at fault (validation failures), e.g. 'mounts[2].destination'. */
  option?: string;
  /** The container's id: on every failure after validation (RunResult's `id` is this, on errors). */
  containerId?: string;
  /** run() failures carry the result so far, like execa's errors (also timedOut). */
  timedOut?: boolean;
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  stdout?: string;
  stderr?: string;
  durationMs?: number;
  cause?: unknown;
}

/** The one error class of the library: `code` is an errno name ('ENOENT') or an ERR_* name. */
export class ContainerError extends Error {
  readonly code: string;
  declare readonly stage?: Stage;
  declare readonly path?: string;
  declare readonly errno?: number;
  declare readonly syscall?: string;
  declare readonly op?: number;
  declare readonly option?: string;
  declare readonly containerId?: string;
  declare readonly exitCode?: number | null;
  declare readonly signal?: NodeJS.Signals | null;
  declare readonly stdout?: string;
  declare readonly stderr?: string;
  declare readonly durationMs?: number;
  declare readonly timedOut?: boolean;

  constructor(message: string, fields: ContainerErrorFields) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'ContainerError';
    const { cause: _cause, ...rest } = fields;
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) Object.assign(this, { [k]: v });
    this.code = fields.code;
  }
}

const byNumber = new Map<number, readonly [number, string, string]>(ERRNO_TABLE.map((e) => [e[0], e]));
const byName = new Map<string, number>([...ERRNO_TABLE.map((e) => [e[1], e[0]] as const), ...Object.entries(ERRNO_ALIASES)]);

/** 'ENOEXEC' for 8; `E${errno}` for a number Linux does not define. */
export function errnoName(errno: number): string {
  return byNumber.get(errno)?.[1] ?? `E${errno}`;
}

/** strerror's text: 'Exec format error' for 8. */
export function errnoMessage(errno: number): string {
  return byNumber.get(errno)?.[2] ?? `error ${errno}`;
}

export function errnoNumber(name: string): number | undefined {
  return byName.get(name);
}

/** A validation failure: thrown before anything is cloned. */
export function invalid(option: string, message: string, code = 'EINVAL', path?: string): ContainerError {
  return new ContainerError(`invalid ${option}: ${message}`, {
    code,
    stage: 'validate',
    option,
    ...(path === undefined ? {} : { path }),
    ...(errnoNumber(code) === undefined ? {} : { errno: errnoNumber(code) }),
  });
}
