//! [`AnonMapping`]: an owned anonymous private mapping with volatile byte access, for
//! probes and tests that must control exactly which pages get touched (a `Vec` may reuse
//! already-touched heap memory or be backed by transparent huge pages).

use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags};

use super::{err, page_size, Result, SysError};

/// An anonymous, private, read-write mapping (MADV_NOHUGEPAGE), unmapped on drop.
#[derive(Debug)]
pub struct AnonMapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access is through volatile
// byte reads/writes that are bounds-checked, so sharing across threads is sound.
unsafe impl Send for AnonMapping {}
// SAFETY: see above; concurrent volatile byte accesses are data races only in the sense
// of racing values, never of memory safety (bytes have no invalid values).
unsafe impl Sync for AnonMapping {}

impl AnonMapping {
    /// Maps `pages` fresh (untouched) pages.
    pub fn new(pages: usize) -> Result<Self> {
        let len = pages.max(1) * page_size() as usize;
        let nz = NonZeroUsize::new(len).ok_or_else(|| SysError::Unexpected {
            call: "mmap",
            ctx: format!("{pages} pages"),
            msg: "zero length".into(),
        })?;
        // SAFETY: a new anonymous mapping at a kernel-chosen address aliases nothing.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(err("mmap", format!("{len} bytes anonymous")))?;
        let m = AnonMapping { ptr, len };
        // SAFETY: the range is exactly our own mapping.
        unsafe { nix::sys::mman::madvise(ptr, len, MmapAdvise::MADV_NOHUGEPAGE) }
            .map_err(err("madvise", "MADV_NOHUGEPAGE"))?;
        Ok(m)
    }

    /// Start address.
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (at least one page is mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address of page `i`.
    pub fn page_addr(&self, i: usize) -> u64 {
        self.addr() + (i as u64) * page_size()
    }

    /// Volatile read of the byte at `off` (faults the page in); None if out of range.
    pub fn read(&self, off: usize) -> Option<u8> {
        if off >= self.len {
            return None;
        }
        // SAFETY: off < len, so the byte lies inside our live read-write mapping.
        Some(unsafe { self.ptr.as_ptr().cast::<u8>().add(off).read_volatile() })
    }

    /// Volatile write of `v` at `off`; false if out of range.
    pub fn write(&self, off: usize, v: u8) -> bool {
        if off >= self.len {
            return false;
        }
        // SAFETY: off < len, so the byte lies inside our live read-write mapping.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(off).write_volatile(v) };
        true
    }
}

impl Drop for AnonMapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns; no references into it remain.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}
