//! `restore`: bring a dumped process back at its original PID.
//!
//! Two phases, as CRIU: *collect* reads and checks every image and opens every file in rcr (nothing is
//! started if any of it fails); *create* forks the task at its PID with clone3(set_tid) and drives its
//! last steps from rcr through ptrace and remote system calls: it unmaps rcr's memory from the new task,
//! maps the dumped areas and reads their pages in, installs the fds, credentials, signals and the rest,
//! then loads the registers and lets it run. The task runs none of its own code until every step
//! succeeded; if one fails, it is killed ([`ChildGuard`]) and the error names the step.

use crate::compel::{Remote, Tracee};
use crate::image::{pb, ImgReader, Kind};
use crate::kinds::{cpu, mem, posix_timers, regfile, signals, task, tty};
use crate::options::RestoreOpts;
use crate::plugins::Plugins;
use crate::{sys, Error, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// What a restore produced.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// PID of the restored root task.
    pub pid: i32,
    /// Without `detached`: the exit status of the restored task (128+signal if killed).
    pub exit_code: Option<i32>,
}

/// Every image of a checkpoint, read and checked before anything is started.
pub struct Images {
    pub pstree: pb::PstreeEntry,
    pub core: pb::CoreEntry,
    pub mm: pb::MmEntry,
    pub fs: pb::FsEntry,
    pub fdinfo: Vec<pb::FdinfoEntry>,
    pub files: BTreeMap<u32, pb::FileEntry>,
    pub ttys: Vec<pb::TtyInfoEntry>,
    pub seccomp: Vec<pb::SeccompFilter>,
    /// The task's clocks at dump time, and whether its time namespace had offsets.
    pub clocks: Option<(pb::TimensEntry, bool)>,
    pub pages_id: u32,
    pub runs: Vec<mem::PageRun>,
    /// The plugins this checkpoint cannot be restored without (inventory).
    pub plugins: Vec<String>,
}

fn read_one<M: prost::Message + Default>(dir: &Path, name: &str, kind: Kind) -> Result<M> {
    let path = dir.join(name);
    let mut r = ImgReader::open(&path, kind)?;
    r.read_entry()?.ok_or_else(|| Error::Msg(format!("{}: the image has no entry", path.display())))
}

fn read_all<M: prost::Message + Default>(dir: &Path, name: &str, kind: Kind, optional: bool) -> Result<Vec<M>> {
    let path = dir.join(name);
    if optional && !path.exists() {
        return Ok(Vec::new());
    }
    Ok(ImgReader::open(&path, kind)?.read_all()?)
}

