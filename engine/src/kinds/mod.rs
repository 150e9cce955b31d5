//! One module per kernel object kind, each with its dump and its restore side by side.
//!
//! Open files go through one interface, [`FileKind`]: each kind of file (regular file, terminal, pipe...)
//! is a type in its own module that says which fds it handles, describes one at dump, writes its own
//! images at the end of the dump, reads them back and opens the file again at restore. [`file_kinds`] is
//! the one list of them: adding a kind of file is a module plus one line there. Every fd is handled by
//! exactly one kind or refused with an error naming it. At restore a file entry goes to the kind that
//! lists its type ([`FileKind::fd_types`], [`KindIndex`]), as a node of the restore graph
//! ([`crate::graph`], driven by [`crate::fdtable`]): done at once, or pending on another object.

mod anon;
pub mod cpu;
pub mod creds;
pub mod epoll;
pub mod eventfd;
pub mod extents;
pub mod fanotify;
pub mod fifo;
pub mod ghost;
pub mod inotify;
pub mod locks;
pub mod mem;
pub mod memfd;
pub mod mm;
pub mod pipe;
pub mod posix_timers;
pub mod pty;
pub mod regfile;
pub mod signalfd;
pub mod signals;
pub mod sockets;
pub mod task;
pub mod timens;
pub mod timerfd;
pub mod tty;
pub mod unix;

use crate::compel::Remote;
use crate::image::pb;
use crate::options::DumpOpts;
use crate::proc::{FdInfo, ProcDir, Stat};
use crate::Result;
use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

/// Every kind of file rcr handles, in the order they are asked at dump (the first that handles an fd
/// gets it).
pub fn file_kinds() -> Vec<Box<dyn FileKind>> {
    vec![
        Box::new(memfd::MemfdFiles),
        Box::new(regfile::RegFiles::default()),
        Box::new(tty::Ttys::default()),
        Box::new(pipe::PipeFiles::default()),
        Box::new(fifo::Fifos::default()),
        Box::new(eventfd::Eventfds),
        Box::new(timerfd::Timerfds),
        Box::new(signalfd::Signalfds),
        Box::new(epoll::Epolls::default()),
        Box::new(inotify::Inotifies),
        Box::new(fanotify::Fanotifies),
        Box::new(locks::Locks::default()),
        // Last: its finish_dump takes the connections still waiting on listeners (to save their data),
        // so the steps that may fail come before it.
        Box::new(unix::UnixSockets::default()),
    ]
}

/// One fd of a frozen task, as a kind module sees it at dump.
pub struct FdToDump<'a> {
    pub pid: i32,
    /// The fd number in the task.
    pub fd: i32,
    /// Its /proc/PID/fd link ("/path", "pipe:[123]", "anon_inode:[eventfd]"...).
    pub link: &'a str,
    /// rcr's copy of the task's file (pidfd_getfd): the same open file description.
    pub file: BorrowedFd<'a>,
    pub st: &'a libc::stat,
    /// Its /proc/PID/fdinfo, parsed, and as the kernel wrote it.
    pub info: &'a FdInfo,
    pub fdinfo_text: &'a str,
    /// The task's /proc directory and stat.
    pub proc: &'a ProcDir,
    pub task: &'a Stat,
    pub opts: &'a DumpOpts,
}

/// The files of a dump: ids are given out here, entries collected for files.img.
#[derive(Default)]
pub struct FileTable {
    next_id: u32,
    pub files: Vec<pb::FileEntry>,
    /// memfd inodes (content, name, seals), saved once each for the fds and mappings of them
    /// (memfd.img).
    pub memfds: Vec<pb::MemfdInodeEntry>,
    /// Deleted files saved with the checkpoint (ghost-file-N.img, remap-fpath.img).
    pub ghosts: ghost::GhostTable,
    /// File locks held (filelocks.img).
    pub locks: locks::LockTable,
}

