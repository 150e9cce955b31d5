//! Unix sockets at restore, as nodes of the restore graph ([`crate::graph`]).
//!
//! Each socket entry of files.img is up to three nodes: [`Obj::UnixSocket`] (made in rcr: created,
//! bound to its own name, listening, or connected through its listener), [`Obj::UnixQueue`] (the data
//! queued for it, written back from its sender) and, for a socket some task has as an fd,
//! [`Obj::File`] (its datagram peer connected, shutdown, options and flags set, handed down). What
//! each waits for says the order: the client of an accepted connection is made by the accepted end,
//! which waits for its listener; a listener's connections waiting to be accepted are connected in
//! accept() order, after the ones it had accepted; a queue is written once its socket and its sender
//! are made; a socket is finished once every queue it writes into is written (its own buffer size
//! and shutdown come after); a datagram socket connects only after its own queue is written (it then
//! takes only its peer's), and before the socket it connects to connects elsewhere. Socket files
//! deleted at dump are removed once every socket is built ([`Obj::UnixDeletedFiles`]).

use super::*;
use crate::graph::Wait;

/// How a socket is made.
enum Role {
    /// A socket of its own: created, bound when it owns its name, listening if a listener.
    Plain,
    /// One end of a connected pair made by socketpair: the `first` makes both.
    Pair { partner: u32, first: bool },
    /// Connected, its peer closed: made with a temporary peer that writes its data and is closed.
    PeerClosed,
    /// The accepted end of a listener's connection: it connects `client` through the listener and
    /// accepts.
    Accepted { listener: u32, client: u32 },
    /// Made by the node of another (the client of an accepted or a pending connection).
    MadeBy(u32),
    /// A connection waiting to be accepted (no fd): connected to its listener after `after`.
    Pending { listener: u32, client: Option<u32> },
    /// A client of a listener as a CRIU image has it (no pending entry): connected after `after`.
    Client { listener: u32 },
    /// Cannot be made: why.
    Broken(String),
}

/// One restore's unix sockets being made.
pub(super) struct Restoring {
    /// Every socket entry (with an fd, or a pending connection), by file id.
    entries: BTreeMap<u32, pb::UnixSkEntry>,
    /// Entry id by inode, for the entries with an fd.
    by_ino: BTreeMap<u32, u32>,
    /// Names of peers outside the tree, from CRIU's USK_EXTERN entries, by inode.
    externs: BTreeMap<u32, Vec<u8>>,
    roles: BTreeMap<u32, Role>,
    /// What each node waits for besides being asked: by node key.
    waits: BTreeMap<Obj, Vec<Obj>>,
    /// Receiving entry id -> the entry id whose fd writes its data.
    sender: BTreeMap<u32, u32>,
    queues: BTreeMap<u32, Vec<Msg>>,
    /// Nodes done so far.
    done: BTreeSet<Obj>,
    fds: BTreeMap<u32, OwnedFd>,
    /// Receiving entry id -> a socket of rcr's that writes its data and is closed after.
    temp: BTreeMap<u32, OwnedFd>,
    /// Socket files deleted at dump: removed once every socket is built.
    unlink_after: Vec<std::path::PathBuf>,
    /// `--ext-unix-sk`: datagram sockets connected outside the tree are reconnected by name.
    ext_unix_sk: bool,
    /// "pid P: fd N: " of the first fd that has each socket (a pending connection: its listener's),
    /// for errors.
    owners: BTreeMap<u32, String>,
}

/// Whether `e` binds its name itself: not a connected stream socket (that one has its listener's).
fn owns_name(e: &pb::UnixSkEntry) -> bool {
    let connected_stream = e.r#type != DGRAM && e.state == TCP_ESTABLISHED;
    !e.name.is_empty() && !connected_stream
}

