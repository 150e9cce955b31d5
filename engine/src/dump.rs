//! `dump`: freeze a process tree, write its state to the images directory, then kill it (or, with
//! leave_running, let it go on). This module only sequences the stages: the tree is [`crate::tree`]'s,
//! a task's core and attributes [`crate::kinds::task`]'s, its memory [`crate::kinds::mm`]'s and
//! [`crate::kinds::mem`]'s, each kind of open file its module's in [`crate::kinds`]; the command's
//! options, features, images and plugins are its [`DumpCtx`].
//!
//! The target is never lost: every path out of here detaches from it (the [`crate::compel::Tracee`]
//! guards do so on drop), the remote-syscall phase is short and comes before the long memory copy, and
//! the task is killed only after every image is written. If rcr itself dies, the kernel detaches the task.

use crate::ctx::DumpCtx;
use crate::image::{pb, ImageName};
use crate::kinds::{mem, mm, task, FileKind};
use crate::notify::Action;
use crate::options::DumpOpts;
use crate::tree::{self, Frozen, FrozenThreads, KobjIds};
use crate::{sys, Error, Result};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

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

pub use crate::kinds::task::{TASK_ALIVE, TASK_DEAD, TASK_STOPPED};
pub use crate::kinds::FileTable;

/// Dumps the process tree rooted at `opts.pid` into `opts.images_dir`.
pub fn dump(opts: &DumpOpts) -> Result<DumpStats> {
    let pid = opts.pid;
    opts.notify.at(Action::PreDump, Some(pid))?;
    let mut c = DumpCtx::start(opts)?;
    c.plugins.pause_devices(pid)?; // plugins: before the freeze
    let started = Instant::now();
    let tree = tree::freeze_tree(pid, opts.freeze_timeout, &c.plugins)?;
    if tree[0].zombie {
        return Err(Error::not_supported(format!("pid {pid} is a zombie; there is nothing to dump")));
    }
    let mut stats = DumpStats { pid, ..Default::default() };
    // plugins: fini(ok) after a good dump (its failure fails the dump); on errors, fini(failed) on drop.
    // post-dump: every image written, the tree still frozen; a failing listener keeps the tree running.
    let r = dump_tree(&c, &tree, &mut stats)
        .and_then(|()| {
            stats.frozen = started.elapsed();
            write_stats(&c, &stats)
        })
        .and_then(|()| opts.notify.at(Action::PostDump, Some(pid)))
        .and_then(|()| Ok(c.plugins.fini(true)?));
    if let Err(e) = r {
        // Dropping the tracees detaches; the tree goes on as if nothing happened.
        drop(tree);
        return Err(e);
    }
    if opts.leave_stopped {
        tree::leave_stopped(tree)?;
    } else if opts.leave_running {
        drop(tree);
        tracing::info!("pid {pid} left running");
    } else {
        tree::kill_dumped(tree)?;
    }
    Ok(stats)
}

/// State shared by the processes of one dump: file ids, fd sharing, kernel object ids.
#[derive(Default)]
struct DumpState {
    files: FileTable,
    /// File ids of the fds dumped so far, by (device, inode) of their file: (pid, fd, file id). Only fds
    /// of the same file can share an open file description, so kcmp compares only those.
    seen_fds: crate::fdtable::SeenFiles,
    ids: KobjIds,
    seccomp: Vec<pb::SeccompFilter>,
    pstree: Vec<pb::PstreeEntry>,
    /// The kinds of open file, each collecting what it writes at the end ([`crate::kinds::file_kinds`]).
    kinds: Vec<Box<dyn FileKind>>,
}

fn dump_tree(c: &DumpCtx<'_>, tree: &[Frozen], stats: &mut DumpStats) -> Result<()> {
    let mut st = DumpState { kinds: crate::kinds::file_kinds(), ..Default::default() };
    for (idx, f) in tree.iter().enumerate() {
        c.check_cancelled(f.pid)?;
        let entry = tree::pstree_entry(f);
        if f.zombie {
            tree::dump_zombie(&c.images, f)?;
        } else {
            // plugins: frozen, before files and memory; they may let one frozen thread run (run_thread).
            c.plugins.with_thread_control(&FrozenThreads(tree), || c.plugins.checkpoint_devices(f.pid))?;
            dump_process(c, f, idx as u32 + 1, &mut st, stats)?;
        }
        st.pstree.push(entry);
    }
    write_tree_images(c, &tree[0], st)
}

