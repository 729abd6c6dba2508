#include "sync_slots.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace sbx {

SyncSlots& SyncSlots::Get() {
  static SyncSlots* s = new SyncSlots;
  return *s;
}

int SyncSlots::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!init_) Init();
  for (size_t i = 0; i < slots_.size(); i++)
    if (!busy_[i]) {
      busy_[i] = true;
      return slots_[i];
    }
  return -1;
}

void SyncSlots::Give(int slot) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); i++)
    if (slots_[i] == slot) {
      dup3(devnull_, slot, O_CLOEXEC);  // drops the child's sync end held here
      busy_[i] = false;
    }
}

void SyncSlots::Init() {
  init_ = true;
  devnull_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull_ < 0) return;
  for (int i = 0; i < kSlots; i++) {
    int fd = fcntl(devnull_, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) break;
    slots_.push_back(fd);
    busy_.push_back(false);
    limit_ = std::max(limit_, fd + 1);
  }
  if (int(slots_.size()) < kSlots) {  // out of fds: copy the table
    for (int fd : slots_) close(fd);
    slots_.clear();
    busy_.clear();
    limit_ = 0;
  }
}

}  // namespace sbx
