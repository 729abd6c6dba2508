// Reserved low fd numbers for the sync sockets of children cloned with CLONE_FILES (child/child.h,
// fd_limit): the child's first call keeps only the fds below the highest slot + 1, so no child
// copies (and then closes) the Node process's whole fd table, whose size grows with every live
// container (pidfds) and with whatever else the program has open. Made on first use, as dups of
// /dev/null taken from the lowest free numbers (if they come out high, because the program had
// many fds open before its first container, the child copies more, but never more than a copy of
// the whole table would). A slot holds one child's end of its sync socket from spawn until the
// child has settled; then /dev/null again. When all are taken (a burst of creates), a child gets a
// copy of the table instead.
#ifndef SBX_SYNC_SLOTS_H
#define SBX_SYNC_SLOTS_H

#include <mutex>
#include <vector>

namespace sbx {

class SyncSlots {
 public:
  static SyncSlots& Get();
  int Take();  // a free slot's fd number, or -1
  void Give(int slot);
  int limit() const { return limit_; }

 private:
  static constexpr int kSlots = 8;
  void Init();
  std::mutex mu_;
  std::vector<int> slots_;
  std::vector<bool> busy_;
  int devnull_ = -1, limit_ = 0;
  bool init_ = false;
};

}  // namespace sbx

#endif
