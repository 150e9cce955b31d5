//! Event files: eventfd, signalfd, timerfd, epoll, inotify (each program checks its state from inside).

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

/// The dump fails, saying `wants`, and the program runs on unharmed.
fn refused(mode: &str, wants: &[&str]) {
    let mut s = Subject::spawn("evfd_refused", &[mode]);
    s.wait_ready(READY_TIMEOUT);
    if !selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.timed_out, "rcr dump hung\n{}", run.describe());
        assert!(!run.ok(), "the dump succeeded\n{}", run.describe());
        for w in wants {
            assert!(run.stderr.contains(w), "the error does not say '{w}'\n{}", run.describe());
        }
    }
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(RESULT_TIMEOUT) {
        panic!("{e}");
    }
}

/// An epoll watch whose fd number was closed while its file lives on under another number.
#[test]
fn epoll_stale_watch_refused() {
    refused("stale", &["fd 7", "epoll", "closed or reused"]);
}

/// fanotify is not supported: the error names the fd and says no plugin claimed it.
#[test]
fn fanotify_refused() {
    refused("fanotify", &["anon_inode:[fanotify]", "no plugin claimed it"]);
}
