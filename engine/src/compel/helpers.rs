//! Typed remote system calls built on [`Remote::syscall`], and the x86_64 kernel structs
//! they exchange (with pure little-endian (de)serialisers).

use super::error::{CompelError, Result};
use super::remote::{Remote, HELPER_STRUCT_OFF};

/// `struct kernel_sigaction` on x86_64 (what rt_sigaction(2) really takes; sigsetsize 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

impl KernelSigaction {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.handler);
        put_u64(&mut b, 8, self.flags);
        put_u64(&mut b, 16, self.restorer);
        put_u64(&mut b, 24, self.mask);
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        KernelSigaction {
            handler: u64_at(b, 0),
            flags: u64_at(b, 8),
            restorer: u64_at(b, 16),
            mask: u64_at(b, 24),
        }
    }
}

/// `struct timeval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}

/// `struct itimerval`: reload interval and time left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Itimerval {
    pub interval: Timeval,
    pub value: Timeval,
}

impl Itimerval {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.interval.sec as u64);
        put_u64(&mut b, 8, self.interval.usec as u64);
        put_u64(&mut b, 16, self.value.sec as u64);
        put_u64(&mut b, 24, self.value.usec as u64);
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        Itimerval {
            interval: Timeval {
                sec: u64_at(b, 0) as i64,
                usec: u64_at(b, 8) as i64,
            },
            value: Timeval {
                sec: u64_at(b, 16) as i64,
                usec: u64_at(b, 24) as i64,
            },
        }
    }
}

/// `stack_t` (sigaltstack): `{ void *ss_sp; int ss_flags; size_t ss_size; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackT {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

impl StackT {
    pub const SIZE: usize = 24;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u64(&mut b, 0, self.sp);
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        put_u64(&mut b, 16, self.size);
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        StackT {
            sp: u64_at(b, 0),
            flags: i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            size: u64_at(b, 16),
        }
    }
}

