//! [`Tracee`]: one task (TID) under our ptrace, kept stopped between operations.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

use super::error::{CompelError, Result};
use super::procfs;
use super::sys;
use super::wait::{self, Stop};

/// A task under our ptrace. Not `Send`: ptrace requests must come from the thread that
/// attached, so a `Tracee` stays on the thread that created it.
///
/// Dropping it detaches (errors are logged); a task that was group-stopped when seized stays
/// stopped, any other continues where it was, including restarting an interrupted syscall.
pub struct Tracee {
    tid: i32,
    tgid: i32,
    /// Attached with PTRACE_SEIZE (else: our child that called PTRACE_TRACEME).
    seized: bool,
    /// The task was group-stopped (or had SIGSTOP pending) when seized.
    was_stopped: bool,
    /// Signals whose delivery-stop we suppressed while seizing; re-sent before detaching.
    /// Signals taken out of the task's queue at signal-delivery-stops while rcr held it, with their
    /// siginfo (when the kernel gave it): re-sent on detach, and part of the dumped pending signals.
    deferred: RefCell<Vec<(i32, Option<[u8; sys::SIGINFO_SIZE]>)>>,
    /// The task was resumed with `cont` and has not reported a stop since.
    running: Cell<bool>,
    detached: Cell<bool>,
    /// A `Remote` is active on this task.
    in_remote: Cell<bool>,
    /// Timeout for the stops we wait for internally (detach, remote syscalls).
    timeout: Duration,
    _not_send: PhantomData<*const ()>,
}

impl Tracee {
    /// Seizes `tid` and stops it with PTRACE_INTERRUPT, waiting at most `timeout`.
    pub fn seize(tid: i32, timeout: Duration) -> Result<Tracee> {
        Self::seize_with(tid, timeout, false)
    }

    /// Like [`Tracee::seize`], with PTRACE_O_EXITKILL: the task is killed if we exit while
    /// it is traced.
    pub fn seize_exit_kill(tid: i32, timeout: Duration) -> Result<Tracee> {
        Self::seize_with(tid, timeout, true)
    }

    fn seize_with(tid: i32, timeout: Duration, exit_kill: bool) -> Result<Tracee> {
        if tid <= 0 {
            return Err(CompelError::Invalid {
                tid,
                what: "a TID must be positive".into(),
            });
        }
        let tgid = Self::read_tgid(tid)?;
        let mut opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_SUSPEND_SECCOMP;
        if exit_kill {
            opts |= libc::PTRACE_O_EXITKILL;
        }
        let seize = |o: i32| sys::ptrace_plain(libc::PTRACE_SEIZE, tid, 0, o as u64);
        if let Err(e) = seize(opts) {
            // SUSPEND_SECCOMP needs CONFIG_CHECKPOINT_RESTORE and CAP_SYS_ADMIN; without it
            // remote syscalls still work unless the task's own filter forbids them.
            let e = match e {
                Errno::EINVAL | Errno::EPERM => {
                    tracing::debug!(
                        tid,
                        "PTRACE_O_SUSPEND_SECCOMP refused ({e}), seizing without it"
                    );
                    seize(opts & !libc::PTRACE_O_SUSPEND_SECCOMP).err()
                }
                e => Some(e),
            };
            match e {
                None => {}
                Some(Errno::ESRCH) => return Err(CompelError::NoSuchTask { tid }),
                Some(source) => return Err(CompelError::Seize { tid, source }),
            }
        }
        let mut t = Tracee {
            tid,
            tgid,
            seized: true,
            was_stopped: false,
            deferred: RefCell::new(Vec::new()),
            running: Cell::new(true),
            detached: Cell::new(false),
            in_remote: Cell::new(false),
            timeout,
            _not_send: PhantomData,
        };
        // From here on, an error drops `t`, which detaches.
        t.interrupt()?;
        loop {
            match t.wait_stop(timeout)? {
                Stop::Interrupt => break,
                Stop::Group(_) => {
                    t.was_stopped = true;
                    break;
                }
                Stop::Signal(sig) => {
                    // A signal-delivery-stop consumed our pending interrupt. Hold the signal
                    // back (it is re-sent on detach) and trap again, so that the task always
                    // sits in PTRACE_EVENT_STOP after seize.
                    tracing::debug!(tid, sig, "signal pending while seizing, deferring it");
                    if sig == libc::SIGSTOP {
                        t.was_stopped = true;
                    }
                    t.defer_signal(sig);
                    t.interrupt()?;
                    t.cont(0)?;
                }
                other => {
                    tracing::debug!(tid, ?other, "unexpected stop while seizing, trapping again");
                    t.interrupt()?;
                    t.cont(0)?;
                }
            }
        }
        Ok(t)
    }

