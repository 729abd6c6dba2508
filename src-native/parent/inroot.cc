// openInRoot(dirfd, path, flags, mode): openat2 with RESOLVE_IN_ROOT, for the host-side file access
// to a live container's root (src-ts/container/files.ts; dirfd is /proc/PID/root, opened O_PATH).
// Node has no openat2; everything else is done with node:fs on the fd this returns.
#include <fcntl.h>
#include <linux/openat2.h>
#include <napi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sbx {

// Returns the fd (always O_CLOEXEC) or -errno. Symlinks, absolute ones included, and `..` resolve
// as if dirfd were "/", so no path leads out of it; magic links (/proc/PID/fd/N, /proc/PID/root)
// are refused (ELOOP): they would jump to wherever they point.
Napi::Value OpenInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "openInRoot(dirfd: number, path: string, flags: number, mode: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[1].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) return Napi::Number::New(env, -EINVAL);
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = uint64_t(uint32_t(info[2].As<Napi::Number>().Int32Value())) | O_CLOEXEC;
  how.mode = (how.flags & (O_CREAT | O_TMPFILE)) ? uint64_t(info[3].As<Napi::Number>().Uint32Value() & 07777) : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  do fd = syscall(SYS_openat2, info[0].As<Napi::Number>().Int32Value(), path.c_str(), &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  return Napi::Number::New(env, fd < 0 ? -errno : int(fd));
}

}  // namespace sbx
