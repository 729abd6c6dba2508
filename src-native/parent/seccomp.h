// compileSeccomp: a flattened OCI seccomp profile (built by src-ts/security/seccomp.ts) to the
// struct sock_filter[] bytes the child hands to seccomp(SECCOMP_SET_MODE_FILTER). Runs in the
// parent, on the JS thread: the child only loads bytes, it never links libseccomp.
#pragma once

#include <napi.h>

namespace sbx {

// compileSeccomp({defaultAction, defaultErrno, arches, flags, rules, enosys})
//   -> {bpf: Uint8Array, flags: number, unknown: string[], skippedArches: string[], version: string}
// Throws an Error with `errno` (positive) and, when one is at fault, `field` ("syscalls[3]").
Napi::Value CompileSeccomp(const Napi::CallbackInfo& info);

}  // namespace sbx
