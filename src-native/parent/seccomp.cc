// Compiles a flattened OCI seccomp profile with libseccomp (linked statically, see binding.gyp)
// and exports the BPF through a memfd: libseccomp 2.5.4 has seccomp_export_bpf(fd) only, the
// in-memory export came with 2.6.
//
// Syscalls newer than the profile get ENOSYS instead of the default action, so that libc falls
// back to an older call (clone3 -> clone, faccessat2 -> faccessat) rather than fail on EPERM. As
// in runc, "newer" is per architecture: a number above the highest one the profile names. The
// check is a short prefix put in front of libseccomp's program (PrefixEnosys): libseccomp can
// express neither a number range nor a per-syscall fallback, and the alternative (ENOSYS as the
// default action plus an explicit rule for every other known syscall) loses the profile's
// default for calls that match none of a syscall's conditional rules (personality(0x400000)
// would become ENOSYS, not EPERM), because libseccomp lets an unconditional rule override them.
#include "seccomp.h"

#include "fd.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif

namespace sbx {
namespace {

constexpr uint32_t kX32Bit = 0x40000000;  // __X32_SYSCALL_BIT
constexpr uint32_t kX32FirstLegacy = 512;  // x32's own numbers (512..547) sit above the shared ones

struct Failure {
  int err = 0;
  std::string message;
  std::string field;  // the profile field at fault, e.g. "syscalls[3]"; empty for the whole
};

bool Fail(Failure& f, int err, const std::string& message, const std::string& field = "") {
  f = {err, message, field};
  return false;
}

std::string Errno(const char* call, int err) { return std::string(call) + ": " + strerror(err); }

struct Arg {
  unsigned index;
  scmp_compare op;
  uint64_t value, value_two;
};

struct Rule {
  std::vector<std::string> names;
  uint32_t action;
  std::vector<Arg> args;
};

struct Profile {
  uint32_t default_action;
  std::vector<uint32_t> arches;  // libseccomp tokens, beyond the native one
  std::vector<std::string> arch_names;  // as given ('SCMP_ARCH_X86'), same order
  unsigned flags = 0;            // SECCOMP_FILTER_FLAG_* for seccomp(2)
  std::vector<Rule> rules;
  bool enosys = false;
};

// Reads the JS object; on a shape error fills `f` and returns false. The TS side validated the
// profile, so a failure here is a bug in the flattening, reported with the field's name.
class Reader {
 public:
  explicit Reader(Failure& f) : f_(f) {}

  bool Fail(const std::string& what, int err = EINVAL) {
    if (f_.err == 0) f_ = {err, what, field_};
    return false;
  }

  bool String(const Napi::Value& v, const char* what, std::string& out) {
    if (!v.IsString()) return Fail(std::string(what) + " must be a string");
    out = v.As<Napi::String>().Utf8Value();
    return true;
  }

  bool Uint(const Napi::Value& v, const char* what, uint64_t max, uint64_t& out) {
    if (!v.IsNumber()) return Fail(std::string(what) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<uint64_t>(d)))
      return Fail(std::string(what) + " out of range");
    out = static_cast<uint64_t>(d);
    return true;
  }

  bool Array(const Napi::Value& v, const char* what, Napi::Array& out) {
    if (!v.IsArray()) return Fail(std::string(what) + " must be an array");
    out = v.As<Napi::Array>();
    return true;
  }

  bool Action(const std::string& name, uint64_t err, uint32_t& out) {
    if (name == "SCMP_ACT_ALLOW") out = SCMP_ACT_ALLOW;
    else if (name == "SCMP_ACT_ERRNO") out = SCMP_ACT_ERRNO(err);
    else if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") out = SCMP_ACT_KILL_THREAD;
    else if (name == "SCMP_ACT_KILL_PROCESS") out = SCMP_ACT_KILL_PROCESS;
    else if (name == "SCMP_ACT_TRAP") out = SCMP_ACT_TRAP;
    else if (name == "SCMP_ACT_TRACE") out = SCMP_ACT_TRACE(err);
    else if (name == "SCMP_ACT_LOG") out = SCMP_ACT_LOG;
    else if (name == "SCMP_ACT_NOTIFY") return Fail("SCMP_ACT_NOTIFY needs a listener", ENOTSUP);
    else return Fail("unknown action " + name);
    return true;
  }

