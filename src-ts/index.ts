/**
 * scratchbox: Linux containers in-process.
 *
 *   options ─► spec (spec/) ─► plan (plan/) ─► one flat buffer (plan/encode) ─► native child
 *   (src-native/child.c: raw syscalls, then execve) ─► parent: pidfd on the event loop (container/)
 */
export { Container } from './container/container.js';
export type { ContainerInfo, ContainerStatus, ExitStatus, RunOptions, RunResult } from './container/container.js';
export type { MountInfo } from './container/mountinfo.js';
export { parseMountinfo, treeOrder } from './container/mountinfo.js';
export { ContainerError } from './errors.js';
export type { ContainerErrorFields, Stage } from './errors.js';
export { defaultMounts } from './spec/mounts.js';
export { Image, ImageStore, ScratchBuilder } from './image/index.js';
export type { ExportFormat, ImageConfig, ImageProgress, ImportOptions, PullOptions, RegistryAuth, ResolvedImage, StoreOptions } from './image/index.js';
export type { MountSpec } from './spec/mounts.js';
export type { ContainerOptions, NamespaceName, StdioOption, UserOption } from './spec/spec.js';
export { buildSpec } from './spec/spec.js';
export { buildPlan, DEFAULT_DEVICES, DEFAULT_DEV_LINKS } from './plan/plan.js';
export type { Op, Plan, HostInfo } from './plan/plan.js';
export { encodePlan } from './plan/encode.js';
