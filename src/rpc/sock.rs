//! The sockets of CRIU's RPC: SOCK_SEQPACKET, one message per packet. The binary crate holds these
//! few socket calls itself (nix does the work; the two `unsafe` blocks only take ownership of fds the
//! kernel just handed over) because they belong to the RPC front end, not to the engine's syscall layer.

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The largest request rcr reads (a criu_req is a few hundred bytes; runc's are under 1 KiB).
pub const MAX_PACKET: usize = 1 << 20;

/// One packet received.
pub enum Packet {
    Data(Vec<u8>),
    /// A packet larger than [`MAX_PACKET`], discarded; its size.
    TooLarge(usize),
    /// The client closed its end.
    Closed,
}

/// One client connection.
pub struct Conn {
    fd: OwnedFd,
}

impl Conn {
    /// The connection on an fd rcr inherited (`rcr swrk FD`): it must be an open SOCK_SEQPACKET socket.
    pub fn inherited(fd: RawFd) -> Result<Conn, String> {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).map_err(|e| format!("fd {fd} is not open in rcr ({e})"))?;
        // SAFETY: fd is open (checked above) and was handed to rcr for this session only: nothing else
        // in the process owns or closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        match socket::getsockopt(&fd, sockopt::SockType) {
            Ok(SockType::SeqPacket) => Ok(Conn { fd }),
            Ok(t) => Err(format!("fd {} is a {t:?} socket; CRIU's RPC runs on a SOCK_SEQPACKET one (socketpair(AF_UNIX, SOCK_SEQPACKET))", fd.as_raw_fd())),
            Err(e) => Err(format!("fd {} is not a socket ({e})", fd.as_raw_fd())),
        }
    }

    /// The pid of the process at the other end (SO_PEERCRED: the one that connected, or that made the
    /// socketpair).
    pub fn peer_pid(&self) -> Result<i32, String> {
        socket::getsockopt(&self.fd, sockopt::PeerCredentials).map(|c| c.pid()).map_err(|e| format!("SO_PEERCRED on the RPC socket: {e}"))
    }

    /// The next packet.
    pub fn recv(&self) -> Result<Packet, String> {
        let fd = self.fd.as_raw_fd();
        let len = retry(|| socket::recv(fd, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC)).map_err(|e| format!("reading a request: {e}"))?;
        if len > MAX_PACKET {
            retry(|| socket::recv(fd, &mut [0u8; 1], MsgFlags::MSG_TRUNC)).map_err(|e| format!("reading a request: {e}"))?;
            return Ok(Packet::TooLarge(len));
        }
        let mut buf = vec![0u8; len];
        let n = retry(|| socket::recv(fd, &mut buf, MsgFlags::MSG_TRUNC)).map_err(|e| format!("reading a request: {e}"))?;
        if n == 0 {
            return Ok(Packet::Closed);
        }
        buf.truncate(n);
        Ok(Packet::Data(buf))
    }

    /// Sends one packet (no SIGPIPE if the client is gone: an error instead).
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        let n = retry(|| socket::send(self.fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL)).map_err(|e| format!("sending a response: {e}"))?;
        if n != bytes.len() {
            return Err(format!("sending a response: {n} of {} bytes sent", bytes.len()));
        }
        Ok(())
    }
}

fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// `rcr service`'s listening socket.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Binds `path` (an old socket file there is removed first, as criu does), readable and writable
    /// by anyone (criu's 0666), and listens.
    pub fn bind(path: &Path) -> Result<Listener, String> {
        let what = |e: Errno| format!("service socket {}: {e}", path.display());
        let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).map_err(what)?;
        let addr = UnixAddr::new(path).map_err(what)?;
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("service socket {}: cannot remove the old one: {e}", path.display())),
        }
        socket::bind(fd.as_raw_fd(), &addr).map_err(what)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(|e| format!("service socket {}: {e}", path.display()))?;
        socket::listen(&fd, Backlog::new(16).map_err(what)?).map_err(what)?;
        Ok(Listener { fd })
    }

    /// Waits up to `timeout_ms` for a client; None when none came.
    pub fn accept(&self, timeout_ms: u16) -> Result<Option<Conn>, String> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(0) | Err(Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for a client: {e}")),
        }
        let fd = match socket::accept4(self.fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => fd,
            Err(Errno::EINTR | Errno::EAGAIN | Errno::ECONNABORTED) => return Ok(None),
            Err(e) => return Err(format!("accepting a client: {e}")),
        };
        // SAFETY: accept4 just returned this fd, a new one that nothing else owns.
        Ok(Some(Conn { fd: unsafe { OwnedFd::from_raw_fd(fd) } }))
    }
}

#[cfg(test)]
impl Conn {
    /// Both ends of a new socketpair (tests).
    pub fn pair() -> (Conn, Conn) {
        let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        (Conn { fd: a }, Conn { fd: b })
    }
}
