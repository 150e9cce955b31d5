//! /proc/PID/maps and /proc/PID/smaps.

use std::collections::BTreeMap;

use super::util::{hex_u64, num};
use super::{ProcError, Result};

/// The two-letter VmFlags names the kernel prints in smaps (fs/proc/task_mmu.c,
/// show_smap_vma_flags), in a fixed order: bit `i` of [`VmFlags`] is `VMFLAG_NAMES[i]`.
/// Some are historical (dw, nl, mp) and kept so old captured smaps still parse losslessly.
pub const VMFLAG_NAMES: &[&str] = &[
    "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "dw", "lo", "io", "sr", "rr", "dc",
    "de", "ac", "nr", "ht", "sf", "nl", "ar", "wf", "dd", "sd", "mm", "hg", "nh", "mg", "um", "uw",
    "ui", "ss", "sl", "bt", "mt", "lf", "gu", "mp", "dp", "pk",
];

/// The set of VmFlags of one VMA (empty when read from `maps`, which lacks them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmFlags {
    bits: u64,
    /// Flags this parser does not know, kept verbatim so nothing is lost.
    pub unknown: Vec<String>,
}

impl VmFlags {
    /// Parses the value of a `VmFlags:` line ("rd wr mr mw me ac sd").
    pub fn parse(value: &str) -> Self {
        let mut f = VmFlags::default();
        for name in value.split_ascii_whitespace() {
            match VMFLAG_NAMES.iter().position(|n| *n == name) {
                Some(i) => f.bits |= 1 << i,
                None => f.unknown.push(name.to_string()),
            }
        }
        f
    }

    /// Whether the two-letter flag `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        VMFLAG_NAMES
            .iter()
            .position(|n| *n == name)
            .is_some_and(|i| self.bits & (1 << i) != 0)
            || self.unknown.iter().any(|u| u == name)
    }

    /// Known flags that are set, in [`VMFLAG_NAMES`] order, then the unknown ones.
    pub fn names(&self) -> Vec<&str> {
        let known = VMFLAG_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bits & (1 << i) != 0)
            .map(|(_, n)| *n);
        known
            .chain(self.unknown.iter().map(String::as_str))
            .collect()
    }

    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        self.bits == 0 && self.unknown.is_empty()
    }
}

/// One virtual memory area.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    /// `s` in the perms column (MAP_SHARED); `p` means private.
    pub shared: bool,
    /// File offset of `start` in bytes.
    pub pgoff: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The path column: a file path, or a pseudo name such as `[heap]`, `[stack]`, `[vdso]`,
    /// `[vvar]`, `[vvar_vclock]`, `[vsyscall]`, `[anon:NAME]`, `[anon_shmem:NAME]`; `None`
    /// for an anonymous mapping. A ` (deleted)` suffix is stripped into [`Vma::deleted`].
    pub path: Option<String>,
    /// The path had the ` (deleted)` suffix (file unlinked, or a memfd / shmem object).
    pub deleted: bool,
    /// Flags from smaps (empty from maps).
    pub vm_flags: VmFlags,
    /// The other smaps fields (`Rss`, `Pss`, `Swap`, `AnonHugePages`, `THPeligible`, ...),
    /// numbers as printed (sizes in kB). Empty from maps.
    pub smaps: BTreeMap<String, u64>,
}

impl Vma {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True for an empty range (never produced by the kernel).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for a bracketed pseudo name such as `[heap]` (not a file).
    pub fn is_special(&self) -> bool {
        self.path.as_deref().is_some_and(|p| p.starts_with('['))
    }

    /// The name inside `[anon:NAME]` (set with PR_SET_VMA_ANON_NAME).
    pub fn anon_name(&self) -> Option<&str> {
        self.path
            .as_deref()?
            .strip_prefix("[anon:")?
            .strip_suffix(']')
    }

    /// True for a mapping of a file (has an inode and a path that is not a pseudo name).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.is_some() && !self.is_special()
    }
}

/// Returns the next whitespace-separated token and the rest after it.
fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses one maps line ("start-end perms pgoff maj:min inode   path").
fn parse_vma_line(file: &str, ln: usize, line: &str) -> Result<Vma> {
    let bad = |msg: &str| ProcError::parse(file, ln, format!("{msg} in {line:?}"));
    let (range, rest) = token(line);
    let (perms, rest) = token(rest);
    let (off, rest) = token(rest);
    let (dev, rest) = token(rest);
    let (ino, rest) = token(rest);
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| bad("no '-' in the address range"))?;
    let p = perms.as_bytes();
    if p.len() != 4 {
        return Err(bad("perms column is not 4 characters"));
    }
    let (major, minor) = dev
        .split_once(':')
        .ok_or_else(|| bad("no ':' in the device"))?;
    let path = rest.trim_start_matches([' ', '\t']);
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Ok(Vma {
        start: hex_u64(file, ln, start)?,
        end: hex_u64(file, ln, end)?,
        read: p[0] == b'r',
        write: p[1] == b'w',
        exec: p[2] == b'x',
        shared: p[3] == b's',
        pgoff: hex_u64(file, ln, off)?,
        dev_major: hex_u64(file, ln, major)? as u32,
        dev_minor: hex_u64(file, ln, minor)? as u32,
        inode: num(file, ln, ino)?,
        path: (!path.is_empty()).then(|| path.to_string()),
        deleted,
        ..Vma::default()
    })
}

