//! Unix sockets: stream, datagram and seqpacket; socketpairs; sockets bound to a path or an abstract
//! name; listening sockets with the connections waiting to be accepted; the data queued in every
//! direction (message boundaries kept); shutdown state; SO_PASSCRED, SO_SNDBUF/SO_RCVBUF, SO_PEEK_OFF,
//! timeouts, SO_RCVLOWAT and the file flags.
//!
//! Dump. sock_diag (UNIX_DIAG, [`crate::sys::sock_diag`]) gives each socket's inode, peer, name, bound
//! file, pending connections (their clients' inodes), queue lengths and shutdown state; getsockopt on
//! rcr's pidfd_getfd copy gives the options. The queued data is read without consuming it: MSG_PEEK
//! with SO_PEEK_OFF stepping from 0 through the queue, then the task's own SO_PEEK_OFF is put back, so
//! a failed or `-R` dump leaves it in place. Images are CRIU's: a `usk` file entry (UnixSkEntry) per
//! socket, the queued data in sk-queues.img (SkPacketEntry + payload, `id_for` the receiving socket).
//!
//! Pending connections have no fd: the kernel keeps a socket for each in the listener's queue, and
//! sock_diag does not even list it (it has no inode). Each is written as an extra file entry (no
//! fdinfo) with `rcr_listener` set to the listener's inode and `peer` to its client's, in accept()
//! order; a client in the tree has `peer` set to the listener's inode (CRIU's meaning: "connect to
//! this listener"). The data a client sent that waits in such a connection can only be read by
//! accepting it; rcr does that from its copy of the listener once every task is dumped (the tree is
//! then killed). With `-R` the connections are left alone, and a pending connection that may hold
//! data is an error (its client has bytes in flight, or is closed).
//!
//! A socket whose peer is outside the tree is an error, naming `--ext-unix-sk`; with it, a datagram
//! socket connected to an outside bound socket is reconnected to that name at restore. A stream or
//! seqpacket connection to the outside cannot be restored (CRIU refuses it too): still an error.
//!
//! Restore builds every unix socket of the checkpoint in rcr at the first `open` (a socket needs its
//! peer, its listener or the name it is connected to): connected pairs of the tree by socketpair, then
//! names bound (a leftover socket file at the path is unlinked first; anything else there is an error),
//! listeners listen, the connections a listener had accepted are made again through it (so both ends
//! keep their names), its pending connections are connected to it in order (accept() returns them),
//! their client ends going to whichever task owned them. Then the queued data is written from the
//! peer side, each message on its own, so every receive queue holds what it held. A bound datagram
//! socket that received from sockets other than its peer gets each message from the socket of the tree
//! bound to the sender's address (kept as `rcr_addr` in sk-queues.img), so recvfrom() shows it; when
//! there is none (the sender is gone, unnamed, or outside the tree) from a temporary unbound socket,
//! and recvfrom() then shows no address. A connection whose peer was closed gets a temporary peer
//! that writes the data and is closed. Last the shutdown state, options and file flags. A relative
//! name is bound from its directory (`name_dir`, the task's cwd at dump); a socket whose file was
//! deleted is bound, connected to, then its file removed again.
//!
//! Not handled: fds in flight (SCM_RIGHTS in a queue: an error, the queue left as it was); a relative
//! socket path whose file is not in the task's cwd any more (an error: rcr cannot tell where it was
//! bound); sockets in another network namespace than rcr's (sock_diag does not list them: the fd is
//! refused as an unknown kind); the options of a pending connection (the kernel's defaults);
//! SCM_CREDENTIALS of queued messages (the restored ones carry rcr's); a connected stream socket whose
//! name came from a listener that is gone (restored without a name); a datagram socket connected to a
//! socket that connected elsewhere since (its reconnection may be refused, EPERM). The pending
//! connections are taken from the listener in `finish_dump`, the last step that can fail before the
//! images are written: a failure after it (writing files.img) leaves the task without them.

use crate::image::{pb, ImageDir, ImageName};
use crate::sys::sock_diag::{self, UnixDiag};
use crate::sys::{self, getsockopt_int, getsockopt_tv, setsockopt_int, setsockopt_tv};
use crate::{Error, Result};
use nix::sys::socket::{self as ns, MsgFlags, SockFlag, SockType, UnixAddr};
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::{FdToDump, FileKind, FileTable, RestoreEnv};

const TCP_ESTABLISHED: u32 = 1;
const TCP_LISTEN: u32 = 10;
const RCV_SHUTDOWN: u32 = 1;
/// CRIU's uflags: an entry describing a peer outside the tree (no socket of the checkpoint).
const USK_EXTERN: u32 = 1;
const SEND_SHUTDOWN: u32 = 2;
const STREAM: u32 = libc::SOCK_STREAM as u32;
const DGRAM: u32 = libc::SOCK_DGRAM as u32;
const SEQPACKET: u32 = libc::SOCK_SEQPACKET as u32;

fn type_name(t: u32) -> &'static str {
    match t {
        STREAM => "stream",
        DGRAM => "datagram",
        SEQPACKET => "seqpacket",
        _ => "unknown-type",
    }
}

/// A socket name for messages: the path, "@abstract", or "unnamed".
fn show_name(name: &[u8]) -> String {
    match trim(name).split_first() {
        None => "unnamed".into(),
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        Some(_) => String::from_utf8_lossy(trim(name)).into_owned(),
    }
}

fn io_err(ctx: String, e: impl Into<std::io::Error>) -> Error {
    Error::Io { ctx, source: e.into() }
}

/// The options CRIU keeps for a socket, and SO_PEEK_OFF.
fn read_opts(fd: BorrowedFd<'_>) -> std::io::Result<(pb::SkOptsEntry, i32)> {
    let snd = getsockopt_tv(fd, libc::SO_SNDTIMEO)?;
    let rcv = getsockopt_tv(fd, libc::SO_RCVTIMEO)?;
    let o = pb::SkOptsEntry {
        so_sndbuf: getsockopt_int(fd, libc::SO_SNDBUF)? as u32,
        so_rcvbuf: getsockopt_int(fd, libc::SO_RCVBUF)? as u32,
        so_snd_tmo_sec: snd.tv_sec as u64,
        so_snd_tmo_usec: snd.tv_usec as u64,
        so_rcv_tmo_sec: rcv.tv_sec as u64,
        so_rcv_tmo_usec: rcv.tv_usec as u64,
        so_passcred: Some(getsockopt_int(fd, libc::SO_PASSCRED)? != 0),
        so_passsec: Some(getsockopt_int(fd, libc::SO_PASSSEC)? != 0),
        so_rcvlowat: Some(getsockopt_int(fd, libc::SO_RCVLOWAT)? as u32),
        ..Default::default()
    };
    Ok((o, getsockopt_int(fd, libc::SO_PEEK_OFF)?))
}

