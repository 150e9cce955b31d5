//! epoll: the watches (target fd number, event mask, data), EPOLLET, EPOLLONESHOT, an epoll watching
//! another epoll.
//!
//! The kernel keys a watch by (file, fd number) in the fd table of the task that added it: the task's
//! own EPOLL_CTL_MOD/DEL only find watches added with its numbers. So restore creates the epoll in rcr
//! and adds the watches IN THE TASK (remote epoll_ctl) once its fds are at their numbers.
//!
//! Dump checks with kcmp(KCMP_EPOLL_TFD) that each watched fd number still is the watched file: a watch
//! whose fd was closed (or reused) while the file lives on elsewhere cannot be added again by number.
//!
//! A one-shot watch that already fired keeps only its EPOLLONESHOT/EPOLLET bits (fdinfo shows just those).
//! epoll_ctl always adds EPOLLERR|EPOLLHUP, so it cannot add such a watch directly; restore adds it armed
//! for every event and lets it fire once with epoll_wait(maxevents 1, timeout 0) before any other watch
//! exists, which leaves exactly the dumped bits. A target ready for nothing at restore cannot fire: that
//! watch stays armed for EPOLLERR|EPOLLHUP only (and a warning says so).
//!
//! Not restored: which events were already reported on the ready list (an EPOLLET watch whose target is
//! ready reports once more after restore, as with CRIU).

use crate::compel::Remote;
use crate::image::pb;
use crate::proc::FdInfoKind;
use crate::sys::{self, Errno, KcmpResult};
use crate::{Error, Result};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::fd::OwnedFd;

use super::anon::{owned, set_status_flags};
use super::mem::errno_str;
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const LINK: &str = "anon_inode:[eventpoll]";
/// The bits a fired one-shot watch keeps (EP_PRIVATE_BITS in fs/eventpoll.c).
const PRIVATE_BITS: u32 = (libc::EPOLLWAKEUP | libc::EPOLLONESHOT | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32;
/// Every event a target can be ready for.
const ALL_EVENTS: u32 = (libc::EPOLLIN
    | libc::EPOLLPRI
    | libc::EPOLLOUT
    | libc::EPOLLERR
    | libc::EPOLLHUP
    | libc::EPOLLRDNORM
    | libc::EPOLLRDBAND
    | libc::EPOLLWRNORM
    | libc::EPOLLWRBAND
    | libc::EPOLLMSG
    | libc::EPOLLRDHUP) as u32;

/// Whether a watch's events are those of a one-shot watch that fired.
pub fn disarmed(events: u32) -> bool {
    events & libc::EPOLLONESHOT as u32 != 0 && events & !PRIVATE_BITS == 0
}

/// struct epoll_event as x86-64 lays it out (packed: 4 bytes of events, 8 of data).
fn event_bytes(events: u32, data: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&events.to_ne_bytes());
    b[4..].copy_from_slice(&data.to_ne_bytes());
    b
}

/// epolls as open fds.
#[derive(Default)]
pub struct Epolls {
    /// Restore: the epolls whose watches are added (an epoll shared by several tasks gets them once).
    done: RefCell<BTreeSet<u32>>,
    /// Restore: the epolls opened that have watches.
    with_watches: BTreeSet<u32>,
}

/// Checks that fd `tfd` of `pid` is the file epoll fd `efd` watches as its `toff`-th watch numbered `tfd`.
fn check_target(pid: i32, efd: i32, t: &crate::proc::EpollTfd, toff: u32) -> Result<()> {
    let gone = |how: &str| {
        Error::not_supported(format!(
            "pid {pid}: fd {efd} (epoll) watches fd {} (inode {}), but {how}: the fd was closed or reused after EPOLL_CTL_ADD while the file lives on; rcr adds watches again by fd number and cannot restore this one (close the epoll's stale watch with EPOLL_CTL_DEL before closing the fd)",
            t.tfd, t.ino
        ))
    };
    let p = Pid::from_raw(pid);
    match sys::kcmp_epoll_tfd(p, t.tfd, p, efd, t.tfd, toff) {
        Ok(KcmpResult::Equal) => Ok(()),
        Ok(_) => Err(gone(&format!("fd {} of the task is another file now", t.tfd))),
        Err(e) if e.errno() == Some(Errno::EBADF) => Err(gone(&format!("the task has no fd {}", t.tfd))),
        Err(e) => Err(Error::from(e).at(format!("checking its watch of fd {}", t.tfd)).at_fd(pid, efd, Some("epoll".into()))),
    }
}

