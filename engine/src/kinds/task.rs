//! The task: its core entry (task core, thread cores, registers) and the per-task attributes that are
//! not files or memory: rlimits, scheduling, personality, itimers, rseq, seccomp filters, the prctl
//! settings (pdeath signal, dumpable, no_new_privs, securebits, THP), cwd and root, and the thread
//! attributes. Credentials are [`super::creds`]'s. Each has its dump (read from /proc, ptrace or remote
//! calls) and its restore (set in the new task) here, side by side.

use super::{cpu, mm, posix_timers, regfile, signals, FileTable};
use crate::checkpoint::ProcImages;
use crate::compel::{Itimerval, Remote, Timeval, Tracee};
use crate::ctx::{step, DumpCtx, RestoreCtx};
use crate::image::{pb, ImageName};
use crate::proc::{ProcDir, Status};
use crate::tree::{self, ChildGuard, Frozen};
use crate::{sys, Context, Error, Result};
use std::os::fd::AsRawFd;

pub use super::creds::{dump_creds, restore_creds, OwnPrivileges};

/// Every rlimit of the task, read by the task itself: prlimit from outside on a process of another
/// user needs CAP_SYS_RESOURCE, which rcr may not have.
pub fn dump_rlimits(remote: &mut Remote<'_>) -> Result<pb::TaskRlimitsEntry> {
    let mut rlimits = Vec::new();
    for res in 0..RLIMIT_NAMES.len() as u32 {
        let (cur, max) = remote.prlimit(res, None)?;
        rlimits.push(pb::RlimitEntry { cur, max });
    }
    Ok(pb::TaskRlimitsEntry { rlimits })
}

pub(crate) const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
    "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
];

/// Sets the rlimits of the new task (prlimit from rcr). Raising a hard limit above rcr's own needs
/// CAP_SYS_RESOURCE: without it that is an error saying which limit and what to do.
pub fn restore_rlimits(pid: i32, r: &pb::TaskRlimitsEntry) -> Result<()> {
    for (res, l) in r.rlimits.iter().enumerate() {
        let name = RLIMIT_NAMES.get(res).copied().unwrap_or("rlimit");
        let p = nix::unistd::Pid::from_raw(pid);
        if let Err(e) = sys::prlimit_set(p, res as u32, l.cur, l.max) {
            let (_, have_max) = sys::prlimit_get(p, res as u32).unwrap_or((0, 0));
            if l.max > have_max {
                return Err(Error::privilege(format!(
                    "pid {pid}: cannot restore {name} hard limit {} (rcr's is {have_max}): raising a hard limit needs \
                     CAP_SYS_RESOURCE, which rcr does not have here; raise rcr's own hard limit first (ulimit -H) \
                     or run rcr with CAP_SYS_RESOURCE ({e})",
                    l.max
                )));
            }
            return Err(Error::from(e).at_task(pid, format!("cannot restore {name} = {}/{}", l.cur, l.max)));
        }
    }
    Ok(())
}

/// The thread's robust futex list head and length (get_robust_list works from outside on a task rcr
/// may ptrace).
pub fn robust_list(tid: i32) -> Result<(u64, u32)> {
    let (head, len) = sys::get_robust_list(tid).map_err(|source| Error::Io { ctx: format!("get_robust_list of thread {tid}"), source })?;
    Ok((head, len as u32))
}

/// Scheduling policy, priority and nice value.
pub fn dump_sched(pid: i32) -> Result<(u32, u32, i32)> {
    let a = sys::sched_getattr(nix::unistd::Pid::from_raw(pid))?;
    Ok((a.policy, a.priority, a.nice))
}

/// Sets them again (from rcr, on the new task's pid).
pub fn restore_sched(pid: i32, policy: u32, prio: u32, nice: i32) -> Result<()> {
    let a = sys::SchedAttr { policy, priority: prio, nice, flags: 0, runtime: 0, deadline: 0, period: 0 };
    sys::sched_setattr(nix::unistd::Pid::from_raw(pid), &a).at_task_with(pid, || format!("restoring scheduling policy {policy} (prio {prio}, nice {nice})"))?;
    // sched_setattr ignores the nice value for SCHED_IDLE; setpriority sets it for every policy.
    if let Err(source) = sys::setpriority(pid, nice) {
        return Err(Error::Io { ctx: format!("pid {pid}: restoring nice {nice}"), source });
    }
    Ok(())
}

