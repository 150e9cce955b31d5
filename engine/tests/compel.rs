//! Tests of rcr_engine::compel against real child processes (tests/progs/compel_child.c).
//! They need root (or CAP_SYS_PTRACE) and a C compiler.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcr_engine::compel::{
    CompelError, Itimerval, KernelSigaction, Remote, StackT, Timeval, Tracee, SYSCALL_INT3,
};

const T: Duration = Duration::from_secs(5);
/// Not exported by the libc crate; the kernel reports it for handlers set by glibc.
const SA_RESTORER: i32 = 0x0400_0000;

fn child_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("compel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/progs/compel_child.c");
        let bin = dir.join("compel_child");
        let st = Command::new("cc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success(), "cc failed on {}", src.display());
        bin
    })
}

/// A test child; killed (by PID) and reaped on drop, also when a test fails.
struct Kid {
    child: Child,
    pid: i32,
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: Vec<u8>,
    /// Already reaped by the code under test: its PID may be reused, never signal it.
    reaped: bool,
}

impl Kid {
    fn spawn(args: &[&str]) -> Kid {
        let mut child = Command::new(child_bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let pid = child.id() as i32;
        Kid {
            child,
            pid,
            stdin,
            stdout,
            buf: Vec::new(),
            reaped: false,
        }
    }

    /// Next output line, or None if nothing complete arrives within `timeout`.
    fn try_line(&mut self, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut pfd = libc::pollfd {
                fd: self.stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            // SAFETY: poll(2) on one pollfd that lives on our stack.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n <= 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stdout.read(&mut chunk).unwrap();
            if n == 0 {
                return None; // EOF
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn line(&mut self) -> String {
        self.try_line(T)
            .unwrap_or_else(|| panic!("child {} printed no line within {T:?}", self.pid))
    }

    /// Waits for "ready ..." and returns the words after it.
    fn ready(&mut self) -> Vec<String> {
        let l = self.line();
        let mut w = l.split_whitespace().map(String::from);
        assert_eq!(
            w.next().as_deref(),
            Some("ready"),
            "unexpected first line {l:?}"
        );
        w.collect()
    }

    fn ask(&mut self, cmd: &str) -> String {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        self.line()
    }

    /// Waits until the child sits in system call `nr` (per /proc/PID/syscall).
    fn wait_in_syscall(&self, nr: i64) {
        let end = Instant::now() + T;
        loop {
            let s =
                std::fs::read_to_string(format!("/proc/{}/syscall", self.pid)).unwrap_or_default();
            if s.split_whitespace().next() == Some(nr.to_string().as_str()) {
                // still running the syscall's entry path? make sure it is asleep
                if proc_state(self.pid) == 'S' {
                    return;
                }
            }
            assert!(
                Instant::now() < end,
                "child {} not in syscall {nr}: {s:?}",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&self, sig: i32) {
        // SAFETY: plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0);
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: kill(2) of our own (not yet reaped) child by PID.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next())
        .unwrap_or('?')
}

fn status_mask(pid: i32, key: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let v = st
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap();
    u64::from_str_radix(v.trim(), 16).unwrap()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// The start of the first regular executable mapping, as Remote::inject picks it.
fn first_exec(pid: i32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let l = maps
        .lines()
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.as_bytes()[2] == b'x')
        })
        .unwrap();
    hex(l.split('-').next().unwrap())
}

#[test]
fn remote_syscalls_read_handlers_itimer_altstack_and_task_keeps_working() {
    let mut kid = Kid::spawn(&["handlers"]);
    let r = kid.ready();
    let (on_usr1, on_usr2, altstack) = (hex(&r[0]), hex(&r[1]), hex(&r[2]));
    kid.wait_in_syscall(libc::SYS_read);

    let t = Tracee::seize(kid.pid, T).unwrap();
    assert!(!t.was_stopped());
    assert_eq!(t.tgid(), kid.pid);
    let mask_before = t.sigmask().unwrap();
    let regs_before = t.regs().unwrap();
    let site = first_exec(kid.pid);
    let word_before = t.peek(site).unwrap();
    assert!(t.seccomp_filters().unwrap().is_empty());

    let mut rem = Remote::inject(&t).unwrap();
    assert_eq!(rem.site(), site);
    assert_eq!(
        rem.syscall(libc::SYS_getpid, &[]).unwrap(),
        i64::from(kid.pid)
    );
    assert_eq!(
        rem.syscall(libc::SYS_gettid, &[]).unwrap(),
        i64::from(kid.pid)
    );

    let a = rem.rt_sigaction_get(libc::SIGUSR1).unwrap();
    assert_eq!(a.handler, on_usr1);
    assert_eq!(
        a.flags,
        (libc::SA_SIGINFO | libc::SA_RESTART | SA_RESTORER) as u64
    );
    assert_ne!(a.restorer, 0);
    assert_eq!(a.mask, bit(libc::SIGUSR2) | bit(libc::SIGTERM));
    let b = rem.rt_sigaction_get(libc::SIGUSR2).unwrap();
    assert_eq!(
        (b.handler, b.flags, b.mask),
        (on_usr2, (libc::SA_ONSTACK | SA_RESTORER) as u64, 0)
    );
    assert_eq!(
        rem.rt_sigaction_get(libc::SIGHUP).unwrap().handler,
        libc::SIG_IGN as u64
    );
    assert_eq!(
        rem.rt_sigaction_get(libc::SIGINT).unwrap(),
        KernelSigaction::default()
    );

    let it = rem.getitimer(libc::ITIMER_REAL).unwrap();
    assert_eq!(
        it.interval,
        Timeval {
            sec: 7,
            usec: 250_000
        }
    );
    assert!((90..=100).contains(&it.value.sec), "{it:?}");
    assert_eq!(
        rem.getitimer(libc::ITIMER_VIRTUAL).unwrap(),
        Itimerval::default()
    );

    let st = rem.sigaltstack_get().unwrap();
    assert_eq!(
        st,
        StackT {
            sp: altstack,
            flags: 0,
            size: 65536
        }
    );
    assert_ne!(rem.get_tid_address().unwrap(), 0);
    assert_eq!(rem.prctl(libc::PR_GET_DUMPABLE, &[]).unwrap(), 1);

    // setters round-trip too (on a signal the child does not use)
    let act = KernelSigaction {
        handler: on_usr2,
        flags: (SA_RESTORER) as u64,
        restorer: a.restorer,
        mask: 1,
    };
    rem.rt_sigaction_set(libc::SIGWINCH, &act).unwrap();
    assert_eq!(rem.rt_sigaction_get(libc::SIGWINCH).unwrap(), act);
    rem.cure().unwrap();

    assert_eq!(t.sigmask().unwrap(), mask_before);
    assert_eq!(t.peek(site).unwrap(), word_before);
    let regs_after = t.regs().unwrap();
    assert_eq!(
        (regs_after.rip, regs_after.rax, regs_after.orig_rax),
        (regs_before.rip, regs_before.rax, regs_before.orig_rax)
    );
    assert_eq!(
        (regs_after.rsp, regs_after.rcx, regs_after.r11),
        (regs_before.rsp, regs_before.rcx, regs_before.r11)
    );
    t.detach().unwrap();

    // the read() it was blocked in restarts and completes; handlers are still in place
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
    assert_eq!(kid.ask("usr1"), "usr1 1");
    assert_eq!(
        kid.ask("sa"),
        format!(
            "sa {on_usr1:#x} {:#x}",
            libc::SA_SIGINFO | libc::SA_RESTART | SA_RESTORER
        )
    );
    assert_eq!(status_mask(kid.pid, "SigBlk"), 0);
    assert_ne!(status_mask(kid.pid, "SigIgn") & bit(libc::SIGHUP), 0);
    assert_eq!(status_mask(kid.pid, "SigIgn") & bit(libc::SIGTRAP), 0);
}

#[test]
fn memory_fds_and_errors_through_remote_syscalls() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    let mut rem = Remote::inject(&t).unwrap();
    assert!(
        matches!(
            Remote::at_site(&t, rem.site()),
            Err(CompelError::Invalid { .. })
        ),
        "two Remotes at once"
    );

    let scratch = rem.alloc_scratch(100).unwrap();
    rem.write_scratch(scratch, b"hello compel").unwrap();
    let mut back = [0u8; 12];
    rem.read_scratch(scratch, &mut back).unwrap();
    assert_eq!(&back, b"hello compel");

    // a file read into task memory with pread64
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("compel-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("data");
    std::fs::write(&file, b"0123456789abcdef").unwrap();
    let fd = rem.open(file.to_str().unwrap(), libc::O_RDONLY, 0).unwrap();
    assert!(std::fs::read_link(format!("/proc/{}/fd/{fd}", kid.pid))
        .unwrap()
        .ends_with("data"));
    assert_eq!(rem.pread64(fd, scratch, 6, 10).unwrap(), 6);
    rem.read_scratch(scratch, &mut back[..6]).unwrap();
    assert_eq!(&back[..6], b"abcdef");
    assert_eq!(rem.dup2(fd, 77).unwrap(), 77);
    assert!(std::path::Path::new(&format!("/proc/{}/fd/77", kid.pid)).exists());
    rem.close(77).unwrap();
    rem.close(fd).unwrap();

    // mmap/mprotect/madvise/munmap; write_mem reaches a read-only page via /proc/PID/mem
    let area = rem
        .mmap(
            0,
            8192,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
        .unwrap();
    t.write_mem(area + 4096, b"ro").unwrap();
    t.read_mem(area + 4096, &mut back[..2]).unwrap();
    assert_eq!(&back[..2], b"ro");
    rem.mprotect(area, 4096, libc::PROT_NONE).unwrap();
    rem.madvise(area, 8192, libc::MADV_NORMAL).unwrap();
    rem.munmap(area, 8192).unwrap();

    // failures name the syscall and errno
    match rem.syscall_ok(libc::SYS_close, &[9999]) {
        Err(CompelError::RemoteSyscall { nr, errno, .. }) => {
            assert_eq!((nr, errno), (libc::SYS_close, nix::errno::Errno::EBADF))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rem.syscall(libc::SYS_close, &[9999]).unwrap(),
        -i64::from(libc::EBADF)
    );
    let err = rem
        .open("/nonexistent/compel", libc::O_RDONLY, 0)
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    let ranges = rem.scratch_ranges().to_vec();
    rem.cure().unwrap();
    // scratch is gone from the task after cure
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", kid.pid)).unwrap();
    for (a, _) in ranges {
        assert!(
            !maps.contains(&format!("{a:x}-")),
            "scratch {a:#x} still mapped"
        );
    }
    drop(t);
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dropping_without_cure_or_detach_leaves_task_working() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    {
        let t = Tracee::seize_exit_kill(kid.pid, T).unwrap();
        let mut rem = Remote::inject(&t).unwrap();
        rem.alloc_scratch(4096).unwrap();
        assert_eq!(
            rem.syscall(libc::SYS_getpid, &[]).unwrap(),
            i64::from(kid.pid)
        );
    }
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
    assert_eq!(kid.ask("usr1"), "usr1 1");
}

#[test]
fn regs_and_xstate_round_trip() {
    assert!(std::arch::is_x86_feature_detected!("avx"), "test needs AVX");
    let mut kid = Kid::spawn(&["xmm"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_pause);
    let t = Tracee::seize(kid.pid, T).unwrap();
    let pat: Vec<u8> = (0..32).map(|i| 0xa0 + i).collect();
    let mut xs = t.xstate().unwrap();
    assert!(xs.len() >= 832, "xstate only {} bytes", xs.len());
    // standard XSAVE layout: xmm15 at 160 + 15 * 16, upper half of ymm15 at 576 + 15 * 16
    assert_eq!(&xs[400..416], &pat[..16]);
    assert_eq!(&xs[816..832], &pat[16..]);
    let fp = t.fpregs().unwrap();
    let xmm15: Vec<u8> = fp.xmm_space[60..64]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    assert_eq!(xmm15, &pat[..16]);

    // run remote syscalls in between: they must not disturb the vector state
    let mut rem = Remote::inject(&t).unwrap();
    rem.syscall_ok(libc::SYS_getpid, &[]).unwrap();
    rem.cure().unwrap();
    assert_eq!(t.xstate().unwrap(), xs);

    for b in &mut xs[400..416] {
        *b ^= 0xff;
    }
    t.set_xstate(&xs).unwrap();
    let regs = t.regs().unwrap();
    t.set_regs(&regs).unwrap();
    assert_eq!(t.regs().unwrap().rip, regs.rip);
    t.set_fpregs(&t.fpregs().unwrap()).unwrap();
    t.detach().unwrap();

    kid.kill(libc::SIGUSR1);
    let expect: Vec<String> = pat
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{:02x}", if i < 16 { b ^ 0xff } else { *b }))
        .collect();
    assert_eq!(kid.line(), format!("ymm15 {}", expect.join(" ")));
}

/// Seizes a child blocked in a syscall, runs remote syscalls for a while, detaches.
fn poke_around(pid: i32, hold: Duration) {
    let t = Tracee::seize(pid, T).unwrap();
    let mut rem = Remote::inject(&t).unwrap();
    for _ in 0..20 {
        assert_eq!(rem.syscall(libc::SYS_getpid, &[]).unwrap(), i64::from(pid));
    }
    rem.rt_sigaction_get(libc::SIGUSR1).unwrap();
    std::thread::sleep(hold);
    rem.cure().unwrap();
    t.detach().unwrap();
}

#[test]
fn nanosleep_restarts_without_being_cut_short_or_stretched() {
    let mut kid = Kid::spawn(&["sleep", "1500"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_clock_nanosleep);
    poke_around(kid.pid, Duration::from_millis(300));
    let l = kid.line();
    let ms: i64 = l
        .strip_prefix("woke ")
        .unwrap_or_else(|| panic!("{l:?}"))
        .parse()
        .unwrap();
    assert!((1500..2300).contains(&ms), "slept {ms} ms instead of 1500");
}

#[test]
fn pause_restarts_after_detach() {
    let mut kid = Kid::spawn(&["pause"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_pause);
    poke_around(kid.pid, Duration::ZERO);
    assert_eq!(
        kid.try_line(Duration::from_millis(300)),
        None,
        "pause() returned early"
    );
    kid.wait_in_syscall(libc::SYS_pause);
    kid.kill(libc::SIGUSR1);
    assert_eq!(kid.line(), "pause-returned 1");
}

#[test]
fn wait4_restarts_after_detach() {
    let mut kid = Kid::spawn(&["wait", "800"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_wait4);
    poke_around(kid.pid, Duration::from_millis(100));
    let l = kid.line();
    let w: Vec<&str> = l.split_whitespace().collect();
    assert_eq!(w[..2], ["reaped", "7"], "{l:?}");
}

#[test]
fn pending_signals_are_visible() {
    let mut kid = Kid::spawn(&["sigpending"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let rt = libc::SIGRTMIN() + 2;
    kid.kill(libc::SIGUSR1); // process-wide queue
    // SAFETY: tgkill(2) of our child's main thread: thread-private queue.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, kid.pid, kid.pid, rt) };
    assert_eq!(r, 0);
    let end = Instant::now() + T;
    while status_mask(kid.pid, "ShdPnd") == 0 || status_mask(kid.pid, "SigPnd") == 0 {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Tracee::seize(kid.pid, T).unwrap();
    let signo = |si: &[u8; 128]| i32::from_ne_bytes([si[0], si[1], si[2], si[3]]);
    let code = |si: &[u8; 128]| i32::from_ne_bytes([si[8], si[9], si[10], si[11]]);
    let sender = |si: &[u8; 128]| i32::from_ne_bytes([si[16], si[17], si[18], si[19]]);
    let shared = t.pending_signals(true).unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(
        (signo(&shared[0]), code(&shared[0])),
        (libc::SIGUSR1, libc::SI_USER)
    );
    assert_eq!(sender(&shared[0]), std::process::id() as i32);
    let private = t.pending_signals(false).unwrap();
    assert_eq!(private.len(), 1);
    assert_eq!(
        (signo(&private[0]), code(&private[0])),
        (rt, libc::SI_TKILL)
    );
    let mut rem = Remote::inject(&t).unwrap();
    rem.syscall_ok(libc::SYS_getpid, &[]).unwrap();
    rem.cure().unwrap();
    // still queued, nothing consumed by our work
    assert_eq!(t.pending_signals(true).unwrap(), shared);
    assert_eq!(t.pending_signals(false).unwrap(), private);
    t.detach().unwrap();
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
}

#[test]
fn rseq_of_a_glibc_program() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    let rs = t.rseq_config().unwrap().expect("glibc registers rseq");
    assert_eq!(rs.signature, 0x5305_3053);
    assert_ne!(rs.abi_pointer, 0);
    assert!(rs.abi_size >= 32, "{rs:?}");
}

#[test]
fn seccomp_filter_is_reported_and_suspended_for_remote_syscalls() {
    let mut kid = Kid::spawn(&["seccomp"]);
    assert_eq!(kid.ready(), ["-1"]); // the filter makes getppid fail with EPERM
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    let f = t.seccomp_filters().unwrap();
    assert_eq!(f.len(), 1);
    let insns: Vec<(u16, u8, u8, u32)> = f[0]
        .insns
        .iter()
        .map(|i| (i.code, i.jt, i.jf, i.k))
        .collect();
    let nr = libc::SYS_getppid as u32;
    assert_eq!(
        insns,
        [
            (0x20, 0, 0, 0),
            (0x15, 0, 1, nr),
            (0x06, 0, 0, 0x0005_0001),
            (0x06, 0, 0, 0x7fff_0000)
        ]
    );
    assert_eq!(f[0].flags, 0);
    assert_eq!(f[0].to_bytes().len(), 32);
    let mut rem = Remote::inject(&t).unwrap();
    // PTRACE_O_SUSPEND_SECCOMP: the filter does not apply to our syscalls
    assert_eq!(
        rem.syscall(libc::SYS_getppid, &[]).unwrap(),
        i64::from(std::process::id())
    );
    rem.cure().unwrap();
    t.detach().unwrap();
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
}

#[test]
fn seizing_a_nonexistent_task_is_a_clear_error() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = Tracee::seize(pid_max + 1, T).err().unwrap();
    assert!(
        matches!(err, CompelError::NoSuchTask { tid } if tid == pid_max + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(matches!(
        Tracee::seize(0, T),
        Err(CompelError::Invalid { .. })
    ));
}

#[test]
fn a_stopped_task_stays_stopped_after_detach() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    kid.kill(libc::SIGSTOP);
    let end = Instant::now() + T;
    while proc_state(kid.pid) != 'T' {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Tracee::seize(kid.pid, T).unwrap();
    assert!(t.was_stopped());
    let mut rem = Remote::inject(&t).unwrap();
    assert_eq!(
        rem.syscall(libc::SYS_getpid, &[]).unwrap(),
        i64::from(kid.pid)
    );
    rem.cure().unwrap();
    t.detach().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(proc_state(kid.pid), 'T');
    kid.stdin.write_all(b"ping\n").unwrap();
    assert_eq!(
        kid.try_line(Duration::from_millis(200)),
        None,
        "a stopped child answered"
    );
    kid.kill(libc::SIGCONT);
    assert_eq!(kid.line(), format!("pong {}", kid.pid));
}

#[test]
fn running_a_task_that_ignores_sigtrap_keeps_it_ignored() {
    let mut kid = Kid::spawn(&["sigtrap-ign"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    poke_around(kid.pid, Duration::ZERO);
    assert_ne!(status_mask(kid.pid, "SigIgn") & bit(libc::SIGTRAP), 0);
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));
}

#[test]
fn traced_child_runs_syscalls_from_a_trampoline() {
    let mut kid = Kid::spawn(&["traceme"]);
    let t = Tracee::from_traced_child(kid.pid, T).unwrap();
    let mut rem = Remote::inject(&t).unwrap();
    let page = rem
        .mmap(
            0,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
        .unwrap();
    t.write_mem(page + 16, &SYSCALL_INT3).unwrap();
    rem.mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC)
        .unwrap();
    let old_site = rem.site();
    let word_before = t.peek(old_site).unwrap();
    rem.set_site(page + 16).unwrap();
    assert_ne!(
        t.peek(old_site).unwrap(),
        word_before,
        "set_site did not restore the poked word"
    );
    assert_eq!(
        rem.syscall(libc::SYS_getpid, &[]).unwrap(),
        i64::from(kid.pid)
    );
    rem.cure().unwrap();

    let mut rem = Remote::at_site(&t, page + 16).unwrap();
    assert_eq!(
        rem.syscall(libc::SYS_gettid, &[]).unwrap(),
        i64::from(kid.pid)
    );
    rem.munmap(page + 4096 * 1000, 4096).unwrap(); // nothing there: still succeeds
    rem.cure().unwrap();
    t.detach().unwrap();
    assert_eq!(kid.ready(), [kid.pid.to_string()]);
    assert_eq!(kid.ask("usr1"), "usr1 1");
}

#[test]
fn signals_arriving_during_remote_syscalls_are_kept() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    let mut rem = Remote::inject(&t).unwrap();
    kid.kill(libc::SIGUSR1); // blocked while we run syscalls
    kid.kill(libc::SIGSTOP); // cannot be blocked: held back and re-sent on detach
    for _ in 0..3 {
        assert_eq!(
            rem.syscall(libc::SYS_getpid, &[]).unwrap(),
            i64::from(kid.pid)
        );
    }
    rem.cure().unwrap();
    t.detach().unwrap();
    let end = Instant::now() + T;
    while proc_state(kid.pid) != 'T' {
        assert!(Instant::now() < end, "SIGSTOP was lost");
        std::thread::sleep(Duration::from_millis(5));
    }
    kid.kill(libc::SIGCONT);
    // the handler ran once for the SIGUSR1 sent while we held the task, then once more here
    assert_eq!(kid.ask("usr1"), "usr1 2");
}

/// A signal that reaches a held task at a signal-delivery-stop (here while `run_for` lets it run) is
/// taken out of its queue by the kernel: rcr counts it among the thread's pending signals, with its
/// siginfo (so a dump keeps it), and delivers it on detach.
#[test]
fn signals_taken_at_a_delivery_stop_stay_pending() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    assert!(t.pending_signals(false).unwrap().is_empty());
    let pid = kid.pid;
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    });
    t.run_for(Duration::from_millis(300)).unwrap();
    sender.join().unwrap();
    let private = t.pending_signals(false).unwrap();
    let signos: Vec<i32> = private.iter().map(|i| i32::from_ne_bytes([i[0], i[1], i[2], i[3]])).collect();
    assert_eq!(signos, vec![libc::SIGUSR1], "the signal taken at the delivery stop is pending");
    // si_pid (offset 16 in siginfo for SI_USER) names the sender: this process.
    assert_eq!(i32::from_ne_bytes([private[0][16], private[0][17], private[0][18], private[0][19]]), std::process::id() as i32);
    t.detach().unwrap();
    // The handler ran once for the held signal after detach, then once for the child's own raise().
    assert_eq!(kid.ask("usr1"), "usr1 2", "the held signal was delivered once after detach");
}

#[test]
fn detach_of_a_running_tracee_and_exit_while_traced() {
    let mut kid = Kid::spawn(&["handlers"]);
    kid.ready();
    kid.wait_in_syscall(libc::SYS_read);
    let t = Tracee::seize(kid.pid, T).unwrap();
    t.cont(0).unwrap();
    t.detach().unwrap(); // interrupts it first
    assert_eq!(kid.ask("ping"), format!("pong {}", kid.pid));

    let t = Tracee::seize(kid.pid, T).unwrap();
    kid.kill(libc::SIGKILL);
    let err = t.wait_stop(T).unwrap_err();
    kid.reaped = true; // wait_stop collected its exit status
    assert!(matches!(err, CompelError::Exited { .. }), "{err:?}");
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
    drop(t); // must not hang or panic
}