impl Images {
    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Images> {
        let inv: pb::InventoryEntry = read_one(dir, "inventory.img", Kind::Inventory)?;
        if inv.img_version != 2 {
            return Err(Error::Msg(format!("{}: image version {} is not supported (rcr reads version 2)", dir.join("inventory.img").display(), inv.img_version)));
        }
        let trees: Vec<pb::PstreeEntry> = read_all(dir, "pstree.img", Kind::Pstree, false)?;
        let [pstree] = <[pb::PstreeEntry; 1]>::try_from(trees).map_err(|t| {
            Error::Msg(format!("{}: {} processes; restoring process trees is not supported yet", dir.join("pstree.img").display(), t.len()))
        })?;
        if pstree.threads.len() > 1 {
            return Err(Error::Msg(format!("pid {}: {} threads; multi-threaded processes are not supported yet", pstree.pid, pstree.threads.len())));
        }
        let pid = pstree.pid;
        let core: pb::CoreEntry = read_one(dir, &format!("core-{pid}.img"), Kind::Core)?;
        if core.mtype != pb::core_entry::March::X8664 as i32 || core.thread_info.is_none() || core.tc.is_none() {
            return Err(Error::Msg(format!("{}: not an x86_64 task core", dir.join(format!("core-{pid}.img")).display())));
        }
        let mm: pb::MmEntry = read_one(dir, &format!("mm-{pid}.img"), Kind::Mm)?;
        let ids: pb::TaskKobjIdsEntry = read_one(dir, &format!("ids-{pid}.img"), Kind::Ids)?;
        let fs: pb::FsEntry = read_one(dir, &format!("fs-{pid}.img"), Kind::Fs)?;
        let fdinfo = read_all(dir, &format!("fdinfo-{}.img", ids.files_id), Kind::Fdinfo, false)?;
        let files = read_all::<pb::FileEntry>(dir, "files.img", Kind::Files, false)?.into_iter().map(|f| (f.id, f)).collect();
        let ttys = read_all(dir, "tty-info.img", Kind::TtyInfo, true)?;
        let seccomp = read_all::<pb::SeccompEntry>(dir, "seccomp.img", Kind::Seccomp, true)?
            .into_iter()
            .flat_map(|s| s.seccomp_filters)
            .collect();
        let clocks = read_all::<pb::TimensEntry>(dir, "timens-1.img", Kind::Timens, true)?.into_iter().next().map(|c| (c, ids.time_ns_id.is_some()));
        let (pages_id, runs) = mem::read_pagemap(dir, pid as i32)?;
        let pages_len = std::fs::metadata(dir.join(format!("pages-{pages_id}.img"))).map(|m| m.len()).unwrap_or(0);
        let need = runs.last().map_or(0, |r| r.file_off + r.len);
        if need > pages_len {
            return Err(Error::Msg(format!(
                "{}: {} bytes, but pagemap-{pid}.img lists {need} bytes of pages: the checkpoint is truncated",
                dir.join(format!("pages-{pages_id}.img")).display(), pages_len
            )));
        }
        Ok(Images { pstree, core, mm, fs, fdinfo, files, ttys, seccomp, clocks, pages_id, runs, plugins: inv.rcr_plugins })
    }

    fn reg(&self, id: u32) -> Result<&pb::RegFileEntry> {
        self.files.get(&id).and_then(|f| f.reg.as_ref()).ok_or_else(|| Error::Msg(format!("files.img has no regular file with id {id}")))
    }
}

/// Kills and reaps the task being restored unless disarmed: half a restore never runs.
struct ChildGuard {
    pid: i32,
    armed: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: kill and waitpid on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), libc::__WALL);
            }
            tracing::info!("pid {}: killed the half-restored task", self.pid);
        }
    }
}

