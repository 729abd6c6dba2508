// Fresh network namespaces, made ahead of need on the helper thread. A new network namespace is
// the slowest part of a container's setup (~1 ms in the kernel); made there, it overlaps with the
// work of the container before. Each one is handed to exactly one container (NETNS_FRESH: setns in
// the child) and never reused, so isolation is the same as unshare(CLONE_NEWNET). When the pool is
// empty (a burst) or fails (no CAP_SYS_ADMIN), the child makes its own. Settings::netns_pool sets
// its size (0: off); unless configured, each container that finds it empty raises that by one, up
// to Settings::netns_pool_max: a process that starts containers back to back (whose helper thread
// falls behind now and then on a small machine) banks namespaces in the idle moments between
// them, and one that starts a few never makes more than two it does not use. With each one goes
// a sysfs mounted for it (detached): mounting sysfs in a new network namespace looks through every
// sysfs superblock in the system, which grows with the number of live containers; done here, that
// lookup is off the critical path too. And with each goes a fresh IPC namespace (its System V
// sysctl tables and internal mqueue mount cost ~30 us), used by a container that has both (closed
// unused otherwise).
#ifndef SBX_NETNS_POOL_H
#define SBX_NETNS_POOL_H

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "helper_thread.h"

namespace sbx {

struct Netns {
  int net = -1;
  int sysfs = -1;
  int ipc = -1;  // a fresh IPC namespace too (IPCNS_FRESH), made in the same unshare
  int mqueue = -1;  // and a detached mqueue of that IPC namespace
};

// A new network namespace with lo up (and a sysfs of it, and an IPC namespace when home_ipc >= 0),
// made by the calling thread, which returns to `home` (and home_ipc) after. All -1 on failure.
Netns MakeNetns(int home, bool with_sysfs, int home_ipc = -1);

class NetnsPool {
 public:
  static NetnsPool& Get();
  // A pooled namespace (and its sysfs), now in the caller's fd table; empty if none is ready.
  Netns Take();
  struct Counts {
    uint64_t taken = 0, missed = 0, target = 0;
  };
  Counts counts() const { return {taken_.load(), missed_.load(), target_.load()}; }
  HelperJob& job() { return job_; }

 private:
  class Job : public HelperJob {
   public:
    explicit Job(NetnsPool* pool) : pool_(pool) {}
    void OnMessage(const HelperMsg& m, int* fds, int n) override;
    bool Step(int channel) override;

   private:
    NetnsPool* pool_;
    int home_ = -2;  // the helper thread's own network namespace; -2 until opened
    int home_ipc_ = -1;  // and its IPC namespace (-1: no IPC namespaces pooled)
    bool failed_ = false;
  };
  Job job_{this};
  std::atomic<size_t> target_{0}, max_{0};  // from the settings at the job's first step
  std::atomic<size_t> sent_{0}, taken_{0}, missed_{0};
};

}  // namespace sbx

#endif
