//! Credentials: dump (from /proc status) and restore (in the new task, in the order the kernel needs),
//! and what rcr itself may give back ([`OwnPrivileges`]), checked at dump and at restore before anything
//! is touched.

use super::task::RLIMIT_NAMES;
use crate::compel::Remote;
use crate::image::pb;
use crate::proc::Status;
use crate::{sys, Context, Error, Result};

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
const CAP_LAST: u64 = 40;
const CAP_SETPCAP: u64 = 8;
const CAP_SYS_RESOURCE: u64 = 24;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;

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
    remote.setgroups(&c.groups).map_err(ctx("setgroups"))?;
    remote.setresgid(c.gid, c.egid, c.sgid).map_err(ctx("setresgid"))?;
    remote.setfsgid(c.fsgid)?;
    let bnd = caps_u64(&c.cap_bnd);
    for cap in (0..=CAP_LAST).filter(|cap| bnd & (1 << cap) == 0) {
        let has = remote.prctl(libc::PR_CAPBSET_READ, &[cap])?;
        if has != 1 {
            continue; // absent already, or beyond this kernel's last capability (EINVAL)
        }
        let r = remote.prctl(libc::PR_CAPBSET_DROP, &[cap])?;
        if r < 0 {
            return Err(Error::remote(format!("restoring credentials: dropping capability {cap} from the bounding set"), r));
        }
    }
    remote.prctl_ok(libc::PR_SET_SECUREBITS, &[SECBIT_KEEP_CAPS]).map_err(ctx("prctl(PR_SET_SECUREBITS, KEEP_CAPS)"))?;
    remote.setresuid(c.uid, c.euid, c.suid).map_err(ctx("setresuid"))?;
    remote.setfsuid(c.fsuid)?;
    let (eff, prm, inh, amb) = (caps_u64(&c.cap_eff), caps_u64(&c.cap_prm), caps_u64(&c.cap_inh), caps_u64(&c.cap_amb));
    let (_, have_prm, _) = remote.capget().map_err(ctx("capget"))?;
    remote.capset(have_prm, have_prm, inh).map_err(ctx("capset (inheritable set)"))?;
    for cap in (0..=CAP_LAST).filter(|cap| amb & (1 << cap) != 0) {
        remote
            .prctl_ok(PR_CAP_AMBIENT, &[PR_CAP_AMBIENT_RAISE, cap, 0, 0])
            .at(|| format!("restoring credentials: raising ambient capability {cap}"))?;
    }
    if have_prm & (1 << CAP_SETPCAP) == 0 {
        return Err(Error::privilege("restoring credentials: rcr has no CAP_SETPCAP to set the securebits"));
    }
    remote.prctl_ok(libc::PR_SET_SECUREBITS, &[c.secbits as u64]).map_err(ctx("prctl(PR_SET_SECUREBITS)"))?;
    remote.capset(eff, prm, inh).map_err(ctx("capset"))?;
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
            return Err(Error::privilege(format!(
                "{who} holds capabilities rcr itself does not have ({}): a restore could not give them back; \
                 run rcr with them (it has {:#x})",
                cap_names(missing),
                self.cap_prm()
            )));
        }
        let bnd_missing = bnd & !caps_u64(&self.creds.cap_bnd) & ((1u64 << (CAP_LAST + 1)) - 1);
        if bnd_missing != 0 {
            return Err(Error::privilege(format!(
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
                return Err(Error::privilege(format!(
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
                return Err(Error::not_supported(format!(
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

fn ctx<E: Into<Error>>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| e.into().at(format!("restoring credentials: {what}"))
}

