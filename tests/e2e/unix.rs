//! Unix sockets: pairs, names, listeners with waiting connections, queued data, shutdown, options;
//! peers outside the tree (--ext-unix-sk).

use crate::harness::{scenario, selftest, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::time::Duration;

/// Stream/datagram/seqpacket pairs with data both ways, a listener with an accepted and two waiting
/// connections, abstract and path names, shutdown, SO_PASSCRED/SO_RCVBUF/SO_PEEK_OFF, a pair shared
/// with a child.
#[test]
fn unix_sockets() {
    scenario("unix", &[]);
}

/// Datagram socket E connected to P, then P to Q, E made after P: restore must connect E before P
/// (the old one-pass build connected in inode order, P first, and E's connect was refused).
#[test]
fn unix_dgram_connected_to_a_socket_connected_elsewhere() {
    scenario("unix", &["dgram-order"]);
}

/// A stream socket connected to a listener of the test (outside the tree): the dump fails naming the
/// socket and --ext-unix-sk, with and without that option (a stream connection to the outside cannot
/// be restored), and the target runs on unharmed.
#[test]
fn unix_peer_outside_the_tree() {
    let dir = TestDir::new("unix-ext");
    let path = dir.path.join("outside.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut s = Subject::spawn("unix", &["ext-stream", path.to_str().unwrap()]);
    s.wait_ready(READY_TIMEOUT);
    if !selftest() {
        for extra in [&[][..], &["--ext-unix-sk"][..]] {
            let run = s.try_dump(extra);
            assert!(!run.timed_out, "rcr hung\n{}", run.describe());
            assert!(!run.ok(), "dump {extra:?} of a socket connected outside the tree succeeded\n{}", run.describe());
            let msg = &run.stderr;
            assert!(msg.contains("--ext-unix-sk") && msg.contains("outside"), "the error does not explain --ext-unix-sk\n{}", run.describe());
            assert!(crate::harness::mentions_number(msg, s.pid() as i64), "the error does not name pid {}\n{}", s.pid(), run.describe());
        }
        s.assert_running_untraced(Duration::from_secs(5));
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    drop(listener);
}

/// A datagram socket connected to a bound socket of the test: dumped and restored with --ext-unix-sk,
/// it is connected to that name again (what it sends after the restore arrives).
#[test]
fn unix_dgram_peer_outside_with_ext_unix_sk() {
    let dir = TestDir::new("unix-ext-dgram");
    let path = dir.path.join("outside.dg");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut s = Subject::spawn("unix", &["ext-dgram", path.to_str().unwrap()]);
    s.wait_ready(READY_TIMEOUT);
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before");
    if !selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.ok() && run.stderr.contains("--ext-unix-sk"), "dump without --ext-unix-sk\n{}", run.describe());
        s.assert_running_untraced(Duration::from_secs(5));
    }
    s.dump(&["--ext-unix-sk"]);
    s.restore(&["--ext-unix-sk"]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

/// `dump -R` leaves the queued data, the task's SO_PEEK_OFF and a connection waiting to be accepted
/// in place (the original checks them), and the images restore the same state.
#[test]
fn unix_leave_running_keeps_the_queues() {
    let mut s = Subject::spawn("unix", &["keep"]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&["-R"]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
    if selftest() {
        return;
    }
    // The original is gone (its pid and abstract name free): the restored one checks the same.
    s.restore(&[]);
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// `dump -R` of connections waiting to be accepted that hold data fails (rcr could read the data only
/// by accepting them), naming the listener; everything is left as it was: the program then finds all
/// its sockets, queues and options unchanged.
#[test]
fn unix_leave_running_refuses_waiting_data() {
    let mut s = Subject::spawn("unix", &[]);
    s.wait_ready(READY_TIMEOUT);
    if !selftest() {
        let run = s.try_dump(&["-R"]);
        assert!(!run.timed_out && !run.ok(), "dump -R succeeded\n{}", run.describe());
        assert!(run.stderr.contains("-R") && run.stderr.contains("accept"), "the error does not explain\n{}", run.describe());
        s.assert_running_untraced(Duration::from_secs(5));
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}

/// A file descriptor in flight (SCM_RIGHTS) stops the dump with an error saying so; the message and its
/// fd stay queued (the program receives and uses it), and rcr kept no copy of it.
#[test]
fn unix_fd_in_flight_is_refused() {
    let mut s = Subject::spawn("unix", &["scm"]);
    s.wait_ready(READY_TIMEOUT);
    if !selftest() {
        let run = s.try_dump(&[]);
        assert!(!run.timed_out && !run.ok(), "dump succeeded\n{}", run.describe());
        assert!(run.stderr.contains("SCM_RIGHTS"), "the error does not name SCM_RIGHTS\n{}", run.describe());
        assert!(crate::harness::mentions_number(&run.stderr, s.pid() as i64), "the error does not name the pid\n{}", run.describe());
        s.assert_running_untraced(Duration::from_secs(5));
    }
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}
