// The child's interpreter run without root, against a recording syscall table (as youki tests its
// mount sequence): src-native/child/*.c compiled with -DSBX_SYS_RECORD call sbx_sys6 below instead
// of the kernel. It logs each call with its strings and flags, answers it (fresh fake fds, a START
// message, a file for statx), and prints the log when the child execs or exits.
//
//   recorder PLAN_FILE FDS_MASK   (FDS_MASK: which SBX_FD_* the "parent" sent in MSG_FDS)
//
// This is test code: it may allocate and print as it likes; the child code it runs may not.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "../../src-native/child/child.h"
#include "../../src-native/parent/plan.h"

namespace {

std::vector<std::string> g_log;
long g_next_fd = 10;
uint32_t g_mask = 0;
int g_sync = -1;
std::map<long, std::string> g_fd_path;  // what openat2 opened, for statx(fd, "", AT_EMPTY_PATH)

// statx of an fd the child resolved: the container's dev/null is c 1:3; these are directories.
unsigned FakeMode(const std::string& path, unsigned* major, unsigned* minor) {
  static const char* const dirs[] = {"proc/acpi", "proc/asound", "proc/scsi", "sys/firmware", "proc/bus", "proc/fs", "proc/irq", "proc/sys"};
  if (path == "dev/null") {
    *major = 1, *minor = 3;
    return S_IFCHR | 0666;
  }
  for (const char* d : dirs)
    if (path == d) return S_IFDIR | 0555;
  return S_IFREG | 0444;
}

std::string Str(long p) { return p ? std::string("\"") + reinterpret_cast<const char*>(p) + "\"" : "null"; }
std::string Hex(long v) {
  char b[32];
  snprintf(b, sizeof b, "0x%lx", v);
  return b;
}

[[noreturn]] void Finish(int code) {
  for (const auto& l : g_log) printf("%s\n", l.c_str());
  fflush(stdout);
  _exit(code);
}

long FakeFd(const std::string& line) {
  g_log.push_back(line);
  return g_next_fd++;
}

long RecvFds(long mhp) {
  auto* mh = reinterpret_cast<struct msghdr*>(mhp);
  sbx_fds_msg m{};
  m.type = SBX_MSG_FDS;
  m.mask = g_mask;
  memcpy(mh->msg_iov[0].iov_base, &m, sizeof m);
  int fds[SBX_FD_COUNT_], n = 0;
  for (int i = 0; i < SBX_FD_COUNT_; i++)
    if (g_mask & (1u << i)) fds[n++] = 100 + i;
  if (n > 0) {
    struct cmsghdr* c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    mh->msg_controllen = CMSG_SPACE(n * sizeof(int));
  }
  mh->msg_flags = 0;
  g_log.push_back("recvmsg MSG_FDS");
  return sizeof m;
}

}  // namespace

