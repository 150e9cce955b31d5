//! ptrace control of a task and remote system calls in it (x86_64), like CRIU's libcompel.
//!
//! - [`Tracee`]: seize a task (or take over a child that called PTRACE_TRACEME), read and
//!   write its registers, FPU/XSAVE state, signal mask, queued signals, rseq and seccomp
//!   configuration and memory; detach on drop.
//! - [`Remote`]: make the stopped task execute system calls one at a time, with typed
//!   helpers (sigaction, itimers, sigaltstack, prctl, mmap, pread64, dup2, open, ...).
//!
//! Self-contained: depends only on libc, nix, thiserror and tracing.
//! All calls on one `Tracee` must come from the thread that created it (it is not `Send`).

mod error;
mod helpers;
mod procfs;
mod remote;
mod sys;
mod tracee;
mod tracee_state;
mod wait;

pub use error::{CompelError, Result};
pub use helpers::{Itimerval, KernelSigaction, StackT, Timeval};
pub use remote::{Remote, SYSCALL_INT3};
pub use tracee::Tracee;
pub use tracee_state::{RseqConfig, SeccompFilter, SockFilter};
pub use wait::{decode_status, Status, Stop};
