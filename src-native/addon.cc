// The N-API module: spawn a container process from a plan, watch it on the event loop.
//
//   new Child(plan, stdio, onEvent)   validate the plan, clone3 the child (child.c), return at once
//   child.pid / child.stdio           host pid; parent ends of 'pipe' stdio (-1 otherwise)
//   child.start() / child.kill(sig)   MSG_START over the sync socket / pidfd_send_signal
//   onEvent(EV_READY | EV_ERROR stage op errno | EV_EOF | EV_EXIT code signal)
//
// Exits are seen through the pidfd (readable when the process exits) and reaped with
// waitid(P_PIDFD): never waitpid(-1), which would steal libuv's own children.
#include <fcntl.h>
#include <linux/sched.h>
#include <napi.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <linux/mount.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "child.h"
#include "plan.h"
#include "parent/seccomp.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

constexpr int kEvReady = 1, kEvError = 2, kEvEof = 3, kEvExit = 4;
constexpr int kStdioInherit = -1, kStdioPipe = -2, kStdioIgnore = -3;
constexpr size_t kStackSize = 128 * 1024;
constexpr uint64_t kAllowedCloneFlags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                                        CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWUSER | CLONE_NEWTIME;

int g_devnull = -1;

struct Fd {  // closes on scope exit unless released
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

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

// One datagram with up to 8 fds (SCM_RIGHTS) on a socket. 0 or -errno.
int SendWithFds(int sock, const void* data, size_t len, const int* fds, int n) {
  struct iovec iov = {const_cast<void*>(data), len};
  union {
    char buf[CMSG_SPACE(8 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (n > 8) return -EINVAL;
  if (n > 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  }
  ssize_t r;
  do r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

// The helper thread: namespace work that need not happen on the event loop, nor on the
// container's critical path.
//
//  - Fresh network namespaces, made ahead of need. A new network namespace is the slowest part of
//    a container's setup (~1 ms in the kernel); made here, it overlaps with the work of the
//    container before. Each one is handed to exactly one container (setns in the child) and never
//    reused, so isolation is the same as unshare(CLONE_NEWNET). When the pool is empty (a burst)
//    or fails (no CAP_SYS_ADMIN), the child makes its own. SCRATCHBOX_NETNS_POOL=0 turns it off.
//    With each one goes a sysfs mounted for it (detached, read-only): mounting sysfs in a new
//    network namespace looks through every sysfs superblock in the system, which grows with the
//    number of live containers; done here, that lookup is off the critical path too.
//  - Deferred teardown. The parent holds the container's mount namespace from READY on; when the
//    process exits, the kernel then has no mount tree to dismantle before it reports the exit
//    (an RCU grace period and every mount), and this thread drops the last reference instead.
//
// The thread has a file descriptor table of its own (unshare(CLONE_FILES)). A child starts with
// (part of) the Node process's fd table and drops it in its prelude (SyncSlots): what this thread
// holds (one mount namespace per live container) is not in that copy, so it costs a new child
// nothing, and no child can end up holding the last reference to it. fds cross between the two
// tables over a socketpair, with SCM_RIGHTS: pooled namespaces to the main table when a container
// takes one, fds to hold or close to this thread's.
struct Netns {
  int net = -1;
  int sysfs = -1;
};

// A held fd: in the helper's table (id), or in the main table when the helper is not running.
struct Held {
  uint64_t id = 0;
  int fd = -1;
};

class Helper {
 public:
  // A network namespace of the pool (and its sysfs), now in the main table; empty if none is ready.
  Netns TakeNetns() {
    Netns n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Start();
      if (!running_) return n;
    }
    Msg m;
    int fds[2] = {-1, -1};
    int got = RecvMsg(ch_, &m, fds, 2, MSG_DONTWAIT);
    if (got < 1 || m.type != kNetns) {
      for (int i = 0; i < got; i++) close(fds[i]);
      return n;
    }
    n.net = fds[0];
    n.sysfs = got > 1 ? fds[1] : -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      taken_++;
    }
    Send({kWake, 0}, nullptr, 0);  // make the next one
    return n;
  }

  // The one network namespace (lo up) that containers with network 'shared' join; made on first
  // use, kept for the life of the process. -1 if it cannot be made (the child then fails setns).
  int SharedNetns() {
    std::lock_guard<std::mutex> lock(mu_);
    if (shared_ < 0) {  // made on first use; tried again on the next if it failed
      // Made on a short-lived thread: unshare/setns switch the calling thread's namespace, and
      // this is the Node main thread.
      std::thread([this] {
        int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home >= 0) shared_ = MakeNetns(home, false).net;
        if (home >= 0) close(home);
      }).join();
    }
    return shared_;
  }

  // The base mount namespace: its only mounts are the kernel's initial rootfs and, on it, one
  // empty read-only tmpfs. A container's mount namespace is a copy of it (child.c, UNSHARE)
  // instead of a copy of the host's: one mount to copy rather than all of the host's, none to
  // make private or to detach, and the new root is entered with chroot, not pivot_root (whose
  // cost grows with the number of tasks in the system). Made on first use, kept for the life of
  // the process; -1 (containers copy the host's namespace and pivot_root, as before) when it
  // cannot be made, when the kernel's overlayfs cannot take its layers by fd with a detached
  // upper (OverlayTakesFdLayers), or with SCRATCHBOX_BASE_MNTNS=0.
  int BaseMntns() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!base_tried_) {
      base_tried_ = true;
      const char* env = getenv("SCRATCHBOX_BASE_MNTNS");
      // On a short-lived thread: unshare(CLONE_FS | CLONE_NEWNS) and pivot_root change the
      // calling thread's view of the file system, and this is the Node main thread.
      if (!(env && strcmp(env, "0") == 0)) std::thread([this] { base_ = MakeBaseMntns(); }).join();
    }
    return base_;
  }

