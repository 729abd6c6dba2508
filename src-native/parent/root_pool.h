// Pooled roots. In the base mode a plan starts with the ops that take what the container needs of
// the host while the child still sees it: a detached clone of each bind source (CLONE_TREE), the
// upper tmpfs with the /etc files and the mount points in it, the overlay on the rootfs, and what
// is made in it while it is detached: /dev, its mounts and nodes, the masks' tmpfs
// (Plan::prefix). They are the same for every container of a template (src-ts/container/
// templates.ts), and for options that differ only after them (the command, the environment):
// the hostname, the one thing that changes from one container to the next, is written after
// them (/etc/hostname and /etc/hosts are made empty in the prefix, filled by F_EXISTING writes).
// So the helper thread runs those ops ahead, with the child's own handlers (sbx_build_prefix),
// after each create() once the last two containers had the same prefix; Spawn() finds one
// by its prefix (PrefixKey: the ops and their strings, not the rest of the plan) and sends what
// it left in MSG_FDS, and the child starts after them. ~0.2 ms of the child's setup happens on
// otherwise idle time. A root finished too late for the container it was asked for serves the
// next one.
//
// A pooled root is used only when it is still true to the disk: the paths its ops opened (each
// layer of the overlay, each bind source) must still be the same directories (dev, inode) as
// when it was built, and it must be younger than kMaxAge (a bind source's submounts can change
// without it). Each is used once; one that is not taken is closed on the helper thread (a detached
// mount waits for an RCU grace period when its last fd closes). A finished root waits in the
// results channel (in no fd table) until the next Spawn of a plan with a prefix, which takes the
// first one of its prefix and drops those before it.
#ifndef SBX_ROOT_POOL_H
#define SBX_ROOT_POOL_H

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../child/child.h"
#include "helper_thread.h"
#include "plan.h"

namespace sbx {

class RootPool {
 public:
  static RootPool& Get();

  // Main side: build the root of this plan ahead (if its plan has a prefix). Copies the bytes.
  void Prepare(const uint8_t* data, size_t len);
  // Spawn, for every plan: a root built for this plan's prefix and still true to the disk, its fds
  // now in the caller's table (the caller closes them). False if there is none.
  bool Take(const Plan& plan, sbx_prefix* out, uint32_t* slot_mask);

  struct Counts {
    uint64_t built = 0, taken = 0, dropped = 0, skipped = 0;
  };
  Counts counts();
  // Main side, from a timer (src-ts/container/container.ts): once no create() has come for
  // kMaxAge, drops the finished roots waiting in the results channel. Each holds its overlay's
  // layers and its bind sources' trees, so a file system under them would stay in use (its
  // superblock alive after an umount) for as long as no container comes. True while roots are
  // still on their way (asked for, not yet received): call again later.
  bool Expire();
  HelperJob& job() { return job_; }

  // One root: the plan's bytes, what its ops opened (dev, ino; 0, 0 when missing) and when.
  struct Request {
    std::vector<uint8_t> bytes;  // until the helper thread has parsed them into plan
    Plan plan;
    std::string key;  // PrefixKey(plan)
    size_t len = 0;
    std::vector<std::string> paths;
    std::vector<std::pair<dev_t, ino_t>> ids;
    uint64_t built_ns = 0;
  };

 private:
  class Job : public HelperJob {  // the helper thread's side
   public:
    explicit Job(RootPool* pool) : pool_(pool) {}
    void OnMessage(const HelperMsg& m, int* fds, int n) override;
    bool Step(int channel) override;

   private:
    RootPool* pool_;
    std::deque<std::unique_ptr<Request>> todo_;
  };
  struct Ready {
    std::unique_ptr<Request> req;
    std::vector<int> fds;  // tmpfs, overlay, then the slots of slot_mask
    uint32_t slot_mask = 0;
  };
  void Drop(Ready& r, bool wasted);
  // The next finished root from the results channel (non-blocking), under mu_. False: none.
  bool Receive(Ready* r);

  static constexpr uint64_t kMaxAge = 2'000'000'000;  // ns
  static constexpr size_t kMaxTodo = 4;
  // Whether the roots built lately were taken: +2 for one taken, -1 for one dropped unused (made
  // for another prefix than the next container's: several threads making containers of other
  // options at once), within [-kBalance, kBalance].
  // Below 0 only every kProbe-th root asked for is built: where most would be wasted (when roots
  // were matched by a container's exact bytes, 8 threads making containers here wasted 88%), the
  // time goes to containers instead. From the floor, two
  // probes taken (8 creates) make it build every root again.
  static constexpr int kBalance = 4, kProbe = 4;
  std::atomic<int> balance_{0};
  std::atomic<uint32_t> asked_{0};
  Job job_{this};
  std::mutex mu_;  // the main side (Spawn may run on any thread)
  // The prefix of the last Take, and whether it was the one before's too (Prepare builds only then).
  std::string last_key_;
  bool repeat_ = false;
  uint64_t last_take_ns_ = 0;
  // Roots asked for (Prepare) and not yet received (Take, Expire) nor given up by the helper.
  std::atomic<int> outstanding_{0};
  std::atomic<uint64_t> built_{0}, taken_{0}, dropped_{0}, skipped_{0};
};

}  // namespace sbx

#endif
