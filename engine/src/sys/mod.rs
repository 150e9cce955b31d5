//! Thin syscall wrappers. nix is used where it has the call; the rest are raw
//! `libc::syscall`/`libc::ioctl` calls with uapi structs from `linux-raw-sys` (libc lacks
//! them). Every `unsafe` block has a `// SAFETY:` comment; nothing here knows about images.

mod anon;
mod child;
mod files;
mod misc;
mod pagemap;
mod pidfd;
pub mod sock_diag;
mod socket;
mod task;
pub mod tty;
mod uffd;
mod vm;

pub use anon::AnonMapping;
pub use child::{kill_and_reap, spawn_exiting_child_at, spawn_idle_child, spawn_traced_at, wait_timeout};
pub use files::{
    dup_above, fanotify_init, fanotify_mark, fiemap, inotify_add_watch, inotify_init1, inotify_rm_watch, open,
    open_by_handle_at, signalfd, timerfd_create, timerfd_gettime, timerfd_set_ticks, timerfd_settime, Fiemap,
    FiemapExtent,
};
pub use misc::{
    close_range_probe, kcmp, kcmp_epoll_tfd, madv_populate_write_probe, memfd_create, openat, personality_get, personality_set, prctl_mm_map_size,
    prctl_get_securebits, prctl_set_child_subreaper, prctl_set_mm_map, prlimit_get, prlimit_set, sched_getattr,
    sched_setattr, setns, KcmpResult, KcmpType, MmMap, SchedAttr,
};
pub use pagemap::{
    page_is, pagemap_read_entries, pagemap_regions_fallback, pagemap_scan, pagemap_scan_all,
    PageRegion, PagemapEntry, PagemapScan, PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING,
};
pub use pidfd::{clone3_set_tid, clone3_set_tid_probe, pidfd_getfd, pidfd_open, pidfd_send_signal, CloneResult};
pub use socket::{accept4, getsockopt_int, getsockopt_tv, recvmsg_unix, setsockopt_int, setsockopt_tv, UnixMsg};
pub use task::{get_robust_list, setpriority, waitpid_status};
pub use uffd::{
    uffdio_api, uffdio_copy, uffdio_register, uffdio_writeprotect, userfaultfd, UffdApi,
};
pub use vm::{process_vm_readv, process_vm_writev, read_remote, write_remote};

pub use nix::errno::Errno;

/// A failed system call: which call, on what object, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{call}({ctx}) failed: {errno}{}", hint(*errno))]
    Call {
        call: &'static str,
        ctx: String,
        errno: Errno,
    },
    /// The kernel answered, but not in a way the wrapper can use.
    #[error("{call}({ctx}): {msg}")]
    Unexpected {
        call: &'static str,
        ctx: String,
        msg: String,
    },
}

fn hint(e: Errno) -> &'static str {
    match e {
        Errno::ENOSYS => " (the kernel lacks this system call)",
        Errno::EPERM => " (not permitted: needs a capability or a ptrace-able target)",
        Errno::ESRCH => " (no such process: it exited?)",
        Errno::ENOTTY => " (ioctl not supported by this kernel or file)",
        _ => "",
    }
}

impl SysError {
    /// The errno of a failed call, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            SysError::Call { errno, .. } => Some(*errno),
            SysError::Unexpected { .. } => None,
        }
    }
}

/// Builds a `map_err` closure for `call` on `ctx`.
pub(crate) fn err(call: &'static str, ctx: impl Into<String>) -> impl FnOnce(Errno) -> SysError {
    let ctx = ctx.into();
    move |errno| SysError::Call { call, ctx, errno }
}

/// Result alias for this module.
pub type Result<T, E = SysError> = std::result::Result<T, E>;

/// Plain C structs for which all-zero bytes are a valid value (no references, no enums, no
/// non-null pointers), so that [`zeroed`] can make one without `unsafe` at the call site.
///
/// # Safety
/// Implement it only for `repr(C)` types of integers, arrays of them and nullable raw pointers.
pub unsafe trait Zeroable: Sized {}

// SAFETY: integers and arrays of integers only.
unsafe impl Zeroable for libc::stat {}
// SAFETY: integers only.
unsafe impl Zeroable for libc::user_regs_struct {}
// SAFETY: integers, an integer-or-pointer union and padding integers; a null sival_ptr is valid.
unsafe impl Zeroable for libc::sigevent {}
// SAFETY: termios is plain old data (integers and a byte array); all-zero is a valid value.
unsafe impl Zeroable for libc::termios {}

/// An all-zero `T`.
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable` promises all-zero bytes are a valid `T`.
    unsafe { std::mem::zeroed() }
}

/// The bytes of a sigevent (tests compare rcr's own layout with libc's).
#[cfg(test)]
pub(crate) fn sigevent_bytes(s: &libc::sigevent) -> &[u8] {
    // SAFETY: libc's sigevent is 64 bytes of integer fields without padding holes (sigev_value,
    // sigev_signo, sigev_notify, then 48 bytes of int fields); `s` lives for the borrow.
    unsafe { std::slice::from_raw_parts((s as *const libc::sigevent).cast::<u8>(), std::mem::size_of::<libc::sigevent>()) }
}

/// The system page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}
