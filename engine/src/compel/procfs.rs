//! Tiny /proc parsers: where to poke `syscall; int3` (maps) and single fields of
//! `/proc/PID/status`. The engine's proc module has full parsers; compel stays self-contained.

/// The value of `key:` in `/proc/PID/status` text, trimmed.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// A `/proc/PID/status` field parsed as a decimal number.
pub fn status_number(status: &str, key: &str) -> Option<i64> {
    status_field(status, key)?.parse().ok()
}

/// A `/proc/PID/status` field parsed as a hexadecimal mask (SigIgn, SigBlk, ...).
pub fn status_mask(status: &str, key: &str) -> Option<u64> {
    u64::from_str_radix(status_field(status, key)?, 16).ok()
}

/// Picks the address at which remote system calls can run: the start of the first
/// executable mapping, preferring a regular one over `[vdso]`; `[vsyscall]` (which
/// cannot be written) and `[uprobes]` are never used.
pub fn exec_site(maps: &str) -> Option<u64> {
    let mut vdso = None;
    for line in maps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if perms.as_bytes().get(2) != Some(&b'x') {
            continue;
        }
        let Some(start) = range
            .split('-')
            .next()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        else {
            continue;
        };
        // offset, dev, inode, then the (optional) name
        let name = fields.nth(3).unwrap_or("");
        match name {
            "[vsyscall]" | "[uprobes]" => {}
            "[vdso]" => {
                vdso.get_or_insert(start);
            }
            _ => return Some(start),
        }
    }
    vdso
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_first_regular_exec_mapping() {
        let maps = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 123 /usr/bin/sleep
55d0c0a01000-55d0c0a05000 r-xp 00001000 fe:01 123 /usr/bin/sleep
7ffd1a3fe000-7ffd1a400000 r-xp 00000000 00:00 0 [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
";
        assert_eq!(exec_site(maps), Some(0x55d0c0a01000));
    }

    #[test]
    fn falls_back_to_vdso_never_vsyscall() {
        let maps = "\
7ffd1a3fe000-7ffd1a400000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        assert_eq!(exec_site(maps), Some(0x7ffd1a3fe000));
        assert_eq!(
            exec_site("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n"),
            None
        );
        assert_eq!(exec_site("garbage\n\n10-20 rw-p 0 0:0 0\n"), None);
    }

    #[test]
    fn status_fields() {
        let st = "Name:\tsleep\nTgid:\t4242\nPid:\t4243\nSigIgn:\t0000000000000010\nSeccomp:\t2\n";
        assert_eq!(status_number(st, "Tgid"), Some(4242));
        assert_eq!(status_number(st, "Pid"), Some(4243));
        assert_eq!(status_mask(st, "SigIgn"), Some(0x10));
        assert_eq!(status_field(st, "Name"), Some("sleep"));
        assert_eq!(status_field(st, "Missing"), None);
    }

    #[test]
    fn anonymous_exec_mapping_counts() {
        assert_eq!(
            exec_site("7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n"),
            Some(0x7f0000000000)
        );
    }
}
