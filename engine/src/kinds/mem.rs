//! Memory areas (VMAs) and their pages.
//!
//! Dump: /proc/PID/smaps gives the areas; PAGEMAP_SCAN finds the pages that exist (present or swapped,
//! not the shared zero page; for private file mappings only the pages the task wrote, which are
//! anonymous); process_vm_readv copies them into `pages-1.img`, listed by `pagemap-PID.img`.
//! Restore: inside the new task (remote syscalls) every area is mapped at its address and the pages are
//! read straight from the pages image into it with pread64, one copy.

use crate::image::{pb, ImgWriter, Kind};
use crate::proc::Vma;
use crate::{sys, Error, Result};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const PAGE_SIZE: u64 = 4096;

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

/// pagemap_entry flag: the pages of this range are in the pages image.
pub const PE_PRESENT: u32 = 1 << 2;

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
    Vdso,
    Vvar,
    Vsyscall,
}

/// Classifies an area; areas rcr cannot handle are an error naming them.
pub fn classify(pid: i32, v: &Vma) -> Result<AreaKind> {
    let path = v.path.as_deref().unwrap_or("");
    let name = || format!("pid {pid}: memory area {:#x}-{:#x} {}", v.start, v.end, path);
    Ok(match path {
        "[vdso]" => AreaKind::Vdso,
        "[vvar]" | "[vvar_vclock]" => AreaKind::Vvar,
        "[vsyscall]" => AreaKind::Vsyscall,
        _ if v.vm_flags.contains("io") || v.vm_flags.contains("pf") => {
            return Err(Error::Msg(format!("{}: device memory (VM_IO/PFNMAP) needs a plugin; none claimed it", name())))
        }
        _ if v.inode == 0 => {
            if v.shared { AreaKind::AnonShared } else { AreaKind::AnonPrivate }
        }
        // MAP_SHARED|MAP_ANONYMOUS memory is a shmem file that /proc shows as "/dev/zero (deleted)".
        "/dev/zero" if v.deleted && v.shared => AreaKind::AnonShared,
        _ if path.starts_with("/SYSV") => {
            return Err(Error::Msg(format!("{}: System V shared memory is not supported yet", name())))
        }
        _ if v.deleted => {
            return Err(Error::Msg(format!(
                "{}: the mapped file was deleted (or is a memfd); deleted mappings are not supported yet",
                name()
            )))
        }
        _ if !path.starts_with('/') => {
            return Err(Error::Msg(format!("{}: unknown special mapping", name())))
        }
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
        AreaKind::Vdso => { status |= VMA_AREA_VDSO | VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::Vvar => { status |= VMA_AREA_VVAR | VMA_ANON_PRIVATE; flags |= libc::MAP_ANONYMOUS; }
        AreaKind::Vsyscall => status = VMA_AREA_VSYSCALL,
    }
    if v.path.as_deref() == Some("[stack]") { status |= VMA_AREA_STACK; }
    if v.path.as_deref() == Some("[heap]") { status |= VMA_AREA_HEAP; }
    if v.vm_flags.contains("gd") { flags |= libc::MAP_GROWSDOWN; }
    let madv = MADVICE.iter().filter(|(f, _)| v.vm_flags.contains(f)).fold(0u64, |m, (_, a)| m | (1u64 << a));
    pb::VmaEntry {
        start: v.start,
        end: v.end,
        pgoff: if matches!(kind, AreaKind::FilePrivate | AreaKind::FileShared) { v.pgoff } else { 0 },
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
    matches!(kind, AreaKind::AnonPrivate | AreaKind::AnonShared | AreaKind::FilePrivate)
}

/// Counters of one memory dump.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemStats {
    pub pages_scanned: u64,
    pub pages_written: u64,
}

/// Writes the pages of `areas` (address-ordered) of task `pid` to `pages-<pages_id>.img` and the
/// pagemap to `pagemap-<pid>.img`. Memory is copied through a bounded buffer: rcr never holds more than
/// [`COPY_CHUNK`] bytes of the task's memory.
pub fn dump_pages(dir: &Path, pid: i32, pages_id: u32, areas: &[(pb::VmaEntry, AreaKind)]) -> Result<MemStats> {
    let pagemap_path = dir.join(format!("pagemap-{pid}.img"));
    let mut pagemap = ImgWriter::create(&pagemap_path, Kind::Pagemap)?;
    pagemap.write_entry(&pb::PagemapHead { pages_id })?;
    let pages_path = dir.join(format!("pages-{pages_id}.img"));
    let pages = File::create(&pages_path).map_err(|e| io_err(&pages_path, e))?;
    let scan = std::fs::File::open(format!("/proc/{pid}/pagemap")).map_err(|e| Error::Io { ctx: format!("opening /proc/{pid}/pagemap"), source: e })?;
    let mut stats = MemStats::default();
    let mut copier = Copier::new(pid, pages, &pages_path)?;
    for (vma, kind) in areas {
        if !dumps_pages(*kind) {
            continue;
        }
        stats.pages_scanned += (vma.end - vma.start) / PAGE_SIZE;
        let want_anon_only = *kind == AreaKind::FilePrivate;
        for r in present_ranges(&scan, vma.start, vma.end, want_anon_only)? {
            let nr = (r.end - r.start) / PAGE_SIZE;
            pagemap.write_entry(&pb::PagemapEntry {
                vaddr: r.start,
                nr_pages: nr as u32,
                in_parent: None,
                flags: Some(PE_PRESENT),
                ..Default::default()
            })?;
            copier.copy(r.start, r.end - r.start)?;
            stats.pages_written += nr;
        }
    }
    copier.finish()?;
    pagemap.finish()?;
    Ok(stats)
}

/// The pages of [start, end) that exist and are not the shared zero page: present or swapped out.
/// With `anon_only` (private file mappings), only the pages the task wrote, which became anonymous.
fn present_ranges(pagemap: &File, start: u64, end: u64, anon_only: bool) -> Result<Vec<sys::PageRegion>> {
    use sys::page_is::{FILE, PFNZERO, PRESENT, SWAPPED};
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
    let mut out = sys::pagemap_scan_all(std::os::fd::AsFd::as_fd(pagemap), start, end, &scan, 1024)?;
    // Regions differing only in present/swapped are one run for the image.
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

/// Bytes of memory copied per process_vm_readv call and write.
pub const COPY_CHUNK: usize = 8 << 20;
/// Buffers of [`COPY_CHUNK`] bytes in flight: rcr's memory use while dumping is bounded by their sum.
const POOL: usize = 3;

/// Copies ranges of the task's memory into the pages file through a fixed pool of [`POOL`] buffers: a
/// second thread writes one while the next is read, so reading and writing overlap, and no buffer is
/// allocated after the start (fresh buffers would cost a page fault per page).
struct Copier<'a> {
    pid: i32,
    reading: std::time::Duration,
    mem: File,
    path: &'a Path,
    buf: Vec<u8>,
    fill: usize,
    pending: Vec<(u64, u64)>,
    tx: Option<std::sync::mpsc::SyncSender<(Vec<u8>, usize)>>,
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    writer: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl<'a> Copier<'a> {
    fn new(pid: i32, mut file: File, path: &'a Path) -> Result<Self> {
        let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| Error::Io { ctx: format!("opening /proc/{pid}/mem"), source: e })?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(POOL);
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Vec<u8>>(POOL);
        for _ in 1..POOL {
            let _ = back_tx.send(vec![0u8; COPY_CHUNK]);
        }
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            let mut busy = std::time::Duration::ZERO;
            for (buf, len) in rx {
                let t = std::time::Instant::now();
                file.write_all(&buf[..len])?;
                busy += t.elapsed();
                // The pool holds POOL buffers and the channel as many: this never blocks.
                let _ = back_tx.try_send(buf);
            }
            tracing::debug!("pages writer: {:.1} ms writing", busy.as_secs_f64() * 1e3);
            file.flush()
        });
        Ok(Copier { pid, reading: std::time::Duration::ZERO, mem, path, buf: vec![0u8; COPY_CHUNK], fill: 0, pending: Vec::new(), tx: Some(tx), back, writer: Some(writer) })
    }

    fn copy(&mut self, mut addr: u64, mut len: u64) -> Result<()> {
        while len > 0 {
            let room = (COPY_CHUNK - self.fill) as u64;
            let n = len.min(room);
            self.pending.push((addr, n));
            self.fill += n as usize;
            addr += n;
            len -= n;
            if self.fill == COPY_CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let t = std::time::Instant::now();
        let got = read_ranges(self.pid, &self.mem, &mut self.buf[..self.fill], &self.pending)?;
        self.reading += t.elapsed();
        if got != self.fill {
            return Err(Error::Msg(format!(
                "pid {}: read {} of {} bytes of memory at {:#x}: the task's memory changed while frozen",
                self.pid, got, self.fill, self.pending[0].0
            )));
        }
        let stopped = |c: &mut Self| c.join_writer().and(Err(Error::Msg(format!("writing {} stopped", c.path.display()))));
        let Ok(next) = self.back.recv() else { return stopped(self) };
        let full = std::mem::replace(&mut self.buf, next);
        if let Some(tx) = &self.tx {
            if tx.send((full, self.fill)).is_err() {
                return stopped(self);
            }
        }
        self.fill = 0;
        self.pending.clear();
        Ok(())
    }

    fn join_writer(&mut self) -> Result<()> {
        self.tx = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => Err(io_err(self.path, e)),
            Some(Err(_)) => Err(Error::Msg(format!("the writer of {} panicked", self.path.display()))),
            _ => Ok(()),
        }
    }

    fn finish(mut self) -> Result<()> {
        self.flush()?;
        tracing::debug!("pages reader: {:.1} ms reading memory", self.reading.as_secs_f64() * 1e3);
        self.join_writer()
    }
}

