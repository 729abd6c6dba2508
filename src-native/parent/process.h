// The JavaScript handle of one container process (the addon's `Child` class):
//
//   new Child(plan, stdio, onEvent, fds?)  validate the plan, spawn (spawn.h), return at once
//   child.pid / child.stdio                host pid; parent ends of 'pipe' stdio (-1 otherwise)
//   child.start() / child.resume(point, err?) / child.kill(sig)
//   child.ref() / child.unref()           whether the poll handles keep the event loop alive
//   onEvent(EV_READY | EV_ERROR stage op errno | EV_EOF execd | EV_EXIT code signal | EV_SYNC point)
//   (EV_EOF's execd: 1 when the EOF after START came from a successful execve)
//
// Exits are seen through the pidfd (readable when the process exits) and reaped with
// waitid(P_PIDFD): never waitpid(-1), which would steal libuv's own children. The sync socket's
// messages go through the handshake's state machine (protocol.h).
#ifndef SBX_PROCESS_H
#define SBX_PROCESS_H

#include <napi.h>
#include <uv.h>

#include "plan.h"
#include "protocol.h"
#include "spawn.h"
#include "teardown.h"

namespace sbx {

constexpr int kEvReady = 1, kEvError = 2, kEvEof = 3, kEvExit = 4, kEvSync = 5;

Napi::Error SysError(Napi::Env env, int err, const char* stage, const char* syscall_name, const std::string& path = "");

class Child : public Napi::ObjectWrap<Child> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Child(const Napi::CallbackInfo& info);
  ~Child() override;

 private:
  void Emit(std::initializer_list<int> values);
  void CloseHandle(uv_poll_t* h);
  void OnSync();
  void OnReady();
  void ProtocolError(int err);
  void CloseSync();
  void OnPidfd();
  void Settle();
  void FreeChildMemory();
  int Send(uint32_t type, int point, int err);
  bool InSetup() const;
  void OnEnvExit(napi_async_cleanup_hook_handle h);
  void FinishEnvExit();
  void SetRef(bool on);

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Kill(const Napi::CallbackInfo& info);
  Napi::Value Trace(const Napi::CallbackInfo& info);
  Napi::Value Ref_(const Napi::CallbackInfo& info);
  Napi::Value Unref_(const Napi::CallbackInfo& info);
  Napi::Value Pid(const Napi::CallbackInfo& info);
  Napi::Value Stdio(const Napi::CallbackInfo& info);

  Plan plan_;
  sbx_child_args args_{};
  Spawned p_;
  Protocol protocol_;
  Held mntns_;  // the container's mount namespace, from READY to its exit
  bool exited_ = false;
  bool died_before_exec_ = false;
  bool env_gone_ = false;
  napi_async_cleanup_hook_handle cleanup_ = nullptr;  // after START: the process ended before execve
  int open_handles_ = 0;
  uv_poll_t sync_poll_{}, pid_poll_{};
  Napi::FunctionReference cb_;
  Napi::AsyncContext* ctx_ = nullptr;
};

}  // namespace sbx

#endif
