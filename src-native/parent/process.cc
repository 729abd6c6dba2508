#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "exec.h"
#include "sync_slots.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace sbx {

namespace {
// Signals whose default action ends the process (bit sig-1): all but SIGCHLD, SIGCONT, SIGSTOP,
// SIGTSTP, SIGTTIN, SIGTTOU, SIGURG and SIGWINCH.
constexpr uint64_t kEndsByDefault =
    ~uint64_t(0) & ~((1ull << (SIGCHLD - 1)) | (1ull << (SIGCONT - 1)) | (1ull << (SIGSTOP - 1)) | (1ull << (SIGTSTP - 1)) |
                     (1ull << (SIGTTIN - 1)) | (1ull << (SIGTTOU - 1)) | (1ull << (SIGURG - 1)) | (1ull << (SIGWINCH - 1)));
}  // namespace

Napi::Error SysError(Napi::Env env, int err, const char* stage, const char* syscall_name, const std::string& path) {
  std::string msg = std::string(syscall_name) + ": " + strerror(err);
  if (!path.empty()) msg += " (" + path + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("stage", Napi::String::New(env, stage));
  e.Set("syscall", Napi::String::New(env, syscall_name));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

Napi::Function Child::Init(Napi::Env env) {
  return DefineClass(env, "Child",
                     {InstanceMethod("start", &Child::Start), InstanceMethod("resume", &Child::Resume),
                      InstanceMethod("kill", &Child::Kill), InstanceMethod("trace", &Child::Trace),
                      InstanceMethod("ref", &Child::Ref_), InstanceMethod("unref", &Child::Unref_),
                      InstanceAccessor("pid", &Child::Pid, nullptr), InstanceAccessor("stdio", &Child::Stdio, nullptr)});
}

Child::Child(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Child>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsFunction() ||
      (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsArray()) ||
      (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNumber())) {
    Napi::TypeError::New(env, "Child(plan: Uint8Array, stdio: number[3], onEvent: Function, fds?: number[], cgroupFd?: number)")
        .ThrowAsJavaScriptException();
    return;
  }
  auto plan = info[0].As<Napi::Uint8Array>();
  std::string why = PreparePlan(plan.Data(), plan.ByteLength(), &plan_);
  if (!why.empty()) {
    Napi::Error e = Napi::Error::New(env, "invalid plan: " + why);
    e.Set("stage", Napi::String::New(env, "plan"));
    e.ThrowAsJavaScriptException();
    return;
  }
  auto stdio = info[1].As<Napi::Array>();
  int spec[3];
  for (uint32_t i = 0; i < 3; i++) spec[i] = stdio.Get(i).As<Napi::Number>().Int32Value();
  std::vector<int> fds;
  if (info.Length() > 3 && info[3].IsArray()) {
    auto a = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && i < SBX_FD_COUNT_ - SBX_FD_PLAN0; i++) fds.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  }
  int cgroup_fd = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int32Value() : -1;
  SpawnError err;
  if (!Spawn(plan_, spec, fds, cgroup_fd, &args_, &p_, &err)) {
    SysError(env, err.err, err.stage, err.syscall, err.path).ThrowAsJavaScriptException();
    return;
  }
  cb_ = Napi::Persistent(info[2].As<Napi::Function>());
  ctx_ = new Napi::AsyncContext(env, "scratchbox:container");
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &sync_poll_, p_.sync);
  sync_poll_.data = this;
  uv_poll_start(&sync_poll_, UV_READABLE, [](uv_poll_t* h, int, int) { static_cast<Child*>(h->data)->OnSync(); });
  uv_poll_init(loop, &pid_poll_, p_.pidfd);
  pid_poll_.data = this;
  uv_poll_start(&pid_poll_, UV_READABLE, [](uv_poll_t* h, int, int) { static_cast<Child*>(h->data)->OnPidfd(); });
  open_handles_ = 2;
  Ref();  // alive while the process or its sync socket is
  // A worker thread's environment may end while the process lives on (spawn.cc clones its
  // containers from a thread that outlives it): close the handles before its loop closes.
  napi_add_async_cleanup_hook(env, [](napi_async_cleanup_hook_handle h, void* self) { static_cast<Child*>(self)->OnEnvExit(h); }, this,
                              &cleanup_);
}

