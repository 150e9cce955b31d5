//! Thin wrappers over `ptrace(2)`, `waitpid(2)` and `tgkill(2)`.
//!
//! Hand-written rather than nix's `ptrace` module because nix takes signals as `Signal`
//! (which cannot carry real-time signals, and whose `waitpid` fails on a real-time stop
//! signal after having consumed the status) and does not cover PEEKSIGINFO, GETSIGMASK,
//! SECCOMP_GET_FILTER, GET_RSEQ_CONFIGURATION or arbitrary regsets. Every function here is
//! one system call; the logic lives in the callers.

use libc::{c_long, c_uint, c_void, pid_t};
use nix::errno::Errno;

/// `NT_X86_XSTATE` from `<elf.h>` (not exported by the libc crate).
pub const NT_X86_XSTATE: c_uint = 0x202;
/// `PTRACE_SECCOMP_GET_FILTER` from `<linux/ptrace.h>`.
pub const PTRACE_SECCOMP_GET_FILTER: c_uint = 0x420c;
/// `PTRACE_SECCOMP_GET_METADATA` from `<linux/ptrace.h>`.
pub const PTRACE_SECCOMP_GET_METADATA: c_uint = 0x420d;
/// Size of one raw `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// A ptrace request whose `addr` and `data` are plain integers (no memory is passed).
pub fn ptrace_plain(req: c_uint, tid: pid_t, addr: u64, data: u64) -> Result<c_long, Errno> {
    // SAFETY: for the requests callers use here (SEIZE, INTERRUPT, CONT, DETACH, SETOPTIONS,
    // POKEDATA) addr and data are integers interpreted by the kernel; no memory of ours is
    // read or written.
    check(unsafe { libc::ptrace(req, tid, addr as *mut c_void, data as *mut c_void) })
}

/// PTRACE_PEEKDATA: one word of the tracee's memory.
pub fn peek(tid: pid_t, addr: u64) -> Result<u64, Errno> {
    Errno::clear();
    // SAFETY: PEEKDATA returns the word as the result; data is unused.
    let ret = unsafe {
        libc::ptrace(
            libc::PTRACE_PEEKDATA,
            tid,
            addr as *mut c_void,
            std::ptr::null_mut::<c_void>(),
        )
    };
    if ret == -1 && Errno::last_raw() != 0 {
        return Err(Errno::last());
    }
    Ok(ret as u64)
}

/// PTRACE_GETREGS.
pub fn get_regs(tid: pid_t) -> Result<libc::user_regs_struct, Errno> {
    let mut regs = std::mem::MaybeUninit::<libc::user_regs_struct>::zeroed();
    // SAFETY: the kernel writes a full user_regs_struct into `regs`, which is large enough.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<c_void>(),
            regs.as_mut_ptr(),
        )
    })?;
    // SAFETY: zero-initialised and then filled by the kernel; all-integer struct.
    Ok(unsafe { regs.assume_init() })
}

/// PTRACE_SETREGS.
pub fn set_regs(tid: pid_t, regs: &libc::user_regs_struct) -> Result<(), Errno> {
    // SAFETY: the kernel only reads a user_regs_struct from `regs`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            tid,
            std::ptr::null_mut::<c_void>(),
            regs as *const libc::user_regs_struct,
        )
    })
    .map(drop)
}

/// PTRACE_GETREGSET into `buf`; returns how many bytes the kernel filled.
pub fn get_regset(tid: pid_t, note: c_uint, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most iov_len bytes into buf and updates iov_len.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            note as usize as *mut c_void,
            &mut iov,
        )
    })?;
    Ok(iov.iov_len)
}

/// PTRACE_SETREGSET from `buf`.
pub fn set_regset(tid: pid_t, note: c_uint, buf: &[u8]) -> Result<(), Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: for SETREGSET the kernel only reads iov_len bytes from buf.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            tid,
            note as usize as *mut c_void,
            &mut iov,
        )
    })
    .map(drop)
}

/// PTRACE_GETSIGMASK.
pub fn get_sigmask(tid: pid_t) -> Result<u64, Errno> {
    let mut mask: u64 = 0;
    // SAFETY: addr is sizeof(sigset) = 8; the kernel writes 8 bytes into `mask`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGMASK,
            tid,
            8usize as *mut c_void,
            &mut mask as *mut u64,
        )
    })?;
    Ok(mask)
}

/// PTRACE_SETSIGMASK.
pub fn set_sigmask(tid: pid_t, mask: u64) -> Result<(), Errno> {
    // SAFETY: addr is sizeof(sigset) = 8; the kernel reads 8 bytes from `mask`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_SETSIGMASK,
            tid,
            8usize as *mut c_void,
            &mask as *const u64,
        )
    })
    .map(drop)
}

