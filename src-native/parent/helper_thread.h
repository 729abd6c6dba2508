// The helper thread: kernel work that need not happen on the event loop, nor on a container's
// critical path, done by jobs (netns_pool.h, teardown.h) on one thread with an fd table of its own.
//
// The thread unshares its fd table (CLONE_FILES). A child starts with (part of) the Node process's
// fd table and drops it in its prelude (sync_slots.h): what this thread holds (one mount namespace
// per live container, pooled network namespaces) is not in that table, so it costs a new child
// nothing, and no child can end up holding the last reference to it. fds cross between the two
// tables over a socketpair, with SCM_RIGHTS (fdpass.h).
#ifndef SBX_HELPER_THREAD_H
#define SBX_HELPER_THREAD_H

#include <atomic>
#include <cstdint>
#include <mutex>

namespace sbx {

struct HelperMsg {
  uint32_t type;  // HelperMsg::k*
  uint64_t id;
  // kRootDone goes on the results channel, with the slot mask of its fds in type's bits 8..15.
  enum : uint32_t { kNetns = 1, kHold = 3, kRelease = 4, kWake = 5, kRoot = 6, kRootDone = 7, kClose = 8 };
};

// A job run by the helper thread. Both calls happen on that thread, in its fd table.
class HelperJob {
 public:
  virtual ~HelperJob() = default;
  // A message from the main table (its fds now in the helper's table, owned by the job).
  virtual void OnMessage(const HelperMsg& m, int* fds, int n) = 0;
  // One piece of background work, when no message waits; false when there is none.
  virtual bool Step(int channel) = 0;
};

class HelperThread {
 public:
  static HelperThread& Get();

  // Starts the thread on first use; false if it cannot run (the jobs then do their work inline).
  bool Running();
  // From any thread, never with a lock held that the helper thread takes.
  int Post(const HelperMsg& m, const int* fds, int n);
  // Main side: a message the thread sent (non-blocking); fds into the main table. Count or -errno.
  int TryReceive(HelperMsg* m, int* fds, int max);
  // From any thread: the jobs have fallen behind (the pool ran dry, teardowns pile up), so the
  // thread runs at normal priority until it has caught up (see Run). Cheap when already promoted.
  void Promote();
  // The results channel (root_pool.h): the main table's end, and the helper table's. -1: none.
  int results() const { return results_; }
  int results_helper() const { return results_helper_; }

 private:
  void Start();
  void Run(int channel);

  bool Idle(bool idle);

  std::mutex mu_;  // guards the start only
  bool started_ = false, running_ = false;
  int channel_ = -1;  // the main table's end
  int results_ = -1, results_helper_ = -1;
  std::atomic<int> tid_{0};            // the thread's, once it can be lowered (0: never lowered)
  std::atomic<bool> promoted_{false};  // at normal priority until it has caught up
};

}  // namespace sbx

#endif