impl FileTable {
    pub fn next_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a reg_file_entry for `path` and returns its id.
    pub fn add_reg(&mut self, path: &str, flags: u32, pos: u64, st: &libc::stat) -> u32 {
        let id = self.next_id();
        self.files.push(pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id, reg: Some(regfile::entry(id, path, flags, pos, st)), ..Default::default() });
        id
    }

    /// The entry with id `id`.
    pub fn get(&self, id: u32) -> Option<&pb::FileEntry> {
        self.files.iter().find(|e| e.id == id)
    }
}

/// What the kinds see of a restore.
pub struct RestoreEnv<'a> {
    pub images_dir: &'a Path,
    /// `--shell-job`: the terminal is rcr's own.
    pub shell_job: bool,
    /// `--ext-unix-sk`: unix sockets connected outside the tree are reconnected by name.
    pub ext_unix_sk: bool,
    /// Every file of the checkpoint, by id (a file may refer to another: a socket to its peer).
    pub files: &'a BTreeMap<u32, pb::FileEntry>,
    /// The memfds of the checkpoint, created again, by inode id (memfd.img).
    pub memfds: &'a BTreeMap<u64, OwnedFd>,
    /// The file is opened for a memory mapping (a regular file must have its dumped size).
    pub mapped: bool,
}

/// A kind of open file: dump and restore side by side. One value lives through one dump or one
/// restore, so a kind may keep what it collects (data in flight, peers) and write it out at the end.
pub trait FileKind {
    /// Its name in messages ("pipe", "unix socket").
    fn name(&self) -> &'static str;

    /// Whether this kind handles an fd with this stat and /proc link.
    fn handles(&self, st: &libc::stat, link: &str) -> bool;

