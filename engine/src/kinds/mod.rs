//! One module per kernel object kind, each with its dump and its restore side by side.
//!
//! Open files are dispatched here: [`FdKind::of`] is the single place that maps an fd to the module that
//! handles it, and every fd is handled by exactly one module or refused with an error naming it.

pub mod cpu;
pub mod mem;
pub mod memfd;
pub mod pipe;
pub mod posix_timers;
pub mod regfile;
pub mod signals;
pub mod task;
pub mod timens;
pub mod tty;

use crate::image::pb;

/// The kinds of open file rcr handles, one module each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// Regular files, directories, stateless character devices: [`regfile`].
    Reg,
    /// A terminal (shell jobs): [`tty`].
    Tty,
    /// A pipe: [`pipe`].
    Pipe,
}

impl FdKind {
    /// The module for an fd with this stat and /proc link, or None when no module handles it.
    pub fn of(st: &libc::stat, link: &str) -> Option<FdKind> {
        let kinds: [(FdKind, fn(&libc::stat, &str) -> bool); 3] = [
            (FdKind::Reg, |st, _| regfile::handles(st)),
            (FdKind::Tty, |st, _| tty::handles(st)),
            (FdKind::Pipe, pipe::handles),
        ];
        let mut found = kinds.iter().filter(|(_, h)| h(st, link)).map(|(k, _)| *k);
        found.next()
    }

    /// CRIU's fd type for the fdinfo entry.
    pub fn fd_type(self) -> pb::FdTypes {
        match self {
            FdKind::Reg => pb::FdTypes::Reg,
            FdKind::Tty => pb::FdTypes::Tty,
            FdKind::Pipe => pb::FdTypes::Pipe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, major: u32, minor: u32) -> libc::stat {
        // SAFETY: stat is plain old data; all-zero is valid.
        let mut s: libc::stat = unsafe { std::mem::zeroed() };
        s.st_mode = mode;
        s.st_rdev = libc::makedev(major, minor);
        s
    }

    #[test]
    fn every_known_fd_has_exactly_one_handler() {
        let cases = [
            (st(libc::S_IFREG | 0o644, 0, 0), Some(FdKind::Reg)),
            (st(libc::S_IFDIR | 0o755, 0, 0), Some(FdKind::Reg)),
            (st(libc::S_IFCHR | 0o666, 1, 3), Some(FdKind::Reg)),
            (st(libc::S_IFCHR | 0o620, 136, 2), Some(FdKind::Tty)),
            (st(libc::S_IFCHR | 0o666, 5, 0), Some(FdKind::Tty)),
            (st(libc::S_IFIFO | 0o600, 0, 0), None),
            (st(libc::S_IFSOCK | 0o777, 0, 0), None),
            (st(libc::S_IFCHR | 0o600, 10, 200), None),
        ];
        for (s, want) in cases {
            assert_eq!(FdKind::of(&s, "/x"), want, "mode {:o} rdev {:x}", s.st_mode, s.st_rdev);
            let n = [regfile::handles(&s), tty::handles(&s), pipe::handles(&s, "/x")].iter().filter(|&&h| h).count();
            assert!(n <= 1, "two handlers for mode {:o}", s.st_mode);
        }
        let fifo = st(libc::S_IFIFO | 0o600, 0, 0);
        assert_eq!(FdKind::of(&fifo, "pipe:[1234]"), Some(FdKind::Pipe));
        assert_eq!(FdKind::of(&fifo, "/tmp/fifo"), None, "a FIFO opened by path is not a pipe");
    }
}
