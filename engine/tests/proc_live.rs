//! ProcDir against the real /proc: this process and a forked idle child.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::stat::fstat;
use nix::unistd::{getpid, gettid};
use rcr_engine::proc::{FdInfoKind, ProcDir, ProcError};
use rcr_engine::sys;

mod common;
use common::{Child, REAP};

#[test]
fn self_stat_status_maps() {
    let me = ProcDir::open_self().unwrap();
    let pid = getpid().as_raw();
    assert_eq!(me.pid(), pid);
    let st = me.stat().unwrap();
    assert_eq!(st.pid, pid);
    assert_eq!(st.comm, me.comm().unwrap());
    assert!(st.num_threads >= 1);
    let status = me.status().unwrap();
    assert_eq!((status.pid, status.tgid), (pid, pid));
    assert_eq!(status.ppid, st.ppid);
    assert_eq!(status.uid[0], nix::unistd::getuid().as_raw());
    assert_eq!(status.nspid.last().copied(), Some(pid));

    let maps = me.maps().unwrap();
    assert!(maps.iter().any(|v| v.path.as_deref() == Some("[stack]")));
    assert!(maps.iter().any(|v| v.path.as_deref() == Some("[vdso]")));
    assert!(
        maps.windows(2).all(|w| w[0].end <= w[1].start),
        "maps sorted, non-overlapping"
    );
    // The stack start (stat field) lies in the [stack] VMA.
    let stack = maps
        .iter()
        .find(|v| v.path.as_deref() == Some("[stack]"))
        .unwrap();
    assert!(stack.start <= st.start_stack && st.start_stack < stack.end);
    // Our own code is a file mapping containing this function.
    let here = self_stat_status_maps as fn() as usize as u64;
    let code = maps
        .iter()
        .find(|v| v.start <= here && here < v.end)
        .unwrap();
    assert!(code.exec && code.is_file());

    let smaps = me.smaps().unwrap();
    let sstack = smaps
        .iter()
        .find(|v| v.path.as_deref() == Some("[stack]"))
        .unwrap();
    assert!(
        sstack.vm_flags.contains("rd")
            && sstack.vm_flags.contains("wr")
            && sstack.vm_flags.contains("gd")
    );
    assert!(sstack.smaps.contains_key("Rss"));
    let scode = smaps.iter().find(|v| v.start == code.start).unwrap();
    assert!(scode.vm_flags.contains("ex") && !scode.vm_flags.contains("wr"));
}

#[test]
fn map_files_gives_the_mapped_file() {
    let me = ProcDir::open_self().unwrap();
    let here = map_files_gives_the_mapped_file as fn() as usize as u64;
    let vma = me
        .maps()
        .unwrap()
        .into_iter()
        .find(|v| v.start <= here && here < v.end)
        .unwrap();
    let fd = me
        .map_files_open(vma.start, vma.end, nix::fcntl::OFlag::O_RDONLY)
        .unwrap();
    assert_eq!(fstat(fd.as_raw_fd()).unwrap().st_ino, vma.inode);
}

#[test]
fn eventfd_fdinfo_and_fds() {
    let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap();
    efd.write(26).unwrap();
    let me = ProcDir::open_self().unwrap();
    let raw = efd.as_fd().as_raw_fd();
    let fi = me.fdinfo(raw).unwrap();
    match fi.kind {
        FdInfoKind::Eventfd {
            count, semaphore, ..
        } => {
            assert_eq!(count, 26);
            assert_eq!(semaphore, Some(false));
        }
        k => panic!("eventfd fdinfo parsed as {k:?}"),
    }
    assert_eq!(fi.flags & libc::O_CLOEXEC as u32, libc::O_CLOEXEC as u32);
    let fds = me.fds().unwrap();
    let (_, target) = fds.iter().find(|(fd, _)| *fd == raw).unwrap();
    assert_eq!(target.to_str(), Some("anon_inode:[eventfd]"));
    assert!(me.fdinfo(100_000).is_err());
}

