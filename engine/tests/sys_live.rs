//! The syscall wrappers against the running kernel, on this process and forked children.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::memfd::MemFdCreateFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{getpid, Pid};
use rcr_engine::proc::ProcDir;
use rcr_engine::sys::{self, page_is, AnonMapping, Errno, KcmpResult, KcmpType, PagemapScan};

mod common;
use common::{Child, REAP};

fn memfd_with(text: &[u8]) -> std::fs::File {
    let fd = sys::memfd_create(c"rcr-test", MemFdCreateFlag::MFD_CLOEXEC).unwrap();
    let mut f = std::fs::File::from(fd);
    f.write_all(text).unwrap();
    f
}

#[test]
fn pidfd_getfd_shares_the_file_description() {
    let mut f = memfd_with(b"hello");
    let child = Child::spawn(); // inherits f's fd number and open file description
    let pidfd = sys::pidfd_open(child.0, 0).unwrap();
    let got = sys::pidfd_getfd(pidfd.as_fd(), f.as_raw_fd()).unwrap();
    let me = getpid();
    let k = sys::kcmp(
        me,
        me,
        KcmpType::File,
        f.as_raw_fd() as u64,
        got.as_raw_fd() as u64,
    )
    .unwrap();
    assert_eq!(k, KcmpResult::Equal);
    // Shared description: moving the offset through one moves it for the other.
    f.seek(SeekFrom::Start(2)).unwrap();
    let mut g = std::fs::File::from(got);
    assert_eq!(g.stream_position().unwrap(), 2);
    let other = memfd_with(b"x");
    let k = sys::kcmp(
        me,
        child.0,
        KcmpType::File,
        other.as_raw_fd() as u64,
        f.as_raw_fd() as u64,
    )
    .unwrap();
    assert_ne!(k, KcmpResult::Equal);
    assert_eq!(
        sys::pidfd_getfd(pidfd.as_fd(), 100_000)
            .unwrap_err()
            .errno(),
        Some(Errno::EBADF)
    );
}

#[test]
fn pidfd_send_signal_kills() {
    let child = Child::spawn();
    let pidfd = sys::pidfd_open(child.0, 0).unwrap();
    sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGTERM).unwrap();
    let st = sys::wait_timeout(child.0, REAP).unwrap();
    assert_eq!(
        st,
        Some(WaitStatus::Signaled(child.0, Signal::SIGTERM, false))
    );
    std::mem::forget(child);
}

fn free_pid() -> i32 {
    let last: i32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    // Spread parallel tests apart by thread id; wrap below pid_max (the kernel refuses larger ones).
    let wrap = |p: i32| 1000 + (p - 1000).rem_euclid(max - 1000);
    let mut p = wrap(last + 2000 + (nix::unistd::gettid().as_raw() % 1000) * 7);
    while std::path::Path::new(&format!("/proc/{p}")).exists() {
        p = wrap(p + 1);
    }
    p
}

#[test]
fn clone3_set_tid_gets_the_chosen_pid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: clone3 set_tid needs CAP_SYS_ADMIN");
        return;
    }
    let want = free_pid();
    let pid = sys::spawn_exiting_child_at(&[want]).unwrap();
    assert_eq!(pid.as_raw(), want);
    assert_eq!(
        sys::wait_timeout(pid, REAP).unwrap(),
        Some(WaitStatus::Exited(pid, 0))
    );
    // A taken PID is refused with EEXIST.
    let e = sys::spawn_exiting_child_at(&[getpid().as_raw()]).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST));
}

static MUT_PROBE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0x1111_2222_3333_4444);

#[test]
fn process_vm_read_write_child() {
    let child = Child::spawn();
    let addr = &MUT_PROBE as *const _ as u64;
    let mut buf = [0u8; 8];
    assert_eq!(sys::read_remote(child.0, addr, &mut buf).unwrap(), 8);
    assert_eq!(u64::from_ne_bytes(buf), 0x1111_2222_3333_4444);
    assert_eq!(
        sys::write_remote(child.0, addr, &7u64.to_ne_bytes()).unwrap(),
        8
    );
    sys::read_remote(child.0, addr, &mut buf).unwrap();
    assert_eq!(u64::from_ne_bytes(buf), 7);
    // Ours is a separate copy.
    assert_eq!(
        MUT_PROBE.load(std::sync::atomic::Ordering::SeqCst),
        0x1111_2222_3333_4444
    );
    assert!(sys::read_remote(child.0, 0, &mut buf).is_err());
}

