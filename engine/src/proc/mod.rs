//! /proc reading: pure parsers over text (one file each) and [`ProcDir`], which reads every
//! file relative to an O_DIRECTORY fd of `/proc/PID` so that a PID reused during a dump can
//! never mix two processes' data.
//!
//! Parsers are `parse_xxx(text) -> Result<T, ProcError>`; they never panic and their errors
//! name the file and the line. [`ProcDir`] adds the full path (`/proc/PID/...`) to them.

mod dir;
mod fdinfo;
mod maps;
mod misc;
mod stat;
mod status;

pub use dir::{ProcDir, DEFAULT_PROC_ROOT};
pub use fdinfo::{
    parse_fdinfo, EpollTfd, FanotifyMark, FdInfo, FdInfoKind, FileLock, InotifyWatch,
};
pub use maps::{parse_maps, parse_smaps, VmFlags, Vma, VMFLAG_NAMES};
pub use misc::{
    parse_auxv, parse_cgroup, parse_children, parse_mountinfo, parse_ns_link, parse_personality,
    parse_timens_offsets, parse_timers, parse_u32_list, CgroupEntry, Mount, PosixTimer,
    TimensOffset,
};
pub use stat::{parse_stat, Stat, PF_IO_WORKER};
pub use status::{parse_status, self_peak_rss_kib, SeccompMode, Status};

/// Errors of /proc reading and parsing.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// An open/read/readlink below a proc dir failed.
    #[error("{op} {path}: {source} (is the process still alive, and is /proc mounted?)")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file's content did not have the expected format.
    #[error(
        "{file}:{line}: {msg} (unexpected /proc format; please report it with the file's content)"
    )]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
}

impl ProcError {
    /// A parse error in `file` (a name relative to the proc dir) at 1-based `line`.
    pub(crate) fn parse(file: &str, line: usize, msg: impl Into<String>) -> Self {
        ProcError::Parse {
            file: file.to_string(),
            line,
            msg: msg.into(),
        }
    }

    /// Prefix the file name of a parse error with the proc dir path it was read from.
    pub(crate) fn in_dir(self, dir: &std::path::Path) -> Self {
        match self {
            ProcError::Parse { file, line, msg } => ProcError::Parse {
                file: dir.join(file).display().to_string(),
                line,
                msg,
            },
            other => other,
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = ProcError> = std::result::Result<T, E>;

/// Shared small helpers for the parsers.
pub(crate) mod util {
    use super::ProcError;

    pub fn hex_u64(file: &str, line: usize, s: &str) -> Result<u64, ProcError> {
        u64::from_str_radix(s.trim(), 16)
            .map_err(|e| ProcError::parse(file, line, format!("bad hex number {s:?}: {e}")))
    }

    pub fn oct_u32(file: &str, line: usize, s: &str) -> Result<u32, ProcError> {
        u32::from_str_radix(s.trim(), 8)
            .map_err(|e| ProcError::parse(file, line, format!("bad octal number {s:?}: {e}")))
    }

    pub fn num<T: std::str::FromStr>(file: &str, line: usize, s: &str) -> Result<T, ProcError>
    where
        T::Err: std::fmt::Display,
    {
        s.trim()
            .parse::<T>()
            .map_err(|e| ProcError::parse(file, line, format!("bad number {s:?}: {e}")))
    }

    /// Splits `key:value` (value trimmed); None if there is no colon.
    pub fn key_value(line: &str) -> Option<(&str, &str)> {
        let (k, v) = line.split_once(':')?;
        Some((k.trim(), v.trim()))
    }
}