fn itimer(remote: &mut Remote<'_>, which: i32) -> Result<pb::ItimerEntry> {
    let t = remote.getitimer(which)?;
    Ok(pb::ItimerEntry { isec: t.interval.sec as u64, iusec: t.interval.usec as u64, vsec: t.value.sec as u64, vusec: t.value.usec as u64 })
}

/// The three itimers, read in the task.
pub fn dump_itimers(remote: &mut Remote<'_>) -> Result<pb::TaskTimersEntry> {
    Ok(pb::TaskTimersEntry {
        real: itimer(remote, libc::ITIMER_REAL)?,
        virt: itimer(remote, libc::ITIMER_VIRTUAL)?,
        prof: itimer(remote, libc::ITIMER_PROF)?,
        posix: Vec::new(),
    })
}

/// Arms the itimers again with the time they had left.
pub fn restore_itimers(remote: &mut Remote<'_>, t: &pb::TaskTimersEntry) -> Result<()> {
    for (which, it) in [(libc::ITIMER_REAL, &t.real), (libc::ITIMER_VIRTUAL, &t.virt), (libc::ITIMER_PROF, &t.prof)] {
        let tv = |s: u64, us: u64| Timeval { sec: s as i64, usec: us as i64 };
        let (interval, mut value) = (tv(it.isec, it.iusec), tv(it.vsec, it.vusec));
        if value == Timeval::default() {
            if interval == Timeval::default() {
                continue;
            }
            // Dumped between an expiry and the delivery of its signal (the kernel re-arms a periodic
            // timer only then): the signal is pending and restored as such; the timer goes on from the
            // next period. (setitimer with a zero value would disarm it and drop the interval.)
            value = interval;
        }
        remote.setitimer(which, &Itimerval { interval, value })?;
    }
    Ok(())
}

/// struct rseq_cs as the kernel reads it.
const RSEQ_CS_OFF: u64 = 8;

/// rseq registration of a thread; a thread stopped inside an rseq critical section is moved to the
/// section's abort handler in `regs` (as the kernel would do when it next returns to it).
pub fn dump_rseq(t: &Tracee, pid: i32, regs: &mut pb::UserX86RegsEntry) -> Result<Option<pb::RseqEntry>> {
    let Some(cfg) = t.rseq_config()? else { return Ok(None) };
    if cfg.abi_pointer == 0 {
        return Ok(None);
    }
    let mut word = [0u8; 8];
    t.read_mem(cfg.abi_pointer + RSEQ_CS_OFF, &mut word)?;
    let cs_ptr = u64::from_le_bytes(word);
    if cs_ptr != 0 {
        let mut cs = [0u8; 32];
        t.read_mem(cs_ptr, &mut cs)?;
        let start = u64::from_le_bytes(cs[8..16].try_into().unwrap_or([0; 8]));
        let post = u64::from_le_bytes(cs[16..24].try_into().unwrap_or([0; 8]));
        let abort = u64::from_le_bytes(cs[24..32].try_into().unwrap_or([0; 8]));
        if regs.ip >= start && regs.ip < start.wrapping_add(post) {
            tracing::debug!("pid {pid}: stopped inside an rseq critical section at {:#x}; resuming at its abort handler {abort:#x}", regs.ip);
            regs.ip = abort;
        }
    }
    Ok(Some(pb::RseqEntry {
        rseq_abi_pointer: cfg.abi_pointer,
        rseq_abi_size: cfg.abi_size,
        signature: cfg.signature,
        rseq_cs_pointer: (cs_ptr != 0).then_some(cs_ptr),
    }))
}

/// Registers rseq again in the new thread.
pub fn restore_rseq(remote: &mut Remote<'_>, r: Option<&pb::RseqEntry>) -> Result<()> {
    let Some(r) = r else { return Ok(()) };
    remote
        .rseq(r.rseq_abi_pointer, r.rseq_abi_size, 0, r.signature)
        .at(|| format!("registering rseq at {:#x} again", r.rseq_abi_pointer))?;
    Ok(())
}

