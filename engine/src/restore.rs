//! `restore`: bring a dumped process back at its original PID.
//!
//! Two phases, as CRIU: *collect* reads and checks every image and opens every file in rcr, through the
//! restore graph ([`crate::fdtable`]; nothing is started if any of it fails); *create* forks the root task at its PID with clone3(set_tid), has each
//! task create its children (and later its threads) at their PIDs with remote clone3 calls, top-down,
//! and drives every task's last steps from rcr through ptrace and remote system calls: unmap rcr's memory,
//! map the dumped areas and read their pages in, install the fds, credentials, signals and the rest, load
//! the registers. No task runs its own code until every task is ready; then all are let go together. If
//! a step fails, every task created is killed ([`ChildGuard`]) and the error names the step.

use crate::compel::{Remote, Tracee};
use crate::image::pagemap::Pagemap;
use crate::image::{pb, ImageDir, ImageName};
use crate::kinds::{cpu, mem, posix_timers, regfile, signals, task, tty, FileKind, RestoreEnv};
use crate::options::RestoreOpts;
use crate::plugins::Plugins;
use crate::{fdtable, sys, Error, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// What a restore produced.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// PID of the restored root task.
    pub pid: i32,
    /// Without `detached`: the exit status of the restored task (128+signal if killed).
    pub exit_code: Option<i32>,
}

/// The images of one process.
pub struct ProcImages {
    pub pstree: pb::PstreeEntry,
    /// One core per thread, the leader's first (a zombie has one, with its exit code only).
    pub cores: Vec<pb::CoreEntry>,
    pub zombie: bool,
    pub mm: pb::MmEntry,
    pub ids: pb::TaskKobjIdsEntry,
    pub fs: pb::FsEntry,
    pub fdinfo: Vec<pb::FdinfoEntry>,
    pub pages_id: u32,
    pub runs: Vec<mem::PageRun>,
}

/// Every image of a checkpoint, read and checked before anything is started.
pub struct Images {
    /// In tree order: a parent before its children, the root first.
    pub procs: Vec<ProcImages>,
    pub files: BTreeMap<u32, pb::FileEntry>,
    pub ttys: Vec<pb::TtyInfoEntry>,
    pub seccomp: Vec<pb::SeccompFilter>,
    /// The root's clocks at dump time, and whether its time namespace had offsets.
    pub clocks: Option<(pb::TimensEntry, bool)>,
    /// The plugins this checkpoint cannot be restored without (inventory).
    pub plugins: Vec<String>,
    /// memfds behind mappings.
    pub memfds: Vec<pb::MemfdInodeEntry>,
    /// The kinds of open file, with their own images read ([`crate::kinds::file_kinds`]).
    pub kinds: std::cell::RefCell<Vec<Box<dyn FileKind>>>,
}

impl Images {
    /// Reads the checkpoint in `dir`.
    pub fn load(dir: &Path) -> Result<Images> {
        let images = ImageDir::new(dir);
        let inv: pb::InventoryEntry = images.read_one(ImageName::Inventory)?;
        if inv.img_version != crate::image::IMG_VERSION {
            return Err(Error::Msg(format!("{}: image version {} is not supported (rcr reads version {})", images.file(ImageName::Inventory).display(), inv.img_version, crate::image::IMG_VERSION)));
        }
        let tree: Vec<pb::PstreeEntry> = images.read_all(ImageName::Pstree)?;
        if tree.is_empty() {
            return Err(Error::Msg(format!("{}: no process", images.file(ImageName::Pstree).display())));
        }
        let mut procs = Vec::with_capacity(tree.len());
        for (i, ps) in tree.into_iter().enumerate() {
            if i > 0 && !procs.iter().any(|p: &ProcImages| p.pstree.pid == ps.ppid) {
                return Err(Error::Msg(format!("pstree.img: the parent {} of pid {} comes after it or is missing", ps.ppid, ps.pid)));
            }
            procs.push(ProcImages::load(&images, ps)?);
        }
        if procs[0].zombie {
            return Err(Error::Msg("pstree.img: the root process is a zombie".into()));
        }
        let files = images.read_all::<pb::FileEntry>(ImageName::Files)?.into_iter().map(|f| (f.id, f)).collect();
        let ttys = images.read_all_if_exists(ImageName::TtyInfo)?;
        let seccomp = images.read_all_if_exists::<pb::SeccompEntry>(ImageName::Seccomp)?
            .into_iter()
            .flat_map(|s| s.seccomp_filters)
            .collect();
        let had_offsets = inv.root_ids.as_ref().is_some_and(|i| i.time_ns_id.is_some());
        let clocks = images.read_all_if_exists::<pb::TimensEntry>(ImageName::Timens(1))?.into_iter().next().map(|c| (c, had_offsets));
        let memfds = images.read_all_if_exists(ImageName::MemfdInode)?;
        let mut kinds = crate::kinds::file_kinds();
        for k in kinds.iter_mut() {
            k.load(dir)?;
        }
        Ok(Images { procs, files, ttys, seccomp, clocks, plugins: inv.rcr_plugins, memfds, kinds: std::cell::RefCell::new(kinds) })
    }

    fn reg(&self, id: u32) -> Result<&pb::RegFileEntry> {
        self.files.get(&id).and_then(|f| f.reg.as_ref()).ok_or_else(|| Error::Msg(format!("files.img has no regular file with id {id}")))
    }
}

