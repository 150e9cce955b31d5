//! Regular files, directories and the harmless character devices (/dev/null, /dev/zero, /dev/full,
//! /dev/random, /dev/urandom), all stored as CRIU's `reg_file_entry`: a path, open flags and an offset.
//! The same entry also describes the files behind file mappings, the exe link, cwd and root.
//!
//! At dump, an fd or mapping whose file was deleted is saved as a ghost ([`super::ghost`]), one whose
//! path now names another file is refused, and file locks are noted ([`super::locks`]). At restore,
//! files of /proc/PID of the restored tree are opened in the task itself, once it exists.

use super::extents::Method;
use super::ghost::{GhostOpts, Ghosts};
use crate::compel::Remote;
use crate::image::pb;
use crate::options::DumpOpts;
use crate::{Error, Result};
use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
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
        return Err(Error::not_supported(format!(
            "pid {pid}: {what} is a deleted file ({link}); deleted files are not supported yet"
        )));
    }
    if !link.starts_with('/') {
        return Err(Error::not_supported(format!("{what} is '{link}', which is not a file rcr can reopen by path")).at_task(pid, ""));
    }
    Ok(())
}

fn stat_path(path: &str) -> std::io::Result<libc::stat> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    nix::sys::stat::stat(c.as_c_str()).map_err(Into::into)
}

fn kind_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFIFO => "FIFO",
        libc::S_IFLNK => "symlink",
        libc::S_IFSOCK => "socket",
        _ => "file of unknown type",
    }
}

/// The pid of a path under /proc/PID/ (as a /proc/self path reads in an fd link).
fn proc_pid(path: &str) -> Option<i32> {
    let rest = path.strip_prefix("/proc/")?;
    let n = rest.split('/').next()?;
    n.parse().ok()
}

/// The ghost options of a dump.
pub fn ghost_opts(opts: &DumpOpts) -> GhostOpts<'_> {
    GhostOpts { dir: &opts.images_dir, limit: opts.ghost_limit, method: if opts.ghost_fiemap { Method::Fiemap } else { Method::SeekData } }
}

/// Describes the file `file` (fstat `st`) that `pid` has open (`what`: "fd 3", "the file mapped at
/// 0x..."), whose /proc link is `link` (` (deleted)` already stripped when `deleted`), as reg file
/// `id`. A deleted file is saved as a ghost; a path that now names another file is an error.
#[allow(clippy::too_many_arguments)]
pub fn dump_reg(files: &mut super::FileTable, id: u32, pid: i32, what: &str, link: &str, deleted: bool, file: BorrowedFd<'_>, st: &libc::stat, flags: u32, pos: u64, opts: &DumpOpts) -> Result<pb::RegFileEntry> {
    let (path, deleted) = match link.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (link, deleted),
    };
    if !path.starts_with('/') {
        return Err(Error::not_supported(format!("{what} is '{link}', which is not a file rcr can reopen by path")).at_task(pid, ""));
    }
    let ty = st.st_mode & libc::S_IFMT;
    if deleted && ty != libc::S_IFREG {
        return Err(Error::not_supported(format!("pid {pid}: {what} is a deleted {} ({link}); rcr cannot restore it", kind_name(st.st_mode))));
    }
    if ty == libc::S_IFREG && st.st_nlink == 0 {
        files.ghosts.dump(file, st, path, id, ghost_opts(opts), &format!("pid {pid}: {what}"))?;
        return Ok(entry(id, path, flags, pos, st));
    }
    let same = |p: &str| stat_path(p).is_ok_and(|s| (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino));
    let checked = matches!(ty, libc::S_IFREG | libc::S_IFDIR) && proc_pid(path).is_none() && !path.starts_with("/proc/");
    if checked && !same(path) && !(deleted && same(link)) {
        if deleted && opts.link_remap {
            let link_id = match files.ghosts.link_of(st) {
                Some(l) => l,
                None => {
                    let l = files.next_id();
                    let name = files.ghosts.make_link(file, st, path, l, &format!("pid {pid}: {what}"))?;
                    files.files.push(pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id: l, reg: Some(entry(l, &name, libc::O_RDONLY as u32, 0, st)), ..Default::default() });
                    l
                }
            };
            files.ghosts.add_linked(id, link_id);
            return Ok(entry(id, path, flags, pos, st));
        }
        return Err(Error::not_supported(if deleted {
            format!(
                "pid {pid}: {what} is {path}, which was unlinked but still has {} other link(s) elsewhere; dump with --link-remap to keep it through a link made beside it",
                st.st_nlink
            )
        } else {
            let now = match stat_path(path) {
                Ok(s) => format!("now names another {} (inode {} instead of {})", kind_name(s.st_mode), s.st_ino, st.st_ino),
                Err(e) => format!("cannot be looked up any more ({e})"),
            };
            format!("pid {pid}: {what} is {path}, but that path {now}: the open file was renamed or replaced; rcr would reopen the wrong file")
        }));
    }
    Ok(entry(id, path, flags, pos, st))
}

