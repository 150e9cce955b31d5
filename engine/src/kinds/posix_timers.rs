//! POSIX timers (timer_create) of a single-threaded task: dump and restore side by side.
//!
//! Dump lists the timers from /proc/PID/timers (id, clock, signal, sigev value, notify mode) and
//! reads each one's setting in the task with `timer_gettime` and `timer_getoverrun`. Restore
//! recreates them in the new task under their old ids with `prctl(PR_TIMER_CREATE_RESTORE_IDS)`
//! (Linux 6.15+: while it is on, `timer_create` reads the wanted id from `*created_timer_id`), then
//! arms each with the time it had left and its interval.
//!
//! A timer rcr cannot bring back (a notify thread other than the task, another process's CPU
//! clock, a kernel without the prctl) is an error naming the pid and the timer id, never a silent
//! loss.

use crate::compel::Remote;
use crate::image::pb;
use crate::proc::PosixTimer;
use crate::{Context, Error, Result};

/// `prctl` option and its arguments (include/uapi/linux/prctl.h, Linux 6.15).
pub const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
pub const PR_TIMER_CREATE_RESTORE_IDS_OFF: u64 = 0;
pub const PR_TIMER_CREATE_RESTORE_IDS_ON: u64 = 1;

/// sigev_notify values (include/uapi/asm-generic/siginfo.h).
pub const SIGEV_SIGNAL: u32 = 0;
pub const SIGEV_NONE: u32 = 1;
pub const SIGEV_THREAD: u32 = 2;
pub const SIGEV_THREAD_ID: u32 = 4;

/// The kernel's `struct itimerspec` (x86-64): `{ it_interval: timespec, it_value: timespec }`,
/// each timespec `{ i64 tv_sec; i64 tv_nsec; }`, little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Itimerspec {
    pub interval_sec: i64,
    pub interval_nsec: i64,
    pub value_sec: i64,
    pub value_nsec: i64,
}

impl Itimerspec {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.interval_sec.to_le_bytes());
        b[8..16].copy_from_slice(&self.interval_nsec.to_le_bytes());
        b[16..24].copy_from_slice(&self.value_sec.to_le_bytes());
        b[24..32].copy_from_slice(&self.value_nsec.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            i64::from_le_bytes(w)
        };
        Itimerspec { interval_sec: at(0), interval_nsec: at(8), value_sec: at(16), value_nsec: at(24) }
    }
}

/// The kernel's `struct sigevent` (x86-64, 64 bytes): `sigev_value` (8 bytes) at 0, `sigev_signo`
/// (i32) at 8, `sigev_notify` (i32) at 12, then the union whose `_tid` (sigev_notify_thread_id, i32)
/// is at 16; the rest is padding. Little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sigevent {
    pub value: u64,
    pub signo: i32,
    pub notify: i32,
    pub notify_thread_id: i32,
}

impl Sigevent {
    pub const SIZE: usize = 64;

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.value.to_le_bytes());
        b[8..12].copy_from_slice(&self.signo.to_le_bytes());
        b[12..16].copy_from_slice(&self.notify.to_le_bytes());
        b[16..20].copy_from_slice(&self.notify_thread_id.to_le_bytes());
        b
    }
}

/// The pid a CPU-time clock id names (`CPUCLOCK_PID`: `~(clock >> 3)`), None for the fixed clocks
/// (CLOCK_REALTIME, CLOCK_MONOTONIC, ... are >= 0). 0 means the calling process or thread.
pub fn cpu_clock_pid(clock_id: i32) -> Option<i32> {
    (clock_id < 0).then_some(!(clock_id >> 3))
}

/// The kernel's sigev_notify and notify thread for a timer of task `pid` from its /proc/PID/timers
/// entry; an error for a notify mode rcr cannot restore.
pub fn notify_of(pid: i32, t: &PosixTimer) -> Result<(u32, Option<i32>)> {
    let base = match t.notify.as_str() {
        "signal" => SIGEV_SIGNAL,
        "none" => SIGEV_NONE,
        "thread" => SIGEV_THREAD,
        other => {
            return Err(Error::Kernel(format!(
                "pid {pid}: POSIX timer {}: unknown notify mode {other:?} in /proc/{pid}/timers",
                t.id
            )))
        }
    };
    match &t.notify_target {
        Some((who, tid)) if who == "tid" => {
            if *tid != pid {
                return Err(Error::not_supported(format!(
                    "pid {pid}: POSIX timer {} notifies thread {tid} (SIGEV_THREAD_ID), which is not the \
                     checkpointed task: only single-threaded tasks are supported",
                    t.id
                )));
            }
            Ok((base | SIGEV_THREAD_ID, Some(*tid)))
        }
        Some((who, _)) if who == "pid" => Ok((base, None)),
        None => Ok((base, None)),
        Some((who, n)) => Err(Error::Kernel(format!(
            "pid {pid}: POSIX timer {}: unknown notify target {who}.{n} in /proc/{pid}/timers",
            t.id
        ))),
    }
}