impl ProcImages {
    fn load(images: &ImageDir, pstree: pb::PstreeEntry) -> Result<ProcImages> {
        let pid = pstree.pid;
        let first: pb::CoreEntry = images.read_one(ImageName::Core(pid))?;
        let zombie = first.tc.as_ref().is_some_and(|tc| tc.task_state == crate::dump::TASK_DEAD);
        if zombie {
            return Ok(ProcImages {
                pstree,
                cores: vec![first],
                zombie,
                mm: Default::default(),
                ids: Default::default(),
                fs: Default::default(),
                fdinfo: Vec::new(),
                pages_id: 0,
                runs: Vec::new(),
            });
        }
        if pstree.threads.first() != Some(&pid) {
            return Err(Error::Msg(format!("pstree.img: pid {pid}: its first thread is not its leader")));
        }
        let mut cores = vec![first];
        for &tid in &pstree.threads[1..] {
            cores.push(images.read_one(ImageName::Core(tid))?);
        }
        for (tid, c) in pstree.threads.iter().zip(&cores) {
            if c.mtype != pb::core_entry::March::X8664 as i32 || c.thread_info.is_none() {
                return Err(Error::Msg(format!("{}: not an x86_64 task core", images.file(ImageName::Core(*tid)).display())));
            }
        }
        if cores[0].tc.is_none() {
            return Err(Error::Msg(format!("{}: the leader's core has no task core", images.file(ImageName::Core(pid)).display())));
        }
        let mm: pb::MmEntry = images.read_one(ImageName::Mm(pid))?;
        let ids: pb::TaskKobjIdsEntry = images.read_one(ImageName::Ids(pid))?;
        let fs: pb::FsEntry = images.read_one(ImageName::Fs(pid))?;
        let fdinfo = images.read_all(ImageName::Fdinfo(ids.files_id))?;
        let pagemap = Pagemap::read(images, ImageName::Pagemap(pid))?;
        let pages = images.file(ImageName::Pages(pagemap.pages_id));
        let pages_len = std::fs::metadata(&pages).map(|m| m.len()).unwrap_or(0);
        let need = pagemap.pages_len();
        if need > pages_len {
            return Err(Error::Msg(format!(
                "{}: {} bytes, but {} lists {need} bytes of pages: the checkpoint is truncated",
                pages.display(), pages_len, ImageName::Pagemap(pid)
            )));
        }
        Ok(ProcImages { pstree, cores, zombie, mm, ids, fs, fdinfo, pages_id: pagemap.pages_id, runs: pagemap.runs })
    }

    fn pid(&self) -> i32 {
        self.pstree.pid as i32
    }
}

/// Kills every task created so far unless disarmed (and reaps the root, rcr's child): half a restore
/// never runs.
struct ChildGuard {
    root: i32,
    pids: std::cell::RefCell<Vec<i32>>,
    armed: bool,
}

impl ChildGuard {
    fn kill_all(&self) {
        for &pid in self.pids.borrow().iter().rev() {
            // These are the tasks this restore created; one that is gone already is fine.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill_all();
            let _ = sys::waitpid_status(self.root, libc::__WALL);
            tracing::info!("killed the half-restored tasks {:?}", self.pids.borrow());
        }
    }
}

/// /proc/PID/stat of `pid`, or None when there is no such process.
fn proc_stat(pid: i32) -> Option<crate::proc::Stat> {
    crate::proc::parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).ok()
}

