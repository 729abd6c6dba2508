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
export type { ContainerInfo, ContainerProcess, ContainerStatus, ExitStatus, RunOptions, RunResult } from './container/container.js';
export { ExecProcess } from './container/exec.js';
export type { ExecOptions, ExecResult, SpawnOptions } from './container/exec.js';
export type { NamespaceInfo } from './container/join.js';
export type { MountInfo } from './container/mountinfo.js';
export { parseMountinfo, treeOrder } from './container/mountinfo.js';
export { cleanupCgroups } from './cgroup/manager.js';
export type { CgroupOption, CgroupResources, CgroupStats, DeviceRule } from './cgroup/resources.js';
export { ContainerError } from './errors.js';
export type { ContainerErrorFields, Stage } from './errors.js';
export { configure, type Settings } from './settings.js';
export { defaultMounts } from './spec/mounts.js';
export { Image, ImageStore, ScratchBuilder } from './image/index.js';
export type { ExportFormat, ImageConfig, ImageProgress, ImportOptions, PullOptions, RegistryAuth, ResolvedImage, StoreOptions } from './image/index.js';
export type { MountSpec } from './spec/mounts.js';
export type { ContainerOptions, NamespaceName, StdioOption, UserOption } from './spec/spec.js';
export type { NamespaceJoin, NamespaceOption, NamespacesOption } from './spec/namespaces.js';
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, RLIMITS } from './spec/isolation.js';
export type { DeviceOption, RlimitOption, RlimitType } from './spec/isolation.js';
export { parseSeccomp, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPS } from './security/seccomp-profile.js';
export type { OciSeccomp, OciSeccompArg, OciSeccompSyscall, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOp, SeccompProfile, SeccompRule } from './security/seccomp-profile.js';
export { defaultSeccompOci, defaultSeccompProfile } from './security/default-seccomp.js';
export { seccompFilter } from './security/seccomp.js';
export { CAPABILITY_NAMES, DEFAULT_CAPABILITIES } from './security/capabilities.js';
export type { CapabilitiesOption, CapabilityChanges, CapabilityName, OciCapabilities } from './security/capabilities.js';
export type { SeccompFilter } from './security/seccomp.js';
