// Settings of the addon, given by TypeScript (configure(), src-ts/native/addon.ts) before the first
// container; read by the parts that start on first use. Never read from the environment here.
#ifndef SBX_SETTINGS_H
#define SBX_SETTINGS_H

#include <atomic>
#include <cstddef>

namespace sbx {

struct Settings {
  size_t netns_pool = 2;    // fresh network namespaces made ahead of need; 0: none (children make their own)
  size_t netns_pool_max = 8;  // what the pool grows to while children find it empty (configured: = netns_pool)
  bool base_mntns = true;   // copy containers' mount namespaces from the empty base one when the kernel can
  std::atomic<bool> frozen{false};  // set once a part that reads these has started
};

Settings& settings();

}  // namespace sbx

#endif
