/* A long-lived container payload: waits for a signal forever and exits 0 on
 * SIGTERM or SIGINT (as pid 1 of a pid namespace it gets no default handlers,
 * so it installs its own). Built with gcc -static. */
#include <signal.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  for (;;) pause();
}