impl Restoring {
    /// Reads the socket entries of `env.files` and says how each is made and what it waits for;
    /// returns the objects that are nodes of the graph besides the fds (made, queue, deleted files).
    pub(super) fn new(env: &RestoreEnv<'_>, queues: BTreeMap<u32, Vec<Msg>>, fds: &super::super::FdOwners) -> Result<(Restoring, Vec<(Obj, String)>)> {
        let mut r = Restoring {
            entries: BTreeMap::new(),
            by_ino: BTreeMap::new(),
            externs: BTreeMap::new(),
            roles: BTreeMap::new(),
            waits: BTreeMap::new(),
            sender: BTreeMap::new(),
            queues,
            done: BTreeSet::new(),
            fds: BTreeMap::new(),
            temp: BTreeMap::new(),
            unlink_after: Vec::new(),
            ext_unix_sk: env.ext_unix_sk,
            owners: BTreeMap::new(),
        };
        let mut pending = Vec::new();
        for e in env.files.values().filter_map(|f| f.usk.as_ref()) {
            if e.rcr_listener.is_some() {
                pending.push(e.id);
            } else if e.uflags & USK_EXTERN != 0 {
                r.externs.insert(e.ino, e.name.clone()); // CRIU's entry for a peer outside the tree
                continue;
            } else if r.by_ino.insert(e.ino, e.id).is_some() {
                return Err(Error::corrupt(format!("files.img: two unix sockets with inode {}", e.ino)));
            }
            r.entries.insert(e.id, e.clone());
        }
        r.classify(&pending);
        for e in r.entries.values() {
            let id = e.rcr_listener.and_then(|l| r.by_ino.get(&l).copied()).unwrap_or(e.id);
            if let Some((pid, fd)) = fds.owner_of(id) {
                r.owners.insert(e.id, format!("pid {pid}: fd {fd}: "));
            }
        }
        if let Some(id) = r.queues.keys().find(|id| !r.entries.contains_key(id)) {
            return Err(Error::corrupt(format!("sk-queues.img: data for file {id}, which is no unix socket of files.img")));
        }
        r.plan();
        let mut objects = Vec::new();
        for e in r.entries.values() {
            objects.push((Obj::UnixSocket(e.id), format!("{}: made", at(e))));
            if let Some(q) = r.queues.get(&e.id) {
                objects.push((Obj::UnixQueue(e.id), format!("{}: its {} queued message(s)", at(e), q.len())));
            }
        }
        if r.entries.values().any(|e| e.deleted == Some(true)) {
            objects.push((Obj::UnixDeletedFiles, "removing the unix socket files deleted at dump".into()));
        }
        Ok((r, objects))
    }

    fn entry(&self, id: u32) -> Result<&pb::UnixSkEntry> {
        self.entries.get(&id).ok_or_else(|| Error::corrupt(format!("file {id} is no unix socket of files.img")))
    }

    fn by_ino(&self, ino: u32) -> Option<&pb::UnixSkEntry> {
        self.by_ino.get(&ino).and_then(|id| self.entries.get(id))
    }

