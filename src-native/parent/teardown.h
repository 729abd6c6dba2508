// Deferred teardown. The parent holds a container's mount namespace from READY on; when the
// process exits, the kernel then has no mount tree to dismantle before it reports the exit (an RCU
// grace period and every mount), and the helper thread drops the last reference afterwards.
#ifndef SBX_TEARDOWN_H
#define SBX_TEARDOWN_H

#include <atomic>
#include <cstdint>
#include <map>
#include <vector>

#include "helper_thread.h"

namespace sbx {

// A held fd: in the helper's table (id), or in the main table when the helper is not running.
struct Held {
  uint64_t id = 0;
  int fd = -1;
};

class Teardown {
 public:
  static Teardown& Get();
  // Moves fd to the helper's table until Release(). Takes ownership.
  Held Hold(int fd);
  // Closes a held fd on the helper thread (where the teardown it triggers then runs).
  void Release(Held h);
  HelperJob& job() { return job_; }

 private:
  class Job : public HelperJob {  // on the helper thread only: no lock
   public:
    void OnMessage(const HelperMsg& m, int* fds, int n) override;
    bool Step(int channel) override;

   private:
    std::map<uint64_t, int> held_;
    std::vector<int> due_;
  };
  // Releases posted and teardowns done: the difference is the helper's backlog.
  static constexpr uint64_t kBehind = 8;
  std::atomic<uint64_t> released_{0}, closed_{0};
  Job job_;
  uint64_t last_id_ = 0;  // main side (ids are only made by the threads that spawn, under mu_)
  std::mutex mu_;
};

}  // namespace sbx

#endif
