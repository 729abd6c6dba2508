#include "netns_pool.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// A detached sysfs mount (read-only, nosuid, nodev, noexec; the child sets the plan's exact
// attributes before attaching it). -1 when the kernel lacks the new mount API: the child then
// mounts sysfs itself.
int MakeSysfs() {
  int fs = int(syscall(SYS_fsopen, "sysfs", FSOPEN_CLOEXEC));
  if (fs < 0) return -1;
  int mnt = -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
    mnt = int(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  close(fs);
  return mnt;
}

}  // namespace

Netns MakeNetns(int home, bool with_sysfs) {
  Netns n;
  if (unshare(CLONE_NEWNET) < 0) return n;
  n.net = LoopbackUp() == 0 ? open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
  if (n.net >= 0 && with_sysfs) n.sysfs = MakeSysfs();  // tagged with this thread's netns
  if (setns(home, CLONE_NEWNET) < 0) {
    if (n.net >= 0) close(n.net);
    if (n.sysfs >= 0) close(n.sysfs);
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
  if (!helper.Running()) return n;
  HelperMsg m;
  int fds[2] = {-1, -1};
  int got = helper.TryReceive(&m, fds, 2);
  if (got < 1 || m.type != HelperMsg::kNetns) {
    for (int i = 0; i < got; i++) close(fds[i]);
    return n;
  }
  n.net = fds[0];
  n.sysfs = got > 1 ? fds[1] : -1;
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
    pool_->target_ = settings().netns_pool;
  }
  if (home_ < 0 || failed_ || pool_->sent_ - pool_->taken_ >= pool_->target_) return false;
  Netns n = MakeNetns(home_, true);
  if (n.net < 0) {
    failed_ = true;  // the children make their own from now on
    return true;
  }
  int fds[2] = {n.net, n.sysfs};
  HelperMsg m = {HelperMsg::kNetns, 0};
  if (SendFds(ch, &m, sizeof m, fds, n.sysfs >= 0 ? 2 : 1) == 0) pool_->sent_++;
  close(n.net);
  if (n.sysfs >= 0) close(n.sysfs);
  return true;
}

}  // namespace sbx
