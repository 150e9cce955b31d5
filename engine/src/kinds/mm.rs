//! A task's address space as a whole (the `mm` image): dump and restore side by side. The pages
//! themselves are [`super::mem`]'s.
//!
//! Dump: every area becomes a vma entry (the file behind a file mapping goes into the file table, a
//! device area is offered to the plugins, a mapped memfd is saved once), and the mm entry records the
//! layout (code, data, brk, stack, arguments, environment, auxv, executable).
//! Restore: the trampoline (one page of `syscall; int3` at an address no dumped area uses) is where
//! every remote call runs; rcr's memory is unmapped around it, every area is mapped again at its
//! address (shared memory from its first owner, device areas from their plugin's fd), filled and
//! protected, the vDSO is placed where it was, and PR_SET_MM_MAP sets the layout.

use super::{mem, memfd, regfile, FileTable};
use crate::checkpoint::ProcImages;
use crate::compel::{Remote, Tracee};
use crate::ctx::{step, DumpCtx, RestoreCtx};
use crate::image::{pb, ImageName};
use crate::proc::{ProcDir, Stat, Vma};
use crate::{Context, Error, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// An area as dumped: its entry and what kind it is.
pub type Area = (pb::VmaEntry, mem::AreaKind);

fn fstat(fd: &impl AsRawFd, what: &str) -> Result<libc::stat> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| Error::Io { ctx: format!("fstat of {what}"), source: e.into() })
}

/// The task's memory areas as vma entries, the files behind file mappings added to the file table and
/// the memfds mapped saved (once each). Areas the core cannot handle (device memory, special mappings)
/// and mappings of files under /dev are offered to the plugins first.
pub fn dump_areas(c: &DumpCtx<'_>, proc: &ProcDir, vmas: &[Vma], files: &mut FileTable) -> Result<Vec<Area>> {
    let pid = proc.pid();
    let mut out = Vec::with_capacity(vmas.len());
    for v in vmas {
        let classified = mem::classify(v);
        let device = v.path.as_deref().is_some_and(|p| p.starts_with("/dev/")) && !v.deleted;
        if classified.is_err() || device {
            // plugins: a device area; the plugin that claims it maps it again at restore.
            if let Some(claim) = c.plugins.dump_vma(pid, v, &mut || files.next_id())? {
                files.files.push(claim.file_entry());
                let kind = mem::AreaKind::Plugin { shared: v.shared };
                let mut e = mem::vma_entry(v, kind);
                e.shmid = claim.id as u64;
                out.push((e, kind));
                continue;
            }
        }
        let kind = classified.map_err(|u| u.error(pid, v))?;
        let mut e = mem::vma_entry(v, kind);
        if matches!(kind, mem::AreaKind::AnonShared | mem::AreaKind::Memfd { .. }) {
            // The shmem inode identifies the memory: processes sharing it map one object at restore.
            e.shmid = v.inode;
        }
        if matches!(kind, mem::AreaKind::FilePrivate | mem::AreaKind::FileShared) {
            let path = v.path.clone().unwrap_or_default();
            let f = proc.map_files_open(v.start, v.end, nix::fcntl::OFlag::O_RDONLY)?;
            let st = fstat(&f, &path)?;
            // A shared mapping that may become writable (VM_MAYWRITE) needs the file open for writing.
            let flags = if v.shared && v.vm_flags.contains("mw") { libc::O_RDWR } else { libc::O_RDONLY };
            let what = format!("the file mapped at {:#x}", v.start);
            e.shmid = regfile::dump_file(files, pid, &what, &path, v.deleted, f.as_fd(), &st, flags as u32, c.opts)? as u64;
            e.fdflags = Some(flags as u32);
        }
        out.push((e, kind));
    }
    // [vvar] and [vvar_vclock] (Linux 6.13 on) are one area to CRIU, whose dump merges them and whose
    // restore finds the vDSO by that one area's size: merged here too, for CRIU to restore rcr's images.
    out.dedup_by(|next, prev| {
        let merge = matches!((prev.1, next.1), (mem::AreaKind::Vvar, mem::AreaKind::Vvar)) && prev.0.end == next.0.start;
        if merge {
            prev.0.end = next.0.end;
        }
        merge
    });
    for (v, kind) in &out {
        if matches!(kind, mem::AreaKind::Memfd { .. }) && !files.memfds.iter().any(|m| m.inode_id == v.shmid) {
            let src = vmas.iter().find(|m| m.start == v.start).and_then(|m| m.path.clone()).unwrap_or_default();
            let f = std::fs::File::from(proc.map_files_open(v.start, v.end, nix::fcntl::OFlag::O_RDONLY)?);
            memfd::save_inode(c.dir(), files, &f, &src, v.shmid)?;
        }
    }
    Ok(out)
}