impl Drop for Copier<'_> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Reads the pagemap of task `pid` back: the present ranges with their offsets in the pages file.
pub fn read_pagemap(dir: &Path, pid: i32) -> Result<(u32, Vec<PageRun>)> {
    let path = dir.join(format!("pagemap-{pid}.img"));
    let mut r = crate::image::ImgReader::open(&path, Kind::Pagemap)?;
    let head: pb::PagemapHead = r
        .read_entry()?
        .ok_or_else(|| Error::Msg(format!("{}: no pagemap_head entry", path.display())))?;
    let mut runs = Vec::new();
    let mut off = 0u64;
    while let Some(e) = r.read_entry::<pb::PagemapEntry>()? {
        let nr = e.nr_pages_u64.unwrap_or(e.nr_pages as u64);
        if e.flags.unwrap_or(PE_PRESENT) & PE_PRESENT == 0 {
            continue;
        }
        let len = nr.checked_mul(PAGE_SIZE).ok_or_else(|| Error::Msg(format!("{}: page count {nr} overflows", path.display())))?;
        runs.push(PageRun { addr: e.vaddr, len, file_off: off });
        off += len;
    }
    Ok((head.pages_id, runs))
}

/// A run of pages: `len` bytes at `addr`, stored at `file_off` in the pages file.
#[derive(Debug, Clone, Copy)]
pub struct PageRun {
    pub addr: u64,
    pub len: u64,
    pub file_off: u64,
}

