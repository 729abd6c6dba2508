#include "teardown.h"

#include <unistd.h>

namespace sbx {

Teardown& Teardown::Get() {
  static Teardown* t = new Teardown;
  return *t;
}

Held Teardown::Hold(int fd) {
  if (!HelperThread::Get().Running()) return Held{0, fd};
  Held h;
  {
    std::lock_guard<std::mutex> lock(mu_);
    h.id = ++last_id_;
  }
  HelperThread::Get().Post({HelperMsg::kHold, h.id}, &fd, 1);
  close(fd);
  return h;
}

void Teardown::Release(Held h) {
  if (h.fd >= 0) close(h.fd);  // no helper thread: here and now
  if (h.id == 0) return;
  HelperThread::Get().Post({HelperMsg::kRelease, h.id}, nullptr, 0);
  if (++released_ - closed_.load() > kBehind) HelperThread::Get().Promote();
}

void Teardown::Job::OnMessage(const HelperMsg& m, int* fds, int n) {
  if (m.type == HelperMsg::kHold && n == 1) {
    held_[m.id] = fds[0];
    return;
  }
  for (int i = 0; i < n; i++) close(fds[i]);
  if (m.type != HelperMsg::kRelease) return;
  auto it = held_.find(m.id);
  if (it == held_.end()) return;
  due_.push_back(it->second);
  held_.erase(it);
}

bool Teardown::Job::Step(int) {
  if (due_.empty()) return false;
  for (int fd : due_) close(fd);  // the teardown runs here
  Get().closed_ += due_.size();
  due_.clear();
  return true;
}

}  // namespace sbx
