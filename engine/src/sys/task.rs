//! Per-task calls nix 0.29 lacks or narrows: get_robust_list, setpriority, and waitpid with the
//! raw status (nix's `WaitStatus` fails on a death by a real-time signal).

use std::io;

/// get_robust_list(2) of thread `tid`: the robust futex list head and its length.
pub fn get_robust_list(tid: i32) -> io::Result<(u64, usize)> {
    let mut head: u64 = 0;
    let mut len: usize = 0;
    // SAFETY: get_robust_list writes one pointer and one size_t into the two valid locations given.
    let r = unsafe { libc::syscall(libc::SYS_get_robust_list, tid, &mut head as *mut u64, &mut len as *mut usize) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((head, len))
}

/// setpriority(PRIO_PROCESS, `pid`, `nice`).
pub fn setpriority(pid: i32, nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes integers only.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as u32, nice) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// waitpid(2) of `pid` with `flags` (libc::WNOHANG, __WALL...): the pid it returned and the raw
/// status (read it with libc::WIFEXITED and friends).
pub fn waitpid_status(pid: i32, flags: i32) -> io::Result<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid with a valid pointer to `status`.
    let r = unsafe { libc::waitpid(pid, &mut status, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r, status))
}
