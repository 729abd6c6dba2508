#include "root_pool.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fdpass.h"

namespace sbx {

namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

std::pair<dev_t, ino_t> IdOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return {0, 0};
  return {st.st_dev, st.st_ino};
}

std::vector<std::pair<dev_t, ino_t>> IdsOf(const std::vector<std::string>& paths) {
  std::vector<std::pair<dev_t, ino_t>> ids;
  ids.reserve(paths.size());
  for (const auto& p : paths) ids.push_back(IdOf(p));
  return ids;
}

// The host paths the prefix ops open: each bind source, each lower layer of the overlay.
std::vector<std::string> PathsOf(const Plan& plan) {
  std::vector<std::string> out;
  for (uint32_t i = 0; i < plan.prefix; i++) {
    const sbx_op& op = plan.ops[i];
    if (op.kind == SBX_OP_CLONE_TREE) out.emplace_back(plan.strtab + op.s[0]);
    if (op.kind != SBX_OP_ROOT_OVERLAY_DETACHED) continue;
    const char* layer = plan.strtab + op.s[0];
    for (uint32_t k = 0; k < op.n[0]; k++, layer += std::strlen(layer) + 1) out.emplace_back(layer);
  }
  return out;
}

}  // namespace

RootPool& RootPool::Get() {
  static RootPool* p = new RootPool;
  return *p;
}

RootPool::Counts RootPool::counts() { return {built_.load(), taken_.load(), dropped_.load(), skipped_.load()}; }

void RootPool::Prepare(const uint8_t* data, size_t len) {
  HelperThread& helper = HelperThread::Get();
  if (!helper.Running() || helper.results() < 0) return;
  {
    // Only once two containers in a row had one prefix: options that alternate between roots
    // would have each root built and dropped (those that share one, another command on the
    // same rootfs, are one prefix).
    std::lock_guard<std::mutex> lock(mu_);
    if (!repeat_) return;
  }
  if (balance_.load() < 0 && asked_.fetch_add(1) % kProbe != 0) {  // most were wasted lately
    skipped_++;
    return;
  }
  auto req = std::make_unique<Request>();
  req->bytes.assign(data, data + len);  // parsed on the helper thread
  req->len = len;
  if (helper.Post({HelperMsg::kRoot, uint64_t(uintptr_t(req.get()))}, nullptr, 0) == 0) {
    req.release();
    outstanding_++;
  }
}

