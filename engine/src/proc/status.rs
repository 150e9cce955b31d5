//! /proc/PID/status.

use super::util::{hex_u64, key_value, num, oct_u32};
use super::{ProcError, Result};

const FILE: &str = "status";

/// Seccomp mode from the `Seccomp:` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeccompMode {
    #[default]
    Disabled,
    Strict,
    Filter,
}

/// The fields of /proc/PID/status that checkpointing needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub umask: Option<u32>,
    /// The state letter (`R`, `S`, `D`, `T`, `t`, `Z`, `X`, `I`).
    pub state: char,
    pub tgid: i32,
    pub ngid: i32,
    pub pid: i32,
    pub ppid: i32,
    pub tracer_pid: i32,
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    /// PIDs in each pid namespace, outermost first.
    pub nstgid: Vec<i32>,
    pub nspid: Vec<i32>,
    pub nspgid: Vec<i32>,
    pub nssid: Vec<i32>,
    pub sig_pnd: u64,
    pub shd_pnd: u64,
    pub sig_blk: u64,
    pub sig_ign: u64,
    pub sig_cgt: u64,
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: bool,
    pub seccomp: SeccompMode,
    pub seccomp_filters: u32,
    pub threads: u32,
}

fn ids<T: std::str::FromStr>(ln: usize, v: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    v.split_ascii_whitespace()
        .map(|s| num(FILE, ln, s))
        .collect()
}

fn four(ln: usize, v: &str) -> Result<[u32; 4]> {
    let v: Vec<u32> = ids(ln, v)?;
    v.try_into().map_err(|v: Vec<u32>| {
        ProcError::parse(FILE, ln, format!("expected 4 ids, found {}", v.len()))
    })
}

