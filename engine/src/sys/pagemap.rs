//! PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+), and a fallback reader of the
//! classic 8-byte pagemap entries for older kernels.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use linux_raw_sys::general::{page_region, pm_scan_arg};

use super::{err, page_size, Errno, Result, SysError};

/// Page category bits (uapi linux/fs.h PAGE_IS_*), used in masks and in
/// [`PageRegion::categories`].
pub mod page_is {
    pub const WPALLOWED: u64 = 1 << 0;
    pub const WRITTEN: u64 = 1 << 1;
    pub const FILE: u64 = 1 << 2;
    pub const PRESENT: u64 = 1 << 3;
    pub const SWAPPED: u64 = 1 << 4;
    pub const PFNZERO: u64 = 1 << 5;
    pub const HUGE: u64 = 1 << 6;
    pub const SOFT_DIRTY: u64 = 1 << 7;
    /// Guard region (MADV_GUARD_INSTALL), Linux 6.14+.
    pub const GUARD: u64 = 1 << 8;
}

/// Write-protect the matched pages while scanning (needs uffd async WP registration).
pub const PM_SCAN_WP_MATCHING: u64 = linux_raw_sys::general::PM_SCAN_WP_MATCHING as u64;
/// Abort with EPERM if a range is not registered for async uffd WP.
pub const PM_SCAN_CHECK_WPASYNC: u64 = linux_raw_sys::general::PM_SCAN_CHECK_WPASYNC as u64;

/// _IOWR('f', 16, struct pm_scan_arg); computed here because neither libc nor
/// linux-raw-sys exports it: dir RW (3) << 30 | size << 16 | 'f' << 8 | 16.
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<pm_scan_arg>() as u64) << 16) | (0x66 << 8) | 16;
const _: () = assert!(std::mem::size_of::<pm_scan_arg>() == 96 && PAGEMAP_SCAN == 0xC060_6610);

/// A run of pages with the same categories (struct page_region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    /// PAGE_IS_* bits, filtered by the scan's return mask.
    pub categories: u64,
}

/// Scan parameters (the filter fields of struct pm_scan_arg). A page is reported when
/// `((categories ^ category_inverted) & category_mask) == category_mask` and (if non-zero)
/// `(categories ^ category_inverted) & category_anyof_mask != 0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PagemapScan {
    /// PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC.
    pub flags: u64,
    pub category_inverted: u64,
    pub category_mask: u64,
    pub category_anyof_mask: u64,
    pub return_mask: u64,
    /// Stop after this many matching pages (0: no limit).
    pub max_pages: u64,
}

/// One PAGEMAP_SCAN ioctl over [start, end). Fills `out` (cleared first) with at most
/// `max(out.capacity(), 1)` regions and returns the address where the walk stopped: `end`
/// if the whole range was walked, less if `out` filled up or `max_pages` was reached.
pub fn pagemap_scan(
    pagemap: BorrowedFd<'_>,
    start: u64,
    end: u64,
    scan: &PagemapScan,
    out: &mut Vec<PageRegion>,
) -> Result<u64> {
    out.clear();
    let cap = out.capacity().max(1);
    let mut buf = vec![
        page_region {
            start: 0,
            end: 0,
            categories: 0
        };
        cap
    ];
    let mut arg = pm_scan_arg {
        size: std::mem::size_of::<pm_scan_arg>() as u64,
        flags: scan.flags,
        start,
        end,
        walk_end: 0,
        vec: buf.as_mut_ptr() as u64,
        vec_len: cap as u64,
        max_pages: scan.max_pages,
        category_inverted: scan.category_inverted,
        category_mask: scan.category_mask,
        category_anyof_mask: scan.category_anyof_mask,
        return_mask: scan.return_mask,
    };
    let ctx = || format!("fd {}, {start:#x}-{end:#x}", pagemap.as_raw_fd());
    // SAFETY: `arg` is a correctly sized pm_scan_arg; `vec` points to `cap` writable
    // page_region entries that outlive the call.
    let r = unsafe {
        libc::ioctl(
            pagemap.as_raw_fd(),
            PAGEMAP_SCAN as libc::Ioctl,
            &mut arg as *mut pm_scan_arg,
        )
    };
    let n = Errno::result(r).map_err(err("ioctl(PAGEMAP_SCAN)", ctx()))? as usize;
    if n > cap {
        return Err(SysError::Unexpected {
            call: "ioctl(PAGEMAP_SCAN)",
            ctx: ctx(),
            msg: format!("{n} regions > {cap}"),
        });
    }
    out.extend(buf[..n].iter().map(|r| PageRegion {
        start: r.start,
        end: r.end,
        categories: r.categories,
    }));
    Ok(arg.walk_end)
}

