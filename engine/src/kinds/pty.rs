//! Pseudo-terminal pairs whose two ends the tree holds (tmux, screen, sshd, expect, terminal
//! emulators): what [`super::tty`] needs to save one and to make it again.
//!
//! Queued data. What one end has written and the other has not read yet sits in the reading end's
//! input queue (its line discipline's buffer). Reading is the only way to see it, and reading consumes
//! it, so the dump reads each queue (a slave's in non-canonical mode, so that a partial line comes out
//! too) and at once puts the bytes back with TIOCSTI, which hands them to the line discipline
//! synchronously, one byte at a time, as if they had just arrived — a slave's with echo, signals and
//! input translation turned off meanwhile, so they are neither echoed twice nor translated twice (a
//! master's line discipline is raw anyway; its termios calls act on the slave). Writing them into the
//! other end instead would go through output processing and an asynchronous flip buffer, and would
//! be echoed again. The queue is then as it was:
//! a failed dump or `-R` leaves the tree as it found it, and lines are formed again by the same
//! canonical-mode rules (a partial line stays partial). The restore puts the bytes into the new pair
//! the same way. TIOCSTI needs CAP_SYS_ADMIN when the terminal is not the caller's own, which rcr has
//! (it runs as root). Lost in the round trip: pending packet-mode status bytes, and an end-of-file
//! character typed but not read yet (the line discipline keeps it as a NUL, which comes back as a NUL).
//!
//! Index. A restored pair gets the pts index it had (/dev/pts/N), because the processes know that name
//! (tmux keeps each pane's tty name; a shell's `tty` prints it). The kernel hands out the lowest free
//! index, so /dev/ptmx is opened until the wanted ones come up (the others are closed again). If an
//! index is taken by now, the restore fails and names it: giving another index would leave the
//! processes with a wrong name for their terminal without telling anyone.

use crate::image::pb;
use crate::sys::tty as t;
use crate::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub const TTYAUX_MAJOR: u32 = 5;
/// /dev/ptmx (and /dev/pts/ptmx): 5:2.
pub const PTMX_MINOR: u32 = 2;
pub const UNIX98_PTY_SLAVE_MAJOR: u32 = 136;
/// The slave majors: 136 to 143 (index = (major - 136) * 256 + minor).
const SLAVE_MAJORS: u32 = 8;

/// Which end of a pty a character device is, with its pts index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Master,
    Slave(u32),
}

/// The pty end of device number `rdev` (a master's index is not in its device number).
pub fn end_of(rdev: u64) -> Option<End> {
    let (ma, mi) = (libc::major(rdev), libc::minor(rdev));
    if ma == TTYAUX_MAJOR && mi == PTMX_MINOR {
        Some(End::Master)
    } else if (UNIX98_PTY_SLAVE_MAJOR..UNIX98_PTY_SLAVE_MAJOR + SLAVE_MAJORS).contains(&ma) {
        Some(End::Slave((ma - UNIX98_PTY_SLAVE_MAJOR) * 256 + mi))
    } else {
        None
    }
}

/// Whether tty info `i` is a pty master.
pub fn is_master(i: &pb::TtyInfoEntry) -> bool {
    end_of(i.rdev as u64) == Some(End::Master)
}

