//! openat, kcmp, memfd, setns, personality, prlimit, prctl, sched_{get,set}attr.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::{err, Errno, Result, SysError};

/// openat(2) relative to `dir`, always with O_CLOEXEC; returns an owned fd.
pub fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: OFlag) -> Result<OwnedFd> {
    let flags = flags | OFlag::O_CLOEXEC;
    // SAFETY: path is a valid NUL-terminated string; dir is a live fd borrowed for the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags.bits(), 0) };
    let fd = Errno::result(fd).map_err(err("openat", path.to_string_lossy()))?;
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Object kinds for [`kcmp`] (uapi linux/kcmp.h; libc does not export them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum KcmpType {
    File = 0,
    Vm = 1,
    Files = 2,
    Fs = 3,
    Sighand = 4,
    Io = 5,
    Sysvsem = 6,
    // KCMP_EPOLL_TFD (7) takes a pointer: see [`kcmp_epoll_tfd`].
}

/// kcmp's answer: the kernel orders objects by an obfuscated pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KcmpResult {
    Equal,
    Less,
    Greater,
    /// Not equal, and ordering is not available (CONFIG_CHECKPOINT_RESTORE quirk).
    NotEqual,
}

/// kcmp(2): do two processes share a kernel object? With [`KcmpType::File`], `idx1`/`idx2`
/// are fds and `Equal` means they share one open file description.
pub fn kcmp(pid1: Pid, pid2: Pid, kind: KcmpType, idx1: u64, idx2: u64) -> Result<KcmpResult> {
    // SAFETY: kcmp with these types takes only integers (KCMP_EPOLL_TFD, which takes a
    // pointer, is not offered by KcmpType).
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid1.as_raw(),
            pid2.as_raw(),
            kind as i32,
            idx1,
            idx2,
        )
    };
    kcmp_result(r, || format!("{pid1}, {pid2}, {kind:?}, {idx1}, {idx2}"))
}

/// kcmp(2) with KCMP_EPOLL_TFD: is fd `fd` of `pid` the file that epoll fd `efd` of `epoll_pid` watches
/// as target fd number `tfd` (the `toff`-th watch with that number, in the order fdinfo lists them)?
pub fn kcmp_epoll_tfd(pid: Pid, fd: i32, epoll_pid: Pid, efd: i32, tfd: i32, toff: u32) -> Result<KcmpResult> {
    // struct kcmp_epoll_slot (uapi linux/kcmp.h).
    let slot: [u32; 3] = [efd as u32, tfd as u32, toff];
    const KCMP_EPOLL_TFD: i32 = 7;
    // SAFETY: `slot` is a live kcmp_epoll_slot the kernel only reads during the call.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, pid.as_raw(), epoll_pid.as_raw(), KCMP_EPOLL_TFD, fd as u64, slot.as_ptr()) };
    kcmp_result(r, || format!("{pid}, {epoll_pid}, KCMP_EPOLL_TFD, {fd}, {{efd {efd}, tfd {tfd}, toff {toff}}}"))
}

/// kcmp's return value as an answer; `ctx` describes the call for errors.
fn kcmp_result(r: libc::c_long, ctx: impl Fn() -> String) -> Result<KcmpResult> {
    match Errno::result(r).map_err(err("kcmp", ctx()))? {
        0 => Ok(KcmpResult::Equal),
        1 => Ok(KcmpResult::Less),
        2 => Ok(KcmpResult::Greater),
        3 => Ok(KcmpResult::NotEqual),
        v => Err(SysError::Unexpected { call: "kcmp", ctx: ctx(), msg: format!("returned {v}") }),
    }
}

/// memfd_create(2) (via nix), flags e.g. MFD_CLOEXEC | MFD_ALLOW_SEALING.
pub fn memfd_create(name: &CStr, flags: nix::sys::memfd::MemFdCreateFlag) -> Result<OwnedFd> {
    nix::sys::memfd::memfd_create(name, flags).map_err(err("memfd_create", name.to_string_lossy()))
}

/// setns(2) (via nix) on a namespace fd (from /proc/PID/ns/* or a pidfd).
pub fn setns(fd: BorrowedFd<'_>, nstype: CloneFlags) -> Result<()> {
    nix::sched::setns(fd, nstype)
        .map_err(err("setns", format!("fd {}, {nstype:?}", fd.as_raw_fd())))
}

/// personality(0xffffffff): reads the calling thread's personality.
pub fn personality_get() -> Result<u32> {
    // SAFETY: 0xffffffff only queries; no memory is touched.
    let r = unsafe { libc::personality(0xffff_ffff) };
    Errno::result(r)
        .map(|v| v as u32)
        .map_err(err("personality", "query"))
}

/// personality(persona): sets it, returning the previous one.
pub fn personality_set(persona: u32) -> Result<u32> {
    // SAFETY: takes an integer only.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(r)
        .map(|v| v as u32)
        .map_err(err("personality", format!("{persona:#x}")))
}

/// prlimit(2) read: (soft, hard) of `resource` (libc::RLIMIT_*) of `pid` (0 = self).
pub fn prlimit_get(pid: Pid, resource: u32) -> Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid out-pointer for the call; new limit is NULL (read only).
    let r = unsafe { libc::prlimit64(pid.as_raw(), resource as _, std::ptr::null(), &mut old) };
    Errno::result(r).map_err(err("prlimit", format!("pid {pid}, resource {resource}")))?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// prlimit(2) write. Raising a hard limit, or changing another user's process, needs
