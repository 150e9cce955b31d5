//! `restore`: bring a dumped process tree back at its original PIDs. This module only sequences the
//! stages; the command's options, features, images and plugins are its [`RestoreCtx`], the tree is
//! [`crate::tree`]'s, memory [`crate::kinds::mm`]'s, a task's core and attributes
//! [`crate::kinds::task`]'s, each kind of file its module's in [`crate::kinds`].
//!
//! Two phases, as CRIU: *collect* reads and checks every image and opens every file in rcr (nothing is
//! started if any of it fails); *create* forks the root task at its PID with clone3(set_tid), has each
//! task create its children (and later its threads) at their PIDs with remote clone3 calls, top-down,
//! and drives every task's last steps from rcr through ptrace and remote system calls: unmap rcr's memory,
//! map the dumped areas and read their pages in, install the fds, credentials, signals and the rest, load
//! the registers. No task runs its own code until every task is ready; then all are let go together. If
//! a step fails, every task created is killed ([`ChildGuard`]) and the error names the step.

use crate::checkpoint::Images;
use crate::compel::{Remote, Tracee};
use crate::ctx::{step, RestoreCtx};
use crate::image::{pb, ImageName};
use crate::kinds::{mem, mm, regfile, task, tty, RestoreEnv};
use crate::notify::Action;
use crate::options::RestoreOpts;
use crate::tree::{self, ChildGuard, Ready};
use crate::{fdtable, Context, Error, Result};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

/// What a restore produced.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// PID of the restored root task.
    pub pid: i32,
    /// Without `detached`: the exit status of the restored task (128+signal if killed).
    pub exit_code: Option<i32>,
}

