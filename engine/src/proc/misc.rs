//! Small /proc files: auxv, personality, timers, mountinfo, timens_offsets, cgroup,
//! children, ns links.

use super::util::{hex_u64, key_value, num};
use super::{ProcError, Result};

/// Parses /proc/PID/auxv (native-endian pairs of u64) up to and excluding AT_NULL.
pub fn parse_auxv(bytes: &[u8]) -> Result<Vec<(u64, u64)>> {
    if bytes.len() & 15 != 0 {
        return Err(ProcError::parse(
            "auxv",
            0,
            format!("{} bytes is not a multiple of 16", bytes.len()),
        ));
    }
    let word = |c: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_ne_bytes(b)
    };
    Ok(bytes
        .chunks_exact(16)
        .map(|c| (word(&c[..8]), word(&c[8..])))
        .take_while(|(k, _)| *k != 0)
        .collect())
}

/// Parses /proc/PID/personality (hex).
pub fn parse_personality(text: &str) -> Result<u32> {
    Ok(hex_u64("personality", 1, text)? as u32)
}

/// Parses a whitespace-separated list of ids (task/TID/children, cgroup.procs...).
pub fn parse_u32_list(file: &str, text: &str) -> Result<Vec<u32>> {
    text.split_ascii_whitespace()
        .map(|s| num(file, 1, s))
        .collect()
}

/// Parses /proc/PID/task/TID/children.
pub fn parse_children(text: &str) -> Result<Vec<i32>> {
    text.split_ascii_whitespace()
        .map(|s| num("children", 1, s))
        .collect()
}

/// Parses a /proc/PID/ns/* link target such as `mnt:[4026531832]` into (kind, inode).
pub fn parse_ns_link(target: &str) -> Result<(String, u64)> {
    let bad = || ProcError::parse("ns", 1, format!("unexpected ns link target {target:?}"));
    let (kind, rest) = target.split_once(":[").ok_or_else(bad)?;
    let ino = rest.strip_suffix(']').ok_or_else(bad)?;
    Ok((kind.to_string(), num("ns", 1, ino)?))
}

/// One POSIX timer from /proc/PID/timers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixTimer {
    pub id: i32,
    pub signo: i32,
    /// sigev_value as printed (a pointer-sized hex number).
    pub sigval: u64,
    /// `signal`, `thread`, `none` (the sigev_notify name before '/').
    pub notify: String,
    /// `pid` or `tid` with its number, from `notify: signal/pid.5653`.
    pub notify_target: Option<(String, i32)>,
    pub clock_id: i32,
}

/// Parses /proc/PID/timers.
pub fn parse_timers(text: &str) -> Result<Vec<PosixTimer>> {
    const FILE: &str = "timers";
    let mut out: Vec<PosixTimer> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = key_value(line)
            .ok_or_else(|| ProcError::parse(FILE, ln, format!("no ':' in {line:?}")))?;
        if k == "ID" {
            out.push(PosixTimer {
                id: num(FILE, ln, v)?,
                ..PosixTimer::default()
            });
            continue;
        }
        let t = out
            .last_mut()
            .ok_or_else(|| ProcError::parse(FILE, ln, "line before the first ID:"))?;
        match k {
            "signal" => {
                let (sig, val) = v.split_once('/').unwrap_or((v, "0"));
                t.signo = num(FILE, ln, sig)?;
                t.sigval = hex_u64(FILE, ln, val)?;
            }
            "notify" => {
                let (kind, target) = v.split_once('/').unwrap_or((v, ""));
                t.notify = kind.to_string();
                if let Some((who, n)) = target.split_once('.') {
                    t.notify_target = Some((who.to_string(), num(FILE, ln, n)?));
                }
            }
            "ClockID" => t.clock_id = num(FILE, ln, v)?,
            _ => {}
        }
    }
    Ok(out)
}

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub mnt_id: u32,
    pub parent: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Root of the mount within its filesystem (unescaped).
    pub root: String,
    /// Mount point relative to the process root (unescaped).
    pub mount_point: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
    /// Optional fields (`shared:1`, `master:2`, `propagate_from:3`, `unbindable`).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options.
    pub super_options: String,
}

/// Undoes the kernel's octal escaping (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/PID/mountinfo.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>> {
    const FILE: &str = "mountinfo";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: &str| ProcError::parse(FILE, ln, format!("{m} in {line:?}"));
        let toks: Vec<&str> = line.split(' ').collect();
        let sep = toks
            .iter()
            .position(|t| *t == "-")
            .ok_or_else(|| bad("no ' - ' separator"))?;
        if sep < 6 || toks.len() < sep + 4 {
            return Err(bad("too few fields"));
        }
        let (maj, min) = toks[2]
            .split_once(':')
            .ok_or_else(|| bad("bad major:minor"))?;
        out.push(Mount {
            mnt_id: num(FILE, ln, toks[0])?,
            parent: num(FILE, ln, toks[1])?,
            dev_major: num(FILE, ln, maj)?,
            dev_minor: num(FILE, ln, min)?,
            root: unescape(toks[3]),
            mount_point: unescape(toks[4]),
            options: toks[5].to_string(),
            optional: toks[6..sep].iter().map(|s| s.to_string()).collect(),
            fstype: unescape(toks[sep + 1]),
            source: unescape(toks[sep + 2]),
            super_options: toks[sep + 3..].join(" "),
        });
    }
    Ok(out)
}

/// One line of /proc/PID/timens_offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimensOffset {
    /// `monotonic` or `boottime` (older kernels print the clock id number).
    pub clock: String,
    pub secs: i64,
    pub nsecs: i64,
}

