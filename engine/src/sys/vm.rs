//! process_vm_readv / process_vm_writev (via nix) plus single-buffer helpers.

use std::io::{IoSlice, IoSliceMut};

use nix::sys::uio::RemoteIoVec;
use nix::unistd::Pid;

use super::{err, Result};

/// process_vm_readv(2): copies from `remote` ranges of `pid` into `local` buffers.
/// Returns bytes copied (may be short if a remote range is partly unmapped).
pub fn process_vm_readv(
    pid: Pid,
    local: &mut [IoSliceMut<'_>],
    remote: &[RemoteIoVec],
) -> Result<usize> {
    nix::sys::uio::process_vm_readv(pid, local, remote).map_err(err(
        "process_vm_readv",
        format!("pid {pid}, {} remote ranges", remote.len()),
    ))
}

/// process_vm_writev(2): copies `local` buffers into `remote` ranges of `pid`.
pub fn process_vm_writev(pid: Pid, local: &[IoSlice<'_>], remote: &[RemoteIoVec]) -> Result<usize> {
    nix::sys::uio::process_vm_writev(pid, local, remote).map_err(err(
        "process_vm_writev",
        format!("pid {pid}, {} remote ranges", remote.len()),
    ))
}

/// Reads `buf.len()` bytes at `addr` of `pid`; returns bytes read.
pub fn read_remote(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<usize> {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    process_vm_readv(pid, &mut [IoSliceMut::new(buf)], &remote)
}

/// Writes `buf` at `addr` of `pid`; returns bytes written.
pub fn write_remote(pid: Pid, addr: u64, buf: &[u8]) -> Result<usize> {
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: buf.len(),
    }];
    process_vm_writev(pid, &[IoSlice::new(buf)], &remote)
}
