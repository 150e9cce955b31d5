//! CRIU's RPC as runtimes speak it: a client here starts `rcr swrk FD` on a SOCK_SEQPACKET socketpair
//! (as runc and podman do) or connects to `rcr service --address SOCK` (libcriu), sends `criu_req`
//! packets and reads `criu_resp` ones.

use crate::harness::rcr::{RcrProc, RcrRun, RcrStdio};
use crate::harness::{selftest, wait_until, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use prost::Message;
use rcr_images::rpc::{CriuFeatures, CriuOpts, CriuReq, CriuReqType, CriuResp};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// The client's end of one session, and the rcr serving it.
struct Session {
    sk: OwnedFd,
    rcr: Option<RcrProc>,
    /// The notifications seen (criu's script names).
    notified: Vec<String>,
}

impl Session {
    /// `rcr swrk FD` on a new socketpair, run in `dir` (its stdout/stderr files go there).
    fn swrk(dir: &Path) -> Session {
        let (ours, theirs) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let args = vec!["swrk".to_string(), theirs.as_raw_fd().to_string()];
        let rcr = RcrProc::start(&args, dir, vec![], RcrStdio::KeepFd(&theirs));
        drop(theirs);
        Session { sk: ours, rcr: Some(rcr), notified: Vec::new() }
    }

    fn send(&self, bytes: &[u8]) {
        socket::send(self.sk.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL).unwrap();
    }

    /// The next response (None when rcr closed the session), with a timeout.
    fn recv(&self) -> Option<CriuResp> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&self.sk), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(SESSION_TIMEOUT.as_millis() as u16)).unwrap();
        assert!(n > 0, "no response from rcr within {SESSION_TIMEOUT:?}");
        let mut buf = vec![0u8; 1 << 16];
        let n = socket::recv(self.sk.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        (n > 0).then(|| CriuResp::decode(&buf[..n]).unwrap())
    }

    /// Sends `req` and returns the final response, answering each notification with success.
    fn ask(&mut self, req: &CriuReq) -> CriuResp {
        self.send(&req.encode_to_vec());
        self.answer()
    }

    fn answer(&mut self) -> CriuResp {
        loop {
            let r = self.recv().expect("rcr closed the session without a response");
            if r.r#type() != CriuReqType::Notify {
                return r;
            }
            self.notified.push(r.notify.and_then(|n| n.script).unwrap_or_default());
            let ok = CriuReq { r#type: CriuReqType::Notify as i32, notify_success: Some(true), ..Default::default() };
            self.send(&ok.encode_to_vec());
        }
    }

    /// Closes the client's end and waits for rcr to exit.
    fn close(self) -> RcrRun {
        let Session { sk, rcr, .. } = self;
        drop(sk);
        rcr.expect("a swrk session").wait(SESSION_TIMEOUT)
    }
}

