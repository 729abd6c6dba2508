import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/**
 * Where a failure happened. 'validate' is before anything is cloned; 'clone' and 'plan' are the
 * parent's native call; 'prepare' … 'exec' are steps of the child (the failing op's stage, see
 * docs/errors.md); 'sync' is the parent/child handshake; 'run' is run() and kill(); 'image' is the image store
 * (import, pull, build, export: bad archives, digest mismatches, unknown refs).
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
  | 'run'
  | 'image';

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
  containerId?: string;
  /** run() failures carry the result so far, like execa's errors (also id and timedOut). */
  id?: string;
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
  declare readonly id?: string;
  declare readonly timedOut?: boolean;

  constructor(message: string, fields: ContainerErrorFields) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'ContainerError';
    const { cause: _cause, ...rest } = fields;
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) Object.assign(this, { [k]: v });
    this.code = fields.code;
  }
}

const systemErrors = getSystemErrorMap(); // -errno → [name, message]

export function errnoName(errno: number): string {
  return systemErrors.get(-errno)?.[0] ?? `E${errno}`;
}

export function errnoMessage(errno: number): string {
  return systemErrors.get(-errno)?.[1] ?? `error ${errno}`;
}

export function errnoNumber(name: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[name];
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
