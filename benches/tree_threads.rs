//! Dump/restore time of a process tree and of a many-threaded process:
//! `cargo bench --bench tree_threads`.
//!
//! Two subjects: tests/progs/bench_tree.c (RCR_BENCH_PROCS processes, default 100: a root, 9 children,
//! their children) and tests/progs/bench_threads.c (one process with RCR_BENCH_THREADS threads, default
//! 500). Each run dumps the subject to tmpfs, restores it and has it check itself (PASS required).
//! Reported: median dump and restore wall time over RCR_BENCH_RUNS runs (default 5), and the time per
//! task, which stays flat when the cost grows linearly with the number of tasks.

#[allow(unused_imports)]
#[path = "../tests/e2e/harness/mod.rs"]
mod harness;
#[allow(dead_code)]
mod common;

use common::{env_num, median};

use harness::Spawn;
use std::path::Path;
use std::time::Duration;



/// (dump seconds, restore seconds) of one run of `prog` with `arg`.
fn one_run(base: &Path, prog: &str, arg: u64) -> (f64, f64) {
    let mut s = Spawn::prog(prog, &[&arg.to_string()]).in_dir(base).start();
    s.wait_ready(Duration::from_secs(120));
    let d = s.dump(&[]);
    let r = s.restore(&[]);
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(Duration::from_secs(120)) {
        panic!("{prog} {arg}: restored state differs:\n{e}");
    }
    (d.wall.as_secs_f64(), r.wall.as_secs_f64())
}

fn main() {
    harness::init();
    let runs = env_num("RCR_BENCH_RUNS", 5).max(1);
    let base = Path::new("/dev/shm");
    let cases = [
        ("bench_tree", env_num("RCR_BENCH_PROCS", 100), "processes"),
        ("bench_threads", env_num("RCR_BENCH_THREADS", 500), "threads"),
    ];
    println!("rcr dump/restore of many tasks, {runs} runs, images in /dev/shm");
    println!("{:<28} {:>10} {:>12} {:>10} {:>12}", "subject", "dump", "per task", "restore", "per task");
    for (prog, n, what) in cases {
        let (mut ds, mut rs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (d, r) = one_run(base, prog, n);
            ds.push(d);
            rs.push(r);
        }
        let (d, r) = (median(ds), median(rs));
        println!(
            "{:<28} {:>8.1} ms {:>9.2} ms {:>7.1} ms {:>9.2} ms",
            format!("{n} {what}"),
            d * 1e3,
            d * 1e3 / n as f64,
            r * 1e3,
            r * 1e3 / n as f64
        );
    }
}
