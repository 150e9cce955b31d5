//! File calls the kinds need where nix 0.29 has no wrapper that hands back an `OwnedFd` or the raw
//! numbers: open by path and by handle, F_DUPFD_CLOEXEC above a floor, FIEMAP, inotify (nix's
//! `WatchDescriptor` hides the wd number restore must match), fanotify and timerfd (nix's types
//! cannot be turned into an `OwnedFd`), signalfd with the kernel's 64-bit mask (nix's `SigSet`
//! cannot hold the real-time signals) and TFD_IOC_SET_TICKS.
//!
//! They return `std::io::Result`: the kinds put the error into messages of their own, as before.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A raw return value of a call that gives a new fd, as an owned fd or the errno.
fn new_fd(r: i64) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A raw 0-or-negative return value as a result.
fn done(r: i64) -> io::Result<()> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// open(2) of `path` with exactly `flags` (add O_CLOEXEC yourself) and mode 0.
pub fn open(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string; the mode is an integer.
    new_fd(unsafe { libc::open(path.as_ptr(), flags, 0) } as i64)
}

/// open_by_handle_at(2): the file of handle `handle` (its bytes) of type `ty`, on the mount of `mount`.
pub fn open_by_handle_at(mount: BorrowedFd<'_>, ty: i32, handle: &[u8], flags: i32) -> io::Result<OwnedFd> {
    // struct file_handle: handle_bytes, handle_type, then the bytes.
    let mut fh = Vec::with_capacity(8 + handle.len());
    fh.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
    fh.extend_from_slice(&ty.to_ne_bytes());
    fh.extend_from_slice(handle);
    // SAFETY: `fh` is a live struct file_handle of the size it declares; the kernel only reads it.
    new_fd(unsafe { libc::syscall(libc::SYS_open_by_handle_at, mount.as_raw_fd(), fh.as_ptr(), flags) })
}

/// fcntl(F_DUPFD_CLOEXEC): a copy of `fd` numbered `min` or higher.
pub fn dup_above(fd: BorrowedFd<'_>, min: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the kernel returns a new fd.
    new_fd(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) } as i64)
}

/// One extent of a FIEMAP answer (struct fiemap_extent).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FiemapExtent {
    pub fe_logical: u64,
    pub fe_physical: u64,
    pub fe_length: u64,
    pub fe_reserved64: [u64; 2],
    pub fe_flags: u32,
    pub fe_reserved: [u32; 3],
}

/// struct fiemap followed by room for `N` extents.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Fiemap<const N: usize> {
    pub fm_start: u64,
    pub fm_length: u64,
    pub fm_flags: u32,
    pub fm_mapped_extents: u32,
    pub fm_extent_count: u32,
    pub fm_reserved: u32,
    pub fm_extents: [FiemapExtent; N],
}

impl<const N: usize> Fiemap<N> {
    /// A request for the extents of `[start, start + length)` with `flags`, room for `N` of them.
    pub fn new(start: u64, length: u64, flags: u32) -> Self {
        Fiemap {
            fm_start: start,
            fm_length: length,
            fm_flags: flags,
            fm_mapped_extents: 0,
            fm_extent_count: N as u32,
            fm_reserved: 0,
            fm_extents: [FiemapExtent::default(); N],
        }
    }
}

const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;

/// ioctl(FS_IOC_FIEMAP): fills `m` with the extents the kernel maps (at most `N`).
pub fn fiemap<const N: usize>(fd: BorrowedFd<'_>, m: &mut Fiemap<N>) -> io::Result<()> {
    // fm_extent_count must not promise more room than there is.
    m.fm_extent_count = m.fm_extent_count.min(N as u32);
    // SAFETY: `m` is a struct fiemap followed by room for fm_extent_count extents, as the ioctl expects.
    done(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FIEMAP, m as *mut Fiemap<N>) } as i64)
}

/// inotify_init1(2).
pub fn inotify_init1(flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer argument only.
    new_fd(unsafe { libc::inotify_init1(flags) } as i64)
}

/// inotify_add_watch(2): the watch descriptor.
pub fn inotify_add_watch(fd: BorrowedFd<'_>, path: &CStr, mask: u32) -> io::Result<i32> {
    // SAFETY: `path` is a valid C string; the other arguments are integers.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) };
    done(wd as i64).map(|()| wd)
}

/// inotify_rm_watch(2).
pub fn inotify_rm_watch(fd: BorrowedFd<'_>, wd: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    done(unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), wd) } as i64)
}

/// fanotify_init(2).
pub fn fanotify_init(flags: u32, event_flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    new_fd(unsafe { libc::fanotify_init(flags, event_flags) } as i64)
}

/// fanotify_mark(2) on `path` (relative to the current directory).
pub fn fanotify_mark(fd: BorrowedFd<'_>, flags: u32, mask: u64, path: &CStr) -> io::Result<()> {
    // SAFETY: `path` is a valid C string; the other arguments are integers.
    done(unsafe { libc::fanotify_mark(fd.as_raw_fd(), flags, mask, libc::AT_FDCWD, path.as_ptr()) } as i64)
}

/// signalfd4(2) of a new signalfd for the kernel's 64-bit signal `mask` (bit n-1 for signal n).
pub fn signalfd(mask: u64, flags: i32) -> io::Result<OwnedFd> {
    // The kernel's sigset is 64 bits on x86-64; libc's sigset_t is larger, so the raw call.
    // SAFETY: signalfd4 reads 8 bytes from a live u64.
    new_fd(unsafe { libc::syscall(libc::SYS_signalfd4, -1, &mask as *const u64, 8usize, flags) })
}

/// timerfd_create(2).
pub fn timerfd_create(clock: i32, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    new_fd(unsafe { libc::timerfd_create(clock, flags) } as i64)
}

/// timerfd_gettime(2).
pub fn timerfd_gettime(fd: BorrowedFd<'_>) -> io::Result<libc::itimerspec> {
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut cur = libc::itimerspec { it_interval: zero, it_value: zero };
    // SAFETY: `cur` is a live itimerspec the kernel writes.
    done(unsafe { libc::timerfd_gettime(fd.as_raw_fd(), &mut cur) } as i64)?;
    Ok(cur)
}

/// timerfd_settime(2), not asking for the old value.
pub fn timerfd_settime(fd: BorrowedFd<'_>, flags: i32, spec: &libc::itimerspec) -> io::Result<()> {
    // SAFETY: `spec` is a live itimerspec the kernel reads; no old value is asked for.
    done(unsafe { libc::timerfd_settime(fd.as_raw_fd(), flags, spec, std::ptr::null_mut()) } as i64)
}

/// _IOW('T', 0, u64) (uapi linux/timerfd.h).
const TFD_IOC_SET_TICKS: libc::c_ulong = 0x4008_5400;

/// ioctl(TFD_IOC_SET_TICKS): sets the count of unread expirations (CONFIG_CHECKPOINT_RESTORE).
pub fn timerfd_set_ticks(fd: BorrowedFd<'_>, ticks: u64) -> io::Result<()> {
    // SAFETY: TFD_IOC_SET_TICKS reads one u64 from a live variable.
    done(unsafe { libc::ioctl(fd.as_raw_fd(), TFD_IOC_SET_TICKS, &ticks as *const u64) } as i64)
}
