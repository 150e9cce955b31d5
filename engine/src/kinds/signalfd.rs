//! signalfds: the signal mask and the file's flags. A signalfd holds no signals of its own (it reads
//! those pending for the task that reads it, restored with the task), so the mask is its whole state.

use crate::image::pb;
use crate::proc::FdInfoKind;
use crate::{Error, Result};
use std::os::fd::OwnedFd;

use super::anon::{owned, set_status_flags};
use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const LINK: &str = "anon_inode:[signalfd]";

/// signalfds as open fds.
pub struct Signalfds;

impl FileKind for Signalfds {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.sgfd.as_ref().map(|s| format!("signalfd, mask {:#x}", s.sigmask))
    }

    fn name(&self) -> &'static str {
        "signalfd"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Signalfd]
    }

    fn handles(&self, _st: &libc::stat, link: &str) -> bool {
        link == LINK
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, _files: &mut FileTable) -> Result<pb::FileEntry> {
        let FdInfoKind::Signalfd { sigmask } = fd.info.kind else {
            return Err(Error::Kernel("a signalfd whose fdinfo has no sigmask line".into()).at_fd(fd.pid, fd.fd, None));
        };
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Signalfd as i32,
            id,
            sgfd: Some(pb::SignalfdEntry { id, flags: fd.info.flags & !(libc::O_CLOEXEC as u32), fown: pb::FownEntry::default(), sigmask }),
            ..Default::default()
        })
    }

    fn open(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = &f.sgfd else { return Ok(None) };
        let mask: u64 = e.sigmask;
        let r = crate::sys::signalfd(mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        let fd = owned(r, || format!("signalfd {}: signalfd4 with mask {mask:#x}", e.id))?;
        set_status_flags(&fd, e.flags, &format!("signalfd {}", e.id))?;
        Ok(Some(fd))
    }
}
