//! `rcr check`: probes the kernel features rcr relies on, criu-check style. Feature names
//! follow `criu check --feature NAME` where criu has the same feature.
//!
//! Every probe is real (it makes the call), uses only short-lived children that are
//! SIGKILLed and reaped by PID with a bounded wait, and on failure says what rcr then
//! cannot do.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::sys::memfd::MemFdCreateFlag;
use nix::unistd::Pid;

use crate::proc::ProcDir;
use crate::Error;
use crate::sys::{self, page_is, Errno};

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureReport {
    pub name: &'static str,
    /// Dump or restore cannot work without it (criu's basic checks); the others are optional (criu's
    /// `--extra` and `--experimental`).
    pub needed: bool,
    pub ok: bool,
    /// What was found; when not ok, also what rcr cannot do without it.
    pub detail: String,
}

/// Errors of `rcr check` itself (a failing probe is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("unknown feature {name:?}; known features: {known}")]
    Unknown { name: String, known: String },
}

/// What a dump or a restore needs of the kernel, probed once when it starts (cheap calls on rcr itself,
/// no child) and consulted by the stages: a missing optional feature selects its fallback, a missing
/// required one fails the command before anything is frozen or started, naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// PAGEMAP_SCAN (Linux 6.7): without it pages are found through the classic pagemap entries.
    pub pagemap_scan: bool,
    /// MADV_POPULATE_WRITE (Linux 5.14): without it a restored task's pages are faulted in one by one
    /// while they are read in, instead of allocated in bulk first.
    pub madv_populate_write: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features { pagemap_scan: true, madv_populate_write: true }
    }
}

/// The error of a required feature this kernel lacks.
fn missing(name: &'static str, needed_for: &'static str, e: impl Into<Error>, untouched: &'static str) -> Error {
    Error::MissingFeature { name, needed_for, untouched, source: Box::new(e.into()) }
}

impl Features {
    /// Probes what [`crate::dump::dump`] relies on. Errors name the missing feature and what it is for.
    pub fn probe_for_dump() -> crate::Result<Features> {
        let me = nix::unistd::Pid::this();
        let missing = |name, what, e: sys::SysError| missing(name, what, e, "nothing was touched");
        let pidfd = sys::pidfd_open(me, 0).map_err(|e| missing("pidfd_getfd", "copy the target's files", e))?;
        // The pidfd itself is an fd of rcr that is surely open.
        sys::pidfd_getfd(pidfd.as_fd(), pidfd.as_raw_fd()).map_err(|e| missing("pidfd_getfd", "copy the target's files", e))?;
        let mut word = [0u8; 8];
        let probe = 0x5a5a_5a5a_u64.to_ne_bytes();
        sys::read_remote(me, probe.as_ptr() as u64, &mut word).map_err(|e| missing("process_vm_readv", "read the target's memory", e))?;
        let pagemap_scan = probe_pagemap_scan().is_ok();
        if !pagemap_scan {
            tracing::info!("PAGEMAP_SCAN is missing: the pages of the dump are found through the classic pagemap");
        }
        Ok(Features { pagemap_scan, ..Default::default() })
    }

    /// Probes what [`crate::restore::restore`] relies on, before anything is started.
    pub fn probe_for_restore() -> crate::Result<Features> {
        let missing = |name, what, e: sys::SysError| missing(name, what, e, "nothing was started");
        sys::clone3_set_tid_probe().map_err(|e| missing("clone3_set_tid", "create the processes at their original PIDs", e))?;
        // PR_SET_MM_MAP comes with CONFIG_CHECKPOINT_RESTORE (`rcr check` lists it under userns).
        sys::prctl_mm_map_size().map_err(|e| missing("userns", "set a restored task's memory layout (PR_SET_MM_MAP)", e))?;
        sys::close_range_probe().map_err(|e| missing("close_range", "close the files a restored task inherited from rcr", e))?;
        let madv_populate_write = sys::madv_populate_write_probe().is_ok();
        if !madv_populate_write {
            tracing::info!("MADV_POPULATE_WRITE is missing: restored pages are faulted in as they are read");
        }
        Ok(Features { madv_populate_write, ..Default::default() })
    }
}

type Probe = fn() -> crate::Result<String>;

/// The features dump and restore cannot do without; `rcr check` checks these unless asked for all.
const NEEDED: &[&str] = &["map_files", "ptrace_seize", "pidfd_getfd", "clone3_set_tid", "process_vm_readv", "kcmp", "userns"];

