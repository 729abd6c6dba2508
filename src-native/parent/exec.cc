#include "exec.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "process.h"

namespace sbx {

namespace {

// This thread's own pid_for_children, opened once: what it goes back to after each clone3.
int OwnPidns() {
  thread_local int fd = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
  return fd;
}

std::mutex g_dump_mu;
int g_inflight = 0;
int g_saved = 1;

}  // namespace

PidnsForChildren::PidnsForChildren(int pidfd) {
  if (pidfd < 0) return;
  // The kernel lets a thread of a multi-threaded process set its pid_for_children to a descendant
  // of its active pid namespace (pidns_install), which a container's is.
  if (OwnPidns() < 0) {
    err = errno;
    return;
  }
  if (setns(pidfd, CLONE_NEWPID) < 0) {
    err = errno;
    return;
  }
  joined_ = true;
}

PidnsForChildren::~PidnsForChildren() {
  if (!joined_) return;
  // Going back to one's own active pid namespace is always allowed; if it somehow failed, every
  // later child of this thread (child_process included) would be born in the container.
  if (setns(OwnPidns(), CLONE_NEWPID) < 0) {
    fprintf(stderr, "scratchbox: cannot restore the thread's pid namespace: %s\n", strerror(errno));
    abort();
  }
}

void NonDumpableAcquire() {
  std::lock_guard<std::mutex> lock(g_dump_mu);
  if (g_inflight++ == 0) {
    g_saved = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
}

void NonDumpableRelease() {
  std::lock_guard<std::mutex> lock(g_dump_mu);
  // prctl can only set 0 or 1: a saved 2 (suid_dumpable root) stays 0, the stricter.
  if (--g_inflight == 0 && g_saved == 1) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

// dumpable(): this process's PR_GET_DUMPABLE (tests: it comes back once no exec is in flight).
Napi::Value Dumpable(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
}

// pidfdOpen(pid): a pidfd (O_CLOEXEC by the kernel), or throws with errno.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "pidfdOpen(pid: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  long fd = syscall(SYS_pidfd_open, info[0].As<Napi::Number>().Int32Value(), 0);
  if (fd < 0) {
    SysError(env, errno, "prepare", "pidfd_open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, double(fd));
}

}  // namespace sbx