/// Adds the watches of epoll `e` (at fd `epfd` of the task) with the task's fd numbers.
fn add_watches(r: &mut Remote<'_>, pid: i32, epfd: u32, e: &pb::EventpollFileEntry) -> Result<()> {
    let ctl = |r: &mut Remote<'_>, op: i32, t: &pb::EventpollTfdEntry, events: u32| -> Result<()> {
        let ev = r.scratch_put(&event_bytes(events, t.data))?;
        let got = r.syscall(libc::SYS_epoll_ctl, &[epfd as u64, op as u64, t.tfd as u64, ev])?;
        if got < 0 {
            let name = if op == libc::EPOLL_CTL_ADD { "EPOLL_CTL_ADD" } else { "EPOLL_CTL_MOD" };
            return Err(Error::Kernel(format!("pid {pid}: fd {epfd} (epoll): {name} of fd {} with events {events:#x}: {}", t.tfd, errno_str(got))));
        }
        Ok(())
    };
    // Fired one-shot watches first, each alone on the ready list while it fires.
    for t in e.tfd.iter().filter(|t| disarmed(t.events)) {
        ctl(r, libc::EPOLL_CTL_ADD, t, t.events | ALL_EVENTS)?;
        let out = r.scratch_put(&[0u8; 12])?;
        let n = r.syscall(libc::SYS_epoll_wait, &[epfd as u64, out, 1, 0])?;
        let mut got = [0u8; 12];
        r.scratch_get(out, &mut got)?;
        if n == 1 && got[4..] == t.data.to_ne_bytes() {
            continue;
        }
        if !(0..=1).contains(&n) {
            return Err(Error::Kernel(format!("pid {pid}: fd {epfd} (epoll): epoll_wait to disarm the one-shot watch of fd {}: {}", t.tfd, errno_str(n))));
        }
        if n == 1 {
            return Err(Error::Kernel(format!("fd {epfd} (epoll): disarming the one-shot watch of fd {} reported another watch", t.tfd)).at_task(pid, ""));
        }
        ctl(r, libc::EPOLL_CTL_MOD, t, t.events)?;
        tracing::warn!(
            "pid {pid}: fd {epfd} (epoll): the one-shot watch of fd {} had fired; its target is ready for nothing now, so it is armed again for EPOLLERR|EPOLLHUP only",
            t.tfd
        );
    }
    for t in e.tfd.iter().filter(|t| !disarmed(t.events)) {
        ctl(r, libc::EPOLL_CTL_ADD, t, t.events)?;
    }
    Ok(())
}

/// How deep the epolls that epoll fd `fd` watches nest (0: it watches no epoll of this task); the
/// kernel allows 5 levels, `left` bounds the walk.
fn nesting(fd: u32, epolls: &[(u32, &pb::EventpollFileEntry)], left: u32) -> u32 {
    let Some((_, e)) = epolls.iter().find(|(f, _)| *f == fd) else { return 0 };
    if left == 0 {
        return 0;
    }
    e.tfd.iter().filter(|t| epolls.iter().any(|(f, _)| *f == t.tfd)).map(|t| 1 + nesting(t.tfd, epolls, left - 1)).max().unwrap_or(0)
}

