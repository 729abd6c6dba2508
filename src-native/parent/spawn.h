// Spawning a container's process from a validated plan: stdio, the fds the plan asks for, the sync
// socket in a reserved slot, a stack, and clone3. Every resource is owned by an RAII holder until
// the clone succeeds, so each error path leaves nothing behind.
#ifndef SBX_SPAWN_H
#define SBX_SPAWN_H

#include <string>
#include <vector>

#include "../child/child.h"
#include "plan.h"

namespace sbx {

constexpr int kStdioInherit = -1, kStdioPipe = -2, kStdioIgnore = -3;

struct Spawned {
  int pid = -1, pidfd = -1, sync = -1;  // sync: the parent's end, non-blocking
  int stdio[3] = {-1, -1, -1};          // parent ends of 'pipe' stdio
  void* stack = nullptr;                // the child's until it exec'd or died: GiveStack() then
  int slot = -1;                        // SyncSlots slot holding the child's end, until it settles
  bool nondumpable = false;             // an exec: NonDumpableRelease() once it runs on nothing of ours
};

struct SpawnError {
  int err = 0;
  const char* stage = "prepare";
  const char* syscall = "";
  std::string path;
};

// stdio: kStdio* or an fd for each of 0..2; plan_fds: the fds for SBX_FD_PLAN0 on; cgroup_fd: a
// cgroup v2 directory the child is born in (CLONE_INTO_CGROUP), or -1. `args` must stay valid (and
// unmoved) while the child runs on it, as must the plan.
bool Spawn(const Plan& plan, const int stdio[3], const std::vector<int>& plan_fds, int cgroup_fd, sbx_child_args* args,
           Spawned* out, SpawnError* error);

void GiveStack(void* stack);

}  // namespace sbx

#endif
