//! /proc/PID/fdinfo/FD: the common header (pos, flags, mnt_id, ino), typed extras for
//! eventfd, epoll, signalfd, timerfd, inotify and fanotify, and `lock:` lines. Lines this
//! parser does not know are kept in [`FdInfo::unknown`].
//!
//! Number bases follow the kernel's seq_printf formats (fs/eventfd.c, fs/eventpoll.c,
//! fs/signalfd.c, fs/timerfd.c, fs/notify/fdinfo.c, fs/locks.c).

use super::util::{hex_u64, num, oct_u32};
use super::{ProcError, Result};

const FILE: &str = "fdinfo";

/// One `tfd:` line of an epoll fd: a watched target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpollTfd {
    pub tfd: i32,
    pub events: u32,
    pub data: u64,
    pub pos: u64,
    pub ino: u64,
    pub sdev: u64,
}

/// One `inotify wd:` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InotifyWatch {
    pub wd: i32,
    pub ino: u64,
    pub sdev: u64,
    pub mask: u32,
    pub ignored_mask: u32,
    pub fhandle_bytes: u32,
    pub fhandle_type: i32,
    pub f_handle: Vec<u8>,
}

/// One `fanotify` mark line: an inode mark (ino/sdev/f_handle), a mount mark (mnt_id) or a
/// superblock mark (sdev only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FanotifyMark {
    pub ino: Option<u64>,
    pub sdev: Option<u64>,
    pub mnt_id: Option<u64>,
    pub mflags: u32,
    pub mask: u32,
    pub ignored_mask: u32,
    pub fhandle_bytes: u32,
    pub fhandle_type: i32,
    pub f_handle: Vec<u8>,
}

/// One `lock:` line ("1: POSIX  ADVISORY  WRITE 5708 fe:00:10010696 0 EOF").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileLock {
    /// `FLOCK`, `POSIX`, `OFDLCK`, `LEASE`, `DELEG`...
    pub kind: String,
    /// `ADVISORY` / `MANDATORY` (or a lease's `ACTIVE` / `BREAKING`...).
    pub mode: String,
    /// `READ`, `WRITE` or `UNLCK`.
    pub access: String,
    pub pid: i32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
    pub start: u64,
    /// `None` for `EOF`.
    pub end: Option<u64>,
    /// A blocked waiter (`->` marker).
    pub blocked: bool,
    /// The line as printed, in case more detail is needed.
    pub raw: String,
}

/// The file-type specific part of an fdinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FdInfoKind {
    /// No type-specific lines (regular files, pipes, sockets...).
    #[default]
    Plain,
    Eventfd {
        count: u64,
        id: Option<u64>,
        semaphore: Option<bool>,
    },
    Epoll {
        tfds: Vec<EpollTfd>,
    },
    Signalfd {
        sigmask: u64,
    },
    Timerfd {
        clockid: i32,
        ticks: u64,
        settime_flags: u32,
        /// (seconds, nanoseconds)
        it_value: (u64, u64),
        it_interval: (u64, u64),
    },
    Inotify {
        watches: Vec<InotifyWatch>,
    },
    Fanotify {
        flags: u32,
        event_flags: u32,
        marks: Vec<FanotifyMark>,
    },
}

/// A parsed /proc/PID/fdinfo/FD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    /// open(2) flags (printed in octal).
    pub flags: u32,
    pub mnt_id: Option<u64>,
    pub ino: Option<u64>,
    pub kind: FdInfoKind,
    pub locks: Vec<FileLock>,
    /// Lines not understood, verbatim.
    pub unknown: Vec<String>,
}

/// Splits "a:1 b: 2 c:3" into (key, value) pairs; a key whose colon is followed by spaces
/// takes the next token as value.
fn pairs(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut it = s.split_ascii_whitespace();
    while let Some(tok) = it.next() {
        match tok.split_once(':') {
            Some((k, "")) => out.push((k, it.next().unwrap_or(""))),
            Some((k, v)) => out.push((k, v)),
            None => out.push((tok, "")),
        }
    }
    out
}

