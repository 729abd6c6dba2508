// cgroup v2 device allow-list: load a BPF_PROG_TYPE_CGROUP_DEVICE program (the instructions are
// generated and unit-tested in src-ts/cgroup/device-filter.ts) and attach it to a cgroup.
#ifndef SBX_DEVICES_BPF_H
#define SBX_DEVICES_BPF_H

#include <napi.h>

namespace sbx {

// attachDeviceFilter(cgroupFd: number, insns: Uint8Array): throws { errno, syscall: 'bpf', stage: 'cgroup' }.
Napi::Value AttachDeviceFilter(const Napi::CallbackInfo& info);

}  // namespace sbx

#endif
