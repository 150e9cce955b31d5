//! Per-task attributes that are not files or memory: credentials, rlimits, scheduling, personality,
//! itimers, rseq, seccomp filters and the prctl settings (pdeath signal, dumpable, no_new_privs,
//! securebits, THP). Each has its dump (read from /proc, ptrace or remote calls) and its restore (set
//! in the new task) here, side by side.

use crate::compel::{Itimerval, Remote, Timeval, Tracee};
use crate::image::pb;
use crate::proc::Status;
use crate::{sys, Error, Result};

fn caps_words(v: u64) -> Vec<u32> {
    vec![v as u32, (v >> 32) as u32]
}
fn caps_u64(w: &[u32]) -> u64 {
    w.first().copied().unwrap_or(0) as u64 | (w.get(1).copied().unwrap_or(0) as u64) << 32
}

/// Credentials from /proc/PID/status plus the securebits read in the task.
pub fn dump_creds(st: &Status, secbits: u32) -> pb::CredsEntry {
    pb::CredsEntry {
        uid: st.uid[0], euid: st.uid[1], suid: st.uid[2], fsuid: st.uid[3],
        gid: st.gid[0], egid: st.gid[1], sgid: st.gid[2], fsgid: st.gid[3],
        cap_inh: caps_words(st.cap_inh),
        cap_prm: caps_words(st.cap_prm),
        cap_eff: caps_words(st.cap_eff),
        cap_bnd: caps_words(st.cap_bnd),
        secbits,
        groups: st.groups.clone(),
        ..Default::default()
    }
}

const SECBIT_KEEP_CAPS: u64 = 1 << 4;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_LAST: u64 = 40;

/// Sets the credentials in the new task, in the order that keeps the privileges needed for the next
/// step (as CRIU's restorer): groups, gids, keep-caps, uids, capabilities, bounding set, securebits.
pub fn restore_creds(remote: &mut Remote<'_>, c: &pb::CredsEntry) -> Result<()> {
    let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    let gaddr = if groups.is_empty() { 0 } else { remote.scratch_put(&groups)? };
    remote.syscall_ok(libc::SYS_setgroups, &[c.groups.len() as u64, gaddr]).map_err(ctx("setgroups"))?;
    remote.syscall_ok(libc::SYS_setresgid, &[c.gid as u64, c.egid as u64, c.sgid as u64]).map_err(ctx("setresgid"))?;
    remote.syscall(libc::SYS_setfsgid, &[c.fsgid as u64])?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, c.secbits as u64 | SECBIT_KEEP_CAPS])
        .map_err(ctx("prctl(PR_SET_SECUREBITS)"))?;
    remote.syscall_ok(libc::SYS_setresuid, &[c.uid as u64, c.euid as u64, c.suid as u64]).map_err(ctx("setresuid"))?;
    remote.syscall(libc::SYS_setfsuid, &[c.fsuid as u64])?;
    let bnd = caps_u64(&c.cap_bnd);
    for cap in 0..=CAP_LAST {
        if bnd & (1 << cap) == 0 {
            let r = remote.syscall(libc::SYS_prctl, &[libc::PR_CAPBSET_DROP as u64, cap])?;
            if r < 0 && r != -(libc::EINVAL as i64) {
                return Err(Error::Msg(format!("dropping capability {cap} from the bounding set failed: errno {}", -r)));
            }
        }
    }
    let (eff, prm, inh) = (caps_u64(&c.cap_eff), caps_u64(&c.cap_prm), caps_u64(&c.cap_inh));
    let mut data = Vec::with_capacity(8 + 24);
    data.extend_from_slice(&LINUX_CAPABILITY_VERSION_3.to_le_bytes());
    data.extend_from_slice(&0u32.to_le_bytes());
    for w in 0..2 {
        for v in [eff, prm, inh] {
            data.extend_from_slice(&((v >> (32 * w)) as u32).to_le_bytes());
        }
    }
    let addr = remote.scratch_put(&data)?;
    remote.syscall_ok(libc::SYS_capset, &[addr, addr + 8]).map_err(ctx("capset"))?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, c.secbits as u64]).map_err(ctx("prctl(PR_SET_SECUREBITS)"))?;
    Ok(())
}

fn ctx<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Msg(format!("restoring credentials: {what}: {e}"))
}

/// Every rlimit of the task, read by the task itself: prlimit from outside on a process of another
/// user needs CAP_SYS_RESOURCE, which rcr may not have.
pub fn dump_rlimits(remote: &mut Remote<'_>) -> Result<pb::TaskRlimitsEntry> {
    let mut rlimits = Vec::new();
    let out = remote.scratch_put(&[0u8; 16])?;
    for res in 0..RLIMIT_NAMES.len() as u64 {
        remote.syscall_ok(libc::SYS_prlimit64, &[0, res, 0, out])?;
        let mut b = [0u8; 16];
        remote.scratch_get(out, &mut b)?;
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        rlimits.push(pb::RlimitEntry { cur: word(0), max: word(8) });
    }
    Ok(pb::TaskRlimitsEntry { rlimits })
}