/// Checks that every timer of task `pid` can be restored (before anything is read in the task).
pub fn check(pid: i32, timers: &[PosixTimer]) -> Result<()> {
    for t in timers {
        notify_of(pid, t)?;
        if t.id < 0 {
            return Err(Error::Kernel(format!("POSIX timer with invalid id {}", t.id)).at_task(pid, ""));
        }
        if let Some(owner) = cpu_clock_pid(t.clock_id) {
            if owner != 0 && owner != pid {
                return Err(Error::not_supported(format!(
                    "pid {pid}: POSIX timer {} runs on the CPU clock of pid {owner} (clock id {}), which is \
                     outside the checkpoint",
                    t.id, t.clock_id
                )));
            }
        }
    }
    Ok(())
}

/// The image entry for timer `t` with its current setting and overrun.
pub fn entry(pid: i32, t: &PosixTimer, its: &Itimerspec, overrun: i32) -> Result<pb::PosixTimerEntry> {
    let (notify, tid) = notify_of(pid, t)?;
    let nonneg = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| {
            Error::Kernel(format!("POSIX timer {}: timer_gettime gave a negative {what} ({v})", t.id)).at_task(pid, "")
        })
    };
    Ok(pb::PosixTimerEntry {
        it_id: t.id as u32,
        clock_id: t.clock_id as u32,
        si_signo: t.signo as u32,
        it_sigev_notify: notify,
        sival_ptr: t.sigval,
        overrun: overrun.max(0) as u32,
        isec: nonneg(its.interval_sec, "interval")?,
        insec: nonneg(its.interval_nsec, "interval")?,
        vsec: nonneg(its.value_sec, "value")?,
        vnsec: nonneg(its.value_nsec, "value")?,
        notify_thread_id: tid,
    })
}

/// Reads each listed timer's setting and overrun in the task.
pub fn dump(remote: &mut Remote<'_>, pid: i32, timers: &[PosixTimer]) -> Result<Vec<pb::PosixTimerEntry>> {
    let mut out = Vec::with_capacity(timers.len());
    for t in timers {
        let buf = remote.scratch_put(&[0u8; Itimerspec::SIZE])?;
        remote.syscall_ok(libc::SYS_timer_gettime, &[t.id as u64, buf]).at_task_with(pid, || format!("POSIX timer {}: timer_gettime in the task", t.id))?;
        let mut b = [0u8; Itimerspec::SIZE];
        remote.scratch_get(buf, &mut b)?;
        let overrun = remote.syscall_ok(libc::SYS_timer_getoverrun, &[t.id as u64]).at_task_with(pid, || format!("POSIX timer {}: timer_getoverrun in the task", t.id))?;
        out.push(entry(pid, t, &Itimerspec::from_bytes(&b), i32::try_from(overrun).unwrap_or(i32::MAX))?);
    }
    Ok(out)
}

/// What timer_create gets for entry `e` of task `pid`: clock id and sigevent; an error for an entry
/// rcr cannot restore.
pub fn create_args(pid: i32, e: &pb::PosixTimerEntry) -> Result<(i32, Sigevent)> {
    let id = e.it_id;
    if id > i32::MAX as u32 {
        return Err(Error::corrupt(format!("POSIX timer id {id} is out of range")).at_task(pid, ""));
    }
    let notify = e.it_sigev_notify;
    if !matches!(notify & !SIGEV_THREAD_ID, SIGEV_SIGNAL | SIGEV_NONE | SIGEV_THREAD) {
        return Err(Error::corrupt(format!("POSIX timer {id}: unknown sigev_notify {notify}")).at_task(pid, ""));
    }
    let mut tid = 0;
    if notify & SIGEV_THREAD_ID != 0 {
        match e.notify_thread_id {
            Some(t) if t == pid => tid = t,
            Some(t) => {
                return Err(Error::not_supported(format!(
                    "pid {pid}: POSIX timer {id} notifies thread {t}, which is not the restored task"
                )))
            }
            None => {
                return Err(Error::corrupt(format!(
                    "pid {pid}: POSIX timer {id} has SIGEV_THREAD_ID but no notify thread in the image"
                )))
            }
        }
    }
    let sev = Sigevent { value: e.sival_ptr, signo: e.si_signo as i32, notify: notify as i32, notify_thread_id: tid };
    Ok((e.clock_id as i32, sev))
}