/// Says who holds `pid`, if anyone. A zombie whose parent is PID 1 is waited for (bounded): PID 1 here may
/// reap orphans lazily, and such a PID is about to be free.
fn check_pid_free(pid: i32, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return Ok(()),
            Ok(s) => s,
        };
        let comm = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")).map(|(c, _)| c.to_string()).unwrap_or_default();
        let rest: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
        let zombie_of_init = rest.first() == Some(&"Z") && rest.get(1) == Some(&"1");
        if !zombie_of_init || std::time::Instant::now() >= deadline {
            return Err(Error::Msg(format!("pid {pid} is in use by '{comm}'; stop that process first, rcr restores at the original PID")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An fd opened in rcr that the new task inherits at fork and then moves to its place.
struct Inherited {
    fd: OwnedFd,
}

/// A copy of `fd` numbered `min` or higher.
fn fd_above(fd: OwnedFd, min: i32) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an open fd returns a new fd we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(Error::Io { ctx: format!("moving fd {} above {min}", fd.as_raw_fd()), source: std::io::Error::last_os_error() });
    }
    // SAFETY: `n` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Restores the checkpoint in `opts.images_dir`.
pub fn restore(opts: &RestoreOpts) -> Result<RestoreOutcome> {
    let dir = opts.images_dir.as_path();
    // plugins: load and init them; then nothing starts if the checkpoint needs a plugin that is missing.
    let mut plugins = Plugins::load(opts.plugin_dir.as_deref(), rcr_plugin_api::RCR_STAGE_RESTORE, dir, &opts.to_json())?;
    plugins.init()?;
    let img = Images::load(dir)?;
    plugins.check_needed(&img.plugins)?;
    plugins.restore_init()?;
    let pid = img.pstree.pid as i32;
    check_pid_free(pid, opts.step_timeout)?;

    // Collect: open everything in rcr before the task exists.
    let pages = std::fs::File::open(dir.join(format!("pages-{}.img", img.pages_id)))
        .map_err(|e| Error::Io { ctx: format!("opening {}", dir.join(format!("pages-{}.img", img.pages_id)).display()), source: e })?;
    let mut by_id: BTreeMap<u32, Inherited> = BTreeMap::new();
    // Sources sit above every target fd number, so moving one into place never overwrites another.
    let base = img.fdinfo.iter().map(|f| f.fd as i32).max().unwrap_or(2) + 1;
    let mut plugin_files: Vec<(u32, u32, &pb::ExtFileEntry)> = Vec::new(); // plugins: their files
    for fi in &img.fdinfo {
        if by_id.contains_key(&fi.id) {
            continue;
        }
        let f = img.files.get(&fi.id).ok_or_else(|| Error::Msg(format!("fd {}: files.img has no file with id {}", fi.fd, fi.id)))?;
        let fd = if let Some(reg) = &f.reg {
            regfile::open(reg, false)?
        } else if f.tty.is_some() {
            if !opts.shell_job {
                return Err(Error::Msg(format!("fd {} of pid {pid} is a terminal: restore this shell job with --shell-job", fi.fd)));
            }
            tty::own_terminal()?
        } else if let Some(ext) = &f.ext {
            // plugins: a file a plugin dumped; opened by that plugin below.
            if !plugin_files.iter().any(|p| p.0 == fi.id) {
                plugin_files.push((fi.id, fi.fd, ext));
            }
            continue;
        } else {
            return Err(Error::Msg(format!("fd {}: file {} is of a kind rcr cannot restore yet (type {})", fi.fd, fi.id, f.r#type)));
        };
        by_id.insert(fi.id, Inherited { fd: fd_above(fd, base)? });
    }
    for (id, fd) in plugins.restore_files(&plugin_files)? {
        by_id.insert(id, Inherited { fd: fd_above(fd, base)? }); // plugins: opened in rcr, inherited
    }
    let mut map_fds: BTreeMap<u64, OwnedFd> = BTreeMap::new();
    for v in &img.mm.vmas {
        if v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0 && !map_fds.contains_key(&v.shmid) {
            let mut e = img.reg(v.shmid as u32)?.clone();
            e.flags = v.fdflags.unwrap_or(libc::O_RDONLY as u32);
            map_fds.insert(v.shmid, regfile::open(&e, true)?);
        }
    }
    let exe = regfile::open(img.reg(img.mm.exe_file_id)?, false)?;
    let cwd = regfile::open(img.reg(img.fs.cwd_id)?, false)?;
    let root = img.reg(img.fs.root_id)?.name.clone();
    let tramp = pick_trampoline(&img.mm.vmas)?;
    if let Some((clocks, had_offsets)) = &img.clocks {
        crate::kinds::timens::prepare_restore(clocks, *had_offsets)?;
    }

    // Create.
    // SAFETY: the child runs only the raw system calls below (async-signal-safe) and then stops for
    // rcr to take over; it never returns into rcr's code.
    let child = unsafe { sys::clone3_set_tid(&[pid], 0, Some(nix::sys::signal::Signal::SIGCHLD)) }.map_err(|e| match e.errno() {
        Some(sys::Errno::EEXIST) => Error::Msg(format!("pid {pid} was taken while rcr prepared the restore; stop that process first")),
        _ => Error::Msg(format!("cannot create pid {pid}: {e}")),
    })?;
    if let sys::CloneResult::Child = child {
        // In the new task: only async-signal-safe raw system calls until rcr takes over.
        // SAFETY: raw syscalls with integer arguments; the task stops itself and never returns to rcr's code.
        unsafe {
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
            libc::syscall(libc::SYS_kill, libc::syscall(libc::SYS_getpid), libc::SIGSTOP);
            libc::syscall(libc::SYS_exit_group, 127);
        }
        unreachable!("the new task returned from exit_group");
    }
    let mut guard = ChildGuard { pid, armed: true };
    let tracee = Tracee::from_traced_child(pid, opts.step_timeout).map_err(|e| Error::Msg(format!("pid {pid}: the new task did not stop: {e}")))?;
    let ctx = Ctx { img: &img, pid, tramp, pages: pages.as_raw_fd(), pages_file: &pages, exe: exe.as_raw_fd(), cwd: cwd.as_raw_fd(), root: &root, by_id: &by_id, map_fds: &map_fds, opts };
    // plugins: post_forking before the task is built, resume_devices_late once it is (before it runs).
    let built = plugins.post_forking(pid).map_err(Error::from).and_then(|()| build_task(&tracee, &ctx));
    if let Err(e) = built.and_then(|()| Ok(plugins.resume_devices_late(pid)?)) {
        // Kill before the tracee guard detaches: the half-built task must never run.
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(e);
    }
    tracee.detach()?;
    guard.armed = false;
    tracing::info!("pid {pid} restored and running");
    plugins.fini(true)?; // plugins: the task already runs; an error here only fails the command
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{pid}\n")).map_err(|e| Error::Io { ctx: format!("writing pidfile {}", p.display()), source: e })?;
    }
    if opts.detached {
        return Ok(RestoreOutcome { pid, exit_code: None });
    }
    Ok(RestoreOutcome { pid, exit_code: Some(wait_exit(pid)?) })
}

struct Ctx<'a> {
    img: &'a Images,
    pid: i32,
    tramp: u64,
    pages: i32,
    pages_file: &'a std::fs::File,
    exe: i32,
    cwd: i32,
    root: &'a str,
    by_id: &'a BTreeMap<u32, Inherited>,
    map_fds: &'a BTreeMap<u64, OwnedFd>,
    opts: &'a RestoreOpts,
}

const PAGE: u64 = mem::PAGE_SIZE;
/// The trampoline: one page of code (`syscall; int3`) at an address no dumped area uses.
const TRAMP_LEN: u64 = PAGE;
/// End of the x86_64 user address space with 4-level page tables.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const ARCH_MAP_VDSO_64: u64 = 0x2003;

/// A trampoline address outside the dumped areas and outside rcr's own mappings (the new task starts
/// as a copy of rcr).
fn pick_trampoline(vmas: &[pb::VmaEntry]) -> Result<u64> {
    let own = std::fs::read_to_string("/proc/self/maps").map_err(|e| Error::Io { ctx: "reading /proc/self/maps".into(), source: e })?;
    let mut taken: Vec<(u64, u64)> = vmas.iter().map(|v| (v.start, v.end)).collect();
    for line in own.lines() {
        if let Some((a, b)) = line.split_whitespace().next().and_then(|r| r.split_once('-')) {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                taken.push((a, b));
            }
        }
    }
    let mut addr = 0x1000_0000u64;
    while addr + TRAMP_LEN < TASK_SIZE {
        if !taken.iter().any(|&(s, e)| addr < e + PAGE && addr + TRAMP_LEN + PAGE > s) {
            return Ok(addr);
        }
        addr += 1 << 24;
    }
    Err(Error::Msg("no free address for the restore trampoline".into()))
}

fn step<T, E: std::fmt::Display>(pid: i32, what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Msg(format!("pid {pid}: restore step '{what}' failed: {e}")))
}

fn build_task(tracee: &Tracee, c: &Ctx<'_>) -> Result<()> {
    let pid = c.pid;
    let img = c.img;
    // 1. A trampoline page with `syscall; int3` at an address the dumped memory does not use.
    {
        let mut remote = step(pid, "inject", Remote::inject(tracee))?;
        let got = remote.syscall(libc::SYS_mmap, &[c.tramp, TRAMP_LEN, (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64, u64::MAX, 0])?;
        if got != c.tramp as i64 {
            return Err(Error::Msg(format!("pid {pid}: mapping the restore trampoline at {:#x} failed: {}", c.tramp, mem::errno_str(got))));
        }
        tracee.write_mem(c.tramp, &[0x0f, 0x05, 0xcc])?;
        // The new task inherited rcr's rseq registration, whose area is about to be unmapped: the
        // kernel would fault on it on every return to user space.
        if let Some(rs) = tracee.rseq_config()?.filter(|r| r.abi_pointer != 0) {
            remote.syscall_ok(libc::SYS_rseq, &[rs.abi_pointer, rs.abi_size as u64, 1 /* RSEQ_FLAG_UNREGISTER */, rs.signature as u64])?;
        }
        remote.syscall_ok(libc::SYS_mprotect, &[c.tramp, TRAMP_LEN, (libc::PROT_READ | libc::PROT_EXEC) as u64])?;
        step(pid, "cure", remote.cure())?;
    }
    let mut remote = step(pid, "trampoline", Remote::at_site(tracee, c.tramp))?;
    if tracing::enabled!(tracing::Level::TRACE) {
        let mut b = [0u8; 3];
        tracee.read_mem(c.tramp, &mut b)?;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        tracing::trace!("trampoline bytes {b:x?}; maps:\n{maps}");
    }
    let r = &mut remote;
    // 2. Replace rcr's memory with the dumped areas.
    step(pid, "unmap rcr's memory", (|| {
        r.syscall_ok(libc::SYS_munmap, &[0, c.tramp])?;
        r.syscall_ok(libc::SYS_munmap, &[c.tramp + TRAMP_LEN, TASK_SIZE - c.tramp - TRAMP_LEN])
    })())?;
    if let Some(vvar) = img.mm.vmas.iter().filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR) != 0).map(|v| v.start).min() {
        let got = r.syscall(libc::SYS_arch_prctl, &[ARCH_MAP_VDSO_64, vvar])?;
        if got < 0 {
            return Err(Error::Msg(format!("pid {pid}: mapping the vDSO at {vvar:#x} failed: {}", mem::errno_str(got))));
        }
    }
    let areas: Vec<&pb::VmaEntry> = img.mm.vmas.iter()
        .filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR | mem::VMA_AREA_VSYSCALL) == 0)
        .collect();
    let mut filled = Vec::with_capacity(areas.len());
    for v in &areas {
        let fd = c.map_fds.get(&v.shmid).filter(|_| v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0).map(|f| f.as_raw_fd());
        let has_pages = !mem::runs_in(&img.runs, v.start, v.end).is_empty();
        step(pid, &format!("map area {:#x}-{:#x}", v.start, v.end), mem::map_area(r, v, mem::AreaFd(fd), has_pages))?;
        filled.push(has_pages);
    }
    step(pid, "fill memory", mem::fill_pages(r, pid, &img.runs, c.pages, c.pages_file))?;
    for (v, had) in areas.iter().zip(filled) {
        step(pid, &format!("protect area {:#x}-{:#x}", v.start, v.end), mem::protect_area(r, v, had))?;
    }
    check_vdso_layout(pid, &img.mm.vmas)?;
    // 3. mm fields, exe link, auxv.
    step(pid, "PR_SET_MM_MAP", set_mm_map(r, &img.mm, c.exe))?;
    // 4. fs: cwd, root, umask.
    step(pid, "cwd", r.syscall_ok(libc::SYS_fchdir, &[c.cwd as u64]))?;
    if c.root != "/" {
        let p = r.scratch_put(&nul(c.root))?;
        step(pid, "chroot", r.syscall_ok(libc::SYS_chroot, &[p]))?;
    }
    if let Some(u) = img.fs.umask {
        r.syscall(libc::SYS_umask, &[u as u64])?;
    }
    // 5. fds: move each inherited fd to its number, then close everything else.
    let mut keep = Vec::new();
    for fi in &img.fdinfo {
        let src = c.by_id.get(&fi.id).map(|i| i.fd.as_raw_fd()).ok_or_else(|| Error::Msg(format!("fd {}: not opened", fi.fd)))?;
        let cloexec = if fi.flags & libc::FD_CLOEXEC as u32 != 0 { libc::O_CLOEXEC } else { 0 };
        // dup3 refuses equal fds; an fd already at its place only needs its flag.
        if src == fi.fd as i32 {
            let tmp = step(pid, "dup", r.syscall_ok(libc::SYS_fcntl, &[src as u64, libc::F_DUPFD as u64, 1 << 20]))?;
            step(pid, &format!("install fd {}", fi.fd), r.syscall_ok(libc::SYS_dup3, &[tmp, fi.fd as u64, cloexec as u64]))?;
            r.syscall(libc::SYS_close, &[tmp])?;
        } else {
            step(pid, &format!("install fd {}", fi.fd), r.syscall_ok(libc::SYS_dup3, &[src as u64, fi.fd as u64, cloexec as u64]))?;
        }
        keep.push(fi.fd as i32);
    }
    close_others(r, pid, &keep)?;
    // 6. Session and process group.
    let ps = &img.pstree;
    if ps.sid == ps.pid && !(c.opts.shell_job && img.ttys.is_empty()) {
        step(pid, "setsid", r.syscall_ok(libc::SYS_setsid, &[]))?;
        if let Some(fi) = img.fdinfo.iter().find(|f| img.files.get(&f.id).is_some_and(|f| f.tty.is_some())) {
            step(pid, "take the terminal", r.syscall_ok(libc::SYS_ioctl, &[fi.fd as u64, libc::TIOCSCTTY, 1]))?;
        }
    } else if ps.pgid == ps.pid {
        step(pid, "setpgid", r.syscall_ok(libc::SYS_setpgid, &[0, 0]))?;
    }
    // 7. Task attributes.
    let tc = img.core.tc.as_ref().ok_or_else(|| Error::Msg("core has no task core".into()))?;
    let th = img.core.thread_core.clone().unwrap_or_default();
    if let Some(rl) = &tc.rlimits {
        task::restore_rlimits(pid, rl)?;
    }
    if let (Some(policy), Some(prio), Some(nice)) = (th.sched_policy, th.sched_prio, th.sched_nice) {
        task::restore_sched(pid, policy, prio, nice)?;
    }
    if let Some(adj) = tc.oom_score_adj {
        let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string());
    }
    step(pid, "personality", r.syscall_ok(libc::SYS_personality, &[tc.personality as u64]))?;
    let comm = r.scratch_put(&nul(th.comm.as_deref().unwrap_or(&tc.comm)))?;
    step(pid, "comm", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_NAME as u64, comm]))?;
    if img.mm.thp_disabled == Some(true) {
        step(pid, "THP", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_THP_DISABLE as u64, 1, 0, 0, 0]))?;
    }
    if tc.child_subreaper == Some(true) {
        step(pid, "subreaper", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_CHILD_SUBREAPER as u64, 1]))?;
    }
    step(pid, "sigactions", signals::restore_sigactions(r, &tc.sigactions))?;
    step(pid, "sigaltstack", signals::restore_sas(r, th.sas.as_ref()))?;
    if let Some(t) = &tc.timers {
        step(pid, "itimers", task::restore_itimers(r, t))?;
        step(pid, "POSIX timers", posix_timers::restore(r, pid, &t.posix))?;
    }
    step(pid, "pending signals", signals::restore_queue(r, pid, pid, th.signals_p.as_ref(), false))?;
    step(pid, "pending signals", signals::restore_queue(r, pid, pid, tc.signals_s.as_ref(), true))?;
    let ti = img.core.thread_info.as_ref().ok_or_else(|| Error::Msg("core has no thread_info".into()))?;
    step(pid, "clear_child_tid", r.syscall_ok(libc::SYS_set_tid_address, &[ti.clear_tid_addr]).map(|_| ()))?;
    step(pid, "rseq", task::restore_rseq(r, th.rseq_entry.as_ref()))?;
    if let Some(creds) = &th.creds {
        step(pid, "credentials", task::restore_creds(r, creds))?;
    }
    if let Some(d) = img.mm.dumpable {
        step(pid, "dumpable", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_DUMPABLE as u64, d as u64]))?;
    }
    if let Some(sig) = th.pdeath_sig.filter(|&s| s != 0) {
        if c.opts.detached {
            tracing::warn!("pid {pid}: its parent-death signal {sig} is restored; its parent is now rcr, so it is sent when rcr restore -d exits");
        }
        step(pid, "pdeath signal", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_PDEATHSIG as u64, sig as u64]))?;
    }
    if th.rcr_no_new_privs == Some(true) {
        step(pid, "no_new_privs", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0]))?;
    }
    // seccomp filters come last: they apply to every later call, rcr's too.
    if let (Some(idx), Some(mode)) = (th.seccomp_filter, th.seccomp_mode) {
        if mode == pb::SeccompMode::Filter as i32 {
            step(pid, "seccomp", task::restore_seccomp(r, &img.seccomp, idx))?;
        }
    }
    step(pid, "release scratch memory", r.release_scratch())?;
    // 8. The last call unmaps the trampoline; the task stops at its syscall exit, never returning there.
    step(pid, "unmap the trampoline", remote.last_syscall(libc::SYS_munmap, &[c.tramp, TRAMP_LEN]))?;
    step(pid, "registers", cpu::restore(tracee, ti))?;
    step(pid, "signal mask", tracee.set_sigmask(th.blk_sigset.unwrap_or(tc.blk_sigset)))?;
    Ok(())
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// After the areas are mapped: the vDSO must be where the task had it, or its calls would jump into
/// nothing.
fn check_vdso_layout(pid: i32, vmas: &[pb::VmaEntry]) -> Result<()> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| Error::Io { ctx: format!("reading /proc/{pid}/maps"), source: e })?;
    for v in vmas.iter().filter(|v| v.status & mem::VMA_AREA_VDSO != 0) {
        let want = format!("{:x}-{:x} ", v.start, v.end);
        if !maps.lines().any(|l| l.starts_with(&want) && l.ends_with("[vdso]")) {
            return Err(Error::Msg(format!(
                "pid {pid}: the vDSO could not be placed at {:#x}-{:#x} as at dump time (this kernel's vDSO layout differs from the dumping kernel's)",
                v.start, v.end
            )));
        }
    }
    Ok(())
}

