//! [`Remote`]: makes a stopped tracee execute system calls one at a time.
//!
//! The task's registers are pointed at a `syscall; int3` sequence (poked into its first
//! executable mapping, or provided by the caller) and it is resumed; the int3 brings it back
//! into a SIGTRAP stop with the result in rax. If the task ignores SIGTRAP (the kernel would
//! reset that disposition when int3 traps with the signal ignored) the stop after the syscall
//! is taken with PTRACE_SYSCALL at syscall exit instead, and the int3 is never reached.

use nix::errno::Errno;

use super::error::{CompelError, Result};
use super::procfs;
use super::tracee::Tracee;
use super::wait::Stop;

/// `syscall; int3`.
pub const SYSCALL_INT3: [u8; 3] = [0x0f, 0x05, 0xcc];
const PAGE: u64 = 4096;
/// Size of the helper scratch area used by the typed helpers (paths at 0, structs after).
pub(super) const HELPER_LEN: u64 = 2 * PAGE;
pub(super) const HELPER_STRUCT_OFF: u64 = PAGE;

fn sig_bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// A tracee executing remote system calls. Cure it with [`Remote::cure`] (dropping it cures
/// too, logging errors): the task is then back in its original stop with its original
/// registers, signal mask and memory.
pub struct Remote<'a> {
    t: &'a Tracee,
    site: u64,
    /// (address, original word) of the bytes we poked at the site.
    poked: Option<(u64, u64)>,
    saved_regs: libc::user_regs_struct,
    saved_mask: u64,
    scratch: Vec<(u64, u64)>,
    helper: Option<u64>,
    /// Bump area for [`Remote::scratch_put`]: (base, len, used).
    put_area: Option<(u64, u64, u64)>,
    /// Stop at syscall exit (PTRACE_SYSCALL) rather than at the int3.
    sysexit_mode: bool,
    cured: bool,
}

