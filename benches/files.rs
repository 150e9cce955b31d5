//! Dump/restore time of a process with many open files of one kind: `cargo bench --bench files`.
//!
//! The subject (tests/progs/bench_fds.c) opens RCR_BENCH_FDS objects (default 250) of each kind in
//! RCR_BENCH_FD_KINDS (default: every kind it knows), dumps to tmpfs, restores, and checks each object
//! from inside (data in flight, offsets, contents; PASS required). Reported: median dump and restore
//! wall time over RCR_BENCH_RUNS runs (default 5), the time per object, and the same for a process with
//! no extra files, as the baseline in the same run.

#[allow(unused_imports)]
#[path = "../tests/e2e/harness/mod.rs"]
mod harness;
#[allow(dead_code)]
mod common;

use common::{env_num, median};

use harness::Spawn;
use std::path::Path;
use std::time::Duration;



/// (dump seconds, restore seconds) of one run with `n` objects of `kind`, rcr given `extra` options.
fn one_run(base: &Path, kind: &str, n: u64, extra: &[&str]) -> (f64, f64) {
    let mut s = Spawn::prog("bench_fds", &[kind, &n.to_string()]).in_dir(base).start();
    s.wait_ready(Duration::from_secs(120));
    let d = s.dump(extra);
    let r = s.restore(extra);
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(Duration::from_secs(120)) {
        panic!("{kind} x{n}: restored state differs:\n{e}");
    }
    (d.wall.as_secs_f64(), r.wall.as_secs_f64())
}

fn main() {
    harness::init();
    let runs = env_num("RCR_BENCH_RUNS", 5).max(1);
    let n = env_num("RCR_BENCH_FDS", 250).max(1);
    let kinds = std::env::var("RCR_BENCH_FD_KINDS").unwrap_or_else(|_| "pipe,fifo,unix,file,ghost,memfd,eventfd,epoll".into());
    let base = Path::new("/dev/shm");
    println!("rcr dump/restore of a process with {n} open objects of one kind, {runs} runs, images in /dev/shm");
    println!("{:<22} {:>10} {:>12} {:>10} {:>12}", "kind", "dump", "per object", "restore", "per object");
    let (mut d0, mut r0) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (d, r) = one_run(base, "file", 0, &[]);
        d0.push(d);
        r0.push(r);
    }
    let (d0, r0) = (median(d0), median(r0));
    println!("{:<22} {:>8.1} ms {:>12} {:>7.1} ms {:>12}", "none (baseline)", d0 * 1e3, "", r0 * 1e3, "");
    // The same files with the example plugin loaded: every fd is offered to it first (it claims none).
    let plugin = harness::rcr_bin().with_file_name("librcr_example_toydev.so");
    let libdir = base.join(format!("rcr-bench-libdir-{}", std::process::id()));
    let mut cases: Vec<(String, Vec<&str>)> = kinds.split(',').filter(|k| !k.is_empty()).map(|k| (k.to_string(), vec![])).collect();
    if plugin.exists() {
        std::fs::create_dir_all(&libdir).unwrap();
        std::fs::copy(&plugin, libdir.join("example.so")).unwrap();
        cases.push(("file".into(), vec!["-L", libdir.to_str().unwrap()]));
    }
    for (kind, extra) in &cases {
        let kind = kind.as_str();
        let (mut ds, mut rs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (d, r) = one_run(base, kind, n, extra);
            ds.push(d);
            rs.push(r);
        }
        let (d, r) = (median(ds), median(rs));
        println!(
            "{:<22} {:>8.1} ms {:>9.3} ms {:>7.1} ms {:>9.3} ms",
            format!("{n} x {kind}{}", if extra.is_empty() { "" } else { " +plugin" }),
            d * 1e3,
            (d - d0) * 1e3 / n as f64,
            r * 1e3,
            (r - r0) * 1e3 / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&libdir);
}
