//! Memory areas (VMAs) and their pages.
//!
//! Dump: /proc/PID/smaps gives the areas; PAGEMAP_SCAN finds the pages that exist (present or swapped,
//! not the shared zero page; for private file mappings only the pages the task wrote, which are
//! anonymous); process_vm_readv copies them into `pages-1.img`, listed by `pagemap-PID.img`.
//! Restore: inside the new task (remote syscalls) every area is mapped at its address and the pages are
//! read straight from the pages image into it with pread64, one copy.

use crate::image::pagemap::PagemapWriter;
use crate::image::{pb, ImageDir, ImageName};
use crate::proc::Vma;
use crate::{sys, Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use crate::image::pagemap::{PageRun, PAGE_SIZE};

// VMA status bits, CRIU's values (criu/include/image.h), so crit's flag names match.
pub const VMA_AREA_REGULAR: u32 = 1 << 0;
pub const VMA_AREA_STACK: u32 = 1 << 1;
pub const VMA_AREA_VSYSCALL: u32 = 1 << 2;
pub const VMA_AREA_VDSO: u32 = 1 << 3;
pub const VMA_AREA_HEAP: u32 = 1 << 5;
pub const VMA_FILE_PRIVATE: u32 = 1 << 6;
pub const VMA_FILE_SHARED: u32 = 1 << 7;
pub const VMA_ANON_SHARED: u32 = 1 << 8;
pub const VMA_ANON_PRIVATE: u32 = 1 << 9;
pub const VMA_AREA_VVAR: u32 = 1 << 12;
pub const VMA_AREA_MEMFD: u32 = 1 << 14;
/// The area belongs to a plugin (device memory): no pages saved; its `shmid` is the id of the
/// `ext_file_entry` naming the plugin, which maps it again at restore (`update_vma`).
pub const VMA_EXT_PLUGIN: u32 = 1 << 27;

/// madvise advice kept per area, recorded as `1 << advice` in `vma_entry.madv` (CRIU's convention), with
/// the smaps VmFlags letter that shows it.
const MADVICE: [(&str, i32); 6] = [
    ("dc", libc::MADV_DONTFORK),
    ("dd", libc::MADV_DONTDUMP),
    ("hg", libc::MADV_HUGEPAGE),
    ("nh", libc::MADV_NOHUGEPAGE),
    ("mg", libc::MADV_MERGEABLE),
    ("wf", libc::MADV_WIPEONFORK),
];

/// What kind of area a VMA is, decided from smaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    AnonPrivate,
    AnonShared,
    FilePrivate,
    FileShared,
    /// A mapping of a memfd (its content is saved once per memfd, see [`crate::kinds::memfd`]).
    Memfd { shared: bool },
    Vdso,
    Vvar,
    Vsyscall,
    /// Claimed by a plugin (`dump_vma`): recorded, not dumped; the plugin maps it again at restore.
    Plugin { shared: bool },
}

/// An area the core cannot handle by itself (a plugin may claim it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhandled {
    /// VM_IO or VM_PFNMAP: device memory.
    Device,
    /// System V shared memory.
    SysV,
    /// A special mapping the core does not know ("[name]" other than the vDSO ones).
    Special,
}

impl Unhandled {
    /// The error for area `v` of `pid` when no plugin claimed it.
    pub fn error(self, pid: i32, v: &Vma) -> Error {
        let what = match self {
            Unhandled::Device => "device memory (VM_IO/PFNMAP) needs a plugin; none claimed it",
            Unhandled::SysV => "System V shared memory is not supported yet",
            Unhandled::Special => "unknown special mapping; no plugin claimed it",
        };
        let path = v.path.as_deref().unwrap_or("");
        Error::not_supported(what).at_task(pid, format!("memory area {:#x}-{:#x} {}", v.start, v.end, path))
    }
}

