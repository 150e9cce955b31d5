//! [`ProcDir`]: an O_DIRECTORY fd of /proc/PID (or /proc/PID/task/TID); every file is
//! opened relative to it.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{
    fdinfo, maps, misc, stat, status, CgroupEntry, FdInfo, Mount, PosixTimer, ProcError, Result,
    Stat, Status, TimensOffset, Vma,
};
use crate::sys;

/// Where procfs is mounted unless told otherwise.
pub const DEFAULT_PROC_ROOT: &str = "/proc";

/// An open /proc/PID or /proc/PID/task/TID directory.
#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
    path: PathBuf,
    pid: i32,
}

fn io_err(op: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> ProcError {
    move |source| ProcError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn errno_io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn cstr(name: &str) -> CString {
    // Names are ours ("maps", "task/12/children"); an interior NUL would be a bug, so fall
    // back to a name that fails to open instead of panicking.
    CString::new(name).unwrap_or_else(|_| c"<invalid name>".to_owned())
}

impl ProcDir {
    /// Opens /proc/PID.
    pub fn open(pid: i32) -> Result<Self> {
        Self::open_in(Path::new(DEFAULT_PROC_ROOT), pid)
    }

    /// Opens /proc/self (resolved to our PID so the dir stays valid in threads).
    pub fn open_self() -> Result<Self> {
        Self::open(std::process::id() as i32)
    }

    /// Opens ROOT/PID for a procfs mounted at `root`.
    pub fn open_in(root: &Path, pid: i32) -> Result<Self> {
        let path = root.join(pid.to_string());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)
            .map_err(io_err("open", path.clone()))?;
        Ok(ProcDir {
            fd: OwnedFd::from(file),
            path,
            pid,
        })
    }

    /// Opens task/TID below this dir.
    pub fn task(&self, tid: i32) -> Result<Self> {
        let name = format!("task/{tid}");
        let fd = self.openat(&name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)?;
        Ok(ProcDir {
            fd,
            path: self.path.join(name),
            pid: tid,
        })
    }

    /// The PID (or TID for a task dir).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The path this dir was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` relative to this dir.
    pub fn openat(&self, name: &str, flags: OFlag) -> Result<OwnedFd> {
        sys::openat(self.fd.as_fd(), &cstr(name), flags).map_err(|e| ProcError::Io {
            op: "openat",
            path: self.path.join(name).display().to_string(),
            source: errno_io(e.errno().unwrap_or(nix::errno::Errno::EIO)),
        })
    }

    /// Reads a whole file as bytes.
    pub fn read_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let mut f = File::from(self.openat(name, OFlag::O_RDONLY)?);
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(io_err("read", self.path.join(name)))?;
        Ok(buf)
    }

    /// Reads a whole file as text (invalid UTF-8 replaced).
    pub fn read_string(&self, name: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read_bytes(name)?).into_owned())
    }

    /// readlink of `name` relative to this dir.
    pub fn readlink(&self, name: &str) -> Result<OsString> {
        nix::fcntl::readlinkat(Some(self.fd.as_raw_fd()), cstr(name).as_c_str()).map_err(|e| {
            ProcError::Io {
                op: "readlink",
                path: self.path.join(name).display().to_string(),
                source: errno_io(e),
            }
        })
    }

    /// Lists the entry names of subdirectory `name` (without "." and "..").
    pub fn list(&self, name: &str) -> Result<Vec<String>> {
        let path = self.path.join(name);
        let mut dir = Dir::openat(
            Some(self.fd.as_raw_fd()),
            cstr(name).as_c_str(),
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ProcError::Io {
            op: "opendir",
            path: path.display().to_string(),
            source: errno_io(e),
        })?;
        let mut out = Vec::new();
        for ent in dir.iter() {
            let ent = ent.map_err(|e| ProcError::Io {
                op: "readdir",
                path: path.display().to_string(),
                source: errno_io(e),
            })?;
            let n = ent.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                out.push(n);
            }
        }
        Ok(out)
    }

    fn numeric_entries(&self, name: &str) -> Result<Vec<i32>> {
        let mut v: Vec<i32> = self
            .list(name)?
            .iter()
            .map(|n| {
                n.parse().map_err(|_| {
                    ProcError::parse(name, 0, format!("non-numeric entry {n:?}")).in_dir(&self.path)
                })
            })
            .collect::<Result<_>>()?;
        v.sort_unstable();
        Ok(v)
    }

    fn parsed<T>(&self, name: &str, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        f(&self.read_string(name)?).map_err(|e| e.in_dir(&self.path))
    }

    /// /proc/PID/maps.
    pub fn maps(&self) -> Result<Vec<Vma>> {
        self.parsed("maps", maps::parse_maps)
    }

    /// /proc/PID/smaps (maps plus VmFlags and sizes).
    pub fn smaps(&self) -> Result<Vec<Vma>> {
        self.parsed("smaps", maps::parse_smaps)
    }

    /// Opens /proc/PID/map_files/START-END: an fd of the mapped file, even if deleted
    /// (needs CAP_SYS_ADMIN in the initial user namespace or CAP_CHECKPOINT_RESTORE).
    pub fn map_files_open(&self, start: u64, end: u64, flags: OFlag) -> Result<OwnedFd> {
        self.openat(&format!("map_files/{start:x}-{end:x}"), flags)
    }

    /// /proc/PID/status.
    pub fn status(&self) -> Result<Status> {
        self.parsed("status", status::parse_status)
    }

    /// /proc/PID/stat.
    pub fn stat(&self) -> Result<Stat> {
        self.parsed("stat", stat::parse_stat)
    }

    /// Open fds and their link targets, sorted by fd.
    pub fn fds(&self) -> Result<Vec<(i32, OsString)>> {
        let mut out = Vec::new();
        for fd in self.numeric_entries("fd")? {
            match self.readlink(&format!("fd/{fd}")) {
                Ok(t) => out.push((fd, t)),
                // Closed between readdir and readlink: skip, the caller re-reads if frozen.
                Err(ProcError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// /proc/PID/fdinfo/FD.
    pub fn fdinfo(&self, fd: i32) -> Result<FdInfo> {
        self.parsed(&format!("fdinfo/{fd}"), fdinfo::parse_fdinfo)
    }

    /// /proc/PID/fdinfo/FD, parsed, and its text (for those that want it whole, plugins).
    pub fn fdinfo_and_text(&self, fd: i32) -> Result<(FdInfo, String)> {
        let text = self.read_string(&format!("fdinfo/{fd}"))?;
        let info = fdinfo::parse_fdinfo(&text).map_err(|e| e.in_dir(&self.path))?;
        Ok((info, text))
    }

    /// /proc/PID/auxv.
    pub fn auxv(&self) -> Result<Vec<(u64, u64)>> {
        misc::parse_auxv(&self.read_bytes("auxv")?).map_err(|e| e.in_dir(&self.path))
    }

    /// /proc/PID/personality.
    pub fn personality(&self) -> Result<u32> {
        self.parsed("personality", misc::parse_personality)
    }

    /// readlink /proc/PID/exe.
    pub fn exe(&self) -> Result<OsString> {
        self.readlink("exe")
    }

    /// readlink /proc/PID/cwd.
    pub fn cwd(&self) -> Result<OsString> {
        self.readlink("cwd")
    }

    /// readlink /proc/PID/root.
    pub fn root(&self) -> Result<OsString> {
        self.readlink("root")
    }

    /// /proc/PID/comm without the trailing newline.
    pub fn comm(&self) -> Result<String> {
        let mut s = self.read_string("comm")?;
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// /proc/PID/timers (POSIX timers).
    pub fn timers(&self) -> Result<Vec<PosixTimer>> {
        self.parsed("timers", misc::parse_timers)
    }

    /// Thread ids from /proc/PID/task, sorted.
    pub fn task_ids(&self) -> Result<Vec<i32>> {
        self.numeric_entries("task")
    }

    /// /proc/PID/task/TID/stat.
    pub fn thread_stat(&self, tid: i32) -> Result<Stat> {
        self.parsed(&format!("task/{tid}/stat"), stat::parse_stat)
    }

    /// /proc/PID/task/TID/children.
    pub fn children(&self, tid: i32) -> Result<Vec<i32>> {
        self.parsed(&format!("task/{tid}/children"), misc::parse_children)
    }

    /// /proc/PID/mountinfo.
    pub fn mountinfo(&self) -> Result<Vec<Mount>> {
        self.parsed("mountinfo", misc::parse_mountinfo)
    }

    /// /proc/PID/loginuid (u32::MAX when unset).
    pub fn loginuid(&self) -> Result<u32> {
        self.parsed("loginuid", |t| super::util::num("loginuid", 1, t))
    }

    /// /proc/PID/oom_score_adj.
    pub fn oom_score_adj(&self) -> Result<i32> {
        self.parsed("oom_score_adj", |t| super::util::num("oom_score_adj", 1, t))
    }

    /// /proc/PID/timens_offsets.
    pub fn timens_offsets(&self) -> Result<Vec<TimensOffset>> {
        self.parsed("timens_offsets", misc::parse_timens_offsets)
    }

    /// Namespace inode numbers from /proc/PID/ns/*, as (name, inode) sorted by name.
    pub fn ns_ids(&self) -> Result<Vec<(String, u64)>> {
        let mut names = self.list("ns")?;
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let target = self.readlink(&format!("ns/{n}"))?;
            let (_, ino) =
                misc::parse_ns_link(&target.to_string_lossy()).map_err(|e| e.in_dir(&self.path))?;
            out.push((n, ino));
        }
        Ok(out)
    }

    /// /proc/PID/cgroup.
    pub fn cgroup(&self) -> Result<Vec<CgroupEntry>> {
        self.parsed("cgroup", misc::parse_cgroup)
    }
}

impl AsFd for ProcDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
