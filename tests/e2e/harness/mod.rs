//! End-to-end harness: builds the C test programs, starts them as subjects, runs `rcr dump` /
//! `rcr restore` on them with timeouts, and collects their PASS/FAIL verdicts.
//!
//! Shared by the `e2e` test binary and the `dump_restore` benchmark (included there by path),
//! so not every item is used by both.
#![allow(dead_code)]

pub mod procfs;
pub mod pty;
pub mod rcr;
pub mod stats;
pub mod subject;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use procfs::SyscallState;
pub use subject::{Spawn, Subject};

/// Compiler flags of the test programs (part of the cache key).
const CFLAGS: &[&str] = &["-O1", "-g", "-Wall"];

/// `RCR_E2E_SELFTEST=1`: run every scenario without checkpoint/restore (dump and restore are
/// no-ops), to validate the test programs themselves. Never set in CI.
pub fn selftest() -> bool {
    std::env::var("RCR_E2E_SELFTEST").map(|v| v == "1").unwrap_or(false)
}

/// The rcr binary under test: this package's, or `RCR_BIN` (e.g. a release build) if set.
pub fn rcr_bin() -> PathBuf {
    match std::env::var_os("RCR_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_rcr")),
    }
}

/// Directory of the test programs' sources.
pub fn progs_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/progs")
}

/// `target/testprogs`: where compiled test programs are cached.
fn progs_out_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp` for integration tests and benches.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("testprogs")
}

/// One-time process setup: become a child subreaper, so that a restored process whose restorer
/// exited (`rcr restore -d`) is re-parented to us and can be reaped with waitpid.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER: {}", std::io::Error::last_os_error());
    });
}

/// Compiles `tests/progs/NAME.c` (once per test run; the binary is cached under
/// `target/testprogs/NAME-<hash of sources and flags>`, so a binary in use is never replaced),
/// and returns its path. Safe to call concurrently from threads and processes: it compiles to a
/// unique temporary name and renames.
pub fn build_prog(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut map = BUILT.get_or_init(Default::default).lock().unwrap();
        map.entry(name.to_string()).or_default().clone()
    };
    cell.get_or_init(|| compile(name)).clone()
}

fn compile(name: &str) -> PathBuf {
    let src_dir = progs_src_dir();
    let src = src_dir.join(format!("{name}.c"));
    let text = std::fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let common = std::fs::read(src_dir.join("common.h")).unwrap();
    let mut h = DefaultHasher::new();
    (text, common, CFLAGS).hash(&mut h);
    let out_dir = progs_out_dir();
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}-{:016x}", h.finish()));
    if out.exists() {
        return out;
    }
    let tmp = out_dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let res = Command::new("cc")
        .args(CFLAGS)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("run cc for {}: {e}", src.display()));
    if !res.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "compiling {} failed ({}):\n{}",
            src.display(),
            res.status,
            String::from_utf8_lossy(&res.stderr)
        );
    }
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// How long a program may take to set up its state and write READY.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a program may take to verify its state after SIGTERM.
pub const RESULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The standard scenario: start `prog OUTFILE ARGS`, wait for READY, dump, restore, SIGTERM,
/// and require PASS.
pub fn scenario(prog: &str, args: &[&str]) {
    let mut s = Subject::spawn(prog, args);
    s.wait_ready(READY_TIMEOUT);
    s.checkpoint();
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(RESULT_TIMEOUT) {
        panic!("{e}");
    }
}

/// Waits until the subject is blocked in one of the syscalls `nrs` (per /proc/PID/syscall), or
/// running in user space when `nrs` is empty.
pub fn wait_syscall(s: &Subject, nrs: &[i64], timeout: Duration) {
    let mut last = SyscallState::Unknown(String::new());
    let r = wait_until(timeout, "the subject to reach the expected syscall state", || {
        last = procfs::syscall(s.pid());
        match &last {
            SyscallState::Running | SyscallState::User => nrs.is_empty(),
            SyscallState::In(nr) => nrs.contains(nr),
            SyscallState::Unknown(_) => false,
        }
    });
    if let Err(e) = r {
        panic!("{e}: expected {nrs:?} (empty: running), /proc/{}/syscall says {last:?}", s.pid());
    }
}

/// A process-wide counter for unique names.
pub fn unique() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A unique directory, removed on drop unless the thread is panicking (then kept for debugging
/// and its path printed).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        TestDir::new_in(&std::env::temp_dir(), tag)
    }

    pub fn new_in(base: &Path, tag: &str) -> TestDir {
        let path = base.join(format!("rcr-e2e-{}-{}-{tag}", std::process::id(), unique()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestDir { path }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; Err(what) after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The last `n` lines of a file (for failure messages); empty if unreadable.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Does `text` contain `num` as a whole decimal number (not part of a longer one)?
pub fn mentions_number(text: &str, num: i64) -> bool {
    let want = num.to_string();
    text.split(|c: char| !c.is_ascii_digit()).any(|tok| tok == want)
}

/// Sends `sig` to `pid`.
pub fn kill(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) with integer arguments.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

fn decode(status: i32) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Result of one non-blocking wait on a specific pid.
pub enum Reap {
    Exited(Exit, libc::rusage),
    Running,
    /// Not our child (ECHILD).
    NotChild,
}

/// waitpid(pid, WNOHANG) with the child's rusage (wait4).
pub fn try_reap(pid: i32) -> Reap {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes to the two valid out-pointers only.
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
    if r == pid {
        Reap::Exited(decode(status), ru)
    } else if r == 0 {
        Reap::Running
    } else {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            Reap::Running
        } else {
            Reap::NotChild
        }
    }
}

/// Waits (polling) for our child `pid` to end; None on timeout or if it is not our child.
pub fn reap_timeout(pid: i32, timeout: Duration) -> Option<(Exit, libc::rusage)> {
    let start = Instant::now();
    loop {
        match try_reap(pid) {
            Reap::Exited(e, ru) => return Some((e, ru)),
            Reap::NotChild => return None,
            Reap::Running if start.elapsed() > timeout => return None,
            Reap::Running => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// SIGKILL our child `pid` and reap it (bounded wait).
pub fn kill_and_reap(pid: i32) {
    let _ = kill(pid, libc::SIGKILL);
    let _ = reap_timeout(pid, Duration::from_secs(10));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_number_matches_whole_numbers_only() {
        assert!(mentions_number("cannot seize pid 1234: No such process", 1234));
        assert!(mentions_number("1234", 1234));
        assert!(!mentions_number("pid 12345 gone", 1234));
        assert!(!mentions_number("pid 11234 gone", 1234));
        assert!(mentions_number("task 2 (kthreadd) is a kernel thread", 2));
        assert!(!mentions_number("error 22", 2));
    }
}