/// prctl values read in the task.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prctls {
    pub pdeath_sig: u32,
    pub dumpable: i32,
    pub secbits: u32,
    pub thp_disabled: bool,
    pub child_subreaper: bool,
    pub clear_tid_addr: u64,
}

/// Reads the prctl settings and the clear_child_tid address in the task.
pub fn dump_prctls(remote: &mut Remote<'_>) -> Result<Prctls> {
    let pdeath_sig = remote.prctl_get_int(libc::PR_GET_PDEATHSIG)?;
    let dumpable = remote.prctl_ok(libc::PR_GET_DUMPABLE, &[])? as i32;
    let secbits = remote.prctl_ok(libc::PR_GET_SECUREBITS, &[])? as u32;
    let thp_disabled = remote.prctl_ok(libc::PR_GET_THP_DISABLE, &[])? != 0;
    let child_subreaper = remote.prctl_get_int(libc::PR_GET_CHILD_SUBREAPER)? != 0;
    let clear_tid_addr = remote.get_tid_address()?;
    Ok(Prctls { pdeath_sig, dumpable, secbits, thp_disabled, child_subreaper, clear_tid_addr })
}

/// seccomp filters of the task, into `seccomp.img` entries; returns the index (1-based) of the task's
/// innermost filter, as CRIU's `thread_core.seccomp_filter`.
pub fn dump_seccomp(t: &Tracee, out: &mut Vec<pb::SeccompFilter>) -> Result<Option<u32>> {
    let filters = t.seccomp_filters()?;
    if filters.is_empty() {
        return Ok(None);
    }
    let base = out.len() as u32;
    // ptrace lists the innermost filter first; the image lists them in install order with `prev` links.
    for (i, f) in filters.iter().rev().enumerate() {
        let i = i as u32;
        out.push(pb::SeccompFilter {
            filter: f.to_bytes(),
            prev: (i > 0).then_some(base + i),
            flags: Some(f.flags as u32),
        });
    }
    Ok(Some(out.len() as u32))
}

/// Installs the task's seccomp filters again, outermost first (the caller does this last: the filters
/// apply to every later call, rcr's too).
pub fn restore_seccomp(remote: &mut Remote<'_>, all: &[pb::SeccompFilter], innermost: u32) -> Result<()> {
    let mut chain = Vec::new();
    let mut at = Some(innermost);
    while let Some(i) = at {
        let f = all.get((i as usize).wrapping_sub(1)).ok_or_else(|| Error::corrupt(format!("seccomp.img has no filter {i}")))?;
        chain.push(f);
        at = f.prev;
        if chain.len() > all.len() {
            return Err(Error::corrupt("seccomp.img: filter chain loops"));
        }
    }
    for f in chain.iter().rev() {
        if f.filter.len() % 8 != 0 {
            return Err(Error::corrupt(format!("seccomp.img: a filter of {} bytes is not whole BPF instructions", f.filter.len())));
        }
        remote
            .seccomp_set_filter(f.flags.unwrap_or(0) as u64, &f.filter)
            .at(|| "installing a seccomp filter again".into())?;
    }
    Ok(())
}

// ---- The task's core entry (core-TID.img): task core, thread core, registers. ----

/// CRIU's task states (core_entry.tc.task_state).
pub const TASK_ALIVE: u32 = 1;
pub const TASK_DEAD: u32 = 2;
pub const TASK_STOPPED: u32 = 3;

/// A check that fails the dump before anything is killed says so.
pub fn left_running(e: Error) -> Error {
    e.left("the process was left running")
}

/// Process-wide state read in the leader, in one short remote phase.
pub struct TaskState {
    pub prctls: Prctls,
    pub sigactions: Vec<pb::SaEntry>,
    pub itimers: pb::TaskTimersEntry,
    pub sas: pb::ThreadSasEntry,
    pub brk: u64,
    pub rlimits: pb::TaskRlimitsEntry,
}

