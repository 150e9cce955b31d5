//! Memory: anonymous (heap, brk, mmap, sparse, stack, data/bss) and file mappings.

use crate::harness::{scenario, Subject, READY_TIMEOUT, RESULT_TIMEOUT};

#[test]
fn mem_anon() {
    scenario("mem_anon", &[]);
}

#[test]
fn mem_anon_shared() {
    scenario("mem_anon", &["shared"]);
}

#[test]
fn mem_file() {
    scenario("mem_file", &[]);
}

/// A restored process can be dumped and restored again.
#[test]
fn mem_anon_two_cycles() {
    let mut s = Subject::spawn("mem_anon", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.checkpoint();
    s.checkpoint();
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}