impl Remote<'_> {
    fn get_struct<const N: usize>(
        &mut self,
        nr: i64,
        args: impl Fn(u64) -> Vec<u64>,
    ) -> Result<[u8; N]> {
        let buf = self.helper()? + HELPER_STRUCT_OFF;
        self.syscall_ok(nr, &args(buf))?;
        let mut out = [0u8; N];
        self.read_scratch(buf, &mut out)?;
        Ok(out)
    }

    fn put_struct(&mut self, nr: i64, data: &[u8], args: impl Fn(u64) -> Vec<u64>) -> Result<u64> {
        let buf = self.helper()? + HELPER_STRUCT_OFF;
        self.write_scratch(buf, data)?;
        self.syscall_ok(nr, &args(buf))
    }

    /// The disposition of signal `sig`.
    pub fn rt_sigaction_get(&mut self, sig: i32) -> Result<KernelSigaction> {
        let b = self.get_struct(libc::SYS_rt_sigaction, |buf| vec![sig as u64, 0, buf, 8])?;
        Ok(KernelSigaction::from_bytes(&b))
    }

    /// Sets the disposition of signal `sig`.
    pub fn rt_sigaction_set(&mut self, sig: i32, act: &KernelSigaction) -> Result<()> {
        self.put_struct(libc::SYS_rt_sigaction, &act.to_bytes(), |buf| {
            vec![sig as u64, buf, 0, 8]
        })
        .map(drop)
    }

    /// Interval timer `which` (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF).
    pub fn getitimer(&mut self, which: i32) -> Result<Itimerval> {
        let b = self.get_struct(libc::SYS_getitimer, |buf| vec![which as u64, buf])?;
        Ok(Itimerval::from_bytes(&b))
    }

    /// Arms interval timer `which`.
    pub fn setitimer(&mut self, which: i32, val: &Itimerval) -> Result<()> {
        self.put_struct(libc::SYS_setitimer, &val.to_bytes(), |buf| {
            vec![which as u64, buf, 0]
        })
        .map(drop)
    }

    /// The alternate signal stack.
    pub fn sigaltstack_get(&mut self) -> Result<StackT> {
        let b = self.get_struct(libc::SYS_sigaltstack, |buf| vec![0, buf])?;
        Ok(StackT::from_bytes(&b))
    }

    /// Sets the alternate signal stack.
    pub fn sigaltstack_set(&mut self, st: &StackT) -> Result<()> {
        self.put_struct(libc::SYS_sigaltstack, &st.to_bytes(), |buf| vec![buf, 0])
            .map(drop)
    }

    /// Raw prctl(2): returns rax (negative errno on failure).
    pub fn prctl(&mut self, option: i32, args: &[u64]) -> Result<i64> {
        let mut a = vec![option as u64];
        a.extend_from_slice(&args[..args.len().min(4)]);
        self.syscall(libc::SYS_prctl, &a)
    }

    /// The clear_child_tid address (PR_GET_TID_ADDRESS).
    pub fn get_tid_address(&mut self) -> Result<u64> {
        let b = self.get_struct::<8>(libc::SYS_prctl, |buf| {
            vec![libc::PR_GET_TID_ADDRESS as u64, buf]
        })?;
        Ok(u64::from_le_bytes(b))
    }

    /// mmap(2); returns the address.
    pub fn mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: i32,
        flags: i32,
        fd: i32,
        off: u64,
    ) -> Result<u64> {
        self.syscall_ok(
            libc::SYS_mmap,
            &[addr, len, prot as u64, flags as u64, fd as i64 as u64, off],
        )
    }

    /// munmap(2).
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<()> {
        self.syscall_ok(libc::SYS_munmap, &[addr, len]).map(drop)
    }

    /// mprotect(2).
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: i32) -> Result<()> {
        self.syscall_ok(libc::SYS_mprotect, &[addr, len, prot as u64])
            .map(drop)
    }

    /// madvise(2).
    pub fn madvise(&mut self, addr: u64, len: u64, advice: i32) -> Result<()> {
        self.syscall_ok(libc::SYS_madvise, &[addr, len, advice as u64])
            .map(drop)
    }

    /// pread64(2) into task memory at `buf`; returns the byte count.
    pub fn pread64(&mut self, fd: i32, buf: u64, count: u64, off: u64) -> Result<u64> {
        self.syscall_ok(libc::SYS_pread64, &[fd as u64, buf, count, off])
    }

    /// close(2).
    pub fn close(&mut self, fd: i32) -> Result<()> {
        self.syscall_ok(libc::SYS_close, &[fd as u64]).map(drop)
    }

    /// dup2(2); returns the new descriptor.
    pub fn dup2(&mut self, old: i32, new: i32) -> Result<i32> {
        self.syscall_ok(libc::SYS_dup2, &[old as u64, new as u64])
            .map(|fd| fd as i32)
    }

    /// openat(AT_FDCWD, path, flags, mode) with the path copied into scratch; returns the fd.
    pub fn open(&mut self, path: &str, flags: i32, mode: u32) -> Result<i32> {
        let tid = self.tracee().tid();
        if path.len() as u64 >= HELPER_STRUCT_OFF || path.contains('\0') {
            return Err(CompelError::Invalid {
                tid,
                what: format!("path {path:?} too long or contains NUL"),
            });
        }
        let buf = self.helper()?;
        let mut bytes = path.as_bytes().to_vec();
        bytes.push(0);
        self.write_scratch(buf, &bytes)?;
        let fd = self.syscall_ok(
            libc::SYS_openat,
            &[
                libc::AT_FDCWD as i64 as u64,
                buf,
                flags as u64,
                u64::from(mode),
            ],
        )?;
        Ok(fd as i32)
    }
}

