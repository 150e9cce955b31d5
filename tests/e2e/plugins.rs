//! Plugins: the example device plugins (Rust and C) checkpoint a toy device the core cannot (BPF array
//! maps used as a register file, one of them mapped into memory: tests/progs/bpf_dev.c); thread control
//! of a frozen task; an ABI-1 plugin still loads; and the host's failure modes: no plugin, a checkpoint
//! needing a missing plugin, a failing init, a newer ABI, a panic in a hook, two plugins wanting one fd.
//!
//! The Rust plugins are workspace members built by `cargo test --workspace` (next to the rcr binary);
//! C plugins are compiled here with `cc -shared -fPIC`.

use crate::harness::{procfs, rcr, rcr_bin, selftest, unique, Subject, TestDir, READY_TIMEOUT, RESULT_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const EXAMPLE: &str = "example-toydev";
const RUST_EXAMPLE: &str = "rcr_example_toydev";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Rust plugin built by the workspace: next to the rcr binary (`cargo build`) or in its deps/
/// (`cargo test --workspace` builds it there without copying it up); the newer of the two.
fn rust_plugin(lib: &str) -> PathBuf {
    let bin_dir = rcr_bin().parent().map(Path::to_path_buf).unwrap_or_default();
    let name = format!("lib{lib}.so");
    let found = [bin_dir.join(&name), bin_dir.join("deps").join(&name)]
        .into_iter()
        .filter_map(|p| std::fs::metadata(&p).and_then(|m| m.modified()).ok().map(|t| (t, p)))
        .max();
    match found {
        Some((_, p)) => p,
        None => panic!("{name} is missing in {} and its deps/: build the workspace first (cargo test --workspace, same profile)", bin_dir.display()),
    }
}

/// Compiles a C plugin to `out` (cc -shared -fPIC, the plugin-api header on the include path).
fn c_plugin(src: &Path, defines: &[&str], out: &Path) {
    let res = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror"])
        .arg("-I")
        .arg(root().join("plugin-api/include"))
        .args(defines)
        .arg("-o")
        .arg(out)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("run cc for {}: {e}", src.display()));
    assert!(res.status.success(), "compiling {} failed:\n{}", src.display(), String::from_utf8_lossy(&res.stderr));
}

fn example_c(out: &Path) {
    c_plugin(&root().join("plugins/example-c/example_toydev.c"), &[], out);
}

fn fixture(defines: &[&str], out: &Path) {
    c_plugin(&root().join("tests/progs/plugin_fixture.c"), defines, out);
}

/// Makes one file of a plugin directory at the given path.
type Make<'a> = &'a dyn Fn(&Path);