/// The executable, as a file of the file table (through the link: a deleted executable opens too, and
/// is saved as a ghost).
pub fn dump_exe(c: &DumpCtx<'_>, proc: &ProcDir, files: &mut FileTable) -> Result<u32> {
    let pid = proc.pid();
    let exe = proc.exe()?.to_string_lossy().into_owned();
    let f = proc.openat("exe", nix::fcntl::OFlag::O_RDONLY).at_task_with(pid, || format!("opening its executable {exe}"))?;
    let st = fstat(&f, &exe)?;
    regfile::dump_file(files, pid, "its executable", &exe, false, f.as_fd(), &st, libc::O_RDONLY as u32, c.opts)
}

/// What the mm entry takes from the task besides /proc: read in it by the remote phase.
pub struct MmState {
    pub brk: u64,
    pub exe_file_id: u32,
    pub dumpable: i32,
    pub thp_disabled: bool,
}

/// Writes `mm-PID.img`.
pub fn dump_mm(c: &DumpCtx<'_>, proc: &ProcDir, stat: &Stat, areas: &[Area], s: MmState) -> Result<()> {
    let mm = pb::MmEntry {
        mm_start_code: stat.start_code,
        mm_end_code: stat.end_code,
        mm_start_data: stat.start_data,
        mm_end_data: stat.end_data,
        mm_start_stack: stat.start_stack,
        mm_start_brk: stat.start_brk,
        mm_brk: s.brk,
        mm_arg_start: stat.arg_start,
        mm_arg_end: stat.arg_end,
        mm_env_start: stat.env_start,
        mm_env_end: stat.env_end,
        exe_file_id: s.exe_file_id,
        mm_saved_auxv: proc.auxv()?.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        vmas: areas.iter().map(|(v, _)| *v).collect(),
        dumpable: Some(s.dumpable),
        aios: Vec::new(),
        thp_disabled: Some(s.thp_disabled),
    };
    Ok(c.images.write_one(ImageName::Mm(proc.pid() as u32), &mm)?)
}

const PAGE: u64 = mem::PAGE_SIZE;
/// The trampoline: one page of code (`syscall; int3`) at an address no dumped area uses.
pub const TRAMP_LEN: u64 = PAGE;
/// End of the x86_64 user address space with 4-level page tables.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const ARCH_MAP_VDSO_64: u64 = 0x2003;

/// A trampoline address outside the dumped areas and outside rcr's own mappings (the new task starts
/// as a copy of rcr).
pub fn pick_trampoline<'a>(vmas: impl Iterator<Item = &'a pb::VmaEntry>) -> Result<u64> {
    let own = std::fs::read_to_string("/proc/self/maps").map_err(|e| Error::Io { ctx: "reading /proc/self/maps".into(), source: e })?;
    let mut taken: Vec<(u64, u64)> = vmas.map(|v| (v.start, v.end)).collect();
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
    Err(Error::Kernel("no free address for the restore trampoline".into()))
}

/// Puts the trampoline page (`syscall; int3`) into the root task, which still runs rcr's memory.
pub fn make_trampoline(tracee: &Tracee, tramp: u64) -> Result<()> {
    let mut remote = Remote::inject(tracee)?;
    let got = remote.mmap_raw(tramp, TRAMP_LEN, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE, -1, 0)?;
    if got != tramp as i64 {
        return Err(Error::remote(format!("mapping the restore trampoline at {tramp:#x}"), got));
    }
    tracee.write_mem(tramp, &[0x0f, 0x05, 0xcc])?;
    // The new task inherited rcr's rseq registration, whose area is about to be unmapped: the kernel
    // would fault on it on every return to user space. (Its children inherit the unregistered state.)
    if let Some(rs) = tracee.rseq_config()?.filter(|r| r.abi_pointer != 0) {
        remote.rseq(rs.abi_pointer, rs.abi_size, 1 /* RSEQ_FLAG_UNREGISTER */, rs.signature)?;
    }
    remote.mprotect(tramp, TRAMP_LEN, libc::PROT_READ | libc::PROT_EXEC)?;
    remote.cure()?;
    Ok(())
}

