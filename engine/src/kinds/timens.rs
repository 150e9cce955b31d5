//! Time namespace: CLOCK_MONOTONIC and CLOCK_BOOTTIME as the task saw them at dump time.
//!
//! Dump records both clocks as the task sees them (the host's clock plus the offsets of the task's time
//! namespace). Restore puts the task in a new time namespace when, without one, a clock would jump
//! backwards (restored after a reboot, or on a machine that booted later) or when the task had offsets
//! of its own; the offsets are chosen so that both clocks go on from their dump-time values. Otherwise
//! the task stays in rcr's time namespace and its clocks simply show the time it spent checkpointed.

use crate::image::pb;
use crate::proc::ProcDir;
use crate::{Error, Result};

const NSEC: i128 = 1_000_000_000;

fn now(clock: libc::clockid_t) -> i128 {
    nix::time::clock_gettime(nix::time::ClockId::from_raw(clock)).map_or(0, |ts| ts.tv_sec() as i128 * NSEC + ts.tv_nsec() as i128)
}

fn ts(ns: i128) -> pb::Timespec {
    pb::Timespec { tv_sec: (ns / NSEC) as u64, tv_nsec: (ns % NSEC) as u64 }
}

fn ns(t: &pb::Timespec) -> i128 {
    t.tv_sec as i128 * NSEC + t.tv_nsec as i128
}

/// The task's view of its clocks now, and whether its time namespace has offsets.
pub fn dump(proc: &ProcDir) -> Result<(pb::TimensEntry, bool)> {
    let offsets = proc.timens_offsets().unwrap_or_default();
    let off = |name: &str, id: i32| {
        offsets
            .iter()
            .find(|o| o.clock == name || o.clock == id.to_string())
            .map_or(0, |o| o.secs as i128 * NSEC + o.nsecs as i128)
    };
    let (mono_off, boot_off) = (off("monotonic", libc::CLOCK_MONOTONIC), off("boottime", libc::CLOCK_BOOTTIME));
    let e = pb::TimensEntry {
        monotonic: ts(now(libc::CLOCK_MONOTONIC) + mono_off),
        boottime: ts(now(libc::CLOCK_BOOTTIME) + boot_off),
    };
    Ok((e, mono_off != 0 || boot_off != 0))
}

/// The offsets a new time namespace needs so that the clocks go on from `e`, or None when the task
/// can stay in rcr's namespace (no clock would go backwards and it had no offsets).
pub fn offsets_for(e: &pb::TimensEntry, had_offsets: bool, mono_now: i128, boot_now: i128) -> Option<(i128, i128)> {
    let (mono, boot) = (ns(&e.monotonic), ns(&e.boottime));
    (had_offsets || mono > mono_now || boot > boot_now).then_some((mono - mono_now, boot - boot_now))
}

/// Before the task is forked: moves rcr's children into a new time namespace if the clocks need it.
pub fn prepare_restore(e: &pb::TimensEntry, had_offsets: bool) -> Result<()> {
    let Some((mono, boot)) = offsets_for(e, had_offsets, now(libc::CLOCK_MONOTONIC), now(libc::CLOCK_BOOTTIME)) else {
        return Ok(());
    };
    // CLONE_NEWTIME only changes the time namespace of rcr's future children (nix's CloneFlags lacks it).
    if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
        return Err(Error::Io {
            ctx: "creating a time namespace so the restored clocks do not jump backwards (CLONE_NEWTIME)".into(),
            source: e.into(),
        });
    }
    let split = |v: i128| (v.div_euclid(NSEC), v.rem_euclid(NSEC));
    let ((ms, mn), (bs, bn)) = (split(mono), split(boot));
    let text = format!("{} {ms} {mn}\n{} {bs} {bn}\n", libc::CLOCK_MONOTONIC, libc::CLOCK_BOOTTIME);
    std::fs::write("/proc/self/timens_offsets", &text)
        .map_err(|e| Error::Io { ctx: format!("setting time namespace offsets ({})", text.trim().replace('\n', ", ")), source: e })?;
    tracing::info!("restoring into a new time namespace: monotonic offset {mono} ns, boottime offset {boot} ns");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_namespace_only_when_a_clock_would_go_back() {
        let e = pb::TimensEntry { monotonic: ts(100 * NSEC), boottime: ts(200 * NSEC) };
        assert_eq!(offsets_for(&e, false, 150 * NSEC, 250 * NSEC), None);
        assert_eq!(offsets_for(&e, false, 50 * NSEC, 250 * NSEC), Some((50 * NSEC, -50 * NSEC)));
        assert_eq!(offsets_for(&e, true, 150 * NSEC, 250 * NSEC), Some((-50 * NSEC, -50 * NSEC)));
    }
}
