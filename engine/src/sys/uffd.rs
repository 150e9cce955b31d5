//! userfaultfd(2) and the UFFDIO_API / REGISTER / WRITEPROTECT / COPY ioctls (structs and
//! request numbers from linux-raw-sys; not in libc or nix).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_raw_sys::general as g;
use linux_raw_sys::ioctl as io;

use super::{err, Errno, Result};

/// userfaultfd(2) with `flags` (O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY). Needs
/// CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1 to catch kernel-mode faults.
pub fn userfaultfd(flags: i32) -> Result<OwnedFd> {
    // SAFETY: integer argument only.
    let r = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    let fd = Errno::result(r).map_err(err("userfaultfd", format!("flags {flags:#x}")))?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// What UFFDIO_API reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UffdApi {
    /// UFFD_FEATURE_* bits the kernel supports (all of them, not only those requested).
    pub features: u64,
    /// Bit i set: ioctl _UFFDIO_* number i is available.
    pub ioctls: u64,
}

/// UFFDIO_API handshake requesting `features`; must be the first ioctl on the fd.
pub fn uffdio_api(uffd: BorrowedFd<'_>, features: u64) -> Result<UffdApi> {
    let mut a = g::uffdio_api {
        api: g::UFFD_API as u64,
        features,
        ioctls: 0,
    };
    // SAFETY: `a` is a writable uffdio_api for the duration of the call.
    let r = unsafe {
        libc::ioctl(
            uffd.as_raw_fd(),
            io::UFFDIO_API as libc::Ioctl,
            &mut a as *mut g::uffdio_api,
        )
    };
    Errno::result(r).map_err(err("ioctl(UFFDIO_API)", format!("features {features:#x}")))?;
    Ok(UffdApi {
        features: a.features,
        ioctls: a.ioctls,
    })
}

/// UFFDIO_REGISTER [start, start+len) with `mode` (UFFDIO_REGISTER_MODE_MISSING / _WP /
/// _MINOR); returns the ioctls allowed on the range.
pub fn uffdio_register(uffd: BorrowedFd<'_>, start: u64, len: u64, mode: u64) -> Result<u64> {
    let mut a = g::uffdio_register {
        range: g::uffdio_range { start, len },
        mode,
        ioctls: 0,
    };
    // SAFETY: `a` is a writable uffdio_register for the duration of the call.
    let r = unsafe {
        libc::ioctl(
            uffd.as_raw_fd(),
            io::UFFDIO_REGISTER as libc::Ioctl,
            &mut a as *mut g::uffdio_register,
        )
    };
    Errno::result(r).map_err(err(
        "ioctl(UFFDIO_REGISTER)",
        format!("{start:#x}+{len:#x} mode {mode:#x}"),
    ))?;
    Ok(a.ioctls)
}

/// UFFDIO_WRITEPROTECT: set (`wp`) or clear write protection on a registered range.
pub fn uffdio_writeprotect(
    uffd: BorrowedFd<'_>,
    start: u64,
    len: u64,
    wp: bool,
    dontwake: bool,
) -> Result<()> {
    // UFFDIO_WRITEPROTECT_MODE_WP / _DONTWAKE (uapi linux/userfaultfd.h; missing from
    // linux-raw-sys because they are defined inside a struct comment block).
    const MODE_WP: u64 = 1 << 0;
    const MODE_DONTWAKE: u64 = 1 << 1;
    let mode = if wp { MODE_WP } else { 0 } | if dontwake { MODE_DONTWAKE } else { 0 };
    let mut a = g::uffdio_writeprotect {
        range: g::uffdio_range { start, len },
        mode,
    };
    // SAFETY: `a` is a valid uffdio_writeprotect for the duration of the call.
    let r = unsafe {
        libc::ioctl(
            uffd.as_raw_fd(),
            io::UFFDIO_WRITEPROTECT as libc::Ioctl,
            &mut a as *mut g::uffdio_writeprotect,
        )
    };
    Errno::result(r).map(drop).map_err(err(
        "ioctl(UFFDIO_WRITEPROTECT)",
        format!("{start:#x}+{len:#x} wp {wp}"),
    ))
}

/// UFFDIO_COPY: atomically copies `len` bytes from our `src` into the registered `dst`
/// range (resolving missing faults there); returns bytes copied.
///
/// `src` must be readable memory of this process of at least `len` bytes; the kernel
/// checks this (EFAULT) so the call itself cannot corrupt memory.
pub fn uffdio_copy(uffd: BorrowedFd<'_>, dst: u64, src: &[u8], mode: u64) -> Result<u64> {
    let mut a = g::uffdio_copy {
        dst,
        src: src.as_ptr() as u64,
        len: src.len() as u64,
        mode,
        copy: 0,
    };
    // SAFETY: `a` is a writable uffdio_copy; `src` is a live slice of `len` bytes.
    let r = unsafe {
        libc::ioctl(
            uffd.as_raw_fd(),
            io::UFFDIO_COPY as libc::Ioctl,
            &mut a as *mut g::uffdio_copy,
        )
    };
    Errno::result(r).map_err(err(
        "ioctl(UFFDIO_COPY)",
        format!("dst {dst:#x} len {:#x}", src.len()),
    ))?;
    Ok(a.copy as u64)
}
