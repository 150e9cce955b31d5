//! Processes blocked in a system call when dumped.

use crate::harness::{wait_syscall, Subject, READY_TIMEOUT, RESULT_TIMEOUT};
use std::time::Duration;

const SYS_PAUSE: i64 = 34;
const SYS_NANOSLEEP: i64 = 35;
const SYS_RT_SIGTIMEDWAIT: i64 = 128;
const SYS_RT_SIGSUSPEND: i64 = 130;
const SYS_RESTART_SYSCALL: i64 = 219;
const SYS_CLOCK_NANOSLEEP: i64 = 230;

/// Dump while blocked in one of `before`; after restore (if `after` is non-empty) the process
/// must be blocked again in one of `after` (restarted), and then PASS on SIGTERM.
fn blocked(mode: &str, before: &[i64], after: &[i64]) {
    let mut s = Subject::spawn("syscall_restart", &[mode]);
    s.wait_ready(READY_TIMEOUT);
    wait_syscall(&s, before, Duration::from_secs(10));
    s.checkpoint();
    if !after.is_empty() {
        wait_syscall(&s, after, Duration::from_secs(10));
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn nanosleep() {
    blocked("nanosleep", &[SYS_NANOSLEEP, SYS_CLOCK_NANOSLEEP], &[]);
}

#[test]
fn pause() {
    blocked("pause", &[SYS_PAUSE], &[SYS_PAUSE, SYS_RESTART_SYSCALL]);
}

#[test]
fn sigsuspend() {
    blocked("sigsuspend", &[SYS_RT_SIGSUSPEND], &[SYS_RT_SIGSUSPEND, SYS_RESTART_SYSCALL]);
}

#[test]
fn sigtimedwait() {
    blocked("sigtimedwait", &[SYS_RT_SIGTIMEDWAIT], &[SYS_RT_SIGTIMEDWAIT, SYS_RESTART_SYSCALL]);
}
