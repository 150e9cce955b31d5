//! CPU state of a thread: general registers and the FPU/SSE/AVX state (xsave), in CRIU's
//! `thread_info_x86` shape. Dump reads them through ptrace; restore writes them back into the new task.

use crate::compel::Tracee;
use crate::image::pb;
use crate::{Error, Result};

/// Byte offsets of the legacy (fxsave) area, fixed by the architecture.
const LEGACY_SIZE: usize = 512;
const XSTATE_BV_OFF: usize = 512;

/// Syscall-restart return codes a task interrupted inside a system call shows in rax.
const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;

/// xsave components after the legacy area and header that CRIU's image names, with the number of 32-bit
/// or 64-bit words CRIU stores for each.
#[derive(Clone, Copy)]
enum Comp {
    Ymmh = 2,
    BndRegs = 3,
    BndCsr = 4,
    Opmask = 5,
    ZmmUpper = 6,
    Hi16Zmm = 7,
    Pkru = 9,
}

const COMPS: [Comp; 7] = [Comp::Ymmh, Comp::BndRegs, Comp::BndCsr, Comp::Opmask, Comp::ZmmUpper, Comp::Hi16Zmm, Comp::Pkru];

/// (offset, size) of xsave component `c` in the standard (non-compacted) format ptrace uses.
fn comp_layout(c: Comp) -> (usize, usize) {
    // CPUID leaf 0xD sub-leaf c reports the component's size (eax) and offset (ebx).
    let r = std::arch::x86_64::__cpuid_count(0xD, c as u32);
    (r.ebx as usize, r.eax as usize)
}

fn words32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn words64(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

fn le16(b: &[u8], off: usize) -> u32 {
    u16::from_le_bytes([b[off], b[off + 1]]) as u32
}
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Converts the ptrace user_regs_struct into CRIU's message.
pub fn regs_to_pb(r: &libc::user_regs_struct) -> pb::UserX86RegsEntry {
    pb::UserX86RegsEntry {
        r15: r.r15, r14: r.r14, r13: r.r13, r12: r.r12, bp: r.rbp, bx: r.rbx, r11: r.r11, r10: r.r10,
        r9: r.r9, r8: r.r8, ax: r.rax, cx: r.rcx, dx: r.rdx, si: r.rsi, di: r.rdi, orig_ax: r.orig_rax,
        ip: r.rip, cs: r.cs, flags: r.eflags, sp: r.rsp, ss: r.ss, fs_base: r.fs_base, gs_base: r.gs_base,
        ds: r.ds, es: r.es, fs: r.fs, gs: r.gs,
        mode: Some(pb::UserX86RegsMode::Native as i32),
    }
}

/// Converts CRIU's message back into a user_regs_struct.
pub fn regs_from_pb(p: &pb::UserX86RegsEntry) -> libc::user_regs_struct {
    libc::user_regs_struct {
        r15: p.r15, r14: p.r14, r13: p.r13, r12: p.r12, rbp: p.bp, rbx: p.bx, r11: p.r11, r10: p.r10,
        r9: p.r9, r8: p.r8, rax: p.ax, rcx: p.cx, rdx: p.dx, rsi: p.si, rdi: p.di, orig_rax: p.orig_ax,
        rip: p.ip, cs: p.cs, eflags: p.flags, rsp: p.sp, ss: p.ss, fs_base: p.fs_base, gs_base: p.gs_base,
        ds: p.ds, es: p.es, fs: p.fs, gs: p.gs,
    }
}

/// A task stopped inside an interruptible system call shows `orig_rax = nr` and `rax = -ERESTART*`; the
/// kernel would restart the call when the task resumes. The restored task resumes from a clean state, so
/// do what the kernel would do: back up to the `syscall` instruction (2 bytes) with rax = nr. As CRIU does,
/// a call that needs its restart block (nanosleep's remaining time) returns -EINTR instead.
pub fn fixup_syscall_restart(r: &mut libc::user_regs_struct) {
    if (r.orig_rax as i64) < 0 {
        return;
    }
    match r.rax as i64 {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
            r.rax = r.orig_rax;
            r.rip -= 2;
        }
        ERESTART_RESTARTBLOCK => r.rax = (-libc::EINTR) as u64,
        _ => {}
    }
    r.orig_rax = u64::MAX;
}