/// (name, probe, consequence when missing).
const FEATURES: &[(&str, Probe, &str)] = &[
    ("map_files", probe_map_files, "file-backed mappings of deleted files cannot be dumped"),
    ("ptrace_seize", probe_ptrace_seize, "processes cannot be frozen and dumped at all"),
    ("pidfd_getfd", probe_pidfd_getfd, "fds cannot be stolen from the target; file dumping falls back to parasite fd passing"),
    ("clone3_set_tid", probe_clone3_set_tid, "restore cannot recreate processes at their original PIDs"),
    ("process_vm_readv", probe_process_vm_readv, "memory must be read through a parasite instead of process_vm_readv"),
    ("pagemap_scan", probe_pagemap_scan, "page presence comes from the slower classic pagemap reader; no write tracking for pre-dumps"),
    ("uffd", probe_uffd, "lazy restore (--lazy-pages) is unavailable"),
    ("uffd-noncoop", probe_uffd_noncoop, "lazy restore of processes that fork or remap memory is unavailable"),
    ("uffd-wp", probe_uffd_wp, "incremental (pre-dump) memory tracking via uffd write-protect is unavailable"),
    ("get_rseq_conf", probe_rseq, "tasks inside an rseq critical section cannot be dumped consistently"),
    ("timens", probe_timens, "time namespaces (and their clock offsets) cannot be dumped/restored"),
    ("seccomp_filters", probe_seccomp_filters, "processes with seccomp filters cannot be dumped"),
    ("memfd", probe_memfd, "memfd files cannot be restored"),
    ("mem_dirty_track", probe_mem_dirty_track, "pre-dumps cannot use soft-dirty tracking"),
    ("cap_sys_resource", probe_cap_sys_resource, "raising a hard rlimit above rcr's own and prlimit on another user's process fail with EPERM (rcr reads a task's rlimits from inside it and says which limit it cannot restore); the single PR_SET_MM_* calls fail too (rcr uses PR_SET_MM_MAP, which does not need it)"),
    ("kcmp", probe_kcmp, "shared file descriptions and shared fs/files/sighand between tasks cannot be detected"),
    ("mnt_id", probe_mnt_id, "files cannot be attributed to their mounts"),
    ("cgroupns", probe_cgroupns, "cgroup namespaces cannot be dumped"),
    ("userns", probe_userns, "restore cannot set the mm layout (PR_SET_MM_MAP) or handle user namespaces"),
];

/// Names accepted by [`check_feature`] besides [`feature_names`], mapped to the real one.
const ALIASES: &[(&str, &str)] = &[("rseq", "get_rseq_conf"), ("uffd_wp", "uffd-wp")];

/// All feature names, in check order.
pub fn feature_names() -> &'static [&'static str] {
    const NAMES: [&str; FEATURES.len()] = {
        let mut out = [""; FEATURES.len()];
        let mut i = 0;
        while i < FEATURES.len() {
            out[i] = FEATURES[i].0;
            i += 1;
        }
        out
    };
    &NAMES
}

fn run(entry: &(&'static str, Probe, &'static str)) -> FeatureReport {
    let (name, probe, missing) = *entry;
    match probe() {
        Ok(detail) => FeatureReport {
            name,
            needed: NEEDED.contains(&name),
            ok: true,
            detail,
        },
        Err(why) => FeatureReport {
            name,
            needed: NEEDED.contains(&name),
            ok: false,
            detail: format!("{why}; so {missing}"),
        },
    }
}

/// Runs the probes of the needed features, and with `all` of the optional ones too.
pub fn check_all(all: bool) -> Vec<FeatureReport> {
    FEATURES.iter().filter(|f| all || NEEDED.contains(&f.0)).map(run).collect()
}

/// Runs one probe by name.
pub fn check_feature(name: &str) -> crate::Result<FeatureReport> {
    let real = ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map_or(name, |(_, r)| *r);
    FEATURES
        .iter()
        .find(|f| f.0 == real)
        .map(run)
        .ok_or_else(|| {
            CheckError::Unknown {
                name: name.to_string(),
                known: feature_names().join(", "),
            }
            .into()
        })
}

/// A probe's finding that the feature is missing or does not work.
fn kernel(what: impl Into<String>) -> Error {
    Error::Kernel(what.into())
}

const REAP: Duration = Duration::from_secs(5);

/// Runs `f` on an idle child, then kills and reaps it.
fn with_child(f: impl FnOnce(Pid) -> crate::Result<String>) -> crate::Result<String> {
    let pid = sys::spawn_idle_child()?;
    let r = f(pid);
    let reaped = sys::kill_and_reap(pid, REAP);
    let r = r?;
    reaped?;
    Ok(r)
}

fn self_dir() -> crate::Result<ProcDir> {
    Ok(ProcDir::open_self()?)
}

