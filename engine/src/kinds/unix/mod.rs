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
//! Restore ([`restore`]) makes every unix socket of the checkpoint in rcr as nodes of the restore
//! graph, each waiting for what it needs (its peer, its listener, the name it is connected to):
//! connected pairs of the tree by socketpair, names bound (a leftover socket file at the path is unlinked first; anything else there is an error),
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

mod restore;

use super::{FdToDump, FileKind, FileTable, Obj, Progress, RestoreEnv};

const TCP_ESTABLISHED: u32 = 1;
const TCP_LISTEN: u32 = 10;
const RCV_SHUTDOWN: u32 = 1;
/// CRIU's uflags: an entry describing a peer outside the tree (no socket of the checkpoint).
const USK_EXTERN: u32 = 1;
const SEND_SHUTDOWN: u32 = 2;
const STREAM: u32 = libc::SOCK_STREAM as u32;
const DGRAM: u32 = libc::SOCK_DGRAM as u32;
const SEQPACKET: u32 = libc::SOCK_SEQPACKET as u32;

/// A socket of the checkpoint in messages: "unix stream socket 123 (/tmp/s)".
fn at(e: &pb::UnixSkEntry) -> String {
    format!("unix {} socket {} ({})", type_name(e.r#type), e.ino, show_name(&e.name))
}

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
    /// Restore: the sockets being made, through the restore graph ([`restore`]).
    restoring: Option<restore::Restoring>,
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
        let d = self.diag().map_err(|e| Error::Kernel(at(e)))?.get(&ino).cloned().ok_or_else(|| Error::Kernel(at("not listed by sock_diag")))?;
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
                    return Err(Error::not_supported(at(&format!(
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
            let q = peek_queue(fd.file, kind).map_err(|err| Error::Kernel(at(&err)))?;
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
                return Err(Error::not_supported(format!("{}: a message for socket {} carries control data (SCM), which rcr cannot restore", path.display(), e.id_for)));
            }
            let data = r.read_raw(e.length as u64)?;
            self.queues.entry(e.id_for).or_default().push(Msg { data, from: e.rcr_addr.unwrap_or_default() });
        }
        Ok(())
    }

    fn objects(&mut self, env: &RestoreEnv<'_>, fds: &super::FdOwners) -> Result<Vec<(Obj, String)>> {
        let (r, objects) = restore::Restoring::new(env, std::mem::take(&mut self.queues), fds)?;
        self.restoring = Some(r);
        Ok(objects)
    }

    fn step(&mut self, f: &pb::FileEntry, _env: &RestoreEnv<'_>) -> Result<Progress> {
        self.restoring()?.step_file(f.id)
    }

    fn step_object(&mut self, key: Obj, _env: &RestoreEnv<'_>, _opened: &dyn Fn(u32) -> bool) -> Result<Progress> {
        self.restoring()?.step_object(key)
    }

    fn finish_restore(&mut self) {
        self.restoring = None;
    }
}

impl UnixSockets {
    fn restoring(&mut self) -> Result<&mut restore::Restoring> {
        self.restoring.as_mut().ok_or_else(|| Error::Internal("unix sockets: stepped before the restore graph was built".into()))
    }

    /// Every peer of a dumped socket is in the tree, or allowed outside it (`--ext-unix-sk`).
    fn check_peers(&self) -> Result<()> {
        let all = self.diag().map_err(|e| Error::Kernel(e.to_string()))?;
        let outside = |d: &Dumped, ino: u32, peer: u32, what: &str| -> Result<()> {
            let pname = all.get(&peer).and_then(|p| p.name.as_deref()).map(show_name).unwrap_or_else(|| "unnamed".into());
            let head = format!(
                "pid {}: fd {}: unix {} socket {ino} {what} unix socket {peer} ({pname}), which is outside the dumped tree",
                d.pid,
                d.fd,
                type_name(d.kind)
            );
            if !self.ext_unix_sk {
                return Err(Error::not_supported(format!(
                    "{head}; use --ext-unix-sk to dump it anyway (a datagram socket connected to a bound socket is then reconnected to that name at restore)"
                )));
            }
            if d.kind == DGRAM && pname != "unnamed" {
                return Ok(());
            }
            Err(Error::not_supported(format!(
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
                        return Err(Error::not_supported(format!(
                            "{at}: a connection waiting to be accepted (client socket {client}) may hold data, which rcr can read only by accepting it; that would take it from the task, so it is refused with -R (leave running)"
                        )));
                    }
                }
                continue;
            }
            for &(id, client) in &l.pending {
                let s = sys::accept4(l.copy.as_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK)
                    .map_err(|e| io_err(format!("{at}: accepting its pending connection from client {client} to read its data"), e))?;
                let q = peek_queue(s.as_fd(), l.kind).map_err(|e| Error::Kernel(format!("{at}: pending connection from client {client}: {e}")))?;
                if !q.is_empty() {
                    self.queues.insert(id, q);
                }
            }
        }
        Ok(())
    }
}

fn new_socket(kind: u32) -> Result<OwnedFd> {
    let t = SockType::try_from(kind as i32).map_err(|_| Error::not_supported(format!("unix socket of unknown type {kind}")))?;
    ns::socket(ns::AddressFamily::Unix, t, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None).map_err(|e| io_err(format!("socket(AF_UNIX, {})", type_name(kind)), e))
}

fn new_pair(kind: u32) -> Result<(OwnedFd, OwnedFd)> {
    let t = SockType::try_from(kind as i32).map_err(|_| Error::not_supported(format!("unix socket of unknown type {kind}")))?;
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

/// Binds `fd` to the name of `e`: a socket file left at the path is removed first (anything else there
/// is an error). A relative name is bound from its directory (`name_dir`: rcr changes its own cwd for
/// the call and back). Returns the path of a socket file that was deleted at dump: the caller removes
/// it once every socket is connected (a listener's clients connect through it).
fn bind(fd: BorrowedFd<'_>, e: &pb::UnixSkEntry) -> Result<Option<std::path::PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let at = at(e);
    let a = addr(&e.name)?;
    if e.name.first().is_none_or(|c| *c == 0) {
        ns::bind(fd.as_raw_fd(), &a).map_err(|err| io_err(format!("{at}: bind"), err))?;
        return Ok(None);
    }
    let name = Path::new(std::ffi::OsStr::from_bytes(trim(&e.name)));
    let dir = if name.is_relative() {
        Some(e.name_dir.as_deref().ok_or_else(|| Error::not_supported(format!("{at}: a relative name without its directory (name_dir)")))?)
    } else {
        None
    };
    let path = dir.map(|d| Path::new(d).join(name)).unwrap_or_else(|| name.to_path_buf());
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if !m.file_type().is_socket() {
            return Err(Error::changed(format!("{at}: {} exists and is not a socket; rcr does not remove it", path.display())));
        }
        if e.deleted == Some(true) {
            return Err(Error::changed(format!("{at}: its socket file was deleted before the dump and {} is another socket's now; rcr cannot bind the name again", path.display())));
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

    /// The sockets of `env` built through the restore graph, as open_all does; the fds of `ids`.
    fn build_all(k: &mut UnixSockets, env: &RestoreEnv<'_>, ids: &[u32]) -> Result<BTreeMap<u32, OwnedFd>> {
        struct N(Obj);
        type Ctx<'k, 'e> = (&'k mut UnixSockets, &'k RestoreEnv<'e>, BTreeMap<u32, OwnedFd>);
        impl<'k, 'e> crate::graph::Node<Obj, Ctx<'k, 'e>> for N {
            fn name(&self) -> String {
                self.0.to_string()
            }
            fn step(&mut self, (k, env, out): &mut Ctx<'k, 'e>) -> Result<crate::graph::Step<Obj>> {
                let p = match self.0 {
                    Obj::File(id) => k.step(&env.files[&id], env)?,
                    key => k.step_object(key, env, &|_| true)?,
                };
                Ok(match p {
                    Progress::Opened(fd) => {
                        if let Obj::File(id) = self.0 {
                            out.insert(id, fd);
                        }
                        crate::graph::Step::Done
                    }
                    Progress::Done => crate::graph::Step::Done,
                    Progress::Pending(w) => crate::graph::Step::Pending(w),
                })
            }
        }
        let mut g: crate::graph::Graph<'_, Obj, Ctx<'_, '_>> = crate::graph::Graph::default();
        for &id in ids {
            g.add(Obj::File(id), Box::new(N(Obj::File(id))))?;
        }
        for (key, _) in k.objects(env, &Default::default())? {
            g.add(key, Box::new(N(key)))?;
        }
        let mut ctx = (k, env, BTreeMap::new());
        g.run(&mut ctx)?;
        Ok(ctx.2)
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
        let mut k = UnixSockets { queues, ..Default::default() };
        let mut fds = build_all(&mut k, &env, &[1, 2, 3, 4]).unwrap();
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
