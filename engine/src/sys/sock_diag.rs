//! NETLINK_SOCK_DIAG for unix sockets (UNIX_DIAG): every unix socket of rcr's network namespace with
//! its inode, peer, name, bound file, pending connections, queue lengths and shutdown state.
//!
//! A small parser of its own rather than netlink-packet-sock-diag + netlink-sys + netlink-packet-core:
//! one request and one fixed reply layout (uapi linux/unix_diag.h), about a hundred lines, against four
//! crates for the build on shared machines. [`parse_unix`] is pure and unit-tested on literal bytes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;

const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_VFS: u32 = 0x02;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_ICONS: u32 = 0x08;
const UDIAG_SHOW_RQLEN: u32 = 0x10;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// sizeof(struct nlmsghdr), sizeof(struct unix_diag_msg).
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

/// One unix socket as sock_diag describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnixDiag {
    /// The socket's inode; 0 for a connection not accepted yet (it has no file).
    pub ino: u32,
    /// SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET.
    pub kind: u8,
    /// TCP_ESTABLISHED (1), TCP_CLOSE (7), TCP_LISTEN (10).
    pub state: u8,
    /// The bound name as the kernel keeps it: a path (with the terminating NUL the kernel counts in
    /// its address; CRIU's images keep these bytes) or "\0abstract".
    pub name: Option<Vec<u8>>,
    /// The bound file: (inode, device) of the socket file, for a path name.
    pub vfs: Option<(u32, u32)>,
    /// The peer's inode (0: none, or a peer without a file: closed, or not accepted yet).
    pub peer: u32,
    /// For a listening socket: the inodes of the clients of the connections waiting to be accepted,
    /// in the order accept() returns them (0 for a client that is closed).
    pub icons: Vec<u32>,
    /// Listening: (connections waiting, backlog). Otherwise: (bytes to read, bytes sent not yet read);
    /// for a datagram socket the first is the length of the first message only.
    pub rqlen: (u32, u32),
    /// The kernel's sk_shutdown: RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2).
    pub shutdown: u8,
}

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("sock_diag: {what}: {e}"))
}

/// Every unix socket of the calling thread's network namespace.
pub fn unix_sockets() -> io::Result<Vec<UnixDiag>> {
    // SAFETY: socket(2) with integer arguments.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, NETLINK_SOCK_DIAG) };
    if fd < 0 {
        return Err(last_err("socket(AF_NETLINK, NETLINK_SOCK_DIAG)"));
    }
    // SAFETY: `fd` is new and ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = Vec::with_capacity(NLMSG_HDR + 24);
    let len = (NLMSG_HDR + 24) as u32;
    req.extend_from_slice(&len.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid
    // struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2].
    req.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    let show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
    req.extend_from_slice(&show.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    // SAFETY: sockaddr_nl is plain old data; all-zero is the kernel's address with nl_family set below.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: `req` and `kernel` outlive the call; the lengths are theirs.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(last_err("sending the UNIX_DIAG request"));
    }
    let mut out = Vec::new();
    // The kernel fills one datagram per recv, a page or a few; a listener's list of waiting connections
    // is one attribute, so the buffer is generous and a truncated datagram is an error, not a short list.
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(io::Error::new(e.kind(), format!("sock_diag: reading the UNIX_DIAG reply: {e}")));
        }
        if n as usize > buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: a reply of {n} bytes, larger than rcr's buffer")));
        }
        if n == 0 || parse_unix(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]])).unwrap_or(0)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]])).unwrap_or(0)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: malformed reply: {what}"))
}