    /// Takes over our child `tid` that called PTRACE_TRACEME and then stopped itself
    /// (e.g. `raise(SIGSTOP)`); waits at most `timeout` for that stop. The child is killed
    /// if we exit while it is traced (PTRACE_O_EXITKILL). Its pending stop signal is
    /// discarded when it is next resumed.
    pub fn from_traced_child(tid: i32, timeout: Duration) -> Result<Tracee> {
        Self::adopt(tid, timeout, true)
    }

    /// Takes over a task that ptrace attached automatically (PTRACE_O_TRACEFORK/TRACECLONE: a child or
    /// thread a tracee created); waits at most `timeout` for its first stop. It keeps the options it
    /// inherited.
    pub fn from_auto_attached(tid: i32, timeout: Duration) -> Result<Tracee> {
        Self::adopt(tid, timeout, false)
    }

    /// Adds ptrace options (PTRACE_O_*) to the ones rcr sets.
    pub fn set_options(&self, extra: i32) -> Result<()> {
        let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL | extra;
        sys::ptrace_plain(libc::PTRACE_SETOPTIONS, self.tid, 0, opts as u64)
            .map_err(|source| CompelError::Ptrace { tid: self.tid, op: "SETOPTIONS", source })?;
        Ok(())
    }

    fn adopt(tid: i32, timeout: Duration, set_options: bool) -> Result<Tracee> {
        if tid <= 0 {
            return Err(CompelError::Invalid {
                tid,
                what: "a TID must be positive".into(),
            });
        }
        let tgid = Self::read_tgid(tid)?;
        let t = Tracee {
            tid,
            tgid,
            seized: false,
            was_stopped: false,
            deferred: RefCell::new(Vec::new()),
            running: Cell::new(true),
            detached: Cell::new(false),
            in_remote: Cell::new(false),
            timeout,
            _not_send: PhantomData,
        };
        let stop = t.wait_stop(timeout)?;
        tracing::debug!(tid, ?stop, "traced child stopped");
        if set_options {
            t.set_options(0)?;
        }
        Ok(t)
    }