/// Says who holds `pid`, if anyone. A zombie is waited for (bounded): it is dead and its parent (PID 1
/// here reaps orphans lazily) is about to free the PID.
fn check_pid_free(pid: i32, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let Some(st) = proc_stat(pid) else { return Ok(()) };
        let (comm, zombie) = (&st.comm, st.state == 'Z');
        if !zombie || std::time::Instant::now() >= deadline {
            let what = if zombie { format!("a zombie '{comm}' that its parent {} has not reaped", st.ppid) } else { format!("'{comm}'") };
            return Err(Error::Msg(format!("pid {pid} is in use by {what}; stop that process first, rcr restores at the original PID")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Files a process needs at restore, opened in rcr before the tree is created.
struct ProcFiles {
    pages: std::fs::File,
    exe: OwnedFd,
    cwd: OwnedFd,
    root: String,
}

/// Restores the checkpoint in `opts.images_dir`.
pub fn restore(opts: &RestoreOpts) -> Result<RestoreOutcome> {
    let dir = opts.images_dir.as_path();
    // plugins: load and init them; then nothing starts if the checkpoint needs a plugin that is missing.
    let mut plugins = Plugins::load(opts.plugin_dir.as_deref(), rcr_plugin_api::RCR_STAGE_RESTORE, dir, &opts.to_json())?;
    plugins.init()?;
    let img = Images::load(dir)?;
    plugins.check_needed(&img.plugins)?;
    plugins.restore_init()?;
    let pid = img.procs[0].pid();
    // What this rcr could not give back fails here, before anything is started.
    let own = task::OwnPrivileges::read()?;
    for p in img.procs.iter().filter(|p| !p.zombie) {
        for (core, &tid) in p.cores.iter().zip(&p.pstree.threads) {
            if let Some(c) = core.thread_core.as_ref().and_then(|t| t.creds.as_ref()) {
                own.check_image_creds(p.pid(), tid as i32, c).map_err(nothing_started)?;
            }
        }
        if let Some(rl) = p.cores[0].tc.as_ref().and_then(|tc| tc.rlimits.as_ref()) {
            own.check_rlimits(p.pid(), rl).map_err(nothing_started)?;
        }
    }
    for p in &img.procs {
        check_pid_free(p.pid(), opts.step_timeout)?;
        for &tid in p.pstree.threads.iter().skip(1) {
            check_pid_free(tid as i32, opts.step_timeout)?;
        }
    }

    // Collect: open everything in rcr before any task exists.
    // Sources sit above every target fd number, so moving one into place never overwrites another.
    let base = img.procs.iter().flat_map(|p| p.fdinfo.iter()).map(|f| f.fd as i32).max().unwrap_or(2) + 1;
    // memfds: created here, inherited by every task, mapped by those that had them and reopened for
    // their fds.
    let mut memfd_fds: BTreeMap<u64, OwnedFd> = BTreeMap::new();
    for e in &img.memfds {
        memfd_fds.insert(e.inode_id, fdtable::fd_above(crate::kinds::memfd::restore(dir, e)?, base)?);
    }
    let env = RestoreEnv { images_dir: dir, shell_job: opts.shell_job, files: &img.files, memfds: &memfd_fds, ext_unix_sk: opts.ext_unix_sk, mapped: false };
    // Every file of every fd table (plugins' too), through the restore graph.
    let opened = fdtable::open_all(&img.procs, &img.files, &mut img.kinds.borrow_mut(), &env, &plugins, base)?;
    // plugins: device areas; the plugin that claimed each gives the fd to map it from (inherited).
    let mut plugin_vmas: Vec<(i32, &pb::VmaEntry, &pb::ExtFileEntry)> = Vec::new();
    for p in img.procs.iter().filter(|p| !p.zombie) {
        for v in p.mm.vmas.iter().filter(|v| v.status & mem::VMA_EXT_PLUGIN != 0) {
            let ext = img.files.get(&(v.shmid as u32)).and_then(|f| f.ext.as_ref()).ok_or_else(|| {
                Error::Msg(format!("pid {}: memory area {:#x} belongs to a plugin, but files.img has no ext file {}", p.pid(), v.start, v.shmid))
            })?;
            plugin_vmas.push((p.pid(), v, ext));
        }
    }
    let plugin_vma_fds = plugins.update_vmas(&plugin_vmas)?;
    let mut map_fds: BTreeMap<u64, OwnedFd> = BTreeMap::new();
    let mut pfiles = Vec::with_capacity(img.procs.len());
    for p in &img.procs {
        if p.zombie {
            pfiles.push(None);
            continue;
        }
        for v in &p.mm.vmas {
            if v.status & mem::VMA_EXT_PLUGIN != 0 {
                continue; // plugins: mapped from the fd update_vma gave
            }
            if v.status & mem::VMA_AREA_MEMFD != 0 {
                if !memfd_fds.contains_key(&v.shmid) {
                    return Err(Error::Msg(format!("pid {}: memory area {:#x} maps memfd inode {}, which memfd.img lacks", p.pid(), v.start, v.shmid)));
                }
                continue;
            }
            if v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0 && !map_fds.contains_key(&v.shmid) {
                let mut e = img.reg(v.shmid as u32)?.clone();
                e.flags = v.fdflags.unwrap_or(libc::O_RDONLY as u32);
                let fd = fdtable::open_reg(&mut img.kinds.borrow_mut(), &env, e, true).map_err(|err| Error::Msg(format!("pid {}: the file mapped at {:#x}: {err}", p.pid(), v.start)))?;
                map_fds.insert(v.shmid, fd);
            }
        }
        let pages_path = ImageDir::new(dir).file(ImageName::Pages(p.pages_id));
        let pages = std::fs::File::open(&pages_path).map_err(|e| Error::Io { ctx: format!("opening {}", pages_path.display()), source: e })?;
        pfiles.push(Some(ProcFiles {
            pages,
            exe: fdtable::open_reg(&mut img.kinds.borrow_mut(), &env, img.reg(p.mm.exe_file_id)?.clone(), false).map_err(|err| Error::Msg(format!("pid {}: its executable: {err}", p.pid())))?,
            cwd: regfile::open(img.reg(p.fs.cwd_id)?, false)?,
            root: img.reg(p.fs.root_id)?.name.clone(),
        }));
    }
    let all_vmas: Vec<pb::VmaEntry> = img.procs.iter().flat_map(|p| p.mm.vmas.iter().cloned()).collect();
    let tramp = pick_trampoline(&all_vmas)?;
    if let Some((clocks, had_offsets)) = &img.clocks {
        crate::kinds::timens::prepare_restore(clocks, *had_offsets)?;
    }

    // Create the root: it stops itself, traced, for rcr to take over.
    sys::spawn_traced_at(pid).map_err(|e| match e.errno() {
        Some(sys::Errno::EEXIST) => Error::Msg(format!("pid {pid} was taken while rcr prepared the restore; stop that process first")),
        _ => Error::Msg(format!("cannot create pid {pid}: {e}")),
    })?;
    let mut guard = ChildGuard { root: pid, pids: std::cell::RefCell::new(vec![pid]), armed: true };
    let ctx = Ctx {
        img: &img,
        tramp,
        opened: &opened,
        map_fds: &map_fds,
        memfd_fds: &memfd_fds,
        plugin_vma_fds: &plugin_vma_fds,
        plugins: &plugins,
        pfiles: &pfiles,
        opts,
        own: &own,
        shm_owners: Default::default(),
    };
    // plugins: post_forking before the tasks are built, resume_devices_late once they are (before they run).
    let built = plugins.post_forking(pid).map_err(Error::from).and_then(|()| create_and_build(&ctx, &guard));
    // resume_devices_late runs once per process (as criu's), every process built, none running yet.
    let resumed = |tasks| -> Result<Vec<Ready>> {
        for p in img.procs.iter().filter(|p| !p.zombie) {
            plugins.resume_devices_late(p.pid())?;
        }
        Ok(tasks)
    };
    match built.and_then(resumed) {
        Ok(tasks) => {
            // Every task is ready: let them all go.
            for t in tasks {
                t.release()?;
            }
        }
        Err(e) => {
            // Kill before the tracees detach: half-built tasks must never run.
            guard.kill_all();
            return Err(e);
        }
    }
    guard.armed = false;
    // rcr lets go of every file it handed down: a pipe whose write end rcr kept open would never show
    // its reader an end of file.
    drop(ctx);
    drop(opened);
    for k in img.kinds.borrow_mut().iter_mut() {
        k.finish_restore();
    }
    drop(memfd_fds);
    drop(map_fds);
    drop(plugin_vma_fds);
    drop(pfiles);
    tracing::info!("pid {pid} restored and running ({} process(es))", img.procs.len());
    plugins.fini(true)?; // plugins: the tasks already run; an error here only fails the command
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{pid}\n")).map_err(|e| Error::Io { ctx: format!("writing pidfile {}", p.display()), source: e })?;
    }
    if opts.detached {
        return Ok(RestoreOutcome { pid, exit_code: None });
    }
    Ok(RestoreOutcome { pid, exit_code: Some(wait_exit(pid)?) })
}

fn nothing_started(e: Error) -> Error {
    Error::Msg(format!("{e}; nothing was started"))
}

/// A created task waiting to be let go, and how.
enum Ready {
    Run(Tracee),
    Stopped(Tracee),
    /// A zombie-to-be: its registers call exit_group (or kill) when it is detached.
    Exit(Tracee),
}

impl Ready {
    fn release(self) -> Result<()> {
        match self {
            Ready::Run(t) => t.detach()?,
            Ready::Exit(t) => {
                let pid = t.tid();
                t.detach()?;
                // Return only once it is a zombie again: whoever looks right after the restore sees it dead.
                wait_state(pid, 'Z');
            }
            Ready::Stopped(t) => {
                let pid = t.tid();
                t.detach_with_signal(libc::SIGSTOP)?;
                // Return only once it is stopped: whoever looks right after the restore sees it stopped.
                wait_state(pid, 'T');
            }
        }
        Ok(())
    }
}

/// Waits (at most 2 s) until `pid` is in /proc state `state`, or gone.
fn wait_state(pid: i32, state: char) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if proc_stat(pid).is_none_or(|st| st.state == state) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Ctx<'a> {
    img: &'a Images,
    tramp: u64,
    /// Every file of the fd tables, opened in rcr (and the plugin files opened in the task).
    opened: &'a fdtable::Opened,
    map_fds: &'a BTreeMap<u64, OwnedFd>,
    /// plugins: fd and file offset of each device area, by its shmid (update_vma); no fd: its plugin
    /// maps it in restore_task.
    plugin_vma_fds: &'a BTreeMap<u64, (Option<OwnedFd>, u64)>,
    /// plugins: for restore_task.
    plugins: &'a Plugins,
    /// memfds by shmem inode.
    memfd_fds: &'a BTreeMap<u64, OwnedFd>,
    pfiles: &'a [Option<ProcFiles>],
    opts: &'a RestoreOpts,
    /// What rcr itself has (its credentials: what every task it creates starts with).
    own: &'a task::OwnPrivileges,
    /// MAP_SHARED anonymous memory already mapped, by shmem inode: (owner pid, start, end).
    shm_owners: std::cell::RefCell<BTreeMap<u64, (i32, u64, u64)>>,
}

/// struct clone_args for clone3 with set_tid (CLONE_ARGS_SIZE_VER2, 88 bytes).
fn clone_args(flags: u64, exit_signal: u64, set_tid: u64) -> Vec<u8> {
    let fields = [flags, 0, 0, 0, exit_signal, 0, 0, 0, set_tid, 1, 0];
    fields.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// In the task of `r`, creates a child process (or, with `thread`, a thread) with id `tid`; it starts
/// stopped and traced by rcr.
/// `share` adds clone flags for a process (CLONE_FILES, CLONE_FS: tables it shares with its creator).
fn remote_clone(r: &mut Remote<'_>, tid: i32, thread: bool, share: u64, timeout: Duration) -> Result<Tracee> {
    const THREAD_FLAGS: i32 = libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD | libc::CLONE_SYSVSEM;
    let set_tid = r.scratch_put(&(tid as u64).to_le_bytes())?;
    let (flags, sig) = if thread { (THREAD_FLAGS as u64, 0) } else { (share, libc::SIGCHLD as u64) };
    let args = r.scratch_put(&clone_args(flags, sig, set_tid))?;
    let got = r.syscall(libc::SYS_clone3, &[args, 88])?;
    if got != tid as i64 {
        let what = if thread { "thread" } else { "process" };
        return Err(Error::Msg(if got == -(libc::EEXIST as i64) {
            format!("{what} {tid} is in use; stop that process first, rcr restores at the original ids")
        } else {
            format!("creating {what} {tid} failed: {}", mem::errno_str(got))
        }));
    }
    Ok(Tracee::from_auto_attached(tid, timeout)?)
}

fn idx_of(img: &Images, pid: i32) -> Option<usize> {
    img.procs.iter().position(|p| p.pid() == pid)
}

/// Creates the whole tree top-down (each task creates its children, a session leader calls setsid
/// before), then builds every task. Returns the tasks ready to be let go.
fn create_and_build(c: &Ctx<'_>, guard: &ChildGuard) -> Result<Vec<Ready>> {
    let img = c.img;
    let root_pid = img.procs[0].pid();
    let root = Tracee::from_traced_child(root_pid, c.opts.step_timeout).map_err(|e| Error::Msg(format!("pid {root_pid}: the new task did not stop: {e}")))?;
    root.set_options(libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACECLONE)?;
    step(root_pid, "trampoline", make_trampoline(&root, c.tramp))?;
    let mut tasks: Vec<Option<Tracee>> = (0..img.procs.len()).map(|_| None).collect();
    tasks[0] = Some(root);
    // Create, top-down: procs are in tree order, so a parent exists before its children.
    for i in 0..img.procs.len() {
        let p = &img.procs[i];
        let pid = p.pid();
        let t = tasks[i].take().ok_or_else(|| Error::Msg(format!("pid {pid}: its parent {} did not create it", p.pstree.ppid)))?;
        {
            let mut r = step(pid, "remote", Remote::at_site(&t, c.tramp))?;
            if i == 0 {
                // The root drops rcr's memory before it creates anything: its descendants then start
                // with nothing but the trampoline, instead of each sharing (and later unmapping) rcr's
                // pages, which costs time in proportion to the number of tasks sharing them.
                step(pid, "unmap rcr's memory", unmap_all_but_trampoline(&mut r, c.tramp))?;
            }
            // A session leader leads its own session again, also under --shell-job: only a root whose
            // session is outside the tree (a shell job's) stays in rcr's.
            if p.pstree.sid == p.pstree.pid && !p.zombie {
                step(pid, "setsid", r.syscall_ok(libc::SYS_setsid, &[]))?;
            }
            for (j, child) in img.procs.iter().enumerate().skip(i + 1) {
                if child.pstree.ppid as i32 != pid {
                    continue;
                }
                if !child.zombie && (child.ids.vm_id == p.ids.vm_id || child.ids.sighand_id == p.ids.sighand_id) {
                    return Err(Error::Msg(format!(
                        "pid {} shares its memory or signal handlers with its parent {pid} without being a thread of it (vfork, CLONE_VM); rcr cannot restore that yet",
                        child.pid()
                    )));
                }
                let mut share = 0u64;
                if !child.zombie && child.ids.files_id == p.ids.files_id {
                    share |= libc::CLONE_FILES as u64;
                }
                if !child.zombie && child.ids.fs_id == p.ids.fs_id {
                    share |= libc::CLONE_FS as u64;
                }
                let ct = step(child.pid(), "create", remote_clone(&mut r, child.pid(), false, share, c.opts.step_timeout))?;
                guard.pids.borrow_mut().push(child.pid());
                tasks[j] = Some(ct);
            }
            step(pid, "release scratch", r.release_scratch())?;
            step(pid, "cure", r.cure())?;
        }
        tasks[i] = Some(t);
    }
    tracing::debug!("created {} processes", img.procs.len());
    // Process groups: leaders first, then members (a group must exist before anyone joins it).
    for leaders_pass in [true, false] {
        for (i, p) in img.procs.iter().enumerate() {
            let (pid, pgid) = (p.pid(), p.pstree.pgid as i32);
            if p.zombie || pgid == p.pstree.sid as i32 && pgid == pid || (pgid == pid) != leaders_pass || idx_of(img, pgid).is_none() {
                continue;
            }
            if let Some(t) = &tasks[i] {
                let mut r = step(pid, "remote", Remote::at_site(t, c.tramp))?;
                step(pid, "setpgid", r.syscall_ok(libc::SYS_setpgid, &[0, pgid as u64]))?;
                step(pid, "cure", r.cure())?;
            }
        }
    }
    // Build every task; zombies last, so that their exit does not disturb the others' build.
    let mut ready = Vec::new();
    for (i, p) in img.procs.iter().enumerate() {
        let Some(t) = tasks[i].take() else { continue };
        if p.zombie {
            step(p.pid(), "zombie", prepare_exit(&t, c.tramp, &p.cores[0]))?;
            tasks[i] = Some(t);
            continue;
        }
        let threads = build_process(&t, c, i, guard)?;
        tracing::debug!("pid {}: built", p.pid());
        let stopped = p.cores[0].tc.as_ref().is_some_and(|tc| tc.task_state == crate::dump::TASK_STOPPED);
        ready.extend(threads.into_iter().map(Ready::Run));
        ready.push(if stopped { Ready::Stopped(t) } else { Ready::Run(t) });
    }
    ready.extend(tasks.into_iter().flatten().map(Ready::Exit));
    Ok(ready)
}

/// Sets up a zombie-to-be: when let go, it exits with its recorded status (or is killed by its signal).
fn prepare_exit(t: &Tracee, tramp: u64, core: &pb::CoreEntry) -> Result<()> {
    let status = core.tc.as_ref().map_or(0, |tc| tc.exit_code as i32);
    if let Some(tc) = &core.tc {
        let mut r = Remote::at_site(t, tramp)?;
        let name = r.scratch_put(&nul(&tc.comm))?;
        r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_NAME as u64, name])?;
        r.release_scratch()?;
        r.cure()?;
    }
    let mut regs = t.regs()?;
    regs.rip = tramp;
    regs.orig_rax = u64::MAX;
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        {
            // The signal must kill it: default disposition, and no core file.
            let mut r = Remote::at_site(t, tramp)?;
            let dfl = crate::compel::KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
            r.rt_sigaction_set(sig, &dfl)?;
            let zero = r.scratch_put(&[0u8; 16])?;
            r.syscall_ok(libc::SYS_prlimit64, &[0, libc::RLIMIT_CORE as u64, zero, 0])?;
            r.release_scratch()?;
            r.cure()?;
        }
        regs.rax = libc::SYS_kill as u64;
        regs.rdi = t.tid() as u64;
        regs.rsi = sig as u64;
        // Nothing blocked: the signal is taken on the way out of kill(), before the int3 after it.
        t.set_sigmask(0)?;
    } else {
        regs.rax = libc::SYS_exit_group as u64;
        regs.rdi = libc::WEXITSTATUS(status) as u64;
    }
    t.set_regs(&regs)?;
    Ok(())
}

