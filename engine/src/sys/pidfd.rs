//! pidfd_open / pidfd_getfd / pidfd_send_signal and clone3 with set_tid (none are in nix
//! 0.29, so these are raw syscalls).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{err, Errno, Result};

/// pidfd_open(2): a pidfd referring to `pid` (flags 0 or PIDFD_NONBLOCK).
pub fn pidfd_open(pid: Pid, flags: u32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), flags) };
    let fd = Errno::result(r).map_err(err("pidfd_open", format!("pid {pid}")))?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_getfd(2): a duplicate, in this process, of fd `target_fd` of the pidfd's process.
/// Needs PTRACE_MODE_ATTACH_REALCREDS on the target (root, or same user and ptrace-able).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> Result<OwnedFd> {
    // SAFETY: integer arguments only; pidfd is a live fd borrowed for the call.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    let fd = Errno::result(r).map_err(err(
        "pidfd_getfd",
        format!("pidfd {}, fd {target_fd}", pidfd.as_raw_fd()),
    ))?;
    // SAFETY: the kernel returned a new fd (O_CLOEXEC) that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2) with no siginfo (like kill(2), but race-free).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: Signal) -> Result<()> {
    // SAFETY: a NULL siginfo is allowed; other arguments are integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as i32,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop).map_err(err(
        "pidfd_send_signal",
        format!("pidfd {}, {sig}", pidfd.as_raw_fd()),
    ))
}

/// Which side of a [`clone3_set_tid`] we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneResult {
    /// In the new child (clone3 returned 0).
    Child,
    /// In the parent; the child's PID in the caller's namespace.
    Parent(Pid),
}

/// clone3(2) with `set_tid`: creates a child whose PID is `set_tid[0]` in the innermost
/// pid namespace (`set_tid[i]` for the i-th parent namespace, see clone(2)). Needs
/// CAP_SYS_ADMIN over each of those pid namespaces; EEXIST if a PID is taken.
/// `flags` are CLONE_* bits; CLONE_VM, CLONE_VFORK and CLONE_SETTLS are refused here because
/// the child runs on a copy of the caller's stack like fork(2).
///
/// # Safety
/// Like `fork()`: in a multi-threaded program the child may only call async-signal-safe
/// functions (no allocation, no locks, no std I/O) until it execs or `_exit`s.
pub unsafe fn clone3_set_tid(
    set_tid: &[i32],
    flags: u64,
    exit_signal: Option<Signal>,
) -> Result<CloneResult> {
    let forbidden = (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_SETTLS) as u64;
    if flags & forbidden != 0 {
        return Err(super::SysError::Unexpected {
            call: "clone3",
            ctx: format!("flags {flags:#x}"),
            msg: "CLONE_VM/CLONE_VFORK/CLONE_SETTLS need a separate stack; not supported here"
                .into(),
        });
    }
    let args = linux_raw_sys::general::clone_args {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: exit_signal.map_or(0, |s| s as u64),
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: set_tid.len() as u64,
        cgroup: 0,
    };
    // SAFETY: `args` and `set_tid` live across the call and the size is exact; without
    // CLONE_VM the child gets a copy-on-write copy of this address space and returns here
    // on its own stack copy, like fork(2). The caller upholds the async-signal-safety rule.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const _,
            std::mem::size_of_val(&args),
        )
    };
    match Errno::result(r).map_err(err(
        "clone3",
        format!("set_tid {set_tid:?}, flags {flags:#x}"),
    ))? {
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Whether clone3 takes `set_tid` (Linux 5.5), asked without creating anything: the call is made with
/// an invalid exit signal, which a kernel that knows `set_tid` refuses with EINVAL after reading the
/// whole struct; one without clone3 answers ENOSYS, one without `set_tid` E2BIG.
pub fn clone3_set_tid_probe() -> Result<()> {
    let tid: [i32; 1] = [1];
    let args = linux_raw_sys::general::clone_args {
        flags: 0,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: u64::MAX,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        cgroup: 0,
    };
    // SAFETY: `args` and `tid` live across the call and the size is exact; the invalid exit signal
    // makes the kernel refuse the call before it creates anything.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const _, std::mem::size_of_val(&args)) };
    match Errno::result(r) {
        Err(Errno::EINVAL) => Ok(()),
        Err(e) => Err(err("clone3", "probe with set_tid")(e)),
        Ok(_) => Err(super::SysError::Unexpected { call: "clone3", ctx: "probe with set_tid".into(), msg: "accepted an invalid exit signal".into() }),
    }
}