impl<'a> Remote<'a> {
    /// Prepares `t` for remote syscalls: saves registers and signal mask, blocks signals
    /// and pokes `syscall; int3` at the start of its first executable mapping.
    pub fn inject(t: &'a Tracee) -> Result<Remote<'a>> {
        let tid = t.tid();
        let maps_path = format!("/proc/{tid}/maps");
        let maps = std::fs::read_to_string(&maps_path).map_err(|source| CompelError::Proc {
            path: maps_path,
            source,
        })?;
        let site = procfs::exec_site(&maps).ok_or(CompelError::NoExecMapping { tid })?;
        let mut r = Self::prepare(t, site)?;
        let orig = t.peek(site)?;
        let mut bytes = orig.to_le_bytes();
        bytes[..SYSCALL_INT3.len()].copy_from_slice(&SYSCALL_INT3);
        t.poke(site, u64::from_le_bytes(bytes))?;
        r.poked = Some((site, orig));
        tracing::trace!(
            tid,
            site = format_args!("{site:#x}"),
            "injected syscall site"
        );
        Ok(r)
    }

    /// Like [`Remote::inject`], but the caller guarantees `syscall; int3` at `site` (e.g. the
    /// restore trampoline); nothing is poked.
    pub fn at_site(t: &'a Tracee, site: u64) -> Result<Remote<'a>> {
        Self::prepare(t, site)
    }

    fn prepare(t: &'a Tracee, site: u64) -> Result<Remote<'a>> {
        let tid = t.tid();
        let status_path = format!("/proc/{tid}/status");
        let status = std::fs::read_to_string(&status_path).map_err(|source| CompelError::Proc {
            path: status_path,
            source,
        })?;
        let sigtrap_ignored =
            procfs::status_mask(&status, "SigIgn").unwrap_or(0) & sig_bit(libc::SIGTRAP) != 0;
        if !t.enter_remote() {
            return Err(CompelError::Invalid {
                tid,
                what: "another Remote is already active on this task".into(),
            });
        }
        let saved = t.regs().and_then(|r| Ok((r, t.sigmask()?)));
        let (saved_regs, saved_mask) = match saved {
            Ok(s) => s,
            Err(e) => {
                t.leave_remote();
                return Err(e);
            }
        };
        let r = Remote {
            t,
            site,
            poked: None,
            saved_regs,
            saved_mask,
            scratch: Vec::new(),
            helper: None,
            put_area: None,
            sysexit_mode: sigtrap_ignored,
            cured: false,
        };
        // Block everything but SIGTRAP: int3 force-unblocks a blocked SIGTRAP and resets its
        // handler to SIG_DFL, which would corrupt the task's dispositions.
        t.set_sigmask(!sig_bit(libc::SIGTRAP))?;
        Ok(r)
    }

    /// The tracee.
    pub fn tracee(&self) -> &'a Tracee {
        self.t
    }

    /// The current syscall site.
    pub fn site(&self) -> u64 {
        self.site
    }

    /// The registers saved at inject time (restored by `cure`).
    pub fn saved_regs(&self) -> &libc::user_regs_struct {
        &self.saved_regs
    }

    /// Moves the syscall site to `site`, where the caller guarantees `syscall; int3`. Bytes
    /// poked by `inject` are restored right away, so the old site may be unmapped afterwards.
    pub fn set_site(&mut self, site: u64) -> Result<()> {
        if let Some((addr, word)) = self.poked.take() {
            self.t.poke(addr, word)?;
        }
        self.site = site;
        Ok(())
    }

    /// Points the registers at the site with a call to `nr` loaded.
    fn load_call(&self, nr: i64, args: &[u64]) -> Result<()> {
        let t = self.t;
        let tid = t.tid();
        if args.len() > 6 {
            return Err(CompelError::Invalid {
                tid,
                what: format!("syscall {nr} with {} arguments", args.len()),
            });
        }
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let mut regs = self.saved_regs;
        regs.rip = self.site;
        regs.rax = nr as u64;
        regs.rdi = a[0];
        regs.rsi = a[1];
        regs.rdx = a[2];
        regs.r10 = a[3];
        regs.r8 = a[4];
        regs.r9 = a[5];
        // No syscall-restart fixup on resume: we are not returning into an interrupted call.
        regs.orig_rax = u64::MAX;
        t.set_regs(&regs)
    }

    /// Runs system call `nr` with up to six `args`; returns the raw rax (-errno on failure).
    pub fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64> {
        let t = self.t;
        let tid = t.tid();
        self.load_call(nr, args)?;
        let end = if self.sysexit_mode {
            // enter-stop, then exit-stop
            self.run_until(|s| s == Stop::Syscall, true)?;
            self.run_until(|s| s == Stop::Syscall, true)?;
            self.site + 2
        } else {
            self.run_until(|s| s == Stop::Signal(libc::SIGTRAP), false)?;
            self.site + 3
        };
        let after = t.regs()?;
        if after.rip != end {
            return Err(CompelError::BadSite {
                tid,
                nr,
                site: self.site,
                rip: after.rip,
            });
        }
        Ok(after.rax as i64)
    }

    /// Resumes the task until a stop accepted by `done`, holding back signals that arrive.
    fn run_until(&self, done: impl Fn(Stop) -> bool, syscall_stops: bool) -> Result<()> {
        let t = self.t;
        let resume = || {
            if syscall_stops {
                t.cont_syscall()
            } else {
                t.cont(0)
            }
        };
        resume()?;
        loop {
            let stop = t.wait_stop(t.default_timeout())?;
            if done(stop) {
                return Ok(());
            }
            match stop {
                Stop::Signal(
                    s @ (libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGSYS),
                ) => {
                    // A fault of our own making: do not deliver it; cure restores the state.
                    return Err(CompelError::UnexpectedStop {
                        tid: t.tid(),
                        stop: format!("signal {s} at the syscall site {:#x}", self.site),
                        what: "running a remote syscall",
                    });
                }
                Stop::Signal(s) => {
                    tracing::debug!(
                        tid = t.tid(),
                        sig = s,
                        "signal during remote syscall, deferring it"
                    );
                    t.defer_signal(s);
                }
                other => tracing::debug!(
                    tid = t.tid(),
                    ?other,
                    "stop during remote syscall, resuming"
                ),
            }
            resume()?;
        }
    }

    /// Like [`Remote::syscall`], mapping a -errno return to an error.
    pub fn syscall_ok(&mut self, nr: i64, args: &[u64]) -> Result<u64> {
        let ret = self.syscall(nr, args)?;
        if (-4095..0).contains(&ret) {
            // `ret` is in -4095..-1, so `-ret` fits an i32.
            return Err(CompelError::RemoteSyscall {
                tid: self.t.tid(),
                nr,
                errno: Errno::from_raw(-ret as i32),
            });
        }
        Ok(ret as u64)
    }

    /// Maps an anonymous read-write area of at least `len` bytes in the task; it is
    /// unmapped by `cure`.
    pub fn alloc_scratch(&mut self, len: u64) -> Result<u64> {
        let len = len.max(1).div_ceil(PAGE) * PAGE;
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let addr = self.syscall_ok(libc::SYS_mmap, &[0, len, prot, flags, u64::MAX, 0])?;
        self.scratch.push((addr, len));
        Ok(addr)
    }

    /// Copies `data` into scratch memory of the task and returns its address. Successive puts get
    /// distinct addresses (a bump area, grown by mapping more) until [`Remote::release_scratch`].
    pub fn scratch_put(&mut self, data: &[u8]) -> Result<u64> {
        const AREA: u64 = 64 * 1024;
        let need = (data.len() as u64).max(1).div_ceil(16) * 16;
        let fits = matches!(self.put_area, Some((_, len, used)) if used + need <= len);
        if !fits {
            let len = need.max(AREA).div_ceil(PAGE) * PAGE;
            let base = self.alloc_scratch(len)?;
            self.put_area = Some((base, len, 0));
        }
        let (base, len, used) = self.put_area.unwrap_or((0, 0, 0));
        let addr = base + used;
        self.put_area = Some((base, len, used + need));
        self.t.write_mem(addr, data)?;
        Ok(addr)
    }

    /// Reads task memory at `addr` (a scratch address from [`Remote::scratch_put`]) into `buf`.
    pub fn scratch_get(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.t.read_mem(addr, buf)
    }

    /// Unmaps every scratch area now (the restorer does so before the task's last calls).
    pub fn release_scratch(&mut self) -> Result<()> {
        self.helper = None;
        self.put_area = None;
        for (addr, len) in std::mem::take(&mut self.scratch) {
            self.syscall_ok(libc::SYS_munmap, &[addr, len])?;
        }
        Ok(())
    }

    /// Runs a last system call and leaves the task stopped at its syscall exit, before it returns to
    /// user space: the call may unmap the site itself (the restore trampoline). The Remote is used up:
    /// nothing is cured; the caller sets the task's final registers and detaches. Scratch must have
    /// been released.
    pub fn last_syscall(mut self, nr: i64, args: &[u64]) -> Result<i64> {
        let t = self.t;
        if !self.scratch.is_empty() {
            return Err(CompelError::Invalid { tid: t.tid(), what: "last_syscall with scratch still mapped".into() });
        }
        self.load_call(nr, args)?;
        self.run_until(|s| s == Stop::Syscall, true)?;
        self.run_until(|s| s == Stop::Syscall, true)?;
        let rax = t.regs()?.rax as i64;
        self.cured = true;
        self.poked = None;
        t.leave_remote();
        Ok(rax)
    }

    /// Scratch areas currently mapped, as (address, length): a caller unmapping the task's
    /// memory wholesale must spare them (or stop using scratch-based helpers).
    pub fn scratch_ranges(&self) -> &[(u64, u64)] {
        &self.scratch
    }

    /// Copies `data` into the task at `addr` (normally inside a scratch area).
    pub fn write_scratch(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.t.write_mem(addr, data)
    }

    /// Copies task memory at `addr` into `buf`.
    pub fn read_scratch(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.t.read_mem(addr, buf)
    }

    /// The helper scratch area (allocated on first use).
    pub(super) fn helper(&mut self) -> Result<u64> {
        match self.helper {
            Some(a) => Ok(a),
            None => {
                let a = self.alloc_scratch(HELPER_LEN)?;
                self.helper = Some(a);
                Ok(a)
            }
        }
    }

    /// Restores the poked bytes, unmaps scratch, restores signal mask and registers and
    /// puts a seized task back into a PTRACE_EVENT_STOP, like the one `seize` left it in.
    /// (A PTRACE_TRACEME child stays in the SIGTRAP stop of the last syscall, with its saved
    /// registers; detaching with no signal resumes it there.) The signal mask becomes the one
    /// saved at inject: a restorer sets the final mask after `cure`.
    pub fn cure(mut self) -> Result<()> {
        self.cure_inner()
    }

    fn cure_inner(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.cured, true) {
            return Ok(());
        }
        let t = self.t;
        let mut first: Option<CompelError> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                match first {
                    None => first = Some(e),
                    Some(_) => tracing::warn!(tid = t.tid(), "cure: {e}"),
                }
            }
        };
        self.helper = None;
        self.put_area = None;
        for (addr, len) in std::mem::take(&mut self.scratch) {
            note(self.syscall_ok(libc::SYS_munmap, &[addr, len]).map(drop));
        }
        if let Some((addr, word)) = self.poked.take() {
            note(t.poke(addr, word));
        }
        note(t.set_sigmask(self.saved_mask));
        note(t.set_regs(&self.saved_regs));
        if t.is_seized() {
            note(self.back_to_event_stop());
        }
        t.leave_remote();
        first.map_or(Ok(()), Err)
    }

    /// From the stop after our last syscall, traps into PTRACE_EVENT_STOP without ever
    /// returning to user space: PTRACE_INTERRUPT arms a trap that `get_signal` takes before
    /// dequeuing any signal, and the registers are set again once there.
    fn back_to_event_stop(&self) -> Result<()> {
        let t = self.t;
        t.interrupt()?;
        t.cont(0)?;
        loop {
            match t.wait_stop(t.default_timeout())? {
                Stop::Interrupt | Stop::Group(_) => break,
                Stop::Signal(s) => {
                    tracing::debug!(tid = t.tid(), sig = s, "signal while curing, deferring it");
                    t.defer_signal(s);
                    t.interrupt()?;
                    t.cont(0)?;
                }
                other => {
                    tracing::debug!(tid = t.tid(), ?other, "stop while curing, trapping again");
                    t.interrupt()?;
                    t.cont(0)?;
                }
            }
        }
        t.set_regs(&self.saved_regs)
    }
}

impl Drop for Remote<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cure_inner() {
            tracing::warn!(
                tid = self.t.tid(),
                "curing remote syscall state on drop failed: {e}"
            );
        }
    }
}
