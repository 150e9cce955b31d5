//! timerfds: the clock, the time left and the interval, the expirations not read yet (ticks) and the
//! settime flags (TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET).
//!
//! Dump first calls timerfd_gettime on rcr's copy of the file: for a periodic timer that expired, the
//! kernel only counts the overruns when the timer is read or queried, so fdinfo alone would show one tick
//! and no time left for a timer that expired several intervals ago. The query changes nothing the task
//! could see (a read would count the same). The time left is saved relative, as CRIU does: the time
//! between dump and restore does not count. Restore creates the timer in rcr, arms it with the time left
//! (an absolute timer at the restore clock's now plus the time left) and puts the ticks back with
//! TFD_IOC_SET_TICKS (a kernel with CONFIG_CHECKPOINT_RESTORE).

use crate::image::pb;
use crate::proc::FdInfoKind;
use crate::{Error, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::anon::{owned, set_status_flags};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const LINK: &str = "anon_inode:[timerfd]";

/// timerfds as open fds.
pub struct Timerfds;

fn ts(sec: u64, nsec: u64) -> libc::timespec {
    libc::timespec { tv_sec: sec as libc::time_t, tv_nsec: nsec as libc::c_long }
}

/// timerfd_gettime on rcr's copy: makes the kernel count the overruns of an expired periodic timer.
fn settle(file: BorrowedFd<'_>) -> std::io::Result<()> {
    crate::sys::timerfd_gettime(file).map(drop)
}

impl FileKind for Timerfds {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.tfd.as_ref().map(|t| format!("timerfd, clock {}, {}.{:09} s left, interval {}.{:09} s, {} unread", t.clockid, t.vsec, t.vnsec, t.isec, t.insec, t.ticks))
    }

    fn name(&self) -> &'static str {
        "timerfd"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Timerfd]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let (pid, num) = (fd.pid, fd.fd);
        // A periodic timer that expires between the query and the fdinfo read shows no time left again:
        // query once more (it cannot expire twice within an interval).
        let mut info = None;
        for _ in 0..3 {
            settle(fd.file).map_err(|e| Error::Io { ctx: format!("pid {pid}: fd {num}: timerfd_gettime"), source: e })?;
            let fi = fd.proc.fdinfo(num)?;
            let FdInfoKind::Timerfd { clockid, ticks, settime_flags, it_value, it_interval } = fi.kind else {
                return Err(Error::Kernel("a timerfd whose fdinfo has no clockid/it_value lines".into()).at_fd(pid, num, None));
            };
            let expired_unforwarded = it_value == (0, 0) && it_interval != (0, 0);
            info = Some((clockid, ticks, settime_flags, it_value, it_interval));
            if !expired_unforwarded {
                break;
            }
        }
        let Some((clockid, ticks, settime_flags, mut it_value, it_interval)) = info else {
            return Err(Error::Kernel("no timerfd state read".into()).at_fd(pid, num, None));
        };
        if it_value == (0, 0) && it_interval != (0, 0) {
            // Still expired and not forwarded: its next expiry is about an interval away.
            it_value = it_interval;
        }
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Timerfd as i32,
            id,
            tfd: Some(pb::TimerfdEntry {
                id,
                flags: fd.info.flags & !(libc::O_CLOEXEC as u32),
                fown: pb::FownEntry::default(),
                clockid: clockid as u32,
                ticks,
                settime_flags,
                vsec: it_value.0,
                vnsec: it_value.1,
                isec: it_interval.0,
                insec: it_interval.1,
            }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.tfd else { return Ok(None) };
        let what = || format!("timerfd {} (clock {})", e.id, e.clockid);
        let fd = owned(crate::sys::timerfd_create(e.clockid as i32, libc::TFD_CLOEXEC | libc::TFD_NONBLOCK), || {
            format!("{}: timerfd_create (the alarm clocks need CAP_WAKE_ALARM)", what())
        })?;
        let mut value = ts(e.vsec, e.vnsec);
        let armed = e.vsec != 0 || e.vnsec != 0;
        if armed && e.settime_flags & libc::TFD_TIMER_ABSTIME as u32 != 0 {
            let now = nix::time::clock_gettime(nix::time::ClockId::from_raw(e.clockid as i32))
                .map_err(|err| Error::Io { ctx: format!("{}: clock_gettime", what()), source: err.into() })?;
            let ns = now.tv_nsec() as u64 + e.vnsec;
            value = ts(now.tv_sec() as u64 + e.vsec + ns / 1_000_000_000, ns % 1_000_000_000);
        }
        let spec = libc::itimerspec { it_interval: ts(e.isec, e.insec), it_value: value };
        if let Err(source) = crate::sys::timerfd_settime(fd.as_fd(), e.settime_flags as i32, &spec) {
            return Err(Error::Io {
                ctx: format!("{}: timerfd_settime {}.{:09}s every {}.{:09}s (flags {:#o})", what(), e.vsec, e.vnsec, e.isec, e.insec, e.settime_flags),
                source,
            });
        }
        // After settime, which clears the ticks.
        if e.ticks > 0 {
            if let Err(source) = crate::sys::timerfd_set_ticks(fd.as_fd(), e.ticks) {
                return Err(Error::Io {
                    ctx: format!("{}: putting back its {} unread expirations (TFD_IOC_SET_TICKS needs a kernel built with CONFIG_CHECKPOINT_RESTORE)", what(), e.ticks),
                    source,
                });
            }
        }
        set_status_flags(&fd, e.flags, &what())?;
        Ok(Some(fd))
    }
}
