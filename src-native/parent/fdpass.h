// Fds across a socket (SCM_RIGHTS), for every parent-side channel: MSG_FDS to a child, and both
// directions between the main fd table and the helper thread's. (The child has its own reader,
// child/sync.c: it may not call libc.)
#ifndef SBX_FDPASS_H
#define SBX_FDPASS_H

#include <cstddef>

namespace sbx {

constexpr int kMaxPassedFds = 40;  // MSG_FDS: SBX_FD_COUNT_ and a pooled root (2 + SBX_PREFIX_MAX_SLOTS)

// One datagram of `len` bytes with up to kMaxPassedFds fds. 0 or -errno.
int SendFds(int sock, const void* data, size_t len, const int* fds, int n);

// One datagram of exactly `len` bytes (else -EPROTO); its fds (CLOEXEC) go to fds[0..max), any
// beyond are closed. Returns how many fds, or -errno. `flags`: recvmsg flags (MSG_DONTWAIT).
int RecvFds(int sock, void* data, size_t len, int* fds, int max, int flags);

}  // namespace sbx

#endif
