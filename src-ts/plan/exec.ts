/**
 * Spec of a running container + an exec's process → the exec's Plan: no mount and no new
 * namespace. The child joins the container's namespaces (one setns with a pidfd; the pid
 * namespace it is born in, see src-native/parent/exec.h), chroots to where the container's PID 1
 * is, and then runs the same process ops as a container's PID 1 (processOps): limits, capability
 * sets, user, cwd, no_new_privs, seccomp, exec. Pure, like ./plan.ts.
 */
import type { Spec } from '../spec/spec.js';
import type { TtySpec } from '../spec/tty.js';
import { processOps, ttyOp, unshareFlagsOf, type Compiled, type Op, type Plan, type ProcessSpec } from './plan.js';
import { joinedFlags } from './joins.js';
import { CLONE, FD } from './wire.js';

/** The plan fds of an exec plan (Child's `fds`, in this order). */
export const EXEC_FD = {
  /** A pidfd of the container's PID 1. */
  PIDFD: FD.PLAN0,
  /** /proc/PID/root of the container's PID 1, O_PATH. */
  ROOT: FD.PLAN0 + 1,
  /** With tty: the console socket the master is sent over. */
  TTY: FD.PLAN0 + 2,
} as const;

export interface ExecPlanOptions {
  /** A sync point just before `ready`, after every credential op (tests hold the child there). */
  syncPoint?: number;
  /** A terminal from the container's devpts, of this size (tty-open, before enter-root). */
  tty?: TtySpec | null;
}

/** The namespaces a container has of its own, as setns(pidfd) takes them (the mount one always). */
export function joinFlagsOf(ns: Spec['namespaces'], joins: Spec['joins'] = []): number {
  // The ones the container's child unshared, its pid namespace, and the ones it joined (not the
  // host's either); never a user namespace (a process sharing Node's memory cannot join one).
  return (unshareFlagsOf(ns) & ~CLONE.NEWUSER) | (ns.pid ? CLONE.NEWPID : 0) | joinedFlags(joins);
}

export function buildExecPlan(container: Spec, proc: ProcessSpec, compiled: Compiled, options: ExecPlanOptions = {}): Plan {
  const ops: Op[] = [
    { stage: 'prepare', kind: 'join', fd: EXEC_FD.PIDFD, nstypes: joinFlagsOf(container.namespaces, container.joins) },
    // The ptmx is opened beneath PID 1's root while it is still an fd (enter-root closes it).
    ...(options.tty ? [ttyOp(EXEC_FD.TTY, EXEC_FD.ROOT, options.tty, proc.user.uid)] : []),
    { stage: 'pivot', kind: 'enter-root', fd: EXEC_FD.ROOT },
    ...processOps(proc, compiled),
  ];
  if (options.syncPoint !== undefined) ops.splice(ops.findIndex((o) => o.kind === 'ready'), 0, { stage: 'sync', kind: 'sync', point: options.syncPoint });
  return { cloneFlags: 0, detached: false, trace: false, base: false, ops };
}
