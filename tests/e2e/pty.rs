//! Pty pairs the tree holds itself (issue 10): a program with both ends (termios, window size,
//! packet mode, queued data both ways, controlling terminal), a tmux server with two panes and a
//! screen session, all dumped and restored from a non-terminal without --shell-job; and the dumps
//! that must be refused, a pty end whose other end is outside the tree.

use crate::harness::procfs;
use crate::harness::pty::pts_lock;
use crate::harness::rcr::{self, RcrRun};
use crate::harness::{reap_timeout, selftest, wait_until, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DUMP_TIMEOUT: Duration = Duration::from_secs(120);
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn pty_pair() {
    let _pts = pts_lock();
    let mut s = Subject::spawn("pty_pair", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&[]);
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// With -R the queued data read at dump is put back: the program finds it as it left it.
#[test]
fn pty_pair_leave_running() {
    let _pts = pts_lock();
    let mut s = Subject::spawn("pty_pair", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&["-R"]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// `pty_split MODE`: its child holds one end, the parent the other; dumping the child alone is
/// refused with `want` in the message, and the child runs on, untraced, its pair still working.
fn split_refused(mode: &str, want: &[&str]) {
    let mut s = Subject::spawn("pty_split", &[mode]);
    s.wait_ready(READY_TIMEOUT);
    let out = s.output();
    let child: i32 = out.lines().find_map(|l| l.strip_prefix("child ")?.trim().parse().ok()).unwrap_or_else(|| panic!("no child line: {out}"));
    if !selftest() {
        let images = s.path().join("child-images");
        let args: Vec<String> = ["dump", "-t", &child.to_string(), "-D", &images.to_string_lossy(), "-v4", "-o", "dump.log"].iter().map(|a| a.to_string()).collect();
        let run = rcr::run(&args, s.path(), vec![images.join("dump.log")], DUMP_TIMEOUT);
        assert!(!run.ok(), "the dump of pid {child} ({mode} end only) must be refused\n{}", run.describe());
        for w in want {
            assert!(run.stderr.contains(w), "the error should say '{w}'\n{}", run.describe());
        }
        wait_until(Duration::from_secs(5), "the child to run untraced", || {
            procfs::stat(child).is_some_and(|st| !st.stopped() && !st.dead()) && procfs::status_field(child, "TracerPid").as_deref() == Some("0")
        })
        .unwrap();
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn pty_master_alone_refused() {
    split_refused("master", &["is the master of pty /dev/pts/", "whose slave is open outside the tree", "--shell-job does not apply to a master"]);
}

#[test]
fn pty_slave_alone_refused() {
    split_refused("slave", &["a pty slave whose master is outside the tree", "--shell-job"]);
}

/// Whether `prog` can be run (asked for its version: `-V` for tmux, whose `-v` means verbose logs);
/// prints SKIPPED when not.
fn have(prog: &str) -> bool {
    let version = if prog == "tmux" { "-V" } else { "-v" };
    let ok = Command::new(prog).arg(version).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !ok {
        eprintln!("SKIPPED: {prog} is not installed");
    }
    ok
}

/// A command whose processes start with stdio on /dev/null and `log`, no fds of the test (a
/// daemon forked from it keeps them) and no terminal.
fn quiet_command(prog: &str, log: &Path) -> Command {
    let mut c = Command::new(prog);
    let f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    c.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f).env_remove("TMUX").env_remove("STY");
    // SAFETY: the closure runs in the child before exec and makes one async-signal-safe call.
    unsafe {
        c.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
            Ok(())
        });
    }
    c
}

/// The largest number among the lines of `text`.
fn last_count(text: &str) -> i64 {
    text.lines().filter_map(|l| l.trim().parse::<i64>().ok()).max().unwrap_or(-1)
}

/// (tty_nr, tpgid) of `pid`.
fn terminal_of(pid: i32) -> (i32, i32) {
    procfs::stat(pid).map(|s| (s.tty_nr, s.tpgid)).unwrap_or((0, 0))
}

/// A terminal multiplexer's server with two counting panes; every process it started is killed
/// and reaped by pid when the test ends.
struct Mux {
    dir: TestDir,
    kind: MuxKind,
    server: i32,
    /// The server's processes, recorded before the dump.
    pids: Vec<i32>,
}

enum MuxKind {
    /// tmux, with its socket in the test dir.
    Tmux,
    /// screen, with this session name and its sockets in the test dir.
    Screen(String),
}

impl Mux {
    fn log(&self) -> PathBuf {
        self.dir.path.join("mux.log")
    }

    /// The multiplexer's client with `args`.
    fn client(&self, args: &[&str]) -> Command {
        let mut c;
        match &self.kind {
            MuxKind::Tmux => {
                c = quiet_command("tmux", &self.log());
                c.arg("-S").arg(self.dir.path.join("sock"));
            }
            MuxKind::Screen(name) => {
                c = quiet_command("screen", &self.log());
                c.env("SCREENDIR", self.dir.path.join("sockets")).args(["-S", name]);
            }
        }
        c.args(args);
        c
    }

    /// What pane (window) `pane` shows.
    fn screen_of(&self, pane: usize) -> String {
        match &self.kind {
            MuxKind::Tmux => {
                let out = self.client(&["capture-pane", "-p", "-t", &format!("%{pane}")]).stdout(Stdio::piped()).output().unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
            MuxKind::Screen(_) => {
                let file = self.dir.path.join(format!("hardcopy-{pane}"));
                let _ = std::fs::remove_file(&file);
                let _ = self.client(&["-p", &pane.to_string(), "-X", "hardcopy", &file.to_string_lossy()]).status();
                std::fs::read_to_string(&file).unwrap_or_default()
            }
        }
    }

    /// Types `keys` and Enter into pane `pane`.
    fn send(&self, pane: usize, keys: &str) {
        let st = match &self.kind {
            MuxKind::Tmux => self.client(&["send-keys", "-t", &format!("%{pane}"), keys, "Enter"]).status(),
            MuxKind::Screen(_) => self.client(&["-p", &pane.to_string(), "-X", "stuff", &format!("{keys}\n")]).status(),
        };
        assert!(st.is_ok_and(|s| s.success()), "typing into pane {pane} failed");
    }

    /// Waits until pane `pane` counted past `n`; its count.
    fn counts_past(&self, pane: usize, n: i64, when: &str) -> i64 {
        let mut last = String::new();
        wait_until(Duration::from_secs(15), &format!("pane {pane} to count past {n} {when}"), || {
            last = self.screen_of(pane);
            last_count(&last) > n
        })
        .unwrap_or_else(|e| panic!("{e}; the pane shows:\n{last}\n{}", std::fs::read_to_string(self.log()).unwrap_or_default()));
        last_count(&last)
    }

    fn dump_restore(&mut self) -> Option<(RcrRun, RcrRun)> {
        self.pids = procfs::descendants(self.server);
        self.pids.push(self.server);
        if selftest() {
            return None;
        }
        let images = self.dir.path.join("images");
        let dump: Vec<String> = ["dump", "-t", &self.server.to_string(), "-D", &images.to_string_lossy(), "-v4", "-o", "dump.log"].iter().map(|a| a.to_string()).collect();
        let d = rcr::run(&dump, &self.dir.path, vec![images.join("dump.log")], DUMP_TIMEOUT);
        assert!(d.ok(), "dump of the server {} failed\n{}", self.server, d.describe());
        for &p in &self.pids {
            // Re-parented to the test process (a subreaper) once the server is gone: reap them.
            let r = wait_until(GONE_TIMEOUT, "a dumped process to disappear", || reap_timeout(p, Duration::ZERO).is_some() || procfs::stat(p).is_none());
            r.unwrap_or_else(|e| panic!("{e}: pid {p}"));
        }
        let restore: Vec<String> = ["restore", "-D", &images.to_string_lossy(), "-d", "-v4", "-o", "restore.log"].iter().map(|a| a.to_string()).collect();
        let r = rcr::run(&restore, &self.dir.path, vec![images.join("restore.log")], DUMP_TIMEOUT);
        assert!(r.ok(), "restore of the server {} failed\n{}", self.server, r.describe());
        Some((d, r))
    }

    /// The scenario: both panes count, the tree is dumped and restored, both panes count on, the
    /// panes' shells have their terminals as controlling terminals again, and keys reach pane 1.
    fn run(&mut self, name: &str, panes: &[i32]) {
        let before: Vec<i64> = (0..2).map(|p| self.counts_past(p, 3, "before the dump")).collect();
        let ttys: Vec<(i32, i32)> = panes.iter().map(|&p| terminal_of(p)).collect();
        assert!(ttys.iter().all(|t| t.0 != 0), "the panes' shells have no controlling terminal: {ttys:?}");
        let runs = self.dump_restore();
        for (p, &n) in before.iter().enumerate() {
            self.counts_past(p, n + 3, "after the restore");
        }
        let after: Vec<(i32, i32)> = panes.iter().map(|&p| terminal_of(p)).collect();
        assert_eq!(ttys, after, "controlling terminal and foreground group (tty_nr, tpgid) of the panes' shells");
        self.send(1, "hello");
        let mut last = String::new();
        wait_until(Duration::from_secs(10), "the keys to reach pane 1", || {
            last = self.screen_of(1);
            last.contains("got:hello")
        })
        .unwrap_or_else(|e| panic!("{e}; pane 1 shows:\n{last}"));
        if let Some((d, r)) = runs {
            eprintln!("{name}: dump {:?}, restore {:?} ({} processes)", d.wall, r.wall, self.pids.len());
        }
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        let mut pids = procfs::descendants(self.server);
        pids.extend(self.pids.iter().copied());
        pids.push(self.server);
        pids.sort_unstable();
        pids.dedup();
        for &p in &pids {
            let _ = crate::harness::kill(p, libc::SIGKILL);
        }
        for &p in &pids {
            let _ = reap_timeout(p, Duration::from_secs(2));
        }
    }
}

/// Pane 0 counts; pane 1 counts and answers each line typed with "got:LINE", read from /dev/tty
/// (as less or vim do: restored as a file of the pane's slave).
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done";
const READER: &str = "exec 3<>/dev/tty; i=0; while :; do i=$((i+1)); echo $i; if read -t 0.2 l <&3; then echo got:$l; fi; done";

/// A test dir for `prog`'s test, with the pts lock held; None (test SKIPPED) without `prog`.
fn mux_test(prog: &str) -> Option<(std::sync::MutexGuard<'static, ()>, TestDir)> {
    have(prog).then(|| (pts_lock(), TestDir::new(prog)))
}

#[test]
fn tmux_two_panes() {
    let Some((_pts, dir)) = mux_test("tmux") else { return };
    let sock = dir.path.join("sock");
    let log = dir.path.join("mux.log");
    let tmux = |args: &[&str]| {
        let out = quiet_command("tmux", &log).arg("-S").arg(&sock).args(args).stdout(Stdio::piped()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let st = quiet_command("tmux", &log).arg("-S").arg(&sock).args(["-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "40", "sh", "-c", COUNTER]).status().unwrap();
    assert!(st.success(), "tmux new-session: {st}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let server: i32 = tmux(&["display-message", "-p", "#{pid}"]).trim().parse().expect("the tmux server's pid");
    let mut mux = Mux { dir, kind: MuxKind::Tmux, server, pids: Vec::new() };
    tmux(&["split-window", "-t", "%0", "bash", "-c", READER]);
    let panes: Vec<i32> = tmux(&["list-panes", "-F", "#{pane_pid}"]).lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(panes.len(), 2, "two panes expected: {panes:?}");
    mux.run("tmux", &panes);
}

#[test]
fn screen_two_windows() {
    let Some((_pts, dir)) = mux_test("screen") else { return };
    let log = dir.path.join("mux.log");
    let name = format!("rcr-e2e-{}-{}", std::process::id(), crate::harness::unique());
    let rc = dir.path.join("screenrc");
    std::fs::write(&rc, format!("screen -t w0 0 sh -c '{COUNTER}'\nscreen -t w1 1 bash -c '{READER}'\n")).unwrap();
    // -D -m: the server is the process started here, in a session of its own, without forking.
    let mut cmd = quiet_command("screen", &log);
    cmd.args(["-D", "-m", "-S", &name, "-c"]).arg(&rc).env("SCREENDIR", dir.path.join("sockets"));
    std::fs::create_dir(dir.path.join("sockets")).unwrap();
    std::fs::set_permissions(dir.path.join("sockets"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // SAFETY: setsid in the child before exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    #[allow(clippy::zombie_processes)] // reaped by pid in Mux's drop, also after the restore
    let child = cmd.spawn().unwrap();
    let server = child.id() as i32;
    let mut mux = Mux { dir, kind: MuxKind::Screen(name), server, pids: Vec::new() };
    wait_until(Duration::from_secs(10), "screen's two windows", || procfs::descendants(server).len() >= 2).unwrap();
    let panes: Vec<i32> = procfs::children(server);
    assert_eq!(panes.len(), 2, "two windows expected: {panes:?}");
    mux.run("screen", &panes);
}