  bool Op(const std::string& name, scmp_compare& out) {
    static const struct { const char* name; scmp_compare op; } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
    for (const auto& o : ops)
      if (name == o.name) {
        out = o.op;
        return true;
      }
    return Fail("unknown operator " + name);
  }

  // 'SCMP_ARCH_X86_64' -> libseccomp's 'x86_64' -> its token.
  bool Arch(const std::string& name, uint32_t& out) {
    const std::string prefix = "SCMP_ARCH_";
    if (name.compare(0, prefix.size(), prefix) != 0) return Fail("unknown architecture " + name);
    std::string lower = name.substr(prefix.size());
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    out = seccomp_arch_resolve_name(lower.c_str());
    if (out == 0) return Fail("architecture " + name + " is not known to libseccomp " + Version(), ENOTSUP);
    return true;
  }

  bool Flag(const std::string& name, unsigned& flags) {
    if (name == "SECCOMP_FILTER_FLAG_LOG") flags |= SECCOMP_FILTER_FLAG_LOG;
    else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    else return Fail("unsupported flag " + name, ENOTSUP);
    return true;
  }

  bool ReadArg(const Napi::Value& v, Arg& a) {
    Napi::Array t;
    if (!Array(v, "rule argument", t) || t.Length() != 6) return Fail("rule argument must be [index, op, lo, hi, lo2, hi2]");
    uint64_t index, lo, hi, lo2, hi2;
    std::string op;
    if (!Uint(t.Get(0u), "argument index", 5, index) || !String(t.Get(1u), "argument op", op) || !Op(op, a.op) ||
        !Uint(t.Get(2u), "value", UINT32_MAX, lo) || !Uint(t.Get(3u), "value", UINT32_MAX, hi) ||
        !Uint(t.Get(4u), "valueTwo", UINT32_MAX, lo2) || !Uint(t.Get(5u), "valueTwo", UINT32_MAX, hi2))
      return false;
    a.index = static_cast<unsigned>(index);
    a.value = hi << 32 | lo;
    a.value_two = hi2 << 32 | lo2;
    return true;
  }

  bool ReadRule(const Napi::Value& v, Rule& r) {
    if (!v.IsObject()) return Fail("rule must be an object");
    Napi::Object o = v.As<Napi::Object>();
    Napi::Array names, args;
    std::string action;
    uint64_t err;
    if (!Array(o.Get("names"), "names", names) || !String(o.Get("action"), "action", action) ||
        !Uint(o.Get("errno"), "errno", 0xffff, err) || !Action(action, err, r.action) || !Array(o.Get("args"), "args", args))
      return false;
    r.names.resize(names.Length());
    for (uint32_t i = 0; i < names.Length(); i++)
      if (!String(names.Get(i), "syscall name", r.names[i])) return false;
    r.args.resize(args.Length());
    for (uint32_t i = 0; i < args.Length(); i++)
      if (!ReadArg(args.Get(i), r.args[i])) return false;
    return true;
  }