/// Unmaps everything in the task of `r` but the trampoline page.
fn unmap_all_but_trampoline(r: &mut Remote<'_>, tramp: u64) -> Result<()> {
    r.syscall_ok(libc::SYS_munmap, &[0, tramp])?;
    r.syscall_ok(libc::SYS_munmap, &[tramp + TRAMP_LEN, TASK_SIZE - tramp - TRAMP_LEN])?;
    Ok(())
}

/// Puts the trampoline page (`syscall; int3`) into the root task, which still runs rcr's memory.
fn make_trampoline(tracee: &Tracee, tramp: u64) -> Result<()> {
    let mut remote = Remote::inject(tracee)?;
    let got = remote.syscall(libc::SYS_mmap, &[tramp, TRAMP_LEN, (libc::PROT_READ | libc::PROT_WRITE) as u64,
        (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64, u64::MAX, 0])?;
    if got != tramp as i64 {
        return Err(Error::Msg(format!("mapping the restore trampoline at {tramp:#x} failed: {}", mem::errno_str(got))));
    }
    tracee.write_mem(tramp, &[0x0f, 0x05, 0xcc])?;
    // The new task inherited rcr's rseq registration, whose area is about to be unmapped: the kernel
    // would fault on it on every return to user space. (Its children inherit the unregistered state.)
    if let Some(rs) = tracee.rseq_config()?.filter(|r| r.abi_pointer != 0) {
        remote.syscall_ok(libc::SYS_rseq, &[rs.abi_pointer, rs.abi_size as u64, 1 /* RSEQ_FLAG_UNREGISTER */, rs.signature as u64])?;
    }
    remote.syscall_ok(libc::SYS_mprotect, &[tramp, TRAMP_LEN, (libc::PROT_READ | libc::PROT_EXEC) as u64])?;
    remote.cure()?;
    Ok(())
}

const PAGE: u64 = mem::PAGE_SIZE;
/// The trampoline: one page of code (`syscall; int3`) at an address no dumped area uses.
const TRAMP_LEN: u64 = PAGE;
/// End of the x86_64 user address space with 4-level page tables.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
const ARCH_MAP_VDSO_64: u64 = 0x2003;

/// A trampoline address outside the dumped areas and outside rcr's own mappings (the new task starts
/// as a copy of rcr).
fn pick_trampoline(vmas: &[pb::VmaEntry]) -> Result<u64> {
    let own = std::fs::read_to_string("/proc/self/maps").map_err(|e| Error::Io { ctx: "reading /proc/self/maps".into(), source: e })?;
    let mut taken: Vec<(u64, u64)> = vmas.iter().map(|v| (v.start, v.end)).collect();
    for line in own.lines() {
        if let Some((a, b)) = line.split_whitespace().next().and_then(|r| r.split_once('-')) {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                taken.push((a, b));
            }
        }
    }
    let mut addr = 0x1000_0000u64;
    while addr + TRAMP_LEN < TASK_SIZE {
        if !taken.iter().any(|&(s, e)| addr < e + PAGE && addr + TRAMP_LEN + PAGE > s) {
            return Ok(addr);
        }
        addr += 1 << 24;
    }
    Err(Error::Msg("no free address for the restore trampoline".into()))
}

