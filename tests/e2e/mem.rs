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

/// A file the process maps changed size after the dump: restore refuses with an error naming the
/// file, and no process is left at the pid.
#[test]
fn mapped_file_changed_size() {
    use crate::harness::{selftest, Subject, READY_TIMEOUT};
    if selftest() {
        return; // a failing restore is what it checks
    }
    let mut s = Subject::spawn("mem_file", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&[]);
    let shared = s.path().join("shared.dat");
    let f = std::fs::OpenOptions::new().write(true).open(&shared).unwrap();
    f.set_len(4096).unwrap();
    let run = s.try_restore(&[]);
    assert!(!run.ok(), "restore should fail: {}", run.stderr);
    assert!(run.stderr.contains("shared.dat") && run.stderr.contains("changed size"), "error should name the file: {}", run.stderr);
    assert!(!std::path::Path::new(&format!("/proc/{}", s.pid())).exists(), "a process was left at pid {}", s.pid());
}
