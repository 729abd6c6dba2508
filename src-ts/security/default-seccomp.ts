/**
 * scratchbox's default seccomp profile, as data: an allow-list. A syscall it does not allow gets
 * EPERM; one newer than every syscall it names gets ENOSYS (see ./seccomp.ts), so that libc falls
 * back to an older call. The refused groups are listed too, as explicit EPERM rules: they say
 * what is refused and why, and they keep the "newer than the profile" mark above them.
 *
 * The choices follow what Docker's default profile refuses a container without extra
 * capabilities (docs/security.md compares the two); where they differ it is said below.
 */
import { parseSeccomp, type OciSeccomp, type OciSeccompSyscall, type SeccompProfile } from './seccomp-profile.js';

interface Group {
  /** Why these calls are allowed or refused: one line. */
  readonly why: string;
  readonly names: readonly string[];
}

/** Allowed unconditionally. Names of other architectures are harmless: libseccomp skips them. */
export const ALLOWED: readonly Group[] = [
  {
    why: 'start, run and end a process (execve last: the filter is loaded right before it)',
    names: [
      'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'wait4', 'waitid', 'waitpid',
      'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq', 'restart_syscall', 'arch_prctl',
      'prctl', 'seccomp', 'set_thread_area', 'get_thread_area', 'modify_ldt',
    ],
  },
  {
    why: 'identity and credentials: bounded by the capabilities the container keeps',
    names: [
      'getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'getsid', 'setsid', 'setpgid',
      'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups',
      'getuid32', 'geteuid32', 'getgid32', 'getegid32', 'getresuid32', 'getresgid32', 'getgroups32',
      'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
      'setuid32', 'setgid32', 'setreuid32', 'setregid32', 'setresuid32', 'setresgid32', 'setgroups32',
      'setfsuid32', 'setfsgid32', 'capget', 'capset',
    ],
  },
  {
    why: 'signals, timers and sleeping',
    names: [
      'kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending',
      'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo',
      'sigaction', 'sigprocmask', 'sigreturn', 'sigpending', 'sigsuspend', 'signal', 'sigaltstack',
      'signalfd', 'signalfd4', 'pause', 'alarm', 'getitimer', 'setitimer',
      'timer_create', 'timer_delete', 'timer_settime', 'timer_settime64', 'timer_gettime', 'timer_gettime64',
      'timer_getoverrun', 'timerfd_create', 'timerfd_settime', 'timerfd_settime64', 'timerfd_gettime',
      'timerfd_gettime64', 'nanosleep', 'clock_nanosleep', 'clock_nanosleep_time64',
      'pidfd_open', 'pidfd_send_signal',
    ],
  },
  {
    why: 'reading the clocks (setting them is refused below)',
    names: ['clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64', 'gettimeofday', 'time', 'times'],
  },
  {
    why: 'memory of the calling process',
    names: [
      'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'remap_file_pages',
      'mlock', 'mlock2', 'mlockall', 'munlock', 'munlockall', 'membarrier', 'memfd_create', 'memfd_secret',
      'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'map_shadow_stack', 'process_mrelease',
    ],
  },
  {
    why: 'files, directories and descriptors: the mount namespace and capabilities bound them',
    names: [
      'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
      'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64',
      'lseek', '_llseek', 'stat', 'fstat', 'lstat', 'newfstatat', 'stat64', 'fstat64', 'lstat64', 'fstatat64',
      'statx', 'statfs', 'fstatfs', 'statfs64', 'fstatfs64', 'access', 'faccessat', 'faccessat2',
      'chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'chown', 'fchown', 'lchown', 'fchownat', 'chown32', 'fchown32',
      'lchown32', 'truncate', 'ftruncate', 'truncate64', 'ftruncate64', 'fallocate', 'fadvise64', 'fadvise64_64',
      'arm_fadvise64_64', 'readahead', 'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range',
      'sync_file_range2', 'arm_sync_file_range', 'rename', 'renameat', 'renameat2', 'link', 'linkat',
      'symlink', 'symlinkat', 'unlink', 'unlinkat', 'mkdir', 'mkdirat', 'rmdir', 'mknod', 'mknodat',
      'readlink', 'readlinkat', 'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir', 'chroot', 'umask',
      'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat', 'flock', 'copy_file_range', 'sendfile',
      'sendfile64', 'splice', 'tee', 'vmsplice', 'ioctl', 'pipe', 'pipe2', 'cachestat',
      'getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr', 'listxattr', 'llistxattr',
      'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr',
      'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark',
      'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64',
      'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
    ],
  },
  {
    why: 'waiting on descriptors, futexes',
    names: [
      'select', '_newselect', 'pselect6', 'pselect6_time64', 'poll', 'ppoll', 'ppoll_time64',
      'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old',
      'epoll_pwait', 'epoll_pwait2', 'eventfd', 'eventfd2',
      'futex', 'futex_time64', 'futex_waitv', 'futex_wake', 'futex_wait', 'futex_requeue',
    ],
  },
  {
    why: 'sockets (socket itself is conditional, below) and System V / POSIX IPC: the network and IPC namespaces bound them',
    names: [
      'socketpair', 'bind', 'connect', 'listen', 'accept', 'accept4', 'getsockname', 'getpeername',
      'getsockopt', 'setsockopt', 'sendto', 'recvfrom', 'send', 'recv', 'sendmsg', 'recvmsg', 'sendmmsg',
      'recvmmsg', 'recvmmsg_time64', 'shutdown', 'socketcall',
      'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'semctl',
      'shmget', 'shmat', 'shmdt', 'shmctl', 'ipc', 'mq_open', 'mq_unlink', 'mq_timedsend', 'mq_timedsend_time64',
      'mq_timedreceive', 'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr',
    ],
  },
  {
    why: 'scheduling, limits and system information of the caller',
    names: [
      'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getparam', 'sched_setparam',
      'sched_getscheduler', 'sched_setscheduler', 'sched_getattr', 'sched_setattr', 'sched_get_priority_max',
      'sched_get_priority_min', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
      'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set', 'getrlimit', 'setrlimit', 'ugetrlimit',
      'prlimit64', 'getrusage', 'uname', 'sysinfo', 'getcpu', 'getrandom',
    ],
  },
  {
    why: 'architecture-specific helpers (cache flushes, TLS, s390 PCI, PowerPC contexts)',
    names: [
      'breakpoint', 'cacheflush', 'set_tls', 'riscv_flush_icache', 's390_pci_mmio_read', 's390_pci_mmio_write',
      's390_runtime_instr', 'swapcontext',
    ],
  },
];

