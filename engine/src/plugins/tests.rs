//! The host's unit tests, with the C fixture plugin (tests/progs/plugin_fixture.c).

use super::load::valid_name;
use super::*;
use std::os::fd::AsRawFd;
use std::os::fd::AsFd;

#[test]
fn names_are_checked() {
    assert!(valid_name("example-toydev"));
    assert!(valid_name("dev-12.state"));
    assert!(!valid_name(""));
    assert!(!valid_name("../x"));
    assert!(!valid_name(".hidden"));
    assert!(!valid_name("a b"));
}

#[test]
fn missing_plugin_names_the_directory() {
    let p = Plugins::load(Some(Path::new("/nonexistent-rcr-plugins")), api::RCR_STAGE_RESTORE, Path::new("/tmp"), "{}");
    assert!(matches!(p, Err(PluginError::Dir { .. })));
    let mut none = Plugins::none();
    none.dir = Some(PathBuf::from("/opt/x"));
    let e = none.check_needed(&["amdgpu".into()]).unwrap_err().to_string();
    assert_eq!(e, "this checkpoint needs plugin 'amdgpu' (not found in /opt/x)");
}

#[test]
fn files_are_sorted_and_only_libraries() {
    let d = tempfile::tempdir().unwrap();
    for n in ["b.so", "a.so", "README", "c.so.txt"] {
        std::fs::write(d.path().join(n), b"").unwrap();
    }
    let files: Vec<String> = plugin_files(d.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(files, ["a.so", "b.so"]);
    // Not a library: an error naming the file.
    let e = Plugins::load(Some(d.path()), api::RCR_STAGE_DUMP, d.path(), "{}").err().unwrap().to_string();
    assert!(e.contains("a.so"), "{e}");
}

/// Builds the C test fixture (tests/progs/plugin_fixture.c) with `defines` into a plugin directory.
fn fixture_dir(defines: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
        .arg(root.join("plugin-api/include"))
        .args(defines)
        .arg("-o")
        .arg(d.path().join("fixture.so"))
        .arg(root.join("tests/progs/plugin_fixture.c"))
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    d
}

/// The C test fixture built with `defines` and loaded for `stage` (its directory must outlive it).
pub(crate) fn loaded(defines: &[&str], stage: u32) -> (tempfile::TempDir, Plugins) {
    let d = fixture_dir(defines);
    let p = Plugins::load(Some(d.path()), stage, d.path(), "{}").unwrap();
    (d, p)
}

#[test]
fn store_keeps_bytes_and_fds_by_key() {
    let mut st = Store::default();
    let (r, w) = nix::unistd::pipe().unwrap();
    st.put("a-1", b"hello", Some(w.as_fd())).unwrap();
    drop(w); // the store holds its own copy
    st.put("b", b"", None).unwrap();
    assert!(st.put("../x", b"", None).is_err());
    assert!(st.put("big", &vec![0u8; STORE_MAX_BYTES + 1], None).is_err());
    let (data, fd) = st.get("a-1").unwrap().unwrap();
    assert_eq!(data, b"hello");
    let fd = fd.unwrap();
    assert_eq!(nix::unistd::write(&fd, b"x").unwrap(), 1);
    let mut buf = [0u8; 1];
    assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap(), 1);
    assert!(st.get("b").unwrap().unwrap().1.is_none());
    assert!(st.get("nope").unwrap().is_none());
}

