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
        cap_amb: caps_words(st.cap_amb),
        secbits,
        groups: st.groups.clone(),
        no_new_privs: Some(st.no_new_privs as u32),
        ..Default::default()
    }
}

const SECBIT_KEEP_CAPS: u64 = 1 << 4;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_LAST: u64 = 40;
const CAP_SETPCAP: u64 = 8;
const CAP_SYS_RESOURCE: u64 = 24;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;

/// capset(2) in the task: effective, permitted, inheritable.
fn capset(remote: &mut Remote<'_>, eff: u64, prm: u64, inh: u64) -> Result<()> {
    let mut data = Vec::with_capacity(8 + 24);
    data.extend_from_slice(&LINUX_CAPABILITY_VERSION_3.to_le_bytes());
    data.extend_from_slice(&0u32.to_le_bytes());
    for w in 0..2 {
        for v in [eff, prm, inh] {
            data.extend_from_slice(&((v >> (32 * w)) as u32).to_le_bytes());
        }
    }
    let addr = remote.scratch_put(&data)?;
    remote.syscall_ok(libc::SYS_capset, &[addr, addr + 8])?;
    Ok(())
}

/// capget(2) in the task: (effective, permitted, inheritable).
fn capget(remote: &mut Remote<'_>) -> Result<(u64, u64, u64)> {
    let mut hdr = Vec::with_capacity(8 + 24);
    hdr.extend_from_slice(&LINUX_CAPABILITY_VERSION_3.to_le_bytes());
    hdr.extend_from_slice(&[0u8; 4 + 24]);
    let addr = remote.scratch_put(&hdr)?;
    remote.syscall_ok(libc::SYS_capget, &[addr, addr + 8])?;
    let mut d = [0u8; 24];
    remote.scratch_get(addr + 8, &mut d)?;
    let w = |i: usize| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]) as u64;
    Ok((w(0) | w(3) << 32, w(1) | w(4) << 32, w(2) | w(5) << 32))
}

/// Sets the credentials in the new task (a copy of rcr, fully privileged), in the order the kernel
/// requires: each step needs a privilege that a later one gives up.
/// 1. groups and gids (CAP_SETGID);
/// 2. the bounding set: drop what the image lacks and the task still has (CAP_SETPCAP); a capability
///    already absent (CAP_SYS_RESOURCE in most containers) is left alone;
/// 3. SECBIT_KEEP_CAPS, so that switching uids keeps the permitted set;
/// 4. uids (CAP_SETUID): the effective set is cleared when they leave 0;
/// 5. the effective set raised to the permitted one again, with the image's inheritable set, for
///    ambient capabilities (raised only if in permitted and inheritable) and the securebits (CAP_SETPCAP);
/// 6. ambient capabilities, 7. the image's securebits (their locks too), 8. the image's capability sets.
pub fn restore_creds(remote: &mut Remote<'_>, c: &pb::CredsEntry) -> Result<()> {
    let groups: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    let gaddr = if groups.is_empty() { 0 } else { remote.scratch_put(&groups)? };
    remote.syscall_ok(libc::SYS_setgroups, &[c.groups.len() as u64, gaddr]).map_err(ctx("setgroups"))?;
    remote.syscall_ok(libc::SYS_setresgid, &[c.gid as u64, c.egid as u64, c.sgid as u64]).map_err(ctx("setresgid"))?;
    remote.syscall(libc::SYS_setfsgid, &[c.fsgid as u64])?;
    let bnd = caps_u64(&c.cap_bnd);
    for cap in (0..=CAP_LAST).filter(|cap| bnd & (1 << cap) == 0) {
        let has = remote.syscall(libc::SYS_prctl, &[libc::PR_CAPBSET_READ as u64, cap])?;
        if has != 1 {
            continue; // absent already, or beyond this kernel's last capability (EINVAL)
        }
        let r = remote.syscall(libc::SYS_prctl, &[libc::PR_CAPBSET_DROP as u64, cap])?;
        if r < 0 {
            return Err(Error::Msg(format!("restoring credentials: dropping capability {cap} from the bounding set failed: {}", crate::kinds::mem::errno_str(r))));
        }
    }
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, SECBIT_KEEP_CAPS]).map_err(ctx("prctl(PR_SET_SECUREBITS, KEEP_CAPS)"))?;
    remote.syscall_ok(libc::SYS_setresuid, &[c.uid as u64, c.euid as u64, c.suid as u64]).map_err(ctx("setresuid"))?;
    remote.syscall(libc::SYS_setfsuid, &[c.fsuid as u64])?;
    let (eff, prm, inh, amb) = (caps_u64(&c.cap_eff), caps_u64(&c.cap_prm), caps_u64(&c.cap_inh), caps_u64(&c.cap_amb));
    let (_, have_prm, _) = capget(remote).map_err(ctx("capget"))?;
    capset(remote, have_prm, have_prm, inh).map_err(ctx("capset (inheritable set)"))?;
    for cap in (0..=CAP_LAST).filter(|cap| amb & (1 << cap) != 0) {
        remote
            .syscall_ok(libc::SYS_prctl, &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0])
            .map_err(|e| Error::Msg(format!("restoring credentials: raising ambient capability {cap}: {e}")))?;
    }
    if have_prm & (1 << CAP_SETPCAP) == 0 {
        return Err(Error::Msg("restoring credentials: rcr has no CAP_SETPCAP to set the securebits".into()));
    }
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_SECUREBITS as u64, c.secbits as u64]).map_err(ctx("prctl(PR_SET_SECUREBITS)"))?;
    capset(remote, eff, prm, inh).map_err(ctx("capset"))?;
    Ok(())
}