  // Moves fd to the helper's table until Release().
  Held Hold(int fd) {
    Held h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Start();
      if (!running_) return Held{0, fd};
      h.id = ++last_id_;
    }
    Send({kHold, h.id}, &fd, 1);
    close(fd);
    return h;
  }

  // Closes a held fd on the helper thread (where the teardown it triggers then runs). No child
  // has a copy of it: it is in the helper's table, which no child's table is copied from.
  void Release(Held h) {
    if (h.fd >= 0) close(h.fd);  // no helper thread: here and now
    if (h.id != 0) Send({kRelease, h.id}, nullptr, 0);
  }

 private:
  static constexpr size_t kDefaultTarget = 2;
  enum : uint32_t { kNetns = 1, kHold = 3, kRelease = 4, kWake = 5 };
  struct Msg {
    uint32_t type;
    uint64_t id;  // kHold, kRelease
  };

  static int SendMsg(int sock, const Msg& m, const int* fds, int n) { return SendWithFds(sock, &m, sizeof m, fds, n); }

  // Receives one message; its fds (CLOEXEC) go to fds[0..]. Returns how many, or -errno.
  static int RecvMsg(int sock, Msg* m, int* fds, int max, int flags) {
    struct iovec iov = {m, sizeof *m};
    union {
      char buf[CMSG_SPACE(2 * sizeof(int))];
      struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    ssize_t r;
    do r = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r != sizeof *m) return -EPROTO;
    int n = 0;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int k = int((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < k; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (n < max) fds[n++] = fd;
        else close(fd);
      }
    }
    return n;
  }

  // From the main thread (or any thread that spawns); never with mu_ held, since the thread takes
  // it and a full socket would then wait for it forever.
  void Send(const Msg& m, const int* fds, int n) { SendMsg(ch_, m, fds, n); }

  void Start() {  // with mu_ held
    if (started_) return;
    started_ = true;
    const char* env = getenv("SCRATCHBOX_NETNS_POOL");
    target_ = env ? size_t(atoi(env)) : kDefaultTarget;
    if (target_ > 64) target_ = 64;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return;
    // The thread unshares the fd table (a copy of this one), keeps only its end of the channel,
    // and says so; then this table closes that end.
    std::mutex m;
    std::condition_variable cv;
    int state = 0;  // 1: running, -1: failed
    std::thread([this, sv, &m, &cv, &state] {
      bool ok = unshare(CLONE_FILES) == 0;
      if (ok) {
        close(sv[0]);
        if (sv[1] > 0) syscall(SYS_close_range, 0u, unsigned(sv[1] - 1), 0u);
        syscall(SYS_close_range, unsigned(sv[1] + 1), ~0u, 0u);
      }
      {
        std::lock_guard<std::mutex> l(m);
        state = ok ? 1 : -1;
      }
      cv.notify_one();
      if (ok) Run(sv[1]);
    }).detach();
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return state != 0; });
    close(sv[1]);
    if (state < 0) {
      close(sv[0]);
      return;
    }
    ch_ = sv[0];
    running_ = true;
  }

  // The thread, in its own fd table: `ch` is its end of the channel.
  void Run(int ch) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // Node's signals are not this thread's business
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    bool pool = home >= 0 && target_ > 0;
    size_t sent = 0;
    std::map<uint64_t, int> held;
    for (;;) {
      // Every message there is, without blocking; the held fds released meanwhile are closed.
      std::vector<int> due;
      for (;;) {
        Msg m;
        int fds[2];
        int n = RecvMsg(ch, &m, fds, 2, MSG_DONTWAIT);
        if (n == -EAGAIN || n == -EWOULDBLOCK) break;
        if (n < 0) return;  // the channel is gone
        if (m.type == kHold && n == 1) held[m.id] = fds[0];
        else if (m.type == kRelease) {
          auto it = held.find(m.id);
          if (it != held.end()) due.push_back(it->second);
          if (it != held.end()) held.erase(it);
        } else {
          for (int i = 0; i < n; i++) close(fds[i]);
        }
      }
      bool refill;
      {
        std::lock_guard<std::mutex> lock(mu_);
        refill = pool && sent - taken_ < target_;
      }
      for (int fd : due) close(fd);  // the teardown runs here
      if (!due.empty()) continue;    // closes first: they free what new ones use
      if (refill) {
        Netns n = MakeNetns(home, true);
        if (n.net < 0) {
          pool = false;  // the children make their own from now on
          continue;
        }
        int fds[2] = {n.net, n.sysfs};
        if (SendMsg(ch, {kNetns, 0}, fds, n.sysfs >= 0 ? 2 : 1) == 0) sent++;
        close(n.net);
        if (n.sysfs >= 0) close(n.sysfs);
        continue;
      }
      // Nothing to do: block until the main thread says something.
      struct pollfd p = {ch, POLLIN, 0};
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
    }
  }

  static Netns MakeNetns(int home, bool with_sysfs) {
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

  // A detached sysfs mount (read-only, nosuid, nodev, noexec; the child sets the plan's exact
  // attributes before attaching it). -1 when the kernel lacks the new mount API: the child then
  // mounts sysfs itself.
  static int MakeSysfs() {
    int fs = int(syscall(SYS_fsopen, "sysfs", 1 /* FSOPEN_CLOEXEC */));
    if (fs < 0) return -1;
    int mnt = -1;
    if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, nullptr, nullptr, 0) == 0)
      mnt = int(syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0x1 | 0x2 | 0x4 | 0x8));
    close(fs);
    return mnt;
  }

  // Runs on a thread of its own, which it changes for good (its fs and mount namespace).
  static int MakeBaseMntns() {
    if (unshare(CLONE_FS | CLONE_NEWNS) < 0) return -1;
    Fd ns(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC));
    if (ns.fd < 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return -1;
    if (!OverlayTakesFdLayers()) return -1;
    Fd base(MountTmpfs("0555", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
    if (base.fd < 0) return -1;
    // Stack it on "/", make it the root, detach the old root: the host's mounts are gone from
    // this namespace (pivot_root only changes the root of tasks in it: this thread).
    if (syscall(SYS_move_mount, base.fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0) return -1;
    if (fchdir(base.fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0) return -1;
    return ns.release();
  }

  // A detached tmpfs mount (fsopen/fsmount), -1 on failure. MOUNT_ATTR_RDONLY in attrs makes
  // the superblock read-only too (a copy of the mount in a container's namespace shares it).
  static int MountTmpfs(const char* mode, unsigned attrs) {
    Fd fs(int(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
    if (fs.fd < 0) return -1;
    if ((attrs & MOUNT_ATTR_RDONLY) && syscall(SYS_fsconfig, fs.fd, FSCONFIG_SET_FLAG, "ro", nullptr, 0) < 0) return -1;
    if (syscall(SYS_fsconfig, fs.fd, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
        syscall(SYS_fsconfig, fs.fd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
      return -1;
    return int(syscall(SYS_fsmount, fs.fd, FSMOUNT_CLOEXEC, attrs));
  }

  // Based, the child builds the overlay before it leaves the host's mount namespace, with a
  // detached upper tmpfs: the layers go by O_PATH fd (the upper has no path). Linux 6.15 and later
  // (6.13 took layers by fd; 6.15 detached mounts and O_PATH fds among them). Tried once, with
  // this thread's copy of the host's "/" as the lower layer.
  static bool OverlayTakesFdLayers() {
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

  std::mutex mu_;
  int ch_ = -1;  // the main table's end of the channel to the thread
  size_t target_ = 0, taken_ = 0;
  bool started_ = false, running_ = false;
  uint64_t last_id_ = 0;
  int shared_ = -1;
  int base_ = -1;
  bool base_tried_ = false;
};

// Reserved low fd numbers for the sync sockets of children cloned with CLONE_FILES (child.h,
// fd_limit): the child's first call keeps only the fds below the highest slot + 1, so no child
// copies (and then closes) the Node process's whole fd table, whose size grows with every live
// container (pidfds) and with whatever else the program has open. Made on first use, as dups of
// /dev/null taken from the lowest free numbers (if they come out high, because the program had
// many fds open before its first container, the child copies more, but never more than a copy of
// the whole table would). A slot holds one child's end of its sync socket from spawn until the
// child has settled; then /dev/null again. When all are taken (a burst of creates), a child gets
// a copy of the table instead.
class SyncSlots {
 public:
  int Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!init_) Init();
    for (size_t i = 0; i < slots_.size(); i++)
      if (!busy_[i]) {
        busy_[i] = true;
        return slots_[i];
      }
    return -1;
  }
  void Give(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < slots_.size(); i++)
      if (slots_[i] == slot) {
        dup3(devnull_, slot, O_CLOEXEC);  // drops the child's sync end held here
        busy_[i] = false;
      }
  }
  int limit() const { return limit_; }

 private:
  static constexpr int kSlots = 8;
  void Init() {
    init_ = true;
    devnull_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull_ < 0) return;
    for (int i = 0; i < kSlots; i++) {
      int fd = fcntl(devnull_, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) break;
      slots_.push_back(fd);
      busy_.push_back(false);
      limit_ = std::max(limit_, fd + 1);
    }
    if (int(slots_.size()) < kSlots) {  // out of fds: copy the table
      for (int fd : slots_) close(fd);
      slots_.clear();
      busy_.clear();
      limit_ = 0;
    }
  }
  std::mutex mu_;
  std::vector<int> slots_;
  std::vector<bool> busy_;
  int devnull_ = -1, limit_ = 0;
  bool init_ = false;
};

SyncSlots& sync_slots() {
  static SyncSlots* s = new SyncSlots;
  return *s;
}

// Never destroyed: its thread waits on the condition variable until the process ends, and
// glibc's pthread_cond_destroy at exit would wait for that waiter forever.
Helper& helper() {
  static Helper* h = new Helper;
  return *h;
}

Napi::Error SysError(Napi::Env env, int err, const char* stage, const char* syscall_name, const std::string& path = "") {
  std::string msg = std::string(syscall_name) + ": " + strerror(err);
  if (!path.empty()) msg += " (" + path + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("stage", Napi::String::New(env, stage));
  e.Set("syscall", Napi::String::New(env, syscall_name));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

class Child : public Napi::ObjectWrap<Child> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Child",
                       {InstanceMethod("start", &Child::Start), InstanceMethod("kill", &Child::Kill),
                        InstanceMethod("trace", &Child::Trace), InstanceAccessor("pid", &Child::Pid, nullptr),
                        InstanceAccessor("stdio", &Child::Stdio, nullptr)});
  }

  Child(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Child>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsFunction()) {
      Napi::TypeError::New(env, "Child(plan: Uint8Array, stdio: number[3], onEvent: Function)").ThrowAsJavaScriptException();
      return;
    }
    auto plan = info[0].As<Napi::Uint8Array>();
    std::string why = sbx::PreparePlan(plan.Data(), plan.ByteLength(), &plan_);
    if (!why.empty()) {
      Napi::Error e = Napi::Error::New(env, "invalid plan: " + why);
      e.Set("stage", Napi::String::New(env, "plan"));
      e.ThrowAsJavaScriptException();
      return;
    }
    if (plan_.hdr->clone_flags & ~kAllowedCloneFlags) {
      Napi::Error e = Napi::Error::New(env, "invalid plan: clone flags beyond namespaces");
      e.Set("stage", Napi::String::New(env, "plan"));
      e.ThrowAsJavaScriptException();
      return;
    }
    auto stdio = info[1].As<Napi::Array>();
    int spec[3];
    for (uint32_t i = 0; i < 3; i++) spec[i] = stdio.Get(i).As<Napi::Number>().Int32Value();
    cb_ = Napi::Persistent(info[2].As<Napi::Function>());
    ctx_ = new Napi::AsyncContext(env, "scratchbox:container");
    Spawn(env, spec);
  }

  ~Child() override {
    Settle();
    FreeChildMemory();
    if (pidfd_ >= 0) close(pidfd_);
    if (sync_ >= 0) close(sync_);
    helper().Release(mntns_);
    delete ctx_;
  }

 private:
  void Spawn(Napi::Env env, const int spec[3]) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
      return SysError(env, errno, "prepare", "socketpair").ThrowAsJavaScriptException();
    Fd parent_sync(sv[0]), child_sync(sv[1]);

    Fd child_ends[3], parent_ends[3];
    int child_stdio[3];
    for (int i = 0; i < 3; i++) {
      child_stdio[i] = -1;
      if (spec[i] == kStdioPipe) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) return SysError(env, errno, "prepare", "pipe2").ThrowAsJavaScriptException();
        // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
        child_ends[i].fd = i == 0 ? p[0] : p[1];
        parent_ends[i].fd = i == 0 ? p[1] : p[0];
        child_stdio[i] = child_ends[i].fd;
      } else if (spec[i] == kStdioIgnore) {
        if (g_devnull < 0) g_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (g_devnull < 0) return SysError(env, errno, "prepare", "open", "/dev/null").ThrowAsJavaScriptException();
        child_stdio[i] = g_devnull;
      } else if (spec[i] >= 0) {
        child_stdio[i] = spec[i];
      } else if (spec[i] != kStdioInherit) {
        return SysError(env, EINVAL, "prepare", "stdio").ThrowAsJavaScriptException();
      }
    }

    void* stack = TakeStack();
    if (!stack) return SysError(env, errno, "prepare", "mmap").ThrowAsJavaScriptException();
    stack_ = stack;

    args_.hdr = plan_.hdr;
    args_.ops = plan_.ops;
    args_.strtab = plan_.strtab;
    args_.argv = plan_.argv.data();
    args_.envp = plan_.envp.data();
    args_.groups = plan_.groups.data();
    args_.n_groups = uint32_t(plan_.groups.size());
    // What the child needs besides its sync socket goes in MSG_FDS, the first message on it
    // (wire.h): it reaches the child's own fd table, whatever this one looks like.
    int fds[SBX_FD_COUNT_];
    for (int i = 0; i < SBX_FD_COUNT_; i++) fds[i] = -1;
    for (int i = 0; i < 3; i++) fds[SBX_FD_STDIN + i] = child_stdio[i];
    Netns pooled = plan_.unshare_flags & CLONE_NEWNET && !plan_.shared_netns ? helper().TakeNetns() : Netns{};
    Fd netns(pooled.net), sysfs(pooled.sysfs);  // the message holds them from here on
    fds[SBX_FD_NETNS] = plan_.shared_netns ? helper().SharedNetns() : netns.fd;
    fds[SBX_FD_SYSFS] = sysfs.fd;
    // A plan built for the base mount namespace (TypeScript asked mountMode() first).
    if (plan_.hdr->flags & SBX_H_BASE) {
      fds[SBX_FD_BASE_MNTNS] = helper().BaseMntns();
      if (fds[SBX_FD_BASE_MNTNS] < 0) {
        FreeChildMemory();
        return SysError(env, ENOTSUP, "prepare", "setns", "the base mount namespace").ThrowAsJavaScriptException();
      }
    }
    int err = SendFds(parent_sync.fd, fds);
    if (err) {
      FreeChildMemory();
      return SysError(env, err, "prepare", "sendmsg").ThrowAsJavaScriptException();
    }
    // The child's end of the sync socket: in a reserved low slot, so the child can start in this
    // fd table and keep only what lies below the slots (CLONE_FILES); else in a copy of the table.
    slot_ = sync_slots().Take();
    if (slot_ >= 0 && dup3(child_sync.fd, slot_, O_CLOEXEC) < 0) {
      sync_slots().Give(slot_);
      slot_ = -1;
    }
    args_.sync_fd = slot_ >= 0 ? slot_ : child_sync.fd;
    args_.fd_limit = slot_ >= 0 ? sync_slots().limit() : 0;

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    int pidfd = -1;
    ca.flags = plan_.hdr->clone_flags | CLONE_VM | CLONE_PIDFD | (slot_ >= 0 ? CLONE_FILES : 0);
    ca.pidfd = uint64_t(uintptr_t(&pidfd));
    ca.exit_signal = SIGCHLD;
    ca.stack = uint64_t(uintptr_t(stack));
    ca.stack_size = kStackSize;

    // Every signal stays blocked in the child until just before execve (child.c resets the
    // handlers first). The mask is per thread: this is the main thread's, restored at once.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = sbx_clone3(&ca, sizeof ca, sbx_child_main, &args_);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) {
      Settle();
      FreeChildMemory();
      return SysError(env, int(-pid), "clone", "clone3").ThrowAsJavaScriptException();
    }
    // The child has, or will have, its own copies of everything below.
    pid_ = int(pid);
    pidfd_ = pidfd;
    sync_ = parent_sync.release();
    fcntl(sync_, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 3; i++) parent_stdio_[i] = parent_ends[i].release();

    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    uv_poll_init(loop, &sync_poll_, sync_);
    sync_poll_.data = this;
    uv_poll_start(&sync_poll_, UV_READABLE, [](uv_poll_t* h, int, int) { static_cast<Child*>(h->data)->OnSync(); });
    uv_poll_init(loop, &pid_poll_, pidfd_);
    pid_poll_.data = this;
    uv_poll_start(&pid_poll_, UV_READABLE, [](uv_poll_t* h, int, int) { static_cast<Child*>(h->data)->OnPidfd(); });
    open_handles_ = 2;
    Ref();  // alive while the process or its sync socket is
  }

  // The stack (and the plan, freed with this object) are the child's until it has exec'd or died:
  // known from the sync socket's EOF (its end is O_CLOEXEC and closes only at execve or exit).
  void FreeChildMemory() {
    if (stack_) GiveStack(stack_);
    stack_ = nullptr;
  }

  // The child has an fd table of its own (READY, ERROR, EOF or exit): its sync slot can be reused.
  void Settle() {
    if (slot_ >= 0) sync_slots().Give(slot_);
    slot_ = -1;
  }

  // MSG_FDS: the fds >= 0 of `fds`, by SBX_FD_* index, as SCM_RIGHTS. 0 or an errno.
  static int SendFds(int sock, const int fds[SBX_FD_COUNT_]) {
    sbx_fds_msg m;
    memset(&m, 0, sizeof m);
    m.type = SBX_MSG_FDS;
    int list[SBX_FD_COUNT_], n = 0;
    for (int i = 0; i < SBX_FD_COUNT_; i++)
      if (fds[i] >= 0) {
        m.mask |= 1u << i;
        list[n++] = fds[i];
      }
    return -SendWithFds(sock, &m, sizeof m, list, n);
  }

  // Child stacks are reused (their pages stay mapped and warm): only the main thread spawns and
  // frees, so the free list needs no lock.
  static std::vector<void*>& FreeStacks() {
    static auto* v = new std::vector<void*>;
    return *v;
  }
  static void* TakeStack() {
    auto& v = FreeStacks();
    if (!v.empty()) {
      void* s = v.back();
      v.pop_back();
      return s;
    }
    void* s = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    return s == MAP_FAILED ? nullptr : s;
  }
  static void GiveStack(void* s) {
    auto& v = FreeStacks();
    if (v.size() < 16) v.push_back(s);
    else munmap(s, kStackSize);
  }

  void Emit(std::initializer_list<int> values) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    std::vector<napi_value> args;
    for (int v : values) args.push_back(Napi::Number::New(env, v));
    napi_value result;
    napi_status s = napi_make_callback(env, *ctx_, Value(), cb_.Value(), args.size(), args.data(), &result);
    if (s == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }

  void CloseHandle(uv_poll_t* h) {
    uv_poll_stop(h);
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* hh) {
      Child* self = static_cast<Child*>(hh->data);
      if (--self->open_handles_ == 0) {
        // No event can follow. The callback closes over the JS Container, which holds this
        // object: a persistent reference to it would keep the pair alive forever.
        self->cb_.Reset();
        delete self->ctx_;
        self->ctx_ = nullptr;
        self->Unref();
      }
    });
  }

  // Messages are checked against the protocol (docs/protocol.md): TRACE, then READY, once each and
  // only before START; ERROR at most once. Anything else is a broken child: it is killed.
  void OnSync() {
    for (;;) {
      union {
        sbx_msg m;
        sbx_trace t;
      } u;
      ssize_t n = recv(sync_, &u, sizeof u, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n == 0) {  // EOF: exec'd or exited, so the child no longer runs on our stack
        Settle();
        FreeChildMemory();
        CloseSync();
        Emit({kEvEof});
        return;
      }
      if (n < 0) return ProtocolError(errno);
      if (n == sizeof u.t && u.t.type == SBX_MSG_TRACE && !ready_ && trace_.type == 0) {
        trace_ = u.t;
      } else if (n == sizeof u.m && u.m.type == SBX_MSG_READY && !ready_ && !error_) {
        ready_ = true;
        // The promise first: what follows talks to the helper thread, which would compete with
        // the JavaScript that create() resumes (~60 us of create() here).
        Emit({kEvReady});
        Settle();  // its prelude is long past
        // Hold the container's mount namespace (see Helper): its teardown then happens after
        // the exit is reported, on the helper thread. Even if the JavaScript above has started
        // the container and it has exited already, this pid is still ours: it is reaped only in
        // OnPidfd. (Then there is no namespace left to hold, and the open fails: nothing lost.)
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid_);
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns >= 0) mntns_ = helper().Hold(ns);
      } else if (n == sizeof u.m && u.m.type == SBX_MSG_ERROR && !error_) {
        error_ = true;
        Settle();
        Emit({kEvError, u.m.stage, u.m.op, u.m.err});
      } else {
        return ProtocolError(EPROTO);
      }
    }
  }

  // The child broke the protocol (or the socket did): report it as the child's error, kill it,
  // and stop listening. The stack is freed once the exit is seen, not before.
  void ProtocolError(int err) {
    if (!exited_ && pidfd_ >= 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    CloseSync();
    if (!error_) {
      error_ = true;
      Emit({kEvError, SBX_STAGE_SYNC, -1, err});
    }
    Emit({kEvEof});
  }

  void CloseSync() {
    if (sync_ < 0) return;
    CloseHandle(&sync_poll_);
    close(sync_);
    sync_ = -1;
  }

  void OnPidfd() {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(idtype_t(P_PIDFD), id_t(pidfd_), &si, WEXITED | WNOHANG);
    if (r == 0 && si.si_pid == 0) return;  // not exited yet (spurious wakeup)
    // r < 0: someone else reaped it (a waitpid(-1) elsewhere in the process): the status is lost.
    exited_ = true;
    CloseHandle(&pid_poll_);
    close(pidfd_);
    pidfd_ = -1;
    FreeChildMemory();  // reaped: it runs on nothing of ours any more
    bool signaled = r == 0 && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED);
    int code = r < 0 ? -1 : signaled ? -1 : si.si_status;
    int sig = r < 0 ? 0 : signaled ? si.si_status : 0;
    Emit({kEvExit, code, sig});  // first, as at READY: the rest talks to the helper thread
    Settle();
    helper().Release(mntns_);
    mntns_ = Held{};
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (sync_ < 0) return Napi::Number::New(info.Env(), -EPIPE);
    sbx_msg m = {SBX_MSG_START, 0, 0, 0};
    ssize_t n;
    do n = send(sync_, &m, sizeof m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return Napi::Number::New(info.Env(), n < 0 ? -errno : 0);
  }

  Napi::Value Kill(const Napi::CallbackInfo& info) {
    int sig = info[0].As<Napi::Number>().Int32Value();
    if (exited_ || pidfd_ < 0) return Napi::Number::New(info.Env(), -ESRCH);
    long r = syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0);
    return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
  }

  // With SBX_H_TRACE: [t0, end of op 0, end of op 1, ...] in ns (CLOCK_MONOTONIC), else empty.
  Napi::Value Trace(const Napi::CallbackInfo& info) {
    uint32_t n = trace_.type == SBX_MSG_TRACE ? trace_.count : 0;
    Napi::Float64Array a = Napi::Float64Array::New(info.Env(), n ? n + 1 : 0);
    if (n) {
      a[0] = double(trace_.t0);
      for (uint32_t i = 0; i < n; i++) a[i + 1] = double(trace_.end[i]);
    }
    return a;
  }

  Napi::Value Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pid_); }

  Napi::Value Stdio(const Napi::CallbackInfo& info) {
    Napi::Array a = Napi::Array::New(info.Env(), 3);
    for (uint32_t i = 0; i < 3; i++) a.Set(i, Napi::Number::New(info.Env(), parent_stdio_[i]));
    return a;
  }

  sbx::Plan plan_;
  sbx_child_args args_{};
  void* stack_ = nullptr;
  int pid_ = -1, pidfd_ = -1, sync_ = -1;
  Held mntns_;  // the container's mount namespace, from READY to its exit
  int slot_ = -1;  // SyncSlots slot holding the child's sync end, until Settle()
  int parent_stdio_[3] = {-1, -1, -1};
  bool exited_ = false, ready_ = false, error_ = false;
  int open_handles_ = 0;
  sbx_trace trace_{};
  uv_poll_t sync_poll_{}, pid_poll_{};
  Napi::FunctionReference cb_;
  Napi::AsyncContext* ctx_ = nullptr;
};

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  set("WIRE_MAGIC", SBX_WIRE_MAGIC);
  set("WIRE_VERSION", SBX_WIRE_VERSION);
  set("HEADER_SIZE", sizeof(sbx_header));
  set("OP_SIZE", sizeof(sbx_op));
  set("MSG_SIZE", sizeof(sbx_msg));