/// Classifies an area; what the core cannot handle says why.
pub fn classify(v: &Vma) -> std::result::Result<AreaKind, Unhandled> {
    let path = v.path.as_deref().unwrap_or("");
    Ok(match path {
        "[vdso]" => AreaKind::Vdso,
        "[vvar]" | "[vvar_vclock]" => AreaKind::Vvar,
        "[vsyscall]" => AreaKind::Vsyscall,
        _ if v.vm_flags.contains("io") || v.vm_flags.contains("pf") => return Err(Unhandled::Device),
        _ if v.inode == 0 => {
            if v.shared { AreaKind::AnonShared } else { AreaKind::AnonPrivate }
        }
        // MAP_SHARED|MAP_ANONYMOUS memory is a shmem file that /proc shows as "/dev/zero (deleted)".
        "/dev/zero" if v.deleted && v.shared => AreaKind::AnonShared,
        _ if path.starts_with("/SYSV") => return Err(Unhandled::SysV),
        _ if v.deleted && path.starts_with("/memfd:") => AreaKind::Memfd { shared: v.shared },
        // Any other deleted file is a file mapping: its file is saved as a ghost (regfile::dump_reg).
        _ if !path.starts_with('/') => return Err(Unhandled::Special),
        _ => {
            if v.shared { AreaKind::FileShared } else { AreaKind::FilePrivate }
        }
    })
}