pub(crate) fn step<T, E: std::fmt::Display>(pid: i32, what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Msg(format!("pid {pid}: restore step '{what}' failed: {e}")))
}

/// Builds process `i` (created, still running rcr's memory) and its threads. Returns the threads other
/// than the leader, ready to run; the leader is ready too when this returns.
fn build_process(tracee: &Tracee, c: &Ctx<'_>, i: usize, guard: &ChildGuard) -> Result<Vec<Tracee>> {
    let img = c.img;
    let p = &img.procs[i];
    let pf = c.pfiles[i].as_ref().ok_or_else(|| Error::Msg("internal: no files for a live process".into()))?;
    let pid = p.pid();
    let mut remote = step(pid, "remote", Remote::at_site(tracee, c.tramp))?;
    let r = &mut remote;
    // MAP_SHARED anonymous memory another process of the tree already mapped: open that object while
    // /proc is reachable by path, to map it again below.
    let mut shm_fds: BTreeMap<u64, i32> = BTreeMap::new();
    for v in p.mm.vmas.iter().filter(|v| v.status & mem::VMA_ANON_SHARED != 0 && v.shmid != 0) {
        let owner = c.shm_owners.borrow().get(&v.shmid).copied();
        if let (Some((opid, s, e)), false) = (owner, shm_fds.contains_key(&v.shmid)) {
            let path = r.scratch_put(&nul(&format!("/proc/{opid}/map_files/{s:x}-{e:x}")))?;
            let fd = step(pid, "open shared memory", r.syscall_ok(libc::SYS_openat, &[libc::AT_FDCWD as u64, path, libc::O_RDWR as u64, 0]))?;
            shm_fds.insert(v.shmid, fd as i32);
        }
    }
    step(pid, "release scratch", r.release_scratch())?;
    // Replace rcr's memory with the dumped areas.
    step(pid, "unmap what is left of rcr's memory", unmap_all_but_trampoline(r, c.tramp))?;
    if let Some(vvar) = p.mm.vmas.iter().filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR) != 0).map(|v| v.start).min() {
        let got = r.syscall(libc::SYS_arch_prctl, &[ARCH_MAP_VDSO_64, vvar])?;
        if got < 0 {
            return Err(Error::Msg(format!("pid {pid}: mapping the vDSO at {vvar:#x} failed: {}", mem::errno_str(got))));
        }
    }
    let areas: Vec<&pb::VmaEntry> = p.mm.vmas.iter()
        .filter(|v| v.status & (mem::VMA_AREA_VDSO | mem::VMA_AREA_VVAR | mem::VMA_AREA_VSYSCALL) == 0)
        // plugins: an area its plugin maps itself, in restore_task.
        .filter(|v| v.status & mem::VMA_EXT_PLUGIN == 0 || c.plugin_vma_fds.get(&v.shmid).is_none_or(|(fd, _)| fd.is_some()))
        .collect();
    let mut filled = Vec::with_capacity(areas.len());
    let mut runs = Vec::new();
    for v in &areas {
        if let Some(&fd) = shm_fds.get(&v.shmid).filter(|_| v.status & mem::VMA_ANON_SHARED != 0) {
            // The same shmem object as its owner's: map it. Its pages are filled again from this
            // process's own dump too: pages only this process had touched are not in the owner's.
            let mine = mem::runs_in(&p.runs, v.start, v.end);
            let prot = if mine.is_empty() { v.prot as u64 } else { (v.prot as i32 | libc::PROT_READ | libc::PROT_WRITE) as u64 };
            let got = r.syscall(libc::SYS_mmap, &[v.start, v.end - v.start, prot, (libc::MAP_SHARED | libc::MAP_FIXED) as u64, fd as u64, 0])?;
            if got != v.start as i64 {
                return Err(Error::Msg(format!("pid {pid}: mapping shared memory at {:#x} failed: {}", v.start, mem::errno_str(got))));
            }
            filled.push(!mine.is_empty());
            runs.extend(mine);
            continue;
        }
        if v.status & mem::VMA_EXT_PLUGIN != 0 {
            // plugins: a device area, mapped from the fd its plugin gave, at the offset it gave.
            let (fd, offset) = c.plugin_vma_fds.get(&v.shmid).and_then(|(fd, o)| Some((fd.as_ref()?, o))).ok_or_else(|| Error::Msg(format!("pid {pid}: no plugin mapping for area {:#x}", v.start)))?;
            let area = pb::VmaEntry { pgoff: *offset, ..**v };
            step(pid, &format!("map device area {:#x}-{:#x}", v.start, v.end), mem::map_area(r, &area, mem::AreaFd(Some(fd.as_raw_fd())), false))?;
            filled.push(false);
            continue;
        }
        let fds = if v.status & mem::VMA_AREA_MEMFD != 0 { c.memfd_fds } else { c.map_fds };
        let fd = fds.get(&v.shmid).filter(|_| v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0).map(|f| f.as_raw_fd());
        let mine = mem::runs_in(&p.runs, v.start, v.end);
        let has_pages = !mine.is_empty();
        step(pid, &format!("map area {:#x}-{:#x}", v.start, v.end), mem::map_area(r, v, mem::AreaFd(fd), has_pages))?;
        if v.status & mem::VMA_ANON_SHARED != 0 && v.shmid != 0 {
            c.shm_owners.borrow_mut().entry(v.shmid).or_insert((pid, v.start, v.end));
        }
        runs.extend(mine);
        filled.push(has_pages);
    }
    step(pid, "fill memory", mem::fill_pages(r, pid, &runs, pf.pages.as_raw_fd(), &pf.pages))?;
    for (v, had) in areas.iter().zip(filled) {
        step(pid, &format!("protect area {:#x}-{:#x}", v.start, v.end), mem::protect_area(r, v, had))?;
    }
    for fd in shm_fds.values() {
        r.syscall(libc::SYS_close, &[*fd as u64])?;
    }
    check_vdso_layout(pid, &p.mm.vmas)?;
    // mm fields, exe link, auxv.
    step(pid, "PR_SET_MM_MAP", set_mm_map(r, &p.mm, pf.exe.as_raw_fd()))?;
    // fs: cwd, root, umask.
    step(pid, "cwd", r.syscall_ok(libc::SYS_fchdir, &[pf.cwd.as_raw_fd() as u64]))?;
    if pf.root != "/" {
        let path = r.scratch_put(&nul(&pf.root))?;
        step(pid, "chroot", r.syscall_ok(libc::SYS_chroot, &[path]))?;
    }
    if let Some(u) = p.fs.umask {
        r.syscall(libc::SYS_umask, &[u as u64])?;
    }
    // fds: move each inherited fd to its number, then close everything else. A table shared with
    // other processes (CLONE_FILES) is set up by the last of them to be built: the others still need
    // the files rcr handed down.
    let last_sharer = img.procs.iter().enumerate().rev().find(|(_, q)| !q.zombie && q.ids.files_id == p.ids.files_id).map(|(j, _)| j);
    // A session leader takes its controlling terminal again, through the copy every task inherited
    // (it need not have an fd on it itself), and gives it its foreground group.
    if let Some((file, pgrp)) = (p.pstree.sid == p.pstree.pid).then(|| tty::controlling_terminal(&img.ttys, &img.files, p.pstree.pid)).flatten() {
        let src = c.opened.by_id.get(&file).map(|f| f.as_raw_fd()).ok_or_else(|| Error::Msg(format!("pid {pid}: its terminal (file {file}) was not opened")))?;
        step(pid, "take the terminal", r.syscall_ok(libc::SYS_ioctl, &[src as u64, libc::TIOCSCTTY, 1]))?;
        if pgrp != 0 && img.procs.iter().any(|q| q.pstree.pgid == pgrp && q.pstree.sid == p.pstree.sid) {
            let arg = r.scratch_put(&(pgrp as i32).to_le_bytes())?;
            step(pid, "terminal foreground group", r.syscall_ok(libc::SYS_ioctl, &[src as u64, libc::TIOCSPGRP, arg]))?;
        }
    }
    if last_sharer == Some(i) {
        let env = RestoreEnv { images_dir: c.opts.images_dir.as_path(), shell_job: c.opts.shell_job, files: &img.files, memfds: c.memfd_fds, ext_unix_sk: c.opts.ext_unix_sk, mapped: false };
        fdtable::install(r, pid, &p.fdinfo, c.opened, &img.files, &img.kinds.borrow(), &env)?;
    }
    // plugins: what must happen in the task's own context (ABI 3), its memory and fds in place.
    c.plugins.restore_task(&mut crate::plugins::InTask::new(pid, r))?;
    // Threads, while the task still has the privileges clone3(set_tid) needs.
    let mut threads = Vec::new();
    for (core, &tid) in p.cores.iter().zip(&p.pstree.threads).skip(1) {
        let t = step(tid as i32, "create thread", remote_clone(r, tid as i32, true, 0, c.opts.step_timeout))?;
        guard.pids.borrow_mut().push(tid as i32);
        step(tid as i32, "thread", build_thread(&t, c, core))?;
        threads.push(t);
    }
    // Task attributes.
    let core = &p.cores[0];
    let tc = core.tc.as_ref().ok_or_else(|| Error::Msg("core has no task core".into()))?;
    let th = core.thread_core.clone().unwrap_or_default();
    if let Some(rl) = &tc.rlimits {
        task::restore_rlimits(pid, rl)?;
    }
    if let (Some(policy), Some(prio), Some(nice)) = (th.sched_policy, th.sched_prio, th.sched_nice) {
        task::restore_sched(pid, policy, prio, nice)?;
    }
    if let Some(adj) = tc.oom_score_adj {
        let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string());
    }
    step(pid, "personality", r.syscall_ok(libc::SYS_personality, &[tc.personality as u64]))?;
    // Both set either way: a forked task inherits rcr's THP setting.
    let thp = p.mm.thp_disabled == Some(true);
    step(pid, "THP", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_THP_DISABLE as u64, thp as u64, 0, 0, 0]))?;
    let subreaper = tc.child_subreaper == Some(true);
    step(pid, "subreaper", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_CHILD_SUBREAPER as u64, subreaper as u64]))?;
    step(pid, "sigactions", signals::restore_sigactions(r, &tc.sigactions))?;
    if let Some(t) = &tc.timers {
        step(pid, "itimers", task::restore_itimers(r, t))?;
        step(pid, "POSIX timers", posix_timers::restore(r, pid, &t.posix))?;
    }
    // Pending signals of every thread are queued by the leader: only a thread whose id is the process id
    // may queue signals with any siginfo.
    for (tcore, &tid) in p.cores.iter().zip(&p.pstree.threads) {
        let q = tcore.thread_core.as_ref().and_then(|t| t.signals_p.as_ref());
        step(pid, "pending signals", signals::restore_queue(r, pid, tid as i32, q, false))?;
    }
    step(pid, "pending signals", signals::restore_queue(r, pid, pid, tc.signals_s.as_ref(), true))?;
    if let Some(d) = p.mm.dumpable {
        step(pid, "dumpable", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_DUMPABLE as u64, d as u64]))?;
    }
    if let Some(sig) = th.pdeath_sig.filter(|&s| s != 0) {
        if c.opts.detached && i == 0 {
            tracing::warn!("pid {pid}: its parent-death signal {sig} is restored; its parent is now rcr, so it is sent when rcr restore -d exits");
        }
    }
    thread_attrs(r, c, pid, &th, core.thread_info.as_ref(), false)?;
    // The last call unmaps the trampoline; the task stops at its syscall exit, never returning there.
    step(pid, "unmap the trampoline", remote.last_syscall(libc::SYS_munmap, &[c.tramp, TRAMP_LEN]))?;
    let ti = core.thread_info.as_ref().ok_or_else(|| Error::Msg("core has no thread_info".into()))?;
    step(pid, "registers", cpu::restore(tracee, ti))?;
    step(pid, "signal mask", tracee.set_sigmask(th.blk_sigset.unwrap_or(tc.blk_sigset)))?;
    Ok(threads)
}