// The environment is going away: stop watching (the process is not killed; its pidfd and sync
// socket close with this object), and let the environment finish once both handles have closed.
void Child::OnEnvExit(napi_async_cleanup_hook_handle h) {
  env_gone_ = true;
  cleanup_ = h;
  if (p_.sync >= 0) CloseSync();
  if (p_.pidfd >= 0) {
    CloseHandle(&pid_poll_);
    close(p_.pidfd);
    p_.pidfd = -1;
  }
  if (open_handles_ == 0) FinishEnvExit();
}

void Child::FinishEnvExit() {
  napi_async_cleanup_hook_handle h = cleanup_;
  cleanup_ = nullptr;
  if (h) napi_remove_async_cleanup_hook(h);
}

Child::~Child() {
  FinishEnvExit();
  Settle();
  FreeChildMemory();
  if (p_.pidfd >= 0) close(p_.pidfd);
  if (p_.sync >= 0) close(p_.sync);
  Teardown::Get().Release(mntns_);
  delete ctx_;
}

// The stack (and the plan, freed with this object) are the child's until it has exec'd or died:
// known from the sync socket's EOF (its end is O_CLOEXEC and closes only at execve or exit).
void Child::FreeChildMemory() {
  if (p_.stack) GiveStack(p_.stack);
  p_.stack = nullptr;
  if (p_.nondumpable) NonDumpableRelease();
  p_.nondumpable = false;
}

// The child has an fd table of its own (READY, ERROR, EOF or exit): its sync slot can be reused.
void Child::Settle() {
  if (p_.slot >= 0) SyncSlots::Get().Give(p_.slot);
  p_.slot = -1;
}

void Child::Emit(std::initializer_list<int> values) {
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

void Child::CloseHandle(uv_poll_t* h) {
  uv_poll_stop(h);
  uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* hh) {
    Child* self = static_cast<Child*>(hh->data);
    if (--self->open_handles_ == 0 && self->env_gone_) return self->FinishEnvExit();
    if (self->open_handles_ == 0) {
      // No event can follow. The callback closes over the JS Container, which holds this object:
      // a persistent reference to it would keep the pair alive forever.
      self->FinishEnvExit();
      self->cb_.Reset();
      delete self->ctx_;
      self->ctx_ = nullptr;
      self->Unref();
    }
  });
}

