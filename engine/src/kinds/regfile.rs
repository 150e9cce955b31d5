//! Regular files, directories and the harmless character devices (/dev/null, /dev/zero, /dev/full,
//! /dev/random, /dev/urandom), all stored as CRIU's `reg_file_entry`: a path, open flags and an offset.
//! The same entry also describes the files behind file mappings, the exe link, cwd and root.

use crate::image::pb;
use crate::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Character devices that carry no state and are reopened by path.
const STATELESS_CHARDEVS: [(u32, u32); 5] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9)];

/// Whether an fd with this stat is handled here.
pub fn handles(st: &libc::stat) -> bool {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => true,
        libc::S_IFCHR => {
            let (ma, mi) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
            STATELESS_CHARDEVS.contains(&(ma, mi))
        }
        _ => false,
    }
}

/// The image entry of an open file: `flags` are the open flags as fdinfo shows them (O_CLOEXEC is a
/// property of the fd, kept in `fdinfo_entry.flags`, and dropped here).
pub fn entry(id: u32, path: &str, flags: u32, pos: u64, st: &libc::stat) -> pb::RegFileEntry {
    pb::RegFileEntry {
        id,
        flags: flags & !(libc::O_CLOEXEC as u32),
        pos,
        fown: pb::FownEntry::default(),
        name: path.to_string(),
        mnt_id: None,
        size: (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some(st.st_size as u64),
        ext: None,
        mode: Some(st.st_mode),
        ..Default::default()
    }
}

/// A path from /proc/PID/fd/N or map_files that rcr can reopen: absolute and not deleted.
pub fn check_path(pid: i32, what: &str, link: &str) -> Result<()> {
    if link.ends_with(" (deleted)") {
        return Err(Error::Msg(format!(
            "pid {pid}: {what} is a deleted file ({link}); deleted files are not supported yet"
        )));
    }
    if !link.starts_with('/') {
        return Err(Error::Msg(format!("pid {pid}: {what} is '{link}', which is not a file rcr can reopen by path")));
    }
    Ok(())
}

/// Opens the file of `e` in rcr for installing in the restored task, at its offset. A regular file whose
/// size changed since the dump is an error when `exact_size` (it is mapped: pages past the new end would
/// fault, data would differ).
pub fn open(e: &pb::RegFileEntry, exact_size: bool) -> Result<OwnedFd> {
    let path = Path::new(&e.name);
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Msg(format!("file name {:?} has a NUL byte", e.name)))?;
    let flags = (e.flags as i32) & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC) | libc::O_CLOEXEC;
    // SAFETY: `c` is a valid NUL-terminated path; open has no memory-safety preconditions beyond that.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Error::Io { ctx: format!("cannot reopen {} (flags {:#o})", e.name, flags), source: std::io::Error::last_os_error() });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero stat is a valid buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(Error::Io { ctx: format!("fstat {}", e.name), source: std::io::Error::last_os_error() });
    }
    if let (Some(size), true) = (e.size, st.st_mode & libc::S_IFMT == libc::S_IFREG) {
        if exact_size && st.st_size as u64 != size {
            return Err(Error::Msg(format!(
                "file {} is mapped by the checkpointed process and changed size since the dump ({} bytes then, {} now); restore it as it was",
                e.name, size, st.st_size
            )));
        }
    }
    if e.pos != 0 && st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        // SAFETY: lseek on an open fd has no memory-safety preconditions.
        let r = unsafe { libc::lseek(fd.as_raw_fd(), e.pos as i64, libc::SEEK_SET) };
        if r < 0 {
            return Err(Error::Io { ctx: format!("seek {} to {}", e.name, e.pos), source: std::io::Error::last_os_error() });
        }
    }
    Ok(fd)
}

/// Regular files, directories and stateless character devices as open fds.
pub struct RegFiles;

impl super::FileKind for RegFiles {
    fn name(&self) -> &'static str {
        "regular file"
    }

    fn handles(&self, st: &libc::stat, _link: &str) -> bool {
        handles(st)
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, id: u32, _files: &mut super::FileTable) -> Result<pb::FileEntry> {
        check_path(fd.pid, &format!("fd {}", fd.fd), fd.link)?;
        Ok(pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id, reg: Some(entry(id, fd.link, fd.info.flags, fd.info.pos, fd.st)), ..Default::default() })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &super::RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        f.reg.as_ref().map(|r| open(r, false)).transpose()
    }
}
