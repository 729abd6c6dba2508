#include "shared_netns.h"

#include <fcntl.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "netns_pool.h"

namespace sbx {

int SharedNetns() {
  static std::mutex mu;
  static int shared = -1;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (shared >= 0) return shared;
  }
  // Made on a short-lived thread (unshare/setns switch the calling thread's namespace, and this is
  // a Node thread), joined with no lock held; tried again on the next call if it failed.
  int made = -1;
  std::thread([&made] {
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home >= 0) made = MakeNetns(home, false).net;
    if (home >= 0) close(home);
  }).join();
  std::lock_guard<std::mutex> lock(mu);
  if (shared < 0) shared = made;
  else if (made >= 0) close(made);  // another thread made one meanwhile
  return shared;
}

}  // namespace sbx
