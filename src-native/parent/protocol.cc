#include "protocol.h"

#include <cerrno>
#include <cstring>

namespace sbx {

Protocol::Event Protocol::OnMessage(const void* buf, ssize_t n) {
  sbx_msg m;
  if (n == sizeof(sbx_trace)) {
    sbx_trace t;
    std::memcpy(&t, buf, sizeof t);
    if (t.type != SBX_MSG_TRACE || step_ != Step::kSetup || traced_ || t.count > SBX_TRACE_MAX) return Reject(EPROTO);
    trace_ = t;
    traced_ = true;
    return Event{Event::kTrace};
  }
  if (n != sizeof m) return Reject(EPROTO);
  std::memcpy(&m, buf, sizeof m);
  switch (m.type) {
    case SBX_MSG_ERROR:
      if (step_ == Step::kFailed || step_ == Step::kExecd) return Reject(EPROTO);
      step_ = Step::kFailed;
      return Event{Event::kError, m.stage, m.op, m.err};
    case SBX_MSG_SYNC:
      if (step_ != Step::kSetup || m.op < 0) return Reject(EPROTO);
      step_ = Step::kAtSync;
      point_ = m.op;
      return Event{Event::kSync, m.stage, m.op, 0};
    case SBX_MSG_READY:
      if (step_ != Step::kSetup) return Reject(EPROTO);
      step_ = Step::kCreated;
      ready_ = true;
      return Event{Event::kReady};
    default:
      return Reject(EPROTO);
  }
}

bool Protocol::Start() {
  if (step_ != Step::kCreated) return false;
  step_ = Step::kStarting;
  return true;
}

bool Protocol::Resume(int point) {
  if (step_ != Step::kAtSync || point != point_) return false;
  step_ = Step::kSetup;
  point_ = -1;
  return true;
}

void Protocol::OnEof() {
  if (step_ == Step::kStarting) step_ = Step::kExecd;
}

}  // namespace sbx