/// What rcr itself may give a restored task on this machine: its own capabilities and hard rlimits,
/// and the namespaces it runs in. A dump checks every task against it before anything is killed, so
/// that a checkpoint this rcr could not restore never costs the application.
#[derive(Debug, Clone, Default)]
pub struct OwnPrivileges {
    pub rlimit_max: Vec<u64>,
    /// (name, inode) of rcr's namespaces that restore does not create.
    pub namespaces: Vec<(&'static str, u64)>,
    /// rcr's own credentials, which every task it creates starts with: an image with the same needs
    /// no credential call at restore.
    pub creds: pb::CredsEntry,
}

/// Namespaces rcr restores into its own (it creates none of these yet): a task in another one would
/// come back in rcr's, silently different. (The time namespace is handled by [`crate::kinds::timens`].)
pub const UNHANDLED_NAMESPACES: [&str; 7] = ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup"];

/// The inode of /proc/PID/ns/NAME (rcr's own for "self").
pub fn ns_inode(proc_pid: &str, name: &str) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{proc_pid}/ns/{name}");
    std::fs::metadata(&path).map(|m| m.ino()).map_err(|e| Error::Io { ctx: format!("reading {path}"), source: e })
}

impl OwnPrivileges {
    /// rcr's own, read from /proc/self and getrlimit.
    pub fn read() -> Result<OwnPrivileges> {
        let st = crate::proc::ProcDir::open(std::process::id() as i32)?.status()?;
        let mut rlimit_max = Vec::with_capacity(RLIMIT_NAMES.len());
        for res in 0..RLIMIT_NAMES.len() as u32 {
            rlimit_max.push(sys::prlimit_get(nix::unistd::Pid::from_raw(0), res).map(|(_, max)| max).unwrap_or(u64::MAX));
        }
        let mut namespaces = Vec::new();
        for name in UNHANDLED_NAMESPACES {
            namespaces.push((name, ns_inode("self", name)?));
        }
        let secbits = sys::prctl_get_securebits()?;
        Ok(OwnPrivileges {
            creds: dump_creds(&st, secbits),
            rlimit_max,
            namespaces,
        })
    }

    fn cap_prm(&self) -> u64 {
        caps_u64(&self.creds.cap_prm)
    }

    /// CAP_SYS_RESOURCE in rcr's effective set: hard rlimits can be raised.
    fn sys_resource(&self) -> bool {
        caps_u64(&self.creds.cap_eff) & (1 << CAP_SYS_RESOURCE) != 0
    }

    /// Whether credentials `c` are rcr's own (no_new_privs aside, which is set on its own): a task
    /// created by rcr has them already.
    pub fn same_creds(&self, c: &pb::CredsEntry) -> bool {
        let own = &self.creds;
        let words = |v: &[u32]| caps_u64(v);
        (c.uid, c.euid, c.suid, c.fsuid, c.gid, c.egid, c.sgid, c.fsgid) == (own.uid, own.euid, own.suid, own.fsuid, own.gid, own.egid, own.sgid, own.fsgid)
            && c.groups == own.groups
            && c.secbits == own.secbits
            && [words(&c.cap_inh), words(&c.cap_prm), words(&c.cap_eff), words(&c.cap_bnd), words(&c.cap_amb)]
                == [words(&own.cap_inh), words(&own.cap_prm), words(&own.cap_eff), words(&own.cap_bnd), words(&own.cap_amb)]
    }

