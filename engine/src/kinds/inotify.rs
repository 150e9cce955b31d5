//! inotify: the watches (watched inode, event mask) with their watch descriptors.
//!
//! fdinfo names a watched inode by device, inode number and file handle. Dump opens the handle
//! (open_by_handle_at on a mount of that device) to learn a path, saved with the handle as CRIU does.
//! Restore opens the handle again (the path only when the handle no longer opens), and adds the watch
//! through /proc/self/fd/N, so it lands on that very inode.
//!
//! Watch descriptors: the kernel hands them out cyclically (idr_alloc_cyclic from the last one given
//! plus one), so restore adds the watches in wd order and, to reach a wanted wd, adds and removes a watch
//! until the kernel's counter gets there (as CRIU does). Each removal queues an IN_IGNORED event; the new
//! inotify's queue is emptied before the task gets it. Not restored: the events queued at dump time, and
//! the next wd a new watch gets (after restore: the highest restored wd plus one).

use crate::image::pb;
use crate::proc::{FdInfoKind, InotifyWatch, Mount, ProcDir};
use crate::{sys, Error, Result};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::anon::{owned, set_status_flags};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const LINK: &str = "anon_inode:inotify";
/// CRIU's fh_entry keeps at least this many 64-bit words of handle (fh_entry_sizes.min_entries).
const FH_MIN_WORDS: usize = 16;

/// inotify instances as open fds.
pub struct Inotifies;

/// The kernel's s_dev as (major, minor) (MKDEV: 12 bits of major above 20 of minor).
pub(super) fn split_kdev(sdev: u64) -> (u32, u32) {
    ((sdev >> 20) as u32, (sdev & 0xfffff) as u32)
}

pub(super) fn handle_words(bytes: &[u8]) -> Vec<u64> {
    let mut words: Vec<u64> = bytes.chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    }).collect();
    if words.len() < FH_MIN_WORDS {
        words.resize(FH_MIN_WORDS, 0);
    }
    words
}

pub(super) fn handle_bytes(fh: &pb::FhEntry) -> Vec<u8> {
    let mut b: Vec<u8> = fh.handle.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.truncate(fh.bytes as usize);
    b
}

pub(super) fn open_path(path: &str, flags: i32) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    sys::open(&c, flags | libc::O_CLOEXEC)
}

