#include "base_mntns.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "fd.h"
#include "settings.h"

namespace sbx {

namespace {

// A detached tmpfs mount (fsopen/fsmount), -1 on failure. MOUNT_ATTR_RDONLY in attrs makes the
// superblock read-only too (a copy of the mount in a container's namespace shares it).
int MountTmpfs(const char* mode, unsigned attrs) {
  Fd fs(int(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
  if (fs.fd < 0) return -1;
  if ((attrs & MOUNT_ATTR_RDONLY) && syscall(SYS_fsconfig, fs.fd, FSCONFIG_SET_FLAG, "ro", nullptr, 0) < 0) return -1;
  if (syscall(SYS_fsconfig, fs.fd, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
      syscall(SYS_fsconfig, fs.fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    return -1;
  return int(syscall(SYS_fsmount, fs.fd, FSMOUNT_CLOEXEC, attrs));
}

// The child builds the overlay before it leaves the host's mount namespace, with a detached upper
// tmpfs: the layers go by O_PATH fd (the upper has no path). Linux 6.15 and later (6.13 took layers
// by fd; 6.15 detached mounts and O_PATH fds among them). Tried once, with this thread's copy of
// the host's "/" as the lower layer.
bool OverlayTakesFdLayers() {
  Fd lower(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  Fd upper(MountTmpfs("0755", 0));
  if (lower.fd < 0 || upper.fd < 0 || mkdirat(upper.fd, "u", 0755) < 0 || mkdirat(upper.fd, "w", 0700) < 0) return false;
  Fd u(openat(upper.fd, "u", O_PATH | O_DIRECTORY | O_CLOEXEC)), w(openat(upper.fd, "w", O_PATH | O_DIRECTORY | O_CLOEXEC));
  Fd ovl(int(syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (u.fd < 0 || w.fd < 0 || ovl.fd < 0) return false;
  return syscall(SYS_fsconfig, ovl.fd, FSCONFIG_SET_FD, "lowerdir+", nullptr, lower.fd) == 0 &&
         syscall(SYS_fsconfig, ovl.fd, FSCONFIG_SET_FD, "upperdir", nullptr, u.fd) == 0 &&
         syscall(SYS_fsconfig, ovl.fd, FSCONFIG_SET_FD, "workdir", nullptr, w.fd) == 0 &&
         syscall(SYS_fsconfig, ovl.fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0;
}

// Runs on a thread of its own, which it changes for good (its fs and mount namespace).
int MakeBaseMntns() {
  if (unshare(CLONE_FS | CLONE_NEWNS) < 0) return -1;
  Fd ns(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC));
  if (ns.fd < 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return -1;
  if (!OverlayTakesFdLayers()) return -1;
  Fd base(MountTmpfs("0555", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  if (base.fd < 0) return -1;
  // Stack it on "/", make it the root, detach the old root: the host's mounts are gone from this
  // namespace (pivot_root only changes the root of tasks in it: this thread).
  if (syscall(SYS_move_mount, base.fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0) return -1;
  if (fchdir(base.fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) return -1;
  return ns.release();
}

}  // namespace

int BaseMntns() {
  static std::mutex mu;
  static int base = -1;
  static bool tried = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (tried) return base;
  }
  settings().frozen = true;
  // On a short-lived thread: unshare(CLONE_FS | CLONE_NEWNS) and pivot_root change the calling
  // thread's view of the file system, and this is a Node thread. Joined with no lock held.
  int made = -1;
  if (settings().base_mntns) std::thread([&made] { made = MakeBaseMntns(); }).join();
  std::lock_guard<std::mutex> lock(mu);
  if (!tried) {
    tried = true;
    base = made;
  } else if (made >= 0) {
    close(made);  // another thread made it meanwhile
  }
  return base;
}

}  // namespace sbx