/// A plugin directory holding `files` (name in the dir, built by the closure).
fn libdir(tag: &str, files: &[(&str, Make<'_>)]) -> TestDir {
    let d = TestDir::new(&format!("libdir-{tag}"));
    for (name, make) in files {
        make(&d.path.join(name));
    }
    d
}

fn copy_of(src: PathBuf) -> impl Fn(&Path) {
    move |dst: &Path| {
        std::fs::copy(&src, dst).unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts the device program and waits for READY.
fn subject() -> Subject {
    subject_with(&[])
}

fn subject_with(args: &[&str]) -> Subject {
    let mut s = Subject::spawn("bpf_dev", args);
    s.wait_ready(READY_TIMEOUT);
    s
}

/// Dump with plugins from `dump_dir`, restore with plugins from `restore_dir`; the program checks its
/// devices from inside.
fn round_trip(dump_dir: &Path, restore_dir: &Path) {
    let mut sub = subject();
    let run = sub.dump(&["-L", s(dump_dir)]);
    if !selftest() {
        assert!(run.log.contains(&format!("fd 20 (anon_inode:bpf-map) claimed by plugin '{EXAMPLE}'")), "no fd was claimed by the plugin\n{}", run.describe());
        assert!(run.log.contains(&format!("anon_inode:bpf-map claimed by plugin '{EXAMPLE}'")), "the device mapping was not claimed\n{}", run.describe());
        let names: Vec<String> = std::fs::read_dir(&sub.images).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("plugin-")).collect();
        let devices = names.iter().filter(|n| n.starts_with(&format!("plugin-{EXAMPLE}-toydev-"))).count();
        let vmas = names.iter().filter(|n| n.starts_with(&format!("plugin-{EXAMPLE}-vma-"))).count();
        assert_eq!((devices, vmas), (2, 1), "expected one image per device (fds 20 and 22 share one) and one per mapping: {names:?}");
        // rcr show names the plugin the checkpoint needs and the fds it claimed.
        let out = Command::new(rcr_bin()).args(["show", "-D", s(&sub.images)]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "rcr show failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("plugins needed: {EXAMPLE}")), "rcr show does not name the plugin:\n{text}");
        assert!(text.contains(&format!("  20: claimed by plugin '{EXAMPLE}'")), "rcr show does not say who claimed fd 20:\n{text}");
    }
    sub.restore(&["-L", s(restore_dir)]);
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn rust_example_plugin_checkpoints_the_device() {
    let dir = libdir("rust", &[("example.so", &copy_of(rust_plugin(RUST_EXAMPLE)))]);
    round_trip(&dir.path, &dir.path);
}

#[test]
fn c_example_plugin_checkpoints_the_device() {
    let dir = libdir("c", &[("example.so", &example_c)]);
    round_trip(&dir.path, &dir.path);
}

/// Same name, same image format: dumped by the C plugin, restored by the Rust one.
#[test]
fn c_checkpoint_restores_with_the_rust_plugin() {
    let c = libdir("c", &[("example.so", &example_c)]);
    let rust = libdir("rust", &[("example.so", &copy_of(rust_plugin(RUST_EXAMPLE)))]);
    round_trip(&c.path, &rust.path);
}

/// The failed dump left the program running untouched: it still passes its own checks.
fn still_fine(mut sub: Subject) {
    sub.assert_running_untraced(Duration::from_secs(5));
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

fn assert_dump_fails(sub: &Subject, extra: &[&str], wants: &[&str]) -> rcr::RcrRun {
    let run = sub.try_dump(extra);
    assert!(!run.timed_out, "rcr dump hung\n{}", run.describe());
    assert!(!run.ok(), "the dump succeeded\n{}", run.describe());
    assert_eq!(run.exit, Some(crate::harness::Exit::Code(1)), "rcr did not fail cleanly\n{}", run.describe());
    for w in wants {
        assert!(run.stderr.contains(w), "the error does not say '{w}'\n{}", run.describe());
    }
    run
}

#[test]
fn without_the_plugin_the_dump_fails_clearly() {
    if selftest() {
        return;
    }
    let sub = subject();
    let empty = TestDir::new("libdir-empty");
    assert_dump_fails(&sub, &["-L", s(&empty.path)], &["fd 20", "anon_inode:bpf-map", "cannot checkpoint yet and no plugin claimed it"]);
    still_fine(sub);
}

/// A plugin that claims the device's fds but not its mapping: the dump fails, naming the area.
#[test]
fn an_unclaimed_device_mapping_fails_the_dump_clearly() {
    if selftest() {
        return;
    }
    let dir = libdir("novma", &[("files-only.so", &|p: &Path| fixture(&["-DFIXTURE_CLAIM", "-DFIXTURE_NO_VMA"], p))]);
    let sub = subject();
    assert_dump_fails(&sub, &["-L", s(&dir.path)], &["memory area", "anon_inode:bpf-map", "no plugin claimed it"]);
    still_fine(sub);
}

#[test]
fn restore_without_the_plugin_fails_before_starting_anything() {
    if selftest() {
        return;
    }
    let dir = libdir("c", &[("example.so", &example_c)]);
    let empty = TestDir::new("libdir-empty");
    let mut sub = subject();
    sub.dump(&["-L", s(&dir.path)]);
    let pid = sub.pid();
    let run = sub.try_restore(&["-L", s(&empty.path)]);
    assert!(!run.timed_out && !run.ok(), "restore without the plugin did not fail\n{}", run.describe());
    let want = format!("this checkpoint needs plugin '{EXAMPLE}' (not found in {})", empty.path.display());
    assert!(run.stderr.contains(&want), "the error does not say \"{want}\"\n{}", run.describe());
    assert!(procfs::stat(pid).is_none(), "pid {pid} exists after the failed restore");
    assert!(!sub.pidfile().exists(), "the failed restore wrote a pidfile");
    // Without any plugin directory the message says how to give one.
    let run = sub.try_restore(&[]);
    assert!(run.stderr.contains(&format!("needs plugin '{EXAMPLE}'")), "{}", run.describe());
    // The checkpoint is intact: with the plugin it restores.
    sub.restore(&["-L", s(&dir.path)]);
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn a_failing_init_is_an_error_naming_the_file() {
    if selftest() {
        return;
    }
    let dir = libdir("init", &[("broken.so", &|p: &Path| fixture(&["-DFIXTURE_FAIL_INIT", "-DFIXTURE_NAME=\"broken\""], p))]);
    let sub = subject();
    let file = dir.path.join("broken.so");
    assert_dump_fails(&sub, &["-L", s(&dir.path)], &["plugin 'broken'", s(&file), "init failed", "the device is not present"]);
    still_fine(sub);
}

#[test]
fn a_plugin_built_for_a_newer_abi_is_refused() {
    if selftest() {
        return;
    }
    let dir = libdir("abi", &[("future.so", &|p: &Path| fixture(&["-DFIXTURE_ABI=99", "-DFIXTURE_NAME=\"future\""], p))]);
    let sub = subject();
    let msg = "built for plugin ABI version 99, but this rcr supports plugin ABI versions up to 3";
    assert_dump_fails(&sub, &["-L", s(&dir.path)], &["plugin 'future'", s(&dir.path.join("future.so")), msg]);
    let run = rcr::run(&["plugins".into(), "-L".into(), s(&dir.path).into()], &dir.path, vec![], Duration::from_secs(30));
    assert_eq!(run.exit, Some(crate::harness::Exit::Code(1)), "{}", run.describe());
    assert!(run.stdout.contains(msg), "rcr plugins does not show the refusal\n{}", run.describe());
    still_fine(sub);
}

#[test]
fn a_library_without_an_entry_or_a_duplicate_name_is_refused() {
    if selftest() {
        return;
    }
    let noentry = libdir("noentry", &[("noentry.so", &|p: &Path| fixture(&["-DFIXTURE_NO_ENTRY"], p))]);
    let dup = libdir("dup", &[("a.so", &example_c), ("b.so", &copy_of(rust_plugin(RUST_EXAMPLE)))]);
    let sub = subject();
    assert_dump_fails(&sub, &["-L", s(&noentry.path)], &[s(&noentry.path.join("noentry.so")), "exports no plugin entry"]);
    assert_dump_fails(&sub, &["-L", s(&dup.path)], &["two plugins are named 'example-toydev'", s(&dup.path.join("a.so")), s(&dup.path.join("b.so"))]);
    still_fine(sub);
}

#[test]
fn a_panic_in_a_hook_becomes_an_error() {
    if selftest() {
        return;
    }
    let dir = libdir("panic", &[("panic.so", &copy_of(rust_plugin("rcr_test_panic_plugin")))]);
    let sub = subject();
    assert_dump_fails(&sub, &["-L", s(&dir.path)], &["plugin 'test-panic'", "dump_file failed", "panicked in dump_file", "deliberate panic on fd 20"]);
    still_fine(sub);
}

/// Two plugins claim bpf maps and their mappings: the first in file-name order wins (a.so, although its plugin name sorts
/// last), every time; the other is never asked.
#[test]
fn the_first_plugin_in_order_wins_a_contested_fd() {
    if selftest() {
        return;
    }
    let dir = libdir(
        "order",
        &[
            ("a.so", &|p: &Path| fixture(&["-DFIXTURE_CLAIM", "-DFIXTURE_NAME=\"zz-first\""], p)),
            ("b.so", &|p: &Path| fixture(&["-DFIXTURE_CLAIM", "-DFIXTURE_NAME=\"aa-second\""], p)),
        ],
    );
    let mut sub = subject();
    for round in 0..2 {
        let images = sub.path().join(format!("images-{round}-{}", unique()));
        let run = sub.try_dump_into(&images, &["-R", "-L", s(&dir.path)]);
        assert!(run.ok(), "dump failed\n{}", run.describe());
        let names: Vec<String> = std::fs::read_dir(&images).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("plugin-")).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with("plugin-zz-first-claimed-") && !n.contains("-vma-")).count(), 2, "round {round}: {names:?}");
        assert_eq!(names.iter().filter(|n| n.starts_with("plugin-zz-first-claimed-vma-")).count(), 1, "round {round}: {names:?}");
        assert!(!names.iter().any(|n| n.contains("aa-second")), "round {round}: the second plugin was asked: {names:?}");
        assert!(run.log.contains("fd 20 (anon_inode:bpf-map) claimed by plugin 'zz-first'"), "round {round}\n{}", run.describe());
        assert!(!run.log.contains("claimed by plugin 'aa-second'"), "round {round}\n{}", run.describe());
        sub.assert_running_untraced(Duration::from_secs(5));
    }
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

#[test]
fn rcr_plugins_lists_plugins_and_their_hooks() {
    if selftest() {
        return;
    }
    let dir = libdir(
        "list",
        &[
            ("1-example.so", &copy_of(rust_plugin(RUST_EXAMPLE))),
            ("2-fixture.so", &|p: &Path| fixture(&[], p)),
            ("3-v1.so", &|p: &Path| fixture(&["-DFIXTURE_V1", "-DFIXTURE_NAME=\"old\""], p)),
            ("4-v2.so", &|p: &Path| fixture(&["-DFIXTURE_V2", "-DFIXTURE_NAME=\"older\""], p)),
        ],
    );
    std::fs::write(dir.path.join("README"), b"not a plugin").unwrap();
    let run = rcr::run(&["plugins".into(), "--libdir".into(), s(&dir.path).into()], &dir.path, vec![], Duration::from_secs(30));
    assert!(run.ok(), "{}", run.describe());
    let out = &run.stdout;
    assert!(out.contains("plugins in ") && out.contains(": 4\n"), "{out}");
    assert!(out.contains("example-toydev 0.1.0 (Rust, plugin ABI 3)") && out.contains("hooks: init, dump_file, restore_file, dump_vma, update_vma"), "{out}");
    assert!(out.contains("fixture 0.0.1 (C, plugin ABI 3)") && out.contains("hooks: init, dump_file\n"), "{out}");
    // A plugin built for ABI version 1 (shorter struct) still loads.
    assert!(out.contains("old 0.0.1 (C, plugin ABI 1)"), "{out}");
    // And one built for ABI version 2: what its struct does not cover is not read.
    assert!(out.contains("older 0.0.1 (C, plugin ABI 2)"), "{out}");
    // RCR_LIBS_DIR is the default plugin directory.
    let out = dir.path.join("env.out");
    let mut child = Command::new(rcr_bin())
        .arg("plugins")
        .env("RCR_LIBS_DIR", &dir.path)
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill(); // by pid: our own child
            let _ = child.wait();
            panic!("rcr plugins did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(text.contains("example-toydev"), "RCR_LIBS_DIR ignored: {text}");
}

/// A plugin built for ABI version 1 loads next to the example (its init runs) and the checkpoint
/// round-trips.
#[test]
fn an_abi_1_plugin_keeps_loading() {
    let dir = libdir("v1", &[("a-example.so", &example_c), ("b-old.so", &|p: &Path| fixture(&["-DFIXTURE_V1", "-DFIXTURE_NAME=\"old\""], p))]);
    round_trip(&dir.path, &dir.path);
}

/// Thread control: while the task is frozen the fixture rings the device's doorbell and lets only the
/// thread "toydev-drv" run (run_thread); the program checks from inside that exactly that thread
/// answered, and the fixture checks that run_thread is refused outside checkpoint_devices.
#[test]
fn run_thread_lets_only_the_chosen_thread_of_a_frozen_task_run() {
    if selftest() {
        return; // the doorbell rings only during a dump
    }
    let dir = libdir("threads", &[("a-example.so", &copy_of(rust_plugin(RUST_EXAMPLE))), ("b-threads.so", &|p: &Path| fixture(&["-DFIXTURE_THREADS", "-DFIXTURE_NAME=\"threads\""], p))]);
    let mut sub = subject_with(&["threads"]);
    let run = sub.dump(&["-L", s(&dir.path)]);
    assert!(run.log.contains("lets thread"), "run_thread was not used\n{}", run.describe());
    sub.restore(&["-L", s(&dir.path)]);
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

/// `rcr pre-dump` (the stage the ABI reserves as RCR_STAGE_PRE_DUMP) is refused clearly.
#[test]
fn pre_dump_is_refused_clearly() {
    if selftest() {
        return;
    }
    let dir = TestDir::new("predump");
    let run = rcr::run(&["pre-dump".into(), "-t".into(), "1".into(), "-D".into(), s(&dir.path).into()], &dir.path, vec![], Duration::from_secs(30));
    assert_eq!(run.exit, Some(crate::harness::Exit::Code(1)), "{}", run.describe());
    assert!(run.stderr.contains("'pre-dump' is a criu command that rcr does not support yet"), "{}", run.describe());
}

/// ABI 3 (plugins/test-abi3, tests/progs/plugin_task.c): a plugin streams a 256 MiB device into its
/// image and back (rcr's own memory stays far below the device's size, dump and restore), and
/// recreates the device from inside the restored task: it opens it, fills it and maps it there with
/// remote system calls while rcr traces the task, and lets the task run a moment (run_thread) before the
/// tree is let go. The program checks the device and its mapping.
#[test]
fn an_abi_3_plugin_streams_a_device_and_recreates_it_inside_the_task() {
    const MIB: u64 = 256;
    let dir = libdir("abi3", &[("abi3.so", &copy_of(rust_plugin("rcr_test_abi3_plugin")))]);
    let mut sub = Subject::spawn("plugin_task", &[&MIB.to_string()]);
    sub.wait_ready(READY_TIMEOUT);
    let dump = sub.dump(&["-L", s(&dir.path)]);
    let images: Vec<PathBuf> = std::fs::read_dir(&sub.images).unwrap().flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("plugin-test-abi3-dev-"))).collect();
    let restore = sub.restore(&["-L", s(&dir.path)]);
    if !selftest() {
        assert!(dump.log.contains("claimed by plugin 'test-abi3'"), "the plugin did not claim the device\n{}", dump.describe());
        let lens: Vec<u64> = images.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).collect();
        assert_eq!(lens, [MIB << 20], "the device's image is not one file of its size: {images:?}");
        assert!(restore.log.contains("recreated inside the task"), "restore_task did not run\n{}", restore.describe());
        assert!(restore.log.contains("ran 50 ms for the plugin before the tree was let go"), "run_thread at restore did not run\n{}", restore.describe());
        // Whole-buffer images would put 256 MiB in rcr's memory; streamed, rcr stays at its usual size.
        let peak = |run: &rcr::RcrRun| run.peak_rss_kib().unwrap_or_else(|| panic!("rcr logged no peak memory\n{}", run.describe()));
        let (d, r) = (peak(&dump), peak(&restore));
        eprintln!("rcr peak RSS streaming {MIB} MiB: dump {d} KiB, restore {r} KiB");
        for (what, kib, run) in [("dump", d, &dump), ("restore", r, &restore)] {
            assert!(kib < (MIB * 1024) / 4, "rcr {what} peaked at {kib} KiB streaming {MIB} MiB\n{}", run.describe());
        }
    }
    sub.signal(libc::SIGTERM);
    sub.wait_result(RESULT_TIMEOUT).unwrap();
}

/// io_uring's SQPOLL thread (`iou-sqp-PID`) is run by the kernel and cannot be stopped by ptrace: the
/// freeze names it at once (instead of timing out), and a plugin's `kernel_thread` may let it stay.
#[test]
fn a_kernel_run_thread_is_named_and_may_stay_for_a_plugin() {
    let mut sub = Subject::spawn("unknown_fd", &["io_uring-sqpoll"]);
    sub.wait_ready(READY_TIMEOUT);
    let run = assert_dump_fails(&sub, &[], &["thread", "iou-sqp", "is run by the kernel", "no plugin said it may stay"]);
    assert!(run.wall < Duration::from_secs(5), "the freeze took {:?}: it waited for a thread that cannot stop", run.wall);
    if !selftest() {
        // With a plugin that lets io_uring's workers stay, the freeze passes; the dump then stops at
        // the io_uring itself (fd 50), which no plugin claims here.
        let dir = libdir("iou", &[("fixture.so", &|p: &Path| fixture(&["-DFIXTURE_IOU"], p))]);
        let run = assert_dump_fails(&sub, &["-L", s(&dir.path)], &["fd 50"]);
        assert!(!run.stderr.contains("is run by the kernel"), "the plugin's answer was not heeded\n{}", run.describe());
        assert!(run.log.contains("stays as it is (plugin 'fixture')"), "{}", run.describe());
    }
    still_fine(sub);
}
