//! File locks (`--file-locks`): flock, POSIX and OFD locks held at dump time are held again after
//! restore. Saved as CRIU's `filelocks.img` (one `file_lock_entry` per lock: kind, type, owner pid and
//! fd, range). Found in the `lock:` lines of each fd's fdinfo, which show the locks whose owner is that
//! fd's open file description (flock, OFD) or that fd table (POSIX) and taken through that file; blocked
//! waiters are not held and are skipped. Each lock is recorded once per owner.
//!
//! At restore every lock is taken again in its task, through remote system calls once the fds are at
//! their numbers ([`super::FileKind::in_task`]): flock(2) and F_OFD_SETLK belong to the open file
//! description (shared by whoever shares it), F_SETLK to the process.

use crate::compel::Remote;
use crate::image::{pb, ImageDir, ImageName};
use crate::proc::FdInfo;
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// CRIU's lock kinds (file_lock_entry.flag).
pub const FL_POSIX: u32 = 1;
pub const FL_FLOCK: u32 = 2;
pub const FL_OFD: u32 = 4;

/// The locks of one dump.
#[derive(Default)]
pub struct LockTable {
    pub entries: Vec<pb::FileLockEntry>,
    /// (kind, file id, owner pid for POSIX locks, type, start, len) already recorded.
    seen: HashSet<(u32, u32, i32, u32, i64, i64)>,
}

impl LockTable {
    /// Records the locks held through fd `fd` of `pid` (file id `file_id`). Without `--file-locks`
    /// (`allowed` false) a held lock fails the dump.
    pub fn collect(&mut self, pid: i32, fd: i32, link: &str, info: &FdInfo, file_id: u32, allowed: bool) -> Result<()> {
        for l in info.locks.iter().filter(|l| !l.blocked) {
            if !allowed {
                return Err(Error::not_supported(format!(
                    "pid {pid}: fd {fd} ({link}) holds a {} lock ({}); dump with --file-locks to save file locks",
                    l.kind, l.raw
                )));
            }
            let flag = match l.kind.as_str() {
                "FLOCK" => FL_FLOCK,
                "OFDLCK" => FL_OFD,
                "POSIX" if l.mode == "ADVISORY" => FL_POSIX,
                _ => {
                    return Err(Error::not_supported(format!(
                        "pid {pid}: fd {fd} ({link}) holds a {} {} lock ({}), which rcr cannot restore",
                        l.mode, l.kind, l.raw
                    )))
                }
            };
            let ty = match l.access.as_str() {
                "READ" => libc::F_RDLCK,
                "WRITE" => libc::F_WRLCK,
                other => return Err(Error::not_supported(format!("pid {pid}: fd {fd} ({link}): lock of unknown type {other} ({})", l.raw))),
            } as u32;
            let start = l.start as i64;
            let len = l.end.map_or(0, |e| e as i64 - start + 1);
            let owner = if flag == FL_POSIX { pid } else { 0 };
            if self.seen.insert((flag, file_id, owner, ty, start, len)) {
                tracing::info!("pid {pid}: fd {fd} ({link}): saving lock {}", l.raw);
                self.entries.push(pb::FileLockEntry { flag, r#type: ty, pid, fd, start, len });
            }
        }
        Ok(())
    }
}

/// struct flock for fcntl(F_SETLK / F_OFD_SETLK), as the x86_64 kernel reads it.
fn flock_bytes(ty: u32, start: i64, len: i64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..2].copy_from_slice(&(ty as i16).to_le_bytes());
    b[2..4].copy_from_slice(&(libc::SEEK_SET as i16).to_le_bytes());
    b[8..16].copy_from_slice(&start.to_le_bytes());
    b[16..24].copy_from_slice(&len.to_le_bytes());
    b
}

/// The file-lock "kind": it handles no fd itself; it writes filelocks.img and takes the locks again.
#[derive(Default)]
pub struct Locks {
    entries: Vec<pb::FileLockEntry>,
    /// The process that takes each lock again: the dump saw a lock in the first process of an fd table
    /// shared with CLONE_FILES; the restore sets that table up in the last one (pid -> taker).
    taker: std::collections::HashMap<i32, i32>,
    /// Restore: the file id each lock is on (by its index in `entries`).
    files: Vec<u32>,
}

fn kind_name(flag: u32) -> &'static str {
    match flag {
        FL_FLOCK => "flock",
        FL_OFD => "OFD",
        _ => "POSIX",
    }
}

/// For each process of the checkpoint, the last one sharing its fd table (itself when it shares none).
fn last_sharers(dir: &Path) -> Result<std::collections::HashMap<i32, i32>> {
    let images = ImageDir::new(dir);
    let tree: Vec<pb::PstreeEntry> = images.read_all(ImageName::Pstree)?;
    let mut files_of = Vec::new();
    for p in &tree {
        if !images.exists(ImageName::Ids(p.pid)) {
            continue; // a zombie: no files
        }
        let e: pb::TaskKobjIdsEntry = images.read_one(ImageName::Ids(p.pid))?;
        files_of.push((p.pid as i32, e.files_id));
    }
    Ok(files_of.iter().map(|&(pid, fid)| (pid, files_of.iter().rev().find(|(_, f)| *f == fid).map_or(pid, |(q, _)| *q))).collect())
}

