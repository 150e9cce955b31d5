//! fanotify: the group's init flags and event file flags, and its marks on inodes and mounts (events
//! and ignored events, mark flags). Inode marks are found by file handle as inotify watches are (see
//! inotify.rs); mount marks by the mount's path. Restore creates the group in rcr and marks again.
//!
//! Not restored: the events queued at dump time (permission events waiting for an answer included:
//! the group that would answer is gone, so the kernel lets those accesses through). Refused: marks on
//! a whole filesystem (FAN_MARK_FILESYSTEM; CRIU's image has no such mark type).

use crate::image::pb;
use crate::proc::{FanotifyMark, FdInfoKind, Mount, ProcDir};
use crate::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::anon::{owned, set_status_flags};
use super::inotify::{fd_path, handle_bytes, handle_words, open_watched, split_kdev};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const LINK: &str = "anon_inode:[fanotify]";

/// fanotify groups as open fds.
pub struct Fanotifies;

fn dump_mark(pid: i32, num: i32, id: u32, m: &FanotifyMark, mounts: &[Mount]) -> Result<pb::FanotifyMarkEntry> {
    let what = format!("pid {pid}: fd {num} (fanotify)");
    let mut e = pb::FanotifyMarkEntry {
        id,
        r#type: pb::MarkType::Inode as i32,
        mflags: m.mflags,
        mask: m.mask,
        ignored_mask: m.ignored_mask,
        s_dev: m.sdev.unwrap_or(0) as u32,
        ie: None,
        me: None,
    };
    match (m.ino, m.mnt_id) {
        (Some(ino), _) => {
            let sdev = m.sdev.unwrap_or(0);
            let (major, minor) = split_kdev(sdev);
            let (fd, mnt_id) = open_watched(sdev, m.fhandle_type, &m.f_handle, mounts, |x| format!("/proc/{pid}/root{}", x.mount_point))
                .map_err(|err| Error::Io { ctx: format!("{what}: mark on inode {ino} of device {major}:{minor}: opening it by its file handle"), source: err })?;
            let path = fd_path(&fd);
            if path.is_empty() || path.ends_with(" (deleted)") {
                return Err(Error::not_supported(format!("{what}: mark on inode {ino}: the file was deleted ({path}); rcr cannot mark it again")));
            }
            e.ie = Some(pb::FanotifyInodeMarkEntry {
                i_ino: ino,
                f_handle: pb::FhEntry {
                    bytes: m.f_handle.len() as u32,
                    r#type: m.fhandle_type as u32,
                    handle: handle_words(&m.f_handle),
                    path: Some(path),
                    mnt_id: Some(mnt_id),
                },
            });
        }
        (None, Some(mnt_id)) => {
            let mp = mounts.iter().find(|x| x.mnt_id as u64 == mnt_id).ok_or_else(|| {
                Error::changed(format!("{what}: mark on mount {mnt_id}, which is not in the task's /proc/{pid}/mountinfo"))
            })?;
            e.r#type = pb::MarkType::Mount as i32;
            e.me = Some(pb::FanotifyMountMarkEntry { mnt_id: mnt_id as u32, path: Some(mp.mount_point.clone()) });
        }
        (None, None) => {
            return Err(Error::not_supported(format!(
                "{what}: a mark on a whole filesystem (FAN_MARK_FILESYSTEM, device {:?}) is not supported yet",
                m.sdev.map(split_kdev)
            )))
        }
    }
    Ok(e)
}

/// fanotify_mark(2) on `path`, or the error naming the mark.
fn mark(fd: &OwnedFd, id: u32, flags: u32, mask: u32, path: &str) -> Result<()> {
    let c = CString::new(path).map_err(|_| Error::Kernel(format!("fanotify {id}: path {path:?} has a NUL byte")))?;
    if let Err(source) = crate::sys::fanotify_mark(fd.as_fd(), flags, mask as u64, &c) {
        return Err(Error::Io { ctx: format!("fanotify {id}: fanotify_mark(flags {flags:#x}, mask {mask:#x}, {path})"), source });
    }
    Ok(())
}