/// The per-thread attributes set in the thread itself, in an order that keeps the privileges each step
/// needs: sigaltstack, clear_child_tid, rseq, name, credentials, pdeath signal, no_new_privs, seccomp
/// (last: it applies to every later call). Scratch memory is released at the end.
/// What the kernel gives every new task anyway is not set again when the image asks for the same
/// (copy_process clears the robust list and the pdeath signal of every task, and the altstack of a
/// CLONE_VM thread); what it inherits from rcr is (a forked process's altstack, credentials that are
/// not rcr's own).
fn thread_attrs(r: &mut Remote<'_>, c: &Ctx<'_>, tid: i32, th: &pb::ThreadCoreEntry, ti: Option<&pb::ThreadInfoX86>, fresh_thread: bool) -> Result<()> {
    step(tid, "sigaltstack", signals::restore_sas(r, th.sas.as_ref(), fresh_thread))?;
    if let Some(ti) = ti {
        step(tid, "clear_child_tid", r.syscall_ok(libc::SYS_set_tid_address, &[ti.clear_tid_addr]).map(|_| ()))?;
    }
    // rcr's own rseq registration was dropped in the root before it created anything (make_trampoline);
    // children and threads start unregistered.
    step(tid, "rseq", task::restore_rseq(r, th.rseq_entry.as_ref()))?;
    if th.futex_rla != 0 {
        step(tid, "robust futex list", r.syscall_ok(libc::SYS_set_robust_list, &[th.futex_rla, th.futex_rla_len as u64]).map(|_| ()))?;
    }
    if let Some(comm) = &th.comm {
        let name = r.scratch_put(&nul(comm))?;
        step(tid, "comm", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_NAME as u64, name]))?;
    }
    if let Some(creds) = th.creds.as_ref().filter(|cr| !c.own.same_creds(cr)) {
        step(tid, "credentials", task::restore_creds(r, creds))?;
    }
    if let Some(sig) = th.pdeath_sig.filter(|&s| s != 0) {
        step(tid, "pdeath signal", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_PDEATHSIG as u64, sig as u64]))?;
    }
    // CRIU's creds.no_new_privs; rcr's own field from before it had that.
    if th.creds.as_ref().and_then(|c| c.no_new_privs).is_some_and(|n| n != 0) || th.rcr_no_new_privs == Some(true) {
        step(tid, "no_new_privs", r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0]))?;
    }
    if let (Some(idx), Some(mode)) = (th.seccomp_filter, th.seccomp_mode) {
        if mode == pb::SeccompMode::Filter as i32 {
            step(tid, "seccomp", task::restore_seccomp(r, &c.img.seccomp, idx))?;
        }
    }
    step(tid, "release scratch memory", r.release_scratch())?;
    Ok(())
}