    fn read_tgid(tid: i32) -> Result<i32> {
        let status = std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CompelError::NoSuchTask { tid }
            } else {
                CompelError::Proc {
                    path: format!("/proc/{tid}/status"),
                    source: e,
                }
            }
        })?;
        procfs::status_number(&status, "Tgid")
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| CompelError::Invalid {
                tid,
                what: "no Tgid in /proc/TID/status".into(),
            })
    }

    /// The task's thread id.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// The task's thread-group (process) id.
    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    /// Whether the task was stopped (group-stop, or SIGSTOP pending) before we seized it;
    /// if so it stays stopped after detach.
    pub fn was_stopped(&self) -> bool {
        self.was_stopped
    }

    pub(super) fn is_seized(&self) -> bool {
        self.seized
    }

    /// Holds `sig` back (the task is in its signal-delivery-stop): it is re-sent to the task just
    /// before detaching, and counted among the thread's pending signals meanwhile.
    pub(super) fn defer_signal(&self, sig: i32) {
        let info = sys::get_siginfo(self.tid).ok();
        self.deferred.borrow_mut().push((sig, info));
    }

    /// The siginfos of the signals held back (SIGSTOP aside: a stop is a state, see `was_stopped`).
    pub(super) fn deferred_siginfos(&self) -> Vec<[u8; sys::SIGINFO_SIZE]> {
        self.deferred.borrow().iter().filter(|(s, _)| *s != libc::SIGSTOP).filter_map(|(_, i)| *i).collect()
    }

    /// Resumes with PTRACE_SYSCALL (stop at the next syscall entry or exit).
    pub(super) fn cont_syscall(&self) -> Result<()> {
        sys::ptrace_plain(libc::PTRACE_SYSCALL, self.tid, 0, 0).map_err(self.err("SYSCALL"))?;
        self.running.set(true);
        Ok(())
    }

    pub(super) fn default_timeout(&self) -> Duration {
        self.timeout
    }

    pub(super) fn err(&self, op: &'static str) -> impl Fn(Errno) -> CompelError {
        let tid = self.tid;
        move |source| CompelError::Ptrace { tid, op, source }
    }

    /// General-purpose registers (PTRACE_GETREGS).
    pub fn regs(&self) -> Result<libc::user_regs_struct> {
        sys::get_regs(self.tid).map_err(self.err("GETREGS"))
    }

    /// Sets the general-purpose registers (PTRACE_SETREGS).
    pub fn set_regs(&self, regs: &libc::user_regs_struct) -> Result<()> {
        sys::set_regs(self.tid, regs).map_err(self.err("SETREGS"))
    }

    /// The whole XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE), exactly the kernel's size.
    pub fn xstate(&self) -> Result<Vec<u8>> {
        let mut size = 4096;
        loop {
            let mut buf = vec![0u8; size];
            let got = sys::get_regset(self.tid, sys::NT_X86_XSTATE, &mut buf)
                .map_err(self.err("GETREGSET NT_X86_XSTATE"))?;
            // The kernel shortens iov_len to the regset size; a full buffer may be truncated.
            if got < size {
                buf.truncate(got);
                return Ok(buf);
            }
            if size >= 1 << 20 {
                return Err(CompelError::Invalid {
                    tid: self.tid,
                    what: "XSAVE area larger than 1 MiB".into(),
                });
            }
            size *= 2;
        }
    }

    /// Loads an XSAVE area previously read by [`Tracee::xstate`] (same size required).
    pub fn set_xstate(&self, xstate: &[u8]) -> Result<()> {
        sys::set_regset(self.tid, sys::NT_X86_XSTATE, xstate)
            .map_err(self.err("SETREGSET NT_X86_XSTATE"))
    }

    /// The legacy FXSAVE area (PTRACE_GETFPREGS), a fallback when XSTATE is unavailable.
    pub fn fpregs(&self) -> Result<libc::user_fpregs_struct> {
        sys::get_fpregs(self.tid).map_err(self.err("GETFPREGS"))
    }

    /// Loads the legacy FXSAVE area (PTRACE_SETFPREGS).
    pub fn set_fpregs(&self, fp: &libc::user_fpregs_struct) -> Result<()> {
        sys::set_fpregs(self.tid, fp).map_err(self.err("SETFPREGS"))
    }

    /// The blocked-signal mask (bit n-1 = signal n).
    pub fn sigmask(&self) -> Result<u64> {
        sys::get_sigmask(self.tid).map_err(self.err("GETSIGMASK"))
    }

    /// Sets the blocked-signal mask (the kernel ignores SIGKILL and SIGSTOP).
    pub fn set_sigmask(&self, mask: u64) -> Result<()> {
        sys::set_sigmask(self.tid, mask).map_err(self.err("SETSIGMASK"))
    }

    /// Reads one word (PTRACE_PEEKDATA).
    pub fn peek(&self, addr: u64) -> Result<u64> {
        sys::peek(self.tid, addr).map_err(self.err("PEEKDATA"))
    }

    /// Writes one word (PTRACE_POKEDATA); works on read-only text too.
    pub fn poke(&self, addr: u64, word: u64) -> Result<()> {
        sys::ptrace_plain(libc::PTRACE_POKEDATA, self.tid, addr, word)
            .map(drop)
            .map_err(self.err("POKEDATA"))
    }

    fn proc_mem(&self, write: bool) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(format!("/proc/{}/mem", self.tid))
    }

    /// Reads `buf.len()` bytes at `addr` (process_vm_readv, else /proc/TID/mem, which also
    /// reads pages without read permission).
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        if let Ok(n) = process_vm_readv(
            Pid::from_raw(self.tid),
            &mut [std::io::IoSliceMut::new(buf)],
            &remote,
        ) {
            if n == len {
                return Ok(());
            }
        }
        let mem_err = |source| CompelError::Mem {
            tid: self.tid,
            op: "read",
            addr,
            len,
            source,
        };
        self.proc_mem(false)
            .and_then(|f| f.read_exact_at(buf, addr))
            .map_err(mem_err)
    }

    /// Writes `data` at `addr` (process_vm_writev, else /proc/TID/mem, which also writes
    /// read-only pages).
    pub fn write_mem(&self, addr: u64, data: &[u8]) -> Result<()> {
        let len = data.len();
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        if let Ok(n) = process_vm_writev(
            Pid::from_raw(self.tid),
            &[std::io::IoSlice::new(data)],
            &remote,
        ) {
            if n == len {
                return Ok(());
            }
        }
        let mem_err = |source| CompelError::Mem {
            tid: self.tid,
            op: "write",
            addr,
            len,
            source,
        };
        self.proc_mem(true)
            .and_then(|f| f.write_all_at(data, addr))
            .map_err(mem_err)
    }

    /// Resumes the task (PTRACE_CONT), delivering `sig` (0 for none) if it is in a
    /// signal-delivery-stop. Use [`Tracee::wait_stop`] to get it stopped again.
    pub fn cont(&self, sig: i32) -> Result<()> {
        sys::ptrace_plain(libc::PTRACE_CONT, self.tid, 0, sig as u64).map_err(self.err("CONT"))?;
        self.running.set(true);
        Ok(())
    }

    /// Lets the stopped task run for `dur`, then stops it again (PTRACE_CONT, PTRACE_INTERRUPT): the
    /// thread control that plugins get for a frozen tree (a driver thread finishing device work). The
    /// task is left in the same kind of stop as after [`Tracee::seize`]; a signal that arrives meanwhile
    /// is held back and re-sent on detach, as at seize. A task that was group-stopped (SIGSTOP) when
    /// seized is refused: it must not run.
    pub fn run_for(&self, dur: Duration) -> Result<()> {
        let refuse = |what: &str| Err(CompelError::Invalid { tid: self.tid, what: what.into() });
        if !self.seized {
            return self.run_for_traceme(dur);
        }
        if self.was_stopped {
            return refuse("the task was stopped (SIGSTOP) when frozen; it must not run");
        }
        if self.in_remote.get() || self.running.get() {
            return refuse("the task is busy (running, or executing remote system calls)");
        }
        self.cont(0)?;
        std::thread::sleep(dur);
        self.interrupt()?;
        loop {
            match self.wait_stop(self.timeout)? {
                Stop::Interrupt => return Ok(()),
                Stop::Signal(sig) => {
                    tracing::debug!(tid = self.tid, sig, "signal while the task ran for a plugin, deferring it");
                    self.defer_signal(sig);
                    self.interrupt()?;
                    self.cont(0)?;
                }
                other => {
                    tracing::debug!(tid = self.tid, ?other, "unexpected stop while stopping the task again, trapping again");
                    self.interrupt()?;
                    self.cont(0)?;
                }
            }
        }
    }

    /// [`Tracee::run_for`] for a task traced through PTRACE_TRACEME (one rcr restores), which
    /// PTRACE_INTERRUPT cannot stop: it is stopped again with a SIGSTOP of rcr's, which is taken back at
    /// its signal-delivery-stop (never delivered); any other signal meanwhile is held back as at seize.
    fn run_for_traceme(&self, dur: Duration) -> Result<()> {
        if self.in_remote.get() || self.running.get() {
            return Err(CompelError::Invalid { tid: self.tid, what: "the task is busy (running, or executing remote system calls)".into() });
        }
        self.cont(0)?;
        std::thread::sleep(dur);
        sys::tgkill(self.tgid, self.tid, libc::SIGSTOP).map_err(self.err("tgkill(SIGSTOP)"))?;
        loop {
            match self.wait_stop(self.timeout)? {
                Stop::Signal(libc::SIGSTOP) => return Ok(()),
                Stop::Signal(sig) => {
                    tracing::debug!(tid = self.tid, sig, "signal while the task ran for a plugin, deferring it");
                    self.defer_signal(sig);
                    self.cont(0)?;
                }
                other => {
                    tracing::debug!(tid = self.tid, ?other, "unexpected stop while stopping the task again");
                    self.cont(0)?;
                }
            }
        }
    }

    /// Asks a seized task to stop (PTRACE_INTERRUPT); the stop is reported by `wait_stop`.
    pub fn interrupt(&self) -> Result<()> {
        if !self.seized {
            return Err(CompelError::Invalid {
                tid: self.tid,
                what: "PTRACE_INTERRUPT needs a seized task (this one used PTRACE_TRACEME)".into(),
            });
        }
        sys::ptrace_plain(libc::PTRACE_INTERRUPT, self.tid, 0, 0)
            .map(drop)
            .map_err(self.err("INTERRUPT"))
    }

    /// Waits at most `timeout` for the next ptrace-stop of the task.
    pub fn wait_stop(&self, timeout: Duration) -> Result<Stop> {
        match wait::wait_stop(self.tid, timeout, "waiting for a ptrace stop") {
            Ok(stop) => {
                self.running.set(false);
                Ok(stop)
            }
            Err(e) => {
                if matches!(
                    e,
                    CompelError::Exited { .. }
                        | CompelError::Wait {
                            source: Errno::ECHILD,
                            ..
                        }
                ) {
                    // Gone (and reaped): nothing to detach, and its TID may be reused.
                    self.detached.set(true);
                }
                Err(e)
            }
        }
    }

    /// Marks a `Remote` as active; false if one already is.
    pub(super) fn enter_remote(&self) -> bool {
        !self.in_remote.replace(true)
    }

    pub(super) fn leave_remote(&self) {
        self.in_remote.set(false);
    }

    /// Detaches; see the type's documentation for the state the task is left in.
    pub fn detach(self) -> Result<()> {
        self.detach_inner(0)
    }

    /// Detaches delivering `sig` as the task resumes (SIGSTOP: it goes straight into a group stop,
    /// as a restored stopped process must, without running any of its code).
    pub fn detach_with_signal(self, sig: i32) -> Result<()> {
        self.detach_inner(sig)
    }

    fn detach_inner(&self, with: i32) -> Result<()> {
        if self.detached.replace(true) {
            return Ok(());
        }
        let mut sig = with;
        if self.running.get() {
            if self.seized {
                self.interrupt()?;
            } else {
                sys::tgkill(self.tgid, self.tid, libc::SIGSTOP)
                    .map_err(self.err("tgkill SIGSTOP"))?;
            }
            if let Stop::Signal(s) = self.wait_stop(self.timeout)? {
                // Deliver a signal that arrived meanwhile, but not our own SIGSTOP.
                if (self.seized || s != libc::SIGSTOP) && with == 0 {
                    sig = s;
                }
            }
        }
        for &(s, _) in self.deferred.borrow().iter() {
            if let Err(e) = sys::tgkill(self.tgid, self.tid, s) {
                tracing::warn!(
                    tid = self.tid,
                    sig = s,
                    "cannot re-send deferred signal: {e}"
                );
            }
        }
        sys::ptrace_plain(libc::PTRACE_DETACH, self.tid, 0, sig as u64)
            .map(drop)
            .map_err(self.err("DETACH"))
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if let Err(e) = self.detach_inner(0) {
            tracing::warn!(tid = self.tid, "detaching on drop failed: {e}");
        }
    }
}
