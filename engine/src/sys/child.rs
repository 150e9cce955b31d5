//! Short-lived helper children for probes and tests: forked/cloned here so that callers
//! need no `unsafe`, plus a bounded kill-and-reap.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::{clone3_set_tid, err, CloneResult, Result, SysError};

/// Forks a child that sleeps in pause() until killed (it also gets SIGKILL if we die).
/// The caller must [`kill_and_reap`] it.
pub fn spawn_idle_child() -> Result<Pid> {
    // SAFETY: the child only calls async-signal-safe functions (prctl, pause) and never
    // returns into Rust code, so forking a multi-threaded process is sound.
    match unsafe { fork() }.map_err(err("fork", "idle child"))? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => loop {
            // SAFETY: plain syscalls with integer arguments; async-signal-safe.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::pause();
            }
        },
    }
}

/// clone3 with `set_tid` a child that `_exit(0)`s at once; returns its PID (reap it with
/// [`wait_timeout`] or [`kill_and_reap`]).
pub fn spawn_exiting_child_at(set_tid: &[i32]) -> Result<Pid> {
    // SAFETY: the child calls only _exit, which is async-signal-safe.
    match unsafe { clone3_set_tid(set_tid, 0, Some(Signal::SIGCHLD)) }? {
        CloneResult::Parent(pid) => Ok(pid),
        // SAFETY: _exit is async-signal-safe and never returns.
        CloneResult::Child => unsafe { libc::_exit(0) },
    }
}

/// Creates, with clone3 and `set_tid`, the first task of a restore at PID `pid`: the new task asks
/// to be traced (PTRACE_TRACEME), stops itself with SIGSTOP for the caller to take over, and exits
/// with 127 if it is ever resumed without being taken over. Returns its PID to the caller (its
/// parent); EEXIST in the error when the PID is taken.
pub fn spawn_traced_at(pid: i32) -> Result<Pid> {
    // SAFETY: the child runs only the raw system calls below (async-signal-safe) and then stops for
    // the caller to take over; it never returns into Rust code.
    match unsafe { clone3_set_tid(&[pid], 0, Some(Signal::SIGCHLD)) }? {
        CloneResult::Parent(child) => Ok(child),
        CloneResult::Child => {
            // SAFETY: raw syscalls with integer arguments; the task stops itself and never returns.
            unsafe {
                libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
                libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), libc::SIGSTOP);
                libc::syscall(libc::SYS_exit_group, 127);
                libc::_exit(127)
            }
        }
    }
}

/// Waits for `pid` to change state, polling with WNOHANG until `timeout`; `None` on timeout.
pub fn wait_timeout(pid: Pid, timeout: Duration) -> Result<Option<WaitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s) => return Ok(Some(s)),
            Err(e) => return Err(err("waitpid", format!("pid {pid}"))(e)),
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs our child `pid` and reaps it, waiting at most `timeout`; returns the final
/// (exit or signal) status.
pub fn kill_and_reap(pid: Pid, timeout: Duration) -> Result<WaitStatus> {
    // An error (ESRCH) only means it already exited; it is still ours to reap.
    let _ = kill(pid, Signal::SIGKILL);
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_timeout(pid, left)? {
            Some(s @ (WaitStatus::Signaled(..) | WaitStatus::Exited(..))) => return Ok(s),
            // A stop or ptrace event: keep waiting for the death.
            Some(_) if !left.is_zero() => continue,
            _ => {
                return Err(SysError::Unexpected {
                    call: "waitpid",
                    ctx: format!("pid {pid}"),
                    msg: format!("child did not die within {timeout:?} after SIGKILL"),
                })
            }
        }
    }
}
