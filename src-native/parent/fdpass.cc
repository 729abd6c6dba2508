#include "fdpass.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sbx {

namespace {
union Control {
  char buf[CMSG_SPACE(kMaxPassedFds * sizeof(int))];
  struct cmsghdr align;
};
}  // namespace

int SendFds(int sock, const void* data, size_t len, const int* fds, int n) {
  if (n < 0 || n > kMaxPassedFds) return -EINVAL;
  struct iovec iov = {const_cast<void*>(data), len};
  Control u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (n > 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  }
  ssize_t r;
  do r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int RecvFds(int sock, void* data, size_t len, int* fds, int max, int flags) {
  struct iovec iov = {data, len};
  Control u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t r;
  do r = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  int n = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = int((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (n < max) fds[n++] = fd;
      else close(fd);
    }
  }
  if (size_t(r) != len) {
    for (int i = 0; i < n; i++) close(fds[i]);
    return -EPROTO;
  }
  return n;
}

}  // namespace sbx