/// What the tree writes once every process is dumped: seccomp filters, clocks, the file kinds' images,
/// files, memfds, pstree, and the inventory last.
fn write_tree_images(c: &DumpCtx<'_>, root: &Frozen, mut st: DumpState) -> Result<()> {
    let images = &c.images;
    if !st.seccomp.is_empty() {
        images.write_one(ImageName::Seccomp, &pb::SeccompEntry { seccomp_filters: std::mem::take(&mut st.seccomp) })?;
    }
    let (clocks, had_offsets) = crate::kinds::timens::dump(&root.proc)?;
    images.write_one(ImageName::Timens(1), &clocks)?;
    for k in st.kinds.iter_mut() {
        k.finish_dump(c.dir(), &st.files)?;
    }
    images.write_all(ImageName::Files, &st.files.files)?;
    if !st.files.memfds.is_empty() {
        images.write_all(ImageName::MemfdInode, &st.files.memfds)?;
    }
    images.write_all(ImageName::Pstree, &st.pstree)?;
    c.plugins.dump_devices_late(root.pid)?; // plugins: every task dumped, before the inventory
    let mut root_ids = st.ids.root();
    root_ids.time_ns_id = had_offsets.then_some(1);
    let inv = pb::InventoryEntry {
        img_version: 2,
        fdinfo_per_id: Some(true),
        root_ids: Some(root_ids),
        ns_per_id: Some(true),
        lsmtype: Some(pb::Lsmtype::NoLsm as i32),
        rcr_plugins: c.plugins.needed(), // plugins: restore refuses to start without these
        ..Default::default()
    };
    images.write_one(ImageName::Inventory, &inv)?;
    Ok(())
}

/// One live process: its task state (frozen), fds, fs, memory areas and pages, then its images.
fn dump_process(c: &DumpCtx<'_>, f: &Frozen, pages_id: u32, st: &mut DumpState, stats: &mut DumpStats) -> Result<()> {
    let (pid, proc) = (f.pid, &f.proc);
    let status = proc.status()?;
    let vmas = proc.smaps()?;
    let td = task::dump_task(c, f, status, &mut st.seccomp)?;
    let ids = st.ids.of(pid, f.ppid);
    let pidfd = sys::pidfd_open(Pid::from_raw(pid), 0)?;
    if !st.ids.last_shares_files() {
        let task = crate::fdtable::TaskFds { opts: c.opts, proc, pidfd: pidfd.as_fd(), stat: &f.stat };
        let fdinfos = crate::fdtable::dump_fds(&task, &mut st.files, &mut st.seen_fds, &mut st.kinds, &c.plugins)?;
        c.images.write_all(ImageName::Fdinfo(ids.files_id), &fdinfos)?;
    }
    let (cwd_id, root_id) = task::dump_fs(proc, &mut st.files)?;
    let exe_file_id = mm::dump_exe(c, proc, &mut st.files)?;
    let areas = mm::dump_areas(c, proc, &vmas, &mut st.files)?;
    c.check_cancelled(pid)?;

    let t0 = Instant::now();
    let ms = mem::dump_pages(c.dir(), pid, pages_id, &areas, c.features.pagemap_scan)?;
    stats.memdump += t0.elapsed();
    stats.pages_scanned += ms.pages_scanned;
    stats.pages_written += ms.pages_written;
    c.check_cancelled(pid)?;

    let p = td.ts.prctls;
    mm::dump_mm(c, proc, &f.stat, &areas, mm::MmState { brk: td.ts.brk, exe_file_id, dumpable: p.dumpable, thp_disabled: p.thp_disabled })?;
    let umask = td.status.umask;
    task::write_cores(c, f, td)?;
    c.images.write_one(ImageName::Ids(pid as u32), &ids)?;
    c.images.write_one(ImageName::Fs(pid as u32), &pb::FsEntry { cwd_id, root_id, umask })?;
    Ok(())
}

fn write_stats(c: &DumpCtx<'_>, s: &DumpStats) -> Result<()> {
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
    Ok(c.images.write_one(ImageName::Stats, &e)?)
}

