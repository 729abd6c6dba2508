#include "plan.h"

#include <linux/sched.h>

#include <cstring>

namespace sbx {

namespace {

// Which strings an op kind carries (bit i: s[i]), from the op table.
struct Shape {
  uint8_t required;  // s[i] must be a valid string
  uint8_t optional;  // s[i] may be a string or SBX_NO_STRING
};

Shape ShapeOf(uint16_t kind) {
  switch (kind) {
#define SBX_OP_SHAPE(NAME, num, name, stage, req, opt, handler) \
  case SBX_OP_##NAME:                                            \
    return {req, opt};
    SBX_OPS(SBX_OP_SHAPE)
#undef SBX_OP_SHAPE
    default:
      return {0xff, 0};
  }
}

constexpr uint64_t kNamespaces =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWUSER;

bool OneNamespace(uint64_t t) { return t && !(t & (t - 1)) && (t & (kNamespaces | CLONE_NEWPID | CLONE_NEWTIME)); }

// A file op in the detached root: MKDIR, WRITE_FILE (not F_EXISTING: a container's own content),
// SYMLINK, CHOWN, or MKNOD (never its bind fallback, which opens a host node: a user namespace,
// where nothing is pooled).
bool DetachedFileOp(const sbx_op& op) {
  switch (op.kind) {
    case SBX_OP_WRITE_FILE:
      return !(op.flags & SBX_F_EXISTING);  // a container's own content, after the prefix
    case SBX_OP_MKDIR:
    case SBX_OP_SYMLINK:
    case SBX_OP_CHOWN:
      return true;
    case SBX_OP_MKNOD:
      return !(op.flags & SBX_F_BIND_FALLBACK);
    default:
      return false;
  }
}

// CLONE_TREE* ROOT_UPPER_DETACHED (file op)* ROOT_OVERLAY_DETACHED (MOUNT_DETACHED | file op)*:
// their count (the ops up to the first that needs the child: a namespace, a slot's bind).
uint32_t PrefixOf(const sbx_op* ops, uint32_t n) {
  uint32_t i = 0;
  while (i < n && ops[i].kind == SBX_OP_CLONE_TREE)
    if (ops[i++].n[1] >= SBX_PREFIX_MAX_SLOTS) return 0;
  if (i >= n || ops[i++].kind != SBX_OP_ROOT_UPPER_DETACHED) return 0;
  while (i < n && DetachedFileOp(ops[i])) i++;
  if (i >= n || ops[i++].kind != SBX_OP_ROOT_OVERLAY_DETACHED) return 0;
  while (i < n && (ops[i].kind == SBX_OP_MOUNT_DETACHED || DetachedFileOp(ops[i]) ||
                   (ops[i].kind == SBX_OP_MASK_TMPFS && ops[i].n[0] < SBX_PREFIX_MAX_SLOTS)))
    i++;
  return i;
}

}  // namespace

std::string PrefixKey(const Plan& plan) {
  std::string key;
  if (plan.prefix == 0) return key;
  auto put = [&key](const void* p, size_t n) { key.append(static_cast<const char*>(p), n); };
  put(&plan.hdr->flags, sizeof plan.hdr->flags);
  put(&plan.hdr->clone_flags, sizeof plan.hdr->clone_flags);
  for (uint32_t i = 0; i < plan.prefix; i++) {
    sbx_op op = plan.ops[i];
    uint32_t s[4];
    std::memcpy(s, op.s, sizeof s);
    std::memset(op.s, 0, sizeof op.s);  // offsets: where, not what
    put(&op, sizeof op);
    for (int k = 0; k < 4; k++) {
      const uint32_t none = SBX_NO_STRING;
      if (s[k] == SBX_NO_STRING) {
        put(&none, sizeof none);
        continue;
      }
      const char* at = plan.strtab + s[k];
      size_t n;
      if (op.kind == SBX_OP_WRITE_FILE && k == 1) {
        n = op.n[1];  // the content: its length, NULs and all
      } else if (op.kind == SBX_OP_ROOT_OVERLAY_DETACHED && k == 0) {
        n = 0;  // the layers: n[0] strings back to back
        for (uint32_t l = 0; l < op.n[0]; l++) n += std::strlen(at + n) + 1;
      } else {
        n = std::strlen(at) + 1;
      }
      const uint32_t len = uint32_t(n);
      put(&len, sizeof len);
      put(at, n);
    }
  }
  return key;
}

std::string PreparePlan(const uint8_t* data, size_t len, Plan* out) {
  if (len < sizeof(sbx_header)) return "plan shorter than its header";
  out->storage.assign((len + 7) / 8, 0);
  std::memcpy(out->storage.data(), data, len);
  const uint8_t* base = reinterpret_cast<const uint8_t*>(out->storage.data());
  const auto* h = reinterpret_cast<const sbx_header*>(base);
  if (h->magic != SBX_WIRE_MAGIC) return "bad magic";
  if (h->version != SBX_WIRE_VERSION) return "unsupported plan version";
  if (h->header_size != sizeof(sbx_header) || h->op_size != sizeof(sbx_op)) return "layout mismatch";
  if (h->total_size != len) return "total_size does not match the buffer";
  if (h->ops_offset % 8 || h->ops_offset < sizeof(sbx_header)) return "misaligned ops";
  if (h->n_ops == 0 || h->n_ops > 4096) return "op count out of range";
  uint64_t ops_end = uint64_t(h->ops_offset) + uint64_t(h->n_ops) * sizeof(sbx_op);
  if (ops_end > h->strtab_offset) return "ops overlap the string table";
  if (uint64_t(h->strtab_offset) + h->strtab_size != len) return "string table does not end the plan";
  if (h->strtab_size == 0 || base[len - 1] != 0) return "string table not NUL-terminated";
  if (h->clone_flags & ~(kNamespaces | CLONE_NEWPID | CLONE_NEWTIME)) return "clone flags beyond namespaces";

  const char* strtab = reinterpret_cast<const char*>(base + h->strtab_offset);
  const uint32_t strsize = h->strtab_size;
  auto valid = [&](uint32_t off) { return off < strsize; };  // NUL-terminated: last byte is 0
  // A list of `count` strings stored back to back from `off`.
  auto list = [&](uint32_t off, uint32_t count, std::vector<char*>* v) -> bool {
    v->clear();
    for (uint32_t i = 0; i < count; i++) {
      if (!valid(off)) return false;
      v->push_back(const_cast<char*>(strtab + off));
      off += uint32_t(std::strlen(strtab + off)) + 1;
    }
    v->push_back(nullptr);
    return true;
  };

  out->wants = 0;
  out->join = false;
  out->join_pid = -1;
  const auto* ops = reinterpret_cast<const sbx_op*>(base + h->ops_offset);
  bool has_exec = false, unshared = false, detached_root = false, attached = false;
  // A slot is filled by one CLONE_TREE, then taken by one BIND after it.
  bool filled[SBX_MAX_SLOTS] = {}, taken[SBX_MAX_SLOTS] = {}, mask_slot[SBX_MAX_SLOTS] = {};
  auto slot_of = [&](uint32_t n, bool fill) -> bool {
    if (n >= SBX_MAX_SLOTS) return false;
    if (fill) return !filled[n] && (filled[n] = true);
    return filled[n] && !taken[n] && (taken[n] = true);
  };
  // An fd index an op names: one of the parent's resources or a plan fd, never stdio.
  auto want = [&](uint32_t index) -> bool {
    if (index <= SBX_FD_STDERR || index >= SBX_FD_COUNT_) return false;
    out->wants |= 1u << index;
    return true;
  };
  std::vector<char*> scratch;
  for (uint32_t i = 0; i < h->n_ops; i++) {
    const sbx_op& op = ops[i];
    // Only on the way out with an error: no string is made for a valid op (this runs per create).
    auto at = [i] { return " at " + std::to_string(i); };
    if (op.kind == 0 || op.kind >= SBX_OP_MAX_ || ShapeOf(op.kind).required == 0xff) return "unknown op kind" + at();
    if (op.stage >= SBX_STAGE_MAX_) return "unknown stage" + at();
    Shape shape = ShapeOf(op.kind);
    for (int s = 0; s < 4; s++) {
      bool req = shape.required & (1 << s), opt = shape.optional & (1 << s);
      if (req && !valid(op.s[s])) return "op " + std::to_string(i) + ": string " + std::to_string(s) + " out of range";
      if (opt && op.s[s] != SBX_NO_STRING && !valid(op.s[s])) return "op " + std::to_string(i) + ": bad string";
    }
    switch (op.kind) {
      case SBX_OP_EXEC:
        if (i != h->n_ops - 1) return "EXEC must be the last op";
        if (op.n[0] == 0) return "EXEC needs argv";
        if (!list(op.s[0], op.n[0], &out->argv) || !list(op.s[1], op.n[1], &out->envp))
          return "EXEC argv/envp out of range";
        has_exec = true;
        break;
      case SBX_OP_EXEC_INIT:
        if (i != h->n_ops - 1) return "EXEC_INIT must be the last op";
        if (op.n[0] == 0 || op.n[0] > SBX_INIT_MAX_ARGS) return "EXEC_INIT: argv count out of range";
        if (!list(op.s[1], op.n[0], &out->argv) || !list(op.s[2], op.n[1], &out->envp))
          return "EXEC_INIT argv/envp out of range";
        has_exec = true;
        break;
      case SBX_OP_SETUSER: {
        out->groups.clear();
        if (op.n[2]) {
          if (op.s[0] == SBX_NO_STRING || uint64_t(op.s[0]) + uint64_t(op.n[2]) * 4 > strsize)
            return "SETUSER groups out of range";
          out->groups.resize(op.n[2]);
          std::memcpy(out->groups.data(), strtab + op.s[0], op.n[2] * 4);
        }
        break;
      }
      case SBX_OP_CLONE_TREE:
        // Only while the child still shares the host's mount namespace.
        if (unshared) return "CLONE_TREE after UNSHARE" + at();
        if (!slot_of(op.n[1], true)) return "CLONE_TREE: slot out of range or filled twice" + at();
        break;
      case SBX_OP_BIND:
        if (!slot_of(op.n[2], false)) return "BIND: slot not filled by a CLONE_TREE, or taken twice," + at();
        break;
      case SBX_OP_ROOT_UPPER_DETACHED:
      case SBX_OP_ROOT_OVERLAY_DETACHED:
        // Built from the host's view: before the container's mount namespace exists.
        if (unshared) return "a detached root after UNSHARE" + at();
        if (op.kind == SBX_OP_ROOT_OVERLAY_DETACHED) detached_root = true;
        [[fallthrough]];
      case SBX_OP_ROOT_OVERLAY:
        if (op.kind != SBX_OP_ROOT_UPPER_DETACHED &&
            (op.n[0] == 0 || op.n[0] > 500 || !list(op.s[0], op.n[0], &scratch)))
          return "root overlay: layer list out of range" + at();
        break;
      case SBX_OP_ATTACH_ROOT:
        if (!detached_root || !unshared) return "ATTACH_ROOT without a detached root, or before UNSHARE," + at();
        attached = true;
        break;
      case SBX_OP_SETNS:
        if (!want(op.n[0]) || !OneNamespace(op.n[1])) return "SETNS: bad fd index or namespace type" + at();
        // A pid namespace applies to children only: the parent's cloning thread joins it around
        // clone3 (exec.h PidnsForChildren), as for an exec, on memory nothing can dump.
        if (op.n[1] == CLONE_NEWPID) {
          if (h->clone_flags & CLONE_NEWPID) return "SETNS of a pid namespace with CLONE_NEWPID" + at();
          out->join = true;
          out->join_pid = int(op.n[0]);
        }
        break;
      case SBX_OP_JOIN:
        if (!want(op.n[0]) || !op.mflags || (op.mflags & ~(kNamespaces | CLONE_NEWPID)) || (op.mflags & CLONE_NEWUSER))
          return "JOIN: bad fd index or namespaces" + at();
        out->join = true;
        if (op.mflags & CLONE_NEWPID) out->join_pid = int(op.n[0]);
        break;
      case SBX_OP_ENTER_ROOT:
        if (!want(op.n[0])) return "ENTER_ROOT: bad fd index" + at();
        break;
      case SBX_OP_TTY_OPEN:
        // The console socket and (an exec) the root to open the ptmx beneath; a winsize of u16s;
        // a uid (not -1, which fchown takes as "unchanged").
        if (!want(op.n[0]) || (op.n[1] != SBX_TTY_BUILT_ROOT && !want(op.n[1])) || op.n[2] - 1 > 0xfffe || op.n[3] - 1 > 0xfffe ||
            op.mflags > 0xfffffffe)
          return "TTY_OPEN: bad fd index or size" + at();
        break;
      case SBX_OP_NETNS_FRESH:
        out->wants |= 1u << SBX_FD_POOLED_NETNS;
        break;
      case SBX_OP_IPCNS_FRESH:  // pooled with the network namespace: taken only when that is
        out->wants |= 1u << SBX_FD_POOLED_IPCNS;
        break;
      case SBX_OP_MOUNT:
        if ((op.flags & SBX_F_PREMOUNTED) && !want(op.n[0])) return "MOUNT: bad premounted fd index" + at();
        break;
      case SBX_OP_MOUNT_DETACHED:
        // Into the detached root only: after it is made, before the container's namespace exists.
        if (!detached_root || unshared) return "MOUNT_DETACHED without a detached root, or after UNSHARE," + at();
        break;
      case SBX_OP_UNSHARE:
        if (unshared) return "a second UNSHARE" + at();
        unshared = true;
        if (op.mflags & ~kNamespaces) return "UNSHARE: flags beyond namespaces";
        break;
      case SBX_OP_WRITE_FILE:
        if (uint64_t(op.s[1]) + op.n[1] > strsize) return "WRITE_FILE content out of range";
        // Into the upper layer beneath the overlay's tmpfs: only while that is at hand, detached.
        if ((op.flags & SBX_F_EXISTING) && (!detached_root || attached)) return "WRITE_FILE existing outside a detached root" + at();
        break;
      case SBX_OP_SECCOMP:
        // struct sock_filter[n0] (8 bytes each, 4-byte aligned for its u32), BPF_MAXINSNS at most.
        if (op.s[0] % 8 || op.n[0] == 0 || op.n[0] > 4096 || uint64_t(op.s[0]) + uint64_t(op.n[0]) * 8 > strsize)
          return "SECCOMP program out of range" + at();
        break;
      case SBX_OP_CAP_BOUNDING:
        // The child shifts a 64-bit mask by each capability number up to n[0].
        if (op.n[0] > 63) return "CAP_BOUNDING: cap_last_cap above 63" + at();
        break;
      case SBX_OP_MASK_TMPFS:
        // Its slot holds the tmpfs for MASK_PATH only: no BIND may take it.
        if (!slot_of(op.n[0], true)) return "MASK_TMPFS: slot out of range or filled twice" + at();
        taken[op.n[0]] = mask_slot[op.n[0]] = true;
        break;
      case SBX_OP_MASK_PATH:
        if (op.n[0] != SBX_NO_SLOT && (op.n[0] >= SBX_MAX_SLOTS || !mask_slot[op.n[0]])) return "MASK_PATH: slot not filled by a MASK_TMPFS" + at();
        [[fallthrough]];
      case SBX_OP_READONLY_PATH:
      case SBX_OP_SYSCTL:
      case SBX_OP_ROOT_READONLY:
        // Mounts and writes for the container: only in its own mount namespace, never the host's.
        if (!unshared) return "an isolation op before UNSHARE" + at();
        break;
      case SBX_OP_RLIMIT:
        if (op.mflags >= 16) return "RLIMIT: resource out of range" + at();  // RLIM_NLIMITS
        break;
      case SBX_OP_SETHOSTNAME:
        if (op.n[0] != std::strlen(strtab + op.s[0])) return "SETHOSTNAME length mismatch";
        break;
      default:
        break;
    }
  }
  if (!has_exec) return "plan has no EXEC";
  out->prefix = PrefixOf(ops, h->n_ops);
  out->hdr = h;
  out->ops = ops;
  out->strtab = strtab;
  return "";
}

}  // namespace sbx