/// What the restore of an area needs besides its vma_entry: the fd of its file in the new task.
pub struct AreaFd(pub Option<i32>);

/// Maps one area in the new task and fills its pages from the pages file (`pages_fd` in the task).
pub fn restore_area(remote: &mut crate::compel::Remote<'_>, vma: &pb::VmaEntry, fd: AreaFd, runs: &[PageRun], pages_fd: i32) -> Result<()> {
    let len = vma.end - vma.start;
    let prot = vma.prot as i32;
    let has_pages = !runs.is_empty();
    let map_prot = if has_pages { prot | libc::PROT_WRITE | libc::PROT_READ } else { prot };
    let mut flags = (vma.flags as i32) | libc::MAP_FIXED;
    let (mfd, off) = if vma.status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) != 0 {
        let fd = fd.0.ok_or_else(|| Error::Msg(format!("area {:#x}-{:#x}: no file to map", vma.start, vma.end)))?;
        (fd as i64, vma.pgoff)
    } else {
        flags |= libc::MAP_ANONYMOUS;
        (-1, 0)
    };
    let got = remote.syscall(libc::SYS_mmap, &[vma.start, len, map_prot as u64, flags as u64, mfd as u64, off])?;
    if got != vma.start as i64 {
        return Err(Error::Msg(format!(
            "mapping area {:#x}-{:#x} (prot {:#x}, flags {:#x}) in the new task failed: {}",
            vma.start, vma.end, prot, flags, errno_str(got)
        )));
    }
    for r in runs {
        // Allocate the run's pages in one call instead of one fault per page during the copy
        // (MADV_POPULATE_WRITE, Linux 5.14; older kernels refuse it and the copy faults them in).
        remote.syscall(libc::SYS_madvise, &[r.addr, r.len, 23 /* MADV_POPULATE_WRITE */])?;
        let mut done = 0u64;
        while done < r.len {
            let n = remote.syscall(libc::SYS_pread64, &[pages_fd as u64, r.addr + done, r.len - done, r.file_off + done])?;
            if n <= 0 {
                return Err(Error::Msg(format!(
                    "reading {} bytes of pages into {:#x} in the new task failed: {}",
                    r.len - done, r.addr + done, if n == 0 { "the pages image is truncated".to_string() } else { errno_str(n) }
                )));
            }
            done += n as u64;
        }
    }
    if map_prot != prot {
        remote.syscall_ok(libc::SYS_mprotect, &[vma.start, len, prot as u64])?;
    }
    if let Some(madv) = vma.madv {
        for (_, advice) in MADVICE {
            if madv & (1u64 << advice) != 0 {
                remote.syscall_ok(libc::SYS_madvise, &[vma.start, len, advice as u64])?;
            }
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

/// Keeps `File` use explicit for the fd the pages file has in rcr.
pub fn raw(f: &File) -> i32 {
    f.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

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
