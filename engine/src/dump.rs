//! `dump`: freeze a process, write its state to the images directory, then kill it (or, with
//! leave_running, let it go on). This module only sequences the stages; each kind of state is dumped by
//! its module in [`crate::kinds`].
//!
//! The target is never lost: every path out of here detaches from it (the [`Tracee`]/[`Remote`] guards do
//! so on drop), the remote-syscall phase is short and comes before the long memory copy, and the task is
//! killed only after every image is written. If rcr itself dies, the kernel detaches the task.

use crate::compel::{Remote, Tracee};
use crate::image::{pb, ImageDir, ImageName};
use crate::kinds::{cpu, mem, posix_timers, regfile, signals, task, FileKind};
use crate::options::DumpOpts;
use crate::plugins::Plugins;
use crate::proc::{PosixTimer, ProcDir, Vma};
use crate::{sys, Error, Result};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};
use nix::unistd::Pid;

/// What a dump did, for the log and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct DumpStats {
    pub pid: i32,
    pub pages_scanned: u64,
    pub pages_written: u64,
    /// From the freeze to the end of the dump (the task did not run meanwhile).
    pub frozen: Duration,
    /// Time spent copying memory.
    pub memdump: Duration,
}

impl std::fmt::Display for DumpStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dumped pid {}: {} pages written of {} scanned; frozen {:.3} ms, memory copy {:.3} ms",
            self.pid,
            self.pages_written,
            self.pages_scanned,
            self.frozen.as_secs_f64() * 1e3,
            self.memdump.as_secs_f64() * 1e3
        )
    }
}

/// Stops the dump when it was cancelled ([`DumpOpts::cancel`]), leaving the target running.
fn check_interrupted(opts: &DumpOpts, pid: i32) -> Result<()> {
    if opts.cancel.is_cancelled() {
        return Err(Error::Msg(format!("dump of pid {pid} interrupted; the process was left running")));
    }
    Ok(())
}

pub use crate::kinds::FileTable;

fn fstat(fd: &impl AsRawFd, what: &str) -> Result<libc::stat> {
    nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| Error::Io { ctx: format!("fstat of {what}"), source: e.into() })
}

/// A frozen process of the tree: its threads are seized (leader first), or it is a zombie.
pub struct Frozen {
    pub pid: i32,
    /// Parent's pid; 0 for the root of the dump.
    pub ppid: i32,
    pub proc: ProcDir,
    pub stat: crate::proc::Stat,
    pub zombie: bool,
    pub threads: Vec<Tracee>,
}

