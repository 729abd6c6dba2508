/*
 * Parent side of the wire format: validate a plan buffer once and prepare what the child needs
 * (argv/envp pointer arrays, an aligned gid array), so the child can trust every offset; and say
 * which of the parent's resources the plan's ops ask for (sent in MSG_FDS).
 */
#ifndef SBX_PLAN_H
#define SBX_PLAN_H

#include <cstdint>
#include <string>
#include <vector>

#include "../wire/wire.h"

namespace sbx {

struct Plan {
  std::vector<uint64_t> storage;  // the buffer, 8-byte aligned
  const sbx_header* hdr = nullptr;
  const sbx_op* ops = nullptr;
  const char* strtab = nullptr;
  std::vector<char*> argv;  // NULL-terminated, pointing into storage
  std::vector<char*> envp;
  std::vector<uint32_t> groups;
  uint32_t wants = 0;  // bit i: an op uses fd SBX_FD_<i> (a resource of the parent, or a plan fd)
  bool join = false;   // a JOIN op: an exec into a running container (parent/exec.h)
  int join_pid = -1;   // its fd index when it names CLONE_NEWPID: clone3 into that pid namespace
  // The ops a pooled root can stand for (root_pool.h): CLONE_TREE* (slots below
  // SBX_PREFIX_MAX_SLOTS), ROOT_UPPER_DETACHED, MKDIR/WRITE_FILE/SYMLINK in the upper layer,
  // ROOT_OVERLAY_DETACHED, from op 0; 0 when the plan does not start so (host mode, keep, joins).
  uint32_t prefix = 0;
};

// Returns an empty string when the plan is valid, else what is wrong with it.
std::string PreparePlan(const uint8_t* data, size_t len, Plan* out);

// What the plan's prefix does, whatever the rest of it and wherever its strings lie in the
// table: the header's flags, each prefix op's fields, and the bytes of each string it names. Two
// plans with the same key build the same root (a pooled one serves either). Empty without a
// prefix. Of a plan PreparePlan accepted.
std::string PrefixKey(const Plan& plan);

}  // namespace sbx

#endif