/// Adds a file of `pid` that is no fd (a mapping's, the executable; `what` names it) to the file table;
/// its reg file id.
#[allow(clippy::too_many_arguments)]
pub fn dump_file(files: &mut super::FileTable, pid: i32, what: &str, path: &str, deleted: bool, file: BorrowedFd<'_>, st: &libc::stat, flags: u32, opts: &DumpOpts) -> Result<u32> {
    let id = files.next_id();
    let reg = dump_reg(files, id, pid, what, path, deleted, file, st, flags, 0, opts)?;
    files.files.push(pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id, reg: Some(reg), ..Default::default() });
    Ok(id)
}

/// Opens the file of `e` in rcr for installing in the restored task, at its offset. The file must be
/// of the kind it was at dump; a regular file whose size changed since the dump is an error when
/// `exact_size` (it is mapped: pages past the new end would fault, data would differ).
pub fn open(e: &pb::RegFileEntry, exact_size: bool) -> Result<OwnedFd> {
    let path = Path::new(&e.name);
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::not_supported(format!("file name {:?} has a NUL byte", e.name)))?;
    let flags = (e.flags as i32) & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC) | libc::O_CLOEXEC;
    let fd = crate::sys::open(&c, flags).map_err(|source| Error::Io { ctx: format!("cannot reopen {} (flags {:#o})", e.name, flags), source })?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|err| Error::Io { ctx: format!("fstat {}", e.name), source: err.into() })?;
    if let Some(mode) = e.mode.filter(|m| m & libc::S_IFMT != st.st_mode & libc::S_IFMT) {
        return Err(Error::changed(format!(
            "{} is a {} now, but was a {} at dump time: another file took its path; restore it as it was",
            e.name,
            kind_name(st.st_mode),
            kind_name(mode)
        )));
    }
    if let (Some(size), true) = (e.size, st.st_mode & libc::S_IFMT == libc::S_IFREG) {
        if exact_size && st.st_size as u64 != size {
            return Err(Error::changed(format!(
                "file {} is mapped by the checkpointed process and changed size since the dump ({} bytes then, {} now); restore it as it was",
                e.name, size, st.st_size
            )));
        }
        if st.st_size as u64 != size {
            tracing::warn!("file {} changed size since the dump ({size} bytes then, {} now)", e.name, st.st_size);
        }
    }
    if e.pos != 0 && st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        if let Err(err) = nix::unistd::lseek(fd.as_raw_fd(), e.pos as i64, nix::unistd::Whence::SeekSet) {
            return Err(Error::Io { ctx: format!("seek {} to {}", e.name, e.pos), source: err.into() });
        }
    }
    Ok(fd)
}

