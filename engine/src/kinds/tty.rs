//! Terminals, in two cases.
//!
//! - A pty pair whose master and slave the tree both holds (tmux, screen, sshd, expect, a terminal
//!   emulator) is made again as a new pair with the same pts index, its termios, window size, packet
//!   mode, lock and queued data ([`super::pty`]); the session whose controlling terminal its slave was
//!   gets it back, with its foreground process group.
//! - The terminal the tree shares with whatever started it (a pty slave whose master is outside the
//!   tree, a console, /dev/tty) is a shell job's: with `--shell-job` it is connected to rcr's own
//!   terminal at restore. `--shell-job` never applies to a master the tree holds.
//!
//! Anything else is refused at dump with what it is and what would work: a slave whose master is
//! outside the tree without `--shell-job`, a master whose slave is open outside the tree.
//!
//! Images as CRIU's: one tty_info entry per terminal end (type PTY, pts index, rdev 5:2 for a master,
//! 136+:N for a slave), a tty file entry per open file pointing at it, and tty-data.img with the bytes
//! waiting in an end's input queue, by the id of that end's tty_info.

use super::pty::{self, End};
use crate::image::pb;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

const TTY_MAJOR: u32 = 4;

/// Whether a character device is a terminal rcr knows.
pub fn handles(st: &libc::stat) -> bool {
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return false;
    }
    let ma = libc::major(st.st_rdev);
    ma == TTY_MAJOR || ma == pty::TTYAUX_MAJOR || pty::end_of(st.st_rdev).is_some()
}

/// The tty_info entry of a terminal open on `fd` (rcr's copy of the task's fd): a pty end with its
/// `index` and, for a master, packet mode and lock; `ctty`: it is the controlling terminal of the
/// task's session (sid and foreground group recorded).
fn info(id: u32, fd: &super::FdToDump<'_>, rdev: u64, index: Option<u32>, what: &dyn Fn() -> String) -> Result<pb::TtyInfoEntry> {
    let st = fd.st;
    let ma = libc::major(rdev);
    let ty = if index.is_some() {
        pb::TtyType::Pty
    } else if ma == pty::TTYAUX_MAJOR {
        pb::TtyType::Console
    } else {
        pb::TtyType::Vt
    };
    let master = pty::end_of(rdev) == Some(End::Master);
    let (termios, winsize) = match (index, pty::settings(fd.file, what)) {
        (_, Ok((t, w))) => (Some(t), Some(w)),
        (Some(_), Err(e)) => return Err(e),
        (None, Err(_)) => (None, None),
    };
    let (packet_mode, locked) = if master { pty::master_modes(fd.file, what)? } else { (false, false) };
    let ctty = pty::is_ctty(fd.task.tty_nr, rdev);
    Ok(pb::TtyInfoEntry {
        id,
        r#type: ty as i32,
        locked,
        exclusive: false,
        packet_mode,
        sid: if ctty { fd.task.session.max(0) as u32 } else { 0 },
        pgrp: if ctty { fd.task.tpgid.max(0) as u32 } else { 0 },
        rdev: rdev as u32,
        termios,
        termios_locked: None,
        winsize,
        pty: index.map(|index| pb::TtyPtyEntry { index }),
        dev: Some(st.st_dev as u32),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
    })
}

/// The terminal device `fd` is on: its own device number, but for /dev/tty (5:0) the task's
/// controlling terminal when that is a pty slave (/dev/tty opened in a tmux pane, by less or vim, is
/// the pane's slave; it comes back as a file of that slave).
fn terminal_of(fd: &super::FdToDump<'_>) -> u64 {
    let rdev = fd.st.st_rdev;
    if (libc::major(rdev), libc::minor(rdev)) != (pty::TTYAUX_MAJOR, 0) {
        return rdev;
    }
    match pty::ctty_rdev(fd.task.tty_nr) {
        Some(c) if matches!(pty::end_of(c), Some(End::Slave(_))) => c,
        _ => rdev,
    }
}

