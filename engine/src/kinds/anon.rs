//! What the anon-inode files (eventfd, timerfd, signalfd, epoll, inotify) share at restore.

use crate::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets O_NONBLOCK, the status flag the task may have changed with F_SETFL, on a file rcr made.
pub(crate) fn set_status_flags(fd: &OwnedFd, flags: u32, what: &str) -> Result<()> {
    let fl = flags as i32 & libc::O_NONBLOCK;
    // SAFETY: F_SETFL takes an integer.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl) } < 0 {
        return Err(Error::Io { ctx: format!("{what}: F_SETFL {fl:#o}"), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// A new fd returned by a system call, or the error naming `what`.
pub(crate) fn owned(fd: i64, what: impl FnOnce() -> String) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(Error::Io { ctx: what(), source: std::io::Error::last_os_error() });
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
