/*
 * Who and where the process is, and the exec.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/stat.h>
#include <signal.h>
#include <sys/prctl.h>

#include "state.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* n0 uid, n1 gid, s0 gid array (binary u32, n2 of them; the parent's aligned copy is used). Raw
 * calls: these change only this task's credentials (libc's wrappers would signal every thread of
 * the Node process to change theirs). */
int op_setuser(struct child_state *st, const struct sbx_op *op) {
  long r = sbx_sys2(SYS_setgroups, st->a->n_groups, st->a->groups);
  if (r >= 0) r = sbx_sys3(SYS_setresgid, op->n[1], op->n[1], op->n[1]);
  if (r >= 0) r = sbx_sys3(SYS_setresuid, op->n[0], op->n[0], op->n[0]);
  return (int)r;
}

/* No execve from here on grants privileges (setuid bits, file capabilities): OCI's
 * noNewPrivileges, and what lets an unprivileged process load a seccomp filter. */
int op_no_new_privs(struct child_state *st, const struct sbx_op *op) {
  (void)st, (void)op;
  return (int)sbx_sys5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* s0 path. */
int op_chdir(struct child_state *st, const struct sbx_op *op) { return (int)sbx_sys1(SYS_chdir, str(st, op->s[0])); }

/* Is `path` something execve would accept? A regular file the caller may execute. */
static int check_exec(const char *path) {
  struct statx sx;
  long r = sbx_sys5(SYS_statx, AT_FDCWD, path, 0, STATX_TYPE | STATX_MODE, &sx);
  if (r < 0) return (int)r;
  if ((sx.stx_mode & S_IFMT) != S_IFREG) return -EACCES;
  return (int)sbx_sys4(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS);
}

/* s0 argv[0], s1 PATH. Like execvpe: a name without '/' is searched in PATH (the container's),
 * inside the container, now, so that a missing binary fails create(). */
int op_resolve_exec(struct child_state *st, const struct sbx_op *op) {
  const char *name = str(st, op->s[0]);
  size_t nlen = s_len(name), pos = 0;
  int slash = 0;
  for (size_t i = 0; i < nlen; i++) slash |= name[i] == '/';
  if (slash) {
    int r = s_append(st->exec_path, sizeof st->exec_path, &pos, name, nlen);
    return r < 0 ? r : check_exec(st->exec_path);
  }
  const char *path = str(st, op->s[1]);
  int err = -ENOENT;
  while (path && *path) {
    const char *end = path;
    while (*end && *end != ':') end++;
    pos = 0;
    if (end == path) /* empty entry: the current directory */
      s_append(st->exec_path, sizeof st->exec_path, &pos, ".", 1);
    else if (s_append(st->exec_path, sizeof st->exec_path, &pos, path, (size_t)(end - path)) < 0)
      goto next;
    if (s_append(st->exec_path, sizeof st->exec_path, &pos, "/", 1) < 0 ||
        s_append(st->exec_path, sizeof st->exec_path, &pos, name, nlen) < 0)
      goto next;
    {
      int r = check_exec(st->exec_path);
      if (r == 0) return 0;
      if (r == -EACCES) err = r; /* found but not executable: report that, as execvp does */
    }
  next:
    path = *end ? end + 1 : end;
  }
  st->exec_path[0] = 0;
  return err;
}

/* Just before any execve of the container's process: its umask, its fds, its signal mask. */
void exec_prepare(unsigned umask) {
  sbx_sys1(SYS_umask, umask);
  /* Every fd above 2 closes at execve: the sync socket (that EOF tells the parent we exec'd),
   * and anything the Node process had open without O_CLOEXEC. */
  sbx_sys3(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  uint64_t none = 0;
  sbx_sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none);
}

/* s0 argv (n0 of them), s1 envp (n1), n2 umask; the parent's pointer arrays are used. */
int op_exec(struct child_state *st, const struct sbx_op *op) {
  const struct sbx_child_args *a = st->a;
  exec_prepare(op->n[2]);
  const char *path = st->exec_path[0] ? st->exec_path : a->argv[0];
  return (int)sbx_sys3(SYS_execve, path, a->argv, a->envp);
}