/// Splits a standard-format xsave buffer (as PTRACE_GETREGSET NT_X86_XSTATE returns it) into CRIU's
/// fpregs message.
pub fn xsave_to_pb(buf: &[u8]) -> Result<pb::UserX86FpregsEntry> {
    if buf.len() < LEGACY_SIZE + 64 {
        return Err(Error::corrupt(format!("xsave area of {} bytes is too short", buf.len())));
    }
    let xstate_bv = le64(buf, XSTATE_BV_OFF);
    let mut xs = pb::UserX86XsaveEntry { xstate_bv, ..Default::default() };
    for c in COMPS {
        let (off, size) = comp_layout(c);
        if size == 0 || off + size > buf.len() {
            continue;
        }
        let b = &buf[off..off + size];
        match c {
            Comp::Ymmh => xs.ymmh_space = words32(b),
            Comp::BndRegs => xs.bndreg_state = words64(b),
            Comp::BndCsr => xs.bndcsr_state = words64(b),
            Comp::Opmask => xs.opmask_reg = words64(b),
            Comp::ZmmUpper => xs.zmm_upper = words64(b),
            Comp::Hi16Zmm => xs.hi16_zmm = words64(b),
            Comp::Pkru => xs.pkru = words32(b),
        }
    }
    Ok(pb::UserX86FpregsEntry {
        cwd: le16(buf, 0),
        swd: le16(buf, 2),
        twd: le16(buf, 4),
        fop: le16(buf, 6),
        rip: le64(buf, 8),
        rdp: le64(buf, 16),
        mxcsr: le32(buf, 24),
        mxcsr_mask: le32(buf, 28),
        st_space: words32(&buf[32..160]),
        xmm_space: words32(&buf[160..416]),
        padding: words32(&buf[416..512]),
        xsave: Some(xs),
    })
}

