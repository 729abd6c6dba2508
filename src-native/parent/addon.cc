// The N-API module: the Child class (process.h), the wire constants and op table for the
// TypeScript side to check itself against (test/unit/wire.test.ts), configure(), mountMode().
#include <dlfcn.h>
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "../wire/wire.h"
#include "base_mntns.h"
#include "devices_bpf.h"
#include "exec.h"
#include "netns_pool.h"
#include "process.h"
#include "root_pool.h"
#include "seccomp.h"
#include "settings.h"

namespace sbx {

Napi::Value OpenInRoot(const Napi::CallbackInfo& info);  // inroot.cc
Napi::Value CgroupFiles(const Napi::CallbackInfo& info);  // cgroupfs.cc
Napi::Object PtyFunctions(Napi::Env env);                 // pty.cc

Settings& settings() {
  static Settings* s = new Settings;
  return *s;
}

namespace {

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  set("WIRE_MAGIC", SBX_WIRE_MAGIC);
  set("WIRE_VERSION", SBX_WIRE_VERSION);
  set("HEADER_SIZE", sizeof(sbx_header));
  set("OP_SIZE", sizeof(sbx_op));
  set("MSG_SIZE", sizeof(sbx_msg));
#define K(x) set(#x, SBX_##x)
  K(MAX_SLOTS);
  K(STAGE_PREPARE); K(STAGE_ROOTFS); K(STAGE_MOUNT); K(STAGE_DEVICE); K(STAGE_FILE); K(STAGE_NETWORK);
  K(STAGE_HOSTNAME); K(STAGE_PIVOT); K(STAGE_USER); K(STAGE_CWD); K(STAGE_SYNC); K(STAGE_EXEC); K(STAGE_SECURITY);
  K(F_PREMOUNTED); K(F_MKFILE); K(F_BIND_FALLBACK); K(F_IGNORE_MISSING); K(F_USERXATTR); K(F_EXISTING); K(H_DETACHED); K(H_TRACE);
  K(FD_POOLED_NETNS); K(FD_POOLED_SYSFS); K(FD_BASE_MNTNS); K(FD_SHARED_NETNS); K(FD_POOLED_IPCNS); K(FD_POOLED_MQUEUE); K(FD_PLAN0); K(FD_COUNT_);
#undef K
  set("EV_READY", kEvReady);
  set("EV_ERROR", kEvError);
  set("EV_EOF", kEvEof);
  set("EV_EXIT", kEvExit);
  set("EV_SYNC", kEvSync);
  set("STDIO_INHERIT", kStdioInherit);
  set("STDIO_PIPE", kStdioPipe);
  set("STDIO_IGNORE", kStdioIgnore);
  return c;
}

// The op table (wire/ops.h) as [{ code, name, stage, required, optional }].
Napi::Array OpTable(Napi::Env env) {
  Napi::Array a = Napi::Array::New(env);
  uint32_t i = 0;
#define SBX_OP_ROW(NAME, num, name, stage, req, opt, handler)  \
  {                                                              \
    Napi::Object row = Napi::Object::New(env);                   \
    row.Set("code", Napi::Number::New(env, num));                \
    row.Set("name", Napi::String::New(env, name));               \
    row.Set("stage", Napi::Number::New(env, SBX_STAGE_##stage)); \
    row.Set("required", Napi::Number::New(env, req));            \
    row.Set("optional", Napi::Number::New(env, opt));            \
    a.Set(i++, row);                                             \
  }
  SBX_OPS(SBX_OP_ROW)
#undef SBX_OP_ROW
  return a;
}

// configure({ netnsPool?, baseMountNamespace? }): before the first container (later: throws).
Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "configure({ netnsPool?: number, baseMountNamespace?: boolean })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (settings().frozen) {
    // configure(settings, true): the defaults from the environment, which each module instance
    // (a worker thread's too) applies when it loads the addon; once a container exists the first
    // instance's stand, and this is no error.
    if (info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value()) return env.Undefined();
    Napi::Error::New(env, "configure() must come before the first container").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  if (o.Has("netnsPool")) {
    int64_t n = o.Get("netnsPool").As<Napi::Number>().Int64Value();
    settings().netns_pool = settings().netns_pool_max = size_t(n < 0 ? 0 : n > 64 ? 64 : n);
  }
  if (o.Has("baseMountNamespace")) settings().base_mntns = o.Get("baseMountNamespace").ToBoolean();
  return env.Undefined();
}

// A pool's counters as a plain object (tests, benches).
Napi::Object CountsObject(Napi::Env env, std::initializer_list<std::pair<const char*, uint64_t>> counts) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, n] : counts) o.Set(name, Napi::Number::New(env, double(n)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Threads of this library (the helper thread, the spawner) run its code until the process ends,
  // but Node unloads an addon when the last environment that loaded it ends (a worker thread's):
  // pin it.
  static bool pinned = false;
  Dl_info self;
  if (!pinned && dladdr(reinterpret_cast<void*>(&Configure), &self) && self.dli_fname)
    pinned = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
  exports.Set("Child", Child::Init(env));
  exports.Set("constants", Constants(env));
  exports.Set("opTable", OpTable(env));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("compileSeccomp", Napi::Function::New(env, CompileSeccomp));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilter));
  exports.Set("openInRoot", Napi::Function::New(env, OpenInRoot));
  exports.Set("cgroupFiles", Napi::Function::New(env, CgroupFiles));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen));
  exports.Set("dumpable", Napi::Function::New(env, Dumpable));
  exports.Set("pty", PtyFunctions(env));
  // 'base' when containers get a copy of the base mount namespace (and chroot), 'host' when a copy
  // of the host's (and pivot_root). Makes the base namespace if not made yet.
  exports.Set("mountMode", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::String::New(info.Env(), BaseMntns() >= 0 ? "base" : "host");
              }));
  // Pooled roots (root_pool.h): build the root of these plan bytes ahead; and the counts.
  exports.Set("prepareRoot", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                if (info.Length() > 0 && info[0].IsBuffer()) {
                  auto b = info[0].As<Napi::Buffer<uint8_t>>();
                  RootPool::Get().Prepare(b.Data(), b.Length());
                }
                return info.Env().Undefined();
              }));
  exports.Set("expireRoots", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::Boolean::New(info.Env(), RootPool::Get().Expire());
              }));
  exports.Set("rootPool", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                RootPool::Counts c = RootPool::Get().counts();
                return CountsObject(info.Env(), {{"built", c.built}, {"taken", c.taken}, {"dropped", c.dropped}, {"skipped", c.skipped}});
              }));
  exports.Set("netnsPool", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                NetnsPool::Counts c = NetnsPool::Get().counts();
                return CountsObject(info.Env(), {{"taken", c.taken}, {"missed", c.missed}, {"target", c.target}});
              }));
  return exports;
}

}  // namespace

}  // namespace sbx

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return sbx::Init(env, exports); }

NODE_API_MODULE(scratchbox, InitModule)
