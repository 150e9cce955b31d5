use super::*;
use std::path::Path;

#[test]
fn every_declared_hook_and_service_is_in_the_layouts() {
    assert_eq!(RcrPluginC::size_of_version(1), 104);
    assert_eq!(RcrPluginC::size_of_version(2), 168);
    assert_eq!(RcrPluginC::size_of_version(ABI_VERSION), std::mem::size_of::<RcrPluginC>());
    assert_eq!(std::mem::offset_of!(RcrPluginC, hooks) + std::mem::offset_of!(HookSet, dump_vma), RcrPluginC::size_of_version(1));
    assert_eq!(HookSet::NONE.names().len(), 0);
    assert_eq!(HOOKS.len(), 20);
    // ABI 1 and 2 sizes of the host table, fixed by plugins built against them.
    assert_eq!(std::mem::offset_of!(RcrHost, svc) + std::mem::offset_of!(Services, store_put), 80);
    assert_eq!(std::mem::offset_of!(RcrHost, svc) + std::mem::offset_of!(Services, image_open), 104);
    for w in HOOKS.windows(2).chain(SERVICES.windows(2)) {
        assert!(w[0].version <= w[1].version, "{} (ABI {}) is declared after {} (ABI {}): append-only", w[1].name, w[1].version, w[0].name, w[0].version);
    }
}

#[test]
fn the_checked_in_header_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/rcr_plugin.h");
    let want = cheader::header();
    if std::env::var_os("RCR_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap();
    assert!(have == want, "{} is not what plugin-api declares; run RCR_BLESS=1 cargo test -p rcr-plugin-api to regenerate it", path.display());
}

#[test]
fn the_c_compiler_sees_the_rust_layout() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let d = std::env::temp_dir().join(format!("rcr-plugin-layout-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let (prog, want) = cheader::layout_check();
    std::fs::write(d.join("layout.c"), prog).unwrap();
    let out = std::process::Command::new("cc").args(["-Wall", "-Werror", "-o"]).arg(d.join("layout")).arg(d.join("layout.c")).arg("-I").arg(&include).output().expect("run cc");
    assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
    let run = std::process::Command::new(d.join("layout")).output().unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    let got = String::from_utf8(run.stdout).unwrap();
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w, "C (left) and Rust (right) disagree");
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

#[test]
fn fdinfo_fields_are_found_by_key() {
    let text = "pos:\t0\nflags:\t02004002\neventfd-count:               2a\n";
    let raw = RcrFile {
        pid: 1,
        fd: 3,
        local_fd: 9,
        flags: 0,
        mode: 0,
        reserved: 0,
        pos: 0,
        dev: 0,
        ino: 0,
        rdev: 0,
        path: b"x".as_ptr(),
        path_len: 1,
        fdinfo: text.as_ptr(),
        fdinfo_len: text.len(),
    };
    let f = File { raw: &raw };
    assert_eq!(f.fdinfo_field("eventfd-count"), Some("2a"));
    assert_eq!(f.fdinfo_field("flags"), Some("02004002"));
    assert_eq!(f.fdinfo_field("nope"), None);
    assert_eq!(f.path(), "x");
}
