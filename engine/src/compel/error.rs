//! The compel module's error type.

use std::time::Duration;

use nix::errno::Errno;

/// Result alias of the compel module.
pub type Result<T, E = CompelError> = std::result::Result<T, E>;

/// Everything that can go wrong while controlling a task with ptrace.
#[derive(Debug, thiserror::Error)]
pub enum CompelError {
    #[error("cannot seize task {tid}: {source} (check that it exists, is not already traced, and that we may ptrace it)")]
    Seize {
        tid: i32,
        #[source]
        source: Errno,
    },
    #[error("task {tid} does not exist (or has already been reaped)")]
    NoSuchTask { tid: i32 },
    #[error("ptrace {op} on task {tid} failed: {source}")]
    Ptrace {
        tid: i32,
        op: &'static str,
        #[source]
        source: Errno,
    },
    #[error("waitpid on task {tid} failed: {source} (is it traced by this thread?)")]
    Wait {
        tid: i32,
        #[source]
        source: Errno,
    },
    #[error("task {tid} did not stop within {timeout:?} while {what}")]
    Timeout {
        tid: i32,
        what: &'static str,
        timeout: Duration,
    },
    #[error("task {tid} {how} while {what}")]
    Exited {
        tid: i32,
        how: String,
        what: &'static str,
    },
    #[error("task {tid} reported an unexpected stop ({stop}) while {what}")]
    UnexpectedStop {
        tid: i32,
        stop: String,
        what: &'static str,
    },
    #[error("cannot read {path}: {source}")]
    Proc {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "task {tid} has no executable mapping to run system calls from (see /proc/{tid}/maps)"
    )]
    NoExecMapping { tid: i32 },
    #[error("cannot {op} {len} bytes at {addr:#x} in task {tid}: {source}")]
    Mem {
        tid: i32,
        op: &'static str,
        addr: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("remote system call {nr} in task {tid} failed: {errno} ({})", errno.desc())]
    RemoteSyscall { tid: i32, nr: i64, errno: Errno },
    #[error("remote system call {nr} in task {tid} stopped at {rip:#x}, not after the syscall site {site:#x} (is `syscall; int3` really there?)")]
    BadSite {
        tid: i32,
        nr: i64,
        site: u64,
        rip: u64,
    },
    #[error("invalid argument for task {tid}: {what}")]
    Invalid { tid: i32, what: String },
}