    /// Dump, in rcr: describes `fd` as file entry `id` (the entry's `type` and sub-message set). Runs
    /// once per open file description; fds sharing it get the same id without asking again.
    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, files: &mut FileTable) -> Result<pb::FileEntry>;

    /// A one-line description of file `f` for `rcr show`, or None when `f` is not of this kind.
    fn describe(&self, _f: &pb::FileEntry) -> Option<String> {
        None
    }

    /// Dump, in rcr, after every task is dumped: write this kind's own images, check what refers across
    /// tasks (a socket's peer is in the tree...).
    fn finish_dump(&mut self, _dir: &Path, _files: &FileTable) -> Result<()> {
        Ok(())
    }

    /// Restore, in rcr, before anything is started: read this kind's own images.
    fn load(&mut self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// The file entry types whose files this kind restores (files.img's `type`): restore hands each
    /// entry to the one kind that lists its type ([`KindIndex`]), nobody else is asked.
    fn fd_types(&self) -> &'static [pb::FdTypes];

    /// Restore, in rcr, before anything is started: open file `f` (of one of [`FileKind::fd_types`])
    /// again; None when its entry lacks this kind's part (a bad image, said so by the caller). The fd is
    /// inherited by the tasks and moved to its number there.
    fn open(&mut self, _f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    /// Restore: file `f` as a node of the restore graph ([`crate::graph`]). Most kinds open it at once
    /// ([`FileKind::open`]); one whose file needs another object first (a socket its listener) answers
    /// pending, with what it waits for, and is asked again once that is done.
    fn step(&mut self, f: &pb::FileEntry, env: &RestoreEnv<'_>) -> Result<Progress> {
        match self.open(f, env)? {
            Some(fd) => Ok(Progress::Opened(fd)),
            None => Err(crate::Error::corrupt(format!("file {}: its entry (type {}) has no {} part", f.id, f.r#type, self.name()))),
        }
    }

    /// Restore, in rcr, after `load`: the objects of this kind that are no fd of a task (a lock, a
    /// connection waiting to be accepted), each a node of the restore graph: its key and its name in
    /// messages. `fds` says which fd of which process has which file.
    fn objects(&mut self, _env: &RestoreEnv<'_>, _fds: &FdOwners) -> Result<Vec<(Obj, String)>> {
        Ok(Vec::new())
    }

    /// Restore: one step of object `key` (one of [`FileKind::objects`]); `opened(id)`: whether file `id`
    /// is open in rcr.
    fn step_object(&mut self, _key: Obj, _env: &RestoreEnv<'_>, _opened: &dyn Fn(u32) -> bool) -> Result<Progress> {
        Ok(Progress::Done)
    }

    /// Restore, in the restored task (through remote system calls), once all its fds are at their
    /// numbers: what only the task itself can do (POSIX locks are the process's, epoll watches name fd
    /// numbers). `fds` are all the task's fds with their entries (each kind picks its own). For an fd table
    /// shared by several processes (CLONE_FILES), called in the last of them, which sets the table up.
    fn in_task(&self, _r: &mut Remote<'_>, _pid: i32, _fds: &[(&pb::FdinfoEntry, &pb::FileEntry)], _env: &RestoreEnv<'_>) -> Result<()> {
        Ok(())
    }

    /// Restore, in rcr, once the tasks run: let go of what was kept for them.
    fn finish_restore(&mut self) {}
}

/// A new open file description of the file rcr holds as `held` (through /proc/self/fd), opened with
/// the dumped open `flags` (O_CREAT, O_TRUNC and O_EXCL dropped; close-on-exec in rcr) and moved to
/// offset `pos`: an fd of the task gets its own flags and offset. `what` names the file in errors.
pub fn reopen(held: BorrowedFd<'_>, flags: u32, pos: u64, what: &dyn Fn() -> String) -> Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", held.as_raw_fd())).unwrap_or_default();
    let flags = (flags as i32 & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL)) | libc::O_CLOEXEC;
    let fd = crate::sys::open(&path, flags).map_err(|source| crate::Error::Io { ctx: format!("reopening {} (flags {flags:#o})", what()), source })?;
    if pos != 0 {
        if let Err(e) = nix::unistd::lseek(fd.as_raw_fd(), pos as i64, nix::unistd::Whence::SeekSet) {
            return Err(crate::Error::Io { ctx: format!("seeking {} to {pos}", what()), source: e.into() });
        }
    }
    Ok(fd)
}

/// A restorable object's key in the restore graph ([`crate::graph`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Obj {
    /// File `id` of files.img, opened in rcr (or, for a plugin's, by the plugin in the task).
    File(u32),
    /// Lock `n` of filelocks.img.
    Lock(u32),
    /// Unix socket (file id) made in rcr: bound, listening, connected through its listener.
    UnixSocket(u32),
    /// The data queued for unix socket (file id), written back.
    UnixQueue(u32),
    /// Socket files deleted at dump, removed again once every socket is built.
    UnixDeletedFiles,
}

impl std::fmt::Display for Obj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Obj::File(id) => write!(f, "file {id}"),
            Obj::Lock(n) => write!(f, "lock {n} of filelocks.img"),
            Obj::UnixSocket(id) => write!(f, "unix socket (file {id})"),
            Obj::UnixQueue(id) => write!(f, "the queued data of unix socket (file {id})"),
            Obj::UnixDeletedFiles => write!(f, "the removal of unix socket files deleted at dump"),
        }
    }
}

/// Restore: which fd of which process has which file of the checkpoint.
#[derive(Default)]
pub struct FdOwners {
    by_fd: BTreeMap<(i32, u32), u32>,
    /// The first fd that has each file.
    by_file: BTreeMap<u32, (i32, u32)>,
}

impl FdOwners {
    /// Notes that fd `fd` of `pid` has file `id`.
    pub fn add(&mut self, pid: i32, fd: u32, id: u32) {
        self.by_fd.insert((pid, fd), id);
        self.by_file.entry(id).or_insert((pid, fd));
    }

    /// The file id of fd `fd` of `pid`.
    pub fn file_of(&self, pid: i32, fd: u32) -> Option<u32> {
        self.by_fd.get(&(pid, fd)).copied()
    }

    /// The first (pid, fd) that has file `id`.
    pub fn owner_of(&self, id: u32) -> Option<(i32, u32)> {
        self.by_file.get(&id).copied()
    }
}

/// One step of a file or object of the restore.
pub enum Progress {
    /// Done, with the fd rcr hands down to the tasks.
    Opened(OwnedFd),
    /// Done, nothing to hand down (a lock noted, a file its plugin opens in the task).
    Done,
    /// Not yet: what it waits for.
    Pending(Vec<crate::graph::Wait<Obj>>),
}