fn set_mm_map(r: &mut Remote<'_>, mm: &pb::MmEntry, exe_fd: i32) -> Result<()> {
    let auxv: Vec<u8> = mm.mm_saved_auxv.iter().flat_map(|w| w.to_le_bytes()).collect();
    let auxv_addr = r.scratch_put(&auxv)?;
    let mut m = Vec::with_capacity(104);
    for v in [mm.mm_start_code, mm.mm_end_code, mm.mm_start_data, mm.mm_end_data, mm.mm_start_brk, mm.mm_brk,
        mm.mm_start_stack, mm.mm_arg_start, mm.mm_arg_end, mm.mm_env_start, mm.mm_env_end, auxv_addr]
    {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&(auxv.len() as u32).to_le_bytes());
    m.extend_from_slice(&(exe_fd as u32).to_le_bytes());
    let addr = r.scratch_put(&m)?;
    r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_MM as u64, libc::PR_SET_MM_MAP as u64, addr, m.len() as u64, 0])?;
    Ok(())
}

fn close_others(r: &mut Remote<'_>, pid: i32, keep: &[i32]) -> Result<()> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::Io { ctx: format!("listing {dir}"), source: e })?;
    for e in entries.flatten() {
        if let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            if !keep.contains(&fd) {
                r.syscall(libc::SYS_close, &[fd as u64])?;
            }
        }
    }
    Ok(())
}

/// Waits for the restored task (rcr's child) to end; its exit status, or 128 + the signal that killed it.
fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid pointer to `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::Io { ctx: format!("waiting for restored pid {pid}"), source: e });
        }
        if libc::WIFEXITED(status) {
            return Ok(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(128 + libc::WTERMSIG(status));
        }
    }
}