fn restore_mark(fd: &OwnedFd, id: u32, m: &pb::FanotifyMarkEntry, mounts: &[Mount]) -> Result<()> {
    // The inode (kept open while marking) or the mount point.
    let (kind, _keep, path) = if let Some(ie) = &m.ie {
        let fh = &ie.f_handle;
        let target = match open_watched(m.s_dev as u64, fh.r#type as i32, &handle_bytes(fh), mounts, |x| x.mount_point.clone()) {
            Ok((t, _)) => t,
            Err(err) => {
                let path = fh.path.as_deref().unwrap_or("");
                super::inotify::open_path(path, libc::O_PATH).map_err(|_| Error::Io { ctx: format!("fanotify {id}: mark on inode {}: opening it by its file handle (and by its path {path:?})", ie.i_ino), source: err })?
            }
        };
        let p = format!("/proc/self/fd/{}", target.as_raw_fd());
        (libc::FAN_MARK_INODE, Some(target), p)
    } else if let Some(me) = &m.me {
        let path = me.path.clone().ok_or_else(|| Error::corrupt(format!("fanotify {id}: mount mark {} without a path", me.mnt_id)))?;
        (libc::FAN_MARK_MOUNT, None, path)
    } else {
        return Err(Error::corrupt(format!("fanotify {id}: a mark of type {} with neither inode nor mount", m.r#type)));
    };
    let evictable = m.mflags & libc::FAN_MARK_EVICTABLE;
    if m.mask != 0 {
        mark(fd, id, libc::FAN_MARK_ADD | kind | evictable, m.mask, &path)?;
    }
    if m.ignored_mask != 0 {
        // FAN_MARK_IGNORE (the newer form) or the legacy ignored mask, as the task set it.
        let how = if m.mflags & libc::FAN_MARK_IGNORE != 0 { libc::FAN_MARK_IGNORE } else { libc::FAN_MARK_IGNORED_MASK };
        let surv = m.mflags & libc::FAN_MARK_IGNORED_SURV_MODIFY;
        mark(fd, id, libc::FAN_MARK_ADD | kind | evictable | how | surv, m.ignored_mask, &path)?;
    }
    Ok(())
}

impl FileKind for Fanotifies {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.ffy.as_ref().map(|a| format!("fanotify, {} mark(s)", a.mark.len()))
    }

    fn name(&self) -> &'static str {
        "fanotify"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Fanotify]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let FdInfoKind::Fanotify { flags, event_flags, marks } = &fd.info.kind else {
            return Err(Error::Kernel("a fanotify whose fdinfo has no 'fanotify flags:' line".into()).at_fd(fd.pid, fd.fd, None));
        };
        let mounts = if marks.is_empty() { Vec::new() } else { fd.proc.mountinfo()? };
        let mark = marks.iter().map(|m| dump_mark(fd.pid, fd.fd, id, m, &mounts)).collect::<Result<Vec<_>>>()?;
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Fanotify as i32,
            id,
            ffy: Some(pb::FanotifyFileEntry {
                id,
                flags: fd.info.flags & !(libc::O_CLOEXEC as u32),
                fown: pb::FownEntry::default(),
                faflags: *flags,
                evflags: *event_flags,
                mark,
            }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.ffy else { return Ok(None) };
        let init = (e.faflags & !libc::FAN_NONBLOCK) | libc::FAN_CLOEXEC;
        let fd = owned(crate::sys::fanotify_init(init, e.evflags), || {
            format!("fanotify {}: fanotify_init(flags {init:#x}, event flags {:#o}) (needs CAP_SYS_ADMIN)", e.id, e.evflags)
        })?;
        let mounts = if e.mark.iter().any(|m| m.ie.is_some()) { ProcDir::open_self()?.mountinfo()? } else { Vec::new() };
        for m in &e.mark {
            restore_mark(&fd, e.id, m, &mounts)?;
        }
        set_status_flags(&fd, e.flags, &format!("fanotify {}", e.id))?;
        Ok(Some(fd))
    }
}
