//! Event files: eventfd, signalfd, timerfd, epoll, inotify, fanotify (each program checks its state from
//! inside), and those rcr refuses.

use crate::harness::{scenario, selftest, Subject, READY_TIMEOUT, RESULT_TIMEOUT};

/// eventfd counter (above 32 bits), EFD_SEMAPHORE, O_NONBLOCK; signalfd mask, flags, signals read.
#[test]
fn eventfd_signalfd() {
    scenario("evfd", &[]);
}

/// timerfd time left, interval, unread expirations (including overruns), ABSTIME, clocks.
#[test]
fn timerfd() {
    scenario("timerfd", &[]);
}

/// epoll watches: events and data, EPOLLET, EPOLLONESHOT fired or not, MOD/DEL by the task, nesting.
#[test]
fn epoll() {
    scenario("epoll", &[]);
}

/// inotify watch descriptors, masks, and events after restore.
#[test]
fn inotify() {
    scenario("inotify", &[]);
}

/// Unmounts (lazily) what a test program may have left mounted if it failed early.
fn umount(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid C string; an error means nothing is mounted there.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// The dump fails, saying `wants`, and the program runs on unharmed.
fn refused(mode: &str, wants: &[&str]) {
    let mut s = Subject::spawn("evfd_refused", &[mode]);
    s.wait_ready(READY_TIMEOUT);
    let mnt = s.path().join("mnt");
    if !selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.timed_out, "rcr dump hung\n{}", run.describe());
        assert!(!run.ok(), "the dump succeeded\n{}", run.describe());
        for w in wants {
            assert!(run.stderr.contains(w), "the error does not say '{w}'\n{}", run.describe());
        }
    }
    s.signal(libc::SIGTERM);
    let r = s.wait_result(RESULT_TIMEOUT);
    umount(&mnt);
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// An epoll watch whose fd number was closed while its file lives on under another number.
#[test]
fn epoll_stale_watch_refused() {
    refused("stale", &["fd 7", "epoll", "closed or reused"]);
}

/// A fanotify mark on a whole filesystem is not supported yet: the error says so.
#[test]
fn fanotify_filesystem_mark_refused() {
    refused("fsmark", &["fanotify", "FAN_MARK_FILESYSTEM", "not supported yet"]);
}

/// fanotify: init flags, inode marks (with an ignored mask), a mount mark (on a tmpfs the program
/// mounts in its directory and unmounts at the end).
#[test]
fn fanotify() {
    let mut s = Subject::spawn("fanotify", &[]);
    s.wait_ready(READY_TIMEOUT);
    let mnt = s.path().join("mnt");
    s.checkpoint();
    s.signal(libc::SIGTERM);
    let r = s.wait_result(RESULT_TIMEOUT);
    // The program unmounts its tmpfs; if it failed before, do it here.
    umount(&mnt);
    if let Err(e) = r {
        panic!("{e}");
    }
}