  bool Read(const Napi::Value& v, Profile& p) {
    if (!v.IsObject()) return Fail("the profile must be an object");
    Napi::Object o = v.As<Napi::Object>();
    std::string action, s;
    uint64_t err;
    Napi::Array arches, flags, rules;
    if (!String(o.Get("defaultAction"), "defaultAction", action) || !Uint(o.Get("defaultErrno"), "defaultErrno", 0xffff, err) ||
        !Action(action, err, p.default_action) || !Array(o.Get("arches"), "arches", arches) ||
        !Array(o.Get("flags"), "flags", flags) || !Array(o.Get("rules"), "rules", rules))
      return false;
    Napi::Value enosys = o.Get("enosys");
    if (!enosys.IsBoolean()) return Fail("enosys must be a boolean");
    p.enosys = enosys.As<Napi::Boolean>().Value();
    p.arches.resize(arches.Length());
    p.arch_names.resize(arches.Length());
    for (uint32_t i = 0; i < arches.Length(); i++) {
      field_ = "architectures[" + std::to_string(i) + "]";
      if (!String(arches.Get(i), "architecture", p.arch_names[i]) || !Arch(p.arch_names[i], p.arches[i])) return false;
    }
    for (uint32_t i = 0; i < flags.Length(); i++) {
      field_ = "flags[" + std::to_string(i) + "]";
      if (!String(flags.Get(i), "flag", s) || !Flag(s, p.flags)) return false;
    }
    p.rules.resize(rules.Length());
    for (uint32_t i = 0; i < rules.Length(); i++) {
      field_ = "syscalls[" + std::to_string(i) + "]";
      if (!ReadRule(rules.Get(i), p.rules[i])) return false;
    }
    field_.clear();
    return true;
  }

  static std::string Version() {
    const scmp_version* v = seccomp_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro);
  }

 private:
  Failure& f_;
  std::string field_;
};