/// The `vma_entry` for an area (shmid, the file id, is filled by the caller for file mappings).
pub fn vma_entry(v: &Vma, kind: AreaKind) -> pb::VmaEntry {
    let mut prot = 0;
    if v.read { prot |= libc::PROT_READ; }
    if v.write { prot |= libc::PROT_WRITE; }
    if v.exec { prot |= libc::PROT_EXEC; }
    let mut flags = if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
    let mut status = VMA_AREA_REGULAR;
    match kind {
        AreaKind::AnonPrivate => { status |= VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::AnonShared => { status |= VMA_ANON_SHARED; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::FilePrivate => status |= VMA_FILE_PRIVATE,
        AreaKind::FileShared => status |= VMA_FILE_SHARED,
        AreaKind::Memfd { shared } => status |= VMA_AREA_MEMFD | if shared { VMA_FILE_SHARED } else { VMA_FILE_PRIVATE },
        AreaKind::Vdso => { status |= VMA_AREA_VDSO | VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::Vvar => { status |= VMA_AREA_VVAR | VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        // As CRIU records it (its restore leaves it alone either way).
        AreaKind::Vsyscall => { status = VMA_AREA_VSYSCALL | VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::Plugin { shared } => status |= VMA_EXT_PLUGIN | if shared { VMA_FILE_SHARED } else { VMA_FILE_PRIVATE },
    }
    if v.path.as_deref() == Some("[stack]") { status |= VMA_AREA_STACK; }
    if v.path.as_deref() == Some("[heap]") { status |= VMA_AREA_HEAP; }
    if v.vm_flags.contains("gd") { flags |= libc::MAP_GROWSDOWN; }
    let madv = MADVICE.iter().filter(|(f, _)| v.vm_flags.contains(f)).fold(0u64, |m, (_, a)| m | (1u64 << a));
    pb::VmaEntry {
        start: v.start,
        end: v.end,
        pgoff: if matches!(kind, AreaKind::FilePrivate | AreaKind::FileShared | AreaKind::Memfd { .. } | AreaKind::Plugin { .. }) { v.pgoff } else { 0 },
        shmid: 0,
        prot: prot as u32,
        flags: flags as u32,
        status,
        fd: -1,
        madv: (madv != 0).then_some(madv),
        fdflags: None,
    }
}

/// Whether an area's pages go into the image.
pub fn dumps_pages(kind: AreaKind) -> bool {
    matches!(kind, AreaKind::AnonPrivate | AreaKind::AnonShared | AreaKind::FilePrivate | AreaKind::Memfd { shared: false })
}

/// Counters of one memory dump.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemStats {
    pub pages_scanned: u64,
    pub pages_written: u64,
}

/// Writes the pages of `areas` (address-ordered) of task `pid` to `pages-<pages_id>.img` and the
/// pagemap to `pagemap-<pid>.img`. The pages file is sized first, then [`WORKERS`] threads each take a
/// window of it at a time and fill it through a cache-sized buffer (process_vm_readv, pwrite): every core
/// copies, and rcr never holds more than `WORKERS * CHUNK` bytes of the task's memory.
/// `pagemap_scan`: the kernel has PAGEMAP_SCAN ([`crate::check::Features`]); else the classic pagemap
/// entries are read.
pub fn dump_pages(dir: &Path, pid: i32, pages_id: u32, areas: &[(pb::VmaEntry, AreaKind)], pagemap_scan: bool) -> Result<MemStats> {
    let images = ImageDir::new(dir);
    let mut pagemap = PagemapWriter::create(&images, ImageName::Pagemap(pid as u32), pages_id)?;
    let scan = File::open(format!("/proc/{pid}/pagemap")).map_err(|e| Error::Io { ctx: format!("opening /proc/{pid}/pagemap"), source: e })?;
    let mut stats = MemStats::default();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (vma, kind) in areas {
        if matches!(kind, AreaKind::Vdso) {
            // CRIU's restore reads the dumped vDSO's pages to compare it with its own, so they are kept
            // as CRIU keeps them; rcr's restore maps the kernel's vDSO and leaves these pages be.
            let nr = (vma.end - vma.start) / PAGE_SIZE;
            pagemap.push(vma.start, nr)?;
            runs.push((vma.start, vma.end - vma.start));
            stats.pages_scanned += nr;
            stats.pages_written += nr;
            continue;
        }
        if !dumps_pages(*kind) {
            continue;
        }
        stats.pages_scanned += (vma.end - vma.start) / PAGE_SIZE;
        let want_anon_only = matches!(kind, AreaKind::FilePrivate | AreaKind::Memfd { .. });
        for r in present_ranges(&scan, vma.start, vma.end, want_anon_only, pagemap_scan)? {
            let nr = (r.end - r.start) / PAGE_SIZE;
            pagemap.push(r.start, nr)?;
            runs.push((r.start, r.end - r.start));
            stats.pages_written += nr;
        }
    }
    pagemap.finish()?;
    let pages_path = images.file(ImageName::Pages(pages_id));
    let pages = File::create(&pages_path).map_err(|e| io_err(&pages_path, e))?;
    let total = stats.pages_written * PAGE_SIZE;
    pages.set_len(total).map_err(|e| io_err(&pages_path, e))?;
    copy_into_file(pid, &pages, &pages_path, &runs, total)?;
    Ok(stats)
}

/// Bytes of the pages file one worker takes at a time.
pub const WINDOW: u64 = 16 << 20;
/// Bytes copied per process_vm_readv and pwrite: small enough to stay in the CPU cache between the two.
const CHUNK: u64 = 1 << 20;
/// Threads copying memory during a dump.
pub const WORKERS: usize = 2;

/// Copies `runs` of task memory, in order, into `file` (already `total` bytes long).
fn copy_into_file(pid: i32, file: &File, path: &Path, runs: &[(u64, u64)], total: u64) -> Result<()> {
    if total == 0 {
        return Ok(());
    }
    let mut offs = Vec::with_capacity(runs.len());
    let mut off = 0u64;
    for r in runs {
        offs.push(off);
        off += r.1;
    }
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| Error::Io { ctx: format!("opening /proc/{pid}/mem"), source: e })?;
    let windows = total.div_ceil(WINDOW);
    let next = std::sync::atomic::AtomicU64::new(0);
    let work = || -> Result<()> {
        loop {
            let w = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if w >= windows {
                return Ok(());
            }
            let (start, end) = (w * WINDOW, ((w + 1) * WINDOW).min(total));
            let mut ranges = Vec::new();
            let mut j = offs.partition_point(|&o| o <= start).saturating_sub(1);
            while j < runs.len() && offs[j] < end {
                let (s, e) = (offs[j].max(start), (offs[j] + runs[j].1).min(end));
                if s < e {
                    ranges.push((runs[j].0 + (s - offs[j]), e - s));
                }
                j += 1;
            }
            // Through a small buffer that stays in the CPU cache: the copy out of the task and the
            // write into the file then cost about one pass over memory.
            let mut pos = start;
            let mut piece: Vec<(u64, u64)> = Vec::new();
            let mut fill = 0u64;
            let flush = |piece: &mut Vec<(u64, u64)>, fill: &mut u64, pos: &mut u64, buf: &mut [u8]| -> Result<()> {
                let n = *fill as usize;
                let got = read_ranges(pid, &mem, &mut buf[..n], piece)?;
                if got != n {
                    return Err(Error::Kernel(format!(
                        "pid {pid}: read {got} of {n} bytes of memory at {:#x}: the task's memory changed while frozen",
                        piece.first().map_or(0, |r| r.0)
                    )));
                }
                file.write_all_at(&buf[..n], *pos).map_err(|e| io_err(path, e))?;
                *pos += n as u64;
                *fill = 0;
                piece.clear();
                Ok(())
            };
            let mut buf = vec![0u8; CHUNK as usize];
            for (mut a, mut l) in ranges {
                while l > 0 {
                    let n = l.min(CHUNK - fill);
                    piece.push((a, n));
                    fill += n;
                    a += n;
                    l -= n;
                    if fill == CHUNK {
                        flush(&mut piece, &mut fill, &mut pos, &mut buf)?;
                    }
                }
            }
            if fill > 0 {
                flush(&mut piece, &mut fill, &mut pos, &mut buf)?;
            }
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS).map(|_| s.spawn(work)).collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| Error::Internal("a memory copy thread panicked".into()))?)
    })
}