fn handle_bytes(ln: usize, s: &str) -> Result<Vec<u8>> {
    if s.len() & 1 == 1 {
        return Err(ProcError::parse(
            FILE,
            ln,
            format!("odd-length f_handle {s:?}"),
        ));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            let b = s.get(i..i + 2).unwrap_or("");
            u8::from_str_radix(b, 16)
                .map_err(|e| ProcError::parse(FILE, ln, format!("bad f_handle byte {b:?}: {e}")))
        })
        .collect()
}

fn parse_tfd(ln: usize, rest: &str) -> Result<EpollTfd> {
    let mut t = EpollTfd::default();
    for (k, v) in pairs(rest) {
        match k {
            "tfd" => t.tfd = num(FILE, ln, v)?,
            "events" => t.events = hex_u64(FILE, ln, v)? as u32,
            "data" => t.data = hex_u64(FILE, ln, v)?,
            "pos" => t.pos = num(FILE, ln, v)?,
            "ino" => t.ino = hex_u64(FILE, ln, v)?,
            "sdev" => t.sdev = hex_u64(FILE, ln, v)?,
            _ => {}
        }
    }
    Ok(t)
}

fn parse_inotify(ln: usize, rest: &str) -> Result<InotifyWatch> {
    let mut w = InotifyWatch::default();
    for (k, v) in pairs(rest) {
        match k {
            "wd" => w.wd = hex_u64(FILE, ln, v)? as i32, // "wd:%x"
            "ino" => w.ino = hex_u64(FILE, ln, v)?,
            "sdev" => w.sdev = hex_u64(FILE, ln, v)?,
            "mask" => w.mask = hex_u64(FILE, ln, v)? as u32,
            "ignored_mask" => w.ignored_mask = hex_u64(FILE, ln, v)? as u32,
            "fhandle-bytes" => w.fhandle_bytes = hex_u64(FILE, ln, v)? as u32,
            "fhandle-type" => w.fhandle_type = hex_u64(FILE, ln, v)? as i32,
            "f_handle" => w.f_handle = handle_bytes(ln, v)?,
            _ => {}
        }
    }
    Ok(w)
}

fn parse_fanotify_mark(ln: usize, rest: &str) -> Result<FanotifyMark> {
    let mut m = FanotifyMark::default();
    for (k, v) in pairs(rest) {
        match k {
            "ino" => m.ino = Some(hex_u64(FILE, ln, v)?),
            "sdev" => m.sdev = Some(hex_u64(FILE, ln, v)?),
            "mnt_id" => m.mnt_id = Some(hex_u64(FILE, ln, v)?),
            "mflags" => m.mflags = hex_u64(FILE, ln, v)? as u32,
            "mask" => m.mask = hex_u64(FILE, ln, v)? as u32,
            "ignored_mask" => m.ignored_mask = hex_u64(FILE, ln, v)? as u32,
            "fhandle-bytes" => m.fhandle_bytes = hex_u64(FILE, ln, v)? as u32,
            "fhandle-type" => m.fhandle_type = hex_u64(FILE, ln, v)? as i32,
            "f_handle" => m.f_handle = handle_bytes(ln, v)?,
            _ => {}
        }
    }
    Ok(m)
}

