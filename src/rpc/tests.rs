//! The session against an in-process client on a socketpair: answers to each request type and to
//! bad packets (the dump and restore themselves are tested end to end in tests/e2e/rpc.rs).

use super::*;
use rcr_images::rpc::CriuOpts;

/// Starts a session on one end; returns the other end and the session's outcome.
fn session() -> (Conn, std::thread::JoinHandle<bool>) {
    let (ours, theirs) = Conn::pair();
    let h = std::thread::spawn(move || serve(Arc::new(ours), &Server { plugin_dir: None }));
    (theirs, h)
}

fn ask(c: &Conn, bytes: &[u8]) -> CriuResp {
    c.send(bytes).unwrap();
    match c.recv().unwrap() {
        Packet::Data(b) => CriuResp::decode(b.as_slice()).unwrap(),
        _ => panic!("no response"),
    }
}

fn req(t: CriuReqType, keep_open: bool) -> CriuReq {
    CriuReq { r#type: t as i32, keep_open: Some(keep_open), ..Default::default() }
}

#[test]
fn version_is_criu_4_2() {
    assert_eq!(format!("{CRIU_MAJOR}.{CRIU_MINOR}"), crate::CRIU_VERSION);
    let (c, h) = session();
    let r = ask(&c, &req(CriuReqType::Version, true).encode_to_vec());
    assert!(r.success);
    let v = r.version.unwrap();
    assert_eq!((v.major_number, v.minor_number, v.gitid), (4, 2, None));
    // keep_open: a second request in the same session.
    let mut f = req(CriuReqType::FeatureCheck, false);
    f.features = Some(CriuFeatures { mem_track: Some(true), lazy_pages: Some(true), pidfd_store: Some(true) });
    let r = ask(&c, &f.encode_to_vec());
    assert!(r.success, "{r:?}");
    assert_eq!(r.features, Some(CriuFeatures { mem_track: Some(false), lazy_pages: Some(false), pidfd_store: Some(false) }));
    // Without keep_open the session ends.
    assert!(matches!(c.recv().unwrap(), Packet::Closed));
    assert!(h.join().unwrap());
}

#[test]
fn unsupported_types_are_answered_by_name() {
    for (t, word) in [
        (CriuReqType::PreDump, "PRE_DUMP"),
        (CriuReqType::SinglePreDump, "SINGLE_PRE_DUMP"),
        (CriuReqType::PageServer, "PAGE_SERVER"),
        (CriuReqType::PageServerChld, "PAGE_SERVER_CHLD"),
        (CriuReqType::CpuinfoDump, "CPUINFO_DUMP"),
        (CriuReqType::CpuinfoCheck, "CPUINFO_CHECK"),
        (CriuReqType::WaitPid, "WAIT_PID"),
        (CriuReqType::Empty, "EMPTY"),
        (CriuReqType::Notify, "NOTIFY"),
    ] {
        let (c, h) = session();
        let r = ask(&c, &req(t, false).encode_to_vec());
        assert!(!r.success);
        assert_eq!(r.r#type(), t);
        assert!(r.cr_errmsg.as_deref().unwrap_or("").contains(word), "{t:?}: {r:?}");
        assert!(!h.join().unwrap());
    }
}

#[test]
fn bad_packets_get_an_error_response() {
    let mut unknown_type = req(CriuReqType::Version, false);
    unknown_type.r#type = 99;
    for (bytes, says) in [
        (vec![0xffu8; 9], "not a criu_req"),
        (req(CriuReqType::Version, false).encode_to_vec()[..1].to_vec(), "not a criu_req"),
        (vec![0x08, 0x0a, 0xb8, 0x06, 0x01], "criu_req.103"),
        (unknown_type.encode_to_vec(), "unknown request type 99"),
    ] {
        let (c, h) = session();
        let r = ask(&c, &bytes);
        assert!(!r.success);
        assert!(r.cr_errmsg.as_deref().unwrap_or("").contains(says), "{bytes:?}: {r:?}");
        assert!(!h.join().unwrap());
    }
}

#[test]
fn refused_options_and_missing_images() {
    let (c, h) = session();
    let mut d = req(CriuReqType::Dump, true);
    let dir = std::env::temp_dir().to_string_lossy().into_owned();
    let (tcp, external) = (Some(true), vec!["x".to_string()]);
    d.opts = Some(CriuOpts { pid: Some(1), images_dir_fd: -1, images_dir: Some(dir), log_to_stderr: Some(true), tcp_established: tcp, external, ..Default::default() });
    let r = ask(&c, &d.encode_to_vec());
    assert!(!r.success);
    assert_eq!(r.cr_errno, Some(libc::EBADRQC));
    let msg = r.cr_errmsg.unwrap();
    assert!(msg.contains("tcp_established (criu's --tcp-established)") && msg.contains("external"), "{msg}");
    assert_eq!(r.dump, Some(CriuDumpResp { restored: Some(false) }));
    // No images directory at all.
    let mut rs = req(CriuReqType::Restore, false);
    rs.opts = Some(CriuOpts::default());
    let r = ask(&c, &rs.encode_to_vec());
    assert!(!r.success);
    assert!(r.cr_errmsg.unwrap().contains("images_dir"));
    assert_eq!(r.restore, Some(CriuRestoreResp { pid: -1 }));
    assert!(!h.join().unwrap());
}

#[test]
fn a_bad_images_dir_fd_is_named() {
    let (c, h) = session();
    let mut d = req(CriuReqType::Dump, false);
    d.opts = Some(CriuOpts { pid: Some(1), images_dir_fd: 999_999, ..Default::default() });
    let r = ask(&c, &d.encode_to_vec());
    assert!(!r.success);
    assert!(r.cr_errmsg.unwrap().contains("images_dir_fd 999999"));
    assert!(!h.join().unwrap());
}