fn pagemap_fd() -> std::os::fd::OwnedFd {
    ProcDir::open_self()
        .unwrap()
        .openat("pagemap", nix::fcntl::OFlag::O_RDONLY)
        .unwrap()
}

#[test]
fn pagemap_scan_finds_touched_and_zero_pages() {
    let ps = sys::page_size();
    let m = AnonMapping::new(16).unwrap();
    for p in [0usize, 2, 3] {
        assert!(m.write(p * ps as usize, 1));
    }
    assert_eq!(m.read(5 * ps as usize), Some(0)); // maps the shared zero page
    let (start, end) = (m.addr(), m.addr() + 16 * ps);
    let pm = pagemap_fd();
    let scan = PagemapScan {
        category_mask: page_is::PRESENT,
        return_mask: page_is::PRESENT | page_is::PFNZERO,
        ..Default::default()
    };
    let regions = sys::pagemap_scan_all(pm.as_fd(), start, end, &scan, 64).unwrap();
    let got: Vec<_> = regions
        .iter()
        .map(|r| ((r.start - start) / ps, (r.end - start) / ps, r.categories))
        .collect();
    let p = page_is::PRESENT;
    assert_eq!(got, [(0, 1, p), (2, 4, p), (5, 6, p | page_is::PFNZERO)]);

    // Batches of one region: the walk stops early and the helper resumes it.
    let mut one = Vec::with_capacity(1);
    let walked = sys::pagemap_scan(pm.as_fd(), start, end, &scan, &mut one).unwrap();
    assert_eq!(one.len(), 1);
    assert!(walked < end);
    assert_eq!(
        sys::pagemap_scan_all(pm.as_fd(), start, end, &scan, 1).unwrap(),
        regions
    );

    // The classic pagemap reader agrees on presence.
    let file = std::fs::File::from(pagemap_fd());
    let fb = sys::pagemap_regions_fallback(&file, start, end, page_is::PRESENT).unwrap();
    let fb: Vec<_> = fb
        .iter()
        .map(|r| ((r.start - start) / ps, (r.end - start) / ps))
        .collect();
    assert_eq!(fb, [(0, 1), (2, 4), (5, 6)]);
    let entries = sys::pagemap_read_entries(&file, start, end).unwrap();
    assert_eq!(entries.len(), 16);
    assert!(entries[0].present() && !entries[1].present());
}

#[test]
fn uffd_missing_copy() {
    use linux_raw_sys::general as g;
    let ps = sys::page_size();
    let m = AnonMapping::new(4).unwrap();
    let uffd = sys::userfaultfd(libc::O_CLOEXEC | libc::O_NONBLOCK).unwrap();
    let api = sys::uffdio_api(uffd.as_fd(), 0).unwrap();
    assert_ne!(api.ioctls, 0);
    let ioctls = sys::uffdio_register(
        uffd.as_fd(),
        m.addr(),
        4 * ps,
        g::UFFDIO_REGISTER_MODE_MISSING as u64,
    )
    .unwrap();
    assert_ne!(ioctls & (1 << g::_UFFDIO_COPY), 0);
    let src = vec![0xabu8; ps as usize];
    assert_eq!(
        sys::uffdio_copy(uffd.as_fd(), m.page_addr(1), &src, 0).unwrap(),
        ps
    );
    // The page is now populated: reading it does not fault into the (unserved) uffd.
    assert_eq!(m.read(ps as usize + 7), Some(0xab));
    let e = sys::uffdio_copy(uffd.as_fd(), m.page_addr(1), &src, 0).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EEXIST));
}