/// Builds a thread created in a restored process: its attributes, then its registers and mask.
fn build_thread(t: &Tracee, c: &Ctx<'_>, core: &pb::CoreEntry) -> Result<()> {
    let tid = t.tid();
    let th = core.thread_core.clone().unwrap_or_default();
    if let (Some(policy), Some(prio), Some(nice)) = (th.sched_policy, th.sched_prio, th.sched_nice) {
        task::restore_sched(tid, policy, prio, nice)?;
    }
    let mut r = Remote::at_site(t, c.tramp)?;
    thread_attrs(&mut r, c, tid, &th, core.thread_info.as_ref(), true)?;
    r.cure()?;
    let ti = core.thread_info.as_ref().ok_or_else(|| Error::Msg(format!("thread {tid}: core has no thread_info")))?;
    cpu::restore(t, ti)?;
    t.set_sigmask(th.blk_sigset.unwrap_or(0))?;
    Ok(())
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// After the areas are mapped: the vDSO must be where the task had it, or its calls would jump into
/// nothing.
fn check_vdso_layout(pid: i32, vmas: &[pb::VmaEntry]) -> Result<()> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| Error::Io { ctx: format!("reading /proc/{pid}/maps"), source: e })?;
    for v in vmas.iter().filter(|v| v.status & mem::VMA_AREA_VDSO != 0) {
        let want = format!("{:x}-{:x} ", v.start, v.end);
        if !maps.lines().any(|l| l.starts_with(&want) && l.ends_with("[vdso]")) {
            return Err(Error::Msg(format!(
                "pid {pid}: the vDSO could not be placed at {:#x}-{:#x} as at dump time (this kernel's vDSO layout differs from the dumping kernel's)",
                v.start, v.end
            )));
        }
    }
    Ok(())
}

