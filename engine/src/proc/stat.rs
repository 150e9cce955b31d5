//! /proc/PID/stat.

use super::util::num;
use super::{ProcError, Result};

const FILE: &str = "stat";

/// `PF_IO_WORKER` of [`Stat::flags`]: a thread the kernel runs for the task (io_uring's `iou-sqp-*`
/// and `iou-wrk-*` workers), which ptrace cannot stop.
pub const PF_IO_WORKER: u32 = 0x10;

/// The fields of /proc/PID/stat (see proc(5); numbering there is 1-based).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name, which may contain spaces and ')'.
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i32,
    pub tpgid: i32,
    pub flags: u32,
    pub minflt: u64,
    pub cminflt: u64,
    pub majflt: u64,
    pub cmajflt: u64,
    pub utime: u64,
    pub stime: u64,
    pub cutime: i64,
    pub cstime: i64,
    pub priority: i64,
    pub nice: i64,
    pub num_threads: i64,
    /// Clock ticks since boot.
    pub start_time: u64,
    pub vsize: u64,
    /// Resident pages.
    pub rss: i64,
    pub rsslim: u64,
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub exit_signal: i32,
    pub processor: i32,
    pub rt_priority: u32,
    pub policy: u32,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub exit_code: i32,
}

/// Parses /proc/PID/stat (a single line). The comm is taken between the first '(' and the
/// *last* ')', so a comm containing ") " cannot shift the fields.
pub fn parse_stat(text: &str) -> Result<Stat> {
    let text = text.trim_end_matches('\n');
    let bad = |msg: String| ProcError::parse(FILE, 1, msg);
    let open = text
        .find(" (")
        .ok_or_else(|| bad("no ' (' before comm".into()))?;
    let close = text
        .rfind(')')
        .ok_or_else(|| bad("no ')' after comm".into()))?;
    if close < open {
        return Err(bad("')' before '('".into()));
    }
    let pid = num(FILE, 1, &text[..open])?;
    let comm = text[open + 2..close].to_string();
    let f: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    // f[0] is field 3 of proc(5); exit_code (52) is the last one we need.
    if f.len() < 50 {
        return Err(bad(format!(
            "{} fields after comm, expected at least 50",
            f.len()
        )));
    }
    let n = |i: usize| f[i - 3];
    macro_rules! p {
        ($i:expr) => {
            num(FILE, 1, n($i))?
        };
    }
    let state = n(3)
        .chars()
        .next()
        .ok_or_else(|| bad("empty state".into()))?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: p!(4),
        pgrp: p!(5),
        session: p!(6),
        tty_nr: p!(7),
        tpgid: p!(8),
        flags: p!(9),
        minflt: p!(10),
        cminflt: p!(11),
        majflt: p!(12),
        cmajflt: p!(13),
        utime: p!(14),
        stime: p!(15),
        cutime: p!(16),
        cstime: p!(17),
        priority: p!(18),
        nice: p!(19),
        num_threads: p!(20),
        start_time: p!(22),
        vsize: p!(23),
        rss: p!(24),
        rsslim: p!(25),
        start_code: p!(26),
        end_code: p!(27),
        start_stack: p!(28),
        exit_signal: p!(38),
        processor: p!(39),
        rt_priority: p!(40),
        policy: p!(41),
        start_data: p!(45),
        end_data: p!(46),
        start_brk: p!(47),
        arg_start: p!(48),
        arg_end: p!(49),
        env_start: p!(50),
        env_end: p!(51),
        exit_code: p!(52),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // /proc/self/stat of `cat` on the 6.18 kernel.
    const STAT: &str = "5604 (cat) R 5601 5601 3959 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 39824 3133440 359 18446744073709551615 94905294114816 94905294134697 140733377590432 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94905294150704 94905294152320 94905617883136 140733377596131 140733377596151 140733377596151 140733377597419 0\n";

    #[test]
    fn stat_fields() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!((s.pid, s.comm.as_str(), s.state), (5604, "cat", 'R'));
        assert_eq!(
            (s.ppid, s.pgrp, s.session, s.tty_nr, s.tpgid),
            (5601, 5601, 3959, 0, -1)
        );
        assert_eq!(s.flags, 4194304);
        assert_eq!(s.minflt, 98);
        assert_eq!((s.priority, s.nice, s.num_threads), (20, 0, 1));
        assert_eq!((s.start_time, s.vsize, s.rss), (39824, 3133440, 359));
        assert_eq!(s.rsslim, u64::MAX);
        assert_eq!((s.start_code, s.end_code), (94905294114816, 94905294134697));
        assert_eq!(s.start_stack, 140733377590432);
        assert_eq!(
            (s.exit_signal, s.processor, s.rt_priority, s.policy),
            (17, 0, 0, 0)
        );
        assert_eq!(
            (s.start_data, s.end_data, s.start_brk),
            (94905294150704, 94905294152320, 94905617883136)
        );
        assert_eq!((s.arg_start, s.arg_end), (140733377596131, 140733377596151));
        assert_eq!((s.env_start, s.env_end), (140733377596151, 140733377597419));
        assert_eq!(s.exit_code, 0);
    }

    #[test]
    fn stat_comm_with_parens_and_spaces() {
        let s = parse_stat(&STAT.replace("(cat)", "(a) R 1 (b )")).unwrap();
        assert_eq!(s.comm, "a) R 1 (b ");
        assert_eq!((s.state, s.ppid), ('R', 5601));
    }

    #[test]
    fn stat_errors() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("1 (x) R 0 0")
            .unwrap_err()
            .to_string()
            .starts_with("stat:1:"));
        assert!(parse_stat(&STAT.replace(" 5601 5601 ", " x 5601 ")).is_err());
        assert!(parse_stat("1 x) (y R").is_err());
    }
}