/// Unmaps everything in the task of `r` but the trampoline page.
pub fn unmap_all_but_trampoline(r: &mut Remote<'_>, tramp: u64) -> Result<()> {
    r.munmap(0, tramp)?;
    r.munmap(tramp + TRAMP_LEN, TASK_SIZE - tramp - TRAMP_LEN)?;
    Ok(())
}

/// Where the areas of the tree's tasks are mapped from, opened in rcr before the tree is created and
/// inherited by every task.
pub struct AreaSources<'a> {
    /// Files behind file mappings, by file id.
    pub map_fds: &'a BTreeMap<u64, OwnedFd>,
    /// memfds by shmem inode.
    pub memfd_fds: &'a BTreeMap<u64, OwnedFd>,
    /// plugins: fd and file offset of each device area, by its shmid (update_vma); no fd: its plugin
    /// maps it in restore_task.
    pub plugin_vma_fds: &'a BTreeMap<u64, (Option<OwnedFd>, u64)>,
    /// MAP_SHARED anonymous memory already mapped, by shmem inode: (owner pid, start, end).
    pub shm_owners: RefCell<BTreeMap<u64, (i32, u64, u64)>>,
}

/// Replaces rcr's memory in the new task of `r` with the dumped areas of `p`, their pages read from
/// `pages` (open in rcr and, inherited, as the same fd number in the task).
pub fn restore_memory(r: &mut Remote<'_>, c: &RestoreCtx<'_>, p: &ProcImages, src: &AreaSources<'_>, pages: &std::fs::File, tramp: u64) -> Result<()> {
    let pid = p.pid();
    let shm_fds = open_shared(r, p, src)?;
    step(pid, "release scratch", r.release_scratch())?;
    step(pid, "unmap what is left of rcr's memory", unmap_all_but_trampoline(r, tramp))?;
    if let Some(vvar) = p.mm.vmas.iter().filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR) != 0).map(|v| v.start).min() {
        let got = r.arch_prctl_raw(ARCH_MAP_VDSO_64, vvar)?;
        if got < 0 {
            return Err(Error::remote(format!("mapping the vDSO at {vvar:#x}"), got).at_task(pid, ""));
        }
    }
    let areas: Vec<&pb::VmaEntry> = p.mm.vmas.iter()
        .filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR | mem::VMA_AREA_VSYSCALL) == 0)
        // plugins: an area its plugin maps itself, in restore_task.
        .filter(|v| v.status & mem::VMA_EXT_PLUGIN == 0 || src.plugin_vma_fds.get(&v.shmid).is_none_or(|(fd, _)| fd.is_some()))
        .collect();
    let (runs, filled) = map_areas(r, p, &areas, src, &shm_fds)?;
    step(pid, "fill memory", mem::fill_pages(r, pid, &runs, pages.as_raw_fd(), pages, c.features.madv_populate_write))?;
    for (v, had) in areas.iter().zip(filled) {
        step(pid, &format!("protect area {:#x}-{:#x}", v.start, v.end), mem::protect_area(r, v, had))?;
    }
    for fd in shm_fds.values() {
        r.close(*fd)?;
    }
    check_vdso_layout(pid, &p.mm.vmas)
}

/// MAP_SHARED anonymous memory another process of the tree already mapped: that object, opened while
/// /proc is reachable by path, to map it again; by shmid.
fn open_shared(r: &mut Remote<'_>, p: &ProcImages, src: &AreaSources<'_>) -> Result<BTreeMap<u64, i32>> {
    let mut shm_fds: BTreeMap<u64, i32> = BTreeMap::new();
    for v in p.mm.vmas.iter().filter(|v| v.status & mem::VMA_ANON_SHARED != 0 && v.shmid != 0) {
        let owner = src.shm_owners.borrow().get(&v.shmid).copied();
        if let (Some((opid, s, e)), false) = (owner, shm_fds.contains_key(&v.shmid)) {
            let fd = step(p.pid(), "open shared memory", r.open(&format!("/proc/{opid}/map_files/{s:x}-{e:x}"), libc::O_RDWR, 0))?;
            shm_fds.insert(v.shmid, fd);
        }
    }
    Ok(shm_fds)
}

