#include "netns_pool.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fdpass.h"
#include "settings.h"

namespace sbx {

namespace {

// Brings "lo" up in the calling thread's network namespace.
int LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  int r = ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
  close(s);
  return r;
}

// A detached mount of a new `fstype` superblock, made in the calling thread's namespaces, named
// as mount(2) would name it (the source findmnt shows), with these attributes (the child sets the
// plan's exact ones before attaching it). The superblock stays read-write: whether the
// container's mount is read-only is the mount's attribute. -1 when it cannot be made (the kernel
// lacks the new mount API): the child then mounts it itself.
int MakeDetached(const char* fstype, unsigned attrs) {
  int fs = int(syscall(SYS_fsopen, fstype, FSOPEN_CLOEXEC));
  if (fs < 0) return -1;
  int mnt = -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", fstype, 0) == 0 &&
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
    mnt = int(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs));
  close(fs);
  return mnt;
}

// A sysfs of this thread's network namespace (read-only, nosuid, nodev, noexec), and an mqueue of
// its IPC namespace (nosuid, nodev, noexec).
int MakeSysfs() { return MakeDetached("sysfs", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC); }
int MakeMqueue() { return MakeDetached("mqueue", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC); }

}  // namespace

Netns MakeNetns(int home, bool with_sysfs, int home_ipc) {
  Netns n;
  bool ipc = home_ipc >= 0;
  if (unshare(CLONE_NEWNET | (ipc ? CLONE_NEWIPC : 0)) < 0) return n;
  n.net = LoopbackUp() == 0 ? open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
  if (n.net >= 0 && with_sysfs) n.sysfs = MakeSysfs();  // tagged with this thread's netns
  if (ipc) n.ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  if (n.ipc >= 0) n.mqueue = MakeMqueue();  // of this thread's (new) IPC namespace
  bool home_again = setns(home, CLONE_NEWNET) == 0 && (!ipc || setns(home_ipc, CLONE_NEWIPC) == 0);
  if (!home_again || n.net < 0) {
    for (int fd : {n.net, n.sysfs, n.ipc, n.mqueue})
      if (fd >= 0) close(fd);
    return Netns{};
  }
  return n;
}

NetnsPool& NetnsPool::Get() {
  static NetnsPool* p = new NetnsPool;
  return *p;
}

Netns NetnsPool::Take() {
  Netns n;
  HelperThread& helper = HelperThread::Get();
  if (!helper.Running() || settings().netns_pool == 0) return n;  // off: nothing to wait for, or promote
  HelperMsg m;
  int fds[4] = {-1, -1, -1, -1};
  int got = helper.TryReceive(&m, fds, 4);
  if (got < 1 || m.type != HelperMsg::kNetns) {
    for (int i = 0; i < got; i++) close(fds[i]);
    missed_++;
    // The pool ran dry: one more from now on (netns_pool.h), and its thread at normal priority
    // until it has caught up. The job reads target_ before it makes one.
    size_t t = target_.load();
    while (t != 0 && t < max_.load() && !target_.compare_exchange_weak(t, t + 1)) {
    }
    helper.Promote();
    return n;
  }
  // m.id says which came: bit 0 a sysfs, bit 1 an IPC namespace, bit 2 its mqueue (in that order
  // after the netns).
  int i = 1;
  n.net = fds[0];
  if ((m.id & 1) && i < got) n.sysfs = fds[i++];
  if ((m.id & 2) && i < got) n.ipc = fds[i++];
  if ((m.id & 4) && i < got) n.mqueue = fds[i++];
  taken_++;
  helper.Post({HelperMsg::kWake, 0}, nullptr, 0);  // make the next one
  return n;
}

void NetnsPool::Job::OnMessage(const HelperMsg&, int* fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);  // kWake: Step() does the work
}

bool NetnsPool::Job::Step(int ch) {
  if (home_ == -2) {
    home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    home_ipc_ = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
    pool_->max_ = std::max(settings().netns_pool, settings().netns_pool_max);
    pool_->target_ = settings().netns_pool;
  }
  if (home_ < 0 || failed_ || pool_->sent_ - pool_->taken_ >= pool_->target_) return false;
  Netns n = MakeNetns(home_, true, home_ipc_);
  if (n.net < 0) {
    failed_ = true;  // the children make their own from now on
    return true;
  }
  int fds[4], count = 0;
  HelperMsg m = {HelperMsg::kNetns, 0};
  fds[count++] = n.net;
  if (n.sysfs >= 0) {
    fds[count++] = n.sysfs;
    m.id |= 1;
  }
  if (n.ipc >= 0) {
    fds[count++] = n.ipc;
    m.id |= 2;
  }
  if (n.mqueue >= 0) {
    fds[count++] = n.mqueue;
    m.id |= 4;
  }
  if (SendFds(ch, &m, sizeof m, fds, count) == 0) pool_->sent_++;
  for (int k = 0; k < count; k++) close(fds[k]);
  return true;
}

}  // namespace sbx
