// An owned file descriptor: closed on scope exit unless released (RAII on every error path).
#ifndef SBX_FD_H
#define SBX_FD_H

#include <unistd.h>

namespace sbx {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) close(fd);
    fd = f;
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

}  // namespace sbx

#endif