/// Which kind restores which file entry type: built once from [`file_kinds`].
pub struct KindIndex(BTreeMap<i32, usize>);

impl KindIndex {
    /// The index; a type listed by two kinds is a bug of the registry, refused.
    pub fn new(kinds: &[Box<dyn FileKind>]) -> Result<KindIndex> {
        let mut m = BTreeMap::new();
        for (i, k) in kinds.iter().enumerate() {
            for t in k.fd_types() {
                if let Some(j) = m.insert(*t as i32, i) {
                    return Err(crate::Error::corrupt(format!("file type {} is restored by both {} and {}", t.as_str_name(), kinds[j].name(), k.name())));
                }
            }
        }
        Ok(KindIndex(m))
    }

    /// The kind (index into the kinds) that restores entries of type `ty`.
    pub fn of(&self, ty: i32) -> Option<usize> {
        self.0.get(&ty).copied()
    }
}

/// The first kind that handles an fd with this stat and link.
pub fn kind_of<'a>(kinds: &'a mut [Box<dyn FileKind>], st: &libc::stat, link: &str) -> Option<&'a mut Box<dyn FileKind>> {
    kinds.iter_mut().find(|k| k.handles(st, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, major: u32, minor: u32) -> libc::stat {
        let mut s: libc::stat = crate::sys::zeroed();
        s.st_mode = mode;
        s.st_rdev = libc::makedev(major, minor);
        s
    }

    #[test]
    fn every_type_a_kind_dumps_is_restored_by_that_kind_only() {
        let kinds = file_kinds();
        let index = KindIndex::new(&kinds).unwrap();
        for (i, k) in kinds.iter().enumerate() {
            for t in k.fd_types() {
                assert_eq!(index.of(*t as i32), Some(i), "{}", t.as_str_name());
            }
        }
        // Plugins' files are restored by their plugin, not by a kind.
        assert_eq!(index.of(pb::FdTypes::Ext as i32), None);
        assert_eq!(index.of(pb::FdTypes::Unixsk as i32).map(|i| kinds[i].name()), Some("unix socket"));
    }

    #[test]
    fn every_known_fd_has_exactly_one_handler() {
        let kinds = file_kinds();
        let cases: [(libc::stat, &str, Option<&str>); 16] = [
            (st(libc::S_IFREG | 0o644, 0, 0), "/x", Some("regular file")),
            (st(libc::S_IFDIR | 0o755, 0, 0), "/x", Some("regular file")),
            (st(libc::S_IFCHR | 0o666, 1, 3), "/dev/null", Some("regular file")),
            (st(libc::S_IFCHR | 0o620, 136, 2), "/dev/pts/2", Some("terminal")),
            (st(libc::S_IFCHR | 0o666, 5, 0), "/dev/tty", Some("terminal")),
            (st(libc::S_IFCHR | 0o666, 5, 2), "/dev/ptmx", Some("terminal")),
            (st(libc::S_IFIFO | 0o600, 0, 0), "pipe:[1234]", Some("pipe")),
            (st(libc::S_IFCHR | 0o600, 10, 200), "/dev/net/tun", None),
            (st(0, 0, 0), "anon_inode:[io_uring]", None),
            (st(0, 0, 0), "anon_inode:[perf_event]", None),
            (st(0, 0, 0), "anon_inode:[eventfd]", Some("eventfd")),
            (st(0, 0, 0), "anon_inode:[timerfd]", Some("timerfd")),
            (st(0, 0, 0), "anon_inode:[signalfd]", Some("signalfd")),
            (st(0, 0, 0), "anon_inode:[eventpoll]", Some("epoll")),
            (st(0, 0, 0), "anon_inode:inotify", Some("inotify")),
            (st(0, 0, 0), "anon_inode:[fanotify]", Some("fanotify")),
        ];
        for (s, link, want) in cases {
            let got: Vec<&str> = kinds.iter().filter(|k| k.handles(&s, link)).map(|k| k.name()).collect();
            assert!(got.len() <= 1, "{link}: handled by {got:?}");
            assert_eq!(got.first().copied(), want, "{link} mode {:o}", s.st_mode);
        }
    }
}
