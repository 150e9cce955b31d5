//! The few /proc reads the harness needs, with the parsers separated and unit-tested.

use std::path::Path;

/// Fields of /proc/PID/stat the harness looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// The controlling terminal's device number (0: none) and its foreground process group.
    pub tty_nr: i32,
    pub tpgid: i32,
    pub flags: u64,
}

impl ProcStat {
    /// Stopped (job control) or traced-stopped.
    pub fn stopped(&self) -> bool {
        matches!(self.state, 't' | 'T')
    }

    pub fn dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// PF_KTHREAD.
    pub fn kernel_thread(&self) -> bool {
        self.flags & 0x0020_0000 != 0
    }
}

/// Parses /proc/PID/stat: `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`;
/// comm may contain spaces and parentheses, so the fields start after the last ')'.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut f = text.get(close + 1..)?.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    let tty_nr = f.next()?.parse().ok()?;
    let tpgid = f.next()?.parse().ok()?;
    let flags = f.next()?.parse().ok()?;
    Some(ProcStat { comm, state, ppid, pgrp, session, tty_nr, tpgid, flags })
}

pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Value of `Key:` in /proc/PID/status text.
pub fn parse_status_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

pub fn status_field(pid: i32, key: &str) -> Option<String> {
    parse_status_field(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, key)
}

/// The fields of /proc/PID/status that must not change when a dump fails.
pub const STABLE_STATUS_KEYS: &[&str] =
    &["Tgid", "PPid", "TracerPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Seccomp"];

pub fn status_snapshot(pid: i32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    STABLE_STATUS_KEYS
        .iter()
        .map(|k| (k.to_string(), parse_status_field(&text, k).unwrap_or_default()))
        .collect()
}

/// What /proc/PID/syscall says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallState {
    /// On a CPU right now.
    Running,
    /// Not in a system call (user space, preempted or stopped).
    User,
    /// Blocked in this syscall number.
    In(i64),
    Unknown(String),
}

pub fn parse_syscall(text: &str) -> SyscallState {
    let first = text.split_whitespace().next().unwrap_or("");
    if first == "running" {
        return SyscallState::Running;
    }
    match first.parse::<i64>() {
        Ok(-1) => SyscallState::User,
        Ok(nr) => SyscallState::In(nr),
        Err(_) => SyscallState::Unknown(text.trim().to_string()),
    }
}

pub fn syscall(pid: i32) -> SyscallState {
    match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Ok(t) => parse_syscall(&t),
        Err(e) => SyscallState::Unknown(e.to_string()),
    }
}

pub fn maps(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default()
}

/// Children of the main thread of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Every descendant of `pid` (children of all its threads, recursively), parents before children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let tasks: Vec<i32> = std::fs::read_dir(format!("/proc/{p}/task"))
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        for t in tasks {
            let kids = std::fs::read_to_string(format!("/proc/{p}/task/{t}/children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|s| s.parse::<i32>().ok()) {
                if !out.contains(&k) {
                    out.push(k);
                    queue.push(k);
                }
            }
        }
    }
    out
}

/// Pids of all processes whose command line contains `needle` (e.g. a subject's unique OUTFILE).
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Some kernel thread (kthreadd, pid 2, where the pid namespace shows it).
pub fn a_kernel_thread() -> Option<(i32, String)> {
    if let Some(s) = stat(2) {
        if s.kernel_thread() {
            return Some((2, s.comm));
        }
    }
    let rd = std::fs::read_dir("/proc").ok()?;
    rd.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
        let s = stat(pid)?;
        s.kernel_thread().then_some((pid, s.comm))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_handles_odd_comm() {
        let s = parse_stat("1234 (a (b) c) S 1 1234 1234 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 42").unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp, s.session), (1, 1234, 1234));
        assert_eq!(s.flags, 4194560);
        assert!(!s.kernel_thread());
        let k = parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0").unwrap();
        assert!(k.kernel_thread());
        let t = parse_stat("7 (x) t 1 7 7 0 -1 0 0").unwrap();
        assert!(t.stopped());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn parse_status_and_syscall() {
        let text = "Name:\tcounter\nState:\tS (sleeping)\nTracerPid:\t0\nSigBlk:\t0000000000000000\n";
        assert_eq!(parse_status_field(text, "TracerPid").as_deref(), Some("0"));
        assert_eq!(parse_status_field(text, "State").as_deref(), Some("S (sleeping)"));
        assert_eq!(parse_status_field(text, "Tracer"), None);
        assert_eq!(parse_syscall("running\n"), SyscallState::Running);
        assert_eq!(parse_syscall("230 0x1 0x0 0x7ffd 0x7ffd 0x0 0x0 0x7ffd 0x7f12\n"), SyscallState::In(230));
        assert_eq!(parse_syscall("-1 0x7ffd1c 0x55d0a1\n"), SyscallState::User);
        assert!(matches!(parse_syscall(""), SyscallState::Unknown(_)));
    }
}