/// Everything that needs the task to execute system calls, in one short phase.
fn remote_phase(tracee: &Tracee, pid: i32, ptimers: &[crate::proc::PosixTimer]) -> Result<TaskState> {
    let mut remote = Remote::inject(tracee)?;
    let prctls = dump_prctls(&mut remote)?;
    let sigactions = signals::dump_sigactions(&mut remote)?;
    let mut itimers = dump_itimers(&mut remote)?;
    itimers.posix = posix_timers::dump(&mut remote, pid, ptimers)?;
    let sas = signals::dump_sas(&mut remote)?;
    let brk = remote.brk(0)?;
    let rlimits = dump_rlimits(&mut remote)?;
    remote.cure()?;
    Ok(TaskState { prctls, sigactions, itimers, sas, brk, rlimits })
}

/// Per-thread state, read from a stopped thread.
pub struct ThreadDump {
    info: pb::ThreadInfoX86,
    core: pb::ThreadCoreEntry,
}

/// A process's task state and its threads' (leader first), read while it is frozen.
pub struct TaskDump {
    pub ts: TaskState,
    pub threads: Vec<ThreadDump>,
    pub signals_s: Option<pb::SignalQueueEntry>,
    /// The leader's /proc status.
    pub status: Status,
}

/// Reads the task state of frozen process `f` and of each of its threads; its seccomp filters go into
/// `seccomp`. Fails, leaving it running, when rcr could not give something back at restore.
pub fn dump_task(c: &DumpCtx<'_>, f: &Frozen, status: Status, seccomp: &mut Vec<pb::SeccompFilter>) -> Result<TaskDump> {
    let pid = f.pid;
    let leader = &f.threads[0];
    c.own.check_namespaces(pid).map_err(left_running)?;
    let ptimers = f.proc.timers()?;
    posix_timers::check(pid, &ptimers)?;
    let signals_s = signals::dump_queue(leader, true)?;
    let ts = remote_phase(leader, pid, &ptimers)?;
    c.own.check_rlimits(pid, &ts.rlimits).map_err(left_running)?;
    c.check_cancelled(pid)?;
    let mut threads = Vec::with_capacity(f.threads.len());
    for (i, t) in f.threads.iter().enumerate() {
        threads.push(dump_thread(t, pid, &f.proc, &c.own, seccomp, (i == 0).then_some((&ts, &status)))?);
    }
    for th in threads.iter_mut().skip(1) {
        if let Some(cr) = th.core.creds.as_mut() {
            cr.secbits = ts.prctls.secbits;
        }
    }
    c.check_cancelled(pid)?;
    Ok(TaskDump { ts, threads, signals_s, status })
}

/// What a non-leader thread runs remotely: its sigaltstack, clear_child_tid address, pdeath signal.
fn thread_remote(t: &Tracee) -> Result<(pb::ThreadSasEntry, u64, u32)> {
    let mut remote = Remote::inject(t)?;
    let sas = signals::dump_sas(&mut remote)?;
    let tid_addr = remote.get_tid_address()?;
    let pdeath = remote.prctl_get_int(libc::PR_GET_PDEATHSIG)?;
    remote.cure()?;
    Ok((sas, tid_addr, pdeath))
}

/// `leader` is the process-wide state read through the leader (Some for the leader itself), with the
/// leader's /proc status, which is read once per process.
fn dump_thread(t: &Tracee, pid: i32, proc: &ProcDir, own: &OwnPrivileges, seccomp: &mut Vec<pb::SeccompFilter>, leader: Option<(&TaskState, &Status)>) -> Result<ThreadDump> {
    let tid = t.tid();
    let tproc = proc.task(tid)?;
    let status = match leader {
        Some((_, st)) => st.clone(),
        None => tproc.status()?,
    };
    own.check_creds(pid, tid, &status).map_err(left_running)?;
    let leader = leader.map(|(ts, _)| ts);
    let blocked = t.sigmask()?;
    let mut regs = t.regs()?;
    cpu::fixup_syscall_restart(&mut regs);
    let mut gpregs = cpu::regs_to_pb(&regs);
    let rseq = dump_rseq(t, tid, &mut gpregs)?;
    let fpregs = cpu::xsave_to_pb(&t.xstate()?)?;
    let signals_p = signals::dump_queue(t, false)?;
    let seccomp_filter = dump_seccomp(t, seccomp)?;
    let (sas, clear_tid_addr, pdeath_sig, secbits) = match leader {
        Some(ts) => (ts.sas, ts.prctls.clear_tid_addr, ts.prctls.pdeath_sig, ts.prctls.secbits),
        None => {
            let (sas, a, p) = thread_remote(t)?;
            (sas, a, p, 0)
        }
    };
    let (policy, prio, nice) = dump_sched(tid)?;
    let comm = tproc.comm()?;
    let (futex_rla, futex_rla_len) = robust_list(tid)?;
    Ok(ThreadDump {
        info: pb::ThreadInfoX86 { clear_tid_addr, gpregs, fpregs, tls: Vec::new() },
        core: pb::ThreadCoreEntry {
            futex_rla,
            futex_rla_len,
            sched_nice: Some(nice),
            sched_policy: Some(policy),
            sched_prio: Some(prio),
            blk_sigset: Some(blocked),
            sas: Some(sas),
            pdeath_sig: Some(pdeath_sig),
            signals_p,
            creds: Some(dump_creds(&status, secbits)),
            seccomp_mode: Some(if seccomp_filter.is_some() { pb::SeccompMode::Filter } else { pb::SeccompMode::Disabled } as i32),
            seccomp_filter,
            comm: Some(comm),
            rseq_entry: rseq,
            ..Default::default()
        },
    })
}