/// The pts index of tty info `i`, if it is a pty end.
pub fn index_of(i: &pb::TtyInfoEntry) -> Option<u32> {
    (i.r#type == pb::TtyType::Pty as i32).then(|| i.pty.as_ref().map(|p| p.index)).flatten()
}

/// The device number of a task's controlling terminal (`tty_nr` of /proc/PID/stat, the kernel's
/// new_encode_dev), or None without one.
pub fn ctty_rdev(tty_nr: i32) -> Option<u64> {
    let n = tty_nr as u32;
    (n != 0).then(|| libc::makedev((n >> 8) & 0xfff, (n & 0xff) | ((n >> 12) & 0xfff00)))
}

/// Whether a task's controlling terminal (`tty_nr`) is device `rdev`.
pub fn is_ctty(tty_nr: i32, rdev: u64) -> bool {
    ctty_rdev(tty_nr) == Some(rdev)
}

pub fn termios_entry(t: &libc::termios) -> pb::TermiosEntry {
    pb::TermiosEntry {
        c_iflag: t.c_iflag,
        c_oflag: t.c_oflag,
        c_cflag: t.c_cflag,
        c_lflag: t.c_lflag,
        c_line: t.c_line as u32,
        c_ispeed: t.c_ispeed,
        c_ospeed: t.c_ospeed,
        c_cc: t.c_cc.iter().map(|&c| c as u32).collect(),
    }
}

fn termios_of(e: &pb::TermiosEntry, base: libc::termios) -> libc::termios {
    let mut t = base;
    t.c_iflag = e.c_iflag;
    t.c_oflag = e.c_oflag;
    t.c_cflag = e.c_cflag;
    t.c_lflag = e.c_lflag;
    t.c_line = e.c_line as libc::cc_t;
    t.c_ispeed = e.c_ispeed;
    t.c_ospeed = e.c_ospeed;
    for (d, s) in t.c_cc.iter_mut().zip(&e.c_cc) {
        *d = *s as libc::cc_t;
    }
    t
}

pub fn winsize_entry(ws: &libc::winsize) -> pb::WinsizeEntry {
    pb::WinsizeEntry { ws_row: ws.ws_row as u32, ws_col: ws.ws_col as u32, ws_xpixel: ws.ws_xpixel as u32, ws_ypixel: ws.ws_ypixel as u32 }
}

fn winsize_of(e: &pb::WinsizeEntry) -> libc::winsize {
    libc::winsize { ws_row: e.ws_row as u16, ws_col: e.ws_col as u16, ws_xpixel: e.ws_xpixel as u16, ws_ypixel: e.ws_ypixel as u16 }
}

fn sys(what: impl Fn() -> String) -> impl FnOnce(crate::sys::SysError) -> Error {
    move |e| Error::from(e).at(what())
}

/// Termios under which bytes handed to the line discipline again are neither echoed, nor turned into
/// signals, nor translated a second time; canonical mode as in `t`, so lines form as before.
fn neutral(t: &libc::termios) -> libc::termios {
    let mut n = *t;
    n.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL | libc::ECHOCTL | libc::ECHOKE | libc::ECHOPRT | libc::ISIG | libc::IEXTEN);
    n.c_iflag &= !(libc::ICRNL | libc::INLCR | libc::IGNCR | libc::ISTRIP | libc::IUCLC | libc::IXON | libc::IXOFF | libc::PARMRK | libc::INPCK);
    n
}

/// Reads what `fd` has waiting until a read would wait (EAGAIN; EIO: a master whose slave is
/// closed); a read that finds nothing first lets the line discipline take in what the other end's
/// writes left in the flip buffers. `packet`: a master in packet mode, whose reads start with a
/// status byte.
fn read_all_now(fd: BorrowedFd<'_>, packet: bool) -> crate::sys::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EIO) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[usize::from(packet).min(n)..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(crate::sys::SysError::Call { call: "read", ctx: format!("fd {}", fd.as_raw_fd()), errno: e }),
        }
    }
}

/// Reads everything waiting in the input queue of the pty end `fd` (rcr's copy of a frozen task's
/// file). A slave is read for a moment in non-canonical mode with VMIN = VTIME = 0, so that a partial
/// line comes out too and a read never waits. A master's line discipline is always raw (its termios
/// ioctls act on the slave), so the file is made non-blocking for a moment instead.
fn drain(fd: BorrowedFd<'_>, master: bool, packet: bool) -> crate::sys::Result<Vec<u8>> {
    if master {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).map_err(crate::sys::err("fcntl(F_GETFL)", format!("fd {}", fd.as_raw_fd())))?;
        t::set_status_flags(fd, flags | libc::O_NONBLOCK)?;
        let data = read_all_now(fd, packet);
        t::set_status_flags(fd, flags)?;
        return data;
    }
    let orig = t::tcgetattr(fd)?;
    let mut raw = orig;
    raw.c_lflag &= !libc::ICANON;
    raw.c_cc[libc::VMIN] = 0;
    raw.c_cc[libc::VTIME] = 0;
    t::tcsetattr(fd, &raw)?;
    let data = read_all_now(fd, false);
    t::tcsetattr(fd, &orig)?;
    data
}

/// Hands `data` to the line discipline of the pty end `fd` as input, byte by byte (TIOCSTI). A
/// slave's runs under [`neutral`] termios, then gets `settings`; a master's is raw anyway (and its
/// termios calls would change the slave's).
fn refill(fd: BorrowedFd<'_>, master: bool, data: &[u8], settings: Option<&libc::termios>) -> crate::sys::Result<()> {
    if !data.is_empty() {
        if let (false, Some(s)) = (master, settings) {
            t::tcsetattr(fd, &neutral(s))?;
        }
        for b in data {
            t::inject_input(fd, *b)?;
        }
    }
    match settings {
        Some(s) if !master => t::tcsetattr(fd, s),
        _ => Ok(()),
    }
}