fn req(t: CriuReqType) -> CriuReq {
    CriuReq { r#type: t as i32, ..Default::default() }
}

/// A dump or restore request for the images directory `images` (an fd of this process, as runc's).
fn opts(images: &std::fs::File, pid: Option<i32>, log: &str) -> CriuOpts {
    CriuOpts {
        images_dir_fd: images.as_raw_fd(),
        pid,
        log_file: Some(log.into()),
        log_level: Some(4),
        notify_scripts: Some(true),
        // runc sends its flags whether set or not.
        leave_running: Some(false),
        tcp_established: Some(false),
        shell_job: Some(false),
        file_locks: Some(false),
        ..Default::default()
    }
}

fn images_dir(s: &Subject) -> std::fs::File {
    std::fs::create_dir_all(&s.images).unwrap();
    std::fs::File::open(&s.images).unwrap()
}

/// VERSION, FEATURE_CHECK and CHECK in one session (keep_open), then the session ends with rcr's
/// exit status 0.
#[test]
fn rpc_version_feature_and_check() {
    let dir = TestDir::new("rpc-version");
    let mut s = Session::swrk(&dir.path);
    let r = s.ask(&CriuReq { keep_open: Some(true), ..req(CriuReqType::Version) });
    assert!(r.success, "{r:?}");
    let v = r.version.unwrap();
    assert_eq!((v.major_number, v.minor_number), (4, 2), "runc needs criu >= 3.x; rcr answers criu 4.2");
    let mut f = CriuReq { keep_open: Some(true), ..req(CriuReqType::FeatureCheck) };
    f.features = Some(CriuFeatures { mem_track: Some(true), lazy_pages: Some(true), pidfd_store: Some(true) });
    let r = s.ask(&f);
    assert!(r.success, "{r:?}");
    assert_eq!(r.features, Some(CriuFeatures { mem_track: Some(false), lazy_pages: Some(false), pidfd_store: Some(false) }));
    let r = s.ask(&req(CriuReqType::Check));
    assert!(r.success, "CHECK: {r:?}");
    assert_eq!(r.r#type(), CriuReqType::Check);
    assert!(s.recv().is_none(), "rcr kept the session open after a request without keep_open");
    let run = s.close();
    assert!(run.ok(), "{}", run.describe());
}

/// A counter dumped through DUMP (images_dir_fd of this process) and restored through RESTORE: the
/// restored counter goes on and verifies itself.
#[test]
fn rpc_dump_restore_counter() {
    let mut subj = Subject::spawn("counter", &[]);
    subj.wait_ready(READY_TIMEOUT);
    if selftest() {
        subj.signal(libc::SIGTERM);
        subj.wait_result(RESULT_TIMEOUT).unwrap();
        return;
    }
    let images = images_dir(&subj);
    let dir = subj.path().to_path_buf();
    let imgs = subj.images.clone();
    let mut notified = Vec::new();
    subj.dump_by("RPC DUMP", |pid| {
        let mut s = Session::swrk(&dir);
        let r = s.ask(&CriuReq { opts: Some(opts(&images, Some(pid), "dump.log")), ..req(CriuReqType::Dump) });
        let log = std::fs::read_to_string(imgs.join("dump.log")).unwrap_or_default();
        assert!(r.success, "RPC DUMP failed: {:?}\n{log}", r.cr_errmsg);
        assert_eq!(r.dump.and_then(|d| d.restored), Some(false));
        notified = std::mem::take(&mut s.notified);
        let run = s.close();
        assert!(run.ok(), "{}", run.describe());
    });
    assert!(subj.images.join("inventory.img").exists(), "no inventory.img in {}", subj.images.display());
    let before = subj.output().lines().filter(|l| l.parse::<u64>().is_ok()).count();

    let mut s = Session::swrk(&dir);
    let r = s.ask(&CriuReq { opts: Some(opts(&images, None, "restore.log")), ..req(CriuReqType::Restore) });
    let log = std::fs::read_to_string(subj.images.join("restore.log")).unwrap_or_default();
    assert!(r.success, "RPC RESTORE failed: {:?}\n{log}", r.cr_errmsg);
    let pid = r.restore.map_or(-1, |x| x.pid);
    let restore_notified = std::mem::take(&mut s.notified);
    let run = s.close();
    assert!(run.ok(), "{}", run.describe());
    subj.restored_by("RPC RESTORE", pid);
    let out = subj.out.clone();
    wait_until(Duration::from_secs(10), "the restored counter to count on", || {
        std::fs::read_to_string(&out).unwrap_or_default().lines().filter(|l| l.parse::<u64>().is_ok()).count() >= before + 3
    })
    .unwrap();
    subj.signal(libc::SIGTERM);
    subj.wait_result(RESULT_TIMEOUT).unwrap();
    // Notifications are the engine's action points, in criu's order.
    assert_eq!(notified, ["pre-dump", "post-dump"], "dump notifications");
    assert_eq!(restore_notified, ["pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume", "post-resume"], "restore notifications");
}

/// Bad requests each get an error response naming the problem; nothing is dumped and the subject
/// runs on, untraced, and verifies itself.
#[test]
fn rpc_bad_requests_dump_nothing() {
    let mut subj = Subject::spawn("counter", &[]);
    subj.wait_ready(READY_TIMEOUT);
    let images = images_dir(&subj);
    let good = CriuReq { opts: Some(opts(&images, Some(subj.pid()), "dump.log")), ..req(CriuReqType::Dump) }.encode_to_vec();
    let mut tcp = CriuReq { opts: Some(opts(&images, Some(subj.pid()), "dump.log")), ..req(CriuReqType::Dump) };
    if let Some(o) = tcp.opts.as_mut() {
        o.tcp_established = Some(true);
    }
    let mut unknown = good.clone();
    unknown.extend([0xb8, 0x06, 0x01]); // field 103 of criu_req
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", vec![0xff; 32], "not a criu_req"),
        ("truncated", good[..good.len() - 3].to_vec(), "not a criu_req"),
        ("unknown field", unknown, "criu_req.103"),
        ("pre-dump", CriuReq { opts: tcp.opts.clone(), ..req(CriuReqType::PreDump) }.encode_to_vec(), "PRE_DUMP"),
        ("tcp_established", tcp.encode_to_vec(), "tcp_established"),
    ];
    for (what, bytes, says) in cases {
        let mut s = Session::swrk(subj.path());
        s.send(&bytes);
        let r = s.answer();
        assert!(!r.success, "{what}: {r:?}");
        let msg = r.cr_errmsg.clone().unwrap_or_default();
        assert!(msg.contains(says), "{what}: the error does not say {says:?}: {msg}");
        let run = s.close();
        assert!(!run.ok() && !run.timed_out, "{what}: rcr swrk should exit non-zero after a failed request\n{}", run.describe());
        assert!(!subj.images.join("inventory.img").exists(), "{what}: something was dumped");
        if what == "tcp_established" {
            // runc shows its users the log, not cr_errmsg: the refusal is there too.
            let log = std::fs::read_to_string(subj.images.join("dump.log")).unwrap_or_default();
            assert!(log.contains("tcp_established (criu's --tcp-established)"), "the refusal is not in dump.log:\n{log}");
        }
        subj.assert_running_untraced(Duration::from_secs(5));
    }
    subj.signal(libc::SIGTERM);
    subj.wait_result(RESULT_TIMEOUT).unwrap();
}

/// `rcr service --address SOCK`: two clients connect one after the other.
#[test]
fn rpc_service_socket() {
    let dir = TestDir::new("rpc-service");
    let sock = dir.path.join("rcr.sock");
    let args: Vec<String> = ["service", "--address", &sock.to_string_lossy(), "-v4", "-o", "service.log"].iter().map(|s| s.to_string()).collect();
    let rcr = RcrProc::start(&args, &dir.path, vec![dir.path.join("service.log")], RcrStdio::Files);
    wait_until(Duration::from_secs(10), "the service socket", || sock.exists()).unwrap();
    for t in [CriuReqType::Version, CriuReqType::Check] {
        let sk = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).unwrap();
        socket::connect(sk.as_raw_fd(), &UnixAddr::new(&sock).unwrap()).unwrap();
        let mut s = Session { sk, rcr: None, notified: Vec::new() };
        let r = s.ask(&req(t));
        assert!(r.success, "{t:?} through the service: {r:?}");
        assert_eq!(r.r#type(), t);
        assert!(s.recv().is_none(), "the service kept the session open");
    }
    let run = rcr.kill();
    assert!(run.log.contains("client connected"), "{}", run.describe());
}
