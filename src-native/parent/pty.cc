// The parent's side of a TTY_OPEN op (docs/tty.md): the console socket the child sends the pty
// master over, taking the master from it, and the window size. Exported as the addon's `pty`:
//
//   pty.consoleSocket()          [parentEnd, childEnd]: socketpair(AF_UNIX, SOCK_SEQPACKET), CLOEXEC
//   pty.takeConsole(parentEnd)   the master (CLOEXEC), or -errno: -EAGAIN when nothing was sent
//                                yet, -EPROTO when what came was not one MSG_CONSOLE with one fd
//   pty.resize(master, cols, rows)  TIOCSWINSZ: 0 or -errno (the kernel sends SIGWINCH to the
//                                   terminal's foreground process group)
//
// The child's end goes to the child as a plan fd (MSG_FDS) and is closed here once new Child()
// returns. runc's --console-socket fits the same op: the socket is then the caller's.
#include <napi.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../wire/wire.h"
#include "fdpass.h"

namespace sbx {

namespace {

Napi::Value ConsoleSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    Napi::Error e = Napi::Error::New(env, std::string("socketpair: ") + strerror(errno));
    e.Set("errno", Napi::Number::New(env, errno));
    e.Set("syscall", Napi::String::New(env, "socketpair"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(uint32_t(0), Napi::Number::New(env, sv[0]));
  a.Set(uint32_t(1), Napi::Number::New(env, sv[1]));
  return a;
}

Napi::Value TakeConsole(const Napi::CallbackInfo& info) {
  int sock = info[0].As<Napi::Number>().Int32Value();
  sbx_msg m{};
  int fd = -1;
  int n = RecvFds(sock, &m, sizeof m, &fd, 1, MSG_DONTWAIT);
  if (n >= 0 && (n != 1 || m.type != SBX_MSG_CONSOLE)) {
    if (n == 1) close(fd);
    n = -EPROTO;
  }
  return Napi::Number::New(info.Env(), n < 0 ? n : fd);
}

Napi::Value Resize(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct winsize ws = {};
  ws.ws_col = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  ws.ws_row = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0);
}

}  // namespace

Napi::Object PtyFunctions(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("consoleSocket", Napi::Function::New(env, ConsoleSocket));
  o.Set("takeConsole", Napi::Function::New(env, TakeConsole));
  o.Set("resize", Napi::Function::New(env, Resize));
  return o;
}

}  // namespace sbx
