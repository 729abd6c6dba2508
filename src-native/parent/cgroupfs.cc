// cgroupFiles(ops): a container's cgroup file work in one call (src-ts/cgroup/manager.ts). On this
// path node:fs costs about as much as the kernel does (a writeFileSync is open with O_TRUNC, a
// Buffer, write and close, each a binding call): a container with a memory + pids limit on v1
// makes three directories, writes two limits and three pids, and opens memory.oom_control.
//
// ops: a flat array of [kind, path, value] triples; kind is one of
//   'mkdir'  mkdir(path, 0755)
//   'write'  open(path, O_WRONLY | O_CLOEXEC), write(value) in one call, close
//   'open'   open(path, O_RDONLY | O_CLOEXEC): the fd is the op's result
//   'rmdir'  rmdir(path)
// Runs them in order and stops at the first failure. Returns [done, errno, ...fds]: done ops
// succeeded, errno is 0 or why op `done` failed, fds are the 'open' results (the caller owns
// them). What the failed call left undone (rollback, retries) is the caller's.
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace sbx {

namespace {

int WriteFile(const char* path, const std::string& value) {
  int fd;
  do fd = open(path, O_WRONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  ssize_t n;
  do n = write(fd, value.data(), value.size());
  while (n < 0 && errno == EINTR);
  int e = n < 0 ? errno : size_t(n) == value.size() ? 0 : EIO;
  close(fd);
  return e;
}

}  // namespace

Napi::Value CgroupFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray() || info[0].As<Napi::Array>().Length() % 3 != 0) {
    Napi::TypeError::New(env, "cgroupFiles(ops: [kind, path, value][] flattened)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array ops = info[0].As<Napi::Array>();
  uint32_t count = ops.Length() / 3;
  uint32_t done = 0;
  int err = 0;
  std::vector<int> fds;
  for (; done < count; done++) {
    Napi::Value k = ops[done * 3], p = ops[done * 3 + 1], v = ops[done * 3 + 2];
    if (!k.IsString() || !p.IsString()) {
      for (int fd : fds) close(fd);
      Napi::TypeError::New(env, "cgroupFiles: kind and path are strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string kind = k.As<Napi::String>().Utf8Value();
    std::string path = p.As<Napi::String>().Utf8Value();
    if (path.find('\0') != std::string::npos) {
      err = EINVAL;
      break;
    }
    if (kind == "mkdir") {
      if (mkdir(path.c_str(), 0755) < 0) err = errno;
    } else if (kind == "write") {
      if (!v.IsString()) {
        err = EINVAL;
        break;
      }
      err = WriteFile(path.c_str(), v.As<Napi::String>().Utf8Value());
    } else if (kind == "open") {
      int fd;
      do fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) err = errno;
      else fds.push_back(fd);
    } else if (kind == "rmdir") {
      if (rmdir(path.c_str()) < 0) err = errno;
    } else {
      err = EINVAL;
    }
    if (err != 0) break;
  }
  Napi::Array out = Napi::Array::New(env, 2 + fds.size());
  out.Set(uint32_t(0), Napi::Number::New(env, done));
  out.Set(uint32_t(1), Napi::Number::New(env, err));
  for (size_t i = 0; i < fds.size(); i++) out.Set(uint32_t(2 + i), Napi::Number::New(env, fds[i]));
  return out;
}

}  // namespace sbx