/** Refused with EPERM (they are also the default; listed to say why). */
export const REFUSED: readonly Group[] = [
  { why: 'loading code into the kernel every container shares', names: ['init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'] },
  { why: 'replacing or stopping the host kernel', names: ['kexec_load', 'kexec_file_load', 'reboot'] },
  { why: 'host-wide memory and swap settings', names: ['swapon', 'swapoff', 'mbind', 'set_mempolicy', 'get_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages'] },
  {
    why: 'changing the mount tree scratchbox built: could uncover what it hides or masks',
    names: ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsmount', 'fsconfig', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'],
  },
  { why: 'new or other namespaces: a user namespace gives back every capability inside it', names: ['unshare', 'setns'] },
  { why: 'the kernel keyrings are not namespaced', names: ['keyctl', 'add_key', 'request_key'] },
  { why: 'programs and counters in the kernel: large attack surface, host-wide data', names: ['bpf', 'perf_event_open', 'lookup_dcookie'] },
  { why: 'userfaultfd stretches kernel race windows, a staple of exploits', names: ['userfaultfd'] },
  { why: 'file handles open any inode of a file system, around the mount namespace (the "shocker" escape)', names: ['open_by_handle_at', 'name_to_handle_at'] },
  { why: 'reaching into another process', names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'kcmp', 'pidfd_getfd'] },
  { why: 'the clocks are the host\'s', names: ['clock_settime', 'clock_settime64', 'settimeofday', 'stime', 'adjtimex', 'clock_adjtime', 'clock_adjtime64'] },
  { why: 'raw I/O ports', names: ['iopl', 'ioperm'] },
  { why: 'host accounting, quotas and the kernel log', names: ['acct', 'quotactl', 'quotactl_fd', 'syslog'] },
  { why: 'io_uring runs file and network operations that this filter never sees', names: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'] },
  { why: 'the host name when the UTS namespace is shared; the terminal of the host', names: ['sethostname', 'setdomainname', 'vhangup'] },
  { why: 'fanotify watches a whole file system', names: ['fanotify_init'] },
  { why: 'obsolete or removed calls with a history of bugs', names: ['uselib', 'vm86', 'vm86old', 'nfsservctl', '_sysctl', 'sysfs', 'ustat', 'afs_syscall', 'tuxcall', 'security', 'vserver'] },
];

