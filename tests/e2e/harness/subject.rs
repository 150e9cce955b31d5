//! A subject: one test program (or shell command) being checkpointed and restored.

use super::procfs;
use super::pty::Pty;
use super::rcr::{self, RcrProc, RcrRun, RcrStdio};
use super::{build_prog, init, kill, reap_timeout, selftest, tail, try_reap, wait_until, Exit, Reap, TestDir};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const DUMP_TIMEOUT: Duration = Duration::from_secs(120);
pub const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a killed dump target may take to disappear.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a subject.
pub struct Spawn {
    prog: Option<String>,
    argv: Vec<String>,
    pty: bool,
    base: Option<PathBuf>,
}

impl Spawn {
    /// Test program `tests/progs/NAME.c`, run as `NAME OUTFILE ARGS...`.
    pub fn prog(name: &str, args: &[&str]) -> Spawn {
        Spawn { prog: Some(name.into()), argv: args.iter().map(|s| s.to_string()).collect(), pty: false, base: None }
    }

    /// Any command line (e.g. a shell loop); OUTFILE is not passed (use `Subject::out` in argv).
    pub fn command(argv: Vec<String>) -> Spawn {
        Spawn { prog: None, argv, pty: false, base: None }
    }

    /// Give it a pty as controlling terminal and stdin/stdout/stderr (a shell job).
    pub fn pty(mut self) -> Spawn {
        self.pty = true;
        self
    }

    /// Create the subject's directory (and images) under `base` instead of the temp dir.
    pub fn in_dir(mut self, base: &Path) -> Spawn {
        self.base = Some(base.to_path_buf());
        self
    }