/// The pages of [start, end) that exist and are not the shared zero page: present or swapped out.
/// With `anon_only` (private file mappings), only the pages the task wrote, which became anonymous.
fn present_ranges(pagemap: &File, start: u64, end: u64, anon_only: bool, pagemap_scan: bool) -> Result<Vec<sys::PageRegion>> {
    use sys::page_is::{FILE, PFNZERO, PRESENT, SWAPPED};
    let mut out = if pagemap_scan {
        let mut scan = sys::PagemapScan {
            category_anyof_mask: PRESENT | SWAPPED,
            category_mask: PFNZERO,
            category_inverted: PFNZERO,
            return_mask: PRESENT | SWAPPED,
            ..Default::default()
        };
        if anon_only {
            scan.category_mask |= FILE;
            scan.category_inverted |= FILE;
        }
        sys::pagemap_scan_all(std::os::fd::AsFd::as_fd(pagemap), start, end, &scan, 1024)?
    } else {
        // The classic entries: the same pages, but the shared zero page cannot be told apart (it is
        // saved as a page of zeros).
        sys::pagemap_regions_fallback(pagemap, start, end, PRESENT | SWAPPED | FILE)?
            .into_iter()
            .filter(|r| r.categories & (PRESENT | SWAPPED) != 0 && !(anon_only && r.categories & FILE != 0))
            .collect()
    };
    // Regions differing only in their categories (present/swapped, file) are one run for the image.
    out.dedup_by(|b, a| {
        if a.end == b.start {
            a.end = b.end;
            true
        } else {
            false
        }
    });
    Ok(out)
}

/// Reads `ranges` (address, length) of task `pid` into `buf`, in batches of at most IOV_MAX ranges,
/// with process_vm_readv. Pages it cannot read (areas without PROT_READ hold pages too) are read through
/// `mem` (/proc/PID/mem, which may read them).
fn read_ranges(pid: i32, mem: &File, buf: &mut [u8], ranges: &[(u64, u64)]) -> Result<usize> {
    use std::os::unix::fs::FileExt;
    const IOV_MAX: usize = 1024;
    let mut done = 0usize;
    for batch in ranges.chunks(IOV_MAX) {
        let len: usize = batch.iter().map(|r| r.1 as usize).sum();
        let remote: Vec<nix::sys::uio::RemoteIoVec> = batch.iter().map(|&(a, l)| nix::sys::uio::RemoteIoVec { base: a as usize, len: l as usize }).collect();
        let mut local = [std::io::IoSliceMut::new(&mut buf[done..done + len])];
        let got = sys::process_vm_readv(nix::unistd::Pid::from_raw(pid), &mut local, &remote).unwrap_or(0);
        if got < len {
            // Find where process_vm_readv stopped and read the rest of the batch through /proc/PID/mem.
            let mut off = 0usize;
            for &(addr, l) in batch {
                let l = l as usize;
                if off + l > got {
                    let skip = got.saturating_sub(off);
                    let dst = &mut buf[done + off + skip..done + off + l];
                    mem.read_exact_at(dst, addr + skip as u64).map_err(|e| Error::Io {
                        ctx: format!("pid {pid}: reading {} bytes of memory at {:#x}", l - skip, addr + skip as u64),
                        source: e,
                    })?;
                }
                off += l;
            }
        }
        done += len;
    }
    Ok(done)
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { ctx: format!("{}", path.display()), source: e }
}