impl super::FileKind for Locks {
    fn name(&self) -> &'static str {
        "file locks"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[]
    }

    fn handles(&self, _st: &libc::stat, _link: &str) -> bool {
        false
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, _id: u32, _files: &mut super::FileTable) -> Result<pb::FileEntry> {
        Err(Error::Internal(format!("pid {}: fd {}: not a file the lock table describes", fd.pid, fd.fd)))
    }

    fn finish_dump(&mut self, dir: &Path, files: &super::FileTable) -> Result<()> {
        if files.locks.entries.is_empty() {
            return Ok(());
        }
        Ok(ImageDir::new(dir).write_all(ImageName::FileLocks, &files.locks.entries)?)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        let images = ImageDir::new(dir);
        if images.exists(ImageName::FileLocks) {
            self.entries = images.read_all(ImageName::FileLocks)?;
            self.taker = last_sharers(dir)?;
        }
        Ok(())
    }

    /// Each lock is a node of the restore graph that waits for the file it locks: a lock on an fd its
    /// process does not have fails here, before anything is started. It is taken in the task
    /// ([`super::FileKind::in_task`]), once the fds are at their numbers.
    fn objects(&mut self, _env: &super::RestoreEnv<'_>, fds: &super::FdOwners) -> Result<Vec<(super::Obj, String)>> {
        self.files.clear();
        let mut out = Vec::with_capacity(self.entries.len());
        for (n, l) in self.entries.iter().enumerate() {
            let id = fds.file_of(l.pid, l.fd as u32).ok_or_else(|| Error::corrupt(format!("filelocks.img: pid {} held a lock on fd {}, which it does not have", l.pid, l.fd)))?;
            self.files.push(id);
            out.push((super::Obj::Lock(n as u32), format!("pid {}: fd {}: its {} lock (range {} len {})", l.pid, l.fd, kind_name(l.flag), l.start, l.len)));
        }
        Ok(out)
    }

    fn step_object(&mut self, key: super::Obj, _env: &super::RestoreEnv<'_>, opened: &dyn Fn(u32) -> bool) -> Result<super::Progress> {
        let super::Obj::Lock(n) = key else { return Ok(super::Progress::Done) };
        let id = self.files.get(n as usize).copied().ok_or_else(|| Error::corrupt(format!("filelocks.img has no lock {n}")))?;
        Ok(if opened(id) { super::Progress::Done } else { super::Progress::Pending(vec![crate::graph::Wait::Node(super::Obj::File(id))]) })
    }

    fn in_task(&self, r: &mut Remote<'_>, pid: i32, fds: &[(&pb::FdinfoEntry, &pb::FileEntry)], _env: &super::RestoreEnv<'_>) -> Result<()> {
        for l in self.entries.iter().filter(|l| self.taker.get(&l.pid).copied().unwrap_or(l.pid) == pid) {
            if !fds.iter().any(|(fi, _)| fi.fd as i32 == l.fd) {
                return Err(Error::corrupt(format!("filelocks.img: pid {pid} held a lock on fd {}, which it does not have", l.fd)));
            }
            let fd = l.fd as u64;
            let got = match l.flag {
                FL_FLOCK => {
                    let op = if l.r#type == libc::F_RDLCK as u32 { libc::LOCK_SH } else { libc::LOCK_EX };
                    r.syscall(libc::SYS_flock, &[fd, (op | libc::LOCK_NB) as u64])?
                }
                FL_OFD | FL_POSIX => {
                    let cmd = if l.flag == FL_OFD { libc::F_OFD_SETLK } else { libc::F_SETLK };
                    let arg = r.scratch_put(&flock_bytes(l.r#type, l.start, l.len))?;
                    r.syscall(libc::SYS_fcntl, &[fd, cmd as u64, arg])?
                }
                other => return Err(Error::corrupt(format!("filelocks.img: pid {pid}: fd {}: unknown lock kind {other}", l.fd))),
            };
            if got < 0 {
                let what = kind_name(l.flag);
                return Err(Error::changed(format!(
                    "pid {pid}: taking its {what} lock on fd {} again (range {} len {}) failed: {} (does another process hold a conflicting lock?)",
                    l.fd,
                    l.start,
                    l.len,
                    crate::kinds::mem::errno_str(got)
                )));
            }
            tracing::info!("pid {pid}: fd {}: {} lock taken again", l.fd, l.flag);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_owner_and_no_waiters() {
        let info = crate::proc::parse_fdinfo(
            "pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t5\n\
             lock:\t1: FLOCK  ADVISORY  WRITE 10 fe:00:5 0 EOF\n\
             lock:\t2: POSIX  ADVISORY  READ 10 fe:00:5 10 19\n\
             lock:\t3: -> POSIX  ADVISORY  WRITE 11 fe:00:5 0 EOF\n",
        )
        .unwrap();
        let mut t = LockTable::default();
        t.collect(10, 3, "/x", &info, 1, true).unwrap();
        t.collect(10, 4, "/x", &info, 1, true).unwrap(); // a dup of fd 3: the same locks
        assert_eq!(t.entries.len(), 2);
        assert_eq!((t.entries[0].flag, t.entries[0].r#type, t.entries[0].len), (FL_FLOCK, libc::F_WRLCK as u32, 0));
        assert_eq!((t.entries[1].flag, t.entries[1].start, t.entries[1].len), (FL_POSIX, 10, 10));
        let e = LockTable::default().collect(10, 3, "/x", &info, 1, false).unwrap_err().to_string();
        assert!(e.contains("pid 10") && e.contains("fd 3") && e.contains("/x") && e.contains("--file-locks"), "{e}");
    }
}
