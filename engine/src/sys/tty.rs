//! Terminal calls: termios and window size (through nix where it has them), and the pty ioctls nix
//! lacks (TIOCGPTN, TIOCSPTLCK/TIOCGPTLCK, TIOCPKT/TIOCGPKT, TIOCGPTPEER).

use super::{err, Result};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The terminal settings of `fd` (tcgetattr).
pub fn tcgetattr(fd: BorrowedFd<'_>) -> Result<libc::termios> {
    let t = nix::sys::termios::tcgetattr(fd).map_err(err("tcgetattr", format!("fd {}", fd.as_raw_fd())))?;
    Ok(t.into())
}

/// Sets the terminal settings of `fd` at once (tcsetattr TCSANOW).
pub fn tcsetattr(fd: BorrowedFd<'_>, t: &libc::termios) -> Result<()> {
    let t = nix::sys::termios::Termios::from(*t);
    nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t).map_err(err("tcsetattr", format!("fd {}", fd.as_raw_fd())))
}

/// An ioctl that reads one int.
fn ioctl_get_int(fd: BorrowedFd<'_>, req: libc::Ioctl, name: &'static str) -> Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    // SAFETY: `req` is one of the terminal ioctls that write one int through the pointer, and `v`
    // is a live, writable int.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v) };
    Errno::result(r).map_err(err(name, format!("fd {}", fd.as_raw_fd())))?;
    Ok(v)
}

/// An ioctl that takes a pointer to one int.
fn ioctl_set_int(fd: BorrowedFd<'_>, req: libc::Ioctl, v: libc::c_int, name: &'static str) -> Result<()> {
    // SAFETY: `req` is one of the terminal ioctls that read one int through the pointer, and `v`
    // lives through the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &v) };
    Errno::result(r).map_err(err(name, format!("fd {}, {v}", fd.as_raw_fd())))?;
    Ok(())
}

/// The window size of terminal `fd` (TIOCGWINSZ).
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer; `ws` is live and writable.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(r).map_err(err("TIOCGWINSZ", format!("fd {}", fd.as_raw_fd())))?;
    Ok(ws)
}

/// Sets the window size of terminal `fd` (TIOCSWINSZ).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer; `ws` lives through the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    Errno::result(r).map_err(err("TIOCSWINSZ", format!("fd {}", fd.as_raw_fd())))?;
    Ok(())
}

/// The pts index of pty master `fd` (TIOCGPTN).
pub fn pty_index(master: BorrowedFd<'_>) -> Result<u32> {
    ioctl_get_int(master, libc::TIOCGPTN, "TIOCGPTN").map(|v| v as u32)
}

/// Whether the slave of pty master `fd` is locked (TIOCGPTLCK).
pub fn pty_locked(master: BorrowedFd<'_>) -> Result<bool> {
    ioctl_get_int(master, libc::TIOCGPTLCK, "TIOCGPTLCK").map(|v| v != 0)
}

/// Locks or unlocks the slave of pty master `fd` (TIOCSPTLCK).
pub fn pty_set_locked(master: BorrowedFd<'_>, locked: bool) -> Result<()> {
    ioctl_set_int(master, libc::TIOCSPTLCK, locked as libc::c_int, "TIOCSPTLCK")
}

/// Whether pty master `fd` is in packet mode (TIOCGPKT).
pub fn pty_packet_mode(master: BorrowedFd<'_>) -> Result<bool> {
    ioctl_get_int(master, libc::TIOCGPKT, "TIOCGPKT").map(|v| v != 0)
}

/// Turns packet mode of pty master `fd` on or off (TIOCPKT).
pub fn pty_set_packet_mode(master: BorrowedFd<'_>, on: bool) -> Result<()> {
    ioctl_set_int(master, libc::TIOCPKT, on as libc::c_int, "TIOCPKT")
}

/// A new open file description of the slave of pty master `fd`, opened with `flags` (TIOCGPTPEER:
/// no path lookup, so it is the slave of this master whatever /dev/pts shows).
pub fn pty_open_peer(master: BorrowedFd<'_>, flags: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument and returns a new fd.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(r).map_err(err("TIOCGPTPEER", format!("fd {}, flags {flags:#o}", master.as_raw_fd())))?;
    // SAFETY: the ioctl returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Hands byte `b` to the line discipline of terminal `fd` as if it had arrived as input (TIOCSTI:
/// synchronous, unlike a write to the other end of a pty; needs CAP_SYS_ADMIN for a terminal that is
/// not the caller's controlling terminal).
pub fn inject_input(fd: BorrowedFd<'_>, b: u8) -> Result<()> {
    // SAFETY: TIOCSTI reads one byte through the pointer; `b` lives through the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSTI, &b) };
    Errno::result(r).map_err(err("TIOCSTI", format!("fd {}", fd.as_raw_fd())))?;
    Ok(())
}

/// A new pty master: /dev/ptmx opened read-write, close-on-exec, not as controlling terminal.
pub fn open_ptmx() -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open("/dev/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(err("open", "/dev/ptmx"))?;
    // SAFETY: open returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the file status flags of `fd` (O_NONBLOCK, O_APPEND, O_ASYNC; F_SETFL ignores the rest).
pub fn set_status_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> Result<()> {
    let f = nix::fcntl::OFlag::from_bits_truncate(flags);
    nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(f)).map_err(err("fcntl(F_SETFL)", format!("fd {}", fd.as_raw_fd())))?;
    Ok(())
}