/// Freezes the tree rooted at `root`: every thread of every descendant. Threads and children that
/// appear while rcr freezes are caught by scanning again until a scan finds nothing new.
/// A thread the kernel runs for the task (io_uring's workers) cannot be stopped: it stays as it is if a
/// plugin says so (`kernel_thread`), else the freeze fails naming it.
fn freeze_tree(root: i32, timeout: Duration, plugins: &Plugins) -> Result<Vec<Frozen>> {
    let mut let_be: Vec<i32> = Vec::new();
    let mut tree: Vec<Frozen> = Vec::new();
    loop {
        let mut changed = false;
        let mut queue = std::collections::VecDeque::from([(root, 0)]);
        while let Some((pid, ppid)) = queue.pop_front() {
            let idx = match tree.iter().position(|f| f.pid == pid) {
                Some(i) => i,
                None => {
                    let proc = ProcDir::open(pid).map_err(|e| Error::Msg(format!("cannot dump pid {pid}: {e}")))?;
                    let stat = proc.stat()?;
                    tree.push(Frozen { pid, ppid, zombie: stat.state == 'Z', stat, proc, threads: Vec::new() });
                    changed = true;
                    tree.len() - 1
                }
            };
            if tree[idx].zombie {
                continue;
            }
            let mut tids = tree[idx].proc.task_ids()?;
            tids.sort_by_key(|&t| (t != pid, t));
            for tid in tids {
                if tree[idx].threads.iter().any(|t| t.tid() == tid) || let_be.contains(&tid) {
                    continue;
                }
                if let Some(ts) = tree[idx].proc.thread_stat(tid).ok().filter(|s| s.flags & crate::proc::PF_IO_WORKER != 0) {
                    let Some(owner) = plugins.kernel_thread_may_stay(pid, tid, &ts.comm)? else {
                        return Err(Error::Msg(format!(
                            "cannot freeze pid {pid}: its thread {tid} ({}) is run by the kernel (an io_uring worker), which ptrace cannot stop, and no plugin said it may stay; checkpoint the io_uring with a plugin that claims it",
                            ts.comm
                        )));
                    };
                    tracing::info!("pid {pid}: kernel thread {tid} ({}) stays as it is (plugin '{owner}')", ts.comm);
                    let_be.push(tid);
                    continue;
                }
                let t = Tracee::seize(tid, timeout).map_err(|e| Error::Msg(format!("cannot freeze pid {pid} (thread {tid}): {e}")))?;
                tree[idx].threads.push(t);
                changed = true;
            }
            let tids: Vec<i32> = tree[idx].threads.iter().map(|t| t.tid()).collect();
            for tid in tids {
                for child in tree[idx].proc.children(tid).unwrap_or_default() {
                    queue.push_back((child, pid));
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Leader first in every process (a late-seized leader cannot happen: it is seized first).
    tracing::info!(
        "froze {} process(es), {} thread(s)",
        tree.len(),
        tree.iter().map(|f| f.threads.len()).sum::<usize>()
    );
    Ok(tree)
}

/// Dumps the process tree rooted at `opts.pid` into `opts.images_dir`.
pub fn dump(opts: &DumpOpts) -> Result<DumpStats> {
    let pid = opts.pid;
    let dir = opts.images_dir.as_path();
    prepare_dir(dir)?;
    // plugins: load and init them; a failing plugin stops the dump before anything is frozen.
    let mut plugins = Plugins::load(opts.plugin_dir.as_deref(), rcr_plugin_api::RCR_STAGE_DUMP, dir, &opts.to_json())?;
    plugins.init()?;
    ProcDir::open(pid).map_err(|e| Error::Msg(format!("cannot dump pid {pid}: {e}")))?;
    // What this rcr and this kernel can do, read before anything is frozen.
    let features = crate::check::Features::probe_for_dump()?;
    let own = task::OwnPrivileges::read()?;
    plugins.pause_devices(pid)?; // plugins: before the freeze
    let started = Instant::now();
    let tree = freeze_tree(pid, opts.freeze_timeout, &plugins)?;
    if tree[0].zombie {
        return Err(Error::Msg(format!("pid {pid} is a zombie; there is nothing to dump")));
    }
    let mut stats = DumpStats { pid, ..Default::default() };
    // plugins: fini(ok) after a good dump (its failure fails the dump); on errors, fini(failed) on drop.
    let r = dump_tree(opts, features, own, &tree, &mut stats, &plugins).and_then(|()| Ok(plugins.fini(true)?));
    stats.frozen = started.elapsed();
    match r {
        Ok(()) => {
            write_stats(dir, &stats)?;
            if opts.leave_running {
                drop(tree);
                tracing::info!("pid {pid} left running");
            } else {
                kill_dumped(tree)?;
            }
            Ok(stats)
        }
        Err(e) => {
            // Dropping the tracees detaches; the tree goes on as if nothing happened.
            drop(tree);
            Err(e)
        }
    }
}

fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { ctx: format!("cannot create images directory {}", dir.display()), source: e })?;
    let probe = dir.join(".rcr-write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::Io { ctx: format!("images directory {} is not writable", dir.display()), source: e })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn kill_dumped(tree: Vec<Frozen>) -> Result<()> {
    let mut fds = Vec::new();
    for f in tree.iter().filter(|f| !f.zombie) {
        let pidfd = sys::pidfd_open(Pid::from_raw(f.pid), 0)?;
        sys::pidfd_send_signal(pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL)?;
        fds.push((f.pid, pidfd));
    }
    // Killed threads stay ptrace zombies until their tracer collects them: collect them, or the
    // processes never finish exiting.
    // Other threads first: a leader's exit is reported only after all its threads have exited.
    for t in tree.iter().flat_map(|f| f.threads.iter().rev()) {
        for _ in 0..3 {
            if t.wait_stop(Duration::from_secs(5)).is_err() {
                break;
            }
        }
    }
    drop(tree);
    // Wait (bounded) until they are gone, so that their PIDs are free for a restore as soon as their
    // parents reap them.
    for (pid, pidfd) in fds {
        if !wait_readable(pidfd.as_fd(), Duration::from_secs(10))? {
            return Err(Error::Msg(format!("pid {pid} did not exit within 10 s of SIGKILL after the dump")));
        }
        tracing::info!("pid {pid} killed after the dump");
    }
    Ok(())
}

/// Waits until `fd` is readable (a pidfd: the process exited); false on timeout.
fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, ms) {
            Ok(n) => return Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Io { ctx: "poll on a pidfd".into(), source: e.into() }),
        }
    }
}

