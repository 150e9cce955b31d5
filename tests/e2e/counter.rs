//! The canonical example: a counter keeps counting after restore, with no restart from 0.

use crate::harness::{procfs, selftest, wait_until, Spawn, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The lines that are plain numbers.
fn numbers(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// 0, 1, 2, ... with nothing missing, repeated or restarted.
fn check_consecutive(nums: &[u64]) -> Result<(), String> {
    for (i, &n) in nums.iter().enumerate() {
        if n != i as u64 {
            let from = i.saturating_sub(3);
            return Err(format!(
                "counter sequence broken at line {i}: expected {i} got {n} (around: {:?})",
                &nums[from..(i + 3).min(nums.len())]
            ));
        }
    }
    Ok(())
}

fn last_number(path: &Path) -> u64 {
    numbers(&std::fs::read_to_string(path).unwrap_or_default()).last().copied().unwrap_or(0)
}

/// Waits until the numbers in `path` reach `target`.
fn wait_count(path: &Path, target: u64, timeout: Duration) {
    let mut last = 0;
    let r = wait_until(timeout, "the counter to advance", || {
        last = last_number(path);
        last >= target
    });
    if let Err(e) = r {
        panic!("{e}: reached {last}, expected {target}; output:\n{}", crate::harness::tail(path, 20));
    }
}

#[test]
fn consecutive_check_catches_restart() {
    assert!(check_consecutive(&[0, 1, 2, 3]).is_ok());
    assert!(check_consecutive(&[0, 1, 2, 0, 1]).is_err());
    assert!(check_consecutive(&[0, 1, 3]).is_err());
    assert!(check_consecutive(&[0, 1, 1, 2]).is_err());
    assert_eq!(numbers("READY\n0\n1\n# counted to 1\nPASS\n"), vec![0, 1]);
}

/// The C counter (100 ms period) through two dump/restore cycles.
#[test]
fn counter_two_cycles() {
    let mut s = Subject::spawn("counter", &[]);
    s.wait_ready(READY_TIMEOUT);
    wait_count(&s.out, 3, Duration::from_secs(10));
    for _ in 0..2 {
        s.dump(&[]);
        let at_dump = last_number(&s.out);
        s.restore(&[]);
        wait_count(&s.out, at_dump + 3, Duration::from_secs(10));
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    check_consecutive(&numbers(&s.output())).unwrap();
}

/// `rcr restore` without -d waits for the restored process and exits with its status.
#[test]
fn counter_restore_foreground() {
    let mut s = Subject::spawn("counter", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&[]);
    let at_dump = last_number(&s.out);
    s.restore_foreground(&[]);
    wait_count(&s.out, at_dump + 3, Duration::from_secs(10));
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    check_consecutive(&numbers(&s.output())).unwrap();
}

/// dump -R leaves the process running; after it is killed, the images restore it at the state
/// of the dump: the numbers after restore continue from the dump point, not from 0.
#[test]
fn leave_running_then_restore() {
    let mut s = Subject::spawn("counter", &[]);
    s.wait_ready(READY_TIMEOUT);
    wait_count(&s.out, 2, Duration::from_secs(10));
    s.dump(&["-R"]);
    let after_dump = last_number(&s.out);
    wait_count(&s.out, after_dump + 3, Duration::from_secs(10));
    if selftest() {
        s.signal(libc::SIGTERM);
        s.wait_result(RESULT_TIMEOUT).unwrap();
        return;
    }
    s.kill();
    let before_restore = last_number(&s.out);
    std::fs::OpenOptions::new().append(true).open(&s.out).unwrap().write_all(b"# restore\n").unwrap();
    s.restore(&[]);
    wait_count(&s.out, before_restore + 3, Duration::from_secs(15));
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    let text = s.output();
    let after = numbers(text.split_once("# restore\n").unwrap().1);
    assert!(after.len() >= 3, "too few numbers after restore: {after:?}");
    let first = after[0];
    assert!(
        first >= 1 && first <= after_dump + 1,
        "first number after restore is {first}: expected the count at dump time + 1 (<= {})",
        after_dump + 1
    );
    for w in after.windows(2) {
        assert_eq!(w[1], w[0] + 1, "numbers after restore not consecutive: {after:?}");
    }
}

/// A shell loop printing a counter once a second to its stdout (the log).
fn shell_counter(argv: Vec<String>, expect_no_children: bool) {
    let mut s = Spawn::command(argv).start();
    let log = s.log.clone();
    wait_count(&log, 1, Duration::from_secs(15));
    if expect_no_children {
        for _ in 0..6 {
            let kids = procfs::children(s.pid());
            assert!(kids.is_empty(), "the shell loop has children {kids:?}: it forks");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    s.dump(&[]);
    let at_dump = last_number(&log);
    s.restore(&[]);
    wait_count(&log, at_dump + 2, Duration::from_secs(15));
    check_consecutive(&numbers(&s.log_text())).unwrap();
    // The shell has no PASS protocol: Drop kills it.
}

/// `sh -c 'i=0; while true; do echo $i; i=$((i+1)); sleep 1; done'`: forks `sleep` every second.
#[test]
fn shell_loop_with_sleep_child() {
    let script = "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done";
    shell_counter(vec!["/bin/sh".into(), "-c".into(), script.into()], false);
}

/// The same loop without forking: bash's `read -t 1` on a FIFO nobody writes to (opened
/// read-write by the shell itself so that the open does not block).
#[test]
fn bash_loop_read_timeout() {
    let dir = TestDir::new("fifo");
    let fifo = dir.path.join("tick");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo: {}", std::io::Error::last_os_error());
    let script = r#"exec 3<>"$1"; i=0; while true; do echo $i; i=$((i+1)); read -t 1 -u 3; done"#;
    shell_counter(
        vec!["/bin/bash".into(), "-c".into(), script.into(), "bash".into(), fifo.to_string_lossy().into_owned()],
        true,
    );
}

/// The same loop with bash's loadable `sleep` builtin (Debian package bash-builtins).
#[test]
fn bash_loop_loadable_sleep() {
    let lib = Path::new("/usr/lib/bash/sleep");
    if !lib.exists() {
        eprintln!("SKIPPED: {} missing (install bash-builtins)", lib.display());
        return;
    }
    let script = "enable -f /usr/lib/bash/sleep sleep || exit 9; i=0; while true; do echo $i; i=$((i+1)); sleep 1; done";
    shell_counter(vec!["/bin/bash".into(), "-c".into(), script.into()], true);
}
