//! A shell job: a process with a pty as controlling terminal, dumped and restored with
//! --shell-job; after restore its output arrives on the restoring terminal.

use crate::harness::{wait_until, Spawn, READY_TIMEOUT, RESULT_TIMEOUT};
use std::time::Duration;

#[test]
fn shell_job() {
    let _pts = crate::harness::pty::pts_lock();
    let mut s = Spawn::prog("shell_job", &[]).pty().start();
    s.wait_ready(READY_TIMEOUT);
    wait_until(Duration::from_secs(10), "'hello before dump' on the pty", || {
        s.first_terminal_output().contains("hello before dump")
    })
    .unwrap();
    s.dump(&["--shell-job"]);
    s.restore_foreground(&["--shell-job"]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    let want = format!("hello after restore {}", s.pid());
    wait_until(Duration::from_secs(10), "the restored process's output on the new pty", || {
        s.terminal_output().contains(&want)
    })
    .unwrap_or_else(|e| panic!("{e}; new pty got: {:?}", s.terminal_output()));
}