fn probe_map_files() -> crate::Result<String> {
    let me = self_dir()?;
    let maps = me.maps()?;
    let vma = maps
        .iter()
        .find(|v| v.is_file())
        .ok_or_else(|| kernel("no file mapping in /proc/self/maps"))?;
    me.map_files_open(vma.start, vma.end, nix::fcntl::OFlag::O_RDONLY)?;
    Ok(format!("opened map_files/{:x}-{:x}", vma.start, vma.end))
}

fn probe_ptrace_seize() -> crate::Result<String> {
    with_child(|pid| {
        nix::sys::ptrace::seize(pid, nix::sys::ptrace::Options::empty())
            .map_err(|e| Error::Io { ctx: format!("PTRACE_SEIZE of child {pid}"), source: e.into() })?;
        // Killing a tracee detaches it; the caller reaps it.
        Ok(format!("seized child {pid}"))
    })
}

fn probe_pidfd_getfd() -> crate::Result<String> {
    with_child(|pid| {
        let pidfd = sys::pidfd_open(pid, 0)?;
        sys::pidfd_getfd(pidfd.as_fd(), 0)?;
        Ok(format!("pidfd_open + pidfd_getfd of fd 0 of child {pid}"))
    })
}

fn read_sys_num(path: &str) -> crate::Result<i32> {
    let t = std::fs::read_to_string(path).map_err(|e| Error::Io { ctx: format!("read {path}"), source: e })?;
    t.trim().parse().map_err(|e| kernel(format!("{path}: {e}")))
}

