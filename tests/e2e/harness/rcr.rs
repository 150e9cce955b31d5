//! Running the rcr binary with a timeout, capturing its output to files (not pipes: a restored,
//! detached process must not keep a pipe of ours open) and its peak RSS (wait4).

use super::{kill, reap_timeout, rcr_bin, try_reap, unique, Exit, Reap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A finished (or killed) rcr run.
#[derive(Debug, Clone)]
pub struct RcrRun {
    pub args: Vec<String>,
    /// None when rcr was not reaped (should not happen).
    pub exit: Option<Exit>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// The `-o` log file rcr wrote (empty if none).
    pub log: String,
    pub wall: Duration,
}

impl RcrRun {
    /// A run with nothing to show yet (no output, no time): a foreground restore still running, or a
    /// step the self-test mode skips.
    pub fn empty(args: Vec<String>, exit: Option<Exit>) -> RcrRun {
        RcrRun { args, exit, timed_out: false, stdout: String::new(), stderr: String::new(), log: String::new(), wall: Duration::ZERO }
    }

    /// rcr's own peak resident memory in KiB, as its log reports it (VmHWM: unlike wait4's
    /// ru_maxrss, it does not count the test process rcr was forked from).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let line = self.log.lines().rev().find_map(|l| l.split_once("rcr peak memory: ").map(|(_, r)| r))?;
        line.split_whitespace().next()?.parse().ok()
    }

    pub fn ok(&self) -> bool {
        self.exit == Some(Exit::Code(0)) && !self.timed_out
    }

    /// Everything rcr said: stderr, stdout and its log.
    pub fn messages(&self) -> String {
        format!("{}\n{}\n{}", self.stderr, self.stdout, self.log)
    }

    /// A multi-line description for assertion messages.
    pub fn describe(&self) -> String {
        let status = match (self.timed_out, self.exit) {
            (true, _) => "TIMED OUT (killed)".to_string(),
            (false, Some(e)) => e.to_string(),
            (false, None) => "not reaped".to_string(),
        };
        let log_tail: Vec<&str> = self.log.lines().collect();
        let log_tail = log_tail[log_tail.len().saturating_sub(80)..].join("\n");
        format!(
            "rcr {} -> {status} after {:?}\n--- rcr stderr ---\n{}\n--- rcr stdout ---\n{}\n--- rcr log (last 80 lines) ---\n{}",
            self.args.join(" "),
            self.wall,
            self.stderr.trim_end(),
            self.stdout.trim_end(),
            log_tail
        )
    }
}

/// A running rcr.
pub struct RcrProc {
    pub pid: i32,
    args: Vec<String>,
    out: PathBuf,
    err: PathBuf,
    logs: Vec<PathBuf>,
    started: Instant,
    done: bool,
}

/// Where rcr's stdio goes: files in `dir` (default) or a terminal (shell jobs), in which case rcr
/// starts in a new session with that terminal as its controlling tty, like a job of a shell.
pub enum RcrStdio<'a> {
    Files,
    Tty(&'a OwnedFd),
    /// Files, and rcr inherits this fd under its own number (an RPC client's end: `rcr swrk FD`).
    KeepFd(&'a OwnedFd),
}

impl RcrProc {
    /// Starts `rcr ARGS` with cwd `dir`. `logs`: candidate paths of its `-o` log file.
    pub fn start(args: &[String], dir: &Path, logs: Vec<PathBuf>, stdio: RcrStdio<'_>) -> RcrProc {
        RcrProc::start_via(&[], args, dir, logs, stdio)
    }

    /// The same, run through the command `via` (`setpriv --bounding-set ... --`, a shell that lowers
    /// a limit first): `via... rcr ARGS`.
    pub fn start_via(via: &[&str], args: &[String], dir: &Path, logs: Vec<PathBuf>, stdio: RcrStdio<'_>) -> RcrProc {
        let n = unique();
        let verb = args.first().map(String::as_str).unwrap_or("rcr");
        let out = dir.join(format!("rcr-{verb}-{n}.stdout"));
        let err = dir.join(format!("rcr-{verb}-{n}.stderr"));
        let mut cmd = match via.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(rcr_bin());
                c
            }
            None => Command::new(rcr_bin()),
        };
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        cmd.stdout(std::fs::File::create(&out).unwrap());
        cmd.stderr(std::fs::File::create(&err).unwrap());
        if let RcrStdio::Tty(slave) = stdio {
            let fd = slave.as_raw_fd();
            // SAFETY: the closure runs in the forked child before exec and only makes
            // async-signal-safe syscalls (dup2, setsid, ioctl).
            unsafe {
                cmd.pre_exec(move || {
                    for target in 0..3 {
                        if libc::dup2(fd, target) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if let RcrStdio::KeepFd(keep) = stdio {
            let fd = keep.as_raw_fd();
            // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which is
            // async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        // Reaped by pid, in wait/kill/drop.
        #[allow(clippy::zombie_processes)]
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", rcr_bin().display()));
        RcrProc {
            pid: child.id() as i32,
            args: args.to_vec(),
            out,
            err,
            logs,
            started: Instant::now(),
            done: false,
        }
    }

    fn collect(&mut self, exit: Option<Exit>, timed_out: bool) -> RcrRun {
        self.done = true;
        let read = |p: &Path| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let log = self.logs.iter().map(|p| read(p)).find(|s| !s.is_empty()).unwrap_or_default();
        RcrRun {
            args: self.args.clone(),
            exit,
            timed_out,
            stdout: read(&self.out),
            stderr: read(&self.err),
            log,
            wall: self.started.elapsed(),
        }
    }

    /// Has it finished? (non-blocking)
    pub fn try_finish(&mut self) -> Option<RcrRun> {
        match try_reap(self.pid) {
            Reap::Exited(e, _) => Some(self.collect(Some(e), false)),
            Reap::NotChild => Some(self.collect(None, false)),
            Reap::Running => None,
        }
    }

    /// Waits up to `timeout`; on timeout kills rcr (SIGKILL, by pid) and reports `timed_out`.
    pub fn wait(mut self, timeout: Duration) -> RcrRun {
        let start = Instant::now();
        loop {
            if let Some(run) = self.try_finish() {
                return run;
            }
            if start.elapsed() > timeout {
                let _ = kill(self.pid, libc::SIGKILL);
                let r = reap_timeout(self.pid, Duration::from_secs(10));
                return self.collect(r.map(|x| x.0), true);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL rcr now and reap it.
    pub fn kill(mut self) -> RcrRun {
        let _ = kill(self.pid, libc::SIGKILL);
        let r = reap_timeout(self.pid, Duration::from_secs(10));
        self.collect(r.map(|x| x.0), false)
    }
}

impl Drop for RcrProc {
    fn drop(&mut self) {
        if !self.done {
            let _ = kill(self.pid, libc::SIGKILL);
            let _ = reap_timeout(self.pid, Duration::from_secs(10));
        }
    }
}

/// Runs rcr to completion (bounded by `timeout`) with output to files in `dir`.
pub fn run(args: &[String], dir: &Path, logs: Vec<PathBuf>, timeout: Duration) -> RcrRun {
    RcrProc::start(args, dir, logs, RcrStdio::Files).wait(timeout)
}