/** clone's flags that make namespaces: refused, like unshare. */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | // CLONE_NEWNS
  0x02000000 | // CLONE_NEWCGROUP
  0x04000000 | // CLONE_NEWUTS
  0x08000000 | // CLONE_NEWIPC
  0x10000000 | // CLONE_NEWUSER
  0x20000000 | // CLONE_NEWPID
  0x40000000; // CLONE_NEWNET

/**
 * personality(2) values allowed: PER_LINUX, PER_LINUX32, each with UNAME26, and 0xffffffff
 * (query). Refused: READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the rest, which weaken the
 * protections of the process.
 */
export const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;

/** AF_VSOCK reaches the hypervisor or the host directly, past the network namespace. */
export const AF_VSOCK = 40;

const ENOSYS = 38;

/**
 * Per Node's process.arch: the host's native ABI first, then the other ABIs its binaries may call
 * the kernel with (i386 and x32 on x86_64, arm on arm64), which only `compat: true` adds.
 */
const ARCHES: Readonly<Record<string, readonly string[]>> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  ia32: ['SCMP_ARCH_X86'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  arm: ['SCMP_ARCH_ARM'],
  s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
  ppc64: ['SCMP_ARCH_PPC64LE'],
  riscv64: ['SCMP_ARCH_RISCV64'],
  mips64el: ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_MIPSEL'],
};

export interface DefaultSeccompOptions {
  /**
   * Also cover the compat ABIs (a 32-bit binary on a 64-bit host). Off by default: every ABI is
   * another copy of the program, and the kernel's cost to load a filter grows with its length
   * (~0.1 ms for the native ABI alone here, ~0.3 ms with i386 and x32). Without it, a process
   * calling the kernel through another ABI is killed (SIGSYS) at its first system call.
   */
  compat?: boolean;
}

/** The default profile in OCI form for a host architecture (Node's process.arch names). */
export function defaultSeccompOci(arch: string = process.arch, options: DefaultSeccompOptions = {}): OciSeccomp {
  // clone(flags, ...) everywhere but s390, where the stack comes first.
  const cloneFlagsArg = arch === 's390x' ? 1 : 0;
  const rule = (names: readonly string[], action: OciSeccompSyscall['action']): OciSeccompSyscall => ({ names: [...names], action });
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: (ARCHES[arch] ?? []).slice(0, options.compat ? undefined : 1),
    syscalls: [
      ...ALLOWED.map((g) => rule(g.names, 'SCMP_ACT_ALLOW')),
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: cloneFlagsArg, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      // ENOSYS, not EPERM: glibc then falls back to clone, whose flags the rule above can see
      // (clone3's are behind a pointer, out of a filter's reach).
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...PERSONALITIES.map((p): OciSeccompSyscall => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] })),
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
      ...REFUSED.map((g) => rule(g.names, 'SCMP_ACT_ERRNO')),
    ],
  };
}

let cached: SeccompProfile | undefined;

/** The default profile for this host, parsed once. */
export function defaultSeccompProfile(): SeccompProfile {
  cached ??= parseSeccomp(defaultSeccompOci(), 'defaultSeccompProfile');
  return cached;
}
