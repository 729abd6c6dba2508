/**
 * Joined namespaces and the init, as ops (pure, like ./plan.ts). A join is a setns of a namespace
 * file the parent opened and checked (../container/join.ts), given as plan fd FD.PLAN0 + its
 * index in spec.joins.
 */
import type { JoinableNamespace, JoinSpec } from '../spec/namespaces.js';
import type { Op } from './plan.js';
import { CLONE, FD } from './wire.js';

/** Where scratch-init is bound inside the container (init: true). */
export const INIT_PATH = '/dev/init';

export const JOIN_FLAG: Record<JoinableNamespace, number> = {
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  cgroup: CLONE.NEWCGROUP,
};

/**
 * `born`: the pid namespace's setns, first in the plan. setns(CLONE_NEWPID) moves only the
 * caller's future children, so the parent's cloning thread joins it around clone3 (the exec
 * path's mechanism: parent/exec.cc PidnsForChildren, which PreparePlan arms for this op) and the
 * child is born in it; the child's own setns is then a join of the namespace it is in already.
 * `ns`: the others, where the network namespace op goes (before the mounts made in them).
 */
export function joinOps(joins: readonly JoinSpec[]): { born: Op[]; ns: Op[] } {
  const born: Op[] = [];
  const ns: Op[] = [];
  joins.forEach((j, i) => {
    const op: Op = { stage: j.ns === 'network' ? 'network' : 'prepare', kind: 'setns', fd: FD.PLAN0 + i, nstype: JOIN_FLAG[j.ns] };
    (j.ns === 'pid' ? born : ns).push(op);
  });
  return { born, ns };
}

/** The CLONE_NEW* flags of the joined namespaces. */
export function joinedFlags(joins: readonly JoinSpec[]): number {
  return joins.reduce((f, j) => f | JOIN_FLAG[j.ns], 0);
}