struct TaskState {
    prctls: task::Prctls,
    sigactions: Vec<pb::SaEntry>,
    itimers: pb::TaskTimersEntry,
    sas: pb::ThreadSasEntry,
    brk: u64,
    rlimits: pb::TaskRlimitsEntry,
}

/// Everything that needs the task to execute system calls, in one short phase.
fn remote_phase(tracee: &Tracee, pid: i32, ptimers: &[PosixTimer]) -> Result<TaskState> {
    let mut remote = Remote::inject(tracee)?;
    let prctls = task::dump_prctls(&mut remote)?;
    let sigactions = signals::dump_sigactions(&mut remote)?;
    let mut itimers = task::dump_itimers(&mut remote)?;
    itimers.posix = posix_timers::dump(&mut remote, pid, ptimers)?;
    let sas = signals::dump_sas(&mut remote)?;
    let brk = remote.syscall_ok(libc::SYS_brk, &[0])?;
    let rlimits = task::dump_rlimits(&mut remote)?;
    remote.cure()?;
    Ok(TaskState { prctls, sigactions, itimers, sas, brk, rlimits })
}

/// State shared by the processes of one dump: file ids, fd sharing, namespace-like ids.
#[derive(Default)]
struct TreeCtx {
    files: FileTable,
    /// File ids of the fds dumped so far, by (device, inode) of their file: (pid, fd, file id). Only fds
    /// of the same file can share an open file description, so kcmp compares only those.
    seen_fds: crate::fdtable::SeenFiles,
    /// (pid, ids) of the processes dumped so far.
    ids: Vec<(i32, pb::TaskKobjIdsEntry)>,
    next_ids: [u32; 4],
    seccomp: Vec<pb::SeccompFilter>,
    pstree: Vec<pb::PstreeEntry>,
    /// The kinds of open file, each collecting what it writes at the end ([`crate::kinds::file_kinds`]).
    kinds: Vec<Box<dyn FileKind>>,
    /// What rcr can give back at restore: every task is checked against it before anything is killed.
    own: task::OwnPrivileges,
    /// The kernel's features, probed once when the dump started.
    features: crate::check::Features,
}

impl TreeCtx {
    /// vm/files/fs/sighand ids of `pid`: shared with its parent's when kcmp says the object is the same
    /// (a child made with CLONE_VM, CLONE_FILES, CLONE_FS or CLONE_SIGHAND shares its creator's), new
    /// otherwise. Comparing with the parent only keeps the cost linear in the number of processes.
    fn kobj_ids(&mut self, pid: i32, ppid: i32) -> pb::TaskKobjIdsEntry {
        use sys::KcmpType::{Files, Fs, Sighand, Vm};
        let mut out = [0u32; 4];
        for (k, kind) in [Vm, Files, Fs, Sighand].into_iter().enumerate() {
            let shared = self.ids.iter().find(|(q, _)| {
                *q == ppid && matches!(sys::kcmp(Pid::from_raw(pid), Pid::from_raw(*q), kind, 0, 0), Ok(sys::KcmpResult::Equal))
            });
            out[k] = match shared {
                Some((_, e)) => [e.vm_id, e.files_id, e.fs_id, e.sighand_id][k],
                None => {
                    self.next_ids[k] += 1;
                    self.next_ids[k]
                }
            };
        }
        let e = pb::TaskKobjIdsEntry { vm_id: out[0], files_id: out[1], fs_id: out[2], sighand_id: out[3], ..Default::default() };
        self.ids.push((pid, e));
        e
    }
}

