//! Socket calls for the unix socket kind: SOL_SOCKET options by number (the kind walks a list of
//! them, SO_PEEK_OFF among them, which nix's typed `sockopt`s lack), a peeking recvmsg that keeps
//! the sender's address length, and accept4 returning an `OwnedFd` (nix 0.29 returns a raw fd).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// getsockopt(SOL_SOCKET, `opt`) of an int option.
pub fn getsockopt_int(fd: BorrowedFd<'_>, opt: i32) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the kernel to write an int and its length.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&mut v as *mut libc::c_int).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// setsockopt(SOL_SOCKET, `opt`) of an int option.
pub fn setsockopt_int(fd: BorrowedFd<'_>, opt: i32, v: i32) -> io::Result<()> {
    // SAFETY: the kernel reads an int from `v`.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&v as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// getsockopt(SOL_SOCKET, `opt`) of a timeval option (SO_SNDTIMEO, SO_RCVTIMEO).
pub fn getsockopt_tv(fd: BorrowedFd<'_>, opt: i32) -> io::Result<libc::timeval> {
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for the kernel to write a timeval and its length.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&mut tv as *mut libc::timeval).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tv)
}

/// setsockopt(SOL_SOCKET, `opt`) of a timeval option.
pub fn setsockopt_tv(fd: BorrowedFd<'_>, opt: i32, sec: u64, usec: u64) -> io::Result<()> {
    let tv = libc::timeval { tv_sec: sec as libc::time_t, tv_usec: usec as libc::suseconds_t };
    // SAFETY: the kernel reads a timeval from `tv`.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&tv as *const libc::timeval).cast(), std::mem::size_of::<libc::timeval>() as libc::socklen_t) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What one [`recvmsg_unix`] got.
#[derive(Debug)]
pub struct UnixMsg {
    /// Bytes received into the buffer.
    pub len: usize,
    /// MSG_TRUNC: the message was longer than the buffer.
    pub truncated: bool,
    /// MSG_CTRUNC: control data was cut (more fds than room, or something else).
    pub ctrunc: bool,
    /// The fds of SCM_RIGHTS messages, installed in this process.
    pub fds: Vec<OwnedFd>,
    /// The sender's sun_path bytes, as long as the kernel said (an abstract name may hold NULs).
    pub from: Vec<u8>,
}

/// recvmsg(2) on a unix socket into `buf` with `flags` (MSG_*): the data, the SCM_RIGHTS fds and the
/// sender's address. Raw, not nix's recvmsg: nix gives the sender of a unix socket without its
/// length, and asserts on the empty address of a stream.
pub fn recvmsg_unix(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<UnixMsg> {
    // SAFETY: sockaddr_un and msghdr are plain old data; all-zero is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut cbuf = [0u64; 64]; // cmsghdr-aligned room for 16 fds and a ucred
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    mh.msg_name = (&mut sun as *mut libc::sockaddr_un).cast();
    mh.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: every pointer in `mh` points to a live buffer of the length given with it.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut mh, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_controllen bytes of `cbuf`; CMSG_FIRSTHDR/NXTHDR stay within them and
    // each SCM_RIGHTS payload holds (cmsg_len - header) / 4 ints, read unaligned. Each fd was just
    // installed in this process by the kernel and is owned by nobody else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let count = ((*c).cmsg_len as usize - (data as usize - c as usize)) / std::mem::size_of::<i32>();
                for i in 0..count {
                    let f = std::ptr::read_unaligned((data as *const i32).add(i));
                    if f >= 0 {
                        fds.push(OwnedFd::from_raw_fd(f));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    let plen = (mh.msg_namelen as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>()).min(sun.sun_path.len());
    Ok(UnixMsg {
        len: n as usize,
        truncated: mh.msg_flags & libc::MSG_TRUNC != 0,
        ctrunc: mh.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
        from: sun.sun_path[..plen].iter().map(|c| *c as u8).collect(),
    })
}

/// accept4(2) with SOCK_* `flags`: the new connection.
pub fn accept4(fd: BorrowedFd<'_>, flags: nix::sys::socket::SockFlag) -> io::Result<OwnedFd> {
    // SAFETY: no address is asked for (both pointers NULL); integer arguments otherwise.
    let r = unsafe { libc::accept4(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags.bits()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}