#[test]
fn links_auxv_and_small_files() {
    let me = ProcDir::open_self().unwrap();
    assert_eq!(
        Path::new(&me.exe().unwrap()),
        std::env::current_exe().unwrap()
    );
    assert_eq!(Path::new(&me.root().unwrap()), Path::new("/"));
    assert!(Path::new(&me.cwd().unwrap()).is_absolute());
    let auxv = me.auxv().unwrap();
    assert!(auxv.contains(&(libc::AT_PAGESZ, sys::page_size())));
    assert_eq!(me.personality().unwrap(), sys::personality_get().unwrap());
    assert!(me.oom_score_adj().unwrap() >= -1000);
    me.loginuid().unwrap();
    assert!(!me.cgroup().unwrap().is_empty());
    let offs = me.timens_offsets().unwrap();
    assert!(offs.iter().any(|o| o.clock == "monotonic"));
    let mounts = me.mountinfo().unwrap();
    assert!(mounts.iter().any(|m| m.mount_point == "/"));
    assert!(mounts.iter().any(|m| m.fstype == "proc"));
    // ns inode numbers match stat(2) of the ns links.
    let ns = me.ns_ids().unwrap();
    let mnt = ns.iter().find(|(n, _)| n == "mnt").unwrap().1;
    assert_eq!(
        std::fs::metadata("/proc/self/ns/mnt")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap(),
        mnt
    );
}

#[test]
fn posix_timers() {
    use nix::sys::signal::{SigEvent, SigevNotify, Signal};
    use nix::sys::timer::Timer;
    use nix::time::ClockId;
    let sev = SigEvent::new(SigevNotify::SigevSignal {
        signal: Signal::SIGUSR2,
        si_value: 0x1234,
    });
    let _t = Timer::new(ClockId::CLOCK_MONOTONIC, sev).unwrap();
    let timers = ProcDir::open_self().unwrap().timers().unwrap();
    let t = timers
        .iter()
        .find(|t| t.signo == libc::SIGUSR2 && t.sigval == 0x1234)
        .unwrap();
    assert_eq!(t.clock_id, libc::CLOCK_MONOTONIC);
    assert_eq!(t.notify, "signal");
}

#[test]
fn tasks_and_children() {
    let me = ProcDir::open_self().unwrap();
    let tid = gettid().as_raw();
    assert!(me.task_ids().unwrap().contains(&tid));
    let task = me.task(tid).unwrap();
    assert_eq!(task.stat().unwrap().pid, tid);
    assert_eq!(task.status().unwrap().pid, tid);

    let child = Child::spawn();
    // The child was forked by this thread, so it is in this thread's children file.
    assert!(me.children(tid).unwrap().contains(&child.0.as_raw()));
    let cd = ProcDir::open(child.0.as_raw()).unwrap();
    let st = cd.stat().unwrap();
    assert_eq!((st.pid, st.ppid), (child.0.as_raw(), getpid().as_raw()));
    assert_eq!(cd.task_ids().unwrap(), [child.0.as_raw()]);
    assert_eq!(cd.status().unwrap().ppid, getpid().as_raw());
    assert!(cd
        .maps()
        .unwrap()
        .iter()
        .any(|v| v.path.as_deref() == Some("[stack]")));
}

#[test]
fn dir_fd_never_follows_a_reused_pid() {
    let child = Child::spawn();
    let cd = ProcDir::open_in(Path::new("/proc"), child.0.as_raw()).unwrap();
    cd.stat().unwrap();
    sys::kill_and_reap(child.0, REAP).unwrap();
    // The dir fd refers to the dead process: reads fail instead of reading whoever gets
    // the PID next.
    match cd.stat() {
        Err(ProcError::Io { path, .. }) => assert!(path.ends_with(&format!("{}/stat", child.0))),
        other => panic!("stat of a reaped pid through its dir fd: {other:?}"),
    }
    std::mem::forget(child); // already reaped
}

#[test]
fn open_errors_name_the_path() {
    let e = ProcDir::open_in(Path::new("/nonexistent-proc"), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent-proc/1"), "{e}");
    let me = ProcDir::open_self().unwrap();
    let e = me.read_string("no-such-file").unwrap_err().to_string();
    assert!(
        e.contains(&format!("/proc/{}/no-such-file", getpid())),
        "{e}"
    );
}