struct CtxRelease {
  void operator()(void* c) const { seccomp_release(c); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

// The highest syscall number a profile names on one kernel architecture (AUDIT_ARCH_*). On
// x86_64 the x32 ABI shares the audit arch and sets bit 30 in the number, so it has its own
// maximum over the numbers it shares with x86_64 (below 512).
struct ArchMax {
  uint32_t audit;
  int64_t max = -1, x32_max = -1;
  bool x86_64 = false, x32 = false;
};

std::vector<ArchMax> HighestNamed(const Profile& p, const std::vector<uint32_t>& arches) {
  std::vector<ArchMax> out;
  for (uint32_t arch : arches) {
    bool x32 = arch == SCMP_ARCH_X32;
    uint32_t audit = x32 ? AUDIT_ARCH_X86_64 : arch;
    ArchMax* m = nullptr;
    for (auto& e : out)
      if (e.audit == audit) m = &e;
    if (!m) m = &out.emplace_back(ArchMax{audit});
    (x32 ? m->x32 : m->x86_64) = true;
    for (const Rule& r : p.rules)
      for (const std::string& name : r.names) {
        int nr = seccomp_syscall_resolve_name_arch(arch, name.c_str());
        if (nr < 0) continue;
        if (x32) {
          int64_t low = static_cast<uint32_t>(nr) & ~kX32Bit;
          if (low < kX32FirstLegacy && low > m->x32_max) m->x32_max = low;
        } else if (nr > m->max) {
          m->max = nr;
        }
      }
  }
  return out;
}

// A forward-only BPF assembler for the prefix: jumps name labels, resolved at the end.
class Asm {
 public:
  enum Label : int { kNext = -1 };
  int NewLabel() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(ins_.size()); }
  void Stmt(uint16_t code, uint32_t k) { ins_.push_back({code, kNext, kNext, k}); }
  void Jump(uint16_t op, uint32_t k, int jt, int jf) { ins_.push_back({static_cast<uint16_t>(BPF_JMP | op | BPF_K), jt, jf, k}); }
  void Goto(int label) { ins_.push_back({BPF_JMP | BPF_JA, label, kNext, 0}); }

  // Resolves the labels; false if a conditional jump is out of reach (cannot happen with the
  // few instructions the prefix has, checked anyway).
  bool Emit(std::vector<sock_filter>& out) const {
    for (size_t i = 0; i < ins_.size(); i++) {
      const I& x = ins_[i];
      auto offset = [&](int label) -> long {
        return label == kNext ? 0 : static_cast<long>(labels_[label]) - static_cast<long>(i) - 1;
      };
      sock_filter f{x.code, 0, 0, x.k};
      if (x.code == (BPF_JMP | BPF_JA)) {
        f.k = static_cast<uint32_t>(offset(x.jt));
      } else if (BPF_CLASS(x.code) == BPF_JMP) {
        long jt = offset(x.jt), jf = offset(x.jf);
        if (jt < 0 || jt > 255 || jf < 0 || jf > 255) return false;
        f.jt = static_cast<uint8_t>(jt);
        f.jf = static_cast<uint8_t>(jf);
      }
      out.push_back(f);
    }
    return true;
  }

 private:
  struct I {
    uint16_t code;
    int jt, jf;
    uint32_t k;
  };
  std::vector<I> ins_;
  std::vector<int> labels_;
};

// Puts "syscall number above the profile's highest on this arch -> ERRNO(ENOSYS)" in front of
// libseccomp's program. Everything else (other numbers, other arches) falls through to it.
bool PrefixEnosys(const std::vector<ArchMax>& maxes, std::vector<sock_filter>& prog) {
  Asm a;
  int enosys = a.NewLabel(), program = a.NewLabel();
  std::vector<int> blocks;
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  for (const ArchMax& m : maxes) {
    blocks.push_back(a.NewLabel());
    a.Jump(BPF_JEQ, m.audit, blocks.back(), Asm::kNext);
  }
  a.Goto(program);
  for (size_t i = 0; i < maxes.size(); i++) {
    const ArchMax& m = maxes[i];
    a.Bind(blocks[i]);
    a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
    if (m.audit != AUDIT_ARCH_X86_64) {
      // s390 multiplexes numbers it cannot encode through 0 (setup(2), long gone): a number the
      // kernel does not know arrives as 0, and would get the default action.
      if (m.audit == AUDIT_ARCH_S390 || m.audit == AUDIT_ARCH_S390X) a.Jump(BPF_JEQ, 0, enosys, Asm::kNext);
      a.Jump(BPF_JGT, static_cast<uint32_t>(m.max), enosys, program);
      continue;
    }
    int x32 = a.NewLabel();
    a.Jump(BPF_JGE, kX32Bit, x32, Asm::kNext);
    if (m.x86_64 && m.max >= 0) a.Jump(BPF_JGT, static_cast<uint32_t>(m.max), enosys, program);
    else a.Goto(program);
    a.Bind(x32);
    if (m.x32 && m.x32_max >= 0) {
      a.Jump(BPF_JGT, kX32Bit | static_cast<uint32_t>(m.x32_max), Asm::kNext, program);
      a.Jump(BPF_JGE, kX32Bit | kX32FirstLegacy, program, enosys);
    } else {
      a.Goto(program);
    }
  }
  a.Bind(enosys);
  a.Stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  a.Bind(program);
  std::vector<sock_filter> out;
  if (!a.Emit(out)) return false;
  out.insert(out.end(), prog.begin(), prog.end());
  prog.swap(out);
  return true;
}

bool ExportBpf(void* ctx, std::vector<sock_filter>& prog, Failure& f) {
  Fd fd(memfd_create("scratchbox-seccomp", MFD_CLOEXEC));
  if (fd.fd < 0) {
    int e = errno;
    return Fail(f, e, Errno("memfd_create", e));
  }
  int rc = seccomp_export_bpf(ctx, fd.fd);
  if (rc < 0) return Fail(f, -rc, Errno("seccomp_export_bpf", -rc));
  struct stat st;
  if (fstat(fd.fd, &st) < 0) {
    int e = errno;
    return Fail(f, e, Errno("fstat", e));
  }
  if (st.st_size % sizeof(sock_filter) != 0) return Fail(f, EPROTO, "libseccomp exported a partial program");
  prog.resize(st.st_size / sizeof(sock_filter));
  size_t want = prog.size() * sizeof(sock_filter);
  ssize_t n = pread(fd.fd, prog.data(), want, 0);
  if (n < 0 || static_cast<size_t>(n) != want) return Fail(f, n < 0 ? errno : EIO, "reading the exported program");
  return true;
}

struct Output {
  std::vector<sock_filter> prog;
  std::vector<std::string> unknown;         // syscall names libseccomp does not know
  std::vector<std::string> skipped_arches;  // of the other byte order than the native one
};

bool Compile(const Profile& p, Output& out, Failure& f) {
  Ctx ctx(seccomp_init(p.default_action));
  if (!ctx) return Fail(f, EINVAL, "seccomp_init failed");
  // A binary tree of syscall numbers: a profile of 300+ names stays a few hundred instructions.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0) return Fail(f, -rc, "seccomp_attr_set(OPTIMIZE)");
  std::vector<uint32_t> arches{seccomp_arch_native()};
  for (size_t i = 0; i < p.arches.size(); i++) {
    rc = seccomp_arch_add(ctx.get(), p.arches[i]);
    if (rc == -EEXIST) continue;
    // One filter holds one byte order (EDOM): the kernel of this host never reports the other,
    // so a profile written for several hosts keeps working here without them.
    if (rc == -EDOM) {
      out.skipped_arches.push_back(p.arch_names[i]);
      continue;
    }
    if (rc < 0) return Fail(f, -rc, Errno("seccomp_arch_add", -rc), "architectures[" + std::to_string(i) + "]");
    arches.push_back(p.arches[i]);
  }
  for (size_t i = 0; i < p.rules.size(); i++) {
    const Rule& r = p.rules[i];
    std::vector<scmp_arg_cmp> cmp;
    for (const Arg& a : r.args) cmp.push_back({a.index, a.op, a.value, a.value_two});
    for (const std::string& name : r.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        out.unknown.push_back(name);
        continue;
      }
      // libseccomp refuses a rule that repeats the default action (EACCES): it is a no-op.
      if (r.action == p.default_action) continue;
      rc = seccomp_rule_add_array(ctx.get(), r.action, nr, static_cast<unsigned>(cmp.size()), cmp.data());
      if (rc < 0)
        return Fail(f, -rc, Errno(("seccomp_rule_add(" + name + ")").c_str(), -rc), "syscalls[" + std::to_string(i) + "]");
    }
  }
  std::vector<sock_filter>& prog = out.prog;
  if (!ExportBpf(ctx.get(), prog, f)) return false;
  if (p.enosys) {
    std::vector<ArchMax> maxes = HighestNamed(p, arches);
    bool any = false;
    for (const ArchMax& m : maxes) any = any || m.max >= 0 || m.x32_max >= 0;
    if (any && !PrefixEnosys(maxes, prog)) return Fail(f, E2BIG, "ENOSYS prefix out of jump range");
  }
  if (prog.size() > BPF_MAXINSNS)
    return Fail(f, E2BIG, "the filter has " + std::to_string(prog.size()) + " instructions, the kernel takes " +
                           std::to_string(BPF_MAXINSNS));
  return true;
}

}  // namespace

Napi::Value CompileSeccomp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Failure f;
  Profile p;
  Output o;
  if (Reader(f).Read(info[0], p)) Compile(p, o, f);
  if (env.IsExceptionPending()) return env.Undefined();
  if (f.err != 0) {
    Napi::Error e = Napi::Error::New(env, f.message);
    e.Set("errno", Napi::Number::New(env, f.err));
    if (!f.field.empty()) e.Set("field", Napi::String::New(env, f.field));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  size_t bytes = o.prog.size() * sizeof(sock_filter);
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, bytes);
  memcpy(buf.Data(), o.prog.data(), bytes);
  out.Set("bpf", Napi::Uint8Array::New(env, bytes, buf, 0));
  out.Set("flags", Napi::Number::New(env, p.flags));
  auto strings = [&](const std::vector<std::string>& v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (uint32_t i = 0; i < v.size(); i++) a.Set(i, Napi::String::New(env, v[i]));
    return a;
  };
  out.Set("unknown", strings(o.unknown));
  out.Set("skippedArches", strings(o.skipped_arches));
  out.Set("version", Napi::String::New(env, Reader::Version()));
  return out;
}

}  // namespace sbx
