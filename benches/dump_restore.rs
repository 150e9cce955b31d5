//! Dump/restore throughput: `cargo bench --bench dump_restore`.
//!
//! A subject (tests/progs/bench_fill.c) fills RCR_BENCH_MIB MiB (default 1024) of anonymous
//! memory with a position-dependent pattern. Each run dumps it into a tmpfs dir (/dev/shm),
//! restores it, and has it verify every byte (PASS required). Reported as medians over
//! RCR_BENCH_RUNS runs (default 5): dump and restore wall time and throughput, the frozen time
//! (from the stats-dump image when rcr writes one, else the dump wall time), rcr's peak RSS
//! (wait4), next to a `dd if=/dev/zero of=/dev/shm/... bs=1M count=N` baseline of the same run.

// The unit tests of the harness run in the e2e binary; here they only compile.
#[allow(unused_imports)]
#[path = "../tests/e2e/harness/mod.rs"]
mod harness;
#[allow(dead_code)]
mod common;

use common::{env_num, median};

use harness::{selftest, stats, Spawn};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};


struct Sample {
    dump_s: f64,
    restore_s: f64,
    frozen_ms: f64,
    frozen_from_stats: bool,
    rss_mib: f64,
    images_mib: f64,
    dd_s: f64,
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn dd_baseline(base: &Path, mib: u64) -> f64 {
    let target = base.join(format!("rcr-bench-dd-{}", std::process::id()));
    let start = Instant::now();
    let st = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .arg("bs=1M")
        .arg(format!("count={mib}"))
        .arg("status=none")
        .status()
        .expect("run dd");
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&target);
    assert!(st.success(), "dd failed: {st}");
    secs
}

fn one_run(base: &Path, mib: u64) -> Sample {
    let dd_s = dd_baseline(base, mib);
    let mut s = Spawn::prog("bench_fill", &[&mib.to_string()]).in_dir(base).start();
    s.wait_ready(Duration::from_secs(300));
    let d = s.dump(&[]);
    let images_mib = dir_bytes(&s.images) as f64 / (1u64 << 20) as f64;
    let st = stats::read_stats_dump(&s.images);
    let r = s.restore(&[]);
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(Duration::from_secs(600)) {
        panic!("restored memory differs:\n{e}");
    }
    Sample {
        dump_s: d.wall.as_secs_f64(),
        restore_s: r.wall.as_secs_f64(),
        frozen_ms: st.map_or(d.wall.as_secs_f64() * 1e3, |s| s.frozen_us as f64 / 1e3),
        frozen_from_stats: st.is_some(),
        // NaN for a binary that does not log it (an old one in an A/B run).
        rss_mib: d.peak_rss_kib().map_or(f64::NAN, |k| k as f64 / 1024.0),
        images_mib,
        dd_s,
    }
}


fn main() {
    // `cargo bench` passes "--bench"; nothing else is accepted.
    let mib = env_num("RCR_BENCH_MIB", 1024);
    let runs = env_num("RCR_BENCH_RUNS", 5).max(1);
    let base: PathBuf = if Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
    harness::init();
    println!("rcr dump/restore: {mib} MiB anonymous memory, {runs} runs, images in {}", base.display());
    if selftest() {
        println!("RCR_E2E_SELFTEST=1: rcr is NOT run, dump/restore numbers are meaningless");
    }
    let mut samples = Vec::new();
    for i in 0..runs {
        let s = one_run(&base, mib);
        println!(
            "  run {}: dump {:.3} s, restore {:.3} s, frozen {:.1} ms, rcr peak RSS {:.1} MiB, images {:.1} MiB, dd {:.3} s",
            i + 1,
            s.dump_s,
            s.restore_s,
            s.frozen_ms,
            s.rss_mib,
            s.images_mib,
            s.dd_s
        );
        samples.push(s);
    }
    let gb = mib as f64 * (1u64 << 20) as f64 / 1e9;
    let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    let (dump_s, restore_s, dd_s) = (med(|s| s.dump_s), med(|s| s.restore_s), med(|s| s.dd_s));
    let frozen_src = if samples.iter().all(|s| s.frozen_from_stats) { "stats-dump" } else { "dump wall time" };
    println!();
    println!("{:<28} {:>12} {:>12}", "median of runs", "time", "throughput");
    println!("{:<28} {:>10.3} s {:>7.2} GB/s", "rcr dump", dump_s, gb / dump_s);
    println!("{:<28} {:>10.3} s {:>7.2} GB/s", "rcr restore", restore_s, gb / restore_s);
    println!("{:<28} {:>9.1} ms   ({frozen_src})", "frozen time", med(|s| s.frozen_ms));
    println!("{:<28} {:>10.3} s {:>7.2} GB/s", "dd baseline (tmpfs write)", dd_s, gb / dd_s);
    println!("{:<28} {:>8.1} MiB   (memory dumped: {mib} MiB)", "rcr peak RSS during dump", med(|s| s.rss_mib));
    println!("{:<28} {:>8.1} MiB", "images size", med(|s| s.images_mib));
}
