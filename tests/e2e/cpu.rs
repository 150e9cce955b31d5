//! CPU state: registers captured mid-loop, the vDSO, rseq.

use crate::harness::{scenario, wait_syscall, Subject, READY_TIMEOUT, RESULT_TIMEOUT};
use std::time::Duration;

/// The program must be spinning in user space (its asm loop) when dumped.
fn spinning(prog: &str, args: &[&str]) {
    let mut s = Subject::spawn(prog, args);
    s.wait_ready(READY_TIMEOUT);
    wait_syscall(&s, &[], Duration::from_secs(10));
    s.checkpoint();
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn regs() {
    spinning("regs", &[]);
}

#[test]
fn regs_sse() {
    spinning("regs", &["sse"]);
}

#[test]
fn vdso() {
    scenario("vdso", &[]);
}

/// clock_gettime in a tight loop: the dump likely catches the IP inside the vDSO.
#[test]
fn vdso_clock_loop() {
    spinning("vdso", &["loop"]);
}

#[test]
fn rseq() {
    scenario("rseq", &[]);
}
