//! The fd table of a task, dump and restore side by side.
//!
//! Dump: each fd of a frozen task is copied into rcr (pidfd_getfd), matched against the open file
//! descriptions already seen ([`SeenFiles`]: fds sharing one get one file id), offered to the plugins,
//! then described by the kind that handles it ([`crate::kinds::FileKind`]).
//!
//! Restore: every file of the checkpoint is a node of the restore graph ([`crate::graph`]), with the
//! objects that are no fd (locks, connections waiting to be accepted) beside them. Each file entry goes
//! to the kind that restores its type ([`KindIndex`]), or to its plugin; the graph's loop opens them in
//! rcr in whatever order their dependencies need, before any task exists. In the task, [`install`]
//! moves each inherited fd to its number, closes the rest, and lets each kind do what only the task can.

use crate::compel::Remote;
use crate::graph::{Graph, Node, Step, Wait};
use crate::image::pb;
use crate::kinds::{FdOwners, FdToDump, FileKind, FileTable, KindIndex, Obj, Progress, RestoreEnv};
use crate::options::DumpOpts;
use crate::plugins::Plugins;
use crate::proc::ProcDir;
use crate::checkpoint::ProcImages;
use crate::{sys, Error, Result};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The task whose fds [`dump_fds`] dumps.
#[derive(Clone, Copy)]
pub struct TaskFds<'a> {
    pub opts: &'a DumpOpts,
    pub proc: &'a ProcDir,
    pub pidfd: BorrowedFd<'a>,
    pub stat: &'a crate::proc::Stat,
}

/// An fd already dumped: (pid, fd, file id, fd type).
type SeenFd = (i32, i32, u32, i32);

/// The open file descriptions dumped so far, to find the one an fd shares (dup, fork). Only fds of the
/// same (device, inode) can share one; those are kept in kcmp's order of their descriptions, so a lookup
/// costs log n kcmp calls even where one inode stands for many files (every anon-inode file — eventfd,
/// epoll, timerfd... — has the same inode). Where kcmp cannot order (it says only "not equal") the list
/// is searched one by one.
#[derive(Default)]
pub struct SeenFiles(std::collections::HashMap<(u64, u64), Vec<SeenFd>>);

impl SeenFiles {
    /// The file id and fd type of the description fd `fd` of `pid` shares with an fd seen before (Ok),
    /// or where to insert it (Err) — pass that to [`SeenFiles::insert`].
    fn find(&self, key: (u64, u64), pid: i32, fd: i32) -> std::result::Result<(u32, i32), Option<usize>> {
        let Some(v) = self.0.get(&key) else { return Err(Some(0)) };
        // kcmp(seen, new): Less when the seen description orders before the new one.
        let cmp = |&(opid, ofd, _, _): &SeenFd| sys::kcmp(Pid::from_raw(opid), Pid::from_raw(pid), sys::KcmpType::File, ofd as u64, fd as u64);
        let (mut lo, mut hi) = (0usize, v.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match cmp(&v[mid]) {
                Ok(sys::KcmpResult::Equal) => return Ok((v[mid].2, v[mid].3)),
                Ok(sys::KcmpResult::Less) => lo = mid + 1,
                Ok(sys::KcmpResult::Greater) => hi = mid,
                // No order (or the seen process is gone): one by one, and appended unordered.
                _ => return v.iter().find(|e| matches!(cmp(e), Ok(sys::KcmpResult::Equal))).map(|e| (e.2, e.3)).ok_or(None),
            }
        }
        Err(Some(lo))
    }

    /// Records fd `e` at the place [`SeenFiles::find`] gave.
    fn insert(&mut self, key: (u64, u64), at: Option<usize>, e: SeenFd) {
        let v = self.0.entry(key).or_default();
        match at {
            Some(i) if i <= v.len() => v.insert(i, e),
            _ => v.push(e),
        }
    }
}