/// Writes the core of every thread of `f` (the task core in the leader's).
pub fn write_cores(c: &DumpCtx<'_>, f: &Frozen, td: TaskDump) -> Result<()> {
    let (proc, stat) = (&f.proc, &f.stat);
    let ts = td.ts;
    let tc = pb::TaskCoreEntry {
        task_state: if f.threads[0].was_stopped() { TASK_STOPPED } else { TASK_ALIVE },
        exit_code: 0,
        personality: proc.personality()?,
        flags: stat.flags,
        blk_sigset: td.threads[0].core.blk_sigset.unwrap_or(0),
        comm: stat.comm.clone(),
        timers: Some(ts.itimers),
        rlimits: Some(ts.rlimits),
        signals_s: td.signals_s,
        old_seccomp_mode: None,
        oom_score_adj: proc.oom_score_adj().ok(),
        loginuid: proc.loginuid().ok(),
        sigactions: ts.sigactions,
        child_subreaper: Some(ts.prctls.child_subreaper),
        ..Default::default()
    };
    let mut tc = Some(tc);
    for (t, th) in f.threads.iter().zip(td.threads) {
        let core = pb::CoreEntry {
            mtype: pb::core_entry::March::X8664 as i32,
            thread_info: Some(th.info),
            tc: tc.take(),
            thread_core: Some(th.core),
            ..Default::default()
        };
        c.images.write_one(ImageName::Core(t.tid() as u32), &core)?;
    }
    Ok(())
}

/// The task's cwd and root as files of the file table: (cwd id, root id).
pub fn dump_fs(proc: &ProcDir, files: &mut FileTable) -> Result<(u32, u32)> {
    let pid = proc.pid();
    let mut ids = [0u32; 2];
    for (i, (what, path)) in [("cwd", proc.cwd()?), ("root", proc.root()?)].into_iter().enumerate() {
        let path = path.to_string_lossy().into_owned();
        regfile::check_path(pid, &format!("its {what}"), &path)?;
        let f = std::fs::File::open(&path).map_err(|e| Error::Io { ctx: format!("pid {pid}: opening its {what} {path}"), source: e })?;
        let st = nix::sys::stat::fstat(f.as_raw_fd()).map_err(|e| Error::Io { ctx: format!("fstat of {path}"), source: e.into() })?;
        ids[i] = files.add_reg(&path, (libc::O_RDONLY | libc::O_DIRECTORY) as u32, 0, &st);
    }
    Ok((ids[0], ids[1]))
}

/// fs in the new task: cwd (an fd it inherited), root, umask.
pub fn restore_fs(r: &mut Remote<'_>, pid: i32, cwd_fd: i32, root: &str, umask: Option<u32>) -> Result<()> {
    step(pid, "cwd", r.fchdir(cwd_fd))?;
    if root != "/" {
        step(pid, "chroot", r.chroot(root))?;
    }
    if let Some(u) = umask {
        r.umask(u)?;
    }
    Ok(())
}