/// PTRACE_PEEKSIGINFO: copies up to `buf.len() / 128` siginfos starting at `off`.
/// Returns how many were copied (0 at the end of the queue).
pub fn peek_siginfo(
    tid: pid_t,
    off: u64,
    shared: bool,
    buf: &mut [[u8; SIGINFO_SIZE]],
) -> Result<usize, Errno> {
    let args = libc::ptrace_peeksiginfo_args {
        off,
        flags: if shared {
            libc::PTRACE_PEEKSIGINFO_SHARED
        } else {
            0
        },
        nr: i32::try_from(buf.len()).unwrap_or(i32::MAX),
    };
    // SAFETY: the kernel reads `args` and writes at most args.nr siginfos (128 bytes each)
    // into buf, which holds buf.len() of them.
    let n = check(unsafe {
        libc::ptrace(
            libc::PTRACE_PEEKSIGINFO,
            tid,
            &args as *const libc::ptrace_peeksiginfo_args,
            buf.as_mut_ptr(),
        )
    })?;
    Ok(n as usize)
}

/// PTRACE_GETSIGINFO: the siginfo of the signal a task in signal-delivery-stop is about to get.
pub fn get_siginfo(tid: pid_t) -> Result<[u8; SIGINFO_SIZE], Errno> {
    let mut info = [0u8; SIGINFO_SIZE];
    // SAFETY: the kernel writes one siginfo_t (128 bytes) into `info`, which holds exactly that.
    check(unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, tid, std::ptr::null_mut::<c_void>(), info.as_mut_ptr()) })?;
    Ok(info)
}

/// PTRACE_GET_RSEQ_CONFIGURATION: (abi pointer, abi size, signature, flags).
pub fn rseq_config(tid: pid_t) -> Result<(u64, u32, u32, u32), Errno> {
    let mut conf = [0u8; 24];
    // SAFETY: addr is the size of our buffer (24 = sizeof(struct ptrace_rseq_configuration));
    // the kernel writes at most that many bytes into it.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GET_RSEQ_CONFIGURATION,
            tid,
            conf.len() as *mut c_void,
            conf.as_mut_ptr(),
        )
    })?;
    let u32_at = |o: usize| u32::from_le_bytes([conf[o], conf[o + 1], conf[o + 2], conf[o + 3]]);
    let mut ptr = [0u8; 8];
    ptr.copy_from_slice(&conf[..8]);
    Ok((u64::from_le_bytes(ptr), u32_at(8), u32_at(12), u32_at(16)))
}

/// PTRACE_SECCOMP_GET_FILTER: with `buf` = None returns the instruction count of filter
/// `index`; with a buffer of 8-byte `sock_filter`s fills it.
pub fn seccomp_get_filter(tid: pid_t, index: u64, buf: Option<&mut [u64]>) -> Result<usize, Errno> {
    let data: *mut u64 = match buf {
        Some(b) => b.as_mut_ptr(),
        None => std::ptr::null_mut(),
    };
    // SAFETY: with a null data pointer the kernel only returns the count; otherwise the
    // caller sized buf from that count, and the kernel writes count * 8 bytes.
    let n =
        check(unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index as *mut c_void, data) })?;
    Ok(n as usize)
}

/// PTRACE_SECCOMP_GET_METADATA: the flags of filter `index`.
pub fn seccomp_get_metadata(tid: pid_t, index: u64) -> Result<u64, Errno> {
    let mut md: [u64; 2] = [index, 0];
    // SAFETY: addr is sizeof(struct seccomp_metadata) = 16; the kernel reads filter_off from
    // md[0] and writes the struct back into md.
    check(unsafe {
        libc::ptrace(
            PTRACE_SECCOMP_GET_METADATA,
            tid,
            16usize as *mut c_void,
            md.as_mut_ptr(),
        )
    })?;
    Ok(md[1])
}

/// PTRACE_GETFPREGS.
pub fn get_fpregs(tid: pid_t) -> Result<libc::user_fpregs_struct, Errno> {
    let mut fp = std::mem::MaybeUninit::<libc::user_fpregs_struct>::zeroed();
    // SAFETY: the kernel writes a full user_fpregs_struct into `fp`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETFPREGS,
            tid,
            std::ptr::null_mut::<c_void>(),
            fp.as_mut_ptr(),
        )
    })?;
    // SAFETY: zero-initialised, then filled by the kernel; all-integer struct.
    Ok(unsafe { fp.assume_init() })
}

/// PTRACE_SETFPREGS.
pub fn set_fpregs(tid: pid_t, fp: &libc::user_fpregs_struct) -> Result<(), Errno> {
    // SAFETY: the kernel only reads a user_fpregs_struct from `fp`.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_SETFPREGS,
            tid,
            std::ptr::null_mut::<c_void>(),
            fp as *const libc::user_fpregs_struct,
        )
    })
    .map(drop)
}

/// `waitpid(tid, __WALL | WNOHANG)`: Some(raw status) or None while nothing is reported.
pub fn wait_nohang(tid: pid_t) -> Result<Option<i32>, Errno> {
    let mut status: i32 = 0;
    // SAFETY: the kernel writes an int into `status`.
    let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

/// `tgkill(tgid, tid, sig)`.
pub fn tgkill(tgid: pid_t, tid: pid_t, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    check(c_long::from(unsafe { libc::tgkill(tgid, tid, sig) })).map(drop)
}
