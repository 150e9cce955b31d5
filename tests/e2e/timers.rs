//! Interval timers, POSIX timers, CLOCK_MONOTONIC across restore.

use crate::harness::scenario;

#[test]
fn itimers() {
    scenario("timers", &[]);
}

#[test]
fn posix_timer() {
    scenario("timers", &["posix"]);
}

/// A checkpoint whose clocks are ahead of this machine's (as after a reboot, or from a machine that
/// booted earlier): the restored task gets a time namespace whose offsets keep CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME going on from the dump-time values, never backwards. The checkpoint is made to look
/// like that by editing its timens image through `rcr decode` / `rcr encode`.
#[test]
fn clocks_ahead_get_a_time_namespace() {
    use crate::harness::{rcr_bin, selftest, Subject, READY_TIMEOUT, RESULT_TIMEOUT};
    if selftest() {
        return; // it edits the images of a real dump
    }
    const DAY: u64 = 86_400;
    let mut s = Subject::spawn("timers", &[]);
    s.wait_ready(READY_TIMEOUT);
    s.dump(&[]);
    let img = s.images.join(rcr_images::ImageName::Timens(1).file_name());
    let out = std::process::Command::new(rcr_bin()).args(["decode", "-i"]).arg(&img).output().unwrap();
    assert!(out.status.success(), "decode: {}", String::from_utf8_lossy(&out.stderr));
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &mut v["entries"][0];
    for clock in ["monotonic", "boottime"] {
        let secs = e[clock]["tv_sec"].as_u64().unwrap();
        e[clock]["tv_sec"] = (secs + DAY).into();
    }
    let json = s.images.join("timens.json");
    std::fs::write(&json, v.to_string()).unwrap();
    let st = std::process::Command::new(rcr_bin()).args(["encode", "-i"]).arg(&json).arg("-o").arg(&img).status().unwrap();
    assert!(st.success());
    s.restore(&[]);
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", s.pid())).unwrap();
    let mono: i64 = offsets
        .lines()
        .find(|l| l.starts_with("monotonic") || l.starts_with("1 "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no monotonic offset in {offsets:?}"));
    assert!(mono >= DAY as i64 - 60 && mono <= DAY as i64 + 60, "monotonic offset {mono} s, expected about a day: {offsets}");
    s.signal(libc::SIGTERM);
    s.wait_result(RESULT_TIMEOUT).unwrap();
}