/// The process-wide attributes of process `p` (its leader in `r`), then the leader's own thread
/// attributes: rlimits, scheduling, oom_score_adj, personality, THP, subreaper, sigactions, timers, the
/// pending signals of every thread, dumpable.
pub fn restore_task(r: &mut Remote<'_>, c: &RestoreCtx<'_>, p: &ProcImages, is_root: bool) -> Result<()> {
    let pid = p.pid();
    let core = &p.cores[0];
    let tc = core.tc.as_ref().ok_or_else(|| Error::corrupt("core has no task core"))?;
    let th = core.thread_core.clone().unwrap_or_default();
    if let Some(rl) = &tc.rlimits {
        restore_rlimits(pid, rl)?;
    }
    if let (Some(policy), Some(prio), Some(nice)) = (th.sched_policy, th.sched_prio, th.sched_nice) {
        restore_sched(pid, policy, prio, nice)?;
    }
    if let Some(adj) = tc.oom_score_adj {
        let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string());
    }
    step(pid, "personality", r.personality(tc.personality))?;
    // Both set either way: a forked task inherits rcr's THP setting.
    let thp = p.mm.thp_disabled == Some(true);
    step(pid, "THP", r.prctl_ok(libc::PR_SET_THP_DISABLE, &[thp as u64, 0, 0, 0]))?;
    let subreaper = tc.child_subreaper == Some(true);
    step(pid, "subreaper", r.prctl_ok(libc::PR_SET_CHILD_SUBREAPER, &[subreaper as u64]))?;
    step(pid, "sigactions", signals::restore_sigactions(r, &tc.sigactions))?;
    if let Some(t) = &tc.timers {
        step(pid, "itimers", restore_itimers(r, t))?;
        step(pid, "POSIX timers", posix_timers::restore(r, pid, &t.posix))?;
    }
    // Pending signals of every thread are queued by the leader: only a thread whose id is the process id
    // may queue signals with any siginfo.
    for (tcore, &tid) in p.cores.iter().zip(&p.pstree.threads) {
        let q = tcore.thread_core.as_ref().and_then(|t| t.signals_p.as_ref());
        step(pid, "pending signals", signals::restore_queue(r, pid, tid as i32, q, false))?;
    }
    step(pid, "pending signals", signals::restore_queue(r, pid, pid, tc.signals_s.as_ref(), true))?;
    if let Some(d) = p.mm.dumpable {
        step(pid, "dumpable", r.prctl_ok(libc::PR_SET_DUMPABLE, &[d as u64]))?;
    }
    if let Some(sig) = th.pdeath_sig.filter(|&s| s != 0) {
        if c.opts.detached && is_root {
            tracing::warn!("pid {pid}: its parent-death signal {sig} is restored; its parent is now rcr, so it is sent when rcr restore -d exits");
        }
    }
    thread_attrs(r, c, pid, &th, core.thread_info.as_ref(), false)
}

/// The leader's last steps: the last call unmaps the trampoline (the task stops at its syscall exit,
/// never returning there), then its registers and signal mask are loaded.
pub fn finish_leader(remote: Remote<'_>, tracee: &Tracee, p: &ProcImages, tramp: u64) -> Result<()> {
    let pid = p.pid();
    let core = &p.cores[0];
    let tc = core.tc.as_ref().ok_or_else(|| Error::corrupt("core has no task core"))?;
    let th = core.thread_core.as_ref();
    step(pid, "unmap the trampoline", remote.last_syscall(libc::SYS_munmap, &[tramp, mm::TRAMP_LEN]))?;
    let ti = core.thread_info.as_ref().ok_or_else(|| Error::corrupt("core has no thread_info"))?;
    step(pid, "registers", cpu::restore(tracee, ti))?;
    step(pid, "signal mask", tracee.set_sigmask(th.and_then(|t| t.blk_sigset).unwrap_or(tc.blk_sigset)))?;
    Ok(())
}