void Child::OnSync() {
  for (;;) {
    union {
      sbx_msg m;
      sbx_trace t;
    } u;
    ssize_t n = recv(p_.sync, &u, sizeof u, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // The child's end closed with our START unread: it died before it could exec.
    bool reset = n < 0 && errno == ECONNRESET;
    if (reset) n = 0, died_before_exec_ = true;
    if (n == 0) {  // EOF: exec'd or exited, so the child no longer runs on our stack
      // After START, EOF is an exec only if the process has left the setup (its comm says so);
      // once reaped (OnPidfd came first) the comm was read there.
      bool starting = protocol_.step() == Protocol::Step::kStarting;
      if (starting && !exited_) died_before_exec_ = InSetup();
      bool execd = starting && !died_before_exec_;
      protocol_.OnEof();
      Settle();
      FreeChildMemory();
      CloseSync();
      Emit({kEvEof, execd ? 1 : 0});
      return;
    }
    if (n < 0) return ProtocolError(errno);
    Protocol::Event ev = protocol_.OnMessage(&u, n);
    switch (ev.kind) {
      case Protocol::Event::kTrace:
        break;
      case Protocol::Event::kSync:
        Emit({kEvSync, ev.op});
        break;
      case Protocol::Event::kReady:
        OnReady();
        break;
      case Protocol::Event::kError:
        Settle();
        Emit({kEvError, ev.stage, ev.op, ev.err});
        break;
      case Protocol::Event::kReject:
        return ProtocolError(ev.err);
    }
    if (p_.sync < 0) return;  // a callback above deleted or closed us
  }
}

namespace {

// PIDFD_GET_MNT_NAMESPACE (linux/pidfd.h, Linux 6.11), not in every libc's headers.
constexpr unsigned long kPidfdGetMntNamespace = _IO(0xFF, 3);

// An fd (O_CLOEXEC) of the process's mount namespace, or -1. From its pidfd where the kernel has
// the ioctl: ~1 us, where opening /proc/PID/ns/mnt walks /proc and makes its dentries (~20 us
// here, on the path of every create()). Older kernels say ENOTTY (or EINVAL): asked once.
int MountNamespaceOf(int pidfd, int pid) {
  static std::atomic<bool> no_ioctl{false};
  if (!no_ioctl.load(std::memory_order_relaxed) && pidfd >= 0) {
    int fd = ioctl(pidfd, kPidfdGetMntNamespace, 0);
    if (fd >= 0) return fd;
    if (errno == ENOTTY || errno == EINVAL) no_ioctl.store(true, std::memory_order_relaxed);
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
  return open(path, O_RDONLY | O_CLOEXEC);
}

}  // namespace

void Child::OnReady() {
  // The container's mount namespace, held (teardown.h) so that its teardown happens after the
  // exit is reported, on the helper thread. Opened before the promise settles: the JavaScript it
  // resumes may start the container at once, and an open of /proc/PID/ns/* during its execve
  // waits for the exec to finish (the task's exec_update_lock). An exec's mount namespace is its
  // container's, held by that one.
  int ns = plan_.join ? -1 : MountNamespaceOf(p_.pidfd, p_.pid);
  // The promise next: handing the fd over talks to the helper thread, which would compete with
  // the JavaScript that create() resumes (~60 us of create() here). Even if that JavaScript has
  // started the container and it has exited already, the fd is this container's namespace.
  Emit({kEvReady});
  Settle();  // its prelude is long past
  if (ns >= 0) mntns_ = Teardown::Get().Hold(ns);
}

// The child broke the protocol (or the socket did): report it as the child's error, kill it, and
// stop listening. The stack is freed once the exit is seen, not before.
void Child::ProtocolError(int err) {
  if (!exited_ && p_.pidfd >= 0) syscall(SYS_pidfd_send_signal, p_.pidfd, SIGKILL, nullptr, 0);
  bool failed = protocol_.step() == Protocol::Step::kFailed;  // its own ERROR came first
  CloseSync();
  if (!failed) Emit({kEvError, SBX_STAGE_SYNC, -1, err});
  Emit({kEvEof, 0});
}

void Child::CloseSync() {
  if (p_.sync < 0) return;
  CloseHandle(&sync_poll_);
  close(p_.sync);
  p_.sync = -1;
}

void Child::OnPidfd() {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  // Exited, not yet reaped: its comm still tells whether it got as far as execve (OnSync's EOF).
  if (p_.sync >= 0 && protocol_.step() == Protocol::Step::kStarting) died_before_exec_ = InSetup();
  int r = waitid(idtype_t(P_PIDFD), id_t(p_.pidfd), &si, WEXITED | WNOHANG);
  if (r == 0 && si.si_pid == 0) return;  // not exited yet (spurious wakeup)
  // r < 0: someone else reaped it (a waitpid(-1) elsewhere in the process): the status is lost.
  exited_ = true;
  CloseHandle(&pid_poll_);
  close(p_.pidfd);
  p_.pidfd = -1;
  FreeChildMemory();  // reaped: it runs on nothing of ours any more
  bool signaled = r == 0 && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED);
  int code = r < 0 ? -1 : signaled ? -1 : si.si_status;
  int sig = r < 0 ? 0 : signaled ? si.si_status : 0;
  Emit({kEvExit, code, sig});  // first, as at READY: the rest talks to the helper thread
  Settle();
  Teardown::Get().Release(mntns_);
  mntns_ = Held{};
}

// One parent → child message: 0 or -errno.
int Child::Send(uint32_t type, int point, int err) {
  sbx_msg m = {type, 0, point, err};
  ssize_t n;
  do n = send(p_.sync, &m, sizeof m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

Napi::Value Child::Start(const Napi::CallbackInfo& info) {
  if (p_.sync < 0) return Napi::Number::New(info.Env(), -EPIPE);
  if (!protocol_.Start()) return Napi::Number::New(info.Env(), -EPROTO);
  return Napi::Number::New(info.Env(), Send(SBX_MSG_START, 0, 0));
}

// resume(point, err = 0): the parent's part at a SYNC point is done (err: it failed; the child
// exits reporting it).
Napi::Value Child::Resume(const Napi::CallbackInfo& info) {
  int point = info[0].As<Napi::Number>().Int32Value();
  int err = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (p_.sync < 0) return Napi::Number::New(info.Env(), -EPIPE);
  if (!protocol_.Resume(point)) return Napi::Number::New(info.Env(), -EPROTO);
  return Napi::Number::New(info.Env(), Send(SBX_MSG_RESUME, point, err));
}

Napi::Value Child::Kill(const Napi::CallbackInfo& info) {
  int sig = info[0].As<Napi::Number>().Int32Value();
  if (exited_ || p_.pidfd < 0) return Napi::Number::New(info.Env(), -ESRCH);
  // Until the exec, every signal but SIGKILL/SIGSTOP is blocked in the child (and a container's
  // PID 1 ignores those it has no handler for): one that would end a process ends it now, as
  // SIGKILL. Unblocking them there would not do: PID 1 drops them, and the core-dumping ones
  // would write out Node's memory, which the child still shares.
  if (sig > 0 && sig <= 64 && ((kEndsByDefault >> (sig - 1)) & 1) && protocol_.step() != Protocol::Step::kExecd) sig = SIGKILL;
  long r = syscall(SYS_pidfd_send_signal, p_.pidfd, sig, nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// With SBX_H_TRACE: [t0, end of op 0, end of op 1, ...] in ns (CLOCK_MONOTONIC), else empty.
Napi::Value Child::Trace(const Napi::CallbackInfo& info) {
  const sbx_trace& t = protocol_.trace();
  uint32_t n = t.type == SBX_MSG_TRACE ? t.count : 0;
  Napi::Float64Array a = Napi::Float64Array::New(info.Env(), n ? n + 1 : 0);
  if (n) {
    a[0] = double(t.t0);
    for (uint32_t i = 0; i < n; i++) a[i + 1] = double(t.end[i]);
  }
  return a;
}

// Still the setup's process (its comm is SBX_SETUP_COMM), not the user's binary. Only for a pid not
// yet reaped (it cannot have been reused).
// Whether the process ended in its setup: its comm is still the setup's, and it is exiting.
// The comm alone would not do: execve closes the CLOEXEC fds (the EOF on the sync socket) a moment
// before it names the task after the new program, so an EOF handled in between finds the setup's
// comm on a process that has exec'd (seen here about once in a thousand lifecycles, once nothing
// else made the main thread wait for the exec to finish). An exit sets PF_EXITING before it closes
// the fds; an exec never does. One read of /proc/PID/stat gives both.
bool Child::InSetup() const {
  char path[48], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", p_.pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // "pid (comm) state ppid pgrp session tty_nr tpgid flags ..."; the comm may hold ") ".
  char* open_paren = strchr(buf, '(');
  char* close_paren = strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return false;
  *close_paren = 0;
  if (strcmp(open_paren + 1, SBX_SETUP_COMM) != 0) return false;
  unsigned long flags = 0;
  char state = 0;
  if (sscanf(close_paren + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2) return false;
  constexpr unsigned long kPfExiting = 0x4;  // include/linux/sched.h PF_EXITING
  return (flags & kPfExiting) != 0 || state == 'Z' || state == 'X';
}

// ref()/unref(): like a ChildProcess, whether this process keeps the event loop alive.
void Child::SetRef(bool on) {
  for (auto [h, open] : {std::pair{&sync_poll_, p_.sync >= 0}, std::pair{&pid_poll_, p_.pidfd >= 0}}) {
    if (!open) continue;
    if (on) uv_ref(reinterpret_cast<uv_handle_t*>(h));
    else uv_unref(reinterpret_cast<uv_handle_t*>(h));
  }
}

Napi::Value Child::Ref_(const Napi::CallbackInfo& info) {
  SetRef(true);
  return info.Env().Undefined();
}

Napi::Value Child::Unref_(const Napi::CallbackInfo& info) {
  SetRef(false);
  return info.Env().Undefined();
}

Napi::Value Child::Pid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), p_.pid); }

Napi::Value Child::Stdio(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), 3);
  for (uint32_t i = 0; i < 3; i++) a.Set(i, Napi::Number::New(info.Env(), p_.stdio[i]));
  return a;
}

}  // namespace sbx