/// Sets the options of `e` on `fd` (SO_SNDBUF/SO_RCVBUF as the kernel reported them: it doubles what
/// it is given; above the sysctl maximum the FORCE variants, root's, are tried).
fn apply_opts(fd: BorrowedFd<'_>, e: &pb::UnixSkEntry) -> std::io::Result<()> {
    let o = &e.opts;
    for (opt, force, want) in [(libc::SO_SNDBUF, libc::SO_SNDBUFFORCE, o.so_sndbuf), (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE, o.so_rcvbuf)] {
        if want == 0 || getsockopt_int(fd, opt)? as u32 == want {
            continue;
        }
        setsockopt_int(fd, opt, (want / 2) as i32)?;
        if getsockopt_int(fd, opt)? as u32 != want {
            setsockopt_int(fd, force, (want / 2) as i32)?;
        }
    }
    if o.so_snd_tmo_sec != 0 || o.so_snd_tmo_usec != 0 {
        setsockopt_tv(fd, libc::SO_SNDTIMEO, o.so_snd_tmo_sec, o.so_snd_tmo_usec)?;
    }
    if o.so_rcv_tmo_sec != 0 || o.so_rcv_tmo_usec != 0 {
        setsockopt_tv(fd, libc::SO_RCVTIMEO, o.so_rcv_tmo_sec, o.so_rcv_tmo_usec)?;
    }
    if o.so_passcred == Some(true) {
        setsockopt_int(fd, libc::SO_PASSCRED, 1)?;
    }
    if o.so_passsec == Some(true) {
        setsockopt_int(fd, libc::SO_PASSSEC, 1)?;
    }
    if let Some(l) = o.so_rcvlowat.filter(|l| *l > 1) {
        setsockopt_int(fd, libc::SO_RCVLOWAT, l as i32)?;
    }
    if let Some(p) = e.rcr_peek_off.filter(|p| *p >= 0) {
        setsockopt_int(fd, libc::SO_PEEK_OFF, p)?;
    }
    Ok(())
}

/// Every message queued on `fd` (stream: the bytes, as one), read without taking it: MSG_PEEK with
/// SO_PEEK_OFF stepping through the queue from 0; the socket's own SO_PEEK_OFF is put back after.
/// One queued message: its bytes and its sender's address (empty: unnamed, or a stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Msg {
    data: Vec<u8>,
    from: Vec<u8>,
}

fn peek_queue(fd: BorrowedFd<'_>, kind: u32) -> std::result::Result<Vec<Msg>, String> {
    let orig = getsockopt_int(fd, libc::SO_PEEK_OFF).map_err(|e| format!("SO_PEEK_OFF: {e}"))?;
    setsockopt_int(fd, libc::SO_PEEK_OFF, 0).map_err(|e| format!("setting SO_PEEK_OFF: {e}"))?;
    let out = peek_from_zero(fd, kind);
    let back = setsockopt_int(fd, libc::SO_PEEK_OFF, orig).map_err(|e| format!("putting SO_PEEK_OFF {orig} back: {e}"));
    let out = out?;
    back?;
    Ok(out)
}

/// One recvmsg(MSG_PEEK) into `buf`: (bytes, truncated, whether it carried fds or cut control data,
/// sender address). The fds the kernel installed in rcr are closed at once.
fn peek_one(fd: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<(usize, bool, bool, Vec<u8>)> {
    let m = sys::recvmsg_unix(fd, buf, libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC)?;
    // Control data cut (more fds than room, or something else in flight) is refused like fds.
    let control = !m.fds.is_empty() || m.ctrunc;
    Ok((m.len, m.truncated, control, trim(&m.from).to_vec()))
}

fn peek_from_zero(fd: BorrowedFd<'_>, kind: u32) -> std::result::Result<Vec<Msg>, String> {
    let mut out: Vec<Msg> = Vec::new();
    let mut stream = Vec::new();
    let mut at: usize = 0; // the peek offset: bytes peeked so far
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (n, truncated, rights, from) = match peek_one(fd, &mut buf) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(format!("peeking at the queued data: {e}")),
        };
        if rights {
            return Err("its queue holds file descriptors in flight (SCM_RIGHTS) or other control data, which rcr cannot checkpoint yet".into());
        }
        if kind == STREAM {
            if n == 0 {
                break; // the peer shut down its side: end of the data
            }
            stream.extend_from_slice(&buf[..n]);
            at += n;
            continue;
        }
        if truncated {
            // A message longer than the buffer: the offset moved by what was copied; back to its start.
            if buf.len() >= 64 << 20 {
                return Err("a queued message is larger than 64 MiB".into());
            }
            setsockopt_int(fd, libc::SO_PEEK_OFF, at as i32).map_err(|e| format!("setting SO_PEEK_OFF: {e}"))?;
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        out.push(Msg { data: buf[..n].to_vec(), from });
        at += n;
        if out.len() > 1 << 20 {
            return Err("more than a million messages queued; the peek does not end".into());
        }
    }
    if kind == STREAM && !stream.is_empty() {
        out.push(Msg { data: stream, from: Vec::new() });
    }
    Ok(out)
}