/// Creates the threads of process `p` other than the leader (in the leader's `r`, while it still has the
/// privileges clone3(set_tid) needs) and builds each; returns them, ready to run.
pub fn restore_threads(r: &mut Remote<'_>, c: &RestoreCtx<'_>, p: &ProcImages, tramp: u64, guard: &ChildGuard) -> Result<Vec<Tracee>> {
    let mut threads = Vec::new();
    for (core, &tid) in p.cores.iter().zip(&p.pstree.threads).skip(1) {
        let t = step(tid as i32, "create thread", tree::remote_clone(r, tid as i32, true, 0, c.opts.step_timeout))?;
        guard.pids.borrow_mut().push(tid as i32);
        step(tid as i32, "thread", build_thread(&t, c, tramp, core))?;
        threads.push(t);
    }
    Ok(threads)
}

/// The per-thread attributes set in the thread itself, in an order that keeps the privileges each step
/// needs: sigaltstack, clear_child_tid, rseq, name, credentials, pdeath signal, no_new_privs, seccomp
/// (last: it applies to every later call). Scratch memory is released at the end.
/// What the kernel gives every new task anyway is not set again when the image asks for the same
/// (copy_process clears the robust list and the pdeath signal of every task, and the altstack of a
/// CLONE_VM thread); what it inherits from rcr is (a forked process's altstack, credentials that are
/// not rcr's own).
fn thread_attrs(r: &mut Remote<'_>, c: &RestoreCtx<'_>, tid: i32, th: &pb::ThreadCoreEntry, ti: Option<&pb::ThreadInfoX86>, fresh_thread: bool) -> Result<()> {
    step(tid, "sigaltstack", signals::restore_sas(r, th.sas.as_ref(), fresh_thread))?;
    if let Some(ti) = ti {
        step(tid, "clear_child_tid", r.set_tid_address(ti.clear_tid_addr))?;
    }
    // rcr's own rseq registration was dropped in the root before it created anything (make_trampoline);
    // children and threads start unregistered.
    step(tid, "rseq", restore_rseq(r, th.rseq_entry.as_ref()))?;
    if th.futex_rla != 0 {
        step(tid, "robust futex list", r.set_robust_list(th.futex_rla, th.futex_rla_len as u64))?;
    }
    if let Some(comm) = &th.comm {
        step(tid, "comm", r.set_name(comm))?;
    }
    if let Some(creds) = th.creds.as_ref().filter(|cr| !c.own.same_creds(cr)) {
        step(tid, "credentials", restore_creds(r, creds))?;
    }
    if let Some(sig) = th.pdeath_sig.filter(|&s| s != 0) {
        step(tid, "pdeath signal", r.prctl_ok(libc::PR_SET_PDEATHSIG, &[sig as u64]))?;
    }
    // CRIU's creds.no_new_privs; rcr's own field from before it had that.
    if th.creds.as_ref().and_then(|c| c.no_new_privs).is_some_and(|n| n != 0) || th.rcr_no_new_privs == Some(true) {
        step(tid, "no_new_privs", r.prctl_ok(libc::PR_SET_NO_NEW_PRIVS, &[1, 0, 0, 0]))?;
    }
    if let (Some(idx), Some(mode)) = (th.seccomp_filter, th.seccomp_mode) {
        if mode == pb::SeccompMode::Filter as i32 {
            step(tid, "seccomp", restore_seccomp(r, &c.img.seccomp, idx))?;
        }
    }
    step(tid, "release scratch memory", r.release_scratch())?;
    Ok(())
}

/// Builds a thread created in a restored process: its attributes, then its registers and mask.
fn build_thread(t: &Tracee, c: &RestoreCtx<'_>, tramp: u64, core: &pb::CoreEntry) -> Result<()> {
    let tid = t.tid();
    let th = core.thread_core.clone().unwrap_or_default();
    if let (Some(policy), Some(prio), Some(nice)) = (th.sched_policy, th.sched_prio, th.sched_nice) {
        restore_sched(tid, policy, prio, nice)?;
    }
    let mut r = Remote::at_site(t, tramp)?;
    thread_attrs(&mut r, c, tid, &th, core.thread_info.as_ref(), true)?;
    r.cure()?;
    let ti = core.thread_info.as_ref().ok_or_else(|| Error::corrupt(format!("thread {tid}: core has no thread_info")))?;
    cpu::restore(t, ti)?;
    t.set_sigmask(th.blk_sigset.unwrap_or(0))?;
    Ok(())
}