    pub fn start(self) -> Subject {
        init();
        let name = self.prog.clone().unwrap_or_else(|| {
            Path::new(&self.argv[0]).file_name().unwrap().to_string_lossy().into_owned()
        });
        let dir = match &self.base {
            Some(b) => TestDir::new_in(b, &name),
            None => TestDir::new(&name),
        };
        let out = dir.path.join("out.txt");
        let log = dir.path.join("log.txt");
        let images = dir.path.join("images");
        std::fs::create_dir(&images).unwrap();
        let mut cmd = match &self.prog {
            Some(p) => {
                let mut c = Command::new(build_prog(p));
                c.arg(&out).args(&self.argv);
                c
            }
            None => {
                let mut c = Command::new(&self.argv[0]);
                c.args(&self.argv[1..]);
                c
            }
        };
        cmd.current_dir(&dir.path);
        let pty = self.pty.then(Pty::open);
        match &pty {
            Some(p) => {
                cmd.stdin(p.slave.try_clone().unwrap());
                cmd.stdout(p.slave.try_clone().unwrap());
                cmd.stderr(p.slave.try_clone().unwrap());
            }
            None => {
                let f = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
                cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f);
            }
        }
        let tty = pty.is_some();
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe syscalls (setsid, ioctl).
        unsafe {
            cmd.pre_exec(move || {
                // Only stdio goes to the subject: an fd leaked from whatever started the tests (a
                // pipe of the CI runner, say) would be part of its checkpoint.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Reaped by pid (waitpid/wait4), also after restore when it is no std Child any more.
        #[allow(clippy::zombie_processes)]
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Subject {
            name,
            pid: child.id() as i32,
            dir,
            out,
            log,
            images,
            live: true,
            fg: None,
            pty,
            restore_pty: None,
            exit: None,
            tree: Vec::new(),
        }
    }
}

pub struct Subject {
    pub name: String,
    pub dir: TestDir,
    /// OUTFILE: READY / PASS / FAIL lines (and a counter's numbers).
    pub out: PathBuf,
    /// The program's stdout and stderr (unless it has a pty).
    pub log: PathBuf,
    pub images: PathBuf,
    pid: i32,
    /// A process at `pid` exists that we must kill and reap.
    live: bool,
    /// A foreground `rcr restore` (no -d): the restored process is its child, its exit status
    /// is the subject's.
    fg: Option<RcrProc>,
    pty: Option<Pty>,
    restore_pty: Option<Pty>,
    exit: Option<Exit>,
    /// Descendants of the subject seen at the last dump: re-parented to the test process (a
    /// subreaper) when the dump kills the tree, and reaped here.
    tree: Vec<i32>,
}

impl Subject {
    /// Builds and starts test program `prog` as `prog OUTFILE ARGS...`.
    pub fn spawn(prog: &str, args: &[&str]) -> Subject {
        Spawn::prog(prog, args).start()
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The dir for the subject's own files.
    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// Contents of OUTFILE.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Contents of the stdout/stderr log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What arrived on the terminal the subject currently has (the restore pty once restored
    /// as a shell job, else the original one).
    pub fn terminal_output(&self) -> String {
        self.restore_pty.as_ref().or(self.pty.as_ref()).map(Pty::output).unwrap_or_default()
    }

    /// What arrived on the original terminal.
    pub fn first_terminal_output(&self) -> String {
        self.pty.as_ref().map(Pty::output).unwrap_or_default()
    }

    fn context(&self) -> String {
        format!(
            "subject {} pid {} in {}\n--- OUTFILE (last 30 lines) ---\n{}\n--- stdout/stderr (last 30 lines) ---\n{}",
            self.name,
            self.pid,
            self.dir.path.display(),
            tail(&self.out, 30),
            tail(&self.log, 30)
        )
    }

    /// Has the subject exited? Reaps it if so (our child).
    fn check_exited(&mut self) -> Option<Exit> {
        if !self.live {
            return self.exit;
        }
        if let Some(fg) = self.fg.as_mut() {
            if let Some(run) = fg.try_finish() {
                self.fg = None;
                self.live = false;
                self.exit = run.exit;
            }
            return self.exit;
        }
        match try_reap(self.pid) {
            Reap::Exited(e, _) => {
                self.live = false;
                self.exit = Some(e);
            }
            Reap::NotChild => {
                if !matches!(procfs::stat(self.pid), Some(s) if !s.dead()) {
                    self.live = false;
                }
            }
            Reap::Running => {}
        }
        self.exit
    }

    /// Waits for READY in OUTFILE (panics with the subject's output on timeout or early exit).
    pub fn wait_ready(&mut self, timeout: Duration) {
        self.wait_output("READY", timeout);
    }

    /// Waits until OUTFILE has a line equal to `line`.
    pub fn wait_output(&mut self, line: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.output().lines().any(|l| l == line) {
                return;
            }
            let fails: Vec<String> = self.output().lines().filter(|l| l.starts_with("FAIL")).map(String::from).collect();
            if !fails.is_empty() {
                panic!("{} reported failures before '{line}':\n{}\n{}", self.name, fails.join("\n"), self.context());
            }
            if self.check_exited().is_some() || !self.live {
                panic!("{} exited ({:?}) before writing '{line}'\n{}", self.name, self.exit, self.context());
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for '{line}' from {}\n{}", self.name, self.context());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn dump_args(&self, images: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = ["dump", "-t", &self.pid.to_string(), "-D", &images.to_string_lossy()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["-v4", "-o", "dump.log"].iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    fn logs(&self, name: &str) -> Vec<PathBuf> {
        vec![self.images.join(name), self.dir.path.join(name)]
    }

    /// Runs `rcr dump` on the subject, no assertions (failure tests).
    pub fn try_dump(&self, extra: &[&str]) -> RcrRun {
        self.try_dump_into(&self.images, extra)
    }

    /// Runs `rcr dump` into another images dir, no assertions (failure tests).
    pub fn try_dump_into(&self, images: &Path, extra: &[&str]) -> RcrRun {
        let logs = vec![images.join("dump.log"), self.dir.path.join("dump.log")];
        rcr::run(&self.dump_args(images, extra), &self.dir.path, logs, DUMP_TIMEOUT)
    }

    /// Runs `rcr dump` through the command `via` (one that narrows what rcr may do), no assertions.
    pub fn try_dump_via(&self, via: &[&str]) -> RcrRun {
        RcrProc::start_via(via, &self.dump_args(&self.images, &[]), &self.dir.path, self.logs("dump.log"), RcrStdio::Files).wait(DUMP_TIMEOUT)
    }

    /// Starts `rcr dump` in the background (to kill it midway).
    pub fn start_dump(&self, extra: &[&str]) -> RcrProc {
        RcrProc::start(&self.dump_args(&self.images, extra), &self.dir.path, self.logs("dump.log"), RcrStdio::Files)
    }

    /// `rcr dump -t PID -D images -v4 -o dump.log EXTRA`, which must succeed. Without -R the
    /// target must be gone afterwards (reaped here: it was our child); with -R it must be running,
    /// neither stopped nor traced. A no-op in self-test mode.
    pub fn dump(&mut self, extra: &[&str]) -> RcrRun {
        let leave_running = extra.iter().any(|a| *a == "-R" || *a == "--leave-running");
        if selftest() {
            std::thread::sleep(Duration::from_millis(100));
            return fake_run("dump");
        }
        self.tree = procfs::descendants(self.pid);
        let run = self.try_dump(extra);
        assert!(run.ok(), "rcr dump failed\n{}\n{}", run.describe(), self.context());
        if leave_running {
            self.assert_running_untraced(Duration::from_secs(5));
        } else {
            self.wait_gone(&run);
        }
        run
    }

    /// A dump made by other means than `rcr dump` (an RPC client): `dump(pid)` makes it; then the
    /// subject must be gone, as after [`Subject::dump`] without -R.
    pub fn dump_by(&mut self, what: &str, dump: impl FnOnce(i32)) {
        self.tree = procfs::descendants(self.pid);
        dump(self.pid);
        self.wait_gone(&RcrRun::empty(vec![what.to_string()], None));
    }

    /// A restore made by other means (an RPC client) that says it restored `pid`: it must be the
    /// original pid, running.
    pub fn restored_by(&mut self, what: &str, pid: i32) {
        assert!(!self.live, "{what}: restore while the subject (pid {}) still runs", self.pid);
        assert_eq!(pid, self.pid, "{what} restored pid {pid} instead of the original {}", self.pid);
        self.live = true;
        match procfs::stat(pid) {
            Some(s) if !s.dead() => {}
            other => panic!("{what}: restored pid {pid} is not running: {other:?}\n{}", self.context()),
        }
    }

    fn wait_gone(&mut self, run: &RcrRun) {
        let pid = self.pid;
        if let Some(fg) = self.fg.take() {
            let r = fg.wait(GONE_TIMEOUT);
            assert!(!r.timed_out, "foreground restorer did not exit after its process was dumped\n{}", r.describe());
        } else {
            let mut ended = None;
            let r = wait_until(GONE_TIMEOUT, "the dumped process to disappear", || match try_reap(pid) {
                Reap::Exited(e, _) => {
                    ended = Some(e);
                    true
                }
                Reap::NotChild => !matches!(procfs::stat(pid), Some(s) if !s.dead()),
                Reap::Running => false,
            });
            if let Err(e) = r {
                panic!("{e}: rcr dump succeeded but pid {pid} still runs\n{}\n{}", run.describe(), self.context());
            }
            if let Some(e @ Exit::Code(_)) = ended {
                panic!(
                    "after dump, pid {pid} ended by itself ({e}) instead of being killed by rcr\n{}\n{}",
                    run.describe(),
                    self.context()
                );
            }
        }
        self.live = false;
        assert!(procfs::stat(pid).is_none(), "pid {pid} still exists after dump (not reaped?)");
        for &d in &self.tree {
            // Orphans come to the test process (a subreaper) once their parent is gone: reap them, so
            // that their pids are free for the restore.
            let r = wait_until(GONE_TIMEOUT, "a dumped descendant to disappear", || match try_reap(d) {
                Reap::Exited(..) => true,
                Reap::NotChild => procfs::stat(d).is_none(),
                Reap::Running => false,
            });
            if let Err(e) = r {
                panic!("{e}: rcr dump succeeded but descendant {d} of {pid} still runs\n{}", run.describe());
            }
        }
    }

    /// The subject runs: not stopped, not traced, not a zombie.
    pub fn assert_running_untraced(&self, timeout: Duration) {
        let pid = self.pid;
        let mut last = String::new();
        let r = wait_until(timeout, "the subject to run untraced", || {
            let st = procfs::stat(pid);
            let tracer = procfs::status_field(pid, "TracerPid");
            last = format!("stat {st:?}, TracerPid {tracer:?}");
            matches!(&st, Some(s) if !s.stopped() && !s.dead()) && tracer.as_deref() == Some("0")
        });
        if let Err(e) = r {
            panic!("{e}: pid {pid}: {last}\n{}", self.context());
        }
    }

    fn restore_args(&self, detached: bool, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["restore".into(), "-D".into(), self.images.to_string_lossy().into_owned()];
        if detached {
            a.push("-d".into());
        }
        a.extend(["--pidfile".to_string(), self.pidfile().to_string_lossy().into_owned()]);
        a.extend(["-v4", "-o", "restore.log"].iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.path.join("restore.pid")
    }

    /// Runs `rcr restore -d` on the subject's images, no assertions (failure tests).
    pub fn try_restore(&self, extra: &[&str]) -> RcrRun {
        let _ = std::fs::remove_file(self.pidfile());
        rcr::run(&self.restore_args(true, extra), &self.dir.path, self.logs("restore.log"), RESTORE_TIMEOUT)
    }

    /// Runs `rcr restore -d EXTRA` through the command `via`, no assertions (failure tests).
    pub fn try_restore_via(&self, via: &[&str], extra: &[&str]) -> RcrRun {
        let _ = std::fs::remove_file(self.pidfile());
        RcrProc::start_via(via, &self.restore_args(true, extra), &self.dir.path, self.logs("restore.log"), RcrStdio::Files).wait(RESTORE_TIMEOUT)
    }

    /// `rcr restore -D images -d --pidfile F -v4 -o restore.log EXTRA`, which must succeed; then
    /// the process must run at its original pid (pidfile and /proc), re-parented to us.
    /// A no-op in self-test mode.
    pub fn restore(&mut self, extra: &[&str]) -> RcrRun {
        if selftest() {
            std::thread::sleep(Duration::from_millis(100));
            return fake_run("restore");
        }
        assert!(!self.live, "restore while the subject (pid {}) still runs", self.pid);
        let run = self.try_restore(extra);
        assert!(run.ok(), "rcr restore failed\n{}\n{}", run.describe(), self.context());
        self.live = true; // from here on, Drop kills whatever runs at pid
        self.assert_restored_pid(&run);
        let pid = self.pid;
        let st = procfs::stat(pid).unwrap();
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        assert_eq!(
            st.ppid, me,
            "restored pid {pid} has parent {} instead of the test process {me} (subreaper): cannot reap it\n{}",
            st.ppid,
            run.describe()
        );
        run
    }

    /// After a restore run by the test itself (`try_restore*`) that succeeded: the subject runs again at
    /// its pid (checked as [`Subject::restore`] does) and is the test's to signal, wait for and kill.
    pub fn adopt_restored(&mut self, run: &RcrRun) {
        assert!(run.ok(), "rcr restore failed\n{}\n{}", run.describe(), self.context());
        self.live = true;
        self.assert_restored_pid(run);
    }

    fn assert_restored_pid(&self, run: &RcrRun) {
        let pid = self.pid;
        let text = std::fs::read_to_string(self.pidfile()).unwrap_or_default();
        assert_eq!(
            text.trim().parse::<i32>().ok(),
            Some(pid),
            "--pidfile {} holds '{}', expected the original pid {pid}\n{}",
            self.pidfile().display(),
            text.trim(),
            run.describe()
        );
        match procfs::stat(pid) {
            Some(s) if !s.dead() => {}
            other => panic!("restored pid {pid} is not running: {other:?}\n{}\n{}", run.describe(), self.context()),
        }
    }

    /// `rcr restore` without -d, left running in the background: it waits for the restored
    /// process and exits with its status, which `wait_result` then reports. A shell-job subject
    /// gets a new pty as rcr's terminal (rcr in a new session with it as controlling tty).
    pub fn restore_foreground(&mut self, extra: &[&str]) {
        if selftest() {
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        assert!(!self.live, "restore while the subject (pid {}) still runs", self.pid);
        let _ = std::fs::remove_file(self.pidfile());
        let args = self.restore_args(false, extra);
        if self.pty.is_some() {
            self.restore_pty = Some(Pty::open());
        }
        let stdio = match &self.restore_pty {
            Some(p) => RcrStdio::Tty(&p.slave),
            None => RcrStdio::Files,
        };
        let mut proc = RcrProc::start(&args, &self.dir.path, self.logs("restore.log"), stdio);
        let pidfile = self.pidfile();
        let mut early = None;
        let r = wait_until(RESTORE_TIMEOUT, "the --pidfile of the foreground restore", || {
            if let Some(run) = proc.try_finish() {
                early = Some(run);
                return true;
            }
            std::fs::read_to_string(&pidfile).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
        });
        if let Some(run) = early {
            panic!("foreground rcr restore exited before the process ran\n{}\n{}", run.describe(), self.context());
        }
        if let Err(e) = r {
            let run = proc.kill();
            panic!("{e}\n{}", run.describe());
        }
        self.live = true;
        let run_now = RcrRun::empty(args, None);
        self.fg = Some(proc);
        self.assert_restored_pid(&run_now);
    }

    /// Dump (killing the original) and restore detached.
    pub fn checkpoint(&mut self) {
        self.dump(&[]);
        self.restore(&[]);
    }

    /// SIGKILL the subject now and reap it (e.g. the original after `dump -R`).
    pub fn kill(&mut self) {
        if self.live {
            let _ = kill(self.pid, libc::SIGKILL);
            if let Some(fg) = self.fg.take() {
                let _ = fg.wait(GONE_TIMEOUT);
            } else {
                let _ = reap_timeout(self.pid, GONE_TIMEOUT);
            }
            self.live = false;
        }
    }

    pub fn signal(&self, sig: i32) {
        if let Err(e) = kill(self.pid, sig) {
            panic!("kill({}, {sig}): {e}\n{}", self.pid, self.context());
        }
    }

    /// Waits for the subject to exit and reads its verdict: Ok if it wrote PASS and exited 0.
    pub fn wait_result(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        while self.live {
            if self.check_exited().is_some() || !self.live {
                break;
            }
            if start.elapsed() > timeout {
                return Err(format!("timed out after {timeout:?} waiting for the result\n{}", self.context()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = self.output();
        let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
        let pass = out.lines().any(|l| l == "PASS");
        let exit_ok = matches!(self.exit, Some(Exit::Code(0)) | None);
        if pass && fails.is_empty() && exit_ok {
            Ok(())
        } else {
            Err(format!(
                "{}: {}\nexit: {:?}\n{}",
                self.name,
                if fails.is_empty() { "no PASS".to_string() } else { fails.join("\n") },
                self.exit,
                self.context()
            ))
        }
    }

    /// SIGTERM, then the verdict.
    pub fn finish(&mut self) -> Result<(), String> {
        self.signal(libc::SIGTERM);
        self.wait_result(Duration::from_secs(30))
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if self.live {
            let mut tree = procfs::descendants(self.pid);
            tree.extend(self.tree.iter().copied());
            // The root first: a supervisor (nginx's master) would start new children in place of the
            // ones killed, and those would be left behind.
            let _ = kill(self.pid, libc::SIGKILL);
            for &d in &tree {
                let _ = kill(d, libc::SIGKILL);
            }
            for &d in &tree {
                let _ = reap_timeout(d, Duration::from_millis(200));
            }
            if self.fg.is_none() {
                let _ = reap_timeout(self.pid, Duration::from_secs(10));
            }
        } else {
            // The root ended (a failed test's subject may die, its children living on): the descendants
            // seen at the dump that were re-parented to this test process (a subreaper) are its
            // orphans, and go too.
            let me = std::process::id() as i32;
            for &d in &self.tree {
                if procfs::stat(d).is_some_and(|st| st.ppid == me && !st.dead()) {
                    let _ = kill(d, libc::SIGKILL);
                    let _ = reap_timeout(d, Duration::from_millis(200));
                }
            }
        }
        // A foreground restorer (RcrProc) kills and reaps itself on drop.
        self.fg = None;
    }
}

fn fake_run(verb: &str) -> RcrRun {
    RcrRun::empty(vec![verb.into(), "(self-test: not run)".into()], Some(Exit::Code(0)))
}
