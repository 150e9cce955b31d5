//! Terminals. rcr supports the terminal of a shell job (`--shell-job`): at dump the fds on the task's
//! terminal are recorded as CRIU's tty entries; at restore they are connected to rcr's own terminal.

use crate::image::pb;
use crate::{Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const TTY_MAJOR: u32 = 4;
const TTYAUX_MAJOR: u32 = 5;
const UNIX98_PTY_SLAVE_MAJOR: u32 = 136;

/// Whether a character device is a terminal rcr knows.
pub fn handles(st: &libc::stat) -> bool {
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return false;
    }
    let ma = libc::major(st.st_rdev);
    ma == TTY_MAJOR || ma == TTYAUX_MAJOR || (UNIX98_PTY_SLAVE_MAJOR..UNIX98_PTY_SLAVE_MAJOR + 8).contains(&ma)
}

/// The tty_info entry of the terminal open on `fd` (a copy of the task's fd, in rcr).
pub fn info(id: u32, fd: BorrowedFd<'_>, st: &libc::stat, sid: i32, pgrp: i32) -> pb::TtyInfoEntry {
    let ma = libc::major(st.st_rdev);
    let (ty, pty) = if ma >= UNIX98_PTY_SLAVE_MAJOR {
        (pb::TtyType::Pty, Some(pb::TtyPtyEntry { index: libc::minor(st.st_rdev) }))
    } else if ma == TTYAUX_MAJOR {
        (pb::TtyType::Console, None)
    } else {
        (pb::TtyType::Vt, None)
    };
    // SAFETY: an all-zero termios/winsize is a valid buffer for the ioctls to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open terminal and `t` a valid termios buffer.
    let termios = (unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) } == 0).then(|| pb::TermiosEntry {
        c_iflag: t.c_iflag,
        c_oflag: t.c_oflag,
        c_cflag: t.c_cflag,
        c_lflag: t.c_lflag,
        c_line: t.c_line as u32,
        c_ispeed: t.c_ispeed,
        c_ospeed: t.c_ospeed,
        c_cc: t.c_cc.iter().map(|&c| c as u32).collect(),
    });
    // SAFETY: as above for winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which is valid and writable.
    let winsize = (unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0).then_some(pb::WinsizeEntry {
        ws_row: ws.ws_row as u32,
        ws_col: ws.ws_col as u32,
        ws_xpixel: ws.ws_xpixel as u32,
        ws_ypixel: ws.ws_ypixel as u32,
    });
    pb::TtyInfoEntry {
        id,
        r#type: ty as i32,
        locked: false,
        exclusive: false,
        packet_mode: false,
        sid: sid.max(0) as u32,
        pgrp: pgrp.max(0) as u32,
        rdev: st.st_rdev as u32,
        termios,
        termios_locked: None,
        winsize,
        pty,
        dev: Some(st.st_dev as u32),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
    }
}

/// rcr's own terminal, for a restored shell job: a copy of the first of stdin, stdout, stderr that is a
/// terminal.
pub fn own_terminal() -> Result<OwnedFd> {
    for fd in 0..3 {
        // SAFETY: isatty only inspects the fd number.
        if unsafe { libc::isatty(fd) } == 1 {
            // SAFETY: fd is open (isatty said so) for the duration of this call.
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            return b.try_clone_to_owned().map_err(|e| Error::Io { ctx: "dup of rcr's terminal".into(), source: e });
        }
    }
    Err(Error::Msg(
        "this checkpoint is a shell job with a terminal, but rcr restore has no terminal on stdin, stdout or stderr: run it from a terminal".into(),
    ))
}

/// Terminals as open fds: the tty_info entries are collected here and written to tty-info.img.
#[derive(Default)]
pub struct Ttys {
    infos: Vec<pb::TtyInfoEntry>,
}

impl super::FileKind for Ttys {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.tty.as_ref().map(|_| "terminal".to_string())
    }

    fn name(&self) -> &'static str {
        "terminal"
    }

    fn handles(&self, st: &libc::stat, _link: &str) -> bool {
        handles(st)
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, id: u32, files: &mut super::FileTable) -> Result<pb::FileEntry> {
        if !fd.opts.shell_job {
            return Err(Error::Msg(format!(
                "pid {}: fd {} is the terminal {}; dump a process attached to a terminal with --shell-job",
                fd.pid, fd.fd, fd.link
            )));
        }
        let info_id = match self.infos.iter().find(|t| t.rdev == fd.st.st_rdev as u32) {
            Some(t) => t.id,
            None => {
                let tid = files.next_id();
                self.infos.push(info(tid, fd.file, fd.st, fd.task.session, fd.task.tpgid));
                tid
            }
        };
        let flags = fd.info.flags & !(libc::O_CLOEXEC as u32);
        Ok(pb::FileEntry {
            r#type: pb::FdTypes::Tty as i32,
            id,
            tty: Some(pb::TtyFileEntry { id, tty_info_id: info_id, flags, fown: pb::FownEntry::default(), regf_id: None }),
            ..Default::default()
        })
    }

    fn finish_dump(&mut self, dir: &std::path::Path, _files: &super::FileTable) -> Result<()> {
        if self.infos.is_empty() {
            return Ok(());
        }
        Ok(crate::image::ImageDir::new(dir).write_all(crate::image::ImageName::TtyInfo, &self.infos)?)
    }

    fn open(&mut self, f: &pb::FileEntry, env: &super::RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        if f.tty.is_none() {
            return Ok(None);
        }
        if !env.shell_job {
            return Err(Error::Msg(format!("file {} is a terminal: restore this shell job with --shell-job", f.id)));
        }
        own_terminal().map(Some)
    }
}