/// The peak resident set of the calling process in KiB (`VmHWM` of /proc/self/status): its own
/// memory since its exec, unlike `ru_maxrss`, which also counts the process it was forked from.
pub fn self_peak_rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Parses /proc/PID/status. Lines it does not use are skipped; `Name`, `State`, `Pid`,
/// `Tgid`, `PPid`, `Uid` and `Gid` are required.
pub fn parse_status(text: &str) -> Result<Status> {
    let mut s = Status::default();
    let mut seen = 0u8;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let Some((key, v)) = key_value(line) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ProcError::parse(FILE, ln, format!("no ':' in {line:?}")));
        };
        match key {
            "Name" => {
                // The name is the raw value after the tab (it may have leading spaces).
                s.name = line.split_once(":\t").map_or(v, |(_, n)| n).to_string();
                seen |= 1;
            }
            "Umask" => s.umask = Some(oct_u32(FILE, ln, v)?),
            "State" => {
                s.state = v
                    .chars()
                    .next()
                    .ok_or_else(|| ProcError::parse(FILE, ln, "empty State"))?;
                seen |= 2;
            }
            "Tgid" => {
                s.tgid = num(FILE, ln, v)?;
                seen |= 4;
            }
            "Ngid" => s.ngid = num(FILE, ln, v)?,
            "Pid" => {
                s.pid = num(FILE, ln, v)?;
                seen |= 8;
            }
            "PPid" => {
                s.ppid = num(FILE, ln, v)?;
                seen |= 16;
            }
            "TracerPid" => s.tracer_pid = num(FILE, ln, v)?,
            "Uid" => {
                s.uid = four(ln, v)?;
                seen |= 32;
            }
            "Gid" => {
                s.gid = four(ln, v)?;
                seen |= 64;
            }
            "Groups" => s.groups = ids(ln, v)?,
            "NStgid" => s.nstgid = ids(ln, v)?,
            "NSpid" => s.nspid = ids(ln, v)?,
            "NSpgid" => s.nspgid = ids(ln, v)?,
            "NSsid" => s.nssid = ids(ln, v)?,
            "SigPnd" => s.sig_pnd = hex_u64(FILE, ln, v)?,
            "ShdPnd" => s.shd_pnd = hex_u64(FILE, ln, v)?,
            "SigBlk" => s.sig_blk = hex_u64(FILE, ln, v)?,
            "SigIgn" => s.sig_ign = hex_u64(FILE, ln, v)?,
            "SigCgt" => s.sig_cgt = hex_u64(FILE, ln, v)?,
            "CapInh" => s.cap_inh = hex_u64(FILE, ln, v)?,
            "CapPrm" => s.cap_prm = hex_u64(FILE, ln, v)?,
            "CapEff" => s.cap_eff = hex_u64(FILE, ln, v)?,
            "CapBnd" => s.cap_bnd = hex_u64(FILE, ln, v)?,
            "CapAmb" => s.cap_amb = hex_u64(FILE, ln, v)?,
            "NoNewPrivs" => s.no_new_privs = num::<u8>(FILE, ln, v)? != 0,
            "Seccomp" => {
                s.seccomp = match num::<u8>(FILE, ln, v)? {
                    0 => SeccompMode::Disabled,
                    1 => SeccompMode::Strict,
                    2 => SeccompMode::Filter,
                    m => {
                        return Err(ProcError::parse(
                            FILE,
                            ln,
                            format!("unknown seccomp mode {m}"),
                        ))
                    }
                }
            }
            "Seccomp_filters" => s.seccomp_filters = num(FILE, ln, v)?,
            "Threads" => s.threads = num(FILE, ln, v)?,
            _ => {}
        }
    }
    if seen != 127 {
        let names = ["Name", "State", "Tgid", "Pid", "PPid", "Uid", "Gid"];
        let missing: Vec<_> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| seen & (1 << i) == 0)
            .map(|(_, n)| *n)
            .collect();
        return Err(ProcError::parse(
            FILE,
            0,
            format!("missing lines: {}", missing.join(", ")),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // /proc/self/status of `cat` on the 6.18 kernel (some lines elided), plus a thread group
    // in a nested pid namespace for the NS* lines.
    const STATUS: &str = "Name:\tcat
Umask:\t0022
State:\tS (sleeping)
Tgid:\t5603
Ngid:\t0
Pid:\t5604
PPid:\t5601
TracerPid:\t17
Uid:\t0\t1\t2\t3
Gid:\t4\t5\t6\t7
FDSize:\t256
Groups:\t10 20 
NStgid:\t5603\t1
NSpid:\t5604\t2
NSpgid:\t5601\t0
NSsid:\t3959\t0
Kthread:\t0
VmPeak:\t    3060 kB
Threads:\t2
SigQ:\t0/96364
SigPnd:\t0000000000000100
ShdPnd:\t0000000000000200
SigBlk:\t0000000000010000
SigIgn:\t0000000000001000
SigCgt:\t0000000180000000
CapInh:\t0000000000000000
CapPrm:\t000001fffeffffff
CapEff:\t000001fffeffffff
CapBnd:\t000001fffeffffff
CapAmb:\t0000000000000001
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t3
Speculation_Store_Bypass:\tthread vulnerable
Cpus_allowed_list:\t0-1
voluntary_ctxt_switches:\t0
";

    #[test]
    fn status_fields() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.name, "cat");
        assert_eq!(s.umask, Some(0o022));
        assert_eq!(s.state, 'S');
        assert_eq!(
            (s.tgid, s.pid, s.ppid, s.tracer_pid, s.ngid),
            (5603, 5604, 5601, 17, 0)
        );
        assert_eq!(s.uid, [0, 1, 2, 3]);
        assert_eq!(s.gid, [4, 5, 6, 7]);
        assert_eq!(s.groups, [10, 20]);
        assert_eq!(s.nstgid, [5603, 1]);
        assert_eq!(s.nspid, [5604, 2]);
        assert_eq!(s.nspgid, [5601, 0]);
        assert_eq!(s.nssid, [3959, 0]);
        assert_eq!((s.sig_pnd, s.shd_pnd, s.sig_blk), (0x100, 0x200, 0x10000));
        assert_eq!((s.sig_ign, s.sig_cgt), (0x1000, 0x180000000));
        assert_eq!(
            (s.cap_prm, s.cap_eff, s.cap_bnd, s.cap_amb, s.cap_inh),
            (0x1fffeffffff, 0x1fffeffffff, 0x1fffeffffff, 1, 0)
        );
        assert!(s.no_new_privs);
        assert_eq!(s.seccomp, SeccompMode::Filter);
        assert_eq!((s.seccomp_filters, s.threads), (3, 2));
    }

    #[test]
    fn status_name_with_spaces_and_empty_groups() {
        let text = STATUS
            .replace("Name:\tcat", "Name:\t my: prog")
            .replace("Groups:\t10 20 ", "Groups:\t ");
        let s = parse_status(&text).unwrap();
        assert_eq!(s.name, " my: prog");
        assert!(s.groups.is_empty());
    }

    #[test]
    fn status_errors() {
        let e = parse_status(&STATUS.replace("Uid:\t0\t1\t2\t3", "Uid:\t0\t1")).unwrap_err();
        assert!(e.to_string().starts_with("status:9:"), "{e}");
        let e = parse_status(&STATUS.replace("Pid:\t5604\n", "")).unwrap_err();
        assert!(e.to_string().contains("missing lines: Pid"), "{e}");
        assert!(parse_status(&STATUS.replace("Seccomp:\t2", "Seccomp:\t9")).is_err());
        assert!(parse_status("garbage\n").is_err());
    }
}
