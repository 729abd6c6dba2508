// The base mount namespace: its only mounts are the kernel's initial rootfs and, on it, one empty
// read-only tmpfs. A container's mount namespace is a copy of it (SETNS then UNSHARE in the child)
// instead of a copy of the host's: one mount to copy rather than all of the host's, none to make
// private or to detach, and the root is entered with chroot, not pivot_root (whose cost grows with
// the number of tasks in the system). Made on first use, kept for the life of the process; -1
// (containers copy the host's namespace and pivot_root) when it cannot be made, when the kernel's
// overlayfs cannot take its layers by fd with a detached upper (Linux 6.15), or when
// Settings::base_mntns is off.
#ifndef SBX_BASE_MNTNS_H
#define SBX_BASE_MNTNS_H

namespace sbx {

int BaseMntns();

}  // namespace sbx

#endif