extern "C" long sbx_sys6(long n, long a, long b, long c, long d, long e, long f) {
  (void)f;
  // SBX_RECORD_ENOSYS=N: system call N is not there (an older kernel), logged as such.
  static const long enosys = getenv("SBX_RECORD_ENOSYS") ? atol(getenv("SBX_RECORD_ENOSYS")) : -1;
  if (n == enosys) {
    g_log.push_back("syscall " + std::to_string(n) + " ENOSYS");
    return -ENOSYS;
  }
  switch (n) {
    case SYS_rt_sigaction:
    case SYS_close:
    case SYS_umask:
    case SYS_rt_sigprocmask:
    case SYS_fcntl:
      return 0;  // the prelude's bookkeeping: not part of the sequence under test
    case SYS_close_range:
      return 0;
    case SYS_prctl:  // option and its first argument, and the second when there is one
      if (a == 15) {  // PR_SET_NAME: the name, not the pointer
        g_log.push_back("prctl 15 " + Str(b));
        return 0;
      }
      g_log.push_back("prctl " + std::to_string(a) + " " + std::to_string(b) + (c ? " " + std::to_string(c) : ""));
      return 0;
    case SYS_capset: {
      auto* d = reinterpret_cast<const uint32_t*>(b);  // two words per set: effective, permitted, inheritable
      g_log.push_back("capset v" + Hex(*reinterpret_cast<const uint32_t*>(a)) + " e " + Hex(long(d[3]) << 32 | d[0]) + " p " +
                      Hex(long(d[4]) << 32 | d[1]) + " i " + Hex(long(d[5]) << 32 | d[2]));
      return 0;
    }
    case SYS_recvmsg:
      return RecvFds(b);
    case SYS_write:
      if (a == g_sync) {
        uint32_t type;
        memcpy(&type, reinterpret_cast<const void*>(b), sizeof type);
        g_log.push_back(type == SBX_MSG_READY ? "send READY" : type == SBX_MSG_ERROR ? "send ERROR" : "send " + std::to_string(type));
        if (type == SBX_MSG_ERROR) {
          const sbx_msg* m = reinterpret_cast<const sbx_msg*>(b);
          g_log.push_back("  error stage " + std::to_string(m->stage) + " op " + std::to_string(m->op) + " errno " + std::to_string(m->err));
        }
        return c;
      }
      g_log.push_back("write " + std::to_string(c));
      return c;
    case SYS_read:
      if (a == g_sync) {
        sbx_msg m = {SBX_MSG_START, 0, 0, 0};
        memcpy(reinterpret_cast<void*>(b), &m, sizeof m);
        g_log.push_back("recv START");
        return sizeof m;
      }
      return 0;
    case SYS_openat:
      return FakeFd("openat " + Str(b));
    case SYS_openat2: {
      long fd = FakeFd("openat2 " + Str(b));
      g_fd_path[fd] = reinterpret_cast<const char*>(b);
      return fd;
    }
    case SYS_prlimit64: {
      const uint64_t* lim = reinterpret_cast<const uint64_t*>(c);
      g_log.push_back("prlimit64 " + std::to_string(b) + " " + std::to_string(lim[0]) + " " + std::to_string(lim[1]));
      return 0;
    }
    case SYS_fchownat:
      g_log.push_back("fchownat " + Str(b) + " " + std::to_string(c) + " " + std::to_string(d));
      return 0;
    case SYS_open_tree: {
      std::string what = Str(b);
      if (!*reinterpret_cast<const char*>(b) && g_fd_path.count(a)) what = "fd:" + g_fd_path[a];  // AT_EMPTY_PATH
      return FakeFd("open_tree " + what + " " + Hex(c & ~long(OPEN_TREE_CLOEXEC)));
    }
    case 467: {  // open_tree_attr: open_tree and the mount_attr's attr_set
      std::string what = Str(b);
      if (!*reinterpret_cast<const char*>(b) && g_fd_path.count(a)) what = "fd:" + g_fd_path[a];
      const uint64_t set = reinterpret_cast<const uint64_t*>(d)[0];
      return FakeFd("open_tree_attr " + what + " " + Hex(c & ~long(OPEN_TREE_CLOEXEC)) + " set " + Hex(long(set)));
    }
    case SYS_fsopen:
      return FakeFd("fsopen " + Str(a));
    case SYS_fsmount: {
      long fd = FakeFd("fsmount");
      g_fd_path[fd] = "fsmount";
      return fd;
    }
    case SYS_socket:
      return FakeFd("socket " + std::to_string(a));
    case SYS_fsconfig:
      g_log.push_back("fsconfig " + (b == 6 ? std::string("create") : Str(c) + (b == 1 ? " " + Str(d) : "")));
      return 0;
    case SYS_mkdirat:
      g_log.push_back("mkdirat " + Str(b));
      return 0;
    case SYS_mknodat:
      g_log.push_back("mknodat " + Str(b) + " " + Hex(c));
      return 0;
    case SYS_symlinkat:
      g_log.push_back("symlinkat " + Str(a) + " " + Str(c));
      return 0;
    case SYS_unlinkat:
      g_log.push_back("unlinkat " + Str(b));
      return 0;
    case SYS_move_mount:
      g_log.push_back("move_mount");
      return 0;
    case SYS_mount_setattr:
      g_log.push_back("mount_setattr " + Str(b));
      return 0;
    case SYS_mount:
      g_log.push_back("mount " + Str(a) + " " + Str(b) + " " + Str(c) + " " + Hex(d) + " " + Str(e));
      return 0;
    case SYS_setns:
      g_log.push_back("setns " + std::to_string(a) + " " + Hex(b));
      return 0;
    case SYS_unshare:
      g_log.push_back("unshare " + Hex(a));
      return 0;
    case SYS_ioctl:
      if (b == 0x5441) return FakeFd("ioctl " + Hex(b) + " " + Hex(c));  // TIOCGPTPEER: the slave, a new fd
      if (b == 0x5414) {  // TIOCSWINSZ: the size it sets
        const auto* ws = reinterpret_cast<const unsigned short*>(c);
        g_log.push_back("ioctl " + Hex(b) + " " + std::to_string(ws[1]) + "x" + std::to_string(ws[0]));
        return 0;
      }
      g_log.push_back("ioctl " + Hex(b) + (b == 0x40045431 ? " " + std::to_string(*reinterpret_cast<const int*>(c)) : ""));
      return 0;
    case SYS_fchown:
      g_log.push_back("fchown " + std::to_string(b) + " " + std::to_string(int(c)));
      return 0;
    case SYS_setsid:
      g_log.push_back("setsid");
      return 2;
    case SYS_dup3:
      g_log.push_back("dup3 " + std::to_string(a) + " " + std::to_string(b));
      return b;
    case SYS_sendmsg: {  // the console socket's MSG_CONSOLE: its type and the fd it carries
      auto* mh = reinterpret_cast<const struct msghdr*>(b);
      uint32_t type;
      memcpy(&type, mh->msg_iov[0].iov_base, sizeof type);
      const struct cmsghdr* cm = CMSG_FIRSTHDR(mh);
      int fd = -1;
      if (cm && cm->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(cm), sizeof fd);
      g_log.push_back("sendmsg " + std::to_string(a) + " type " + std::to_string(type) + " fd " + std::to_string(fd));
      return long(mh->msg_iov[0].iov_len);
    }
    case SYS_sethostname:
      g_log.push_back("sethostname " + Str(a));
      return 0;
    case SYS_fchdir:
      g_log.push_back("fchdir");
      return 0;
    case SYS_chdir:
      g_log.push_back("chdir " + Str(a));
      return 0;
    case SYS_chroot:
      g_log.push_back("chroot " + Str(a));
      return 0;
    case SYS_pivot_root:
      g_log.push_back("pivot_root " + Str(a) + " " + Str(b));
      return 0;
    case SYS_umount2:
      g_log.push_back("umount2 " + Str(a) + " " + std::to_string(b));
      return 0;
    case SYS_setgroups:
      g_log.push_back("setgroups " + std::to_string(a));
      return 0;
    case SYS_setresgid:
      g_log.push_back("setresgid " + std::to_string(a));
      return 0;
    case SYS_setresuid:
      g_log.push_back("setresuid " + std::to_string(a));
      return 0;
    case SYS_statx: {
      auto* sx = reinterpret_cast<struct statx*>(e);
      memset(sx, 0, sizeof *sx);
      sx->stx_mode = S_IFREG | 0755;
      if ((c & AT_EMPTY_PATH) && g_fd_path.count(a)) {
        sx->stx_mode = FakeMode(g_fd_path[a], &sx->stx_rdev_major, &sx->stx_rdev_minor);
        g_log.push_back("statx fd:" + g_fd_path[a]);
        return 0;
      }
      g_log.push_back("statx " + Str(b));
      return 0;
    }
    case SYS_faccessat2:
      return 0;
    case SYS_seccomp: {
      auto* prog = reinterpret_cast<const struct sock_fprog*>(c);
      g_log.push_back("seccomp " + std::to_string(a) + " " + Hex(b) + " " + std::to_string(prog->len));
      return 0;
    }
    case SYS_execve: {
      std::string argv = "argv";  // logged before the execve, which ends the log
      for (char* const* v = reinterpret_cast<char* const*>(b); *v; v++) argv += " " + Str(long(*v));
      g_log.push_back(argv);
      g_log.push_back("execve " + Str(a));
    }
      Finish(0);
    case SYS_exit_group:
      g_log.push_back("exit_group " + std::to_string(a));
      Finish(int(a));
    default:
      g_log.push_back("syscall " + std::to_string(n));
      return 0;
  }
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: recorder PLAN_FILE FDS_MASK\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  g_mask = uint32_t(strtoul(argv[2], nullptr, 0));
  sbx::Plan plan;
  std::string why = sbx::PreparePlan(buf.data(), buf.size(), &plan);
  if (!why.empty()) {
    fprintf(stderr, "invalid plan: %s\n", why.c_str());
    return 2;
  }
  sbx_child_args args{};
  args.hdr = plan.hdr;
  args.ops = plan.ops;
  args.strtab = plan.strtab;
  args.argv = plan.argv.data();
  args.envp = plan.envp.data();
  args.groups = plan.groups.data();
  args.n_groups = uint32_t(plan.groups.size());
  args.sync_fd = g_sync = 3;
  args.fd_limit = 0;
  sbx_child_main(&args);
  g_log.push_back("returned");
  Finish(3);
}