fn parse_lock(ln: usize, rest: &str) -> Result<FileLock> {
    let bad = |m: &str| ProcError::parse(FILE, ln, format!("{m} in lock line {rest:?}"));
    let mut toks: Vec<&str> = rest.split_ascii_whitespace().collect();
    // "1:" then an optional "->" for blocked waiters.
    if toks.first().is_some_and(|t| t.ends_with(':')) {
        toks.remove(0);
    }
    let blocked = toks.first() == Some(&"->");
    if blocked {
        toks.remove(0);
    }
    let [kind, mode, access, pid, dev_ino, start, end, ..] = toks[..] else {
        return Err(bad("too few fields"));
    };
    let mut di = dev_ino.splitn(3, ':');
    let (Some(maj), Some(min), Some(ino)) = (di.next(), di.next(), di.next()) else {
        return Err(bad("bad dev:ino"));
    };
    Ok(FileLock {
        kind: kind.to_string(),
        mode: mode.to_string(),
        access: access.to_string(),
        pid: num(FILE, ln, pid)?,
        dev_major: hex_u64(FILE, ln, maj)? as u32,
        dev_minor: hex_u64(FILE, ln, min)? as u32,
        ino: num(FILE, ln, ino)?,
        start: num(FILE, ln, start)?,
        end: if end == "EOF" {
            None
        } else {
            Some(num(FILE, ln, end)?)
        },
        blocked,
        raw: rest.trim().to_string(),
    })
}

fn parse_pair(ln: usize, v: &str) -> Result<(u64, u64)> {
    let inner = v.trim().trim_start_matches('(').trim_end_matches(')');
    let (a, b) = inner
        .split_once(',')
        .ok_or_else(|| ProcError::parse(FILE, ln, format!("expected (sec, nsec), got {v:?}")))?;
    Ok((num(FILE, ln, a)?, num(FILE, ln, b)?))
}