/// Scans all of [start, end) in rounds of at most `batch` regions, merging regions split
/// across rounds. `scan.max_pages` applies per round, so leave it 0 here.
pub fn pagemap_scan_all(
    pagemap: BorrowedFd<'_>,
    start: u64,
    end: u64,
    scan: &PagemapScan,
    batch: usize,
) -> Result<Vec<PageRegion>> {
    let mut all: Vec<PageRegion> = Vec::new();
    let mut round = Vec::with_capacity(batch.max(1));
    let mut pos = start;
    while pos < end {
        let walked = pagemap_scan(pagemap, pos, end, scan, &mut round)?;
        for r in round.drain(..) {
            match all.last_mut() {
                Some(l) if l.end == r.start && l.categories == r.categories => l.end = r.end,
                _ => all.push(r),
            }
        }
        if walked <= pos {
            return Err(SysError::Unexpected {
                call: "ioctl(PAGEMAP_SCAN)",
                ctx: format!("{pos:#x}-{end:#x}"),
                msg: format!("walk did not advance (walk_end {walked:#x})"),
            });
        }
        pos = walked;
    }
    Ok(all)
}

/// One classic /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    pub fn present(self) -> bool {
        self.0 & (1 << 63) != 0
    }
    pub fn swapped(self) -> bool {
        self.0 & (1 << 62) != 0
    }
    /// File-backed page or shared anonymous page.
    pub fn file_or_shared(self) -> bool {
        self.0 & (1 << 61) != 0
    }
    pub fn uffd_wp(self) -> bool {
        self.0 & (1 << 57) != 0
    }
    pub fn exclusive(self) -> bool {
        self.0 & (1 << 56) != 0
    }
    pub fn soft_dirty(self) -> bool {
        self.0 & (1 << 55) != 0
    }
    /// Page frame number (0 unless the reader has CAP_SYS_ADMIN).
    pub fn pfn(self) -> u64 {
        self.0 & ((1 << 55) - 1)
    }
}

/// Reads the pagemap entries of the pages in [start, end) (fallback for kernels without
/// PAGEMAP_SCAN).
pub fn pagemap_read_entries(pagemap: &File, start: u64, end: u64) -> Result<Vec<PagemapEntry>> {
    let ps = page_size();
    let pages = (end.saturating_sub(start) / ps) as usize;
    let mut bytes = vec![0u8; pages * 8];
    pagemap
        .read_exact_at(&mut bytes, start / ps * 8)
        .map_err(|e| SysError::Call {
            call: "pread(pagemap)",
            ctx: format!("{start:#x}-{end:#x}"),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            PagemapEntry(u64::from_ne_bytes(w))
        })
        .collect())
}

/// Fallback for PAGEMAP_SCAN: regions of [start, end) with PRESENT / SWAPPED / FILE /
/// SOFT_DIRTY categories (masked by `return_mask`) built from the classic entries; only
/// pages with at least one category in `return_mask` are reported.
pub fn pagemap_regions_fallback(
    pagemap: &File,
    start: u64,
    end: u64,
    return_mask: u64,
) -> Result<Vec<PageRegion>> {
    let ps = page_size();
    let mut out: Vec<PageRegion> = Vec::new();
    for (i, e) in pagemap_read_entries(pagemap, start, end)?
        .into_iter()
        .enumerate()
    {
        let mut c = 0;
        if e.present() {
            c |= page_is::PRESENT;
        }
        if e.swapped() {
            c |= page_is::SWAPPED;
        }
        if e.file_or_shared() {
            c |= page_is::FILE;
        }
        if e.soft_dirty() {
            c |= page_is::SOFT_DIRTY;
        }
        c &= return_mask;
        if c == 0 {
            continue;
        }
        let a = start + i as u64 * ps;
        match out.last_mut() {
            Some(l) if l.end == a && l.categories == c => l.end = a + ps,
            _ => out.push(PageRegion {
                start: a,
                end: a + ps,
                categories: c,
            }),
        }
    }
    Ok(out)
}
