//! Dump and restore failures: the target keeps running unharmed, nothing stray is started.

use crate::harness::rcr::{self, RcrRun};
use crate::harness::{
    mentions_number, procfs, selftest, wait_until, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn dump_pid(pid: i32, dir: &TestDir) -> RcrRun {
    let images = dir.path.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let args: Vec<String> = ["dump", "-t", &pid.to_string(), "-D", &images.to_string_lossy(), "-v4", "-o", "dump.log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    rcr::run(&args, &dir.path, vec![images.join("dump.log")], Duration::from_secs(60))
}

fn assert_failed_naming(run: &RcrRun, pid: i32, what: &str) {
    assert!(!run.timed_out, "{what}: rcr hung\n{}", run.describe());
    assert!(!run.ok(), "{what}: rcr succeeded\n{}", run.describe());
    assert!(mentions_number(&run.stderr, pid as i64), "{what}: the error on stderr does not name pid {pid}\n{}", run.describe());
}

/// A pid that existed a moment ago and is free now.
#[test]
fn dump_nonexistent_pid() {
    if selftest() {
        return;
    }
    // Reaped just below, by pid.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as i32;
    crate::harness::reap_timeout(pid, Duration::from_secs(10)).expect("reap /bin/true");
    assert!(procfs::stat(pid).is_none(), "pid {pid} reused already");
    let dir = TestDir::new("nonexistent");
    let run = dump_pid(pid, &dir);
    assert_failed_naming(&run, pid, "dump of a nonexistent pid");
}

/// A kernel thread (kthreadd) cannot be dumped; it is left alone.
#[test]
fn dump_kernel_thread() {
    if selftest() {
        return;
    }
    let (pid, comm) = procfs::a_kernel_thread().expect("no kernel thread visible in /proc");
    let dir = TestDir::new("kthread");
    let run = dump_pid(pid, &dir);
    assert_failed_naming(&run, pid, &format!("dump of kernel thread {comm}"));
    let st = procfs::stat(pid).expect("kernel thread gone");
    assert!(!st.stopped(), "kernel thread {pid} left stopped: {st:?}");
    assert_eq!(procfs::status_field(pid, "TracerPid").as_deref(), Some("0"), "kernel thread {pid} left traced");
}

/// What must not change when a dump fails.
struct Snapshot {
    maps: String,
    status: Vec<(String, String)>,
}

fn snapshot(s: &Subject) -> Snapshot {
    Snapshot { maps: procfs::maps(s.pid()), status: procfs::status_snapshot(s.pid()) }
}

/// After a failed or aborted dump: running, untraced, same mappings and signal state, still
/// working (a counter advances, if it is one), and PASS on SIGTERM.
fn assert_unharmed(s: &mut Subject, before: &Snapshot, timeout: Duration) {
    s.assert_running_untraced(timeout);
    let pid = s.pid();
    let mut maps = String::new();
    if wait_until(timeout, "the mappings to be as before the dump", || {
        maps = procfs::maps(pid);
        maps == before.maps
    })
    .is_err()
    {
        panic!("mappings of pid {pid} changed by the failed dump\n--- before ---\n{}\n--- after ---\n{maps}", before.maps);
    }
    // Eventually, like the mappings: a task that was stopped in sigsuspend(2) shows its own mask for
    // a moment when it resumes, between the syscall's restart and its return into sigsuspend.
    let mut status = Vec::new();
    if wait_until(timeout, "the status to be as before the dump", || {
        status = procfs::status_snapshot(pid);
        status == before.status
    })
    .is_err()
    {
        assert_eq!(status, before.status, "/proc/{pid}/status changed by the failed dump");
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

fn counter_numbers(s: &Subject) -> usize {
    s.output().lines().filter(|l| l.parse::<u64>().is_ok()).count()
}

fn dump_into_fails(images: &Path) {
    let mut s = Subject::spawn("counter", &[]);
    s.wait_ready(READY_TIMEOUT);
    let before = snapshot(&s);
    if !selftest() {
        let run = s.try_dump_into(images, &[]);
        assert!(!run.timed_out, "rcr hung\n{}", run.describe());
        assert!(!run.ok(), "dump into unwritable {} succeeded\n{}", images.display(), run.describe());
        assert!(!run.stderr.trim().is_empty(), "no error message on stderr\n{}", run.describe());
    }
    let n = counter_numbers(&s);
    wait_until(Duration::from_secs(10), "the counter to advance after the failed dump", || counter_numbers(&s) >= n + 3)
        .unwrap();
    assert_unharmed(&mut s, &before, Duration::from_secs(10));
}

/// Images dir whose parent is a regular file.
#[test]
fn dump_into_path_under_a_file() {
    let dir = TestDir::new("under-file");
    let file = dir.path.join("file");
    std::fs::write(&file, b"x").unwrap();
    dump_into_fails(&file.join("images"));
}

/// A read-only tmpfs mounted (and unmounted) by the test: root ignores permission bits.
struct RoMount(PathBuf);

impl RoMount {
    fn new(path: &Path) -> RoMount {
        std::fs::create_dir_all(path).unwrap();
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let (src, target, fstype, opts) = (c("tmpfs"), c(path.to_str().unwrap()), c("tmpfs"), c("size=1m"));
        // SAFETY: mount(2) with valid C strings.
        let r = unsafe {
            libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV, opts.as_ptr().cast())
        };
        assert_eq!(r, 0, "mount a read-only tmpfs on {}: {}", path.display(), std::io::Error::last_os_error());
        RoMount(path.to_path_buf())
    }
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: umount2(2) with a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn dump_into_read_only_fs() {
    let dir = TestDir::new("ro-fs");
    let mnt = RoMount::new(&dir.path.join("ro"));
    dump_into_fails(&mnt.0);
}

/// Total size of the files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// SIGKILL rcr while it writes the pages of a process with a few hundred MiB: the process
/// continues unharmed (not stopped, not traced, same mappings, all memory intact).
#[test]
fn kill_rcr_mid_dump() {
    let mut s = Subject::spawn("bench_fill", &["512"]);
    s.wait_ready(READY_TIMEOUT);
    let before = snapshot(&s);
    if !selftest() {
        let proc = dump_until_1mib_written(&s);
        let run = proc.kill();
        eprintln!("killed rcr after {:?}, images: {} bytes", run.wall, dir_bytes(&s.images));
    }
    assert_unharmed(&mut s, &before, Duration::from_secs(20));
}

/// Starts `rcr dump` of a big subject and returns once it has written 1 MiB of images (it is copying
/// memory then).
fn dump_until_1mib_written(s: &Subject) -> rcr::RcrProc {
    let mut proc = s.start_dump(&[]);
    let start = Instant::now();
    while dir_bytes(&s.images) <= (1 << 20) {
        if let Some(run) = proc.try_finish() {
            panic!("the dump ended before it could be stopped midway (raise the size?)\n{}", run.describe());
        }
        assert!(start.elapsed() < Duration::from_secs(60), "images dir did not fill within 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    proc
}

/// Ctrl-C to `rcr dump` while it copies memory: the dump stops at its next step, says it was
/// interrupted, and the process runs on unharmed (never killed, never left frozen).
#[test]
fn interrupt_rcr_mid_dump() {
    let mut s = Subject::spawn("bench_fill", &["512"]);
    s.wait_ready(READY_TIMEOUT);
    let before = snapshot(&s);
    if !selftest() {
        let proc = dump_until_1mib_written(&s);
        crate::harness::kill(proc.pid, libc::SIGINT).unwrap();
        let run = proc.wait(Duration::from_secs(60));
        assert!(!run.timed_out && !run.ok(), "the interrupted dump did not fail\n{}", run.describe());
        assert!(run.stderr.contains("interrupted") && run.stderr.contains("left running"), "unclear error\n{}", run.describe());
    }
    assert_unharmed(&mut s, &before, Duration::from_secs(20));
}

/// Restoring while the pid is taken (the original left running by dump -R) fails, names the
/// pid and its owner, and starts nothing.
#[test]
fn restore_pid_in_use() {
    let mut s = Subject::spawn("counter", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&["-R"]);
    let pid = s.pid();
    if !selftest() {
        let owner = procfs::stat(pid).expect("original gone").comm;
        let run = s.try_restore(&[]);
        assert!(!run.timed_out, "rcr restore hung\n{}", run.describe());
        assert!(!run.ok(), "restore over a running pid succeeded\n{}", run.describe());
        let msg = run.stderr.clone();
        assert!(mentions_number(&msg, pid as i64), "the error does not name pid {pid}\n{}", run.describe());
        assert!(msg.contains(&owner), "the error does not name the pid's owner '{owner}'\n{}", run.describe());
        let out = s.out.to_string_lossy().into_owned();
        let procs = procfs::pids_with_arg(&out);
        assert_eq!(procs, vec![pid], "processes running the subject's command line after the failed restore");
    }
    let n = counter_numbers(&s);
    wait_until(Duration::from_secs(10), "the original to keep counting", || counter_numbers(&s) >= n + 3).unwrap();
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// An fd of a kind rcr has no module for and no plugin claims: the dump stops with an error naming the
/// pid, the fd and its anon inode, and the process goes on unharmed.
fn unknown_fd_kind(kind: &str, inode: &str) {
    unknown_fd_kind_args(&[kind], &["fd 50", inode, "no plugin claimed"]);
}

fn unknown_fd_kind_args(args: &[&str], want: &[&str]) {
    let kind = args[0];
    let mut s = Subject::spawn("unknown_fd", args);
    s.wait_ready(READY_TIMEOUT);
    let before = snapshot(&s);
    if !selftest() {
        let run = s.try_dump(&[]);
        assert_failed_naming(&run, s.pid(), kind);
        for want in want {
            assert!(run.stderr.contains(want), "{kind}: the error does not say '{want}'\n{}", run.describe());
        }
    }
    assert_unharmed(&mut s, &before, Duration::from_secs(10));
}

#[test]
fn unknown_fd_io_uring() {
    unknown_fd_kind("io_uring", "anon_inode:[io_uring]");
}

#[test]
fn unknown_fd_perf_event() {
    unknown_fd_kind("perf", "anon_inode:[perf_event]");
}

#[test]
fn unknown_fd_userfaultfd() {
    unknown_fd_kind("userfaultfd", "anon_inode:[userfaultfd]");
}

/// A dump that the restore could not undo on this machine fails before anything is killed, naming
/// what, and the target runs on unharmed.
fn refused_before_kill(mut s: Subject, via: &[&str], want: &[&str]) {
    s.wait_ready(READY_TIMEOUT);
    let before = snapshot(&s);
    if !selftest() {
        let run = s.try_dump_via(via);
        assert_failed_naming(&run, s.pid(), want[0]);
        for w in want {
            assert!(run.stderr.contains(w), "the error does not say '{w}'\n{}", run.describe());
        }
    }
    assert_unharmed(&mut s, &before, Duration::from_secs(10));
}

/// rcr's own hard RLIMIT_CORE is 0, the target's is higher, and rcr lacks CAP_SYS_RESOURCE (as here):
/// a restore could not set it, so the dump refuses.
#[test]
fn dump_refuses_rlimit_rcr_cannot_raise() {
    let s = Subject::spawn("creds", &["plain"]);
    // With CAP_SYS_RESOURCE rcr could raise it: then there is nothing to refuse.
    let caps = procfs::status_field(std::process::id() as i32, "CapEff").unwrap_or_default();
    if u64::from_str_radix(caps.trim(), 16).unwrap_or(0) & (1 << 24) != 0 {
        println!("SKIPPED: the tests run with CAP_SYS_RESOURCE");
        return;
    }
    refused_before_kill(s, &["sh", "-c", "ulimit -H -c 0 && exec \"$0\" \"$@\""], &["RLIMIT_CORE", "CAP_SYS_RESOURCE"]);
}

/// rcr runs without CAP_NET_RAW (dropped from its bounding set, so not permitted after exec); the root
/// target has it: a restore could not give it back.
#[test]
fn dump_refuses_capabilities_rcr_lacks() {
    let s = Subject::spawn("creds", &["plain"]);
    refused_before_kill(s, &["setpriv", "--bounding-set", "-net_raw", "--"], &["CAP_NET_RAW", "left running"]);
}

/// A process in a UTS namespace of its own: rcr does not checkpoint namespaces yet, and restoring it
/// into rcr's would silently change its hostname.
#[test]
fn dump_refuses_other_namespace() {
    let prog = crate::harness::build_prog("creds");
    let argv = vec!["unshare".to_string(), "--uts".into(), prog.to_string_lossy().into_owned(), "out.txt".into(), "plain".into()];
    let s = crate::harness::Spawn::command(argv).start();
    refused_before_kill(s, &[], &["uts namespace", "nsenter"]);
}

/// A TCP listener: the error says what it is (family, type, address), not only its inode.
#[test]
fn unknown_fd_tcp_listener_is_named() {
    // A port of this test process's own, free now: the program binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    unknown_fd_kind_args(&["tcp", &port], &["fd 50", &format!("a TCP socket listening on 127.0.0.1:{port}"), "no plugin claimed"]);
}

/// A checkpoint of a root process restored by an rcr without CAP_NET_RAW: refused before anything is
/// started, naming the capability; a restore with it then works.
#[test]
fn restore_refuses_capabilities_rcr_lacks() {
    let mut s = Subject::spawn("creds", &["plain"]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&[]);
    if !selftest() {
        let run = s.try_restore_via(&["setpriv", "--bounding-set", "-net_raw", "--"], &[]);
        assert_failed_naming(&run, s.pid(), "restore without CAP_NET_RAW");
        for w in ["CAP_NET_RAW", "nothing was started"] {
            assert!(run.stderr.contains(w), "the error does not say '{w}'\n{}", run.describe());
        }
        assert!(procfs::stat(s.pid()).is_none(), "pid {} exists after the refused restore", s.pid());
    }
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}
