/**
 * scratchbox/internals: the pipeline's pieces, for tests, tools and the curious. Not covered by
 * semver: the plan's ops and the wire format change whenever the engine does.
 */
export { buildSpec, type Spec } from './spec/spec.js';
export { buildPlan, DEFAULT_DEVICES, DEFAULT_DEV_LINKS, opPath } from './plan/plan.js';
export type { FsFacts, HostInfo, Op, Plan } from './plan/plan.js';
export { OP_TABLE, type OpShape } from './plan/ops.js';
export { encodePlan } from './plan/encode.js';
export { cgroupLayout, parseLayout, type CgroupLayout } from './cgroup/layout.js';
export { createCgroup, overrideCgroupLayout, type CgroupManager } from './cgroup/manager.js';
export { parseCgroup, sharesToWeight, weightToShares, blkioWeightToIoWeight, swapToV2, v1Writes, v2Writes, type CgroupSpec, type CgroupWrite } from './cgroup/resources.js';
export { buildExecPlan, EXEC_FD, joinFlagsOf, type ExecPlanOptions } from './plan/exec.js';
export { processOps, type ProcessSpec } from './plan/plan.js';
export { EXEC_HOOKS, type ExecHooks } from './container/exec.js';
