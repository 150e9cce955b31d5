//! The programs' verification can fail: state changed from outside between READY and SIGTERM
//! must be reported as FAIL. These run without rcr.

use crate::harness::{Subject, READY_TIMEOUT, RESULT_TIMEOUT};
use std::io::{Seek, SeekFrom, Write};

fn expect_fail(s: &mut Subject, needle: &str) {
    s.signal(libc::SIGTERM);
    let err = s.wait_result(RESULT_TIMEOUT).expect_err("the program passed although its state was changed");
    assert!(err.contains(needle), "expected a FAIL mentioning '{needle}', got:\n{err}");
}

/// A byte written into an untouched page of the sparse 128 MiB area (via /proc/PID/mem).
#[test]
fn mem_anon_detects_changed_memory() {
    let mut s = Subject::spawn("mem_anon", &[]);
    s.wait_ready(READY_TIMEOUT);
    let maps = crate::harness::procfs::maps(s.pid());
    let start = maps
        .lines()
        .find_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (a, b) = range.split_once('-')?;
            let (a, b) = (u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?);
            (b - a == 128 << 20 && rest.starts_with("rw-p")).then_some(a)
        })
        .expect("no 128 MiB rw-p mapping in the subject");
    let mut mem = std::fs::OpenOptions::new().write(true).open(format!("/proc/{}/mem", s.pid())).unwrap();
    mem.seek(SeekFrom::Start(start + 2 * 4096 + 5)).unwrap();
    mem.write_all(&[0x01]).unwrap();
    expect_fail(&mut s, "large area page 2 (untouched): byte 5");
}

/// An extra shared SIGUSR1 (only a private one was pending).
#[test]
fn signals_detects_changed_pending_set() {
    let mut s = Subject::spawn("signals", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.signal(libc::SIGUSR1);
    expect_fail(&mut s, "ShdPnd");
}

/// The nice value changed from outside.
#[test]
fn identity_detects_changed_nice() {
    let mut s = Subject::spawn("identity", &["batch"]);
    s.wait_ready(READY_TIMEOUT);
    // SAFETY: setpriority with integer arguments.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, s.pid() as libc::id_t, 3) };
    assert_eq!(r, 0, "setpriority: {}", std::io::Error::last_os_error());
    expect_fail(&mut s, "nice: expected 7 got 3");
}
