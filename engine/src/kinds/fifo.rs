//! FIFOs (named pipes) opened by path: the path is a reg_file_entry, the FIFO a fifo_entry naming it,
//! and the bytes in flight go to fifo-data.img, read without consuming them as for pipes. Restore opens
//! the FIFO by its path again (creating it with its mode if it is gone), holding a read-write end in rcr
//! while the tasks are built so that any end opens without blocking and the data has somewhere to wait.

use super::pipe::{peek, read_data, write_data};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};
use crate::image::{pb, ImageName};
use crate::{Error, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// FIFOs as open fds.
#[derive(Default)]
pub struct Fifos {
    /// Data in flight by FIFO inode (dump: peeked; restore: read back).
    data: BTreeMap<u32, (Vec<u8>, u32)>,
    /// Restore: a read-write end of each FIFO, held until the tasks run.
    held: BTreeMap<u32, OwnedFd>,
}

fn open_path(path: &str, flags: i32) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    crate::sys::open(&c, flags | libc::O_CLOEXEC)
}

impl Fifos {
    /// The read-write end of FIFO `pipe_id` at `reg.name`, opened (and the FIFO made again if its path
    /// is gone) with its data written back, the first time.
    fn hold(&mut self, pipe_id: u32, reg: &pb::RegFileEntry) -> Result<()> {
        if self.held.contains_key(&pipe_id) {
            return Ok(());
        }
        let path = reg.name.as_str();
        let end = match open_path(path, libc::O_RDWR | libc::O_NONBLOCK) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let mode = reg.mode.unwrap_or(0o600) & 0o7777;
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(mode))
                    .map_err(|e| Error::Io { ctx: format!("FIFO {path} is gone; creating it again"), source: e.into() })?;
                open_path(path, libc::O_RDWR | libc::O_NONBLOCK).map_err(|e| Error::Io { ctx: format!("opening FIFO {path}"), source: e })?
            }
            Err(e) => return Err(Error::Io { ctx: format!("opening FIFO {path}"), source: e }),
        };
        if nix::sys::stat::fstat(end.as_raw_fd()).map_or(true, |st| st.st_mode & libc::S_IFMT != libc::S_IFIFO) {
            return Err(Error::changed(format!("{path} was a FIFO at dump time and is not one now; remove it or restore where it is a FIFO")));
        }
        if let Some((bytes, size)) = self.data.get(&pipe_id) {
            if *size > 0 {
                if let Err(e) = fcntl(end.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(*size as libc::c_int)) {
                    return Err(Error::Io { ctx: format!("FIFO {path}: setting its buffer to {size} bytes"), source: e.into() });
                }
            }
            let mut w = File::from(end.try_clone().map_err(|e| Error::Io { ctx: "dup".into(), source: e })?);
            w.write_all(bytes).map_err(|e| Error::Io { ctx: format!("FIFO {path}: writing back its {} bytes", bytes.len()), source: e })?;
        }
        self.held.insert(pipe_id, end);
        Ok(())
    }
}

impl FileKind for Fifos {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.fifo.as_ref().map(|e| format!("FIFO {} (inode {})", e.regf_id.map_or(String::new(), |r| format!("file {r}")), e.pipe_id))
    }

    fn name(&self) -> &'static str {
        "FIFO"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Fifo]
    }

    fn handles(&self, st: &libc::stat, link: &str) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFIFO && link.starts_with('/')
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, files: &mut FileTable) -> Result<pb::FileEntry> {
        super::regfile::check_path(fd.pid, &format!("fd {}", fd.fd), fd.link)?;
        let pipe_id = fd.st.st_ino as u32;
        if let std::collections::btree_map::Entry::Vacant(v) = self.data.entry(pipe_id) {
            v.insert(peek(fd.pid, fd.fd, fd.file)?);
        }
        let regf_id = files.add_reg(fd.link, fd.info.flags, 0, fd.st);
        Ok(pb::FileEntry { r#type: pb::FdTypes::Fifo as i32, id, fifo: Some(pb::FifoEntry { id, pipe_id, regf_id: Some(regf_id) }), ..Default::default() })
    }

    fn finish_dump(&mut self, dir: &Path, _files: &FileTable) -> Result<()> {
        write_data(dir, ImageName::FifoData, &self.data)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.data = read_data(dir, ImageName::FifoData)?;
        Ok(())
    }

    fn open(&mut self, f: &pb::FileEntry, env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.fifo else { return Ok(None) };
        let reg = e.regf_id.and_then(|r| env.files.get(&r)).and_then(|r| r.reg.as_ref())
            .ok_or_else(|| Error::corrupt(format!("file {}: the FIFO's path entry {:?} is missing from files.img", f.id, e.regf_id)))?;
        self.hold(e.pipe_id, reg)?;
        // This fd's own open file description, with its flags: O_NONBLOCK for the open (the held end is
        // reader and writer, but be safe), then the task's flags.
        let flags = reg.flags as i32 & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC);
        let fd = open_path(&reg.name, flags | libc::O_NONBLOCK).map_err(|err| Error::Io { ctx: format!("opening FIFO {}", reg.name), source: err })?;
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_retain(reg.flags as i32 & (libc::O_NONBLOCK | libc::O_DIRECT | libc::O_APPEND))));
        Ok(Some(fd))
    }

    fn finish_restore(&mut self) {
        self.held.clear();
    }
}