    /// Fails when rcr could not give thread `tid` of `pid` its credentials back.
    pub fn check_creds(&self, pid: i32, tid: i32, st: &Status) -> Result<()> {
        self.check_caps(pid, tid, st.cap_prm | st.cap_eff | st.cap_inh | st.cap_amb, st.cap_bnd)
    }

    /// The same for the credentials of an image.
    pub fn check_image_creds(&self, pid: i32, tid: i32, c: &pb::CredsEntry) -> Result<()> {
        let held = caps_u64(&c.cap_prm) | caps_u64(&c.cap_eff) | caps_u64(&c.cap_inh) | caps_u64(&c.cap_amb);
        self.check_caps(pid, tid, held, caps_u64(&c.cap_bnd))
    }

    fn check_caps(&self, pid: i32, tid: i32, held: u64, bnd: u64) -> Result<()> {
        let who = if pid == tid { format!("pid {pid}") } else { format!("pid {pid} (thread {tid})") };
        let missing = held & !self.cap_prm();
        if missing != 0 {
            return Err(Error::Msg(format!(
                "{who} holds capabilities rcr itself does not have ({}): a restore could not give them back; \
                 run rcr with them (it has {:#x})",
                cap_names(missing),
                self.cap_prm()
            )));
        }
        let bnd_missing = bnd & !caps_u64(&self.creds.cap_bnd) & ((1u64 << (CAP_LAST + 1)) - 1);
        if bnd_missing != 0 {
            return Err(Error::Msg(format!(
                "{who} has capabilities in its bounding set that rcr's lacks ({}): a restore could not add them back; \
                 run rcr with a bounding set that has them",
                cap_names(bnd_missing)
            )));
        }
        Ok(())
    }

    /// Fails when rcr could not restore a hard rlimit of `pid`: raising one above rcr's own needs
    /// CAP_SYS_RESOURCE.
    pub fn check_rlimits(&self, pid: i32, r: &pb::TaskRlimitsEntry) -> Result<()> {
        if self.sys_resource() {
            return Ok(());
        }
        for (res, l) in r.rlimits.iter().enumerate() {
            let own = self.rlimit_max.get(res).copied().unwrap_or(u64::MAX);
            if l.max > own {
                return Err(Error::Msg(format!(
                    "pid {pid}: its {} hard limit {} is above rcr's own ({}) and rcr lacks CAP_SYS_RESOURCE, so a \
                     restore could not set it; raise rcr's hard limit (ulimit -H) or give rcr CAP_SYS_RESOURCE",
                    RLIMIT_NAMES.get(res).copied().unwrap_or("rlimit"),
                    limit_str(l.max),
                    limit_str(own)
                )));
            }
        }
        Ok(())
    }

    /// Fails when `pid` lives in a namespace rcr does not restore (one it does not share with rcr).
    pub fn check_namespaces(&self, pid: i32) -> Result<()> {
        for &(name, own) in &self.namespaces {
            let theirs = ns_inode(&pid.to_string(), name)?;
            if theirs != own {
                return Err(Error::Msg(format!(
                    "pid {pid} is in another {name} namespace than rcr ({name}:[{theirs}], rcr's is {name}:[{own}]); \
                     rcr does not checkpoint namespaces yet: run rcr inside the process's namespaces \
                     (nsenter -t {pid} -a rcr dump ...)"
                )));
            }
        }
        Ok(())
    }
}

fn limit_str(v: u64) -> String {
    if v == u64::MAX { "unlimited".into() } else { v.to_string() }
}

const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// "CAP_SYS_RESOURCE, CAP_BPF" for a capability mask.
pub fn cap_names(mask: u64) -> String {
    (0..64u32)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| CAP_NAMES.get(b as usize).map_or_else(|| format!("capability {b}"), |n| n.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
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
    sys::sched_setattr(nix::unistd::Pid::from_raw(pid), &a).map_err(|e| Error::Msg(format!("pid {pid}: restoring scheduling policy {policy} (prio {prio}, nice {nice}): {e}")))?;
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
