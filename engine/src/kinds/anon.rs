//! What the anon-inode files (eventfd, timerfd, signalfd, epoll, inotify) share at restore.

use crate::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};

/// Sets O_NONBLOCK, the status flag the task may have changed with F_SETFL, on a file rcr made.
pub(crate) fn set_status_flags(fd: &OwnedFd, flags: u32, what: &str) -> Result<()> {
    let fl = flags as i32 & libc::O_NONBLOCK;
    if let Err(e) = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_retain(fl))) {
        return Err(Error::Io { ctx: format!("{what}: F_SETFL {fl:#o}"), source: e.into() });
    }
    Ok(())
}

/// A new fd returned by a system call, or the error naming `what`.
pub(crate) fn owned(fd: std::io::Result<OwnedFd>, what: impl FnOnce() -> String) -> Result<OwnedFd> {
    fd.map_err(|source| Error::Io { ctx: what(), source })
}