bool RootPool::Expire() {
  HelperThread& helper = HelperThread::Get();
  if (!helper.Running() || helper.results() < 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (NowNs() - last_take_ns_ < kMaxAge) return true;  // a create() came since: later
  for (Ready r; Receive(&r);) Drop(r, false);  // says nothing of what comes next: not wasted
  return outstanding_.load() > 0;
}

bool RootPool::Receive(Ready* r) {
  for (;;) {
    HelperMsg m;
    int fds[2 + SBX_PREFIX_MAX_SLOTS];
    int n = RecvFds(HelperThread::Get().results(), &m, sizeof m, fds, 2 + SBX_PREFIX_MAX_SLOTS, MSG_DONTWAIT);
    if (n == -EPROTO) continue;
    if (n < 0) return false;
    outstanding_--;
    r->req.reset(reinterpret_cast<Request*>(uintptr_t(m.id)));
    r->fds.assign(fds, fds + n);
    r->slot_mask = uint32_t(m.type >> 8);
    return true;
  }
}

void RootPool::Drop(Ready& r, bool wasted) {
  dropped_++;
  if (wasted && balance_.load() > -kBalance) balance_--;
  // Closed on the helper thread: the last fd of a detached mount waits for an RCU grace period.
  // The message holds copies of its own; if it could not be sent, the teardown happens here.
  if (!r.fds.empty()) HelperThread::Get().Post({HelperMsg::kClose, 0}, r.fds.data(), int(r.fds.size()));
  for (int fd : r.fds) close(fd);
  r.fds.clear();
  r.req.reset();
}

bool RootPool::Take(const Plan& plan, sbx_prefix* out, uint32_t* slot_mask) {
  HelperThread& helper = HelperThread::Get();
  if (!helper.Running() || helper.results() < 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (plan.prefix == 0) {
    // A container without one (host mode, keep) ends a run of one prefix: Prepare() with its
    // plan would have the helper parse it for nothing. An exec (join) is not a container.
    if (!plan.join) {
      repeat_ = false;
      last_key_.clear();
    }
    return false;
  }
  const uint64_t now = NowNs();
  last_take_ns_ = now;
  std::string key = PrefixKey(plan);
  repeat_ = key == last_key_;
  bool found = false;
  // The roots the helper has finished, in order, until one for this prefix: it is taken, those
  // before it dropped (each for other options, or made stale by time or the disk). Those after
  // it wait in the channel (in no fd table) for the next create.
  for (Ready r; !found && Receive(&r);) {
    const bool same = r.req->key == key;
    bool match = same && r.fds.size() == 2u + __builtin_popcount(r.slot_mask) && now - r.req->built_ns <= kMaxAge &&
                 IdsOf(r.req->paths) == r.req->ids;  // still the same directories on disk
    if (!match) {
      // Built for other options (that did not come back): wasted. Not so one made stale by
      // time or the disk: that says nothing of what comes next.
      Drop(r, !same);
      continue;
    }
    found = true;
    out->tmpfs_fd = r.fds[0];
    out->root_fd = r.fds[1];
    size_t k = 2;
    for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++) out->slots[i] = (r.slot_mask >> i) & 1 ? r.fds[k++] : -1;
    *slot_mask = r.slot_mask;
    taken_++;
    balance_.store(std::min(balance_.load() + 2, kBalance));
  }
  last_key_ = std::move(key);
  return found;
}

void RootPool::Job::OnMessage(const HelperMsg& m, int* fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
  if (m.type != HelperMsg::kRoot) return;
  todo_.emplace_back(reinterpret_cast<Request*>(uintptr_t(m.id)));
  while (todo_.size() > kMaxTodo) {  // only the latest are worth building
    todo_.pop_front();
    pool_->outstanding_--;
  }
}

bool RootPool::Job::Step(int) {
  if (todo_.empty()) return false;
  std::unique_ptr<Request> req = std::move(todo_.front());
  todo_.pop_front();
  // Until sent: the main side counts a root as on its way from Prepare() until it receives it.
  struct Unsent {
    RootPool* pool;
    bool sent = false;
    ~Unsent() {
      if (!sent) pool->outstanding_--;
    }
  } unsent{pool_};
  if (!PreparePlan(req->bytes.data(), req->len, &req->plan).empty() || req->plan.prefix == 0) return true;
  req->bytes = {};
  req->key = PrefixKey(req->plan);
  req->paths = PathsOf(req->plan);
  req->ids = IdsOf(req->paths);
  sbx_child_args args;
  std::memset(&args, 0, sizeof args);
  args.hdr = req->plan.hdr;
  args.ops = req->plan.ops;
  args.strtab = req->plan.strtab;
  args.sync_fd = -1;
  sbx_prefix p;
  if (sbx_build_prefix(&args, req->plan.prefix, &p) < 0) return true;
  int fds[2 + SBX_PREFIX_MAX_SLOTS], n = 0;
  uint32_t mask = 0;
  fds[n++] = p.tmpfs_fd;
  fds[n++] = p.root_fd;
  for (uint32_t i = 0; i < SBX_PREFIX_MAX_SLOTS; i++)
    if (p.slots[i] >= 0) {
      fds[n++] = p.slots[i];
      mask |= 1u << i;
    }
  // A path that changed while the ops ran would make the ids above a lie: build nothing then.
  bool ok = p.tmpfs_fd >= 0 && p.root_fd >= 0 && IdsOf(req->paths) == req->ids;
  if (ok) {
    req->built_ns = NowNs();
    HelperMsg m = {HelperMsg::kRootDone | (mask << 8), uint64_t(uintptr_t(req.get()))};
    if (SendFds(HelperThread::Get().results_helper(), &m, sizeof m, fds, n) == 0) {
      req.release();  // the main side owns it now
      pool_->built_++;
      unsent.sent = true;
    }
  }
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
  return true;
}

}  // namespace sbx