/// Reads the input queue of pty end `fd` and puts it back at once (see the module's doc): the bytes
/// that were waiting.
pub fn queued_data(fd: BorrowedFd<'_>, master: bool, packet: bool, what: &dyn Fn() -> String) -> Result<Vec<u8>> {
    let orig = t::tcgetattr(fd).map_err(sys(what))?;
    let data = drain(fd, master, packet).map_err(sys(|| format!("reading the queued input of {}", what())))?;
    refill(fd, master, &data, Some(&orig)).map_err(sys(|| format!("putting back {} bytes of queued input into {} (they are in the checkpoint)", data.len(), what())))?;
    Ok(data)
}

/// The settings of one end as its tty info: termios and window size.
pub fn settings(fd: BorrowedFd<'_>, what: &dyn Fn() -> String) -> Result<(pb::TermiosEntry, pb::WinsizeEntry)> {
    let tio = t::tcgetattr(fd).map_err(sys(what))?;
    let ws = t::get_winsize(fd).map_err(sys(what))?;
    Ok((termios_entry(&tio), winsize_entry(&ws)))
}

pub fn master_index(fd: BorrowedFd<'_>, what: &dyn Fn() -> String) -> Result<u32> {
    t::pty_index(fd).map_err(sys(what))
}

/// Packet mode and lock state of a master.
pub fn master_modes(fd: BorrowedFd<'_>, what: &dyn Fn() -> String) -> Result<(bool, bool)> {
    Ok((t::pty_packet_mode(fd).map_err(sys(what))?, t::pty_locked(fd).map_err(sys(what))?))
}

/// A pty pair made again at restore. rcr keeps its master and one slave of its own until the tasks
/// run (a slave closed by everyone would tell the master its other side is gone).
pub struct Pair {
    pub master: OwnedFd,
    _slave: Option<OwnedFd>,
    /// Slave files still to open before the pair is locked again (only when it was locked).
    pub slaves_left: usize,
    pub locked: bool,
}

impl Pair {
    /// Locks the slave again once the last of its files is open, if it was locked at dump.
    pub fn slave_opened(&mut self) -> Result<()> {
        self.slaves_left = self.slaves_left.saturating_sub(1);
        if self.locked && self.slaves_left == 0 {
            t::pty_set_locked(self.master.as_fd(), true).map_err(sys(|| "locking a restored pty again".into()))?;
        }
        Ok(())
    }

    pub fn open_slave(&self, flags: i32, index: u32) -> Result<OwnedFd> {
        t::pty_open_peer(self.master.as_fd(), flags).map_err(sys(|| format!("opening /dev/pts/{index} again")))
    }
}

/// What the checkpoint holds of one pair, to make it again.
pub struct PairSpec<'a> {
    pub index: u32,
    pub master: &'a pb::TtyInfoEntry,
    pub slave: Option<&'a pb::TtyInfoEntry>,
    /// Queued input of the master (the slave's output not read yet) and of the slave.
    pub master_data: &'a [u8],
    pub slave_data: &'a [u8],
    /// Open flags of the master file.
    pub master_flags: i32,
    /// How many files of the tree are the slave.
    pub slave_files: usize,
}

