//! rrun's default seccomp profile as data: the system calls Docker's default profile allows,
//! with the same capability- and architecture-dependent additions, for x86_64 and aarch64.
//!
//! Everything not listed fails with EPERM. Names that do not exist on the running architecture
//! (the `*32`, `*_time64` variants of 32-bit ABIs on a 64-bit kernel) are skipped when the filter
//! is loaded; they matter for the 32-bit sub-architectures (x86, arm) the filter also covers.

/// The errno of a denied system call: EPERM.
pub const DEFAULT_ERRNO: u32 = 1;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the call through.
    Allow,
    /// Fail the call with this errno.
    Errno(u32),
}

/// A comparison on one system call argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgTest {
    /// `arg == value`.
    Eq(u64),
    /// `arg != value`.
    Ne(u64),
    /// `arg & mask == value`.
    MaskedEq { mask: u64, value: u64 },
    /// `arg < value`.
    Lt(u64),
    /// `arg <= value`.
    Le(u64),
    /// `arg > value`.
    Gt(u64),
    /// `arg >= value`.
    Ge(u64),
}

/// One entry of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// System call names.
    pub names: &'static str,
    /// The action for these calls.
    pub action: Action,
    /// Argument conditions (all must hold), as `(index, test)`.
    pub args: &'static [(u32, ArgTest)],
    /// The rule applies only if the container has one of these capabilities (empty: always).
    pub needs_caps: &'static [&'static str],
    /// The rule applies only if the container lacks all of these capabilities.
    pub unless_caps: &'static [&'static str],
    /// The rule applies only on these architectures (`std::env::consts::ARCH` names; empty: all).
    pub arches: &'static [&'static str],
}

impl Rule {
    const fn allow(names: &'static str) -> Rule {
        Rule {
            names,
            action: Action::Allow,
            args: &[],
            needs_caps: &[],
            unless_caps: &[],
            arches: &[],
        }
    }

    const fn with_cap(names: &'static str, cap: &'static [&'static str]) -> Rule {
        Rule {
            needs_caps: cap,
            ..Rule::allow(names)
        }
    }
}

/// Namespace flags of clone(2): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
/// Without CAP_SYS_ADMIN, clone is allowed only with none of them set.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// The calls every container may make.
const BASE: &str = "
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get
ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self
lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr
lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore
mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause
pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
";

/// The table, applied in order.
pub const RULES: &[Rule] = &[
    Rule::allow(BASE),
    // ptrace and cross-process memory access are safe from kernel 4.8 on (this kernel floor
    // is below every kernel libcontainer supports).
    Rule::allow("process_vm_readv process_vm_writev ptrace"),
    // Every socket family except AF_VSOCK (40).
    Rule {
        args: &[(0, ArgTest::Ne(40))],
        ..Rule::allow("socket")
    },
    // personality(2) only for PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and queries.
    Rule {
        args: &[(0, ArgTest::Eq(0))],
        ..Rule::allow("personality")
    },
    Rule {
        args: &[(0, ArgTest::Eq(8))],
        ..Rule::allow("personality")
    },
    Rule {
        args: &[(0, ArgTest::Eq(0x20000))],
        ..Rule::allow("personality")
    },
    Rule {
        args: &[(0, ArgTest::Eq(0x20008))],
        ..Rule::allow("personality")
    },
    Rule {
        args: &[(0, ArgTest::Eq(0xffff_ffff))],
        ..Rule::allow("personality")
    },
    Rule {
        arches: &["arm", "aarch64"],
        ..Rule::allow(
            "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
        )
    },
    Rule {
        arches: &["x86_64"],
        ..Rule::allow("arch_prctl")
    },
    Rule {
        arches: &["x86_64", "x86"],
        ..Rule::allow("modify_ldt")
    },
    Rule::with_cap("open_by_handle_at", &["DAC_READ_SEARCH"]),
    Rule::with_cap(
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname \
         sethostname setns syslog umount umount2 unshare",
        &["SYS_ADMIN"],
    ),
    // Without CAP_SYS_ADMIN: clone without namespace flags (fork, threads) ...
    Rule {
        args: &[(
            0,
            ArgTest::MaskedEq {
                mask: CLONE_NAMESPACE_FLAGS,
                value: 0,
            },
        )],
        unless_caps: &["SYS_ADMIN"],
        ..Rule::allow("clone")
    },
    // ... and clone3 answers ENOSYS, whose flags a filter cannot inspect, so libc falls back
    // to clone.
    Rule {
        action: Action::Errno(38),
        unless_caps: &["SYS_ADMIN"],
        ..Rule::allow("clone3")
    },
    Rule::with_cap("reboot", &["SYS_BOOT"]),
    Rule::with_cap("chroot", &["SYS_CHROOT"]),
    Rule::with_cap("delete_module init_module finit_module", &["SYS_MODULE"]),
    Rule::with_cap("acct", &["SYS_PACCT"]),
    Rule::with_cap(
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
        &["SYS_PTRACE"],
    ),
    Rule::with_cap("iopl ioperm", &["SYS_RAWIO"]),
    Rule::with_cap(
        "settimeofday stime clock_settime clock_settime64",
        &["SYS_TIME"],
    ),
    Rule::with_cap("vhangup", &["SYS_TTY_CONFIG"]),
    Rule::with_cap(
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
        &["SYS_NICE"],
    ),
    Rule::with_cap("syslog", &["SYSLOG"]),
    Rule::with_cap("bpf", &["BPF"]),
    Rule::with_cap("perf_event_open", &["PERFMON"]),
];

/// Calls that must never be in the default allow list without a capability: a regression
/// guard for the table.
pub const NEVER_WITHOUT_CAPS: &[&str] = &[
    "mount",
    "umount2",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "init_module",
    "kexec_load",
    "reboot",
    "swapon",
    "pivot_root",
    "open_by_handle_at",
    "clone3",
    "userfaultfd",
];