    /// The role of every entry: a listener's connections first, then pairs, the rest on their own.
    fn classify(&mut self, pending: &[u32]) {
        let ids: Vec<u32> = self.by_ino.values().copied().collect();
        let mut roles: BTreeMap<u32, Role> = BTreeMap::new();
        let mut sender: BTreeMap<u32, u32> = BTreeMap::new();
        let listeners: Vec<&pb::UnixSkEntry> = ids.iter().map(|id| &self.entries[id]).filter(|l| l.state == TCP_LISTEN).collect();
        for l in &listeners {
            // Its accepted connections: the accepted end has the listener's name, the client does not.
            for x in ids.iter().map(|id| &self.entries[id]) {
                if x.r#type != l.r#type || x.state != TCP_ESTABLISHED || x.name != l.name || roles.contains_key(&x.id) {
                    continue;
                }
                if let Some(c) = self.by_ino(x.peer).filter(|c| c.peer == x.ino && c.name != l.name && !roles.contains_key(&c.id)) {
                    roles.insert(x.id, Role::Accepted { listener: l.id, client: c.id });
                    roles.insert(c.id, Role::MadeBy(x.id));
                    sender.insert(x.id, c.id);
                    sender.insert(c.id, x.id);
                }
            }
            // Its pending connections, in accept() order; each client goes to its task, or is closed.
            for p in pending.iter().map(|id| &self.entries[id]).filter(|p| p.rcr_listener == Some(l.ino)) {
                let client = self.by_ino(p.peer).filter(|_| p.peer != 0).map(|c| c.id);
                if let Some(c) = client {
                    roles.insert(c, Role::MadeBy(p.id));
                    sender.insert(p.id, c);
                }
                roles.insert(p.id, Role::Pending { listener: l.id, client });
            }
            // Clients of connections a CRIU image names only by the client's `peer` (no data known).
            for c in ids.iter().map(|id| &self.entries[id]) {
                if c.peer == l.ino && c.state == TCP_ESTABLISHED && !roles.contains_key(&c.id) {
                    roles.insert(c.id, Role::Client { listener: l.id });
                }
            }
        }
        let through_listener = |x: &pb::UnixSkEntry| x.r#type != DGRAM && !x.name.is_empty() && listeners.iter().any(|l| l.name == x.name);
        for e in ids.iter().map(|id| &self.entries[id]) {
            if roles.contains_key(&e.id) {
                continue;
            }
            let mutual = self.by_ino(e.peer).filter(|p| p.peer == e.ino && p.id != e.id && e.state == TCP_ESTABLISHED);
            let role = if let Some(p) = mutual {
                if through_listener(e) || through_listener(p) {
                    Role::Broken("not built (a connection through a listener whose accepted end was not found)".into())
                } else {
                    roles.insert(p.id, Role::Pair { partner: e.id, first: false });
                    sender.insert(e.id, p.id);
                    sender.insert(p.id, e.id);
                    Role::Pair { partner: p.id, first: true }
                }
            } else if e.state == TCP_ESTABLISHED && (e.r#type != DGRAM || (e.peer == 0 && e.name.is_empty())) {
                // (A bound datagram socket others connected to is "established" too, with no peer.)
                if e.peer != 0 && e.r#type != DGRAM {
                    Role::Broken(format!("its peer {} is not in the checkpoint (dumped with --ext-unix-sk? a stream connection outside the tree cannot be restored)", e.peer))
                } else {
                    Role::PeerClosed
                }
            } else {
                Role::Plain
            };
            roles.insert(e.id, role);
        }
        self.roles = roles;
        self.sender = sender;
    }

    /// Whether `id`'s socket is connected by its making (no datagram connect of its own).
    fn paired(&self, id: u32) -> bool {
        !matches!(self.roles.get(&id), Some(Role::Plain | Role::Pending { .. } | Role::Broken(_)) | None)
    }

    /// What each node waits for (see the module documentation).
    fn plan(&mut self) {
        let mut w: BTreeMap<Obj, Vec<Obj>> = BTreeMap::new();
        let mut add = |k: Obj, on: Obj| w.entry(k).or_default().push(on);
        let mut last_of: BTreeMap<u32, Vec<u32>> = BTreeMap::new(); // listener -> its connections so far
        for (&id, role) in &self.roles {
            match role {
                Role::Pair { partner, first: false } => add(Obj::UnixSocket(id), Obj::UnixSocket(*partner)),
                Role::MadeBy(m) => add(Obj::UnixSocket(id), Obj::UnixSocket(*m)),
                _ => {}
            }
        }
        // A listener's connections in order: accepted ones, pending ones (accept order), CRIU's clients.
        let ordered: Vec<(u32, u32)> = {
            let mut v: Vec<(u8, usize, u32, u32)> = Vec::new();
            for (n, (&id, role)) in self.roles.iter().enumerate() {
                match role {
                    Role::Accepted { listener, .. } => v.push((0, n, *listener, id)),
                    Role::Client { listener } => v.push((2, n, *listener, id)),
                    _ => {}
                }
            }
            // Pending ones keep files.img's order (accept order), not the id order of the map.
            let pend: Vec<(u32, u32)> = self
                .entries
                .values()
                .filter(|e| e.rcr_listener.is_some())
                .filter_map(|e| match self.roles.get(&e.id) {
                    Some(Role::Pending { listener, .. }) => Some((*listener, e.id)),
                    _ => None,
                })
                .collect();
            let mut order: Vec<(u8, usize, u32, u32)> = v;
            order.extend(pend.iter().enumerate().map(|(n, &(l, id))| (1, n, l, id)));
            order.sort_by_key(|&(phase, n, _, _)| (phase, n));
            order.into_iter().map(|(_, _, l, id)| (l, id)).collect()
        };
        for (l, id) in ordered {
            let before = last_of.entry(l).or_default();
            add(Obj::UnixSocket(id), Obj::UnixSocket(l));
            // Accepted ones are accepted at once: only the connections left waiting keep an order.
            if !matches!(self.roles.get(&id), Some(Role::Accepted { .. })) {
                for &b in before.iter() {
                    add(Obj::UnixSocket(id), Obj::UnixSocket(b));
                }
            }
            before.push(id);
            // The listener is handed down once its connections are made.
            add(Obj::File(l), Obj::UnixSocket(id));
        }
        for (&id, msgs) in &self.queues {
            add(Obj::UnixQueue(id), Obj::UnixSocket(id));
            add(Obj::File(id), Obj::UnixQueue(id));
            let mut writers: Vec<u32> = self.sender.get(&id).copied().into_iter().collect();
            if let (None, Some(e)) = (self.sender.get(&id), self.entries.get(&id)) {
                // Sent by sockets that are not its peer: from the socket of the tree with the sender's name.
                for m in msgs.iter().filter(|m| !m.from.is_empty()) {
                    let s = self.entries.values().find(|s| s.r#type == DGRAM && s.rcr_listener.is_none() && trim(&s.name) == trim(&m.from) && (s.peer == 0 || s.peer == e.ino));
                    writers.extend(s.map(|s| s.id));
                }
            }
            writers.sort_unstable();
            writers.dedup();
            for s in writers {
                add(Obj::UnixQueue(id), Obj::UnixSocket(s));
                add(Obj::File(s), Obj::UnixQueue(id));
            }
        }
        for e in self.entries.values().filter(|e| e.r#type == DGRAM && e.peer != 0 && !self.paired(e.id)) {
            if let Some(p) = self.by_ino(e.peer) {
                add(Obj::File(e.id), Obj::UnixSocket(p.id));
                if p.peer != e.ino && p.peer != 0 {
                    // Connect to it before it connects elsewhere (then it takes only its own peer's).
                    add(Obj::File(p.id), Obj::File(e.id));
                }
            }
        }
        for e in self.entries.values() {
            add(Obj::File(e.id), Obj::UnixSocket(e.id));
            add(Obj::UnixDeletedFiles, Obj::UnixSocket(e.id));
            if self.queues.contains_key(&e.id) {
                add(Obj::UnixDeletedFiles, Obj::UnixQueue(e.id));
            }
            if e.r#type == DGRAM && e.peer != 0 && !self.paired(e.id) {
                add(Obj::UnixDeletedFiles, Obj::File(e.id));
            }
        }
        self.waits = w;
    }

    /// The nodes `key` still waits for.
    fn missing(&self, key: Obj) -> Vec<Wait<Obj>> {
        let w = self.waits.get(&key).map(|v| v.as_slice()).unwrap_or_default();
        w.iter().filter(|k| !self.done.contains(k)).map(|&k| Wait::Node(k)).collect()
    }

    /// One step of the fd of socket `id`: finished and handed down, once what it waits for is done.
    pub(super) fn step_file(&mut self, id: u32) -> Result<Progress> {
        let missing = self.missing(Obj::File(id));
        if !missing.is_empty() {
            return Ok(Progress::Pending(missing));
        }
        let e = self.entry(id)?.clone();
        if e.rcr_listener.is_some() {
            return Err(Error::not_supported(format!("unix socket {} (file {id}): a pending connection with an fd", e.ino)));
        }
        // Its temporary peer goes now (it sees the peer closed).
        self.temp.remove(&id);
        if e.r#type == DGRAM && e.peer != 0 && !self.paired(id) {
            self.connect_dgram(&e)?;
        }
        let fd = self.fds.remove(&id).ok_or_else(|| Error::Internal(format!("{}: not built", at(&e))))?;
        let how = e.shutdown.unwrap_or(0) as u32;
        let how = match (how & RCV_SHUTDOWN != 0, how & SEND_SHUTDOWN != 0) {
            (true, true) => Some(ns::Shutdown::Both),
            (true, false) => Some(ns::Shutdown::Read),
            (false, true) => Some(ns::Shutdown::Write),
            _ => None,
        };
        if let Some(how) = how {
            ns::shutdown(fd.as_raw_fd(), how).map_err(|err| io_err(format!("{}: shutdown", at(&e)), err))?;
        }
        apply_opts(fd.as_fd(), &e).map_err(|err| io_err(format!("{}: setting its options", at(&e)), err))?;
        let fl = nix::fcntl::OFlag::from_bits_retain(e.flags as i32 & libc::O_NONBLOCK);
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(fl)).map_err(|err| io_err(format!("{}: setting its file flags", at(&e)), err))?;
        self.done.insert(Obj::File(id));
        Ok(Progress::Opened(fd))
    }

    pub(super) fn step_object(&mut self, key: Obj) -> Result<Progress> {
        let id = match key {
            Obj::UnixSocket(id) | Obj::UnixQueue(id) => Some(id),
            _ => None,
        };
        // Errors name the fd that has the socket.
        self.object(key).map_err(|e| match id.and_then(|id| self.owners.get(&id)) {
            Some(at) => Error::Object { object: at.trim_end_matches([':', ' ']).to_string(), source: Box::new(e) },
            None => e,
        })
    }

    fn object(&mut self, key: Obj) -> Result<Progress> {
        let missing = self.missing(key);
        if !missing.is_empty() {
            return Ok(Progress::Pending(missing));
        }
        match key {
            Obj::UnixSocket(id) => self.make(id)?,
            Obj::UnixQueue(id) => {
                let msgs = self.queues.remove(&id).unwrap_or_default();
                self.write_queue(id, &msgs)?;
                // A temporary peer that only wrote the data of a connection with no fd goes now.
                if self.entry(id)?.rcr_listener.is_some() {
                    self.temp.remove(&id);
                }
            }
            Obj::UnixDeletedFiles => {
                for p in std::mem::take(&mut self.unlink_after) {
                    std::fs::remove_file(&p).map_err(|err| io_err(format!("removing {}, deleted at dump, once bound", p.display()), err))?;
                }
            }
            _ => {}
        }
        self.done.insert(key);
        Ok(Progress::Done)
    }

    /// Binds `fd` to the name of `e`; a socket file deleted at dump is removed again later.
    fn bind(&mut self, fd: BorrowedFd<'_>, e: &pb::UnixSkEntry) -> Result<()> {
        self.unlink_after.extend(bind(fd, e)?);
        Ok(())
    }

    /// Connects a new socket for `c` (bound to its own name unless that is the listener's) to listener `l`.
    /// `named`: the socket errors name.
    fn connect_to(&mut self, l: &pb::UnixSkEntry, c: Option<&pb::UnixSkEntry>, named: &pb::UnixSkEntry, what: &str) -> Result<OwnedFd> {
        let cfd = new_socket(l.r#type)?;
        if let Some(c) = c.filter(|c| !c.name.is_empty() && c.name != l.name) {
            self.bind(cfd.as_fd(), c)?;
        }
        ns::connect(cfd.as_raw_fd(), &reach(l)?).map_err(|e| io_err(format!("{}: {what}", at(named)), e))?;
        Ok(cfd)
    }

    /// Makes socket `id` as its role says (what it waits for is done).
    fn make(&mut self, id: u32) -> Result<()> {
        let e = self.entry(id)?.clone();
        let role = self.roles.get(&id).ok_or_else(|| Error::Internal(format!("{}: not built", at(&e))))?;
        match role {
            Role::Plain => {
                let fd = new_socket(e.r#type)?;
                if owns_name(&e) {
                    self.bind(fd.as_fd(), &e)?;
                }
                if e.state == TCP_LISTEN {
                    if e.name.is_empty() {
                        return Err(Error::not_supported(format!("{}: a listening socket without a name", at(&e))));
                    }
                    let backlog = ns::Backlog::new(e.backlog as i32).unwrap_or(ns::Backlog::MAXCONN);
                    ns::listen(&fd, backlog).map_err(|err| io_err(format!("{}: listen({})", at(&e), e.backlog), err))?;
                }
                self.fds.insert(id, fd);
            }
            &Role::Pair { partner, first } => {
                if first {
                    let (a, b) = new_pair(e.r#type)?;
                    self.fds.insert(id, a);
                    self.fds.insert(partner, b);
                }
                if owns_name(&e) {
                    let fd = self.fds.get(&id).ok_or_else(|| Error::Internal(format!("{}: not built", at(&e))))?.try_clone().map_err(|err| io_err("dup".into(), err))?;
                    self.bind(fd.as_fd(), &e)?;
                }
            }
            Role::PeerClosed => {
                let (a, b) = new_pair(e.r#type)?;
                if owns_name(&e) {
                    self.bind(a.as_fd(), &e)?;
                }
                self.fds.insert(id, a);
                self.temp.insert(id, b);
            }
            &Role::Accepted { listener, client } => {
                let (l, c) = (self.entry(listener)?.clone(), self.entry(client)?.clone());
                let cfd = self.connect_to(&l, Some(&c), &c, &format!("connecting to its listener {}", show_name(&l.name)))?;
                let lfd = self.fds.get(&listener).ok_or_else(|| Error::Internal(format!("{}: not created", at(&l))))?;
                let s = sys::accept4(lfd.as_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK).map_err(|err| io_err(format!("{}: accept", at(&l)), err))?;
                self.fds.insert(id, s);
                self.fds.insert(client, cfd);
            }
            Role::MadeBy(_) => {}
            &Role::Pending { listener, client } => {
                let l = self.entry(listener)?.clone();
                let c = client.map(|c| self.entry(c).cloned()).transpose()?;
                let what = format!("re-creating a connection waiting to be accepted (backlog {})", l.backlog);
                let cfd = self.connect_to(&l, c.as_ref(), &l, &what)?;
                match client {
                    Some(c) => drop(self.fds.insert(c, cfd)),
                    // Its client was closed: a temporary one writes its data, or is closed at once.
                    None if self.queues.contains_key(&id) => drop(self.temp.insert(id, cfd)),
                    None => drop(cfd),
                }
            }
            &Role::Client { listener } => {
                let l = self.entry(listener)?.clone();
                let cfd = self.connect_to(&l, Some(&e), &e, &format!("connecting to its listener {}", show_name(&l.name)))?;
                self.fds.insert(id, cfd);
            }
            Role::Broken(why) => return Err(Error::not_supported(format!("{}: {why}", at(&e)))),
        }
        if !self.fds.contains_key(&id) && e.rcr_listener.is_none() {
            return Err(Error::Internal(format!("{}: not built", at(&e))));
        }
        Ok(())
    }

    fn connect_dgram(&self, e: &pb::UnixSkEntry) -> Result<()> {
        let name = match self.by_ino(e.peer) {
            Some(p) if !p.name.is_empty() => {
                let fd = self.fds.get(&e.id).ok_or_else(|| Error::Internal(format!("{}: not created", at(e))))?;
                return ns::connect(fd.as_raw_fd(), &reach(p)?).map_err(|err| io_err(format!("{}: connecting to {}", at(e), show_name(&p.name)), err));
            }
            Some(p) => p.name.clone(),
            None if !self.ext_unix_sk => {
                return Err(Error::not_supported(format!(
                    "{}: it was connected to socket {} outside the tree ({}); restore with --ext-unix-sk to reconnect it to that name",
                    at(e),
                    e.peer,
                    show_name(e.rcr_peer_name.as_deref().unwrap_or_default())
                )));
            }
            None => e.rcr_peer_name.clone().or_else(|| self.externs.get(&e.peer).cloned()).unwrap_or_default(),
        };
        if name.is_empty() {
            return Err(Error::Internal(format!("{}: connected to socket {}, which has no name to connect to again", at(e), e.peer)));
        }
        let fd = self.fds.get(&e.id).ok_or_else(|| Error::Internal(format!("{}: not created", at(e))))?;
        ns::connect(fd.as_raw_fd(), &addr(&name)?).map_err(|err| io_err(format!("{}: connecting to {}", at(e), show_name(&name)), err))
    }

    /// Writes the messages queued for entry `id` from its sender, each on its own.
    fn write_queue(&self, id: u32, msgs: &[Msg]) -> Result<()> {
        let e = self.entry(id)?;
        let fixed = self.temp.get(&id).or_else(|| self.sender.get(&id).and_then(|s| self.fds.get(s)));
        let by_name = e.r#type == DGRAM && !e.name.is_empty();
        if fixed.is_none() && !by_name {
            return Err(Error::not_supported(format!("{}: {} queued message(s) and no socket to write them from", at(e), msgs.len())));
        }
        // Sent by sockets that are not its peer: from the socket of the tree with the sender's name
        // (recvfrom() then shows it), else from a temporary unbound one.
        let temp = if fixed.is_none() { Some(new_socket(DGRAM)?) } else { None };
        let to = if fixed.is_none() { Some(reach(e)?) } else { None };
        let from_tree = |m: &Msg| -> Option<BorrowedFd<'_>> {
            if m.from.is_empty() {
                return None;
            }
            let s = self.entries.values().find(|s| s.r#type == DGRAM && s.rcr_listener.is_none() && trim(&s.name) == trim(&m.from) && (s.peer == 0 || s.peer == e.ino))?;
            self.fds.get(&s.id).map(|f| f.as_fd())
        };
        for m in msgs {
            let fd = fixed.map(|f| f.as_fd()).or_else(|| from_tree(m)).or_else(|| temp.as_ref().map(|t| t.as_fd()));
            let fd = fd.ok_or_else(|| Error::not_supported(format!("{}: no socket to write its queued data from", at(e))))?;
            // The sender's own buffer limit must not stop the writing; its real size is set after.
            let _ = setsockopt_int(fd, libc::SO_SNDBUFFORCE, 32 << 20).or_else(|_| setsockopt_int(fd, libc::SO_SNDBUF, i32::MAX / 2));
            let data = &m.data;
            let mut off = 0;
            loop {
                let r = match &to {
                    Some(a) => ns::sendto(fd.as_raw_fd(), &data[off..], a, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
                    None => ns::send(fd.as_raw_fd(), &data[off..], MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
                };
                let n = r.map_err(|err| io_err(format!("{}: writing back its queued data ({} bytes of a {}-byte message)", at(e), data.len() - off, data.len()), err))?;
                off += n;
                if e.r#type != STREAM || off >= data.len() {
                    break;
                }
            }
        }
        Ok(())
    }
}