/// Creates the pairs `specs` at their pts indexes (see the module's doc).
pub fn create_pairs(specs: &[PairSpec<'_>]) -> Result<std::collections::BTreeMap<u32, Pair>> {
    let mut pairs = std::collections::BTreeMap::new();
    let mut others = Vec::new(); // ptys opened on the way to the wanted indexes, closed at the end
    let mut missing: std::collections::BTreeSet<u32> = specs.iter().map(|s| s.index).collect();
    while let Some(&want) = missing.first() {
        let m = t::open_ptmx().map_err(sys(|| "opening /dev/ptmx".into()))?;
        let got = t::pty_index(m.as_fd()).map_err(sys(|| "a new pty's index".into()))?;
        if got == want {
            let spec = specs.iter().find(|s| s.index == got).ok_or_else(|| Error::Internal("pty spec".into()))?;
            t::set_status_flags(m.as_fd(), spec.master_flags).map_err(sys(|| format!("restored pty master /dev/pts/{got}")))?;
            pairs.insert(want, set_up(m, spec)?);
            missing.remove(&want);
        } else if got > want {
            return Err(taken(want));
        } else {
            others.push(m);
            if others.len() > 65536 {
                return Err(Error::Kernel(format!("no pty with index {want} after opening {} ptys", others.len())));
            }
        }
    }
    Ok(pairs)
}

fn taken(index: u32) -> Error {
    Error::changed(format!(
        "/dev/pts/{index} is in use: the pty of this checkpoint must come back as /dev/pts/{index} (its processes know that name); close the terminal that took it, then restore again"
    ))
}

/// Settings, queued data, packet mode and lock of a new pair (master `m`) as in `spec`.
fn set_up(m: OwnedFd, spec: &PairSpec<'_>) -> Result<Pair> {
    let idx = spec.index;
    let what = || format!("restored pty /dev/pts/{idx}");
    t::pty_set_locked(m.as_fd(), false).map_err(sys(what))?;
    let slave = spec.slave.map(|_| t::pty_open_peer(m.as_fd(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK)).transpose().map_err(sys(what))?;
    // The master's termios calls act on the slave: its recorded termios are the slave's.
    let base = t::tcgetattr(m.as_fd()).map_err(sys(what))?;
    let master_tio = spec.master.termios.as_ref().map(|e| termios_of(e, base));
    if let (Some(s), Some(info)) = (&slave, spec.slave) {
        let tio = info.termios.as_ref().map(|e| termios_of(e, base));
        refill(s.as_fd(), false, spec.slave_data, tio.as_ref()).map_err(sys(|| format!("{}: its slave's settings and queued input", what())))?;
        if let Some(ws) = &info.winsize {
            t::set_winsize(s.as_fd(), &winsize_of(ws)).map_err(sys(what))?;
        }
    } else if let Some(tio) = &master_tio {
        t::tcsetattr(m.as_fd(), tio).map_err(sys(what))?;
    }
    refill(m.as_fd(), true, spec.master_data, None).map_err(sys(|| format!("{}: its master's queued input", what())))?;
    if let (None, Some(ws)) = (spec.slave, &spec.master.winsize) {
        t::set_winsize(m.as_fd(), &winsize_of(ws)).map_err(sys(what))?;
    }
    if spec.master.packet_mode {
        t::pty_set_packet_mode(m.as_fd(), true).map_err(sys(what))?;
    }
    let mut pair = Pair { master: m, _slave: slave, slaves_left: spec.slave_files, locked: spec.master.locked };
    if pair.locked && pair.slaves_left == 0 {
        pair.slaves_left = 1;
        pair.slave_opened()?;
    }
    Ok(pair)
}

/// The processes other than rcr with an fd whose /proc link is `link` and for which `also` holds:
/// "pid P ('comm') fd F", for messages.
pub fn holders(link: &str, also: &dyn Fn(i32, i32) -> bool) -> Vec<String> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()).filter(|&p| p != me) else { continue };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for f in fds.flatten() {
            let Some(fd) = f.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if std::fs::read_link(f.path()).is_ok_and(|l| l.as_os_str() == link) && also(pid, fd) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                out.push(format!("pid {pid} ('{}') fd {fd}", comm.trim()));
                break;
            }
        }
    }
    out
}

/// Whether fd `fd` of `pid` is the master of pts `index` (its fdinfo says "tty-index").
pub fn fdinfo_index_is(pid: i32, fd: i32, index: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .is_ok_and(|s| s.lines().any(|l| l.strip_prefix("tty-index:").is_some_and(|v| v.trim() == index.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_ctty() {
        assert_eq!(end_of(libc::makedev(5, 2)), Some(End::Master));
        assert_eq!(end_of(libc::makedev(136, 7)), Some(End::Slave(7)));
        assert_eq!(end_of(libc::makedev(137, 1)), Some(End::Slave(257)));
        assert_eq!(end_of(libc::makedev(5, 0)), None);
        assert_eq!(end_of(libc::makedev(4, 1)), None);
        assert!(is_ctty(136 << 8 | 3, libc::makedev(136, 3)));
        assert!(!is_ctty(136 << 8 | 3, libc::makedev(136, 4)));
        assert!(!is_ctty(0, libc::makedev(0, 0)));
    }

    #[test]
    fn neutral_termios_keeps_canonical_mode() {
        let mut tio: libc::termios = crate::sys::zeroed();
        tio.c_lflag = libc::ICANON | libc::ECHO | libc::ISIG;
        tio.c_iflag = libc::ICRNL | libc::IXON;
        let n = neutral(&tio);
        assert_eq!(n.c_lflag, libc::ICANON);
        assert_eq!(n.c_iflag, 0);
    }
}