/// Restores the checkpoint in `opts.images_dir`.
pub fn restore(opts: &RestoreOpts) -> Result<RestoreOutcome> {
    let started = std::time::Instant::now();
    let mut c = RestoreCtx::start(opts)?;
    let pid = c.img.procs[0].pid();
    opts.notify.at(Action::PreRestore, None)?;
    check_restorable(&c)?;
    tree::check_pids_free(&c.img, opts.step_timeout)?;
    c.check_cancelled()?;
    // Collect: open everything in rcr before any task exists.
    let (opened, memfd_fds) = collect_files(&c)?;
    let (plugin_vma_fds, map_fds, pfiles) = collect_areas(&c, &memfd_fds)?;
    let tramp = mm::pick_trampoline(c.img.procs.iter().flat_map(|p| p.mm.vmas.iter()))?;
    if let Some((clocks, had_offsets)) = &c.img.clocks {
        crate::kinds::timens::prepare_restore(clocks, *had_offsets)?;
    }
    c.check_cancelled()?;

    // Create the root: it stops itself, traced, for rcr to take over.
    let mut guard = tree::spawn_root(pid)?;
    let areas = mm::AreaSources { map_fds: &map_fds, memfd_fds: &memfd_fds, plugin_vma_fds: &plugin_vma_fds, shm_owners: Default::default() };
    let b = Build { c: &c, img: &c.img, opts, tramp, opened: &opened, memfd_fds: &memfd_fds, pfiles: &pfiles, areas };
    // plugins: post_forking before the tasks are built, resume_devices_late once they are (before they run).
    let forking = std::cell::Cell::new(std::time::Duration::ZERO);
    let built = c
        .plugins
        .post_forking(pid)
        .map_err(Error::from)
        .and_then(|()| opts.notify.at(Action::SetupNamespaces, Some(pid)))
        .and_then(|()| opts.notify.at(Action::PostSetupNamespaces, Some(pid)))
        .and_then(|()| create_and_build(&b, &guard, &forking));
    // resume_devices_late runs once per process (as criu's), every process built, none running yet.
    // plugins: they may let a thread of a restored task run there (run_thread), as at dump.
    let resumed = |tasks: Vec<Ready>| -> Result<Vec<Ready>> {
        c.plugins.with_thread_control(&tree::ReadyThreads(&tasks), || -> Result<()> {
            for p in c.img.procs.iter().filter(|p| !p.zombie) {
                c.plugins.resume_devices_late(p.pid())?;
            }
            Ok(())
        })?;
        Ok(tasks)
    };
    let announced = |tasks| -> Result<Vec<Ready>> {
        opts.notify.at(Action::PostRestore, Some(pid))?;
        Ok(tasks)
    };
    match built.and_then(resumed).and_then(announced) {
        // Every task is ready: let them all go.
        Ok(tasks) => {
            opts.notify.at_logged(Action::PreResume, Some(pid));
            // --leave-stopped: every task is let go stopped (SIGSTOP), to be continued by the caller.
            let stop = |t| match t {
                Ready::Run(t) if opts.leave_stopped => Ready::Stopped(t),
                t => t,
            };
            tasks.into_iter().map(stop).try_for_each(Ready::release)?
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
    drop(b);
    drop(opened);
    for k in c.img.kinds.borrow_mut().iter_mut() {
        k.finish_restore();
    }
    drop(memfd_fds);
    drop(map_fds);
    drop(plugin_vma_fds);
    drop(pfiles);
    tracing::info!("pid {pid} restored and running ({} process(es))", c.img.procs.len());
    c.plugins.fini(true)?; // plugins: the tasks already run; an error here only fails the command
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{pid}\n")).map_err(|e| Error::Io { ctx: format!("writing pidfile {}", p.display()), source: e })?;
    }
    write_stats(&c, started.elapsed(), forking.get())?;
    opts.notify.at_logged(Action::PostResume, Some(pid));
    if opts.detached {
        return Ok(RestoreOutcome { pid, exit_code: None });
    }
    Ok(RestoreOutcome { pid, exit_code: Some(tree::wait_exit(pid)?) })
}

/// stats-restore, as CRIU's: the whole restore's time and the time to create the tree, in µs.
fn write_stats(c: &RestoreCtx<'_>, total: std::time::Duration, forking: std::time::Duration) -> Result<()> {
    let us = |d: std::time::Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    let e = pb::StatsEntry {
        dump: None,
        restore: Some(pb::RestoreStatsEntry { pages_compared: 0, pages_skipped_cow: 0, forking_time: us(forking), restore_time: us(total), pages_restored: None }),
    };
    Ok(c.images.write_one(ImageName::StatsRestore, &e)?)
}

/// What this rcr could not give back (credentials, hard rlimits) fails here, before anything is started.
fn check_restorable(c: &RestoreCtx<'_>) -> Result<()> {
    for p in c.img.procs.iter().filter(|p| !p.zombie) {
        for (core, &tid) in p.cores.iter().zip(&p.pstree.threads) {
            if let Some(cr) = core.thread_core.as_ref().and_then(|t| t.creds.as_ref()) {
                c.own.check_image_creds(p.pid(), tid as i32, cr).map_err(nothing_started)?;
            }
        }
        if let Some(rl) = p.cores[0].tc.as_ref().and_then(|tc| tc.rlimits.as_ref()) {
            c.own.check_rlimits(p.pid(), rl).map_err(nothing_started)?;
        }
    }
    Ok(())
}

fn nothing_started(e: Error) -> Error {
    e.left("nothing was started")
}

/// What the tasks are built with: the context, the trampoline, and what rcr opened for them.
struct Build<'a> {
    c: &'a RestoreCtx<'a>,
    img: &'a Images,
    opts: &'a RestoreOpts,
    tramp: u64,
    /// Every file of the fd tables, opened in rcr (and the plugin files opened in the task).
    opened: &'a fdtable::Opened,
    /// memfds by shmem inode.
    memfd_fds: &'a BTreeMap<u64, OwnedFd>,
    pfiles: &'a [Option<ProcFiles>],
    areas: mm::AreaSources<'a>,
}

