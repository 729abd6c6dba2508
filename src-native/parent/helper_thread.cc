#include "helper_thread.h"

#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <thread>
#include <utility>

#include "fdpass.h"
#include "netns_pool.h"
#include "root_pool.h"
#include "settings.h"
#include "teardown.h"

namespace sbx {

// Never destroyed: its thread blocks in poll until the process ends.
HelperThread& HelperThread::Get() {
  static HelperThread* h = new HelperThread;
  return *h;
}

bool HelperThread::Running() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) Start();
  return running_;
}

int HelperThread::Post(const HelperMsg& m, const int* fds, int n) { return SendFds(channel_, &m, sizeof m, fds, n); }

int HelperThread::TryReceive(HelperMsg* m, int* fds, int max) { return RecvFds(channel_, m, sizeof *m, fds, max, MSG_DONTWAIT); }

void HelperThread::Start() {  // with mu_ held; the thread never takes it
  started_ = true;
  settings().frozen = true;
  int sv[2], rv[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rv) < 0) rv[0] = rv[1] = -1;  // no pooled roots
  // The thread unshares the fd table (a copy of this one), keeps only its ends of the channels,
  // and says so; then this table closes those ends. It also unshares its fs_struct, for a umask
  // of its own: the pooled roots' ops expect the child's (0: modes in the plan are exact).
  std::mutex m;
  std::condition_variable cv;
  int state = 0;  // 1: running, -1: failed
  std::thread([this, sv, rv, &m, &cv, &state] {
    bool ok = unshare(CLONE_FILES) == 0;
    if (ok) {
      close(sv[0]);
      if (rv[0] >= 0) close(rv[0]);
      int keep[2] = {sv[1], rv[1] >= 0 ? rv[1] : sv[1]};
      if (keep[0] > keep[1]) std::swap(keep[0], keep[1]);
      if (keep[0] > 0) syscall(SYS_close_range, 0u, unsigned(keep[0] - 1), 0u);
      if (keep[1] > keep[0] + 1) syscall(SYS_close_range, unsigned(keep[0] + 1), unsigned(keep[1] - 1), 0u);
      syscall(SYS_close_range, unsigned(keep[1] + 1), ~0u, 0u);
      if (rv[1] >= 0 && unshare(CLONE_FS) == 0) {
        umask(0);
        results_helper_ = rv[1];
      } else if (rv[1] >= 0) {
        close(rv[1]);
      }
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
  if (rv[1] >= 0) close(rv[1]);
  if (state < 0) {
    close(sv[0]);
    if (rv[0] >= 0) close(rv[0]);
    return;
  }
  channel_ = sv[0];
  if (results_helper_ >= 0) results_ = rv[0];
  else if (rv[0] >= 0) close(rv[0]);
  running_ = true;
}

// The thread's work is never urgent, and on a machine with few cores it must not take a core from
// Node's main thread or from a child setting up: woken by the main thread, a thread of normal
// priority preempts it, and the scheduler may leave the main thread waiting behind it rather than
// move it to the idle core (seen here: 0.7 ms of a 2 ms lifecycle). So it runs as SCHED_IDLE, on
// time no one else wants, and at normal priority only while it is behind (Promote). SCHED_IDLE ->
// SCHED_OTHER needs RLIMIT_NICE >= 20 or CAP_SYS_NICE; without them it is never lowered.
bool HelperThread::Idle(bool idle) {
  struct sched_param sp = {0};
  return sched_setscheduler(idle ? 0 : tid_.load(), idle ? SCHED_IDLE : SCHED_OTHER, &sp) == 0;
}

void HelperThread::Promote() {
  if (tid_.load() == 0 || promoted_.exchange(true)) return;
  Idle(false);
}

void HelperThread::Run(int ch) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // Node's signals are not this thread's business
  struct rlimit nice;
  bool can_raise = geteuid() == 0 || (getrlimit(RLIMIT_NICE, &nice) == 0 && nice.rlim_cur >= 20);
  if (can_raise && Idle(true)) tid_.store(int(syscall(SYS_gettid)));
  // Teardown first: the namespaces it closes free what new ones use.
  // The next container's root before the namespace pool's refill: both are wanted by the next
  // create(), and the root is the shorter job.
  HelperJob* jobs[] = {&Teardown::Get().job(), &RootPool::Get().job(), &NetnsPool::Get().job()};
  for (;;) {
    for (;;) {  // every message there is, without blocking
      HelperMsg m;
      int fds[kMaxPassedFds];
      int n = RecvFds(ch, &m, sizeof m, fds, kMaxPassedFds, MSG_DONTWAIT);
      if (n == -EAGAIN || n == -EWOULDBLOCK) break;
      if (n == -EPROTO) continue;
      if (n < 0) return;  // the channel is gone
      HelperJob* to = m.type == HelperMsg::kWake ? jobs[2] : m.type == HelperMsg::kRoot ? jobs[1] : jobs[0];
      to->OnMessage(m, fds, n);  // kClose: the teardown job closes what came
    }
    bool busy = false;
    for (HelperJob* j : jobs)
      if ((busy = j->Step(ch))) break;
    if (busy) continue;
    // Caught up: back to idle time. Lowered first, then the flag: a Promote() racing with this
    // is at worst lost (and the next one raises it again), never one that leaves the flag set on
    // a lowered thread, which would block all later ones.
    if (promoted_.load() && Idle(true)) promoted_.store(false);
    // Nothing to do: block until the main thread says something.
    struct pollfd p = {ch, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
  }
}

}  // namespace sbx