/// What the restore of an area needs besides its vma_entry: the fd of its file in the new task.
pub struct AreaFd(pub Option<i32>);

/// Maps one area in the new task, writable if `has_pages` (its pages are filled next, then
/// [`protect_area`] sets its final protection).
pub fn map_area(remote: &mut crate::compel::Remote<'_>, vma: &pb::VmaEntry, fd: AreaFd, has_pages: bool) -> Result<()> {
    let len = vma.end - vma.start;
    let prot = vma.prot as i32;
    let map_prot = if has_pages { prot | libc::PROT_WRITE | libc::PROT_READ } else { prot };
    let mut flags = (vma.flags as i32) | libc::MAP_FIXED;
    let (mfd, off) = if vma.status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
        let fd = fd.0.ok_or_else(|| Error::Internal(format!("area {:#x}-{:#x}: no file to map", vma.start, vma.end)))?;
        (fd, vma.pgoff)
    } else {
        flags |= libc::MAP_ANONYMOUS;
        (-1, 0)
    };
    let got = remote.mmap_raw(vma.start, len, map_prot, flags, mfd, off)?;
    if got != vma.start as i64 {
        return Err(Error::Kernel(format!(
            "mapping area {:#x}-{:#x} (prot {:#x}, flags {:#x}) in the new task failed: {}",
            vma.start, vma.end, prot, flags, errno_str(got)
        )));
    }
    Ok(())
}

/// Gives a mapped and filled area its final protection and madvise flags.
pub fn protect_area(remote: &mut crate::compel::Remote<'_>, vma: &pb::VmaEntry, had_pages: bool) -> Result<()> {
    let len = vma.end - vma.start;
    let prot = vma.prot as i32;
    if had_pages && prot != prot | libc::PROT_WRITE | libc::PROT_READ {
        remote.mprotect(vma.start, len, prot)?;
    }
    if let Some(madv) = vma.madv {
        for (_, advice) in MADVICE {
            if madv & (1u64 << advice) != 0 {
                remote.madvise(vma.start, len, advice)?;
            }
        }
    }
    Ok(())
}

/// Below this, one copier is enough.
const PARALLEL_FILL_MIN: u64 = 32 << 20;

/// Fills the pages of the new task `pid` (its areas mapped writable) from the pages file, opened as
/// `pages_fd` in the task and as `pages` in rcr. Two copiers run at once: the task itself reads the first
/// half into its memory (pread64, one copy, its pages allocated in bulk first where the kernel has
/// MADV_POPULATE_WRITE: `populate`), while a thread of rcr copies the second half in with
/// process_vm_writev through a cache-sized buffer.
pub fn fill_pages(remote: &mut crate::compel::Remote<'_>, pid: i32, runs: &[PageRun], pages_fd: i32, pages: &File, populate: bool) -> Result<()> {
    let total: u64 = runs.iter().map(|r| r.len).sum();
    if total < PARALLEL_FILL_MIN {
        return fill_in_task(remote, runs, pages_fd, populate);
    }
    // Split at half the bytes, a page boundary.
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    let mut acc = 0u64;
    let half = (total / 2) / PAGE_SIZE * PAGE_SIZE;
    for r in runs {
        if acc >= half {
            theirs.push(*r);
        } else if acc + r.len <= half {
            mine.push(*r);
        } else {
            let cut = half - acc;
            mine.push(PageRun { addr: r.addr, len: cut, file_off: r.file_off });
            theirs.push(PageRun { addr: r.addr + cut, len: r.len - cut, file_off: r.file_off + cut });
        }
        acc += r.len;
    }
    std::thread::scope(|s| {
        let worker = s.spawn(|| write_into_task(pid, pages, &theirs));
        let here = fill_in_task(remote, &mine, pages_fd, populate);
        let there = worker.join().map_err(|_| Error::Internal("the page copy thread panicked".into()))?;
        here.and(there)
    })
}