fn probe_clone3_set_tid() -> crate::Result<String> {
    let last = read_sys_num("/proc/sys/kernel/ns_last_pid")?;
    let max = read_sys_num("/proc/sys/kernel/pid_max")?;
    let mut last_err = kernel("no free PID found");
    for k in 0..32 {
        let want = (last + 300 + k * 37) % max;
        if want < 300 || std::path::Path::new(&format!("/proc/{want}")).exists() {
            continue;
        }
        match sys::spawn_exiting_child_at(&[want]) {
            Ok(pid) => {
                sys::wait_timeout(pid, REAP)?;
                if pid.as_raw() != want {
                    return Err(kernel(format!("asked for PID {want}, got {pid}")));
                }
                return Ok(format!("child created at chosen PID {want}"));
            }
            Err(e) if e.errno() == Some(Errno::EEXIST) => last_err = e.into(),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_err)
}

static VM_PROBE: [u8; 8] = *b"rcrprobe";

fn probe_process_vm_readv() -> crate::Result<String> {
    with_child(|pid| {
        // The forked child has the same static at the same address.
        let mut buf = [0u8; 8];
        let n =
            sys::read_remote(pid, VM_PROBE.as_ptr() as u64, &mut buf)?;
        if n != 8 || buf != VM_PROBE {
            return Err(kernel(format!(
                "read {n} bytes {buf:?} from child {pid}, expected {VM_PROBE:?}"
            )));
        }
        Ok(format!("read 8 bytes from child {pid}"))
    })
}

fn probe_pagemap_scan() -> crate::Result<String> {
    let ps = sys::page_size() as usize;
    let buf = vec![1u8; ps * 8];
    let start = (buf.as_ptr() as u64).next_multiple_of(ps as u64);
    let end = start + ps as u64 * 4;
    let pm = self_dir()?
        .openat("pagemap", nix::fcntl::OFlag::O_RDONLY)?;
    let scan = sys::PagemapScan {
        category_mask: page_is::PRESENT,
        return_mask: page_is::PRESENT,
        ..Default::default()
    };
    let regions =
        sys::pagemap_scan_all(pm.as_fd(), start, end, &scan, 16)?;
    drop(buf);
    match regions.as_slice() {
        [r] if r.start == start && r.end == end => {
            Ok("PAGEMAP_SCAN found touched pages present".into())
        }
        other => Err(kernel(format!(
            "PAGEMAP_SCAN returned unexpected regions {other:?}"
        ))),
    }
}

fn uffd_features() -> crate::Result<u64> {
    let fd = sys::userfaultfd(libc::O_CLOEXEC | libc::O_NONBLOCK)?;
    Ok(sys::uffdio_api(fd.as_fd(), 0)?
        .features)
}

fn probe_uffd() -> crate::Result<String> {
    Ok(format!("userfaultfd features {:#x}", uffd_features()?))
}

fn probe_uffd_noncoop() -> crate::Result<String> {
    use linux_raw_sys::general as g;
    let need = (g::UFFD_FEATURE_EVENT_FORK
        | g::UFFD_FEATURE_EVENT_REMAP
        | g::UFFD_FEATURE_EVENT_UNMAP
        | g::UFFD_FEATURE_EVENT_REMOVE) as u64;
    let f = uffd_features()?;
    if f & need != need {
        return Err(kernel(format!(
            "userfaultfd features {f:#x} lack the event bits {need:#x}"
        )));
    }
    Ok("fork/remap/unmap/remove events available".into())
}

fn probe_uffd_wp() -> crate::Result<String> {
    use linux_raw_sys::general as g;
    let f = uffd_features()?;
    if f & g::UFFD_FEATURE_PAGEFAULT_FLAG_WP as u64 == 0 {
        return Err(kernel(format!(
            "userfaultfd features {f:#x} lack PAGEFAULT_FLAG_WP"
        )));
    }
    let asyncwp = f & g::UFFD_FEATURE_WP_ASYNC as u64 != 0;
    let unpop = f & g::UFFD_FEATURE_WP_UNPOPULATED as u64 != 0;
    Ok(format!(
        "write-protect supported (async WP: {asyncwp}, WP unpopulated: {unpop})"
    ))
}

fn probe_rseq() -> crate::Result<String> {
    // AT_RSEQ_FEATURE_SIZE (27) is in auxv since 6.3, which postdates
    // PTRACE_GET_RSEQ_CONFIGURATION (5.13); no ptrace stop is needed to infer it.
    const AT_RSEQ_FEATURE_SIZE: u64 = 27;
    let auxv = self_dir()?.auxv()?;
    match auxv.iter().find(|(k, _)| *k == AT_RSEQ_FEATURE_SIZE) {
        Some((_, size)) => Ok(format!(
            "rseq feature size {size}; PTRACE_GET_RSEQ_CONFIGURATION available (kernel >= 6.3)"
        )),
        None => Err(kernel("no AT_RSEQ_FEATURE_SIZE in auxv (kernel older than 6.3)")),
    }
}

fn probe_timens() -> crate::Result<String> {
    let me = self_dir()?;
    me.readlink("ns/time")?;
    let offs = me.timens_offsets()?;
    Ok(format!(
        "ns/time present, {} timens offsets readable",
        offs.len()
    ))
}

fn probe_seccomp_filters() -> crate::Result<String> {
    // Dumping filters uses PTRACE_SECCOMP_GET_FILTER (CONFIG_SECCOMP_FILTER +
    // CONFIG_CHECKPOINT_RESTORE). Without stopping a tracee we infer both: the status
    // line exists only with SECCOMP_FILTER, and kcmp only with CHECKPOINT_RESTORE.
    let st = self_dir()?
        .read_string("status")?;
    if !st.contains("\nSeccomp_filters:") {
        return Err(kernel("no Seccomp_filters in /proc/self/status (no CONFIG_SECCOMP_FILTER)"));
    }
    probe_kcmp().map_err(|e| kernel(format!("kcmp unavailable ({e}): no CONFIG_CHECKPOINT_RESTORE")))?;
    Ok(
        "CONFIG_SECCOMP_FILTER and CONFIG_CHECKPOINT_RESTORE present (PTRACE_SECCOMP_GET_FILTER)"
            .into(),
    )
}

fn probe_memfd() -> crate::Result<String> {
    let name = c"rcr-check";
    let fd = sys::memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    ?;
    let me = self_dir()?;
    let target = me
        .readlink(&format!("fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))?;
    let t = target.to_string_lossy();
    if !t.starts_with("/memfd:rcr-check") {
        return Err(kernel(format!("memfd link target is {t:?}")));
    }
    Ok(format!("memfd_create works ({t})"))
}

fn probe_mem_dirty_track() -> crate::Result<String> {
    let ps = sys::page_size() as usize;
    let buf = vec![1u8; ps * 3];
    let start = (buf.as_ptr() as u64).next_multiple_of(ps as u64);
    let pm = self_dir()?
        .openat("pagemap", nix::fcntl::OFlag::O_RDONLY)?;
    let file = std::fs::File::from(pm);
    let e =
        sys::pagemap_read_entries(&file, start, start + ps as u64)?;
    drop(buf);
    // A freshly written page is soft-dirty when CONFIG_MEM_SOFT_DIRTY is set.
    if e.first().is_some_and(|e| e.present() && e.soft_dirty()) {
        return Ok("soft-dirty bit set on a freshly written page".into());
    }
    let alt = if probe_pagemap_scan().is_ok() && probe_uffd_wp().is_ok() {
        "rcr uses PAGEMAP_SCAN with PAGE_IS_WRITTEN (uffd async write-protect) instead"
    } else {
        "and PAGEMAP_SCAN/uffd-wp are missing too, so pre-dumps copy all memory"
    };
    Err(kernel(format!(
        "no soft-dirty bit on a freshly written page (no CONFIG_MEM_SOFT_DIRTY); {alt}"
    )))
}

fn probe_cap_sys_resource() -> crate::Result<String> {
    const CAP_SYS_RESOURCE: u32 = 24;
    let st = self_dir()?.status()?;
    if st.cap_eff & (1 << CAP_SYS_RESOURCE) == 0 {
        return Err(kernel(format!(
            "CAP_SYS_RESOURCE not in the effective set ({:#x})",
            st.cap_eff
        )));
    }
    Ok("CAP_SYS_RESOURCE effective".into())
}

fn probe_kcmp() -> crate::Result<String> {
    let name = c"rcr-kcmp";
    let a = sys::memfd_create(name, MemFdCreateFlag::MFD_CLOEXEC)?;
    let b = a.try_clone().map_err(|e| Error::Io { ctx: "dup of a memfd".into(), source: e })?;
    let c = sys::memfd_create(name, MemFdCreateFlag::MFD_CLOEXEC)?;
    let me = Pid::this();
    let raw = |f: &std::os::fd::OwnedFd| std::os::fd::AsRawFd::as_raw_fd(f) as u64;
    let same =
        sys::kcmp(me, me, sys::KcmpType::File, raw(&a), raw(&b))?;
    let diff =
        sys::kcmp(me, me, sys::KcmpType::File, raw(&a), raw(&c))?;
    if same != sys::KcmpResult::Equal || diff == sys::KcmpResult::Equal {
        return Err(kernel(format!(
            "kcmp gave {same:?} for a dup and {diff:?} for distinct files"
        )));
    }
    Ok("kcmp(KCMP_FILE) tells shared file descriptions apart".into())
}

fn probe_mnt_id() -> crate::Result<String> {
    let me = self_dir()?;
    let fds = me.fds()?;
    let (fd, _) = fds.first().ok_or_else(|| kernel("no open fds"))?;
    let fi = me.fdinfo(*fd)?;
    fi.mnt_id
        .map(|m| format!("fdinfo has mnt_id ({m})"))
        .ok_or_else(|| kernel("fdinfo lacks mnt_id"))
}

fn probe_cgroupns() -> crate::Result<String> {
    self_dir()?
        .readlink("ns/cgroup")?;
    Ok("ns/cgroup present".into())
}

fn probe_userns() -> crate::Result<String> {
    self_dir()?.readlink("ns/user")?;
    let size = sys::prctl_mm_map_size()?;
    Ok(format!("ns/user present, PR_SET_MM_MAP_SIZE = {size}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_lookup() {
        let names = feature_names();
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        let err = check_feature("no-such-thing").unwrap_err().to_string();
        assert!(
            err.contains("no-such-thing") && err.contains("pagemap_scan"),
            "{err}"
        );
        assert_eq!(check_feature("rseq").unwrap().name, "get_rseq_conf");
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let rel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut it = rel
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u32>().ok());
        let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        (a, b) >= (major, minor)
    }

    #[test]
    fn check_all_is_consistent_with_this_machine() {
        assert!(check_all(false).iter().all(|r| r.needed));
        assert!(NEEDED.iter().all(|n| feature_names().contains(n)));
        let reports = check_all(true);
        for r in &reports {
            eprintln!("{:<18} {:<5} {}", r.name, r.ok, r.detail);
            assert!(!r.detail.is_empty());
            if !r.ok {
                assert!(
                    r.detail.contains("; so "),
                    "{r:?} does not say what rcr cannot do"
                );
            }
        }
        let get = |n: &str| reports.iter().find(|r| r.name == n).unwrap();
        assert_eq!(reports.len(), feature_names().len());
        let root = nix::unistd::geteuid().is_root();
        if root {
            for n in [
                "ptrace_seize",
                "pidfd_getfd",
                "process_vm_readv",
                "kcmp",
                "memfd",
                "map_files",
                "clone3_set_tid",
            ] {
                assert!(get(n).ok, "{:?}", get(n));
            }
        }
        if kernel_at_least(6, 7) {
            assert!(get("pagemap_scan").ok, "{:?}", get("pagemap_scan"));
        }
        let st = crate::proc::ProcDir::open_self().unwrap().status().unwrap();
        assert_eq!(get("cap_sys_resource").ok, st.cap_eff & (1 << 24) != 0);
        if !get("mem_dirty_track").ok {
            assert!(get("mem_dirty_track").detail.contains("PAGEMAP_SCAN"));
        }
    }
}