/// Creates the whole tree, then builds every task; zombies last, so that their exit does not disturb
/// the others' build. Returns the tasks ready to be let go.
fn create_and_build(b: &Build<'_>, guard: &ChildGuard, forking: &std::cell::Cell<std::time::Duration>) -> Result<Vec<Ready>> {
    let img = b.img;
    let t0 = std::time::Instant::now();
    let mut tasks = tree::create_tree(img, b.tramp, b.opts.step_timeout, guard)?;
    forking.set(t0.elapsed());
    let mut ready = Vec::new();
    for (i, p) in img.procs.iter().enumerate() {
        let Some(t) = tasks[i].take() else { continue };
        if p.zombie {
            step(p.pid(), "zombie", tree::prepare_exit(&t, b.tramp, &p.cores[0]))?;
            tasks[i] = Some(t);
            continue;
        }
        let threads = build_process(&t, b, i, guard)?;
        tracing::debug!("pid {}: built", p.pid());
        let stopped = p.cores[0].tc.as_ref().is_some_and(|tc| tc.task_state == task::TASK_STOPPED);
        ready.extend(threads.into_iter().map(Ready::Run));
        ready.push(if stopped { Ready::Stopped(t) } else { Ready::Run(t) });
    }
    ready.extend(tasks.into_iter().flatten().map(Ready::Exit));
    Ok(ready)
}

/// Builds process `i` (created, still running rcr's memory) and its threads. Returns the threads other
/// than the leader, ready to run; the leader is ready too when this returns.
fn build_process(tracee: &Tracee, b: &Build<'_>, i: usize, guard: &ChildGuard) -> Result<Vec<Tracee>> {
    let (c, p) = (b.c, &b.img.procs[i]);
    let pf = b.pfiles[i].as_ref().ok_or_else(|| Error::Internal("no files for a live process".into()))?;
    let pid = p.pid();
    let mut remote = step(pid, "remote", Remote::at_site(tracee, b.tramp))?;
    let r = &mut remote;
    mm::restore_memory(r, c, p, &b.areas, &pf.pages, b.tramp)?;
    step(pid, "PR_SET_MM_MAP", mm::restore_mm(r, &p.mm, pf.exe.as_raw_fd()))?;
    task::restore_fs(r, pid, pf.cwd.as_raw_fd(), &pf.root, p.fs.umask)?;
    install_fds(r, b, i)?;
    // plugins: what must happen in the task's own context (ABI 3), its memory and fds in place.
    c.plugins.restore_task(&mut crate::plugins::InTask::new(pid, r))?;
    // Threads, while the task still has the privileges clone3(set_tid) needs.
    let threads = task::restore_threads(r, c, p, b.tramp, guard)?;
    task::restore_task(r, c, p, i == 0)?;
    task::finish_leader(remote, tracee, p, b.tramp)?;
    Ok(threads)
}

// ---- The fd table: opened in rcr (collect), installed in the task. ----

/// Files a process needs at restore, opened in rcr before the tree is created.
struct ProcFiles {
    pages: std::fs::File,
    exe: OwnedFd,
    cwd: OwnedFd,
    root: String,
}

/// The files of the fd tables (through the restore graph), and the memfds by inode.
type CollectedFiles = (fdtable::Opened, BTreeMap<u64, OwnedFd>);
/// Device areas' fds and offsets by shmid, files behind mappings by file id, each process's files.
type CollectedAreas = (BTreeMap<u64, (Option<OwnedFd>, u64)>, BTreeMap<u64, OwnedFd>, Vec<Option<ProcFiles>>);

/// Opens every file of the checkpoint's fd tables in rcr (a plugin's through its plugin) through the
/// restore graph ([`crate::fdtable`]), and the memfds.
fn collect_files(c: &RestoreCtx<'_>) -> Result<CollectedFiles> {
    let (img, plugins, opts, dir) = (&c.img, &c.plugins, c.opts, c.dir());
    // Sources sit above every target fd number, so moving one into place never overwrites another.
    let base = img.procs.iter().flat_map(|p| p.fdinfo.iter()).map(|f| f.fd as i32).max().unwrap_or(2) + 1;
    // memfds: created here, inherited by every task, mapped by those that had them and reopened for
    // their fds.
    let mut memfd_fds: BTreeMap<u64, OwnedFd> = BTreeMap::new();
    for e in &img.memfds {
        memfd_fds.insert(e.inode_id, fdtable::fd_above(crate::kinds::memfd::restore(dir, e)?, base)?);
    }
    let env = RestoreEnv { images_dir: dir, shell_job: opts.shell_job, files: &img.files, memfds: &memfd_fds, ext_unix_sk: opts.ext_unix_sk, mapped: false };
    let opened = fdtable::open_all(&img.procs, &img.files, &mut img.kinds.borrow_mut(), &env, plugins, base)?;
    Ok((opened, memfd_fds))
}

