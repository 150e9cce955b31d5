//! Pipes: both ends, shared between fds and processes, with the bytes in flight. The data is read
//! without consuming it (tee into a pipe of rcr's), so a failed or `-R` dump leaves it in place; restore
//! creates the pipe in rcr, with the same buffer size, writes the data back, and hands each end down.

use crate::image::{pb, ImageDir, ImageName};
use crate::{Error, Result};
use nix::fcntl::{fcntl, FcntlArg};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::{FdToDump, FileKind, FileTable, RestoreEnv};

/// Whether an fd with this stat and /proc link is a pipe (not a FIFO opened by path).
pub fn handles(st: &libc::stat, link: &str) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFIFO && link.starts_with("pipe:[")
}

fn pipe2() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Io { ctx: "pipe2".into(), source: e.into() })
}

/// The bytes in flight in the pipe of `fd` (pid `pid`'s fd `num`, a copy in rcr), left in place, and
/// the pipe's buffer size.
pub fn peek(pid: i32, num: i32, fd: BorrowedFd<'_>) -> Result<(Vec<u8>, u32)> {
    let size = fcntl(fd.as_raw_fd(), FcntlArg::F_GETPIPE_SZ).map_err(|e| Error::Io { ctx: format!("pid {pid}: fd {num}: F_GETPIPE_SZ"), source: e.into() })?;
    // A read end of the same pipe, without blocking and without taking anything from the task.
    let path = std::ffi::CString::new(format!("/proc/{pid}/fd/{num}")).unwrap_or_default();
    let rd = crate::sys::open(&path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .map_err(|source| Error::Io { ctx: format!("pid {pid}: fd {num}: opening the pipe's read side"), source })?;
    let (tr, tw) = pipe2()?;
    let _ = fcntl(tw.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(size));
    let n = match nix::fcntl::tee(&rd, &tw, size as usize, nix::fcntl::SpliceFFlags::SPLICE_F_NONBLOCK) {
        Ok(n) => n,
        Err(nix::errno::Errno::EAGAIN) => 0,
        Err(e) => return Err(Error::Io { ctx: format!("pid {pid}: fd {num}: tee of the pipe's data"), source: e.into() }),
    };
    drop(tw);
    let mut data = Vec::with_capacity(n);
    File::from(tr).take(n as u64).read_to_end(&mut data).map_err(|e| Error::Io { ctx: format!("pid {pid}: fd {num}: reading the pipe's data"), source: e })?;
    Ok((data, size as u32))
}

/// Writes the pipes' in-flight data (pipe inode -> (data, buffer size)) to image `name`
/// (pipes-data.img, or fifo-data.img for FIFOs).
pub fn write_data(dir: &Path, name: ImageName, data: &BTreeMap<u32, (Vec<u8>, u32)>) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut w = ImageDir::new(dir).create(name)?;
    for (id, (bytes, size)) in data {
        w.write_entry(&pb::PipeDataEntry { pipe_id: *id, bytes: bytes.len() as u32, size: Some(*size) })?;
        w.write_raw(bytes)?;
    }
    w.finish()?;
    Ok(())
}

/// Reads data image `name` (absent: no data in flight).
pub fn read_data(dir: &Path, name: ImageName) -> Result<BTreeMap<u32, (Vec<u8>, u32)>> {
    let images = ImageDir::new(dir);
    let mut out = BTreeMap::new();
    if !images.exists(name) {
        return Ok(out);
    }
    let mut r = images.open(name)?;
    while let Some(e) = r.read_entry::<pb::PipeDataEntry>()? {
        let bytes = r.read_raw(e.bytes as u64)?;
        out.insert(e.pipe_id, (bytes, e.size.unwrap_or(0)));
    }
    Ok(out)
}

/// The pipes of a restore, created in rcr: pipe inode -> (read end, write end).
#[derive(Default)]
pub struct Pipes {
    ends: BTreeMap<u32, (OwnedFd, OwnedFd)>,
}

impl Pipes {
    /// The fd for pipe entry `e`: the end its flags name, as a new open file description of it (so
    /// that its own flags, O_NONBLOCK say, are its own), the pipe created with its data the first time.
    pub fn open(&mut self, e: &pb::PipeEntry, data: &BTreeMap<u32, (Vec<u8>, u32)>) -> Result<OwnedFd> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.ends.entry(e.pipe_id) {
            let (r, w) = pipe2()?;
            let (bytes, size) = data.get(&e.pipe_id).map(|(b, s)| (b.as_slice(), *s)).unwrap_or((&[][..], 0));
            if size > 0 {
                if let Err(err) = fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(size as libc::c_int)) {
                    return Err(Error::Io { ctx: format!("pipe {}: setting its buffer to {size} bytes (above /proc/sys/fs/pipe-max-size needs CAP_SYS_RESOURCE)", e.pipe_id), source: err.into() });
                }
            }
            let mut wf = File::from(w.try_clone().map_err(|e| Error::Io { ctx: "dup".into(), source: e })?);
            wf.write_all(bytes).map_err(|err| Error::Io { ctx: format!("pipe {}: writing back its {} bytes", e.pipe_id, bytes.len()), source: err })?;
            slot.insert((r, w));
        }
        let (r, w) = &self.ends[&e.pipe_id];
        let write = e.flags as i32 & libc::O_ACCMODE == libc::O_WRONLY;
        let end = if write { w } else { r };
        let fd = super::reopen(end.as_fd(), e.flags | libc::O_NONBLOCK as u32, 0, &|| format!("the {} end of pipe {}", if write { "write" } else { "read" }, e.pipe_id))?;
        // The open needed O_NONBLOCK (an end with nobody at the other would block); the task's flags now.
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_retain(e.flags as i32 & (libc::O_NONBLOCK | libc::O_DIRECT))));
        Ok(fd)
    }
}

/// Pipes as open fds: the data in flight is peeked once per pipe and written to pipes-data.img.
#[derive(Default)]
pub struct PipeFiles {
    /// Dump: data in flight by pipe inode. Restore: the same, read back.
    data: BTreeMap<u32, (Vec<u8>, u32)>,
    /// Restore: the pipes created.
    pipes: Pipes,
}

impl FileKind for PipeFiles {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.pipe.as_ref().map(|e| format!("pipe:[{}] {} end", e.pipe_id, if e.flags as i32 & libc::O_ACCMODE == libc::O_WRONLY { "write" } else { "read" }))
    }

    fn name(&self) -> &'static str {
        "pipe"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Pipe]
    }

    fn handles(&self, st: &libc::stat, link: &str) -> bool {
        handles(st, link)
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let pipe_id = fd.st.st_ino as u32;
        if let std::collections::btree_map::Entry::Vacant(v) = self.data.entry(pipe_id) {
            v.insert(peek(fd.pid, fd.fd, fd.file)?);
        }
        let flags = fd.info.flags & !(libc::O_CLOEXEC as u32);
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Pipe as i32,
            id,
            pipe: Some(pb::PipeEntry { id, pipe_id, flags, fown: pb::FownEntry::default() }),
            ..Default::default()
        })
    }

    fn finish_dump(&mut self, dir: &Path, _files: &FileTable) -> Result<()> {
        write_data(dir, ImageName::PipesData, &self.data)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.data = read_data(dir, ImageName::PipesData)?;
        Ok(())
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        f.pipe.as_ref().map(|e| self.pipes.open(e, &self.data)).transpose()
    }

    fn finish_restore(&mut self) {
        self.pipes = Pipes::default();
    }
}