/// rcr's own terminal, for a restored shell job: a copy of the first of stdin, stdout, stderr that is a
/// terminal.
pub fn own_terminal() -> Result<OwnedFd> {
    for fd in [std::io::stdin().as_fd(), std::io::stdout().as_fd(), std::io::stderr().as_fd()] {
        if nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
            return fd.try_clone_to_owned().map_err(|e| Error::Io { ctx: "dup of rcr's terminal".into(), source: e });
        }
    }
    Err(Error::not_supported(
        "this checkpoint is a shell job with a terminal, but rcr restore has no terminal on stdin, stdout or stderr: run it from a terminal",
    ))
}

/// The controlling terminal session leader `pid` had: a file of the tree on it, and the foreground
/// process group (0: none recorded).
pub fn controlling_terminal(ttys: &[pb::TtyInfoEntry], files: &BTreeMap<u32, pb::FileEntry>, pid: u32) -> Option<(u32, u32)> {
    let info = ttys.iter().find(|i| i.sid == pid && !pty::is_master(i))?;
    let file = files.values().find(|f| f.tty.as_ref().is_some_and(|t| t.tty_info_id == info.id))?;
    Some((file.id, info.pgrp))
}

/// A pty end held by the tree, at dump: rcr's copy, and the first fd that has it (for messages).
struct HeldEnd {
    file: OwnedFd,
    pid: i32,
    fd: i32,
    link: String,
}

/// How a terminal of the checkpoint comes back.
enum Role {
    /// A pair of the tree: its master, or one of its slave files.
    Master(u32),
    Slave(u32),
    /// The shell job's terminal: rcr's own.
    External,
}

/// Terminals as open fds: the tty_info entries are collected here and written to tty-info.img.
#[derive(Default)]
pub struct Ttys {
    infos: Vec<pb::TtyInfoEntry>,
    /// Dump: the pty ends, by tty_info id.
    ends: BTreeMap<u32, HeldEnd>,
    shell_job: bool,
    /// Restore: queued input by tty_info id, and the pairs made again, by pts index (at the first
    /// pty file opened).
    data: BTreeMap<u32, Vec<u8>>,
    pairs: Option<BTreeMap<u32, pty::Pair>>,
}

impl Ttys {
    fn master_of(&self, index: u32) -> Option<&pb::TtyInfoEntry> {
        self.infos.iter().find(|i| pty::is_master(i) && pty::index_of(i) == Some(index))
    }

    fn slave_of(&self, index: u32) -> Option<&pb::TtyInfoEntry> {
        self.infos.iter().find(|i| !pty::is_master(i) && pty::index_of(i) == Some(index))
    }

    fn role(&self, i: &pb::TtyInfoEntry) -> Role {
        match pty::index_of(i) {
            Some(idx) if pty::is_master(i) => Role::Master(idx),
            Some(idx) if self.master_of(idx).is_some() => Role::Slave(idx),
            _ => Role::External,
        }
    }

    /// The tty_info id for `fd`, a new entry if its terminal end is not known yet.
    fn info_for(&mut self, fd: &super::FdToDump<'_>, files: &mut super::FileTable) -> Result<u32> {
        let what = || format!("pid {} fd {} ({})", fd.pid, fd.fd, fd.link);
        let rdev = terminal_of(fd);
        let (index, known) = match pty::end_of(rdev) {
            Some(End::Master) => {
                let idx = pty::master_index(fd.file, &what)?;
                (Some(idx), self.infos.iter().position(|i| pty::is_master(i) && pty::index_of(i) == Some(idx)))
            }
            Some(End::Slave(idx)) => (Some(idx), self.infos.iter().position(|i| i.rdev == rdev as u32)),
            None => {
                if !fd.opts.shell_job {
                    return Err(Error::not_supported(format!(
                        "pid {}: fd {} is the terminal {}, which is not a pty the tree holds both ends of; rcr restores it only as the terminal of a shell job: dump with --shell-job (and restore from a terminal with --shell-job)",
                        fd.pid, fd.fd, fd.link
                    )));
                }
                (None, self.infos.iter().position(|i| i.rdev == rdev as u32))
            }
        };
        if let Some(k) = known {
            let i = &mut self.infos[k];
            // The session whose controlling terminal it is may come later than its first holder.
            if i.sid == 0 && pty::end_of(rdev) != Some(End::Master) && pty::is_ctty(fd.task.tty_nr, rdev) {
                i.sid = fd.task.session.max(0) as u32;
                i.pgrp = fd.task.tpgid.max(0) as u32;
            }
            return Ok(i.id);
        }
        let tid = files.next_id();
        self.infos.push(info(tid, fd, rdev, index, &what)?);
        if index.is_some() {
            let file = fd.file.try_clone_to_owned().map_err(|e| Error::Io { ctx: what(), source: e })?;
            self.ends.insert(tid, HeldEnd { file, pid: fd.pid, fd: fd.fd, link: fd.link.to_string() });
        }
        Ok(tid)
    }