fn dump_tree(opts: &DumpOpts, features: crate::check::Features, own: task::OwnPrivileges, tree: &[Frozen], stats: &mut DumpStats, plugins: &Plugins) -> Result<()> {
    let dir = opts.images_dir.as_path();
    let images = ImageDir::new(dir);
    let mut ctx = TreeCtx { kinds: crate::kinds::file_kinds(), own, features, ..Default::default() };
    for (idx, f) in tree.iter().enumerate() {
        check_interrupted(opts, f.pid)?;
        let entry = pb::PstreeEntry {
            pid: f.pid as u32,
            ppid: f.ppid as u32,
            pgid: f.stat.pgrp as u32,
            sid: f.stat.session as u32,
            threads: if f.zombie { vec![f.pid as u32] } else { f.threads.iter().map(|t| t.tid() as u32).collect() },
        };
        if f.zombie {
            let core = pb::CoreEntry {
                mtype: pb::core_entry::March::X8664 as i32,
                tc: Some(pb::TaskCoreEntry {
                    task_state: TASK_DEAD,
                    exit_code: f.stat.exit_code as u32,
                    comm: f.stat.comm.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            images.write_one(ImageName::Core(f.pid as u32), &core)?;
        } else {
            // plugins: frozen, before files and memory; they may let one frozen thread run (run_thread).
            plugins.with_thread_control(&FrozenThreads(tree), || plugins.checkpoint_devices(f.pid))?;
            dump_process(opts, f, idx as u32 + 1, &mut ctx, stats, plugins)?;
        }
        ctx.pstree.push(entry);
    }
    let root = &tree[0];
    if !ctx.seccomp.is_empty() {
        images.write_one(ImageName::Seccomp, &pb::SeccompEntry { seccomp_filters: std::mem::take(&mut ctx.seccomp) })?;
    }
    let (clocks, had_offsets) = crate::kinds::timens::dump(&root.proc)?;
    images.write_one(ImageName::Timens(1), &clocks)?;
    for k in ctx.kinds.iter_mut() {
        k.finish_dump(dir, &ctx.files)?;
    }
    images.write_all(ImageName::Files, &ctx.files.files)?;
    if !ctx.files.memfds.is_empty() {
        images.write_all(ImageName::MemfdInode, &ctx.files.memfds)?;
    }
    images.write_all(ImageName::Pstree, &ctx.pstree)?;
    plugins.dump_devices_late(root.pid)?; // plugins: every task dumped, before the inventory
    let mut root_ids = ctx.ids.first().map(|(_, e)| *e).unwrap_or_default();
    root_ids.time_ns_id = had_offsets.then_some(1);
    let inv = pb::InventoryEntry {
        img_version: 2,
        fdinfo_per_id: Some(true),
        root_ids: Some(root_ids),
        ns_per_id: Some(true),
        lsmtype: Some(pb::Lsmtype::NoLsm as i32),
        rcr_plugins: plugins.needed(), // plugins: restore refuses to start without these
        ..Default::default()
    };
    images.write_one(ImageName::Inventory, &inv)?;
    Ok(())
}

/// Thread control for the plugins (`run_thread`): the frozen tree's tracees.
struct FrozenThreads<'a>(&'a [Frozen]);

impl crate::plugins::ThreadControl for FrozenThreads<'_> {
    fn run_thread(&self, pid: i32, tid: i32, dur: Duration) -> std::result::Result<(), String> {
        let f = self.0.iter().find(|f| f.pid == pid && !f.zombie).ok_or_else(|| format!("pid {pid} is not a live process of the dumped tree"))?;
        let t = f.threads.iter().find(|t| t.tid() == tid).ok_or_else(|| format!("thread {tid} is not a thread of pid {pid}"))?;
        t.run_for(dur).map_err(|e| format!("letting thread {tid} of pid {pid} run: {e}"))
    }
}

/// CRIU's task states (core_entry.tc.task_state).
pub const TASK_ALIVE: u32 = 1;
pub const TASK_DEAD: u32 = 2;
pub const TASK_STOPPED: u32 = 3;

/// Per-thread state, read from a stopped thread.
struct ThreadDump {
    info: pb::ThreadInfoX86,
    core: pb::ThreadCoreEntry,
}

/// What a non-leader thread runs remotely: its sigaltstack, clear_child_tid address, pdeath signal.
fn thread_remote(t: &Tracee) -> Result<(pb::ThreadSasEntry, u64, u32)> {
    let mut remote = Remote::inject(t)?;
    let sas = signals::dump_sas(&mut remote)?;
    let tid_addr = remote.get_tid_address()?;
    let pdeath = remote.scratch_put(&[0u8; 8])?;
    remote.syscall_ok(libc::SYS_prctl, &[libc::PR_GET_PDEATHSIG as u64, pdeath])?;
    let mut w = [0u8; 4];
    remote.scratch_get(pdeath, &mut w)?;
    remote.cure()?;
    Ok((sas, tid_addr, u32::from_le_bytes(w)))
}

/// `leader` is the process-wide state read through the leader (Some for the leader itself), with the
/// leader's /proc status, which is read once per process.
fn dump_thread(t: &Tracee, pid: i32, proc: &ProcDir, ctx: &mut TreeCtx, leader: Option<(&TaskState, &crate::proc::Status)>) -> Result<ThreadDump> {
    let tid = t.tid();
    let tproc = proc.task(tid)?;
    let status = match leader {
        Some((_, st)) => st.clone(),
        None => tproc.status()?,
    };
    ctx.own.check_creds(pid, tid, &status).map_err(left_running)?;
    let seccomp = &mut ctx.seccomp;
    let leader = leader.map(|(ts, _)| ts);
    let blocked = t.sigmask()?;
    let mut regs = t.regs()?;
    cpu::fixup_syscall_restart(&mut regs);
    let mut gpregs = cpu::regs_to_pb(&regs);
    let rseq = task::dump_rseq(t, tid, &mut gpregs)?;
    let fpregs = cpu::xsave_to_pb(&t.xstate()?)?;
    let signals_p = signals::dump_queue(t, false)?;
    let seccomp_filter = task::dump_seccomp(t, seccomp)?;
    let (sas, clear_tid_addr, pdeath_sig, secbits) = match leader {
        Some(ts) => (ts.sas, ts.prctls.clear_tid_addr, ts.prctls.pdeath_sig, ts.prctls.secbits),
        None => {
            let (sas, a, p) = thread_remote(t)?;
            (sas, a, p, leader.map_or(0, |l| l.prctls.secbits))
        }
    };
    let (policy, prio, nice) = task::dump_sched(tid)?;
    let comm = tproc.comm()?;
    let (futex_rla, futex_rla_len) = task::robust_list(tid)?;
    let _ = pid;
    Ok(ThreadDump {
        info: pb::ThreadInfoX86 { clear_tid_addr, gpregs, fpregs, tls: Vec::new() },
        core: pb::ThreadCoreEntry {
            futex_rla,
            futex_rla_len,
            sched_nice: Some(nice),
            sched_policy: Some(policy),
            sched_prio: Some(prio),
            blk_sigset: Some(blocked),
            sas: Some(sas),
            pdeath_sig: Some(pdeath_sig),
            signals_p,
            creds: Some(task::dump_creds(&status, secbits)),
            seccomp_mode: Some(if seccomp_filter.is_some() { pb::SeccompMode::Filter } else { pb::SeccompMode::Disabled } as i32),
            seccomp_filter,
            comm: Some(comm),
            rseq_entry: rseq,
            ..Default::default()
        },
    })
}

fn dump_process(opts: &DumpOpts, f: &Frozen, pages_id: u32, ctx: &mut TreeCtx, stats: &mut DumpStats, plugins: &Plugins) -> Result<()> {
    let pid = f.pid;
    let dir = opts.images_dir.as_path();
    let images = ImageDir::new(dir);
    let proc = &f.proc;
    let stat = &f.stat;
    let status = proc.status()?;
    let vmas = proc.smaps()?;
    let leader = &f.threads[0];
    ctx.own.check_namespaces(pid).map_err(left_running)?;
    let ptimers = proc.timers()?;
    posix_timers::check(pid, &ptimers)?;
    let signals_s = signals::dump_queue(leader, true)?;
    let ts = remote_phase(leader, pid, &ptimers)?;
    ctx.own.check_rlimits(pid, &ts.rlimits).map_err(left_running)?;
    check_interrupted(opts, pid)?;
    let mut threads = Vec::with_capacity(f.threads.len());
    for (i, t) in f.threads.iter().enumerate() {
        threads.push(dump_thread(t, pid, proc, ctx, (i == 0).then_some((&ts, &status)))?);
    }
    let secbits = ts.prctls.secbits;
    for th in threads.iter_mut().skip(1) {
        if let Some(c) = th.core.creds.as_mut() {
            c.secbits = secbits;
        }
    }
    check_interrupted(opts, pid)?;

    let ids = ctx.kobj_ids(pid, f.ppid);
    let pidfd = sys::pidfd_open(Pid::from_raw(pid), 0)?;
    let shares_files = ctx.ids[..ctx.ids.len() - 1].iter().any(|(_, e)| e.files_id == ids.files_id);
    if !shares_files {
        let task = crate::fdtable::TaskFds { opts, proc, pidfd: pidfd.as_fd(), stat };
        let fdinfos = crate::fdtable::dump_fds(&task, &mut ctx.files, &mut ctx.seen_fds, &mut ctx.kinds, plugins)?;
        images.write_all(ImageName::Fdinfo(ids.files_id), &fdinfos)?;
    }
    let files = &mut ctx.files;
    let (cwd_id, root_id) = dump_fs_files(proc, files)?;
    let exe_id = {
        let exe = proc.exe()?.to_string_lossy().into_owned();
        // Through the link: a deleted executable opens too (and is saved as a ghost).
        let f = proc.openat("exe", nix::fcntl::OFlag::O_RDONLY).map_err(|e| Error::Msg(format!("pid {pid}: opening its executable {exe}: {e}")))?;
        let st = fstat(&f, &exe)?;
        regfile::dump_file(files, pid, "its executable", &exe, false, f.as_fd(), &st, libc::O_RDONLY as u32, opts)?
    };
    let areas = dump_vmas(pid, proc, &vmas, files, plugins, opts)?;
    for (v, kind) in &areas {
        if matches!(kind, mem::AreaKind::Memfd { .. }) && !ctx.files.memfds.iter().any(|m| m.inode_id == v.shmid) {
            let src = vmas.iter().find(|m| m.start == v.start).and_then(|m| m.path.clone()).unwrap_or_default();
            let f = std::fs::File::from(proc.map_files_open(v.start, v.end, nix::fcntl::OFlag::O_RDONLY)?);
            crate::kinds::memfd::save_inode(dir, &mut ctx.files, &f, &src, v.shmid)?;
        }
    }
    check_interrupted(opts, pid)?;

    let t0 = Instant::now();
    let ms = mem::dump_pages(dir, pid, pages_id, &areas, ctx.features.pagemap_scan)?;
    stats.memdump += t0.elapsed();
    stats.pages_scanned += ms.pages_scanned;
    stats.pages_written += ms.pages_written;
    check_interrupted(opts, pid)?;

    let mm = pb::MmEntry {
        mm_start_code: stat.start_code,
        mm_end_code: stat.end_code,
        mm_start_data: stat.start_data,
        mm_end_data: stat.end_data,
        mm_start_stack: stat.start_stack,
        mm_start_brk: stat.start_brk,
        mm_brk: ts.brk,
        mm_arg_start: stat.arg_start,
        mm_arg_end: stat.arg_end,
        mm_env_start: stat.env_start,
        mm_env_end: stat.env_end,
        exe_file_id: exe_id,
        mm_saved_auxv: proc.auxv()?.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        vmas: areas.iter().map(|(v, _)| *v).collect(),
        dumpable: Some(ts.prctls.dumpable),
        aios: Vec::new(),
        thp_disabled: Some(ts.prctls.thp_disabled),
    };
    images.write_one(ImageName::Mm(pid as u32), &mm)?;
    let task_state = if leader.was_stopped() { TASK_STOPPED } else { TASK_ALIVE };
    let tc = pb::TaskCoreEntry {
        task_state,
        exit_code: 0,
        personality: proc.personality()?,
        flags: stat.flags,
        blk_sigset: threads[0].core.blk_sigset.unwrap_or(0),
        comm: stat.comm.clone(),
        timers: Some(ts.itimers),
        rlimits: Some(ts.rlimits),
        signals_s,
        old_seccomp_mode: None,
        oom_score_adj: proc.oom_score_adj().ok(),
        loginuid: proc.loginuid().ok(),
        sigactions: ts.sigactions,
        child_subreaper: Some(ts.prctls.child_subreaper),
        ..Default::default()
    };
    let mut tc = Some(tc);
    for (t, th) in f.threads.iter().zip(threads) {
        let core = pb::CoreEntry {
            mtype: pb::core_entry::March::X8664 as i32,
            thread_info: Some(th.info),
            tc: tc.take(),
            thread_core: Some(th.core),
            ..Default::default()
        };
        images.write_one(ImageName::Core(t.tid() as u32), &core)?;
    }
    images.write_one(ImageName::Ids(pid as u32), &ids)?;
    images.write_one(ImageName::Fs(pid as u32), &pb::FsEntry { cwd_id, root_id, umask: status.umask })?;
    Ok(())
}

/// A check that fails the dump before anything is killed says so.
fn left_running(e: Error) -> Error {
    Error::Msg(format!("{e}; the process was left running"))
}

fn write_stats(dir: &Path, s: &DumpStats) -> Result<()> {
    let us = |d: Duration| d.as_micros() as u32;
    let e = pb::StatsEntry {
        dump: Some(pb::DumpStatsEntry {
            freezing_time: 0,
            frozen_time: us(s.frozen),
            memdump_time: us(s.memdump),
            memwrite_time: us(s.memdump),
            pages_scanned: s.pages_scanned,
            pages_skipped_parent: 0,
            pages_written: s.pages_written,
            ..Default::default()
        }),
        restore: None,
    };
    Ok(ImageDir::new(dir).write_one(ImageName::Stats, &e)?)
}

fn dump_fs_files(proc: &ProcDir, files: &mut FileTable) -> Result<(u32, u32)> {
    let pid = proc.pid();
    let mut ids = [0u32; 2];
    for (i, (what, path)) in [("cwd", proc.cwd()?), ("root", proc.root()?)].into_iter().enumerate() {
        let path = path.to_string_lossy().into_owned();
        regfile::check_path(pid, &format!("its {what}"), &path)?;
        let f = std::fs::File::open(&path).map_err(|e| Error::Io { ctx: format!("pid {pid}: opening its {what} {path}"), source: e })?;
        let st = fstat(&f, &path)?;
        ids[i] = files.add_reg(&path, (libc::O_RDONLY | libc::O_DIRECTORY) as u32, 0, &st);
    }
    Ok((ids[0], ids[1]))
}

/// The task's memory areas as vma entries, the files behind file mappings added to the file table.
/// Areas the core cannot handle (device memory, special mappings) and mappings of files under /dev are
/// offered to the plugins first.
fn dump_vmas(pid: i32, proc: &ProcDir, vmas: &[Vma], files: &mut FileTable, plugins: &Plugins, opts: &DumpOpts) -> Result<Vec<(pb::VmaEntry, mem::AreaKind)>> {
    let mut out = Vec::with_capacity(vmas.len());
    for v in vmas {
        let classified = mem::classify(pid, v);
        let device = v.path.as_deref().is_some_and(|p| p.starts_with("/dev/")) && !v.deleted;
        if classified.is_err() || device {
            // plugins: a device area; the plugin that claims it maps it again at restore.
            if let Some(claim) = plugins.dump_vma(pid, v, &mut || files.next_id())? {
                files.files.push(claim.file_entry());
                let kind = mem::AreaKind::Plugin { shared: v.shared };
                let mut e = mem::vma_entry(v, kind);
                e.shmid = claim.id as u64;
                out.push((e, kind));
                continue;
            }
        }
        let kind = classified.map_err(|e| match e {
            Error::Msg(m) if m.ends_with("unknown special mapping") => Error::Msg(format!("{m}; no plugin claimed it")),
            e => e,
        })?;
        let mut e = mem::vma_entry(v, kind);
        if matches!(kind, mem::AreaKind::AnonShared | mem::AreaKind::Memfd { .. }) {
            // The shmem inode identifies the memory: processes sharing it map one object at restore.
            e.shmid = v.inode;
        }
        if matches!(kind, mem::AreaKind::FilePrivate | mem::AreaKind::FileShared) {
            let path = v.path.clone().unwrap_or_default();
            let f = proc.map_files_open(v.start, v.end, nix::fcntl::OFlag::O_RDONLY)?;
            let st = fstat(&f, &path)?;
            // A shared mapping that may become writable (VM_MAYWRITE) needs the file open for writing.
            let flags = if v.shared && v.vm_flags.contains("mw") { libc::O_RDWR } else { libc::O_RDONLY };
            let what = format!("the file mapped at {:#x}", v.start);
            e.shmid = regfile::dump_file(files, pid, &what, &path, v.deleted, f.as_fd(), &st, flags as u32, opts)? as u64;
            e.fdflags = Some(flags as u32);
        }
        out.push((e, kind));
    }
    Ok(out)
}