/// One line for `rcr show`: "unix stream socket 123 (/tmp/s) listening" and the like.
pub fn describe(e: &pb::UnixSkEntry) -> String {
    let state = match e.state {
        TCP_LISTEN => format!("listening (backlog {})", e.backlog),
        TCP_ESTABLISHED if e.peer != 0 => format!("peer {}", e.peer),
        TCP_ESTABLISHED if e.r#type == DGRAM && !e.name.is_empty() => "bound".into(),
        TCP_ESTABLISHED => "peer closed".into(),
        _ => "unconnected".into(),
    };
    format!("unix {} socket {} ({}) {state}", type_name(e.r#type), e.ino, show_name(&e.name))
}

/// A socket of the dump, for the checks across the tree.
struct Dumped {
    pid: i32,
    fd: i32,
    kind: u32,
    peer: u32,
    /// Bytes it sent that nobody has read yet (a client's data in a pending connection).
    outq: u32,
}

/// A listening socket with connections waiting: rcr's copy of it, and the entries written for them.
struct Listener {
    ino: u32,
    pid: i32,
    fd: i32,
    copy: OwnedFd,
    kind: u32,
    /// (entry id, client inode) in accept() order.
    pending: Vec<(u32, u32)>,
}

/// Unix sockets as open fds (see the module documentation).
#[derive(Default)]
pub struct UnixSockets {
    /// Dump: every unix socket of rcr's network namespace by inode (sock_diag), asked once.
    diag: OnceCell<std::result::Result<BTreeMap<u32, UnixDiag>, String>>,
    dumped: BTreeMap<u32, Dumped>,
    listeners: Vec<Listener>,
    leave_running: bool,
    ext_unix_sk: bool,
    /// Dump: the queued messages by receiving entry id. Restore: the same, read back.
    queues: BTreeMap<u32, Vec<Msg>>,
    /// Restore: the sockets built, by entry id, until their `open`.
    built: Option<BTreeMap<u32, OwnedFd>>,
}

impl UnixSockets {
    fn diag(&self) -> std::result::Result<&BTreeMap<u32, UnixDiag>, &str> {
        self.diag
            .get_or_init(|| {
                sock_diag::unix_sockets().map(|v| v.into_iter().map(|d| (d.ino, d)).collect()).map_err(|e| {
                    tracing::warn!("unix sockets: {e}");
                    e.to_string()
                })
            })
            .as_ref()
            .map_err(|e| e.as_str())
    }

    /// The listener whose pending connections include client `ino`.
    fn listener_of(&self, ino: u32) -> Option<&UnixDiag> {
        self.diag().ok()?.values().find(|d| d.state as u32 == TCP_LISTEN && d.icons.contains(&ino))
    }
}

impl FileKind for UnixSockets {
    fn describe(&self, f: &pb::FileEntry) -> Option<String> {
        f.usk.as_ref().map(describe)
    }

    fn name(&self) -> &'static str {
        "unix socket"
    }

    fn fd_types(&self) -> &'static [pb::FdTypes] {
        &[pb::FdTypes::Unixsk]
    }

    fn handles(&self, st: &libc::stat, link: &str) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFSOCK
            && link.starts_with("socket:[")
            && self.diag().is_ok_and(|d| d.contains_key(&(st.st_ino as u32)))
    }

    fn dump(&mut self, fd: &FdToDump<'_>, id: u32, files: &mut FileTable) -> Result<pb::FileEntry> {
        let (pid, num, ino) = (fd.pid, fd.fd, fd.st.st_ino as u32);
        let at = |what: &str| format!("pid {pid}: fd {num}: unix socket {ino}: {what}");
        self.leave_running = fd.opts.leave_running;
        self.ext_unix_sk = fd.opts.ext_unix_sk;
        let d = self.diag().map_err(|e| Error::Msg(at(e)))?.get(&ino).cloned().ok_or_else(|| Error::Msg(at("not listed by sock_diag")))?;
        let (kind, state) = (d.kind as u32, d.state as u32);
        let (opts, peek_off) = read_opts(fd.file).map_err(|e| io_err(at("reading its options"), e))?;
        let name = d.name.clone().unwrap_or_default();
        let mut e = pb::UnixSkEntry {
            id,
            ino,
            r#type: kind,
            state,
            flags: fd.info.flags & !(libc::O_CLOEXEC as u32),
            backlog: if state == TCP_LISTEN { d.rqlen.1 } else { 0 },
            peer: d.peer,
            opts,
            shutdown: Some(d.shutdown as i32 & 3),
            rcr_peek_off: Some(peek_off),
            ..Default::default()
        };
        if name.first().is_some_and(|c| *c != 0) {
            // The socket file: its permissions, and whether it is still the one at the path. A relative
            // name is looked for in the task's cwd, which is where restore binds it (CRIU's name_dir).
            use std::os::unix::ffi::OsStrExt;
            let rel = name[0] != b'/';
            let cwd = format!("/proc/{pid}/cwd");
            let bare = std::ffi::OsStr::from_bytes(trim(&name));
            let path = if rel { Path::new(&cwd).join(bare) } else { Path::new(bare).to_path_buf() };
            match nix::sys::stat::lstat(&path) {
                Ok(st) if Some(st.st_ino as u32) == d.vfs.map(|v| v.0) => {
                    e.file_perms = Some(pb::FilePermsEntry { mode: st.st_mode, uid: st.st_uid, gid: st.st_gid });
                }
                _ if rel => {
                    return Err(Error::Msg(at(&format!(
                        "bound to the relative path '{}', which is not in the task's cwd any more; rcr cannot tell where to bind it again",
                        show_name(&name)
                    ))))
                }
                _ => e.deleted = Some(true),
            }
            if rel {
                let dir = std::fs::read_link(&cwd).map_err(|err| io_err(format!("pid {pid}: reading {cwd}"), err))?;
                e.name_dir = Some(dir.to_string_lossy().into_owned());
            }
        }
        e.name = name;
        if state == TCP_ESTABLISHED && d.peer == 0 {
            if let Some(l) = self.listener_of(ino) {
                e.peer = l.ino; // a client whose connection is not accepted yet: CRIU's "connect to this listener"
            }
        }
        if kind == DGRAM && d.peer != 0 {
            e.rcr_peer_name = self.diag().ok().and_then(|all| all.get(&d.peer)).and_then(|p| p.name.clone());
        }
        if state == TCP_LISTEN && !d.icons.is_empty() {
            let copy = fd.file.try_clone_to_owned().map_err(|err| io_err(at("dup"), err))?;
            let mut pending = Vec::new();
            for &client in &d.icons {
                let pend_id = files.next_id();
                let usk = pb::UnixSkEntry {
                    id: pend_id,
                    r#type: kind,
                    state: TCP_ESTABLISHED,
                    flags: libc::O_RDWR as u32,
                    peer: client,
                    name: e.name.clone(),
                    rcr_listener: Some(ino),
                    ..Default::default()
                };
                files.files.push(pb::FileEntry { r#type: pb::FdTypes::Unixsk as i32, id: pend_id, usk: Some(usk), ..Default::default() });
                pending.push((pend_id, client));
            }
            self.listeners.push(Listener { ino, pid, fd: num, copy, kind, pending });
        }
        if state != TCP_LISTEN {
            let q = peek_queue(fd.file, kind).map_err(|err| Error::Msg(at(&err)))?;
            if !q.is_empty() {
                self.queues.insert(id, q);
            }
        }
        self.dumped.insert(ino, Dumped { pid, fd: num, kind, peer: e.peer, outq: d.rqlen.1 });
        Ok(pb::FileEntry { r#type: pb::FdTypes::Unixsk as i32, id, usk: Some(e), ..Default::default() })
    }

    fn finish_dump(&mut self, dir: &Path, _files: &FileTable) -> Result<()> {
        if self.dumped.is_empty() {
            return Ok(());
        }
        self.check_peers()?;
        self.read_pending()?;
        if self.queues.is_empty() {
            return Ok(());
        }
        let mut w = ImageDir::new(dir).create(ImageName::SkQueues)?;
        for (id, msgs) in &self.queues {
            for m in msgs {
                let rcr_addr = (!m.from.is_empty()).then(|| m.from.clone());
                w.write_entry(&pb::SkPacketEntry { id_for: *id, length: m.data.len() as u32, scm: Vec::new(), rcr_addr })?;
                w.write_raw(&m.data)?;
            }
        }
        w.finish()?;
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        let images = ImageDir::new(dir);
        if !images.exists(ImageName::SkQueues) {
            return Ok(());
        }
        let path = images.file(ImageName::SkQueues);
        let mut r = images.open(ImageName::SkQueues)?;
        while let Some(e) = r.read_entry::<pb::SkPacketEntry>()? {
            if !e.scm.is_empty() {
                return Err(Error::Msg(format!("{}: a message for socket {} carries control data (SCM), which rcr cannot restore", path.display(), e.id_for)));
            }
            let data = r.read_raw(e.length as u64)?;
            self.queues.entry(e.id_for).or_default().push(Msg { data, from: e.rcr_addr.unwrap_or_default() });
        }
        Ok(())
    }

    fn open(&mut self, f: &pb::FileEntry, env: &RestoreEnv<'_>) -> Result<Option<OwnedFd>> {
        let Some(e) = f.usk.as_ref() else { return Ok(None) };
        if self.built.is_none() {
            // All at once at the first: errors name the socket at fault, which need not be this fd's.
            let built = Build::new(env, &self.queues).and_then(Build::run);
            self.built = Some(built.map_err(|err| Error::Msg(format!("re-creating the unix sockets of the checkpoint: {err}")))?);
        }
        let fd = self.built.as_mut().and_then(|b| b.remove(&f.id));
        fd.map(Some).ok_or_else(|| Error::Msg(format!("unix socket {} (file {}): not built (is it a pending connection with an fd?)", e.ino, f.id)))
    }

    fn finish_restore(&mut self) {
        self.built = None;
    }
}

impl UnixSockets {
    /// Every peer of a dumped socket is in the tree, or allowed outside it (`--ext-unix-sk`).
    fn check_peers(&self) -> Result<()> {
        let all = self.diag().map_err(|e| Error::Msg(e.to_string()))?;
        let outside = |d: &Dumped, ino: u32, peer: u32, what: &str| -> Result<()> {
            let pname = all.get(&peer).and_then(|p| p.name.as_deref()).map(show_name).unwrap_or_else(|| "unnamed".into());
            let head = format!(
                "pid {}: fd {}: unix {} socket {ino} {what} unix socket {peer} ({pname}), which is outside the dumped tree",
                d.pid,
                d.fd,
                type_name(d.kind)
            );
            if !self.ext_unix_sk {
                return Err(Error::Msg(format!(
                    "{head}; use --ext-unix-sk to dump it anyway (a datagram socket connected to a bound socket is then reconnected to that name at restore)"
                )));
            }
            if d.kind == DGRAM && pname != "unnamed" {
                return Ok(());
            }
            Err(Error::Msg(format!(
                "{head}; even with --ext-unix-sk only a datagram socket connected to a bound socket can be restored (reconnected by name): a {} connection to a process outside the tree cannot be re-created (criu refuses it too)",
                type_name(d.kind)
            )))
        };
        for (&ino, d) in &self.dumped {
            if d.peer != 0 && !self.dumped.contains_key(&d.peer) {
                outside(d, ino, d.peer, "is connected to")?;
            }
        }
        for l in &self.listeners {
            let d = &self.dumped[&l.ino];
            for &(_, client) in &l.pending {
                if client != 0 && !self.dumped.contains_key(&client) {
                    outside(d, l.ino, client, "(listening) has a connection waiting to be accepted from")?;
                }
            }
        }
        Ok(())
    }

    /// The data waiting in pending connections: read by accepting them from rcr's copy of the
    /// listener (the tree is killed after the dump); with `-R`, an error if there may be any.
    fn read_pending(&mut self) -> Result<()> {
        for l in std::mem::take(&mut self.listeners) {
            let at = format!("pid {}: fd {}: listening unix socket {}", l.pid, l.fd, l.ino);
            if self.leave_running {
                for &(_, client) in &l.pending {
                    let busy = client == 0 || self.dumped.get(&client).is_some_and(|c| c.outq > 0);
                    if busy {
                        return Err(Error::Msg(format!(
                            "{at}: a connection waiting to be accepted (client socket {client}) may hold data, which rcr can read only by accepting it; that would take it from the task, so it is refused with -R (leave running)"
                        )));
                    }
                }
                continue;
            }
            for &(id, client) in &l.pending {
                let s = sys::accept4(l.copy.as_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)
                    .map_err(|e| io_err(format!("{at}: accepting its pending connection from client {client} to read its data"), e))?;
                let q = peek_queue(s.as_fd(), l.kind).map_err(|e| Error::Msg(format!("{at}: pending connection from client {client}: {e}")))?;
                if !q.is_empty() {
                    self.queues.insert(id, q);
                }
            }
        }
        Ok(())
    }
}

fn new_socket(kind: u32) -> Result<OwnedFd> {
    let t = SockType::try_from(kind as i32).map_err(|_| Error::Msg(format!("unix socket of unknown type {kind}")))?;
    ns::socket(ns::AddressFamily::Unix, t, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None).map_err(|e| io_err(format!("socket(AF_UNIX, {})", type_name(kind)), e))
}

fn new_pair(kind: u32) -> Result<(OwnedFd, OwnedFd)> {
    let t = SockType::try_from(kind as i32).map_err(|_| Error::Msg(format!("unix socket of unknown type {kind}")))?;
    ns::socketpair(ns::AddressFamily::Unix, t, None, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK).map_err(|e| io_err(format!("socketpair(AF_UNIX, {})", type_name(kind)), e))
}

/// A name without the terminating NUL a path may carry (CRIU keeps the kernel's bytes, NUL included).
fn trim(name: &[u8]) -> &[u8] {
    match name.first() {
        Some(&c) if c != 0 => {
            let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            &name[..end]
        }
        _ => name,
    }
}

fn addr(name: &[u8]) -> Result<UnixAddr> {
    let name = trim(name);
    let r = match name.split_first() {
        Some((0, rest)) => UnixAddr::new_abstract(rest),
        _ => UnixAddr::new(name),
    };
    r.map_err(|e| io_err(format!("unix socket name {}", show_name(name)), e))
}

/// The address to reach entry `e` at from rcr: its name, a relative one joined to its directory.
fn reach(e: &pb::UnixSkEntry) -> Result<UnixAddr> {
    match &e.name_dir {
        Some(d) if e.name.first().is_some_and(|c| *c != 0 && *c != b'/') => {
            let mut full = d.as_bytes().to_vec();
            full.push(b'/');
            full.extend_from_slice(trim(&e.name));
            addr(&full)
        }
        _ => addr(&e.name),
    }
}

/// One restore's unix sockets being built (see the module documentation).
struct Build<'a> {
    env: &'a RestoreEnv<'a>,
    queues: &'a BTreeMap<u32, Vec<Msg>>,
    /// Every socket entry that had an fd, by inode.
    by_ino: BTreeMap<u32, &'a pb::UnixSkEntry>,
    /// Pending connections, in files.img (accept) order.
    pending: Vec<&'a pb::UnixSkEntry>,
    /// Names of peers outside the tree, from CRIU's USK_EXTERN entries, by inode.
    externs: BTreeMap<u32, Vec<u8>>,
    fds: BTreeMap<u32, OwnedFd>,
    /// Receiving entry id -> the entry id whose fd writes its data.
    sender: BTreeMap<u32, u32>,
    /// Receiving entry id -> a socket of rcr's that writes its data and is closed after.
    temp: BTreeMap<u32, OwnedFd>,
    /// Entries whose sockets were connected by socketpair or through their listener.
    paired: BTreeSet<u32>,
    /// Socket files deleted at dump: removed once every socket is built.
    unlink_after: Vec<std::path::PathBuf>,
}

impl<'a> Build<'a> {
    fn new(env: &'a RestoreEnv<'a>, queues: &'a BTreeMap<u32, Vec<Msg>>) -> Result<Build<'a>> {
        let mut by_ino = BTreeMap::new();
        let mut pending = Vec::new();
        let mut externs = BTreeMap::new();
        for e in env.files.values().filter_map(|f| f.usk.as_ref()) {
            if e.rcr_listener.is_some() {
                pending.push(e);
            } else if e.uflags & USK_EXTERN != 0 {
                externs.insert(e.ino, e.name.clone()); // CRIU's entry for a peer outside the tree
            } else if by_ino.insert(e.ino, e).is_some() {
                return Err(Error::Msg(format!("files.img: two unix sockets with inode {}", e.ino)));
            }
        }
        Ok(Build { env, queues, by_ino, pending, externs, fds: BTreeMap::new(), sender: BTreeMap::new(), temp: BTreeMap::new(), paired: BTreeSet::new(), unlink_after: Vec::new() })
    }

    fn at(e: &pb::UnixSkEntry) -> String {
        format!("unix {} socket {} ({})", type_name(e.r#type), e.ino, show_name(&e.name))
    }

    /// Whether `e` is the client of a pending connection (made with its listener).
    /// (CRIU's images have no entries for those connections, only the client's `peer` naming the
    /// listener.)
    fn is_pending_client(&self, e: &pb::UnixSkEntry) -> bool {
        let criu_style = e.state == TCP_ESTABLISHED && self.by_ino.get(&e.peer).is_some_and(|l| l.state == TCP_LISTEN);
        e.ino != 0 && (criu_style || self.pending.iter().any(|p| p.peer == e.ino))
    }

    /// The in-tree listener with this name.
    fn listener_named(&self, name: &[u8]) -> Option<&'a pb::UnixSkEntry> {
        if name.is_empty() {
            return None;
        }
        self.by_ino.values().copied().find(|l| l.state == TCP_LISTEN && l.name == name)
    }

    /// Whether `e` binds its name itself: not a connected stream socket (that one has its listener's).
    fn owns_name(e: &pb::UnixSkEntry) -> bool {
        let connected_stream = e.r#type != DGRAM && e.state == TCP_ESTABLISHED;
        !e.name.is_empty() && !connected_stream
    }

    fn run(mut self) -> Result<BTreeMap<u32, OwnedFd>> {
        let entries: Vec<&'a pb::UnixSkEntry> = self.by_ino.values().copied().collect();
        // Sockets, connected pairs, names.
        for &e in &entries {
            if self.fds.contains_key(&e.id) || self.is_pending_client(e) {
                continue;
            }
            let peer = self.by_ino.get(&e.peer).copied();
            let mutual = peer.filter(|p| p.peer == e.ino && p.id != e.id && e.state == TCP_ESTABLISHED);
            if let Some(p) = mutual {
                let through_listener = |x: &pb::UnixSkEntry| x.r#type != DGRAM && self.listener_named(&x.name).is_some();
                if through_listener(e) || through_listener(p) {
                    continue; // made with the listener below
                }
                let (a, b) = new_pair(e.r#type)?;
                self.fds.insert(e.id, a);
                self.fds.insert(p.id, b);
                self.sender.insert(e.id, p.id);
                self.sender.insert(p.id, e.id);
                self.paired.extend([e.id, p.id]);
                continue;
            }
            // (A bound datagram socket others connected to is "established" too, with no peer.)
            if e.state == TCP_ESTABLISHED && (e.r#type != DGRAM || (e.peer == 0 && e.name.is_empty())) {
                // Connected, and the peer is closed: a temporary peer writes the data and is closed.
                if e.peer != 0 && e.r#type != DGRAM {
                    return Err(Error::Msg(format!("{}: its peer {} is not in the checkpoint (dumped with --ext-unix-sk? a stream connection outside the tree cannot be restored)", Self::at(e), e.peer)));
                }
                let (a, b) = new_pair(e.r#type)?;
                self.fds.insert(e.id, a);
                self.temp.insert(e.id, b);
                self.paired.insert(e.id);
                continue;
            }
            self.fds.insert(e.id, new_socket(e.r#type)?);
        }
        for &e in &entries {
            if Self::owns_name(e) {
                if let Some(fd) = self.fds.get(&e.id) {
                    self.unlink_after.extend(bind(fd.as_fd(), e)?);
                }
            }
        }
        // Listeners: listen, the connections they had accepted, the ones waiting.
        for &l in entries.iter().filter(|l| l.state == TCP_LISTEN) {
            self.listener(l)?;
        }
        // The queued data, before datagram sockets connect (a connected one takes only its peer's).
        for (&id, msgs) in self.queues {
            self.write_queue(id, msgs)?;
        }
        for &e in &entries {
            if e.r#type == DGRAM && e.peer != 0 && !self.paired.contains(&e.id) {
                self.connect_dgram(e)?;
            }
        }
        // Peers that are gone go now (the survivor sees them closed); then shutdown, options, flags.
        self.temp.clear();
        for &e in &entries {
            let Some(fd) = self.fds.get(&e.id) else { continue };
            let how = e.shutdown.unwrap_or(0) as u32;
            let how = match (how & RCV_SHUTDOWN != 0, how & SEND_SHUTDOWN != 0) {
                (true, true) => Some(ns::Shutdown::Both),
                (true, false) => Some(ns::Shutdown::Read),
                (false, true) => Some(ns::Shutdown::Write),
                _ => None,
            };
            if let Some(how) = how {
                ns::shutdown(fd.as_raw_fd(), how).map_err(|err| io_err(format!("{}: shutdown", Self::at(e)), err))?;
            }
            apply_opts(fd.as_fd(), e).map_err(|err| io_err(format!("{}: setting its options", Self::at(e)), err))?;
            let fl = nix::fcntl::OFlag::from_bits_retain(e.flags as i32 & libc::O_NONBLOCK);
            if let Err(err) = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(fl)) {
                return Err(io_err(format!("{}: setting its file flags", Self::at(e)), err));
            }
        }
        for p in &self.unlink_after {
            std::fs::remove_file(p).map_err(|err| io_err(format!("removing {}, deleted at dump, once bound", p.display()), err))?;
        }
        Ok(self.fds)
    }

    fn listener(&mut self, l: &'a pb::UnixSkEntry) -> Result<()> {
        let lfd = self.fds.get(&l.id).ok_or_else(|| Error::Msg(format!("{}: not created", Self::at(l))))?.try_clone().map_err(|e| io_err("dup".into(), e))?;
        if l.name.is_empty() {
            return Err(Error::Msg(format!("{}: a listening socket without a name", Self::at(l))));
        }
        let backlog = ns::Backlog::new(l.backlog as i32).unwrap_or(ns::Backlog::MAXCONN);
        ns::listen(&lfd, backlog).map_err(|e| io_err(format!("{}: listen({})", Self::at(l), l.backlog), e))?;
        let a = reach(l)?;
        // Its accepted connections: the accepted end has the listener's name, the client does not.
        let accepted: Vec<(&pb::UnixSkEntry, &pb::UnixSkEntry)> = self
            .by_ino
            .values()
            .filter(|x| x.r#type == l.r#type && x.state == TCP_ESTABLISHED && x.name == l.name && !self.fds.contains_key(&x.id))
            .filter_map(|x| self.by_ino.get(&x.peer).filter(|c| c.peer == x.ino && c.name != l.name).map(|c| (*x, *c)))
            .collect();
        for (x, c) in accepted {
            let cfd = new_socket(c.r#type)?;
            if !c.name.is_empty() {
                self.unlink_after.extend(bind(cfd.as_fd(), c)?);
            }
            ns::connect(cfd.as_raw_fd(), &a).map_err(|e| io_err(format!("{}: connecting to its listener {}", Self::at(c), show_name(&l.name)), e))?;
            let s = sys::accept4(lfd.as_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK).map_err(|e| io_err(format!("{}: accept", Self::at(l)), e))?;
            self.fds.insert(x.id, s);
            self.fds.insert(c.id, cfd);
            self.sender.insert(x.id, c.id);
            self.sender.insert(c.id, x.id);
            self.paired.extend([x.id, c.id]);
        }
        // Its pending connections, in accept() order; each client goes to its task, or is closed.
        let pending: Vec<&pb::UnixSkEntry> = self.pending.iter().copied().filter(|p| p.rcr_listener == Some(l.ino)).collect();
        for p in pending {
            let client = self.by_ino.get(&p.peer).copied().filter(|_| p.peer != 0);
            let cfd = new_socket(l.r#type)?;
            if let Some(c) = client.filter(|c| !c.name.is_empty() && c.name != l.name) {
                self.unlink_after.extend(bind(cfd.as_fd(), c)?);
            }
            ns::connect(cfd.as_raw_fd(), &a).map_err(|e| io_err(format!("{}: re-creating a connection waiting to be accepted (backlog {})", Self::at(l), l.backlog), e))?;
            match client {
                Some(c) => {
                    self.fds.insert(c.id, cfd);
                    self.sender.insert(p.id, c.id);
                    self.paired.insert(c.id);
                }
                None => {
                    self.temp.insert(p.id, cfd);
                }
            }
        }
        // Clients of connections a CRIU image names only by the client's `peer` (no data known).
        let rest: Vec<&pb::UnixSkEntry> =
            self.by_ino.values().copied().filter(|c| c.peer == l.ino && c.state == TCP_ESTABLISHED && !self.fds.contains_key(&c.id)).collect();
        for c in rest {
            let cfd = new_socket(c.r#type)?;
            if !c.name.is_empty() && c.name != l.name {
                self.unlink_after.extend(bind(cfd.as_fd(), c)?);
            }
            ns::connect(cfd.as_raw_fd(), &a).map_err(|e| io_err(format!("{}: connecting to its listener {}", Self::at(c), show_name(&l.name)), e))?;
            self.fds.insert(c.id, cfd);
            self.paired.insert(c.id);
        }
        Ok(())
    }

    fn connect_dgram(&mut self, e: &pb::UnixSkEntry) -> Result<()> {
        let name = match self.by_ino.get(&e.peer) {
            Some(p) if !p.name.is_empty() => {
                let fd = self.fds.get(&e.id).ok_or_else(|| Error::Msg(format!("{}: not created", Self::at(e))))?;
                return ns::connect(fd.as_raw_fd(), &reach(p)?).map_err(|err| io_err(format!("{}: connecting to {}", Self::at(e), show_name(&p.name)), err));
            }
            Some(p) => p.name.clone(),
            None if !self.env.ext_unix_sk => {
                return Err(Error::Msg(format!(
                    "{}: it was connected to socket {} outside the tree ({}); restore with --ext-unix-sk to reconnect it to that name",
                    Self::at(e),
                    e.peer,
                    show_name(e.rcr_peer_name.as_deref().unwrap_or_default())
                )))
            }
            None => e.rcr_peer_name.clone().or_else(|| self.externs.get(&e.peer).cloned()).unwrap_or_default(),
        };
        if name.is_empty() {
            return Err(Error::Msg(format!("{}: connected to socket {}, which has no name to connect to again", Self::at(e), e.peer)));
        }
        let fd = self.fds.get(&e.id).ok_or_else(|| Error::Msg(format!("{}: not created", Self::at(e))))?;
        ns::connect(fd.as_raw_fd(), &addr(&name)?).map_err(|err| io_err(format!("{}: connecting to {}", Self::at(e), show_name(&name)), err))
    }

    /// Writes the messages queued for entry `id` from its sender, each on its own.
    fn write_queue(&self, id: u32, msgs: &[Msg]) -> Result<()> {
        let e = self
            .env
            .files
            .get(&id)
            .and_then(|f| f.usk.as_ref())
            .ok_or_else(|| Error::Msg(format!("sk-queues.img: data for file {id}, which is no unix socket of files.img")))?;
        let fixed = self.temp.get(&id).or_else(|| self.sender.get(&id).and_then(|s| self.fds.get(s)));
        let by_name = e.r#type == DGRAM && !e.name.is_empty();
        if fixed.is_none() && !by_name {
            return Err(Error::Msg(format!("{}: {} queued message(s) and no socket to write them from", Self::at(e), msgs.len())));
        }
        // Sent by sockets that are not its peer: from the socket of the tree with the sender's name
        // (recvfrom() then shows it), else from a temporary unbound one.
        let temp = if fixed.is_none() { Some(new_socket(DGRAM)?) } else { None };
        let to = if fixed.is_none() { Some(reach(e)?) } else { None };
        let from_tree = |m: &Msg| -> Option<BorrowedFd<'_>> {
            if m.from.is_empty() {
                return None;
            }
            let s = self.by_ino.values().find(|s| s.r#type == DGRAM && trim(&s.name) == trim(&m.from) && (s.peer == 0 || s.peer == e.ino))?;
            self.fds.get(&s.id).map(|f| f.as_fd())
        };
        for m in msgs {
            let fd = fixed.map(|f| f.as_fd()).or_else(|| from_tree(m)).or_else(|| temp.as_ref().map(|t| t.as_fd()));
            let fd = fd.ok_or_else(|| Error::Msg(format!("{}: no socket to write its queued data from", Self::at(e))))?;
            // The sender's own buffer limit must not stop the writing; its real size is set after.
            let _ = setsockopt_int(fd, libc::SO_SNDBUFFORCE, 32 << 20).or_else(|_| setsockopt_int(fd, libc::SO_SNDBUF, i32::MAX / 2));
            let data = &m.data;
            let mut off = 0;
            loop {
                let r = match &to {
                    Some(a) => ns::sendto(fd.as_raw_fd(), &data[off..], a, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
                    None => ns::send(fd.as_raw_fd(), &data[off..], MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
                };
                let n = r.map_err(|err| io_err(format!("{}: writing back its queued data ({} bytes of a {}-byte message)", Self::at(e), data.len() - off, data.len()), err))?;
                off += n;
                if e.r#type != STREAM || off >= data.len() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Binds `fd` to the name of `e`: a socket file left at the path is removed first (anything else there
/// is an error). A relative name is bound from its directory (`name_dir`: rcr changes its own cwd for
/// the call and back). Returns the path of a socket file that was deleted at dump: the caller removes
/// it once every socket is connected (a listener's clients connect through it).
fn bind(fd: BorrowedFd<'_>, e: &pb::UnixSkEntry) -> Result<Option<std::path::PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let at = Build::at(e);
    let a = addr(&e.name)?;
    if e.name.first().is_none_or(|c| *c == 0) {
        ns::bind(fd.as_raw_fd(), &a).map_err(|err| io_err(format!("{at}: bind"), err))?;
        return Ok(None);
    }
    let name = Path::new(std::ffi::OsStr::from_bytes(trim(&e.name)));
    let dir = if name.is_relative() {
        Some(e.name_dir.as_deref().ok_or_else(|| Error::Msg(format!("{at}: a relative name without its directory (name_dir)")))?)
    } else {
        None
    };
    let path = dir.map(|d| Path::new(d).join(name)).unwrap_or_else(|| name.to_path_buf());
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if !m.file_type().is_socket() {
            return Err(Error::Msg(format!("{at}: {} exists and is not a socket; rcr does not remove it", path.display())));
        }
        if e.deleted == Some(true) {
            return Err(Error::Msg(format!("{at}: its socket file was deleted before the dump and {} is another socket's now; rcr cannot bind the name again", path.display())));
        }
        std::fs::remove_file(&path).map_err(|err| io_err(format!("{at}: removing the old socket file {}", path.display()), err))?;
    }
    let r = match dir {
        Some(d) => in_dir(Path::new(d), || ns::bind(fd.as_raw_fd(), &a)).map_err(|err| io_err(format!("{at}: bind in {d}"), err))?,
        None => ns::bind(fd.as_raw_fd(), &a),
    };
    r.map_err(|err| io_err(format!("{at}: bind"), err))?;
    if e.deleted == Some(true) {
        return Ok(Some(path));
    }
    if let Some(p) = &e.file_perms {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(p.mode & 0o7777)).map_err(|err| io_err(format!("{at}: chmod {}", path.display()), err))?;
        std::os::unix::fs::lchown(&path, Some(p.uid), Some(p.gid)).map_err(|err| io_err(format!("{at}: chown {}", path.display()), err))?;
    }
    Ok(None)
}

/// Runs `f` with rcr's cwd at `dir`, then goes back.
fn in_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> std::io::Result<T> {
    let back = std::fs::File::open(".")?;
    std::env::set_current_dir(dir)?;
    let r = f();
    nix::unistd::fchdir(back.as_raw_fd())?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_leaves_the_data_and_the_offset() {
        let (a, b) = new_pair(SEQPACKET).unwrap();
        for m in [&b"one"[..], b"", b"three"] {
            ns::send(a.as_raw_fd(), m, MsgFlags::empty()).unwrap();
        }
        setsockopt_int(b.as_fd(), libc::SO_PEEK_OFF, 2).unwrap();
        // "" is not a seqpacket message the kernel queues on every version: compare without it.
        let got: Vec<Vec<u8>> = peek_queue(b.as_fd(), SEQPACKET).unwrap().into_iter().map(|m| m.data).filter(|m| !m.is_empty()).collect();
        assert_eq!(got, vec![b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(getsockopt_int(b.as_fd(), libc::SO_PEEK_OFF).unwrap(), 2);
        setsockopt_int(b.as_fd(), libc::SO_PEEK_OFF, -1).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(ns::recv(b.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).unwrap(), 3);
    }

    #[test]
    fn peek_keeps_the_sender_address() {
        let name = format!("rcr-unit-from-{}", std::process::id());
        let r = new_socket(DGRAM).unwrap();
        let w = new_socket(DGRAM).unwrap();
        ns::bind(r.as_raw_fd(), &UnixAddr::new_abstract(b"rcr-unit-to-x").unwrap()).unwrap();
        ns::bind(w.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes()).unwrap()).unwrap();
        ns::sendto(w.as_raw_fd(), b"hi", &UnixAddr::new_abstract(b"rcr-unit-to-x").unwrap(), MsgFlags::empty()).unwrap();
        let q = peek_queue(r.as_fd(), DGRAM).unwrap();
        assert_eq!(q, vec![Msg { data: b"hi".to_vec(), from: [&[0u8][..], name.as_bytes()].concat() }]);
    }

    #[test]
    fn peek_stream_is_one_run_of_bytes() {
        let (a, b) = new_pair(STREAM).unwrap();
        ns::send(a.as_raw_fd(), b"abc", MsgFlags::empty()).unwrap();
        ns::send(a.as_raw_fd(), b"defg", MsgFlags::empty()).unwrap();
        ns::shutdown(a.as_raw_fd(), ns::Shutdown::Write).unwrap();
        assert_eq!(peek_queue(b.as_fd(), STREAM).unwrap(), vec![Msg { data: b"abcdefg".to_vec(), from: Vec::new() }]);
        assert_eq!(getsockopt_int(b.as_fd(), libc::SO_PEEK_OFF).unwrap(), -1);
    }

    #[test]
    fn handles_unix_sockets_only() {
        let (a, _b) = new_pair(STREAM).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let k = UnixSockets::default();
        let st = |fd: i32| nix::sys::stat::fstat(fd).unwrap();
        assert!(k.handles(&st(a.as_raw_fd()), "socket:[1]"));
        assert!(!k.handles(&st(udp.as_raw_fd()), "socket:[2]"));
    }

    fn entry(id: u32, ino: u32, kind: u32, state: u32, peer: u32, name: &[u8]) -> pb::FileEntry {
        let usk = pb::UnixSkEntry { id, ino, r#type: kind, state, peer, name: name.to_vec(), flags: libc::O_RDWR as u32, backlog: 4, ..Default::default() };
        pb::FileEntry { r#type: pb::FdTypes::Unixsk as i32, id, usk: Some(usk), ..Default::default() }
    }

    /// A pair with data one way, and a CRIU-style in-flight client (its `peer` is the listener).
    #[test]
    fn builds_pairs_queues_and_criu_inflight_clients() {
        let name = format!("\0rcr-unit-{}", std::process::id()).into_bytes();
        let files: BTreeMap<u32, pb::FileEntry> = [
            entry(1, 101, SEQPACKET, TCP_ESTABLISHED, 102, b""),
            entry(2, 102, SEQPACKET, TCP_ESTABLISHED, 101, b""),
            entry(3, 103, STREAM, TCP_LISTEN, 0, &name),
            entry(4, 104, STREAM, TCP_ESTABLISHED, 103, b""),
        ]
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
        let msg = |d: &[u8]| Msg { data: d.to_vec(), from: Vec::new() };
        let queues: BTreeMap<u32, Vec<Msg>> = [(2, vec![msg(b"ab"), msg(b"cde")])].into_iter().collect();
        let env = RestoreEnv { images_dir: Path::new("/nonexistent"), shell_job: false, ext_unix_sk: false, files: &files, memfds: &Default::default(), mapped: false };
        let mut fds = Build::new(&env, &queues).and_then(Build::run).unwrap();
        let b = fds.remove(&2).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(ns::recv(b.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).unwrap(), 2);
        assert_eq!(ns::recv(b.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).unwrap(), 3);
        assert_eq!(&buf[..3], b"cde");
        let l = fds.remove(&3).unwrap();
        let c = fds.remove(&4).unwrap();
        let a = sys::accept4(l.as_fd(), SockFlag::SOCK_CLOEXEC).unwrap();
        ns::send(c.as_raw_fd(), b"x", MsgFlags::empty()).unwrap();
        assert_eq!(ns::recv(a.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap(), 1);
    }

    #[test]
    fn names_show() {
        assert_eq!(show_name(b"\0abc"), "@abc");
        assert_eq!(show_name(b"/tmp/x"), "/tmp/x");
        assert_eq!(show_name(b"/tmp/x\0"), "/tmp/x");
        assert_eq!(trim(b"\0ab\0"), b"\0ab\0");
        assert_eq!(show_name(b""), "unnamed");
    }
}