/// The task reads `runs` from the pages file into its own memory.
fn fill_in_task(remote: &mut crate::compel::Remote<'_>, runs: &[PageRun], pages_fd: i32, populate: bool) -> Result<()> {
    for r in runs {
        // Allocate the run's pages in one call instead of one fault per page during the copy
        // (MADV_POPULATE_WRITE, Linux 5.14; without it the copy faults them in).
        if populate {
            remote.madvise_raw(r.addr, r.len, 23 /* MADV_POPULATE_WRITE */)?;
        }
        let mut done = 0u64;
        while done < r.len {
            let n = remote.pread64_raw(pages_fd, r.addr + done, r.len - done, r.file_off + done)?;
            if n <= 0 {
                return Err(Error::Kernel(format!(
                    "reading {} bytes of pages into {:#x} in the new task failed: {}",
                    r.len - done, r.addr + done, if n == 0 { "the pages image is truncated".to_string() } else { errno_str(n) }
                )));
            }
            done += n as u64;
        }
    }
    Ok(())
}

/// rcr writes `runs` from the pages file into the task's memory.
fn write_into_task(pid: i32, pages: &File, runs: &[PageRun]) -> Result<()> {
    let mut buf = vec![0u8; CHUNK as usize];
    for r in runs {
        let mut done = 0u64;
        while done < r.len {
            let n = (r.len - done).min(CHUNK) as usize;
            pages.read_exact_at(&mut buf[..n], r.file_off + done).map_err(|e| Error::Io {
                ctx: format!("reading {n} bytes of the pages image at {} (truncated image?)", r.file_off + done),
                source: e,
            })?;
            let wrote = sys::write_remote(nix::unistd::Pid::from_raw(pid), r.addr + done, &buf[..n])?;
            if wrote != n {
                return Err(Error::Kernel(format!("wrote {wrote} of {n} bytes of pages at {:#x}", r.addr + done)).at_task(pid, ""));
            }
            done += n as u64;
        }
    }
    Ok(())
}

/// "ENOMEM (12)" for a negative syscall return.
pub fn errno_str(ret: i64) -> String {
    let e = (-ret) as i32;
    format!("{} (errno {e})", std::io::Error::from_raw_os_error(e))
}

/// Splits the page runs by area: the runs inside [start, end), clipped. `runs` is address-ordered.
pub fn runs_in(runs: &[PageRun], start: u64, end: u64) -> Vec<PageRun> {
    runs.iter()
        .filter(|r| r.addr < end && r.addr + r.len > start)
        .map(|r| {
            let s = r.addr.max(start);
            let e = (r.addr + r.len).min(end);
            PageRun { addr: s, len: e - s, file_off: r.file_off + (s - r.addr) }
        })
        .collect()
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The classic-pagemap fallback (a kernel without PAGEMAP_SCAN) finds the pages PAGEMAP_SCAN finds.
    #[test]
    fn pagemap_fallback_finds_the_same_pages() {
        let m = sys::AnonMapping::new(16).unwrap();
        let ps = sys::page_size() as usize;
        for page in [0usize, 1, 2, 5, 9, 10, 15] {
            assert!(m.write(page * ps + 7, 0xa5));
        }
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        let (start, end) = (m.addr(), m.addr() + m.len() as u64);
        let spans = |v: Vec<sys::PageRegion>| v.into_iter().map(|r| (r.start, r.end)).collect::<Vec<_>>();
        let scan = spans(present_ranges(&pagemap, start, end, false, true).unwrap());
        let classic = spans(present_ranges(&pagemap, start, end, false, false).unwrap());
        let p = |i: u64| start + i * ps as u64;
        assert_eq!(scan, vec![(p(0), p(3)), (p(5), p(6)), (p(9), p(11)), (p(15), p(16))]);
        assert_eq!(classic, scan);
    }

    #[test]
    fn runs_are_clipped_to_areas() {
        let runs = [PageRun { addr: 0x1000, len: 0x3000, file_off: 0 }, PageRun { addr: 0x8000, len: 0x1000, file_off: 0x3000 }];
        let r = runs_in(&runs, 0x2000, 0x9000);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].addr, r[0].len, r[0].file_off), (0x2000, 0x2000, 0x1000));
        assert_eq!((r[1].addr, r[1].len, r[1].file_off), (0x8000, 0x1000, 0x3000));
        assert!(runs_in(&runs, 0x5000, 0x8000).is_empty());
    }
}