    /// Every pty end is either half of a pair the tree holds, or (with --shell-job) a slave whose
    /// master is outside: the shell job's terminal.
    fn check_pairs(&self) -> Result<()> {
        for (id, end) in &self.ends {
            let Some(i) = self.infos.iter().find(|i| i.id == *id) else { continue };
            let Some(idx) = pty::index_of(i) else { continue };
            if pty::is_master(i) {
                if self.slave_of(idx).is_some() {
                    continue;
                }
                let outside = pty::holders(&format!("/dev/pts/{idx}"), &|_, _| true);
                if !outside.is_empty() {
                    return Err(Error::not_supported(format!(
                        "pid {}: fd {} is the master of pty /dev/pts/{idx}, whose slave is open outside the tree ({}): rcr restores a pty only with both ends, and --shell-job does not apply to a master; dump a tree that holds both ends (their common ancestor), or end those processes first",
                        end.pid, end.fd, outside.join(", ")
                    )));
                }
            } else if self.master_of(idx).is_none() && !self.shell_job {
                let held = |pid, fd| pty::fdinfo_index_is(pid, fd, idx);
                let mut masters = pty::holders("/dev/ptmx", &held);
                masters.extend(pty::holders("/dev/pts/ptmx", &held));
                let by = if masters.is_empty() { String::new() } else { format!(" ({})", masters.join(", ")) };
                return Err(Error::not_supported(format!(
                    "pid {}: fd {} is {}, a pty slave whose master is outside the tree{by}: dump the process that holds the master with it (a terminal emulator, tmux, sshd), or, if it is the terminal the tree was started from, dump with --shell-job to connect it to the terminal rcr restore runs in",
                    end.pid, end.fd, end.link
                )));
            }
        }
        Ok(())
    }

    /// The queued input of every end of the pairs the tree holds (read and put back at once).
    fn queued(&self) -> Result<Vec<pb::TtyDataEntry>> {
        let mut out = Vec::new();
        for (id, end) in &self.ends {
            let Some(i) = self.infos.iter().find(|i| i.id == *id) else { continue };
            if matches!(self.role(i), Role::External) {
                continue;
            }
            let what = || format!("pid {} fd {} ({})", end.pid, end.fd, end.link);
            let data = pty::queued_data(end.file.as_fd(), pty::is_master(i), i.packet_mode, &what)?;
            if !data.is_empty() {
                out.push(pb::TtyDataEntry { tty_id: *id, data });
            }
        }
        Ok(out)
    }