/// The task's open fds: each is copied into rcr with pidfd_getfd, classified by [`FdKind::of`] and
/// described by its module. Two fds sharing one open file description (dup) share one file id.
pub fn dump_fds(task: &TaskFds<'_>, files: &mut FileTable, seen: &mut SeenFiles, kinds: &mut [Box<dyn FileKind>], plugins: &Plugins) -> Result<Vec<pb::FdinfoEntry>> {
    let TaskFds { opts, proc, pidfd, stat } = *task;
    let pid = proc.pid();
    let mut out: Vec<pb::FdinfoEntry> = Vec::new();
    for (fd, link) in proc.fds()? {
        let link = link.to_string_lossy().into_owned();
        let (info, fdinfo_text) = proc.fdinfo_and_text(fd)?;
        let copy: OwnedFd = sys::pidfd_getfd(pidfd, fd).map_err(|e| Error::Kernel(format!("pid {pid}: fd {fd} ({link}): cannot copy it: {e}")))?;
        let st = nix::sys::stat::fstat(copy.as_raw_fd()).map_err(|e| Error::Io { ctx: format!("fstat of pid {pid} fd {fd}"), source: e.into() })?;
        let fd_flags = if info.flags & libc::O_CLOEXEC as u32 != 0 { libc::FD_CLOEXEC as u32 } else { 0 };
        let key = (st.st_dev, st.st_ino);
        let found = seen.find(key, pid, fd);
        if let Ok((id, ty)) = found {
            files.locks.collect(pid, fd, &link, &info, id, opts.file_locks)?;
            out.push(pb::FdinfoEntry { id, flags: fd_flags, r#type: ty, fd: fd as u32, ..Default::default() });
            continue;
        }
        let at = found.err().flatten();
        // plugins: every fd is offered to the plugins (in order) before the core handles it.
        let one = FdToDump { pid, fd, link: &link, file: copy.as_fd(), st: &st, info: &info, fdinfo_text: &fdinfo_text, proc, task: stat, opts };
        let offered = crate::plugins::OfferedFd { pid, fd, path: &link, local: copy.as_fd(), st: &st, flags: info.flags, pos: info.pos, fdinfo: &fdinfo_text };
        if let Some(claim) = plugins.dump_file(&offered, &mut || files.next_id())? {
            let id = claim.id;
            files.files.push(claim.file_entry());
            seen.insert(key, at, (pid, fd, id, pb::FdTypes::Ext as i32));
            out.push(pb::FdinfoEntry { id, flags: fd_flags, r#type: pb::FdTypes::Ext as i32, fd: fd as u32, ..Default::default() });
            continue;
        }
        let Some(kind) = crate::kinds::kind_of(kinds, &st, &link) else {
            if st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
                return Err(Error::not_supported(format!(
                    "pid {pid}: fd {fd} is {} ('{link}'), which rcr cannot checkpoint yet and no plugin claimed; \
                     close it before the dump or stop the program (the process was left running)",
                    crate::kinds::sockets::describe(copy.as_fd())
                )));
            }
            return Err(Error::not_supported(format!(
                "pid {pid}: fd {fd} is '{link}' (mode {:o}), a kind of file rcr cannot checkpoint yet and no plugin claimed it",
                st.st_mode
            )));
        };
        let id = files.next_id();
        let entry = kind.dump(&one, id, files)?;
        let ty = entry.r#type;
        files.files.push(entry);
        files.locks.collect(pid, fd, &link, &info, id, opts.file_locks)?;
        seen.insert(key, at, (pid, fd, id, ty));
        out.push(pb::FdinfoEntry { id, flags: fd_flags, r#type: ty, fd: fd as u32, ..Default::default() });
    }
    Ok(out)
}

/// Restore: the files opened in rcr, handed down to every task at fork.
#[derive(Default)]
pub struct Opened {
    /// By file id, each numbered above every target fd number.
    pub by_id: BTreeMap<u32, OwnedFd>,
    /// Plugin files their plugin opens inside the task (ABI 3): the core installs nothing for them.
    pub in_task: BTreeSet<u32>,
}

/// What the nodes of one restore's files share.
struct Ctx<'a, 'e> {
    kinds: &'a mut [Box<dyn FileKind>],
    env: &'a RestoreEnv<'e>,
    plugins: &'a Plugins,
    /// Fds rcr hands down are moved to this number or above.
    base: i32,
    opened: Opened,
}

impl Ctx<'_, '_> {
    fn done(&mut self, id: u32, p: Progress) -> Result<Step<Obj>> {
        Ok(match p {
            Progress::Opened(fd) => {
                let fd = fd_above(fd, self.base)?;
                self.opened.by_id.insert(id, fd);
                Step::Done
            }
            Progress::Done => Step::Done,
            Progress::Pending(w) => Step::Pending(w),
        })
    }
}

/// A copy of `fd` numbered `min` or higher.
pub fn fd_above(fd: OwnedFd, min: i32) -> Result<OwnedFd> {
    sys::dup_above(fd.as_fd(), min).map_err(|source| Error::Io { ctx: format!("moving fd {} above {min}", fd.as_raw_fd()), source })
}

/// A node of the restore graph: a file of a task, a plugin's file, or an object of a kind.
enum FileNode<'a> {
    /// File `f`, first seen as fd `fd` of `pid`, restored by kind `kind`.
    Kind { pid: i32, fd: u32, f: &'a pb::FileEntry, kind: usize, kind_name: &'static str },
    /// A file a plugin dumped (ext entry).
    Plugin { pid: i32, fd: u32, id: u32, ext: &'a pb::ExtFileEntry },
    /// An object of kind `kind` that is no fd.
    Object { kind: usize, key: Obj, name: String },
}

impl<'a, 'e> Node<Obj, Ctx<'a, 'e>> for FileNode<'_> {
    fn name(&self) -> String {
        match self {
            FileNode::Kind { pid, fd, f, kind_name, .. } => format!("pid {pid}: fd {fd}: {kind_name} (file {})", f.id),
            FileNode::Plugin { pid, fd, id, ext } => format!("pid {pid}: fd {fd}: file id {id} of plugin '{}'", ext.rcr_plugin.as_deref().unwrap_or("?")),
            FileNode::Object { name, .. } => name.clone(),
        }
    }

    fn step(&mut self, c: &mut Ctx<'a, 'e>) -> Result<Step<Obj>> {
        match self {
            FileNode::Kind { pid, fd, f, kind, .. } => {
                let p = c.kinds[*kind].step(f, c.env).map_err(|e| e.at_fd(*pid, *fd as i32, None))?;
                c.done(f.id, p)
            }
            FileNode::Plugin { fd, id, ext, .. } => match c.plugins.restore_file(*id, *fd, ext)? {
                Ok(Some(f)) => c.done(*id, Progress::Opened(f)),
                Ok(None) => {
                    c.opened.in_task.insert(*id);
                    Ok(Step::Done)
                }
                Err(why) => Ok(Step::Pending(vec![Wait::Other(why)])),
            },
            FileNode::Object { kind, key, .. } => {
                let by_id = &c.opened.by_id;
                let p = c.kinds[*kind].step_object(*key, c.env, &|id| by_id.contains_key(&id))?;
                c.done(u32::MAX, p)
            }
        }
    }
}

/// Restore, in rcr, before any task exists: opens every file of `procs`' fd tables (and the objects of
/// the kinds that are no fd) through the restore graph. Nothing is started if any of it fails.
pub fn open_all(procs: &[ProcImages], files: &BTreeMap<u32, pb::FileEntry>, kinds: &mut [Box<dyn FileKind>], env: &RestoreEnv<'_>, plugins: &Plugins, base: i32) -> Result<Opened> {
    let index = KindIndex::new(kinds)?;
    let names: Vec<&'static str> = kinds.iter().map(|k| k.name()).collect();
    // The files of the fd tables, each once (fds sharing a description share its node).
    let mut nodes: Vec<(u32, FileNode<'_>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (pid, fi) in procs.iter().flat_map(|p| p.fdinfo.iter().map(move |fi| (p.pstree.pid as i32, fi))) {
        if !seen.insert(fi.id) {
            continue;
        }
        let f = files.get(&fi.id).ok_or_else(|| Error::corrupt(format!("pid {pid}: fd {}: files.img has no file with id {}", fi.fd, fi.id)))?;
        let node = match (&f.ext, index.of(f.r#type)) {
            (Some(ext), _) => FileNode::Plugin { pid, fd: fi.fd, id: fi.id, ext },
            (None, Some(kind)) => FileNode::Kind { pid, fd: fi.fd, f, kind, kind_name: names[kind] },
            (None, None) => return Err(Error::not_supported(format!("pid {pid}: fd {}: file {} is of a kind rcr cannot restore (type {})", fi.fd, fi.id, f.r#type))),
        };
        nodes.push((fi.id, node));
    }
    let mut owners = FdOwners::default();
    for p in procs {
        for fi in &p.fdinfo {
            owners.add(p.pstree.pid as i32, fi.fd, fi.id);
        }
    }
    // The kinds' objects first: most of what a file waits for (a socket made) is one of them, so most
    // files are done in the first round.
    let mut g: Graph<'_, Obj, Ctx<'_, '_>> = Graph::default();
    for (kind, k) in kinds.iter_mut().enumerate() {
        for (key, name) in k.objects(env, &owners)? {
            g.add(key, Box::new(FileNode::Object { kind, key, name }))?;
        }
    }
    for (id, node) in nodes {
        g.add(Obj::File(id), Box::new(node))?;
    }
    let mut ctx = Ctx { kinds, env, plugins, base, opened: Opened::default() };
    g.run(&mut ctx)?;
    Ok(ctx.opened)
}

/// Opens reg file `e` (a mapping's, the executable) through the regular-file kind, as an fd would be:
/// a deleted file (ghost) is then the same inode as its fds'. `mapped`: it must have its dumped size.
pub fn open_reg(kinds: &mut [Box<dyn FileKind>], env: &RestoreEnv<'_>, e: pb::RegFileEntry, mapped: bool) -> Result<OwnedFd> {
    let f = pb::FileEntry { r#type: pb::FdTypes::Reg as i32, id: e.id, reg: Some(e), ..Default::default() };
    let env = RestoreEnv { mapped, ..*env };
    let kind = KindIndex::new(kinds)?.of(f.r#type).ok_or_else(|| Error::Internal("no kind restores regular files".into()))?;
    kinds[kind].open(&f, &env)?.ok_or_else(|| Error::not_supported(format!("file {} cannot be opened", f.id)))
}

/// Restore, in the task (`r`), its memory in place: moves each fd rcr handed down to its number (but
/// those its plugin opens in the task), closes every other, then lets each kind do what only the task
/// can with its fds in place (locks, epoll watches). Called once per fd table, in the last process
/// that shares it.
pub fn install(r: &mut Remote<'_>, pid: i32, fdinfo: &[pb::FdinfoEntry], opened: &Opened, files: &BTreeMap<u32, pb::FileEntry>, kinds: &[Box<dyn FileKind>], env: &RestoreEnv<'_>) -> Result<()> {
    use crate::ctx::step;
    let mut keep = Vec::new();
    for fi in fdinfo.iter().filter(|fi| !opened.in_task.contains(&fi.id)) {
        let src = opened.by_id.get(&fi.id).map(|f| f.as_raw_fd()).ok_or_else(|| Error::Internal(format!("fd {}: not opened", fi.fd)))?;
        let cloexec = if fi.flags & libc::FD_CLOEXEC as u32 != 0 { libc::O_CLOEXEC } else { 0 };
        // dup3 refuses equal fds; an fd already at its place only needs its flag.
        if src == fi.fd as i32 {
            let tmp = step(pid, "dup", r.syscall_ok(libc::SYS_fcntl, &[src as u64, libc::F_DUPFD as u64, 1 << 20]))?;
            step(pid, &format!("install fd {}", fi.fd), r.syscall_ok(libc::SYS_dup3, &[tmp, fi.fd as u64, cloexec as u64]))?;
            r.syscall(libc::SYS_close, &[tmp])?;
        } else {
            step(pid, &format!("install fd {}", fi.fd), r.syscall_ok(libc::SYS_dup3, &[src as u64, fi.fd as u64, cloexec as u64]))?;
        }
        keep.push(fi.fd as i32);
    }
    // The task inherited every file rcr opened for the whole tree: one close_range per gap, instead of
    // as many calls as the tree has files.
    for (lo, hi) in gaps(&keep) {
        step(pid, "close inherited fds", r.syscall_ok(libc::SYS_close_range, &[lo as u64, hi as u64, 0]))?;
    }
    let fds: Vec<(&pb::FdinfoEntry, &pb::FileEntry)> = fdinfo.iter().filter_map(|fi| files.get(&fi.id).map(|f| (fi, f))).collect();
    for k in kinds {
        step(pid, k.name(), k.in_task(r, pid, &fds, env))?;
    }
    Ok(())
}

/// The ranges [lo, hi] of fd numbers not in `keep` (hi = u32::MAX for the last).
fn gaps(keep: &[i32]) -> Vec<(u32, u32)> {
    let mut k: Vec<u32> = keep.iter().map(|&f| f as u32).collect();
    k.sort_unstable();
    k.dedup();
    let mut out = Vec::new();
    let mut next = 0u32;
    for f in k {
        if f > next {
            out.push((next, f - 1));
        }
        next = f + 1;
    }
    out.push((next, u32::MAX));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plugin files `ids` (fds 10+id of pid 5) through the restore graph, with the fixture plugin
    /// built with FIXTURE_RETRY.
    fn plugin_files(ids: &[u32]) -> Result<Opened> {
        let (_d, plugins) = crate::plugins::tests::loaded(&["-DFIXTURE_RETRY"], rcr_plugin_api::RCR_STAGE_RESTORE);
        let exts: Vec<pb::ExtFileEntry> = ids.iter().map(|&id| pb::ExtFileEntry { id, rcr_plugin: Some("fixture".into()), ..Default::default() }).collect();
        let (files, memfds) = (BTreeMap::new(), BTreeMap::new());
        let env = RestoreEnv { images_dir: std::path::Path::new("/nonexistent"), shell_job: false, ext_unix_sk: false, files: &files, memfds: &memfds, mapped: false };
        let mut g: Graph<'_, Obj, Ctx<'_, '_>> = Graph::default();
        for e in &exts {
            g.add(Obj::File(e.id), Box::new(FileNode::Plugin { pid: 5, fd: 10 + e.id, id: e.id, ext: e }))?;
        }
        let mut ctx = Ctx { kinds: &mut [], env: &env, plugins: &plugins, base: 100, opened: Opened::default() };
        g.run(&mut ctx)?;
        Ok(ctx.opened)
    }

    #[test]
    fn a_plugin_file_that_asks_to_retry_is_opened_after_the_file_it_waits_for() {
        let opened = plugin_files(&[1, 2]).unwrap();
        assert_eq!(opened.by_id.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert!(opened.by_id.values().all(|f| f.as_raw_fd() >= 100), "not moved above the target fds");
    }

    #[test]
    fn a_plugin_file_that_never_comes_up_is_named_with_its_reason() {
        let e = plugin_files(&[2, 3]).err().expect("a file that always retries was restored");
        match e {
            Error::Graph(crate::graph::GraphError::Stuck(w)) => assert_eq!(
                w,
                vec![crate::graph::Waiting { node: "pid 5: fd 13: file id 3 of plugin 'fixture'".into(), waits_for: vec!["the device to come up".into()] }]
            ),
            other => panic!("not a stuck graph: {other}"),
        }
    }

    #[test]
    fn gaps_between_kept_fds() {
        assert_eq!(gaps(&[]), vec![(0, u32::MAX)]);
        assert_eq!(gaps(&[0, 1, 2]), vec![(3, u32::MAX)]);
        assert_eq!(gaps(&[2, 0, 10]), vec![(1, 1), (3, 9), (11, u32::MAX)]);
    }
}