/// CAP_SYS_RESOURCE (EPERM otherwise).
pub fn prlimit_set(pid: Pid, resource: u32, soft: u64, hard: u64) -> Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `new` is valid for reads during the call; old-limit pointer is NULL.
    let r = unsafe { libc::prlimit64(pid.as_raw(), resource as _, &new, std::ptr::null_mut()) };
    Errno::result(r).map(drop).map_err(err(
        "prlimit",
        format!("pid {pid}, resource {resource}, {soft}/{hard}"),
    ))
}

/// PR_SET_CHILD_SUBREAPER (via nix).
pub fn prctl_set_child_subreaper(on: bool) -> Result<()> {
    nix::sys::prctl::set_child_subreaper(on).map_err(err("prctl", "PR_SET_CHILD_SUBREAPER"))
}

/// PR_GET_SECUREBITS of the calling thread.
pub fn prctl_get_securebits() -> Result<u32> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer; the result is the bits or -1.
    let r = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    Errno::result(r).map(|v| v as u32).map_err(err("prctl", "PR_GET_SECUREBITS"))
}

/// The memory layout to install with PR_SET_MM_MAP (struct prctl_mm_map, owned form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MmMap {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxv words (pairs, AT_NULL-terminated).
    pub auxv: Vec<u64>,
}

/// PR_SET_MM/PR_SET_MM_MAP_SIZE: the struct size the kernel expects.
pub fn prctl_mm_map_size() -> Result<u32> {
    let mut size: u32 = 0;
    // SAFETY: arg3 points to a u32 the kernel writes.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP_SIZE,
            &mut size as *mut u32,
            0,
            0,
        )
    };
    Errno::result(r).map_err(err("prctl", "PR_SET_MM_MAP_SIZE"))?;
    Ok(size)
}

/// PR_SET_MM/PR_SET_MM_MAP: sets the calling process's mm fields at once (needs
/// CAP_SYS_RESOURCE unless in a user namespace it owns). `exe` becomes /proc/self/exe
/// when given.
pub fn prctl_set_mm_map(map: &MmMap, exe: Option<BorrowedFd<'_>>) -> Result<()> {
    let mut auxv = map.auxv.clone();
    let raw = linux_raw_sys::prctl::prctl_mm_map {
        start_code: map.start_code,
        end_code: map.end_code,
        start_data: map.start_data,
        end_data: map.end_data,
        start_brk: map.start_brk,
        brk: map.brk,
        start_stack: map.start_stack,
        arg_start: map.arg_start,
        arg_end: map.arg_end,
        env_start: map.env_start,
        env_end: map.env_end,
        auxv: if auxv.is_empty() {
            std::ptr::null_mut()
        } else {
            auxv.as_mut_ptr()
        },
        auxv_size: (auxv.len() * 8) as u32,
        exe_fd: exe.map_or(u32::MAX, |f| f.as_raw_fd() as u32),
    };
    let size = std::mem::size_of_val(&raw);
    // SAFETY: `raw` and the auxv buffer it points to live across the call; size is exact.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP,
            &raw as *const _,
            size,
            0,
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(err("prctl", "PR_SET_MM_MAP"))
}

/// Scheduling attributes (struct sched_attr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// sched_getattr(2) of thread `tid` (0 = self). Not in nix; raw syscall.
pub fn sched_getattr(tid: Pid) -> Result<SchedAttr> {
    // SAFETY: sched_attr is plain old data; all-zero is a valid value.
    let mut a: libc::sched_attr = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: `a` is a writable buffer of `size` bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            tid.as_raw(),
            &mut a as *mut _,
            size,
            0,
        )
    };
    Errno::result(r).map_err(err("sched_getattr", format!("tid {tid}")))?;
    Ok(SchedAttr {
        policy: a.sched_policy,
        flags: a.sched_flags,
        nice: a.sched_nice,
        priority: a.sched_priority,
        runtime: a.sched_runtime,
        deadline: a.sched_deadline,
        period: a.sched_period,
    })
}

/// sched_setattr(2) of thread `tid` (0 = self).
pub fn sched_setattr(tid: Pid, attr: &SchedAttr) -> Result<()> {
    // SAFETY: sched_attr is plain old data; all-zero is a valid value.
    let mut a: libc::sched_attr = unsafe { std::mem::zeroed() };
    a.size = std::mem::size_of::<libc::sched_attr>() as u32;
    a.sched_policy = attr.policy;
    a.sched_flags = attr.flags;
    a.sched_nice = attr.nice;
    a.sched_priority = attr.priority;
    a.sched_runtime = attr.runtime;
    a.sched_deadline = attr.deadline;
    a.sched_period = attr.period;
    // SAFETY: `a` is a readable, correctly sized sched_attr.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, tid.as_raw(), &a as *const _, 0) };
    Errno::result(r)
        .map(drop)
        .map_err(err("sched_setattr", format!("tid {tid}, {attr:?}")))
}


/// Whether close_range(2) exists (Linux 5.9): asked on an fd range that holds no fd.
pub fn close_range_probe() -> Result<()> {
    // SAFETY: the range [u32::MAX, u32::MAX] holds no fd of this process; nothing is closed.
    let r = unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) };
    Errno::result(r).map(drop).map_err(err("close_range", "probe on an empty range"))
}

/// Whether madvise takes MADV_POPULATE_WRITE (Linux 5.14), tried on a page of rcr's own.
pub fn madv_populate_write_probe() -> Result<()> {
    const MADV_POPULATE_WRITE: i32 = 23;
    let m = super::AnonMapping::new(1)?;
    // SAFETY: the range is the mapping `m` owns, alive across the call; populating it only allocates
    // its page.
    let r = unsafe { libc::madvise(m.addr() as *mut libc::c_void, m.len(), MADV_POPULATE_WRITE) };
    Errno::result(r).map(drop).map_err(err("madvise", "MADV_POPULATE_WRITE probe"))
}
