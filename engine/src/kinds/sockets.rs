//! Sockets no kind handles yet (TCP, UDP, netlink, packet...): what they are, for the error that
//! refuses them. Network sockets get their own module with dump and restore when rcr supports them.

use nix::sys::socket::{getpeername, getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage};
use std::os::fd::BorrowedFd;

/// "a TCP socket listening on 127.0.0.1:41000", "a UDP socket bound to [::1]:5353", "a netlink
/// socket": the family, type and addresses of socket `fd` (rcr's copy of the task's), as far as the
/// kernel says.
pub fn describe(fd: BorrowedFd<'_>) -> String {
    let local = getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&fd)).ok();
    let family = local.as_ref().and_then(|a| a.family());
    let ty = getsockopt(&fd, sockopt::SockType).ok();
    let listening = getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false);
    let inet = matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6));
    let name = match (family, ty) {
        (Some(AddressFamily::Inet | AddressFamily::Inet6), Some(SockType::Stream)) => "TCP".to_string(),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), Some(SockType::Datagram)) => "UDP".to_string(),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), Some(SockType::Raw)) => "raw IP".to_string(),
        (Some(AddressFamily::Netlink), _) => "netlink".to_string(),
        (Some(AddressFamily::Packet), _) => "packet (AF_PACKET)".to_string(),
        (Some(AddressFamily::Vsock), _) => "vsock".to_string(),
        (Some(f), _) => format!("{f:?}"),
        (None, _) => "network".to_string(),
    };
    let mut out = format!("a {name} socket");
    if inet {
        let addr = local.as_ref().map(inet_str).unwrap_or_default();
        let peer = getpeername::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&fd)).ok().map(|p| inet_str(&p));
        match (listening, peer) {
            (true, _) => out.push_str(&format!(" listening on {addr}")),
            (false, Some(p)) => out.push_str(&format!(" {addr} connected to {p}")),
            (false, None) => out.push_str(&format!(" bound to {addr}")),
        }
    }
    out
}

/// "127.0.0.1:80", "[::1]:80".
fn inet_str(a: &SockaddrStorage) -> String {
    if let Some(v4) = a.as_sockaddr_in() {
        std::net::SocketAddrV4::from(*v4).to_string()
    } else if let Some(v6) = a.as_sockaddr_in6() {
        std::net::SocketAddrV6::from(*v6).to_string()
    } else {
        "an address of another family".into()
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use std::os::fd::AsFd;

    #[test]
    fn names_tcp_listener_and_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(describe(l.as_fd()), format!("a TCP socket listening on 127.0.0.1:{port}"));
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mine = c.local_addr().unwrap();
        assert_eq!(describe(c.as_fd()), format!("a TCP socket {mine} connected to 127.0.0.1:{port}"));
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(describe(u.as_fd()), format!("a UDP socket bound to {}", u.local_addr().unwrap()));
    }
}