impl FileKind for Epolls {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.epfd.as_ref().map(|e| format!("epoll, {} watch(es) on fds {:?}", e.tfd.len(), e.tfd.iter().map(|t| t.tfd).collect::<Vec<_>>()))
    }

    fn name(&self) -> &'static str {
        "epoll"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Eventpoll]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let tfds: &[crate::proc::EpollTfd] = match &fd.info.kind {
            FdInfoKind::Epoll { tfds } => tfds,
            // No tfd: lines: an epoll watching nothing.
            FdInfoKind::Plain => &[],
            k => return Err(Error::Kernel(format!("an epoll whose fdinfo reads as {k:?}")).at_fd(fd.pid, fd.fd, None)),
        };
        let mut out = Vec::with_capacity(tfds.len());
        for (i, t) in tfds.iter().enumerate() {
            let toff = tfds[..i].iter().filter(|o| o.tfd == t.tfd).count() as u32;
            check_target(fd.pid, fd.fd, t, toff)?;
            out.push(pb::EventpollTfdEntry {
                id,
                tfd: t.tfd as u32,
                events: t.events,
                data: t.data,
                dev: Some(t.sdev as u32),
                inode: Some(t.ino),
                pos: Some(t.pos),
            });
        }
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Eventpoll as i32,
            id,
            epfd: Some(pb::EventpollFileEntry { id, flags: fd.info.flags & !(libc::O_CLOEXEC as u32), fown: pb::FownEntry::default(), tfd: out }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.epfd else { return Ok(None) };
        let epoll = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC);
        let fd = owned(epoll.map(|p| p.0).map_err(Into::into), || format!("epoll {}: epoll_create1", e.id))?;
        if !e.tfd.is_empty() {
            self.with_watches.insert(e.id);
        }
        set_status_flags(&fd, e.flags, &format!("epoll {}", e.id))?;
        Ok(Some(fd))
    }

    fn in_task(&self, r: &mut Remote<'_>, pid: i32, fds: &[(&pb::FdinfoEntry, &pb::FileEntry)], _env: &RestoreEnv<'_>) -> Result<()> {
        let epolls: Vec<(u32, &pb::EventpollFileEntry)> = fds.iter().filter_map(|(fi, f)| f.epfd.as_ref().map(|e| (fi.fd, e))).collect();
        // Inner epolls first: a fired one-shot watch of an outer epoll on an inner one can only fire
        // again once the inner one has its watches (and is ready).
        let mut order: Vec<(u32, u32, &pb::EventpollFileEntry)> = epolls.iter().map(|(fd, e)| (nesting(*fd, &epolls, 8), *fd, *e)).collect();
        order.sort_by_key(|(n, fd, _)| (*n, *fd));
        for (_, fd, e) in order {
            if self.done.borrow().contains(&e.id) {
                continue;
            }
            // The watches name fd numbers of the task that added them: a task sharing the epoll without
            // those fds leaves them to the task that has them (dump checked that one does).
            if let Some(t) = e.tfd.iter().find(|t| !fds.iter().any(|(x, _)| x.fd == t.tfd)) {
                tracing::debug!("pid {pid}: fd {fd} (epoll): no fd {} here; its watches are added by another task", t.tfd);
                continue;
            }
            add_watches(r, pid, fd, e)?;
            self.done.borrow_mut().insert(e.id);
        }
        Ok(())
    }

    fn finish_restore(&mut self) {
        // Dump checked that the task it read the epoll from has every watched fd number; a checkpoint
        // from elsewhere may not.
        for id in self.with_watches.difference(&self.done.borrow()) {
            tracing::warn!("epoll {id}: no restored task has all the fds it watches; it was restored without its watches");
        }
        self.with_watches.clear();
        self.done.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_bits() {
        assert!(disarmed(0x4000_0000));
        assert!(disarmed(0xc000_0000));
        assert!(!disarmed(0x4000_0019));
        assert!(!disarmed(0x8000_0000));
        assert_eq!(event_bytes(0x19, 7)[..5], [0x19, 0, 0, 0, 7]);
    }
}