/// Parses /proc/PID/maps.
pub fn parse_maps(text: &str) -> Result<Vec<Vma>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| parse_vma_line("maps", i + 1, l))
        .collect()
}

/// Parses /proc/PID/smaps: VMA header lines, each followed by `Key: value [kB]` lines and a
/// `VmFlags:` line.
pub fn parse_smaps(text: &str) -> Result<Vec<Vma>> {
    const FILE: &str = "smaps";
    let mut out: Vec<Vma> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.is_empty() {
            continue;
        }
        let (first, rest) = token(line);
        if let Some(key) = first.strip_suffix(':') {
            let vma = out
                .last_mut()
                .ok_or_else(|| ProcError::parse(FILE, ln, "field line before any VMA line"))?;
            if key == "VmFlags" {
                vma.vm_flags = VmFlags::parse(rest);
            } else {
                let (value, _unit) = token(rest);
                vma.smaps.insert(key.to_string(), num(FILE, ln, value)?);
            }
        } else {
            out.push(parse_vma_line(FILE, ln, line)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Copied from /proc/self/maps on the 6.18 kernel (memfd line from another process).
    const MAPS: &str = "\
55fdd6522000-55fdd6524000 r--p 00000000 fe:00 247282                     /usr/bin/head
55fdd652e000-55fdd652f000 rw-p 0000b000 fe:00 247282                     /usr/bin/head
5602a5d6b000-5602a5d8c000 rw-p 00000000 00:00 0                          [heap]
7fd823f67000-7fd823f71000 r--p 00000000 00:01 1024                       /memfd:sealed-91173221a7ea (deleted)
7f2fdf2c0000-7f2fdf2c3000 rw-p 00000000 00:00 0 
7f2fdf2c3000-7f2fdf2c4000 rw-s 00000000 00:01 7                          /dev/zero (deleted)
7f2fdf2c4000-7f2fdf2c5000 rw-p 00000000 00:00 0                          [anon:my name]
7f4667493000-7f4667497000 r--p 00000000 00:00 0                          [vvar]
7f4667497000-7f4667499000 r-xp 00000000 00:00 0                          [vdso]
7ffee789b000-7ffee78bc000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn maps_fields() {
        let v = parse_maps(MAPS).unwrap();
        assert_eq!(v.len(), 11);
        let head = &v[1];
        assert_eq!((head.start, head.end), (0x55fdd652e000, 0x55fdd652f000));
        assert!(head.read && head.write && !head.exec && !head.shared);
        assert_eq!(head.pgoff, 0xb000);
        assert_eq!(
            (head.dev_major, head.dev_minor, head.inode),
            (0xfe, 0, 247282)
        );
        assert_eq!(head.path.as_deref(), Some("/usr/bin/head"));
        assert!(head.is_file() && !head.deleted);
        assert_eq!(v[2].path.as_deref(), Some("[heap]"));
        assert!(v[2].is_special() && !v[2].is_file());
        assert_eq!(v[3].path.as_deref(), Some("/memfd:sealed-91173221a7ea"));
        assert!(v[3].deleted);
        assert_eq!(v[4].path, None);
        assert!(v[5].shared && v[5].deleted);
        assert_eq!(v[6].anon_name(), Some("my name"));
        assert!(v[9].path.as_deref() == Some("[stack]") && v[9].len() == 0x21000);
        assert!(v[10].exec && !v[10].read);
        assert!(v.iter().all(|v| v.vm_flags.is_empty()));
    }

    #[test]
    fn maps_errors_name_line() {
        let err = parse_maps("00400000-00401000 r-xp 00000000 fe:00 1 /a\nzz-1 r--p 0 0:0 0\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("maps:2:"), "{msg}");
        assert!(parse_maps("1-2 rw 0 0:0 0").is_err());
        assert!(parse_maps("1-2 rw-p 0 00 0").is_err());
        assert!(parse_maps("1-2 rw-p 0 0:0 x").is_err());
    }

    // Copied from /proc/self/smaps (vdso entry) on the 6.18 kernel.
    const SMAPS: &str = "\
7f4667497000-7f4667499000 r-xp 00000000 00:00 0                          [vdso]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          4 kB
Anonymous:             0 kB
Swap:                  0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd ex mr mw me de 
7ffee789b000-7ffee78bc000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  12 kB
VmFlags: rd wr mr mw me gd ac zz 
";

    #[test]
    fn smaps_fields_and_flags() {
        let v = parse_smaps(SMAPS).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].path.as_deref(), Some("[vdso]"));
        assert_eq!(v[0].smaps.get("Size"), Some(&8));
        assert_eq!(v[0].smaps.get("THPeligible"), Some(&0));
        assert_eq!(v[0].vm_flags.names(), ["rd", "ex", "mr", "mw", "me", "de"]);
        assert!(v[0].vm_flags.contains("de") && !v[0].vm_flags.contains("wr"));
        assert!(v[1].vm_flags.contains("gd"));
        assert_eq!(v[1].vm_flags.unknown, ["zz"]);
        assert!(v[1].vm_flags.contains("zz"));
        assert_eq!(v[1].smaps.get("Rss"), Some(&12));
    }

    #[test]
    fn smaps_errors() {
        assert!(parse_smaps("Size: 8 kB\n")
            .unwrap_err()
            .to_string()
            .starts_with("smaps:1:"));
        let e = parse_smaps("1-2 r--p 0 0:0 0\nRss: x kB\n").unwrap_err();
        assert!(e.to_string().starts_with("smaps:2:"), "{e}");
    }
}