/// Opens what the areas are mapped from (plugins' device areas, files behind file mappings) and each
/// process's pages image, executable and cwd.
fn collect_areas(c: &RestoreCtx<'_>, memfd_fds: &BTreeMap<u64, OwnedFd>) -> Result<CollectedAreas> {
    let (img, plugins, opts, dir) = (&c.img, &c.plugins, c.opts, c.dir());
    let env = RestoreEnv { images_dir: dir, shell_job: opts.shell_job, files: &img.files, memfds: memfd_fds, ext_unix_sk: opts.ext_unix_sk, mapped: false };
    // plugins: device areas; the plugin that claimed each gives the fd to map it from (inherited).
    let mut plugin_vmas: Vec<(i32, &pb::VmaEntry, &pb::ExtFileEntry)> = Vec::new();
    for p in img.procs.iter().filter(|p| !p.zombie) {
        for v in p.mm.vmas.iter().filter(|v| v.status & mem::VMA_EXT_PLUGIN != 0) {
            let ext = img.files.get(&(v.shmid as u32)).and_then(|f| f.ext.as_ref()).ok_or_else(|| {
                Error::bad_image("files.img", format!("no ext file {}", v.shmid)).at_task(p.pid(), format!("memory area {:#x} belongs to a plugin", v.start))
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
                    return Err(Error::bad_image("memfd.img", format!("no memfd inode {}", v.shmid)).at_task(p.pid(), format!("memory area {:#x}", v.start)));
                }
                continue;
            }
            if v.status & (mem::VMA_FILE_PRIVATE | mem::VMA_FILE_SHARED) != 0 && !map_fds.contains_key(&v.shmid) {
                let mut e = img.reg(v.shmid as u32)?.clone();
                e.flags = v.fdflags.unwrap_or(libc::O_RDONLY as u32);
                let fd = fdtable::open_reg(&mut img.kinds.borrow_mut(), &env, e, true).at_task_with(p.pid(), || format!("the file mapped at {:#x}", v.start))?;
                map_fds.insert(v.shmid, fd);
            }
        }
        let pages_path = c.images.file(ImageName::Pages(p.pages_id));
        let pages = std::fs::File::open(&pages_path).map_err(|e| Error::Io { ctx: format!("opening {}", pages_path.display()), source: e })?;
        pfiles.push(Some(ProcFiles {
            pages,
            exe: fdtable::open_reg(&mut img.kinds.borrow_mut(), &env, img.reg(p.mm.exe_file_id)?.clone(), false).at_task(p.pid(), "its executable")?,
            cwd: regfile::open(img.reg(p.fs.cwd_id)?, false)?,
            root: img.reg(p.fs.root_id)?.name.clone(),
        }));
    }
    Ok((plugin_vma_fds, map_fds, pfiles))
}

/// Installs the fds of process `i` (in `r`): the inherited files moved to their numbers, the rest closed, the
/// controlling terminal taken again, and what each kind does in the task.
fn install_fds(r: &mut Remote<'_>, c: &Build<'_>, i: usize) -> Result<()> {
    let img = c.img;
    let p = &img.procs[i];
    let pid = p.pid();
    // fds: move each inherited fd to its number, then close everything else. A table shared with
    // other processes (CLONE_FILES) is set up by the last of them to be built: the others still need
    // the files rcr handed down.
    let last_sharer = img.procs.iter().enumerate().rev().find(|(_, q)| !q.zombie && q.ids.files_id == p.ids.files_id).map(|(j, _)| j);
    // A session leader takes its controlling terminal again, through the copy every task inherited
    // (it need not have an fd on it itself), and gives it its foreground group.
    if let Some((file, pgrp)) = (p.pstree.sid == p.pstree.pid).then(|| tty::controlling_terminal(&img.ttys, &img.files, p.pstree.pid)).flatten() {
        let src = c.opened.by_id.get(&file).map(|f| f.as_raw_fd()).ok_or_else(|| Error::Internal(format!("pid {pid}: its terminal (file {file}) was not opened")))?;
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
    Ok(())
}