/// open_by_handle_at(O_PATH) relative to the mount at `mount_dir`.
fn open_handle(mount_dir: &str, ty: i32, handle: &[u8]) -> std::io::Result<OwnedFd> {
    // Not O_PATH: open_by_handle_at refuses an O_PATH mount fd (EBADF).
    let m = open_path(mount_dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    sys::open_by_handle_at(m.as_fd(), ty, handle, libc::O_PATH | libc::O_CLOEXEC)
}

/// Opens the inode of a watch (O_PATH) by its handle through one of the mounts of its device (`mount_dir`
/// gives the directory of a mount); returns the fd and the mount's id, or the last error.
pub(super) fn open_watched(sdev: u64, ty: i32, handle: &[u8], mounts: &[Mount], mount_dir: impl Fn(&Mount) -> String) -> std::result::Result<(OwnedFd, u32), std::io::Error> {
    let (major, minor) = split_kdev(sdev);
    let mut on_dev: Vec<&Mount> = mounts.iter().filter(|m| m.dev_major == major && m.dev_minor == minor).collect();
    // A mount of the filesystem's root reaches every inode; a bind mount of a subtree may not.
    on_dev.sort_by_key(|m| m.root != "/");
    let mut last = std::io::Error::from_raw_os_error(libc::ENODEV);
    for m in on_dev {
        match open_handle(&mount_dir(m), ty, handle) {
            Ok(fd) => return Ok((fd, m.mnt_id)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub(super) fn fd_path(fd: &OwnedFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

fn dump_watch(pid: i32, num: i32, id: u32, w: &InotifyWatch, mounts: &[Mount]) -> Result<pb::InotifyWdEntry> {
    let (major, minor) = split_kdev(w.sdev);
    let what = || format!("pid {pid}: fd {num} (inotify): watch {} on inode {} of device {major}:{minor}", w.wd, w.ino);
    let (fd, mnt_id) = open_watched(w.sdev, w.fhandle_type, &w.f_handle, mounts, |m| format!("/proc/{pid}/root{}", m.mount_point))
        .map_err(|e| Error::Io { ctx: format!("{}: opening it by its file handle (open_by_handle_at)", what()), source: e })?;
    let path = fd_path(&fd);
    if path.is_empty() || path.ends_with(" (deleted)") {
        return Err(Error::not_supported(format!("{}: the watched file was deleted ({path}); rcr cannot watch it again", what())));
    }
    Ok(pb::InotifyWdEntry {
        id,
        i_ino: w.ino,
        mask: w.mask,
        ignored_mask: w.ignored_mask,
        s_dev: w.sdev as u32,
        wd: w.wd as u32,
        f_handle: pb::FhEntry {
            bytes: w.f_handle.len() as u32,
            r#type: w.fhandle_type as u32,
            handle: handle_words(&w.f_handle),
            path: Some(path),
            mnt_id: Some(mnt_id),
        },
    })
}

/// The watched inode of `w` at restore: by handle, else by the saved path if it still is that inode.
fn restore_target(id: u32, w: &pb::InotifyWdEntry, mounts: &[Mount]) -> Result<OwnedFd> {
    let fh = &w.f_handle;
    let by_handle = open_watched(w.s_dev as u64, fh.r#type as i32, &handle_bytes(fh), mounts, |m| m.mount_point.clone());
    let err = match by_handle {
        Ok((fd, _)) => return Ok(fd),
        Err(e) => e,
    };
    let what = format!("inotify {id}: watch {} on inode {}", w.wd, w.i_ino);
    let Some(path) = fh.path.as_deref() else {
        return Err(Error::Io { ctx: format!("{what}: opening it by its file handle"), source: err });
    };
    let fd = open_path(path, libc::O_PATH).map_err(|e| Error::Io { ctx: format!("{what}: its handle does not open ({err}), nor does its path {path}"), source: e })?;
    let ino = nix::sys::stat::fstat(fd.as_raw_fd()).map_or(0, |st| st.st_ino);
    if ino != w.i_ino {
        return Err(Error::changed(format!(
            "{what}: its handle does not open ({err}) and {path} is now inode {}, another file; rcr will not watch a different file",
            ino
        )));
    }
    Ok(fd)
}

/// Adds a watch on `target` to inotify `ifd` and makes it get watch descriptor `want`.
fn add_with_wd(ifd: &OwnedFd, id: u32, target: &OwnedFd, mask: u32, want: i32) -> Result<()> {
    let path = CString::new(format!("/proc/self/fd/{}", target.as_raw_fd())).unwrap_or_default();
    // Flags of inotify_add_watch that are not part of a watch.
    let mask = mask & !(libc::IN_MASK_ADD | libc::IN_DONT_FOLLOW | 0x1000_0000 /* IN_MASK_CREATE */);
    loop {
        let wd = sys::inotify_add_watch(ifd.as_fd(), &path, mask)
            .map_err(|source| Error::Io { ctx: format!("inotify {id}: adding watch {want} (mask {mask:#x})"), source })?;
        if wd == want {
            return Ok(());
        }
        if wd > want {
            return Err(Error::Kernel(format!("inotify {id}: the kernel gave watch descriptor {wd} where {want} was wanted (two watches on one inode?)")));
        }
        if let Err(source) = sys::inotify_rm_watch(ifd.as_fd(), wd) {
            return Err(Error::Io { ctx: format!("inotify {id}: removing stepping watch {wd}"), source });
        }
    }
}

/// Empties the queue of a new inotify (the IN_IGNORED events of the stepping watches).
fn drain(ifd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    // The fd is non-blocking: the loop ends at EAGAIN.
    while matches!(nix::unistd::read(ifd.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
}

impl FileKind for Inotifies {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.ify.as_ref().map(|i| format!("inotify, {} watch(es)", i.wd.len()))
    }

    fn name(&self) -> &'static str {
        "inotify"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Inotify]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let watches: &[InotifyWatch] = match &fd.info.kind {
            FdInfoKind::Inotify { watches } => watches,
            FdInfoKind::Plain => &[],
            k => return Err(Error::Kernel(format!("an inotify whose fdinfo reads as {k:?}")).at_fd(fd.pid, fd.fd, None)),
        };
        let mounts = if watches.is_empty() { Vec::new() } else { fd.proc.mountinfo()? };
        let wd = watches.iter().map(|w| dump_watch(fd.pid, fd.fd, id, w, &mounts)).collect::<Result<Vec<_>>>()?;
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Inotify as i32,
            id,
            ify: Some(pb::InotifyFileEntry { id, flags: fd.info.flags & !(libc::O_CLOEXEC as u32), fown: pb::FownEntry::default(), wd }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.ify else { return Ok(None) };
        let ifd = owned(sys::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK), || format!("inotify {}: inotify_init1", e.id))?;
        let mut wds: Vec<&pb::InotifyWdEntry> = e.wd.iter().collect();
        wds.sort_by_key(|w| w.wd);
        let mounts = if wds.is_empty() { Vec::new() } else { ProcDir::open_self()?.mountinfo()? };
        for w in wds {
            let target = restore_target(e.id, w, &mounts)?;
            add_with_wd(&ifd, e.id, &target, w.mask, w.wd as i32)?;
        }
        drain(&ifd);
        set_status_flags(&ifd, e.flags, &format!("inotify {}", e.id))?;
        Ok(Some(ifd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_words_round_trip() {
        let h = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let words = handle_words(&h);
        assert_eq!(words.len(), FH_MIN_WORDS);
        let fh = pb::FhEntry { bytes: h.len() as u32, r#type: 1, handle: words, path: None, mnt_id: None };
        assert_eq!(handle_bytes(&fh), h);
        assert_eq!(split_kdev(0xfe0_0001), (0xfe, 1));
    }
}
