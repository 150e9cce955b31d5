//! The data extents of a file: where its bytes are, holes left out. Two ways to ask, as CRIU:
//! lseek(SEEK_DATA/SEEK_HOLE), and the FIEMAP ioctl (`--ghost-fiemap`), which answers a bounded number
//! of extents per call. Both give the same list: byte ranges clipped to the file size, contiguous
//! ranges merged, and preallocated but unwritten extents (which read as zeros) counted as holes.

use crate::{sys, Error, Result};
use nix::unistd::{lseek, Whence};
use std::os::fd::{AsRawFd, BorrowedFd};

/// How to find the extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SeekData,
    Fiemap,
}

/// One data extent: `len` bytes at offset `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub off: u64,
    pub len: u64,
}

/// Total data bytes of `ext`.
pub fn data_len(ext: &[Extent]) -> u64 {
    ext.iter().map(|e| e.len).sum()
}

/// The data extents of the first `size` bytes of `fd`. With [`Method::Fiemap`] on a file system without
/// FIEMAP (tmpfs), falls back to SEEK_DATA and logs it. `what` names the file in errors.
pub fn data_extents(fd: BorrowedFd<'_>, size: u64, method: Method, what: &str) -> Result<Vec<Extent>> {
    if method == Method::Fiemap {
        match fiemap(fd, size) {
            Ok((v, calls)) => {
                tracing::info!("{what}: FIEMAP found {} data extents in {calls} call(s)", v.len());
                return Ok(v);
            }
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) || e.raw_os_error() == Some(libc::ENOTTY) => {
                tracing::info!("{what}: the file system has no FIEMAP; finding its data with SEEK_DATA instead");
            }
            Err(e) => return Err(Error::Io { ctx: format!("FIEMAP on {what}"), source: e }),
        }
    }
    seek_data(fd, size).map_err(|e| Error::Io { ctx: format!("SEEK_DATA/SEEK_HOLE on {what}"), source: e })
}

fn push(out: &mut Vec<Extent>, off: u64, end: u64) {
    if end <= off {
        return;
    }
    match out.last_mut() {
        Some(l) if l.off + l.len >= off => l.len = l.len.max(end - l.off),
        _ => out.push(Extent { off, len: end - off }),
    }
}

fn seek_data(fd: BorrowedFd<'_>, size: u64) -> std::io::Result<Vec<Extent>> {
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < size {
        let data = match lseek(fd.as_raw_fd(), off as i64, Whence::SeekData) {
            Ok(d) => d,
            Err(nix::errno::Errno::ENXIO) => break, // only a hole is left
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(fd.as_raw_fd(), data, Whence::SeekHole)?;
        let end = (hole as u64).min(size);
        push(&mut out, data as u64, end);
        if end <= data as u64 {
            break;
        }
        off = end;
    }
    Ok(out)
}

const FIEMAP_FLAG_SYNC: u32 = 1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
/// Extents asked per FIEMAP call: small, so that a file with many extents takes several rounds.
const FIEMAP_BATCH: usize = 64;

/// The extents and the number of ioctl calls it took.
fn fiemap(fd: BorrowedFd<'_>, size: u64) -> std::io::Result<(Vec<Extent>, usize)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    let mut calls = 0;
    while start < size {
        calls += 1;
        let mut m = sys::Fiemap::<FIEMAP_BATCH>::new(start, size - start, FIEMAP_FLAG_SYNC);
        sys::fiemap(fd, &mut m)?;
        let n = (m.fm_mapped_extents as usize).min(FIEMAP_BATCH);
        if n == 0 {
            break;
        }
        let mut last = false;
        for e in &m.fm_extents[..n] {
            if e.fe_flags & FIEMAP_EXTENT_UNWRITTEN == 0 {
                push(&mut out, e.fe_logical.max(start), (e.fe_logical + e.fe_length).min(size));
            }
            last |= e.fe_flags & FIEMAP_EXTENT_LAST != 0;
            start = start.max(e.fe_logical + e.fe_length);
        }
        if last {
            break;
        }
    }
    Ok((out, calls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;

    #[test]
    fn both_methods_agree_on_a_sparse_file() {
        // /var/tmp: a disk file system (FIEMAP) on most systems; tmpfs falls back to SEEK_DATA.
        let dir = std::env::var_os("TMPDIR").map(std::path::PathBuf::from).unwrap_or_else(|| "/var/tmp".into());
        let path = dir.join(format!("rcr-extents-{}", std::process::id()));
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let page = vec![0xabu8; 4096];
        for i in 0..200u64 {
            f.write_all_at(&page, i * 8192).unwrap();
        }
        f.set_len(200 * 8192 + 100).unwrap();
        let a = data_extents(f.as_fd(), 200 * 8192 + 100, Method::SeekData, "test").unwrap();
        let b = data_extents(f.as_fd(), 200 * 8192 + 100, Method::Fiemap, "test").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 200);
        assert_eq!(data_len(&a), 200 * 4096);
        assert_eq!(a[1], Extent { off: 8192, len: 4096 });
    }

    #[test]
    fn merging() {
        let mut v = Vec::new();
        push(&mut v, 0, 10);
        push(&mut v, 10, 20);
        push(&mut v, 30, 30);
        push(&mut v, 40, 50);
        assert_eq!(v, [Extent { off: 0, len: 20 }, Extent { off: 40, len: 10 }]);
    }
}
