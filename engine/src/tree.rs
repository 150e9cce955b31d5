//! The process tree: dump and restore side by side.
//!
//! Dump: freeze every thread of every process of the tree ([`freeze_tree`]), give each process its
//! vm/files/fs/sighand ids ([`KobjIds`]), write its pstree entry (and a zombie's core), and kill the
//! tree after a good dump ([`kill_dumped`]).
//! Restore: check that every pid is free, create the root at its pid and have each task create its
//! children at theirs top-down ([`create_tree`]), put them into their sessions and process groups,
//! set up the zombies-to-be ([`prepare_exit`]), kill everything on failure ([`ChildGuard`]) and let the
//! ready tasks go together ([`Ready`]).

use crate::checkpoint::Images;
use crate::compel::{Remote, Tracee};
use crate::ctx::step;
use crate::image::{pb, ImageDir, ImageName};
use crate::kinds::{mm, task};
use crate::plugins::Plugins;
use crate::proc::ProcDir;
use crate::{sys, Context, Error, Result};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::time::Duration;

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
pub fn freeze_tree(root: i32, timeout: Duration, plugins: &Plugins) -> Result<Vec<Frozen>> {
    let mut let_be: Vec<i32> = Vec::new();
    let mut tree: Vec<Frozen> = Vec::new();
    loop {
        let mut changed = false;
        let mut queue = std::collections::VecDeque::from([(root, 0)]);
        while let Some((pid, ppid)) = queue.pop_front() {
            let idx = match tree.iter().position(|f| f.pid == pid) {
                Some(i) => i,
                None => {
                    let proc = ProcDir::open(pid).at_task(pid, "cannot dump it")?;
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
                        return Err(Error::unsupported(
                            format!("its thread {tid} ({}) is run by the kernel (an io_uring worker), which ptrace cannot stop, and no plugin said it may stay", ts.comm),
                            "checkpoint the io_uring with a plugin that claims it",
                        )
                        .at_task(pid, "cannot freeze it"));
                    };
                    tracing::info!("pid {pid}: kernel thread {tid} ({}) stays as it is (plugin '{owner}')", ts.comm);
                    let_be.push(tid);
                    continue;
                }
                let t = Tracee::seize(tid, timeout).at_task_with(pid, || format!("cannot freeze it (thread {tid})"))?;
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

/// Detaches from the dumped tree leaving every process stopped (criu's `--leave-stopped`): SIGSTOP is
/// queued to each process while it is still frozen (a detach's signal is dropped in a ptrace event
/// stop), so it stops as soon as it is let go; this returns once each shows as stopped.
pub fn leave_stopped(tree: Vec<Frozen>) -> Result<()> {
    let live: Vec<i32> = tree.iter().filter(|f| !f.zombie).map(|f| f.pid).collect();
    for &pid in &live {
        let pidfd = sys::pidfd_open(Pid::from_raw(pid), 0)?;
        sys::pidfd_send_signal(pidfd.as_fd(), nix::sys::signal::Signal::SIGSTOP)?;
    }
    drop(tree);
    for pid in live {
        wait_state(pid, 'T');
        tracing::info!("pid {pid} left stopped");
    }
    Ok(())
}

pub fn kill_dumped(tree: Vec<Frozen>) -> Result<()> {
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
            return Err(Error::Timeout(format!("pid {pid} did not exit within 10 s of SIGKILL after the dump")));
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

/// Thread control for the plugins (`run_thread`): the frozen tree's tracees.
pub struct FrozenThreads<'a>(pub &'a [Frozen]);

impl crate::plugins::ThreadControl for FrozenThreads<'_> {
    fn run_thread(&self, pid: i32, tid: i32, dur: Duration) -> Result<()> {
        let refused = |what: String| Error::from(crate::plugins::PluginError::Refused(what));
        let f = self.0.iter().find(|f| f.pid == pid && !f.zombie).ok_or_else(|| refused(format!("pid {pid} is not a live process of the dumped tree")))?;
        let t = f.threads.iter().find(|t| t.tid() == tid).ok_or_else(|| refused(format!("thread {tid} is not a thread of pid {pid}")))?;
        t.run_for(dur).at_task_with(pid, || format!("letting thread {tid} run"))
    }
}

/// The vm/files/fs/sighand ids of the processes dumped so far (the `ids` images).
#[derive(Default)]
pub struct KobjIds {
    /// (pid, ids) in dump order, the root first.
    pub ids: Vec<(i32, pb::TaskKobjIdsEntry)>,
    next_ids: [u32; 4],
}

impl KobjIds {
    /// vm/files/fs/sighand ids of `pid`: shared with its parent's when kcmp says the object is the same
    /// (a child made with CLONE_VM, CLONE_FILES, CLONE_FS or CLONE_SIGHAND shares its creator's), new
    /// otherwise. Comparing with the parent only keeps the cost linear in the number of processes.
    pub fn of(&mut self, pid: i32, ppid: i32) -> pb::TaskKobjIdsEntry {
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

    /// Whether the process whose ids were added last shares its fd table with one dumped before.
    pub fn last_shares_files(&self) -> bool {
        let Some(((_, last), before)) = self.ids.split_last() else { return false };
        before.iter().any(|(_, e)| e.files_id == last.files_id)
    }

    /// The inventory's root_ids: as CRIU's, the ids of the dumping process itself — rcr's own memory,
    /// files, fs and signal handlers, which no task of the tree shares (CRIU 4.2's restore refuses a
    /// root task that shares its files with them: "Image corruption on kIDs data").
    pub fn root(&self) -> pb::TaskKobjIdsEntry {
        let n = self.next_ids;
        let root = self.ids.first().map(|(_, e)| *e).unwrap_or_default();
        pb::TaskKobjIdsEntry { vm_id: n[0] + 1, files_id: n[1] + 1, fs_id: n[2] + 1, sighand_id: n[3] + 1, ..root }
    }
}

/// The pstree entry of a frozen process.
pub fn pstree_entry(f: &Frozen) -> pb::PstreeEntry {
    pb::PstreeEntry {
        pid: f.pid as u32,
        ppid: f.ppid as u32,
        pgid: f.stat.pgrp as u32,
        sid: f.stat.session as u32,
        threads: if f.zombie { vec![f.pid as u32] } else { f.threads.iter().map(|t| t.tid() as u32).collect() },
    }
}

/// A zombie's core: its state and exit code only.
pub fn dump_zombie(images: &ImageDir, f: &Frozen) -> Result<()> {
    let core = pb::CoreEntry {
        mtype: pb::core_entry::March::X8664 as i32,
        tc: Some(pb::TaskCoreEntry { task_state: task::TASK_DEAD, exit_code: f.stat.exit_code as u32, comm: f.stat.comm.clone(), ..Default::default() }),
        ..Default::default()
    };
    Ok(images.write_one(ImageName::Core(f.pid as u32), &core)?)
}


/// Kills every task created so far unless disarmed (and reaps the root, rcr's child): half a restore
/// never runs.
pub struct ChildGuard {
    root: i32,
    pub pids: std::cell::RefCell<Vec<i32>>,
    pub armed: bool,
}

impl ChildGuard {
    pub fn kill_all(&self) {
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
            return Err(Error::conflict(format!("pid {pid} is in use by {what}"), Some("stop that process first, rcr restores at the original PID")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every pid and thread id of the checkpoint is free (a zombie holding one is waited for, bounded).
pub fn check_pids_free(img: &Images, timeout: Duration) -> Result<()> {
    for p in &img.procs {
        check_pid_free(p.pid(), timeout)?;
        for &tid in p.pstree.threads.iter().skip(1) {
            check_pid_free(tid as i32, timeout)?;
        }
    }
    Ok(())
}

/// Creates the root task at its pid: it stops itself, traced, for rcr to take over. The guard kills
/// it (and every task created after it) unless disarmed.
pub fn spawn_root(pid: i32) -> Result<ChildGuard> {
    sys::spawn_traced_at(pid).map_err(|e| match e.errno() {
        Some(sys::Errno::EEXIST) => Error::conflict(format!("pid {pid} was taken while rcr prepared the restore"), Some("stop that process first")),
        _ => Error::from(e).at_task(pid, "cannot create it"),
    })?;
    Ok(ChildGuard { root: pid, pids: std::cell::RefCell::new(vec![pid]), armed: true })
}


/// A created task waiting to be let go, and how.
pub enum Ready {
    Run(Tracee),
    Stopped(Tracee),
    /// A zombie-to-be: its registers call exit_group (or kill) when it is detached.
    Exit(Tracee),
}

/// Thread control for the plugins at restore (`run_thread` in `resume_devices_late`): the restored
/// tasks, built and not yet let go.
pub struct ReadyThreads<'a>(pub &'a [Ready]);

impl crate::plugins::ThreadControl for ReadyThreads<'_> {
    fn run_thread(&self, pid: i32, tid: i32, dur: Duration) -> Result<()> {
        let t = self.0.iter().find_map(|r| match r {
            Ready::Run(t) if t.tid() == tid && t.tgid() == pid => Some(t),
            _ => None,
        });
        let t = t.ok_or_else(|| Error::from(crate::plugins::PluginError::Refused(format!("thread {tid} of pid {pid} is not a restored task that is about to run"))))?;
        t.run_for(dur).at_task_with(pid, || format!("letting thread {tid} run"))
    }
}

impl Ready {
    pub fn release(self) -> Result<()> {
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

/// In the task of `r`, creates a child process (or, with `thread`, a thread) with id `tid`; it starts
/// stopped and traced by rcr.
/// `share` adds clone flags for a process (CLONE_FILES, CLONE_FS: tables it shares with its creator).
pub fn remote_clone(r: &mut Remote<'_>, tid: i32, thread: bool, share: u64, timeout: Duration) -> Result<Tracee> {
    const THREAD_FLAGS: i32 = libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD | libc::CLONE_SYSVSEM;
    let (flags, sig) = if thread { (THREAD_FLAGS as u64, 0) } else { (share, libc::SIGCHLD as u64) };
    let got = r.clone3_set_tid_raw(flags, sig, tid)?;
    if got != tid as i64 {
        let what = if thread { "thread" } else { "process" };
        return Err(if got == -(libc::EEXIST as i64) {
            Error::conflict(format!("{what} {tid} is in use"), Some("stop that process first, rcr restores at the original ids"))
        } else {
            Error::remote(format!("creating {what} {tid}"), got)
        });
    }
    Ok(Tracee::from_auto_attached(tid, timeout)?)
}

/// Creates the whole tree top-down from the root spawned by [`spawn_root`]: each task creates its
/// children at their pids (a session leader calls setsid before), then the process groups are joined.
/// The root gets the trampoline at `tramp` and drops rcr's memory first. Returns the tasks, in the
/// order of `img.procs`.
pub fn create_tree(img: &Images, tramp: u64, timeout: Duration, guard: &ChildGuard) -> Result<Vec<Option<Tracee>>> {
    let root_pid = img.procs[0].pid();
    let root = Tracee::from_traced_child(root_pid, timeout).at_task(root_pid, "the new task did not stop")?;
    root.set_options(libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACECLONE)?;
    step(root_pid, "trampoline", mm::make_trampoline(&root, tramp))?;
    let mut tasks: Vec<Option<Tracee>> = (0..img.procs.len()).map(|_| None).collect();
    tasks[0] = Some(root);
    // Create, top-down: procs are in tree order, so a parent exists before its children.
    for i in 0..img.procs.len() {
        let p = &img.procs[i];
        let pid = p.pid();
        let t = tasks[i].take().ok_or_else(|| Error::Internal(format!("pid {pid}: its parent {} did not create it", p.pstree.ppid)))?;
        {
            let mut r = step(pid, "remote", Remote::at_site(&t, tramp))?;
            if i == 0 {
                // The root drops rcr's memory before it creates anything: its descendants then start
                // with nothing but the trampoline, instead of each sharing (and later unmapping) rcr's
                // pages, which costs time in proportion to the number of tasks sharing them.
                step(pid, "unmap rcr's memory", mm::unmap_all_but_trampoline(&mut r, tramp))?;
            }
            // A session leader leads its own session again, also under --shell-job: only a root whose
            // session is outside the tree (a shell job's) stays in rcr's.
            if p.pstree.sid == p.pstree.pid && !p.zombie {
                step(pid, "setsid", r.setsid())?;
            }
            create_children(&mut r, img, i, timeout, guard, &mut tasks)?;
            step(pid, "release scratch", r.release_scratch())?;
            step(pid, "cure", r.cure())?;
        }
        tasks[i] = Some(t);
    }
    tracing::debug!("created {} processes", img.procs.len());
    join_groups(img, tramp, &tasks)?;
    Ok(tasks)
}

/// Process `i` (in the task of `r`) creates its children.
fn create_children(r: &mut Remote<'_>, img: &Images, i: usize, timeout: Duration, guard: &ChildGuard, tasks: &mut [Option<Tracee>]) -> Result<()> {
    let p = &img.procs[i];
    let pid = p.pid();
    for (j, child) in img.procs.iter().enumerate().skip(i + 1) {
        if child.pstree.ppid as i32 != pid {
            continue;
        }
        if !child.zombie && (child.ids.vm_id == p.ids.vm_id || child.ids.sighand_id == p.ids.sighand_id) {
            return Err(Error::not_supported(format!(
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
        let ct = step(child.pid(), "create", remote_clone(r, child.pid(), false, share, timeout))?;
        guard.pids.borrow_mut().push(child.pid());
        tasks[j] = Some(ct);
    }
    Ok(())
}

/// Process groups: leaders first, then members (a group must exist before anyone joins it).
fn join_groups(img: &Images, tramp: u64, tasks: &[Option<Tracee>]) -> Result<()> {
    for leaders_pass in [true, false] {
        for (i, p) in img.procs.iter().enumerate() {
            let (pid, pgid) = (p.pid(), p.pstree.pgid as i32);
            if p.zombie || pgid == p.pstree.sid as i32 && pgid == pid || (pgid == pid) != leaders_pass || img.index_of(pgid).is_none() {
                continue;
            }
            if let Some(t) = &tasks[i] {
                let mut r = step(pid, "remote", Remote::at_site(t, tramp))?;
                step(pid, "setpgid", r.setpgid(0, pgid))?;
                step(pid, "cure", r.cure())?;
            }
        }
    }
    Ok(())
}

/// Sets up a zombie-to-be: when let go, it exits with its recorded status (or is killed by its signal).
pub fn prepare_exit(t: &Tracee, tramp: u64, core: &pb::CoreEntry) -> Result<()> {
    let status = core.tc.as_ref().map_or(0, |tc| tc.exit_code as i32);
    if let Some(tc) = &core.tc {
        let mut r = Remote::at_site(t, tramp)?;
        r.set_name(&tc.comm)?;
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
            r.prlimit(libc::RLIMIT_CORE, Some((0, 0)))?;
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

/// Waits for the restored task (rcr's child) to end; its exit status, or 128 + the signal that killed it.
pub fn wait_exit(pid: i32) -> Result<i32> {
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