/// The setting to arm a restored timer with.
pub fn setting(e: &pb::PosixTimerEntry) -> Itimerspec {
    Itimerspec {
        interval_sec: e.isec as i64,
        interval_nsec: e.insec as i64,
        value_sec: e.vsec as i64,
        value_nsec: e.vnsec as i64,
    }
}

/// Recreates the timers in the new task under their ids and arms them.
pub fn restore(remote: &mut Remote<'_>, pid: i32, timers: &[pb::PosixTimerEntry]) -> Result<()> {
    if timers.is_empty() {
        return Ok(());
    }
    let args: Vec<(i32, Sigevent)> = timers.iter().map(|e| create_args(pid, e)).collect::<Result<_>>()?;
    let ids = timers.iter().map(|e| e.it_id.to_string()).collect::<Vec<_>>().join(", ");
    remote
        .syscall_ok(libc::SYS_prctl, &[PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0])
        .map_err(|e| Error::MissingFeature {
            name: "PR_TIMER_CREATE_RESTORE_IDS",
            needed_for: "restore POSIX timers under their ids (Linux 6.15 or later)",
            untouched: "so this restore fails",
            source: Box::new(e.into()),
        })
        .at_task_with(pid, || format!("POSIX timer(s) {ids}"))?;
    let made = create_all(remote, pid, timers, &args);
    // Switch the mode off whatever happened: the task's own timer_create calls must not read ids.
    let off = remote.syscall_ok(libc::SYS_prctl, &[PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0]);
    made?;
    off.at_task(pid, "prctl(PR_TIMER_CREATE_RESTORE_IDS, OFF)")?;
    for e in timers {
        let its = setting(e);
        if its.value_sec == 0 && its.value_nsec == 0 {
            continue; // disarmed, as a new timer already is
        }
        let buf = remote.scratch_put(&its.to_bytes())?;
        remote.syscall_ok(libc::SYS_timer_settime, &[e.it_id as u64, 0, buf, 0]).at_task_with(pid, || format!("POSIX timer {}: timer_settime({}.{:09} s, interval {}.{:09} s)", e.it_id, e.vsec, e.vnsec, e.isec, e.insec))?;
    }
    Ok(())
}