/// Maps `areas`; returns the page runs to fill and, per area, whether it has pages (it is mapped
/// writable until [`mem::protect_area`]).
fn map_areas(r: &mut Remote<'_>, p: &ProcImages, areas: &[&pb::VmaEntry], src: &AreaSources<'_>, shm_fds: &BTreeMap<u64, i32>) -> Result<(Vec<mem::PageRun>, Vec<bool>)> {
    let pid = p.pid();
    let mut filled = Vec::with_capacity(areas.len());
    let mut runs = Vec::new();
    for v in areas {
        let mine = mem::runs_in(&p.runs, v.start, v.end);
        let has_pages = !mine.is_empty();
        if let Some(&fd) = shm_fds.get(&v.shmid).filter(|_| v.status & mem::VMA_ANON_SHARED != 0) {
            // The same shmem object as its owner's: map it. Its pages are filled again from this
            // process's own dump too: pages only this process had touched are not in the owner's.
            let prot = if has_pages { v.prot as i32 | libc::PROT_READ | libc::PROT_WRITE } else { v.prot as i32 };
            let got = r.mmap_raw(v.start, v.end - v.start, prot, libc::MAP_SHARED | libc::MAP_FIXED, fd, 0)?;
            if got != v.start as i64 {
                return Err(Error::remote(format!("mapping shared memory at {:#x}", v.start), got).at_task(pid, ""));
            }
        } else if v.status & mem::VMA_EXT_PLUGIN != 0 {
            // plugins: a device area, mapped from the fd its plugin gave, at the offset it gave; no pages.
            let (fd, offset) = src.plugin_vma_fds.get(&v.shmid).and_then(|(fd, o)| Some((fd.as_ref()?, o))).ok_or_else(|| Error::Internal(format!("pid {pid}: no plugin mapping for area {:#x}", v.start)))?;
            let area = pb::VmaEntry { pgoff: *offset, ..**v };
            step(pid, &format!("map device area {:#x}-{:#x}", v.start, v.end), mem::map_area(r, &area, mem::AreaFd(Some(fd.as_raw_fd())), false))?;
            filled.push(false);
            continue;
        } else {
            let fds = if v.status & mem::VMA_AREA_MEMFD != 0 { src.memfd_fds } else { src.map_fds };
            let fd = fds.get(&v.shmid).filter(|_| v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0).map(|f| f.as_raw_fd());
            step(pid, &format!("map area {:#x}-{:#x}", v.start, v.end), mem::map_area(r, v, mem::AreaFd(fd), has_pages))?;
            if v.status & mem::VMA_ANON_SHARED != 0 && v.shmid != 0 {
                src.shm_owners.borrow_mut().entry(v.shmid).or_insert((pid, v.start, v.end));
            }
        }
        runs.extend(mine);
        filled.push(has_pages);
    }
    Ok((runs, filled))
}

/// After the areas are mapped: the vDSO must be where the task had it, or its calls would jump into
/// nothing.
fn check_vdso_layout(pid: i32, vmas: &[pb::VmaEntry]) -> Result<()> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| Error::Io { ctx: format!("reading /proc/{pid}/maps"), source: e })?;
    for v in vmas.iter().filter(|v| v.status & mem::VMA_AREA_VDSO != 0) {
        let want = format!("{:x}-{:x} ", v.start, v.end);
        if !maps.lines().any(|l| l.starts_with(&want) && l.ends_with("[vdso]")) {
            return Err(Error::not_supported(format!(
                "pid {pid}: the vDSO could not be placed at {:#x}-{:#x} as at dump time (this kernel's vDSO layout differs from the dumping kernel's)",
                v.start, v.end
            )));
        }
    }
    Ok(())
}

/// PR_SET_MM_MAP in the task: its mm fields, executable link and auxv.
pub fn restore_mm(r: &mut Remote<'_>, mm: &pb::MmEntry, exe_fd: i32) -> Result<()> {
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
    r.prctl_ok(libc::PR_SET_MM, &[libc::PR_SET_MM_MAP as u64, addr, m.len() as u64, 0])?;
    Ok(())
}
