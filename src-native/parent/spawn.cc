#include "spawn.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "base_mntns.h"
#include "exec.h"
#include "fd.h"
#include "fdpass.h"
#include "netns_pool.h"
#include "root_pool.h"
#include "shared_netns.h"
#include "sync_slots.h"

namespace sbx {

namespace {

constexpr size_t kStackSize = 128 * 1024;

// Child stacks are reused (their pages stay mapped and warm). Only the threads that spawn take and
// give them, one at a time per Node thread: a small lock.
std::mutex g_stacks_mu;
std::vector<void*>* g_stacks = new std::vector<void*>;

void* TakeStack() {
  {
    std::lock_guard<std::mutex> lock(g_stacks_mu);
    if (!g_stacks->empty()) {
      void* s = g_stacks->back();
      g_stacks->pop_back();
      return s;
    }
  }
  void* s = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  return s == MAP_FAILED ? nullptr : s;
}

int DevNull() {
  static int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

bool Fail(SpawnError* e, int err, const char* syscall, const char* stage = "prepare", std::string path = "") {
  e->err = err;
  e->syscall = syscall;
  e->stage = stage;
  e->path = std::move(path);
  return false;
}

// MSG_FDS: the fds >= 0 of `fds`, by SBX_FD_* index, as SCM_RIGHTS; then a pooled root's, when
// prefix_ops > 0 (wire.h). 0 or -errno.
int SendFdsMsg(int sock, const int fds[SBX_FD_COUNT_], uint32_t prefix_ops = 0, const sbx_prefix* root = nullptr,
               uint32_t slot_mask = 0) {
  sbx_fds_msg m;
  memset(&m, 0, sizeof m);
  m.type = SBX_MSG_FDS;
  int list[SBX_FD_COUNT_ + 2 + SBX_PREFIX_MAX_SLOTS], n = 0;
  for (int i = 0; i < SBX_FD_COUNT_; i++)
    if (fds[i] >= 0) {
      m.mask |= 1u << i;
      list[n++] = fds[i];
    }
  if (prefix_ops > 0 && root) {
    m.prefix_ops = prefix_ops;
    m.prefix_slots = slot_mask;
    list[n++] = root->tmpfs_fd;
    list[n++] = root->root_fd;
    for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++)
      if ((slot_mask >> i) & 1) list[n++] = root->slots[i];
  }
  return SendFds(sock, &m, sizeof m, list, n);
}

// A pooled root taken for this spawn: the fds are closed here once MSG_FDS holds its copies.
struct RootHold {
  sbx_prefix p;
  uint32_t mask = 0;
  bool taken = false;
  ~RootHold() {
    if (!taken) return;
    close(p.tmpfs_fd);
    close(p.root_fd);
    for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++)
      if ((mask >> i) & 1) close(p.slots[i]);
  }
};

// A reserved low slot holding the child's end of the sync socket (given back unless released).
struct SlotHold {
  int slot = -1;
  ~SlotHold() {
    if (slot >= 0) SyncSlots::Get().Give(slot);
  }
};

struct StackHold {
  void* stack = nullptr;
  ~StackHold() {
    if (stack) GiveStack(stack);
  }
};

// The clone3 of containers made from a worker thread. A child's parent-death signal follows the
// *thread* that cloned it, and a worker thread may end long before the process: this thread
// clones for them and lives as long as the process. The caller waits for the result (the child
// still shares Node's memory: CLONE_VM). The main thread clones itself (it lives as long as the
// process, and the hand-off would cost it; docs/architecture.md).
class Spawner {
 public:
  static Spawner& Get() {
    static Spawner* s = new Spawner;  // never destroyed: its thread waits until the process ends
    return *s;
  }

  // pidns_fd >= 0: clone into that pid namespace (an exec), the spawner thread joining it for its
  // children around the clone.
  long Clone(clone_args* ca, sbx_child_args* args, int pidns_fd = -1) {
    std::lock_guard<std::mutex> one(call_mu_);  // one request at a time
    std::unique_lock<std::mutex> l(mu_);
    if (!started_) {
      started_ = true;
      std::thread([this] { Run(); }).detach();
    }
    ca_ = ca;
    args_ = args;
    pidns_fd_ = pidns_fd;
    done_ = false;
    cv_.notify_all();
    cv_.wait(l, [this] { return done_; });
    return result_;
  }