fn create_all(remote: &mut Remote<'_>, pid: i32, timers: &[pb::PosixTimerEntry], args: &[(i32, Sigevent)]) -> Result<()> {
    for (e, (clock, sev)) in timers.iter().zip(args) {
        let id = e.it_id;
        let sev_addr = remote.scratch_put(&sev.to_bytes())?;
        // The kernel's timer_t is an int: the wanted id in, the created id out.
        let id_addr = remote.scratch_put(&(id as i32).to_le_bytes())?;
        remote.syscall_ok(libc::SYS_timer_create, &[*clock as u32 as u64, sev_addr, id_addr]).at_task_with(pid, || format!("POSIX timer {id}: timer_create(clock {clock}) with id {id}"))?;
        let mut got = [0u8; 4];
        remote.scratch_get(id_addr, &mut got)?;
        let got = i32::from_le_bytes(got);
        if got != id as i32 {
            return Err(Error::Kernel(format!(
                "pid {pid}: POSIX timer {id}: timer_create gave id {got} instead (the kernel ignored \
                 PR_TIMER_CREATE_RESTORE_IDS)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(id: i32, notify: &str, target: Option<(&str, i32)>, clock: i32) -> PosixTimer {
        PosixTimer {
            id,
            signo: 38,
            sigval: 4242,
            notify: notify.into(),
            notify_target: target.map(|(w, n)| (w.to_string(), n)),
            clock_id: clock,
        }
    }

    #[test]
    fn itimerspec_layout() {
        let its = Itimerspec { interval_sec: 1, interval_nsec: 40_000_000, value_sec: 2, value_nsec: 3 };
        let b = its.to_bytes();
        assert_eq!(&b[0..8], &1i64.to_le_bytes());
        assert_eq!(&b[8..16], &40_000_000i64.to_le_bytes());
        assert_eq!(&b[16..24], &2i64.to_le_bytes());
        assert_eq!(&b[24..32], &3i64.to_le_bytes());
        assert_eq!(Itimerspec::from_bytes(&b), its);
    }

    #[test]
    fn sigevent_layout_matches_libc() {
        let sev = Sigevent { value: 0x1122_3344_5566_7788, signo: 38, notify: 4, notify_thread_id: 1234 };
        let b = sev.to_bytes();
        assert_eq!(b.len(), std::mem::size_of::<libc::sigevent>());
        let mut want: libc::sigevent = crate::sys::zeroed();
        want.sigev_value = libc::sigval { sival_ptr: 0x1122_3344_5566_7788usize as *mut libc::c_void };
        want.sigev_signo = 38;
        want.sigev_notify = 4;
        want.sigev_notify_thread_id = 1234;
        let raw = crate::sys::sigevent_bytes(&want);
        assert_eq!(&b[..], raw);
    }

    #[test]
    fn notify_modes() {
        assert_eq!(notify_of(10, &timer(0, "signal", Some(("pid", 10)), 1)).unwrap(), (SIGEV_SIGNAL, None));
        assert_eq!(notify_of(10, &timer(0, "none", Some(("pid", 10)), 1)).unwrap(), (SIGEV_NONE, None));
        assert_eq!(
            notify_of(10, &timer(0, "signal", Some(("tid", 10)), 1)).unwrap(),
            (SIGEV_SIGNAL | SIGEV_THREAD_ID, Some(10))
        );
        let e = notify_of(10, &timer(3, "signal", Some(("tid", 11)), 1)).unwrap_err().to_string();
        assert!(e.contains("pid 10") && e.contains("timer 3") && e.contains("thread 11"), "{e}");
        assert!(notify_of(10, &timer(3, "bogus", None, 1)).is_err());
    }

    #[test]
    fn cpu_clocks() {
        assert_eq!(cpu_clock_pid(libc::CLOCK_MONOTONIC), None);
        // glibc's clock_getcpuclockid(pid): ((~pid) << 3) | CPUCLOCK_SCHED.
        let clk = |pid: i32| ((!pid) << 3) | 2;
        assert_eq!(cpu_clock_pid(clk(1234)), Some(1234));
        assert_eq!(cpu_clock_pid(clk(0)), Some(0));
        assert!(check(1234, &[timer(0, "signal", None, clk(1234))]).is_ok());
        let e = check(1234, &[timer(5, "signal", None, clk(99))]).unwrap_err().to_string();
        assert!(e.contains("pid 1234") && e.contains("timer 5") && e.contains("pid 99"), "{e}");
    }

    #[test]
    fn entry_round_trip() {
        let t = timer(7, "signal", Some(("tid", 50)), libc::CLOCK_MONOTONIC);
        let its = Itimerspec { interval_sec: 0, interval_nsec: 40_000_000, value_sec: 0, value_nsec: 12_345 };
        let e = entry(50, &t, &its, 3).unwrap();
        assert_eq!((e.it_id, e.clock_id, e.si_signo, e.sival_ptr, e.overrun), (7, 1, 38, 4242, 3));
        assert_eq!(e.it_sigev_notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
        assert_eq!(e.notify_thread_id, Some(50));
        assert_eq!(setting(&e), its);
        let (clock, sev) = create_args(50, &e).unwrap();
        assert_eq!(clock, libc::CLOCK_MONOTONIC);
        assert_eq!(sev, Sigevent { value: 4242, signo: 38, notify: 4, notify_thread_id: 50 });
        let e2 = create_args(51, &e).unwrap_err().to_string();
        assert!(e2.contains("pid 51") && e2.contains("timer 7"), "{e2}");
        let neg = Itimerspec { value_sec: -1, ..its };
        assert!(entry(50, &t, &neg, 0).is_err());
    }
}
