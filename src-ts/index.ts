/**
 * scratchbox: Linux containers in-process.
 *
 *   options ─► spec (spec/) ─► plan (plan/) ─► one flat buffer (plan/encode) ─► native child
 *   (src-native/child: raw syscalls, then execve) ─► parent: pidfd on the event loop (container/)
 *
 * This is the public API. The plan, its ops and the wire format are internals: they change
 * without notice (import them from 'scratchbox/internals' to look, not to build on).
 */
export { Container } from './container/container.js';
export type { ContainerInfo, ContainerStatus, ExitStatus, RunOptions, RunResult } from './container/container.js';
export type { MountInfo } from './container/mountinfo.js';
export { parseMountinfo, treeOrder } from './container/mountinfo.js';
export { ContainerError } from './errors.js';
export type { ContainerErrorFields, Stage } from './errors.js';
export { configure, type Settings } from './settings.js';
export { defaultMounts } from './spec/mounts.js';
export type { MountSpec } from './spec/mounts.js';
export type { ContainerOptions, NamespaceName, StdioOption, UserOption } from './spec/spec.js';