    /// The pairs of the checkpoint, made again at the first pty file opened.
    fn pairs(&mut self, env: &super::RestoreEnv<'_>) -> Result<&mut BTreeMap<u32, pty::Pair>> {
        if self.pairs.is_none() {
            let files_of = |info: u32| env.files.values().filter(move |f| f.tty.as_ref().is_some_and(|t| t.tty_info_id == info));
            let none: &[u8] = &[];
            let specs: Vec<pty::PairSpec<'_>> = self
                .infos
                .iter()
                .filter(|i| pty::is_master(i))
                .filter_map(|m| {
                    let index = pty::index_of(m)?;
                    let slave = self.slave_of(index);
                    Some(pty::PairSpec {
                        index,
                        master: m,
                        slave,
                        master_data: self.data.get(&m.id).map_or(none, |d| d.as_slice()),
                        slave_data: slave.and_then(|s| self.data.get(&s.id)).map_or(none, |d| d.as_slice()),
                        master_flags: files_of(m.id).next().and_then(|f| f.tty.as_ref()).map_or(libc::O_RDWR, |t| t.flags as i32),
                        slave_files: slave.map_or(0, |s| files_of(s.id).count()),
                    })
                })
                .collect();
            self.pairs = Some(pty::create_pairs(&specs)?);
        }
        self.pairs.as_mut().ok_or_else(|| Error::Internal("pty pairs".into()))
    }
}

impl super::FileKind for Ttys {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.tty.as_ref().map(|_| "terminal".to_string())
    }

    fn name(&self) -> &'static str {
        "terminal"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Tty]
    }

    fn handles(&self, st: &libc::stat, _link: &str) -> bool {
        handles(st)
    }

    fn dump(&mut self, fd: &super::FdToDump<'_>, id: u32, files: &mut super::FileTable) -> Result<pb::FileEntry> {
        self.shell_job = fd.opts.shell_job;
        let info_id = self.info_for(fd, files)?;
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
        self.check_pairs()?;
        let data = self.queued()?;
        let images = crate::image::ImageDir::new(dir);
        images.write_all(crate::image::ImageName::TtyInfo, &self.infos)?;
        if !data.is_empty() {
            images.write_all(crate::image::ImageName::TtyData, &data)?;
        }
        self.ends.clear();
        Ok(())
    }

    fn load(&mut self, dir: &std::path::Path) -> Result<()> {
        let images = crate::image::ImageDir::new(dir);
        self.infos = images.read_all_if_exists(crate::image::ImageName::TtyInfo)?;
        for e in images.read_all_if_exists::<pb::TtyDataEntry>(crate::image::ImageName::TtyData)? {
            if !self.infos.iter().any(|i| i.id == e.tty_id) {
                return Err(Error::corrupt(format!("{}: queued data for tty {}, which tty-info.img lacks", dir.join("tty-data.img").display(), e.tty_id)));
            }
            self.data.entry(e.tty_id).or_default().extend(e.data);
        }
        Ok(())
    }

    fn open(&mut self, f: &pb::FileEntry, env: &super::RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(tf) = &f.tty else { return Ok(None) };
        let info = self
            .infos
            .iter()
            .find(|i| i.id == tf.tty_info_id)
            .ok_or_else(|| Error::corrupt(format!("files.img: terminal file {} refers to tty {}, which tty-info.img lacks", f.id, tf.tty_info_id)))?;
        match self.role(info) {
            Role::Master(idx) => {
                let pair = self.pairs(env)?.get(&idx).ok_or_else(|| Error::Internal(format!("no pty {idx}")))?;
                let fd: BorrowedFd<'_> = pair.master.as_fd();
                fd.try_clone_to_owned().map(Some).map_err(|e| Error::Io { ctx: format!("dup of restored pty master /dev/pts/{idx}"), source: e })
            }
            Role::Slave(idx) => {
                let flags = (tf.flags as i32 & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL)) | libc::O_NOCTTY | libc::O_CLOEXEC;
                let pair = self.pairs(env)?.get_mut(&idx).ok_or_else(|| Error::Internal(format!("no pty {idx}")))?;
                let fd = pair.open_slave(flags, idx)?;
                pair.slave_opened()?;
                Ok(Some(fd))
            }
            Role::External => {
                if !env.shell_job {
                    return Err(Error::not_supported(format!("file {} is a terminal: restore this shell job with --shell-job", f.id)));
                }
                own_terminal().map(Some)
            }
        }
    }

    fn finish_restore(&mut self) {
        self.pairs = None;
    }
}
