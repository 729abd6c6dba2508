/*
 * A pseudo-terminal for the process (options.tty): the pair comes from the container's own devpts
 * instance, the slave becomes fds 0-2 and the controlling terminal of a new session, and the master
 * goes to the parent over a console socket (docs/tty.md). Like runc's and crun's --console-socket:
 * the child opens the ptmx inside the container, so the slave is /dev/pts/N of the container and
 * never a host pty, and whoever holds the other end of the socket gets the master.
 */
#define _GNU_SOURCE
#include <asm/ioctls.h>
#include <fcntl.h>

#include "state.h"
#include "util.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441 /* Linux 4.13 */
#endif

/* s0: the ptmx under the root ("dev/pts/ptmx": the devpts instance itself; /dev/ptmx is a symlink,
 * which open_beneath refuses). n0: MSG_FDS index of the console socket. n1: MSG_FDS index of the
 * directory to resolve s0 beneath (an exec: its container's root), or SBX_TTY_BUILT_ROOT for the
 * root this plan built. n2, n3: columns and rows. mflags: the process's uid, which gets the slave
 * (devpts made it root's; its group, tty, stays), as runc and LXC give the stdio fds to the user.
 *
 * Runs before the root is entered, while the root is still an fd to resolve beneath. Nothing
 * afterwards depends on the order: fds 0-2 and the session survive chroot, pivot_root and setuser.
 * A slave opened through TIOCGPTPEER is the master's own peer (no path lookup by name that a
 * process in the container could race). */
int op_tty_open(struct child_state *st, const struct sbx_op *op) {
  int *sock = &st->fd[op->n[0]];
  int root = op->n[1] == SBX_TTY_BUILT_ROOT ? st->rootfd : st->fd[op->n[1]];
  if (*sock < 0 || root < 0) return -EBADF;
  int master = open_beneath(root, str(st, op->s[0]), O_RDWR | O_NOCTTY);
  if (master < 0) return master;
  int unlock = 0;
  long r = sbx_sys3(SYS_ioctl, master, TIOCSPTLCK, &unlock);
  long slave = r < 0 ? r : sbx_sys3(SYS_ioctl, master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    sys_close(master);
    return (int)slave;
  }
  struct {
    uint16_t row, col, xpixel, ypixel;
  } ws = {(uint16_t)op->n[3], (uint16_t)op->n[2], 0, 0};
  r = sbx_sys3(SYS_ioctl, slave, TIOCSWINSZ, &ws);
  /* A session of its own (the child was born in Node's): a session leader without a controlling
   * terminal may take one, and ^C on the master then signals this process's group. */
  if (r >= 0) r = sbx_sys0(SYS_setsid);
  if (r >= 0) r = sbx_sys3(SYS_ioctl, slave, TIOCSCTTY, 0);
  if (r >= 0 && op->mflags != 0) r = sbx_sys3(SYS_fchown, slave, (uint32_t)op->mflags, -1);
  /* 0-2 hold /dev/null or pipes the prelude put there, so the slave (>= 3) never is one of them. */
  for (int i = 0; i < 3 && r >= 0; i++) r = sbx_sys3(SYS_dup3, slave, i, 0);
  sys_close((int)slave);
  /* MSG_CONSOLE and the master in one datagram: the receiver gets both or neither. */
  struct sbx_msg m = {SBX_MSG_CONSOLE, op->stage, 0, 0};
  if (r >= 0) r = send_fd(*sock, &m, sizeof m, master);
  sys_close(master);
  close_fd(sock);
  return (int)r;
}
