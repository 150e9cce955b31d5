//! eventfds: the counter, EFD_SEMAPHORE and the file's flags (O_NONBLOCK). Dump reads them from fdinfo
//! (the counter is left as it is); restore creates the eventfd in rcr and writes the counter back.

use crate::image::pb;
use crate::proc::FdInfoKind;
use crate::{Error, Result};
use std::os::fd::OwnedFd;

use super::anon::{owned, set_status_flags};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

/// The /proc/PID/fd link of an eventfd.
const LINK: &str = "anon_inode:[eventfd]";

/// eventfds as open fds.
pub struct Eventfds;

impl FileKind for Eventfds {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.efd.as_ref().map(|e| format!("eventfd, counter {}{}", e.counter, if e.rcr_semaphore == Some(true) { ", semaphore" } else { "" }))
    }

    fn name(&self) -> &'static str {
        "eventfd"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Eventfd]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let FdInfoKind::Eventfd { count, semaphore, .. } = fd.info.kind else {
            return Err(Error::Kernel("an eventfd whose fdinfo has no eventfd-count line".into()).at_fd(fd.pid, fd.fd, None));
        };
        let Some(semaphore) = semaphore else {
            return Err(Error::not_supported(format!(
                "pid {}: fd {}: this kernel does not show whether the eventfd is a semaphore (eventfd-semaphore in fdinfo, Linux 6.8 and later); rcr cannot dump it faithfully",
                fd.pid, fd.fd
            )));
        };
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Eventfd as i32,
            id,
            efd: Some(pb::EventfdFileEntry {
                id,
                flags: fd.info.flags & !(libc::O_CLOEXEC as u32),
                fown: pb::FownEntry::default(),
                counter: count,
                rcr_semaphore: semaphore.then_some(true),
            }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.efd else { return Ok(None) };
        let what = || format!("eventfd {}", e.id);
        let sem = if e.rcr_semaphore == Some(true) { libc::EFD_SEMAPHORE } else { 0 };
        // The initial value of eventfd(2) is only 32 bits: the counter is written after.
        let flags = nix::sys::eventfd::EfdFlags::from_bits_retain(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | sem);
        let fd = owned(nix::sys::eventfd::EventFd::from_value_and_flags(0, flags).map(OwnedFd::from).map_err(Into::into), || format!("{}: eventfd", what()))?;
        if e.counter > 0 {
            let v = e.counter.to_ne_bytes();
            match nix::unistd::write(&fd, &v) {
                Ok(8) => {}
                r => {
                    let source = r.err().map_or_else(std::io::Error::last_os_error, Into::into);
                    return Err(Error::Io { ctx: format!("{}: writing its counter {}", what(), e.counter), source });
                }
            }
        }
        set_status_flags(&fd, e.flags, &what())?;
        Ok(Some(fd))
    }
}