/// Parses one datagram of a UNIX_DIAG dump into `out`; true once the dump is done.
pub fn parse_unix(mut b: &[u8], out: &mut Vec<UnixDiag>) -> io::Result<bool> {
    while b.len() >= NLMSG_HDR {
        let len = u32_at(b, 0) as usize;
        let ty = u16_at(b, 4);
        if len < NLMSG_HDR || len > b.len() {
            return Err(bad("message length"));
        }
        let body = &b[NLMSG_HDR..len];
        match ty {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = -(u32_at(body, 0) as i32);
                if errno == 0 {
                    return Ok(true);
                }
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_msg(body)?),
            _ => {}
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(false)
}

fn parse_msg(body: &[u8]) -> io::Result<UnixDiag> {
    if body.len() < UNIX_DIAG_MSG {
        return Err(bad("short unix_diag_msg"));
    }
    let mut d = UnixDiag { kind: body[1], state: body[2], ino: u32_at(body, 4), ..Default::default() };
    let mut a = &body[UNIX_DIAG_MSG..];
    while a.len() >= 4 {
        let alen = u16_at(a, 0) as usize;
        let aty = u16_at(a, 2) & 0x3fff;
        if alen < 4 || alen > a.len() {
            return Err(bad("attribute length"));
        }
        let p = &a[4..alen];
        match aty {
            UNIX_DIAG_NAME => d.name = Some(p.to_vec()),
            UNIX_DIAG_VFS => d.vfs = Some((u32_at(p, 0), u32_at(p, 4))),
            UNIX_DIAG_PEER => d.peer = u32_at(p, 0),
            UNIX_DIAG_ICONS => d.icons = p.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect(),
            UNIX_DIAG_RQLEN => d.rqlen = (u32_at(p, 0), u32_at(p, 4)),
            UNIX_DIAG_SHUTDOWN => d.shutdown = p.first().copied().unwrap_or(0),
            _ => {}
        }
        let step = (alen + 3) & !3;
        a = a.get(step..).unwrap_or(&[]);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    fn msg(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut v = ((NLMSG_HDR + body.len()) as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_a_listener_and_done() {
        let mut body = vec![libc::AF_UNIX as u8, 1, 10, 0];
        body.extend_from_slice(&77u32.to_ne_bytes());
        body.extend_from_slice(&[0; 8]);
        body.extend(attr(UNIX_DIAG_NAME, b"/tmp/s\0"));
        body.extend(attr(UNIX_DIAG_ICONS, &[5u32.to_ne_bytes(), 0u32.to_ne_bytes()].concat()));
        body.extend(attr(UNIX_DIAG_RQLEN, &[2u32.to_ne_bytes(), 8u32.to_ne_bytes()].concat()));
        body.extend(attr(UNIX_DIAG_SHUTDOWN, &[2]));
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, &body);
        let mut out = Vec::new();
        assert!(!parse_unix(&buf, &mut out).unwrap());
        assert_eq!(
            out,
            vec![UnixDiag { ino: 77, kind: 1, state: 10, name: Some(b"/tmp/s\0".to_vec()), icons: vec![5, 0], rqlen: (2, 8), shutdown: 2, ..Default::default() }]
        );
        buf.extend(msg(NLMSG_DONE, &[0; 4]));
        assert!(parse_unix(&buf, &mut Vec::new()).unwrap());
    }

    #[test]
    fn abstract_names_keep_their_nul_and_errors_are_errors() {
        let mut body = vec![libc::AF_UNIX as u8, 2, 7, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend(attr(UNIX_DIAG_NAME, b"\0abc"));
        let mut out = Vec::new();
        parse_unix(&msg(SOCK_DIAG_BY_FAMILY, &body), &mut out).unwrap();
        assert_eq!(out[0].name.as_deref(), Some(&b"\0abc"[..]));
        assert!(parse_unix(&msg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes()), &mut out).is_err());
        assert!(parse_unix(&[40, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &mut out).is_err());
    }

    #[test]
    fn sees_a_socketpair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ino = |s: &std::os::unix::net::UnixStream| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd())).unwrap().ino() as u32
        };
        let all = unix_sockets().unwrap();
        let da = all.iter().find(|d| d.ino == ino(&a)).expect("socket a listed");
        assert_eq!(da.peer, ino(&b));
        assert_eq!(da.kind, libc::SOCK_STREAM as u8);
    }
}