const RLIMIT_NAMES: [&str; 16] = [
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
                return Err(Error::Msg(format!(
                    "pid {pid}: cannot restore {name} hard limit {} (rcr's is {have_max}): raising a hard limit needs \
                     CAP_SYS_RESOURCE, which rcr does not have here; raise rcr's own hard limit first (ulimit -H) \
                     or run rcr with CAP_SYS_RESOURCE ({e})",
                    l.max
                )));
            }
            return Err(Error::Msg(format!("pid {pid}: cannot restore {name} = {}/{}: {e}", l.cur, l.max)));
        }
    }
    Ok(())
}

/// The thread's robust futex list head and length (get_robust_list works from outside on a task rcr
/// may ptrace).
pub fn robust_list(tid: i32) -> Result<(u64, u32)> {
    let mut head: u64 = 0;
    let mut len: usize = 0;
    // SAFETY: get_robust_list writes one pointer and one size_t into the two valid locations given.
    let r = unsafe { libc::syscall(libc::SYS_get_robust_list, tid, &mut head as *mut u64, &mut len as *mut usize) };
    if r < 0 {
        return Err(Error::Io { ctx: format!("get_robust_list of thread {tid}"), source: std::io::Error::last_os_error() });
    }
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
    sys::sched_setattr(nix::unistd::Pid::from_raw(pid), &a).map_err(|e| Error::Msg(format!("pid {pid}: restoring scheduling policy {policy} (prio {prio}, nice {nice}): {e}")))?;
    // sched_setattr ignores the nice value for SCHED_IDLE; setpriority sets it for every policy.
    // SAFETY: setpriority takes integers only.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as u32, nice) } < 0 {
        return Err(Error::Io { ctx: format!("pid {pid}: restoring nice {nice}"), source: std::io::Error::last_os_error() });
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
        .syscall_ok(libc::SYS_rseq, &[r.rseq_abi_pointer, r.rseq_abi_size as u64, 0, r.signature as u64])
        .map_err(|e| Error::Msg(format!("registering rseq at {:#x} again: {e}", r.rseq_abi_pointer)))?;
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
    let pdeath = remote.scratch_put(&[0u8; 8])?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_PDEATHSIG as u64, pdeath])?;
    let mut w = [0u8; 8];
    remote.scratch_get(pdeath, &mut w)?;
    let pdeath_sig = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    let dumpable = remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_DUMPABLE as u64])? as i32;
    let secbits = remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_SECUREBITS as u64])? as u32;
    let thp_disabled = remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_THP_DISABLE as u64])? != 0;
    let sub = remote.scratch_put(&[0u8; 8])?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_CHILD_SUBREAPER as u64, sub])?;
    remote.scratch_get(sub, &mut w)?;
    let child_subreaper = w[..4] != [0, 0, 0, 0];
    let tid = remote.scratch_put(&[0u8; 8])?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_TID_ADDRESS as u64, tid])?;
    remote.scratch_get(tid, &mut w)?;
    Ok(Prctls { pdeath_sig, dumpable, secbits, thp_disabled, child_subreaper, clear_tid_addr: u64::from_le_bytes(w) })
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
        let f = all.get((i as usize).wrapping_sub(1)).ok_or_else(|| Error::Msg(format!("seccomp.img has no filter {i}")))?;
        chain.push(f);
        at = f.prev;
        if chain.len() > all.len() {
            return Err(Error::Msg("seccomp.img: filter chain loops".into()));
        }
    }
    for f in chain.iter().rev() {
        if f.filter.len() % 8 != 0 {
            return Err(Error::Msg(format!("seccomp.img: a filter of {} bytes is not whole BPF instructions", f.filter.len())));
        }
        let insns = remote.scratch_put(&f.filter)?;
        let mut prog = Vec::new();
        prog.extend_from_slice(&((f.filter.len() / 8) as u16).to_le_bytes());
        prog.extend_from_slice(&[0u8; 6]);
        prog.extend_from_slice(&insns.to_le_bytes());
        let paddr = remote.scratch_put(&prog)?;
        let flags = f.flags.unwrap_or(0) as u64;
        remote
            .syscall_ok(libc::SYS_seccomp, &[1 /* SECCOMP_SET_MODE_FILTER */, flags, paddr])
            .map_err(|e| Error::Msg(format!("installing a seccomp filter again: {e}")))?;
    }
    Ok(())
}
