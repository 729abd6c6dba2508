#include "devices_bpf.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fd.h"
#include "process.h"

namespace sbx {

namespace {

long Bpf(int cmd, union bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

}  // namespace

// The program is attached with no flags (BPF_F_ALLOW_MULTI is not needed: the cgroup is new and
// ours alone), and its fd closed: the attachment holds the program until the cgroup is removed.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsTypedArray()) {
    Napi::TypeError::New(env, "attachDeviceFilter(cgroupFd: number, insns: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int cgroup_fd = info[0].As<Napi::Number>().Int32Value();
  auto insns = info[1].As<Napi::Uint8Array>();
  if (insns.ByteLength() == 0 || insns.ByteLength() % sizeof(struct bpf_insn) != 0) {
    Napi::TypeError::New(env, "attachDeviceFilter: insns must be whole struct bpf_insn records").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  static const char license[] = "Apache-2.0";
  char log[4096];
  log[0] = 0;
  union bpf_attr load;
  memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = uint64_t(uintptr_t(insns.Data()));
  load.insn_cnt = uint32_t(insns.ByteLength() / sizeof(struct bpf_insn));
  load.license = uint64_t(uintptr_t(license));
  load.log_buf = uint64_t(uintptr_t(log));
  load.log_size = sizeof log;
  load.log_level = 1;
  Fd prog(int(Bpf(BPF_PROG_LOAD, &load)));
  if (prog.fd < 0) {
    int err = errno;
    SysError(env, err, "cgroup", "bpf", std::string("BPF_PROG_LOAD ") + log).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  union bpf_attr attach;
  memset(&attach, 0, sizeof attach);
  attach.target_fd = uint32_t(cgroup_fd);
  attach.attach_bpf_fd = uint32_t(prog.fd);
  attach.attach_type = BPF_CGROUP_DEVICE;
  if (Bpf(BPF_PROG_ATTACH, &attach) < 0) {
    SysError(env, errno, "cgroup", "bpf", "BPF_PROG_ATTACH").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace sbx