#[test]
fn uffd_async_wp_tracks_written_pages_with_pagemap_scan() {
    use linux_raw_sys::general as g;
    let ps = sys::page_size();
    let m = AnonMapping::new(8).unwrap();
    for p in 0..8 {
        m.write(p * ps as usize, 1);
    }
    let uffd = sys::userfaultfd(libc::O_CLOEXEC | libc::O_NONBLOCK).unwrap();
    let feats = (g::UFFD_FEATURE_WP_ASYNC
        | g::UFFD_FEATURE_WP_UNPOPULATED
        | g::UFFD_FEATURE_PAGEFAULT_FLAG_WP) as u64;
    sys::uffdio_api(uffd.as_fd(), feats).unwrap();
    let (start, end) = (m.addr(), m.addr() + 8 * ps);
    sys::uffdio_register(
        uffd.as_fd(),
        start,
        8 * ps,
        g::UFFDIO_REGISTER_MODE_WP as u64,
    )
    .unwrap();
    let pm = pagemap_fd();
    // Write-protect everything (reset WRITTEN) ...
    let reset = PagemapScan {
        flags: sys::PM_SCAN_WP_MATCHING | sys::PM_SCAN_CHECK_WPASYNC,
        category_mask: page_is::WRITTEN,
        return_mask: page_is::WRITTEN,
        ..Default::default()
    };
    sys::pagemap_scan_all(pm.as_fd(), start, end, &reset, 16).unwrap();
    // ... then dirty pages 3 and 6: async WP resolves the faults in the kernel.
    m.write(3 * ps as usize, 2);
    m.write(6 * ps as usize + 9, 2);
    let look = PagemapScan {
        category_mask: page_is::WRITTEN,
        return_mask: page_is::WRITTEN,
        ..Default::default()
    };
    let got: Vec<_> = sys::pagemap_scan_all(pm.as_fd(), start, end, &look, 16)
        .unwrap()
        .iter()
        .map(|r| ((r.start - start) / ps, (r.end - start) / ps))
        .collect();
    assert_eq!(got, [(3, 4), (6, 7)]);
    // Synchronous WP toggling on the registered range works too.
    sys::uffdio_writeprotect(uffd.as_fd(), start, 8 * ps, true, false).unwrap();
    sys::uffdio_writeprotect(uffd.as_fd(), start, 8 * ps, false, false).unwrap();
}

#[test]
fn prlimit_on_self_and_child() {
    let me = Pid::from_raw(0);
    let (soft, hard) = sys::prlimit_get(me, libc::RLIMIT_NOFILE).unwrap();
    assert_eq!(
        (soft, hard),
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap()
    );
    let child = Child::spawn();
    let (_, chard) = sys::prlimit_get(child.0, libc::RLIMIT_NOFILE).unwrap();
    sys::prlimit_set(child.0, libc::RLIMIT_NOFILE, 17, chard).unwrap();
    assert_eq!(
        sys::prlimit_get(child.0, libc::RLIMIT_NOFILE).unwrap(),
        (17, chard)
    );
    // Raising the hard limit needs CAP_SYS_RESOURCE.
    let cap = ProcDir::open_self().unwrap().status().unwrap().cap_eff & (1 << 24) != 0;
    let r = sys::prlimit_set(
        child.0,
        libc::RLIMIT_NOFILE,
        17,
        chard.saturating_add(1).min(1 << 20),
    );
    if chard < 1 << 20 {
        assert_eq!(r.is_ok(), cap, "{r:?}");
        if !cap {
            assert_eq!(r.unwrap_err().errno(), Some(Errno::EPERM));
        }
    }
}

#[test]
fn sched_attr_personality_prctl_setns() {
    let child = Child::spawn();
    let mut a = sys::sched_getattr(child.0).unwrap();
    assert_eq!(a.policy, libc::SCHED_OTHER as u32);
    a.nice = 7;
    sys::sched_setattr(child.0, &a).unwrap();
    assert_eq!(sys::sched_getattr(child.0).unwrap().nice, 7);
    assert_eq!(
        ProcDir::open(child.0.as_raw())
            .unwrap()
            .stat()
            .unwrap()
            .nice,
        7
    );

    let p = sys::personality_get().unwrap();
    assert_eq!(p, ProcDir::open_self().unwrap().personality().unwrap());
    #[cfg(target_arch = "x86_64")]
    assert_eq!(sys::prctl_mm_map_size().unwrap(), 104);

    // Joining the namespace we are already in is allowed (needs CAP_SYS_ADMIN).
    if nix::unistd::geteuid().is_root() {
        let ns = std::fs::File::open("/proc/thread-self/ns/uts").unwrap();
        sys::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWUTS).unwrap();
    }
    let ns = std::fs::File::open("/proc/thread-self/ns/uts").unwrap();
    let e = sys::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
}