#define K(x) set(#x, SBX_##x)
  K(OP_MAKE_PRIVATE); K(OP_ROOT_OVERLAY); K(OP_MOUNT); K(OP_BIND); K(OP_MKNOD); K(OP_SYMLINK);
  K(OP_WRITE_FILE); K(OP_MKDIR); K(OP_LOOPBACK_UP); K(OP_SETHOSTNAME); K(OP_ENTER_ROOT);
  K(OP_SETUSER); K(OP_CHDIR); K(OP_RESOLVE_EXEC); K(OP_READY); K(OP_WAIT_START); K(OP_EXEC); K(OP_UNSHARE); K(OP_ROOT_UPPER); K(OP_CLONE_TREE); K(OP_ATTACH_ROOT); K(MAX_SLOTS);
  K(STAGE_PREPARE); K(STAGE_ROOTFS); K(STAGE_MOUNT); K(STAGE_DEVICE); K(STAGE_FILE); K(STAGE_NETWORK);
  K(STAGE_HOSTNAME); K(STAGE_PIVOT); K(STAGE_USER); K(STAGE_CWD); K(STAGE_SYNC); K(STAGE_EXEC);
  K(F_MKDIR); K(F_MKFILE); K(F_BIND_FALLBACK); K(F_IGNORE_MISSING); K(F_USERXATTR); K(H_DETACHED); K(H_TRACE); K(H_BASE);
#undef K
  set("EV_READY", kEvReady);
  set("EV_ERROR", kEvError);
  set("EV_EOF", kEvEof);
  set("EV_EXIT", kEvExit);
  set("STDIO_INHERIT", kStdioInherit);
  set("STDIO_PIPE", kStdioPipe);
  set("STDIO_IGNORE", kStdioIgnore);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Child", Child::Init(env));
  exports.Set("constants", Constants(env));
  exports.Set("compileSeccomp", Napi::Function::New(env, sbx::CompileSeccomp));
  // 'base' when containers get a copy of the base mount namespace (and chroot), 'host' when a
  // copy of the host's (and pivot_root). Makes the base namespace if not made yet.
  exports.Set("mountMode", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), helper().BaseMntns() >= 0 ? "base" : "host");
  }));
  return exports;
}

}  // namespace

NODE_API_MODULE(scratchbox, Init)