/// Parses /proc/PID/timens_offsets.
pub fn parse_timens_offsets(text: &str) -> Result<Vec<TimensOffset>> {
    const FILE: &str = "timens_offsets";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let toks: Vec<&str> = line.split_ascii_whitespace().collect();
        match toks[..] {
            [] => continue,
            [clock, s, ns] => out.push(TimensOffset {
                clock: clock.to_string(),
                secs: num(FILE, i + 1, s)?,
                nsecs: num(FILE, i + 1, ns)?,
            }),
            _ => {
                return Err(ProcError::parse(
                    FILE,
                    i + 1,
                    format!("expected 3 fields in {line:?}"),
                ))
            }
        }
    }
    Ok(out)
}

/// One line of /proc/PID/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// Hierarchy id (0 for the cgroup v2 unified hierarchy).
    pub id: u32,
    /// Controllers (`memory`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parses /proc/PID/cgroup.
pub fn parse_cgroup(text: &str) -> Result<Vec<CgroupEntry>> {
    const FILE: &str = "cgroup";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ProcError::parse(
                FILE,
                i + 1,
                format!("expected ID:CONTROLLERS:PATH in {line:?}"),
            ));
        };
        out.push(CgroupEntry {
            id: num(FILE, i + 1, id)?,
            controllers: ctl
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            path: path.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auxv() {
        let mut b = Vec::new();
        for (k, v) in [(33u64, 0x7fff_0000u64), (6, 4096), (0, 0), (99, 99)] {
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv(&b).unwrap(), [(33, 0x7fff_0000), (6, 4096)]);
        assert!(parse_auxv(&b[..20]).is_err());
    }

    #[test]
    fn personality_children_ns() {
        assert_eq!(parse_personality("00400000\n").unwrap(), 0x0040_0000);
        assert!(parse_personality("zz").is_err());
        assert_eq!(parse_children("12 34 ").unwrap(), [12, 34]);
        assert_eq!(parse_children("").unwrap(), Vec::<i32>::new());
        assert!(parse_children("1 x").is_err());
        assert_eq!(parse_u32_list("cgroup.procs", "1\n2\n").unwrap(), [1, 2]);
        assert_eq!(
            parse_ns_link("mnt:[4026531832]").unwrap(),
            ("mnt".to_string(), 4026531832)
        );
        assert_eq!(
            parse_ns_link("pid_for_children:[1]").unwrap().0,
            "pid_for_children"
        );
        assert!(parse_ns_link("mnt:4026531832").is_err());
    }

    #[test]
    fn timers() {
        // /proc/PID/timers on the 6.18 kernel.
        let t = parse_timers(
            "ID: 1\nsignal: 14/0000000000000000\nnotify: signal/pid.5653\nClockID: 0\n\
             ID: 0\nsignal: 12/00000000deadbeef\nnotify: thread/tid.5654\nClockID: 1\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].id, t[0].signo, t[0].sigval, t[0].clock_id),
            (1, 14, 0, 0)
        );
        assert_eq!(t[0].notify, "signal");
        assert_eq!(t[0].notify_target, Some(("pid".into(), 5653)));
        assert_eq!(
            (t[1].id, t[1].signo, t[1].sigval, t[1].clock_id),
            (0, 12, 0xdeadbeef, 1)
        );
        assert_eq!(t[1].notify_target, Some(("tid".into(), 5654)));
        assert!(parse_timers("signal: 1/0\n")
            .unwrap_err()
            .to_string()
            .starts_with("timers:1:"));
    }

    #[test]
    fn mountinfo() {
        // /proc/self/mountinfo on the 6.18 kernel plus the proc(5) example.
        let m = parse_mountinfo(
            "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
             24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755\n\
             36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:5 - ext3 /dev/root rw,errors=continue\n",
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].mnt_id, m[0].parent, m[0].dev_major, m[0].dev_minor),
            (22, 27, 0, 21)
        );
        assert_eq!(
            (m[0].root.as_str(), m[0].mount_point.as_str()),
            ("/", "/proc")
        );
        assert_eq!(
            (m[0].fstype.as_str(), m[0].source.as_str()),
            ("proc", "proc")
        );
        assert!(m[0].optional.is_empty());
        assert_eq!(
            m[1].super_options,
            "rw,size=12334432k,nr_inodes=3083608,mode=755"
        );
        assert_eq!(m[2].mount_point, "/mnt 2");
        assert_eq!(m[2].optional, ["master:1", "shared:5"]);
        assert_eq!((m[2].dev_major, m[2].options.as_str()), (98, "rw,noatime"));
        let e = parse_mountinfo("1 2 0:1 / / rw\n").unwrap_err();
        assert!(e.to_string().starts_with("mountinfo:1:"), "{e}");
    }

    #[test]
    fn timens_and_cgroup() {
        let t =
            parse_timens_offsets("monotonic           0         0\nboottime   -5  17\n").unwrap();
        assert_eq!(
            t[1],
            TimensOffset {
                clock: "boottime".into(),
                secs: -5,
                nsecs: 17
            }
        );
        assert!(parse_timens_offsets("monotonic 0\n").is_err());
        // /proc/self/cgroup on the 6.18 VM.
        let c = parse_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/9b91\n0::/\n3:cpu,cpuacct:/a:b\n",
        )
        .unwrap();
        assert_eq!(c[0].controllers, ["name=systemd"]);
        assert_eq!((c[1].id, c[1].path.as_str()), (4, "/process_api/9b91"));
        assert!(c[2].controllers.is_empty() && c[2].id == 0);
        assert_eq!(c[3].path, "/a:b");
        assert!(parse_cgroup("x:memory:/\n").is_err());
        assert!(parse_cgroup("1memory\n").is_err());
    }
}