fn put_words32(buf: &mut [u8], off: usize, words: &[u32]) {
    for (i, w) in words.iter().enumerate() {
        let at = off + i * 4;
        if at + 4 <= buf.len() {
            buf[at..at + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
}
fn put_words64(buf: &mut [u8], off: usize, words: &[u64]) {
    for (i, w) in words.iter().enumerate() {
        let at = off + i * 8;
        if at + 8 <= buf.len() {
            buf[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// Writes CRIU's fpregs message over `buf`, a standard-format xsave buffer of this CPU (read from the new
/// task, so its size and software-reserved bytes are this kernel's). Components this CPU lacks are an error.
pub fn xsave_from_pb(fp: &pb::UserX86FpregsEntry, buf: &mut [u8]) -> Result<()> {
    if buf.len() < LEGACY_SIZE + 64 {
        return Err(Error::corrupt(format!("xsave area of {} bytes is too short", buf.len())));
    }
    buf[0..2].copy_from_slice(&(fp.cwd as u16).to_le_bytes());
    buf[2..4].copy_from_slice(&(fp.swd as u16).to_le_bytes());
    buf[4..6].copy_from_slice(&(fp.twd as u16).to_le_bytes());
    buf[6..8].copy_from_slice(&(fp.fop as u16).to_le_bytes());
    buf[8..16].copy_from_slice(&fp.rip.to_le_bytes());
    buf[16..24].copy_from_slice(&fp.rdp.to_le_bytes());
    buf[24..28].copy_from_slice(&fp.mxcsr.to_le_bytes());
    buf[28..32].copy_from_slice(&fp.mxcsr_mask.to_le_bytes());
    put_words32(buf, 32, &fp.st_space[..fp.st_space.len().min(32)]);
    put_words32(buf, 160, &fp.xmm_space[..fp.xmm_space.len().min(64)]);
    let Some(xs) = &fp.xsave else {
        // Only the legacy area was saved: mark just x87 and SSE state present.
        buf[XSTATE_BV_OFF..XSTATE_BV_OFF + 8].copy_from_slice(&3u64.to_le_bytes());
        return Ok(());
    };
    for c in COMPS {
        let bit = 1u64 << (c as u32);
        if xs.xstate_bv & bit == 0 {
            continue;
        }
        let (off, size) = comp_layout(c);
        if size == 0 || off + size > buf.len() {
            return Err(Error::not_supported(format!(
                "the checkpoint has xsave component {} (xstate_bv {:#x}) that this CPU does not support",
                c as u32, xs.xstate_bv
            )));
        }
        match c {
            Comp::Ymmh => put_words32(buf, off, &xs.ymmh_space),
            Comp::BndRegs => put_words64(buf, off, &xs.bndreg_state),
            Comp::BndCsr => put_words64(buf, off, &xs.bndcsr_state),
            Comp::Opmask => put_words64(buf, off, &xs.opmask_reg),
            Comp::ZmmUpper => put_words64(buf, off, &xs.zmm_upper),
            Comp::Hi16Zmm => put_words64(buf, off, &xs.hi16_zmm),
            Comp::Pkru => put_words32(buf, off, &xs.pkru),
        }
    }
    buf[XSTATE_BV_OFF..XSTATE_BV_OFF + 8].copy_from_slice(&xs.xstate_bv.to_le_bytes());
    Ok(())
}

/// Reads a stopped thread's CPU state. Syscall restart is fixed up in the image (see
/// [`fixup_syscall_restart`]); the live task keeps its own registers.
pub fn dump(t: &Tracee, clear_tid_addr: u64) -> Result<pb::ThreadInfoX86> {
    let mut regs = t.regs()?;
    fixup_syscall_restart(&mut regs);
    let xsave = t.xstate()?;
    Ok(pb::ThreadInfoX86 {
        clear_tid_addr,
        gpregs: regs_to_pb(&regs),
        fpregs: xsave_to_pb(&xsave)?,
        tls: Vec::new(),
    })
}

/// Loads the CPU state into a stopped thread of the restored task.
pub fn restore(t: &Tracee, ti: &pb::ThreadInfoX86) -> Result<()> {
    let mut buf = t.xstate()?;
    xsave_from_pb(&ti.fpregs, &mut buf)?;
    t.set_xstate(&buf)?;
    t.set_regs(&regs_from_pb(&ti.gpregs))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_fixup_backs_up_to_the_syscall() {
        let mut r: libc::user_regs_struct = crate::sys::zeroed();
        r.orig_rax = 35; // nanosleep
        r.rax = ERESTARTSYS as u64;
        r.rip = 0x1002;
        fixup_syscall_restart(&mut r);
        assert_eq!((r.rax, r.rip, r.orig_rax), (35, 0x1000, u64::MAX));
        r.orig_rax = 35;
        r.rax = ERESTART_RESTARTBLOCK as u64;
        r.rip = 0x1002;
        fixup_syscall_restart(&mut r);
        assert_eq!((r.rax as i64, r.rip), (-(libc::EINTR as i64), 0x1002));
        r.orig_rax = u64::MAX;
        r.rax = 7;
        fixup_syscall_restart(&mut r);
        assert_eq!(r.rax, 7);
    }

    #[test]
    fn xsave_round_trips() {
        let (ymm_off, ymm_size) = comp_layout(Comp::Ymmh);
        let len = (ymm_off + ymm_size).max(1024);
        let mut buf: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        buf[XSTATE_BV_OFF..XSTATE_BV_OFF + 8].copy_from_slice(&7u64.to_le_bytes());
        let fp = xsave_to_pb(&buf).unwrap();
        let mut out = vec![0u8; len];
        out[416..512].copy_from_slice(&buf[416..512]);
        xsave_from_pb(&fp, &mut out).unwrap();
        assert_eq!(&out[..416], &buf[..416]);
        assert_eq!(&out[512..520], &buf[512..520]);
        assert_eq!(&out[ymm_off..ymm_off + ymm_size], &buf[ymm_off..ymm_off + ymm_size]);
    }
}