#[test]
fn external_objects_are_claimed_and_restored_by_their_plugin() {
    let (_d, p) = loaded(&["-DFIXTURE_EXT"], api::RCR_STAGE_DUMP);
    // Unix socket: offered with its peer's inode; claimed only for peer 4242.
    let (a, _b) = nix::sys::socket::socketpair(nix::sys::socket::AddressFamily::Unix, nix::sys::socket::SockType::Stream, None, nix::sys::socket::SockFlag::empty()).unwrap();
    // SAFETY: fstat into a zeroed stat of a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(a.as_raw_fd(), &mut st) }, 0);
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", a.as_raw_fd())).unwrap();
    let sk = OfferedFd { pid: std::process::id() as i32, fd: a.as_raw_fd(), path: "socket:[1]", local: a.as_fd(), st: &st, flags: 2, pos: 0, fdinfo: &fdinfo };
    assert_eq!(p.claim_ext_unix_sk(&sk, 1, 7).unwrap(), None);
    assert_eq!(p.claim_ext_unix_sk(&sk, 4242, 7).unwrap().as_deref(), Some("fixture"));
    assert_eq!(p.needed(), ["fixture"]);
    let fd = p.restore_ext_unix_sk("fixture", 7).unwrap();
    // The plugin left the socket's peer in the store: the two are connected.
    let store = p.shared.store.borrow();
    let (_, peer) = store.get("usk-peer-7").unwrap().unwrap();
    nix::unistd::write(peer.as_ref().unwrap(), b"k").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap(), 1);
    drop(store);
    let e = p.restore_ext_unix_sk("amdgpu", 7).unwrap_err().to_string();
    assert!(e.contains("needs plugin 'amdgpu', which is not loaded"), "{e}");
    // Mount and link.
    let m = ExtMount { mnt_id: 40, mountpoint: "/mnt/x", root: "/", fstype: "fixturefs", source: "none" };
    assert_eq!(p.claim_ext_mount(&m, 3).unwrap().as_deref(), Some("fixture"));
    assert_eq!(p.claim_ext_mount(&ExtMount { fstype: "ext4", ..m }, 4).unwrap(), None);
    p.restore_ext_mount("fixture", 3, "/restore/mnt/x").unwrap();
    assert_eq!(p.shared.store.borrow().get("mnt-3").unwrap().unwrap().0, b"/restore/mnt/x");
    assert_eq!(p.claim_ext_link(5, "fx0", "veth", 9).unwrap().as_deref(), Some("fixture"));
    assert_eq!(p.claim_ext_link(5, "eth0", "veth", 9).unwrap(), None);
    p.restore_ext_link("fixture", 9, "fx0").unwrap();
    assert_eq!(p.shared.store.borrow().get("link-9").unwrap().unwrap().0, b"fx0");
}

#[test]
fn a_plugin_without_the_hooks_is_not_asked_and_cannot_restore_them() {
    let (_d, p) = loaded(&[], api::RCR_STAGE_RESTORE);
    assert_eq!(p.claim_ext_link(5, "fx0", "veth", 9).unwrap(), None);
    let e = p.restore_ext_mount("fixture", 3, "/m").unwrap_err().to_string();
    assert!(e.contains("has no restore_ext_mount hook"), "{e}");
    assert!(!p.wants_vmas());
}

#[test]
fn an_abi_1_plugin_loads_with_the_newer_hooks_absent() {
    // Its struct ends at resume_devices_late; what lies after it in memory must not be read as hooks.
    let (_d, p) = loaded(&["-DFIXTURE_V1", "-DFIXTURE_CLAIM", "-DFIXTURE_EXT"], api::RCR_STAGE_DUMP);
    let info = p.infos()[0].clone();
    assert_eq!(info.abi_version, 1);
    assert_eq!(info.hooks, ["init", "dump_file"]);
    assert!(!p.wants_vmas());
}

#[test]
fn an_abi_2_plugin_loads_with_the_newer_hooks_absent() {
    // Its struct ends at restore_ext_link; the restore_task it sets beyond its size must not be read.
    let (_d, p) = loaded(&["-DFIXTURE_V2", "-DFIXTURE_EXT"], api::RCR_STAGE_RESTORE);
    let info = p.infos()[0].clone();
    assert_eq!(info.abi_version, 2);
    assert!(!info.hooks.contains(&"restore_task"), "{:?}", info.hooks);
    assert!(info.hooks.contains(&"restore_ext_link"), "{:?}", info.hooks);
    assert!(!p.wants_tasks());
}

struct Recorder(RefCell<Vec<(i32, i32, u128)>>);
impl ThreadControl for Recorder {
    fn run_thread(&self, pid: i32, tid: i32, dur: std::time::Duration) -> crate::Result<()> {
        self.0.borrow_mut().push((pid, tid, dur.as_millis()));
        Ok(())
    }
}

#[test]
fn thread_control_is_lent_only_for_the_call() {
    let (_d, p) = loaded(&[], api::RCR_STAGE_DUMP);
    let l = &p.plugins[0];
    // SAFETY: the services of a loaded plugin's table, called with its ctx.
    let run = |ms: u32| unsafe { (l.table.svc.run_thread)(l.table.ctx, 10, 11, ms) };
    assert_eq!(run(5), api::RCR_ERROR);
    assert!(l.ctx.error.borrow().as_deref().unwrap_or("").contains("only available during checkpoint_devices"));
    let rec = Recorder(RefCell::new(Vec::new()));
    let r = p.with_thread_control(&rec, || (run(5), run(RUN_THREAD_MAX_MS + 1)));
    assert_eq!(r, (api::RCR_OK, api::RCR_ERROR));
    assert_eq!(*rec.0.borrow(), [(10, 11, 5)]);
    assert_eq!(run(5), api::RCR_ERROR, "thread control outlived with_thread_control");
}
