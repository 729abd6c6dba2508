// Exec into a running container, the parent's side (docs/architecture.md, "Exec"):
//
//  - PidnsForChildren: clone3 from this thread into the pid namespace of a pidfd. setns with
//    CLONE_NEWPID changes only this thread's pid_for_children, so it is joined just before the
//    clone and given back right after; the child is born in the container's pid namespace.
//  - NonDumpable: while an exec'd child still runs on the Node process's memory (CLONE_VM, until
//    its execve), that memory is marked non-dumpable, so nothing inside the container can open
//    /proc/<child>/exe, mem or map_files (CVE-2019-5736; docs/security.md).
//  - pidfdOpen(pid): a pidfd for the plan's JOIN op; dumpable(): PR_GET_DUMPABLE, for tests.
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <napi.h>

namespace sbx {

class PidnsForChildren {
 public:
  explicit PidnsForChildren(int pidfd);  // -1: nothing to do
  ~PidnsForChildren();
  int err = 0;  // the setns failed (errno): nothing to give back

 private:
  bool joined_ = false;
};

// Counted across threads: the first acquire saves the dumpable flag and clears it, the last
// release restores it.
void NonDumpableAcquire();
void NonDumpableRelease();

Napi::Value PidfdOpen(const Napi::CallbackInfo& info);
Napi::Value Dumpable(const Napi::CallbackInfo& info);

}  // namespace sbx

#endif