 private:
  void Run() {
    // Every signal blocked for good: the children it clones inherit a full mask (child-safety.md).
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [this] { return ca_ != nullptr; });
      {
        PidnsForChildren pidns(pidns_fd_);
        result_ = pidns.err ? -pidns.err : sbx_clone3(ca_, sizeof *ca_, sbx_child_main, args_);
      }
      ca_ = nullptr;
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex call_mu_, mu_;
  std::condition_variable cv_;
  bool started_ = false, done_ = false;
  int pidns_fd_ = -1;
  clone_args* ca_ = nullptr;
  sbx_child_args* args_ = nullptr;
  long result_ = 0;
};

bool OnMainThread() { return syscall(SYS_gettid) == getpid(); }

}  // namespace

void GiveStack(void* s) {
  std::lock_guard<std::mutex> lock(g_stacks_mu);
  if (g_stacks->size() < 16) g_stacks->push_back(s);
  else munmap(s, kStackSize);
}

bool Spawn(const Plan& plan, const int stdio[3], const std::vector<int>& plan_fds, int cgroup_fd, sbx_child_args* args,
           Spawned* out, SpawnError* e) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Fail(e, errno, "socketpair");
  Fd parent_sync(sv[0]), child_sync(sv[1]);

  // What the child needs besides its sync socket goes in MSG_FDS, the first message on it
  // (wire.h): it reaches the child's own fd table, whatever this one looks like.
  int fds[SBX_FD_COUNT_];
  for (int i = 0; i < SBX_FD_COUNT_; i++) fds[i] = -1;
  Fd child_ends[3], parent_ends[3];
  for (int i = 0; i < 3; i++) {
    if (stdio[i] == kStdioPipe) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) return Fail(e, errno, "pipe2");
      // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
      child_ends[i].reset(i == 0 ? p[0] : p[1]);
      parent_ends[i].reset(i == 0 ? p[1] : p[0]);
      fds[SBX_FD_STDIN + i] = child_ends[i].fd;
    } else if (stdio[i] == kStdioIgnore) {
      if (DevNull() < 0) return Fail(e, errno, "open", "prepare", "/dev/null");
      fds[SBX_FD_STDIN + i] = DevNull();
    } else if (stdio[i] >= 0) {
      fds[SBX_FD_STDIN + i] = stdio[i];
    } else if (stdio[i] != kStdioInherit) {
      return Fail(e, EINVAL, "stdio");
    }
  }
  // The parent's resources the plan's ops name (parent/plan.cc, Plan::wants).
  auto wants = [&](int i) { return (plan.wants >> i) & 1u; };
  Netns pooled = wants(SBX_FD_POOLED_NETNS) ? NetnsPool::Get().Take() : Netns{};
  Fd netns(pooled.net), sysfs(pooled.sysfs), ipcns(pooled.ipc), mqueue(pooled.mqueue);  // the message holds them from here on
  fds[SBX_FD_POOLED_NETNS] = netns.fd;
  fds[SBX_FD_POOLED_SYSFS] = sysfs.fd;
  if (wants(SBX_FD_POOLED_IPCNS)) {
    fds[SBX_FD_POOLED_IPCNS] = ipcns.fd;
    if (wants(SBX_FD_POOLED_MQUEUE)) fds[SBX_FD_POOLED_MQUEUE] = mqueue.fd;  // of that namespace only
  }
  if (wants(SBX_FD_SHARED_NETNS)) fds[SBX_FD_SHARED_NETNS] = SharedNetns();
  if (wants(SBX_FD_BASE_MNTNS)) {
    fds[SBX_FD_BASE_MNTNS] = BaseMntns();
    if (fds[SBX_FD_BASE_MNTNS] < 0) return Fail(e, ENOTSUP, "setns", "prepare", "the base mount namespace");
  }
  for (int i = SBX_FD_PLAN0; i < SBX_FD_COUNT_; i++) {
    if (!wants(i)) continue;
    size_t k = size_t(i - SBX_FD_PLAN0);
    if (k >= plan_fds.size() || plan_fds[k] < 0) return Fail(e, EBADF, "plan fd", "plan");
    fds[i] = plan_fds[k];
  }
  RootHold root;
  root.taken = RootPool::Get().Take(plan, &root.p, &root.mask);
  if (int err = SendFdsMsg(parent_sync.fd, fds, root.taken ? plan.prefix : 0, &root.p, root.mask)) return Fail(e, -err, "sendmsg");

  StackHold stack{TakeStack()};
  if (!stack.stack) return Fail(e, errno, "mmap");

  // The child's end of the sync socket: in a reserved low slot, so the child can start in this fd
  // table and keep only what lies below the slots (CLONE_FILES); else in a copy of the table.
  SlotHold slot{SyncSlots::Get().Take()};
  if (slot.slot >= 0 && dup3(child_sync.fd, slot.slot, O_CLOEXEC) < 0) {
    SyncSlots::Get().Give(slot.slot);
    slot.slot = -1;
  }
  args->hdr = plan.hdr;
  args->ops = plan.ops;
  args->strtab = plan.strtab;
  args->argv = plan.argv.data();
  args->envp = plan.envp.data();
  args->groups = plan.groups.data();
  args->n_groups = uint32_t(plan.groups.size());
  args->sync_fd = slot.slot >= 0 ? slot.slot : child_sync.fd;
  args->fd_limit = slot.slot >= 0 ? SyncSlots::Get().limit() : 0;

  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  int pidfd = -1;
  ca.flags = plan.hdr->clone_flags | CLONE_VM | CLONE_PIDFD | (slot.slot >= 0 ? CLONE_FILES : 0);
  ca.pidfd = uint64_t(uintptr_t(&pidfd));
  ca.exit_signal = SIGCHLD;
  ca.stack = uint64_t(uintptr_t(stack.stack));
  ca.stack_size = kStackSize;
  // Born in its cgroup: no moment outside it, no write to cgroup.procs, and the child's setup is
  // accounted and limited from its first instruction.
  if (cgroup_fd >= 0) {
    ca.flags |= CLONE_INTO_CGROUP;
    ca.cgroup = uint64_t(cgroup_fd);
  }

  // Every signal stays blocked in the child during setup (child/interp.c resets the handlers
  // first). The mask is per thread: the cloning thread's, restored at once. An exec
  // (parent/exec.h): born in the container's pid namespace (the cloning thread joins it for its
  // children around the clone), on memory nothing can dump.
  if (plan.join) NonDumpableAcquire();
  const int pidns_fd = plan.join_pid >= 0 ? fds[plan.join_pid] : -1;
  long pid;
  if (OnMainThread()) {
    PidnsForChildren pidns(pidns_fd);
    if (pidns.err) {
      pid = -pidns.err;
    } else {
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &old);
      pid = sbx_clone3(&ca, sizeof ca, sbx_child_main, args);
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } else {
    pid = Spawner::Get().Clone(&ca, args, pidns_fd);
  }
  if (pid < 0 && plan.join) NonDumpableRelease();
  if (pid < 0) return Fail(e, int(-pid), "clone3", cgroup_fd >= 0 ? "cgroup" : plan.join ? "prepare" : "clone");
  out->nondumpable = plan.join;

  // The child has, or will have, its own copies of everything still held here.
  out->pid = int(pid);
  out->pidfd = pidfd;
  out->sync = parent_sync.release();
  fcntl(out->sync, F_SETFL, O_NONBLOCK);
  for (int i = 0; i < 3; i++) out->stdio[i] = parent_ends[i].release();
  out->stack = stack.stack;
  stack.stack = nullptr;
  out->slot = slot.slot;
  slot.slot = -1;
  return true;
}

}  // namespace sbx
