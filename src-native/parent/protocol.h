// The parent's half of the handshake with a child (docs/protocol.md): a state machine over named
// steps. Each message the child sends is checked against the step the child is at; one that is
// unexpected or repeated is a broken child (the caller kills it).
//
//   kSetup ──TRACE (once)──► kSetup
//   kSetup ──SYNC p──► kAtSync(p) ──Resume(p)──► kSetup
//   kSetup ──READY──► kCreated ──Start()──► kStarting ──EOF──► kExecd
//   any but kFailed ──ERROR──► kFailed;  EOF anywhere else: the child died (see Child)
#ifndef SBX_PROTOCOL_H
#define SBX_PROTOCOL_H

#include <sys/types.h>

#include "../wire/wire.h"

namespace sbx {

class Protocol {
 public:
  enum class Step { kSetup, kAtSync, kCreated, kStarting, kExecd, kFailed };

  // What a message means for the caller.
  struct Event {
    enum Kind { kTrace, kSync, kReady, kError, kReject } kind;
    int stage = 0, op = 0, err = 0;  // kError; kSync: op = the point; kReject: err
  };

  // One datagram of n bytes from the child.
  Event OnMessage(const void* buf, ssize_t n);
  // MSG_START may be sent now (and is: the step moves on).
  bool Start();
  // MSG_RESUME for `point` may be sent now (and is).
  bool Resume(int point);
  // The child's end closed (it exec'd or exited).
  void OnEof();

  Step step() const { return step_; }
  bool ready() const { return ready_; }
  const sbx_trace& trace() const { return trace_; }

 private:
  Event Reject(int err) { return Event{Event::kReject, 0, 0, err}; }
  Step step_ = Step::kSetup;
  int point_ = -1;
  bool ready_ = false, traced_ = false;
  sbx_trace trace_{};
};

}  // namespace sbx

#endif