/// Parses /proc/PID/fdinfo/FD.
pub fn parse_fdinfo(text: &str) -> Result<FdInfo> {
    let mut fi = FdInfo::default();
    let mut seen_pos = false;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // Multi-pair lines first: their first word is not followed by ':'.
        if let Some(rest) = line.strip_prefix("inotify ") {
            let w = parse_inotify(ln, rest)?;
            match &mut fi.kind {
                FdInfoKind::Inotify { watches } => watches.push(w),
                k => *k = FdInfoKind::Inotify { watches: vec![w] },
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("fanotify ") {
            if !matches!(fi.kind, FdInfoKind::Fanotify { .. }) {
                fi.kind = FdInfoKind::Fanotify {
                    flags: 0,
                    event_flags: 0,
                    marks: Vec::new(),
                };
            }
            let FdInfoKind::Fanotify {
                flags,
                event_flags,
                marks,
            } = &mut fi.kind
            else {
                continue;
            };
            if rest.starts_with("flags:") {
                for (k, v) in pairs(rest) {
                    match k {
                        "flags" => *flags = hex_u64(FILE, ln, v)? as u32,
                        "event-flags" => *event_flags = hex_u64(FILE, ln, v)? as u32,
                        _ => {}
                    }
                }
            } else {
                marks.push(parse_fanotify_mark(ln, rest)?);
            }
            continue;
        }
        let Some((key, v)) = line.split_once(':') else {
            fi.unknown.push(line.to_string());
            continue;
        };
        let v = v.trim();
        match key {
            "pos" => {
                fi.pos = num(FILE, ln, v)?;
                seen_pos = true;
            }
            "flags" => fi.flags = oct_u32(FILE, ln, v)?,
            "mnt_id" => fi.mnt_id = Some(num(FILE, ln, v)?),
            "ino" => fi.ino = Some(num(FILE, ln, v)?),
            "lock" => fi.locks.push(parse_lock(ln, v)?),
            "eventfd-count" | "eventfd-id" | "eventfd-semaphore" => {
                if !matches!(fi.kind, FdInfoKind::Eventfd { .. }) {
                    fi.kind = FdInfoKind::Eventfd {
                        count: 0,
                        id: None,
                        semaphore: None,
                    };
                }
                if let FdInfoKind::Eventfd {
                    count,
                    id,
                    semaphore,
                } = &mut fi.kind
                {
                    match key {
                        "eventfd-count" => *count = hex_u64(FILE, ln, v)?,
                        "eventfd-id" => *id = Some(num(FILE, ln, v)?),
                        _ => *semaphore = Some(num::<u8>(FILE, ln, v)? != 0),
                    }
                }
            }
            "tfd" => {
                let t = parse_tfd(ln, line)?;
                match &mut fi.kind {
                    FdInfoKind::Epoll { tfds } => tfds.push(t),
                    k => *k = FdInfoKind::Epoll { tfds: vec![t] },
                }
            }
            "sigmask" => {
                fi.kind = FdInfoKind::Signalfd {
                    sigmask: hex_u64(FILE, ln, v)?,
                }
            }
            "clockid" | "ticks" | "settime flags" | "it_value" | "it_interval" => {
                if !matches!(fi.kind, FdInfoKind::Timerfd { .. }) {
                    fi.kind = FdInfoKind::Timerfd {
                        clockid: 0,
                        ticks: 0,
                        settime_flags: 0,
                        it_value: (0, 0),
                        it_interval: (0, 0),
                    };
                }
                if let FdInfoKind::Timerfd {
                    clockid,
                    ticks,
                    settime_flags,
                    it_value,
                    it_interval,
                } = &mut fi.kind
                {
                    match key {
                        "clockid" => *clockid = num(FILE, ln, v)?,
                        "ticks" => *ticks = num(FILE, ln, v)?,
                        "settime flags" => *settime_flags = oct_u32(FILE, ln, v)?,
                        "it_value" => *it_value = parse_pair(ln, v)?,
                        _ => *it_interval = parse_pair(ln, v)?,
                    }
                }
            }
            _ => fi.unknown.push(line.to_string()),
        }
    }
    if !seen_pos {
        return Err(ProcError::parse(FILE, 1, "no pos: line"));
    }
    Ok(fi)
}

#[cfg(test)]
mod tests {
    use super::*;

    // All samples below were captured from /proc/PID/fdinfo on the 6.18 kernel.

    #[test]
    fn plain_file_and_locks() {
        let fi = parse_fdinfo(
            "pos:\t103\nflags:\t02100001\nmnt_id:\t27\nino:\t10010697\n\
             lock:\t1: FLOCK  ADVISORY  WRITE 5653 fe:00:10010697 0 EOF\n\
             lock:\t2: -> POSIX  ADVISORY  READ 77 fe:01:10010697 10 19\n",
        )
        .unwrap();
        assert_eq!(
            (fi.pos, fi.flags, fi.mnt_id, fi.ino),
            (103, 0o2100001, Some(27), Some(10010697))
        );
        assert_eq!(fi.kind, FdInfoKind::Plain);
        assert_eq!(fi.locks.len(), 2);
        let l = &fi.locks[0];
        assert_eq!(
            (l.kind.as_str(), l.mode.as_str(), l.access.as_str()),
            ("FLOCK", "ADVISORY", "WRITE")
        );
        assert_eq!(
            (l.pid, l.dev_major, l.dev_minor, l.ino, l.start, l.end),
            (5653, 0xfe, 0, 10010697, 0, None)
        );
        assert!(!l.blocked);
        let l = &fi.locks[1];
        assert!(l.blocked);
        assert_eq!(
            (l.kind.as_str(), l.pid, l.dev_minor, l.start, l.end),
            ("POSIX", 77, 1, 10, Some(19))
        );
        assert!(fi.unknown.is_empty());
    }

    #[test]
    fn eventfd() {
        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
             eventfd-count:               1a\neventfd-id: 1\neventfd-semaphore: 1\n",
        )
        .unwrap();
        assert_eq!(
            fi.kind,
            FdInfoKind::Eventfd {
                count: 0x1a,
                id: Some(1),
                semaphore: Some(true)
            }
        );
        assert_eq!(fi.flags, 2);
    }

    #[test]
    fn epoll() {
        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n\
             tfd:        4 events:       1c data:                4  pos:0 ino:40e sdev:10\n\
             tfd:        3 events:       19 data:  ffffffffffffffff  pos:12 ino:40e sdev:10\n",
        )
        .unwrap();
        let FdInfoKind::Epoll { tfds } = fi.kind else {
            panic!("not epoll: {:?}", fi.kind)
        };
        assert_eq!(
            tfds[0],
            EpollTfd {
                tfd: 4,
                events: 0x1c,
                data: 4,
                pos: 0,
                ino: 0x40e,
                sdev: 0x10
            }
        );
        assert_eq!(
            (tfds[1].tfd, tfds[1].events, tfds[1].data, tfds[1].pos),
            (3, 0x19, u64::MAX, 12)
        );
    }

    #[test]
    fn signalfd_and_timerfd() {
        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000004200\n",
        )
        .unwrap();
        assert_eq!(fi.kind, FdInfoKind::Signalfd { sigmask: 0x4200 });
        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 3\n\
             settime flags: 01\nit_value: (99, 997747114)\nit_interval: (2, 500)\n",
        )
        .unwrap();
        assert_eq!(
            fi.kind,
            FdInfoKind::Timerfd {
                clockid: 1,
                ticks: 3,
                settime_flags: 1,
                it_value: (99, 997747114),
                it_interval: (2, 500)
            }
        );
    }

    #[test]
    fn inotify_and_fanotify() {
        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1038\n\
             inotify wd:1 ino:3c4a7 sdev:fe00000 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a7c4030000000000\n\
             inotify wd:2 ino:2 sdev:fe00000 mask:fff ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0200000000000000\n\
             inotify wd:1f9 ino:2 sdev:fe00000 mask:200 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0200000000000000\n",
        )
        .unwrap();
        let FdInfoKind::Inotify { watches } = fi.kind else {
            panic!("not inotify")
        };
        assert_eq!(watches.len(), 3);
        assert_eq!(watches[2].wd, 0x1f9, "wd is printed in hex");
        let w = &watches[0];
        assert_eq!(
            (w.wd, w.ino, w.sdev, w.mask, w.ignored_mask),
            (1, 0x3c4a7, 0xfe00000, 0x300, 0)
        );
        assert_eq!((w.fhandle_bytes, w.fhandle_type), (8, 1));
        assert_eq!(w.f_handle, [0xa7, 0xc4, 0x03, 0, 0, 0, 0, 0]);

        let fi = parse_fdinfo(
            "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
             fanotify flags:0 event-flags:8000\n\
             fanotify ino:3c4a7 sdev:fe00000 mflags:0 mask:28 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a7c4030000000000\n\
             fanotify mnt_id:1b mflags:0 mask:8 ignored_mask:0\n",
        )
        .unwrap();
        let FdInfoKind::Fanotify {
            flags,
            event_flags,
            marks,
        } = fi.kind
        else {
            panic!("not fanotify")
        };
        assert_eq!((flags, event_flags), (0, 0x8000));
        assert_eq!(marks.len(), 2);
        assert_eq!(
            (marks[0].ino, marks[0].sdev, marks[0].mask),
            (Some(0x3c4a7), Some(0xfe00000), 0x28)
        );
        assert_eq!(marks[0].f_handle.len(), 8);
        assert_eq!(
            (marks[1].mnt_id, marks[1].ino, marks[1].mask),
            (Some(0x1b), None, 8)
        );
    }

    #[test]
    fn unknown_lines_kept_and_errors() {
        let fi = parse_fdinfo("pos:\t0\nflags:\t0\nnew-thing: 5\nweird line\n").unwrap();
        assert_eq!(fi.unknown, ["new-thing: 5", "weird line"]);
        assert!(parse_fdinfo("flags:\t0\n").is_err());
        let e = parse_fdinfo("pos:\t0\nflags:\t09\n").unwrap_err();
        assert!(e.to_string().starts_with("fdinfo:2:"), "{e}");
        assert!(parse_fdinfo("pos:\t0\ninotify wd:1 f_handle:abc\n").is_err());
        assert!(parse_fdinfo("pos:\t0\nlock:\t1: FLOCK ADVISORY\n").is_err());
    }
}