/// Regular files, directories and stateless character devices as open fds.
#[derive(Default)]
pub struct RegFiles {
    ghosts: Ghosts,
    /// Files of /proc/PID of the restored tree, opened in their task (`in_task`): the PID does not
    /// exist yet when rcr opens the files.
    deferred: HashSet<u32>,
}

impl super::FileKind for RegFiles {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.reg.as_ref().map(|r| format!("{} (pos {})", r.name, r.pos))
    }

    fn name(&self) -> &'static str {
        "regular file"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Reg]
    }

    fn handles(&self, st: &libc::stat, _link: &str) -> bool {
        handles(st)
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, id: u32, files: &mut super::FileTable) -> Result<pb::FileEntry> {
        let reg = dump_reg(files, id, fd.pid, &format!("fd {}", fd.fd), fd.link, false, fd.file, fd.st, fd.info.flags, fd.info.pos, fd.opts)?;
        Ok(pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id, reg: Some(reg), ..Default::default() })
    }

    fn finish_dump(&mut self, dir: &Path, files: &super::FileTable) -> Result<()> {
        files.ghosts.finish(dir)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.ghosts.load(dir)
    }

    fn open(&mut self, f: &pb::FileEntry, env: &super::RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(r) = f.reg.as_ref() else { return Ok(None) };
        if self.ghosts.is_ghost(r.id) {
            return self.ghosts.open(env.images_dir, env.files, r, env.mapped).map(Some);
        }
        if let Some(pid) = proc_pid(&r.name).filter(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            if env.mapped {
                return Err(Error::not_supported(format!("{} of pid {pid} is mapped; rcr cannot map /proc files of the restored tree", r.name)));
            }
            // A stand-in until the task exists; in_task puts the real file at the fd's number.
            self.deferred.insert(r.id);
            return open(&pb::RegFileEntry { name: "/dev/null".into(), flags: libc::O_RDONLY as u32, pos: 0, mode: None, size: None, ..r.clone() }, false).map(Some);
        }
        open(r, env.mapped).map(Some)
    }

    fn in_task(&self, rm: &mut Remote<'_>, pid: i32, fds: &[(&pb::FdinfoEntry, &pb::FileEntry)], _env: &super::RestoreEnv<'_>) -> Result<()> {
        for (fi, f) in fds {
            let Some(r) = f.reg.as_ref().filter(|r| self.deferred.contains(&r.id)) else { continue };
            let mut name = r.name.as_bytes().to_vec();
            name.push(0);
            let path = rm.scratch_put(&name)?;
            let flags = (r.flags as i32) & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_CLOEXEC) | libc::O_CLOEXEC;
            let nfd = rm.syscall(libc::SYS_openat, &[libc::AT_FDCWD as u64, path, flags as u64, 0])?;
            if nfd < 0 {
                return Err(Error::remote(format!("opening {} in the restored task", r.name), nfd).at_fd(pid, fi.fd as i32, None));
            }
            let cloexec = if fi.flags & libc::FD_CLOEXEC as u32 != 0 { libc::O_CLOEXEC } else { 0 };
            let moved = rm.syscall(libc::SYS_dup3, &[nfd as u64, fi.fd as u64, cloexec as u64])?;
            rm.syscall(libc::SYS_close, &[nfd as u64])?;
            if moved < 0 {
                return Err(Error::remote(format!("moving {} to its number", r.name), moved).at_fd(pid, fi.fd as i32, None));
            }
            if r.pos != 0 {
                let at = rm.syscall(libc::SYS_lseek, &[fi.fd as u64, r.pos, libc::SEEK_SET as u64])?;
                if at < 0 {
                    return Err(Error::remote(format!("seeking {} to {}", r.name, r.pos), at).at_fd(pid, fi.fd as i32, None));
                }
            }
            tracing::info!("pid {pid}: fd {}: {} opened in the restored task", fi.fd, r.name);
        }
        Ok(())
    }

    fn finish_restore(&mut self) {
        self.ghosts.finish();
    }
}