/// Typed calls of the restore and the task attributes: each names its system call, so callers do not
/// write syscall numbers; the `_raw` ones return rax (-errno) where the caller tells errors apart.
impl Remote<'_> {
    /// prctl(2), a -errno return an error.
    pub fn prctl_ok(&mut self, option: i32, args: &[u64]) -> Result<u64> {
        let mut a = vec![option as u64];
        a.extend_from_slice(&args[..args.len().min(4)]);
        self.syscall_ok(libc::SYS_prctl, &a)
    }

    /// A prctl that writes an int through its second argument (PR_GET_PDEATHSIG, PR_GET_CHILD_SUBREAPER).
    pub fn prctl_get_int(&mut self, option: i32) -> Result<u32> {
        let b = self.get_struct::<4>(libc::SYS_prctl, |buf| vec![option as u64, buf])?;
        Ok(u32::from_le_bytes(b))
    }

    /// PR_SET_NAME: the calling thread's name.
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        let addr = self.scratch_cstr(name)?;
        self.prctl_ok(libc::PR_SET_NAME, &[addr]).map(drop)
    }

    /// `s` NUL-terminated in scratch memory; its address.
    pub fn scratch_cstr(&mut self, s: &str) -> Result<u64> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.scratch_put(&v)
    }

    /// clone3(2) with `set_tid` = [`tid`] (struct clone_args of CLONE_ARGS_SIZE_VER2, 88 bytes); returns
    /// rax: the new id, or -errno.
    pub fn clone3_set_tid_raw(&mut self, flags: u64, exit_signal: u64, tid: i32) -> Result<i64> {
        let set_tid = self.scratch_put(&(tid as u64).to_le_bytes())?;
        let fields = [flags, 0, 0, 0, exit_signal, 0, 0, 0, set_tid, 1, 0];
        let args: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
        let addr = self.scratch_put(&args)?;
        self.syscall(libc::SYS_clone3, &[addr, args.len() as u64])
    }

    /// mmap(2) returning rax (the address or -errno), for callers that check the address themselves.
    pub fn mmap_raw(&mut self, addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> Result<i64> {
        self.syscall(libc::SYS_mmap, &[addr, len, prot as u64, flags as u64, fd as i64 as u64, off])
    }

    /// madvise(2) returning rax, for advice an older kernel may refuse.
    pub fn madvise_raw(&mut self, addr: u64, len: u64, advice: i32) -> Result<i64> {
        self.syscall(libc::SYS_madvise, &[addr, len, advice as u64])
    }

    /// pread64(2) returning rax (bytes read, or -errno).
    pub fn pread64_raw(&mut self, fd: i32, buf: u64, count: u64, off: u64) -> Result<i64> {
        self.syscall(libc::SYS_pread64, &[fd as u64, buf, count, off])
    }

    /// arch_prctl(2) returning rax.
    pub fn arch_prctl_raw(&mut self, code: u64, addr: u64) -> Result<i64> {
        self.syscall(libc::SYS_arch_prctl, &[code, addr])
    }

    /// brk(2); brk(0) is the current break.
    pub fn brk(&mut self, addr: u64) -> Result<u64> {
        self.syscall_ok(libc::SYS_brk, &[addr])
    }

    /// setsid(2).
    pub fn setsid(&mut self) -> Result<()> {
        self.syscall_ok(libc::SYS_setsid, &[]).map(drop)
    }

    /// setpgid(2).
    pub fn setpgid(&mut self, pid: i32, pgid: i32) -> Result<()> {
        self.syscall_ok(libc::SYS_setpgid, &[pid as u64, pgid as u64]).map(drop)
    }

    /// fchdir(2).
    pub fn fchdir(&mut self, fd: i32) -> Result<()> {
        self.syscall_ok(libc::SYS_fchdir, &[fd as u64]).map(drop)
    }

    /// chroot(2) with the path copied into scratch.
    pub fn chroot(&mut self, path: &str) -> Result<()> {
        let addr = self.scratch_cstr(path)?;
        self.syscall_ok(libc::SYS_chroot, &[addr]).map(drop)
    }

    /// umask(2) (it cannot fail).
    pub fn umask(&mut self, mask: u32) -> Result<()> {
        self.syscall(libc::SYS_umask, &[mask as u64]).map(drop)
    }

    /// personality(2).
    pub fn personality(&mut self, persona: u32) -> Result<()> {
        self.syscall_ok(libc::SYS_personality, &[persona as u64]).map(drop)
    }

    /// set_tid_address(2): the clear_child_tid address.
    pub fn set_tid_address(&mut self, addr: u64) -> Result<()> {
        self.syscall_ok(libc::SYS_set_tid_address, &[addr]).map(drop)
    }

    /// set_robust_list(2).
    pub fn set_robust_list(&mut self, head: u64, len: u64) -> Result<()> {
        self.syscall_ok(libc::SYS_set_robust_list, &[head, len]).map(drop)
    }

    /// rseq(2): registers (flags 0) or unregisters (flags 1, RSEQ_FLAG_UNREGISTER) the rseq area.
    pub fn rseq(&mut self, area: u64, len: u32, flags: u32, sig: u32) -> Result<()> {
        self.syscall_ok(libc::SYS_rseq, &[area, len as u64, flags as u64, sig as u64]).map(drop)
    }

    /// prlimit64(2) on the task itself: sets resource `res` to (cur, max) when `new` is given, returns
    /// the old (cur, max).
    pub fn prlimit(&mut self, res: u32, new: Option<(u64, u64)>) -> Result<(u64, u64)> {
        // The helper buffer: no scratch allocation or write per call (a dump reads 16 limits).
        let addr = self.helper()? + HELPER_STRUCT_OFF;
        if let Some((cur, max)) = new {
            let mut b = [0u8; 16];
            put_u64(&mut b, 0, cur);
            put_u64(&mut b, 8, max);
            self.write_scratch(addr, &b)?;
        }
        let new_addr = if new.is_some() { addr } else { 0 };
        self.syscall_ok(libc::SYS_prlimit64, &[0, res as u64, new_addr, addr + 16])?;
        let mut old = [0u8; 16];
        self.read_scratch(addr + 16, &mut old)?;
        Ok((u64_at(&old, 0), u64_at(&old, 8)))
    }

    /// setgroups(2).
    pub fn setgroups(&mut self, groups: &[u32]) -> Result<()> {
        let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        let addr = if bytes.is_empty() { 0 } else { self.scratch_put(&bytes)? };
        self.syscall_ok(libc::SYS_setgroups, &[groups.len() as u64, addr]).map(drop)
    }

    /// setresuid(2).
    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<()> {
        self.syscall_ok(libc::SYS_setresuid, &[r as u64, e as u64, s as u64]).map(drop)
    }

    /// setresgid(2).
    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<()> {
        self.syscall_ok(libc::SYS_setresgid, &[r as u64, e as u64, s as u64]).map(drop)
    }

    /// setfsuid(2) (it reports no error; it returns the previous id).
    pub fn setfsuid(&mut self, id: u32) -> Result<()> {
        self.syscall(libc::SYS_setfsuid, &[id as u64]).map(drop)
    }

    /// setfsgid(2) (it reports no error; it returns the previous id).
    pub fn setfsgid(&mut self, id: u32) -> Result<()> {
        self.syscall(libc::SYS_setfsgid, &[id as u64]).map(drop)
    }

    /// capget(2) (version 3): (effective, permitted, inheritable).
    pub fn capget(&mut self) -> Result<(u64, u64, u64)> {
        let mut hdr = [0u8; 8 + 24];
        hdr[..4].copy_from_slice(&LINUX_CAPABILITY_VERSION_3.to_le_bytes());
        let addr = self.scratch_put(&hdr)?;
        self.syscall_ok(libc::SYS_capget, &[addr, addr + 8])?;
        let mut d = [0u8; 24];
        self.scratch_get(addr + 8, &mut d)?;
        let w = |i: usize| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]) as u64;
        Ok((w(0) | w(3) << 32, w(1) | w(4) << 32, w(2) | w(5) << 32))
    }

    /// capset(2) (version 3): effective, permitted, inheritable.
    pub fn capset(&mut self, eff: u64, prm: u64, inh: u64) -> Result<()> {
        let mut data = Vec::with_capacity(8 + 24);
        data.extend_from_slice(&LINUX_CAPABILITY_VERSION_3.to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        for w in 0..2 {
            for v in [eff, prm, inh] {
                data.extend_from_slice(&((v >> (32 * w)) as u32).to_le_bytes());
            }
        }
        let addr = self.scratch_put(&data)?;
        self.syscall_ok(libc::SYS_capset, &[addr, addr + 8]).map(drop)
    }

    /// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) with the BPF program `insns` (whole 8-byte
    /// instructions) copied into scratch.
    pub fn seccomp_set_filter(&mut self, flags: u64, insns: &[u8]) -> Result<()> {
        let code = self.scratch_put(insns)?;
        let mut prog = Vec::with_capacity(16);
        prog.extend_from_slice(&((insns.len() / 8) as u16).to_le_bytes());
        prog.extend_from_slice(&[0u8; 6]);
        prog.extend_from_slice(&code.to_le_bytes());
        let addr = self.scratch_put(&prog)?;
        self.syscall_ok(libc::SYS_seccomp, &[1 /* SECCOMP_SET_MODE_FILTER */, flags, addr]).map(drop)
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigaction_layout() {
        let a = KernelSigaction {
            handler: 0x1122,
            flags: 0x0400_0004,
            restorer: 0x3344,
            mask: 1 << 9,
        };
        let b = a.to_bytes();
        assert_eq!(&b[0..8], &0x1122u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x0400_0004u64.to_le_bytes());
        assert_eq!(&b[24..32], &(1u64 << 9).to_le_bytes());
        assert_eq!(KernelSigaction::from_bytes(&b), a);
    }

    #[test]
    fn itimerval_and_stack_layout() {
        let it = Itimerval {
            interval: Timeval { sec: 1, usec: 2 },
            value: Timeval { sec: 3, usec: 4 },
        };
        let b = it.to_bytes();
        assert_eq!(u64_at(&b, 16), 3);
        assert_eq!(Itimerval::from_bytes(&b), it);
        let st = StackT {
            sp: 0x7000,
            flags: libc::SS_DISABLE,
            size: 8192,
        };
        let b = st.to_bytes();
        assert_eq!(
            i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            libc::SS_DISABLE
        );
        assert_eq!(u64_at(&b, 16), 8192);
        assert_eq!(StackT::from_bytes(&b), st);
    }
}