fn set_mm_map(r: &mut Remote<'_>, mm: &pb::MmEntry, exe_fd: i32) -> Result<()> {
    let auxv: Vec<u8> = mm.mm_saved_auxv.iter().flat_map(|w| w.to_le_bytes()).collect();
    let auxv_addr = r.scratch_put(&auxv)?;
    let mut m = Vec::with_capacity(104);
    for v in [mm.mm_start_code, mm.mm_end_code, mm.mm_start_data, mm.mm_end_data, mm.mm_start_brk, mm.mm_brk,
        mm.mm_start_stack, mm.mm_arg_start, mm.mm_arg_end, mm.mm_env_start, mm.mm_env_end, auxv_addr]
    {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&(auxv.len() as u32).to_le_bytes());
    m.extend_from_slice(&(exe_fd as u32).to_le_bytes());
    let addr = r.scratch_put(&m)?;
    r.syscall_ok(libc::SYS_prctl, &[libc::PR_SET_MM as u64, libc::PR_SET_MM_MAP as u64, addr, m.len() as u64, 0])?;
    Ok(())
}

/// Waits for the restored task (rcr's child) to end; its exit status, or 128 + the signal that killed it.
fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        let status = match sys::waitpid_status(pid, 0) {
            Ok((_, status)) => status,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(Error::Io { ctx: format!("waiting for restored pid {pid}"), source: e }),
        };
        if libc::WIFEXITED(status) {
            return Ok(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(128 + libc::WTERMSIG(status));
        }
    }
}
