//! Pure text conversions that must match crit's Python exactly (pb2dict.py): base64 as
//! `base64.encodebytes`, quoted-printable as `quopri`/`binascii.b2a_qp`, `int(s, 0)`, flag
//! maps, dev_t and IP formatting. Hand-written because the byte-for-byte Python behaviour
//! (line wrapping, soft breaks, RFC 5952 vs. Python's IPv4-mapped form) is what matters.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// `base64.encodebytes(data).decode()`: standard alphabet, a newline after every 76
/// characters and at the end ("" for no data).
pub fn b64_encode(data: &[u8]) -> String {
    let flat = STANDARD.encode(data);
    let mut out = String::with_capacity(flat.len() + flat.len() / 76 + 1);
    for chunk in flat.as_bytes().chunks(76) {
        // chunks of an ASCII string are ASCII
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// `base64.decodebytes`: ignores newlines and other characters outside the alphabet,
/// padding optional.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/' || *c == '=')
        .collect();
    // Python stops at the first complete padding; anything after "=" is dropped.
    let body = match clean.find('=') {
        Some(i) => &clean[..i],
        None => &clean[..],
    };
    LENIENT.decode(body).map_err(|e| format!("bad base64: {e}"))
}

const QP_MAXLINE: usize = 76;

fn hex_upper(b: u8) -> [u8; 2] {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    [H[usize::from(b >> 4)], H[usize::from(b & 15)]]
}

/// `quopri.encodestring(data)` = `binascii.b2a_qp(data, quotetabs=False, istext=True,
/// header=False)`, as text.
pub fn qp_encode(data: &[u8]) -> String {
    let n = data.len();
    let crlf = data
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|p| p > 0 && data[p - 1] == b'\r');
    let mut out: Vec<u8> = Vec::with_capacity(n * 3);
    let soft_break = |out: &mut Vec<u8>| {
        out.push(b'=');
        if crlf {
            out.push(b'\r');
        }
        out.push(b'\n');
    };
    let (mut i, mut linelen) = (0usize, 0usize);
    while i < n {
        let c = data[i];
        let next = data.get(i + 1).copied();
        let encode = c > 126
            || c == b'='
            || (c == b'.' && linelen == 0 && matches!(next, None | Some(b'\n') | Some(b'\r') | Some(0)))
            || ((c == b'\t' || c == b' ') && next.is_none())
            || (c < 33 && c != b'\r' && c != b'\n' && c != b'\t' && c != b' ');
        if encode {
            if linelen + 3 >= QP_MAXLINE {
                soft_break(&mut out);
                linelen = 0;
            }
            out.push(b'=');
            out.extend_from_slice(&hex_upper(c));
            i += 1;
            linelen += 3;
        } else if c == b'\n' || (c == b'\r' && next == Some(b'\n')) {
            linelen = 0;
            if let Some(&last) = out.last() {
                if last == b' ' || last == b'\t' {
                    out.pop();
                    out.push(b'=');
                    out.extend_from_slice(&hex_upper(last));
                }
            }
            if crlf {
                out.push(b'\r');
            }
            out.push(b'\n');
            i += if c == b'\r' { 2 } else { 1 };
        } else {
            if next.is_some() && next != Some(b'\n') && linelen + 1 >= QP_MAXLINE {
                soft_break(&mut out);
                linelen = 0;
            }
            linelen += 1;
            out.push(c);
            i += 1;
        }
    }
    // only ASCII was pushed
    String::from_utf8_lossy(&out).into_owned()
}

/// `quopri.decodestring(text)` = `binascii.a2b_qp(text, header=False)`.
pub fn qp_decode(text: &str) -> Vec<u8> {
    let d = text.as_bytes();
    let hexval = |b: u8| (b as char).to_digit(16).map(|v| v as u8);
    let mut out = Vec::with_capacity(d.len());
    let mut i = 0;
    while i < d.len() {
        if d[i] != b'=' {
            out.push(d[i]);
            i += 1;
            continue;
        }
        i += 1;
        if i >= d.len() {
            break;
        }
        if d[i] == b'\n' || d[i] == b'\r' {
            while i < d.len() && d[i] != b'\n' {
                i += 1;
            }
            if i < d.len() {
                i += 1;
            }
        } else if d[i] == b'=' {
            out.push(b'=');
            i += 1;
        } else if let (Some(h), Some(l)) = (hexval(d[i]), d.get(i + 1).and_then(|&b| hexval(b))) {
            out.push(h << 4 | l);
            i += 2;
        } else {
            out.push(b'=');
        }
    }
    out
}

/// Python's `int(text, 0)`: optional sign, 0x/0o/0b prefixes, `_` between digits,
/// surrounding whitespace; no leading zeros on decimal numbers other than zero.
pub fn py_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = t.to_ascii_lowercase();
    let (radix, digits) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.strip_prefix('_').unwrap_or(r))
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.strip_prefix('_').unwrap_or(r))
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.strip_prefix('_').unwrap_or(r))
    } else {
        if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0' && b != b'_') {
            return None;
        }
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `"0x%x" % v` (negative numbers as "-0x..").
pub fn py_hex(v: i128) -> String {
    if v < 0 {
        format!("-0x{:x}", v.unsigned_abs())
    } else {
        format!("0x{v:x}")
    }
}

/// pb2dict's flags_maps.
pub fn flags_map(name: &str) -> Option<&'static [(&'static str, u64)]> {
    const MMAP_PROT: &[(&str, u64)] = &[("PROT_READ", 0x1), ("PROT_WRITE", 0x2), ("PROT_EXEC", 0x4)];
    const MMAP_FLAGS: &[(&str, u64)] = &[
        ("MAP_SHARED", 0x1),
        ("MAP_PRIVATE", 0x2),
        ("MAP_ANON", 0x20),
        ("MAP_GROWSDOWN", 0x0100),
    ];
    const MMAP_STATUS: &[(&str, u64)] = &[
        ("VMA_AREA_NONE", 0),
        ("VMA_AREA_REGULAR", 1 << 0),
        ("VMA_AREA_STACK", 1 << 1),
        ("VMA_AREA_VSYSCALL", 1 << 2),
        ("VMA_AREA_VDSO", 1 << 3),
        ("VMA_AREA_HEAP", 1 << 5),
        ("VMA_FILE_PRIVATE", 1 << 6),
        ("VMA_FILE_SHARED", 1 << 7),
        ("VMA_ANON_SHARED", 1 << 8),
        ("VMA_ANON_PRIVATE", 1 << 9),
        ("VMA_AREA_SYSVIPC", 1 << 10),
        ("VMA_AREA_SOCKET", 1 << 11),
        ("VMA_AREA_VVAR", 1 << 12),
        ("VMA_AREA_AIORING", 1 << 13),
        ("VMA_UNSUPP", 1 << 31),
    ];
    const RFILE_FLAGS: &[(&str, u64)] = &[
        ("O_WRONLY", 0o1),
        ("O_RDWR", 0o2),
        ("O_CREAT", 0o100),
        ("O_EXCL", 0o200),
        ("O_NOCTTY", 0o400),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
        ("O_NONBLOCK", 0o4000),
        ("O_DSYNC", 0o10000),
        ("FASYNC", 0o20000),
        ("O_DIRECT", 0o40000),
        ("O_LARGEFILE", 0o100000),
        ("O_DIRECTORY", 0o200000),
        ("O_NOFOLLOW", 0o400000),
        ("O_NOATIME", 0o1000000),
        ("O_CLOEXEC", 0o2000000),
    ];
    const PMAP_FLAGS: &[(&str, u64)] = &[("PE_PARENT", 1 << 0), ("PE_LAZY", 1 << 1), ("PE_PRESENT", 1 << 2)];
    const SEALS_FLAGS: &[(&str, u64)] = &[
        ("F_SEAL_SEAL", 0x1),
        ("F_SEAL_SHRINK", 0x2),
        ("F_SEAL_GROW", 0x4),
        ("F_SEAL_WRITE", 0x8),
        ("F_SEAL_FUTURE_WRITE", 0x10),
    ];
    Some(match name {
        "mmap.prot" => MMAP_PROT,
        "mmap.flags" => MMAP_FLAGS,
        "mmap.status" => MMAP_STATUS,
        "rfile.flags" => RFILE_FLAGS,
        "pmap.flags" => PMAP_FLAGS,
        "seals.flags" => SEALS_FLAGS,
        _ => return None,
    })
}

/// pb2dict's map_flags: set names joined by " | ", unknown bits as a trailing hex number.
pub fn map_flags(value: u64, map: &[(&str, u64)]) -> String {
    let mut parts: Vec<String> = map
        .iter()
        .filter(|(_, bit)| value & bit != 0)
        .map(|(name, _)| (*name).to_string())
        .collect();
    let known = map.iter().fold(0u64, |acc, (_, bit)| acc | bit);
    let rest = value & !known;
    if rest != 0 {
        parts.push(format!("0x{rest:x}"));
    }
    parts.join(" | ")
}

/// pb2dict's unmap_flags: the sum of the named (or numeric) parts.
pub fn unmap_flags(text: &str, map: &[(&str, u64)]) -> Option<i128> {
    if text.is_empty() {
        return Some(0);
    }
    text.split('|').map(str::trim).try_fold(0i128, |acc, part| {
        let v = match map.iter().find(|(name, _)| *name == part) {
            Some((_, bit)) => i128::from(*bit),
            None => py_int(part)?,
        };
        Some(acc + v)
    })
}

/// pb2dict's dict_maps ("gen" and "sk"), keyed by field name: (number, name) pairs.
pub fn dict_map(dict: &str, field: &str) -> Option<&'static [(i128, &'static str)]> {
    Some(match (dict, field) {
        ("gen", "task_state") => &[(1, "Alive"), (3, "Zombie"), (6, "Stopped")],
        ("sk", "family") => &[(1, "UNIX"), (2, "INET"), (10, "INET6"), (16, "NETLINK"), (17, "PACKET")],
        ("sk", "type") => &[(1, "STREAM"), (2, "DGRAM"), (3, "RAW"), (5, "SEQPACKET"), (10, "PACKET")],
        ("sk", "state") => &[
            (1, "ESTABLISHED"),
            (2, "SYN_SENT"),
            (3, "SYN_RECV"),
            (4, "FIN_WAIT1"),
            (5, "FIN_WAIT2"),
            (6, "TIME_WAIT"),
            (7, "CLOSE"),
            (8, "CLOSE_WAIT"),
            (9, "LAST_ACK"),
            (10, "LISTEN"),
        ],
        ("sk", "proto") => &[(0, "IP"), (6, "TCP"), (17, "UDP"), (136, "UDPLITE")],
        _ => return None,
    })
}

/// dev_t as "major:minor": the kernel's internal encoding (20 minor bits), or with `odev`
/// glibc's `major()`/`minor()` of a user-space dev_t.
pub fn dev_to_string(v: u64, odev: bool) -> String {
    if odev {
        let major = ((v >> 8) & 0xfff) | ((v >> 32) & 0xffff_f000);
        let minor = (v & 0xff) | ((v >> 12) & 0xffff_ff00);
        format!("{major}:{minor}")
    } else {
        format!("{}:{}", v >> 20, v & ((1 << 20) - 1))
    }
}

/// The inverse of [`dev_to_string`].
pub fn dev_from_string(text: &str, odev: bool) -> Option<i128> {
    let (ma, mi) = text.split_once(':')?;
    let (ma, mi) = (py_int_dec(ma)?, py_int_dec(mi)?);
    Some(if odev {
        ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
    } else {
        (ma << 20) | mi
    })
}

fn py_int_dec(s: &str) -> Option<i128> {
    let t = s.trim();
    if t.is_empty() || !t.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// pb2dict's IP formatting of a repeated u32 field holding network-order words: one word is
/// IPv4, otherwise the first four are IPv6, printed as Python's `ipaddress` `.compressed`.
pub fn ip_to_string(words: &[u32]) -> Option<String> {
    let host = |w: u32| u32::from_be(w.to_le()); // ntohl on the little-endian host crit ran on
    match words {
        [w] => Some(std::net::Ipv4Addr::from(host(*w)).to_string()),
        [a, b, c, d, ..] => {
            let v = [host(*a), host(*b), host(*c), host(*d)];
            let hextets: Vec<u16> = v.iter().flat_map(|w| [(w >> 16) as u16, (w & 0xffff) as u16]).collect();
            Some(ipv6_compressed(&hextets))
        }
        _ => None,
    }
}

/// Python's `_compress_hextets`: the first longest run (of at least two) of zero groups
/// becomes "::"; IPv4-mapped addresses stay in hex.
fn ipv6_compressed(h: &[u16]) -> String {
    let (mut best, mut best_len, mut cur, mut cur_len) = (0usize, 0usize, 0usize, 0usize);
    for (i, &x) in h.iter().enumerate() {
        if x == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let hex = |s: &[u16]| s.iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":");
    if best_len > 1 {
        format!("{}::{}", hex(&h[..best]), hex(&h[best + best_len..]))
    } else {
        hex(h)
    }
}

/// pb2dict's dict2pb for an IP string: network-order words (1 for IPv4, 4 for IPv6).
pub fn ip_from_string(text: &str) -> Option<Vec<u32>> {
    let net = |w: u32| u32::from_le(w.to_be()); // htonl
    match text.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => Some(vec![net(u32::from(a))]),
        std::net::IpAddr::V6(a) => {
            let v = u128::from(a);
            Some((0..4).rev().map(|i| net((v >> (32 * i)) as u32)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_python() {
        assert_eq!(b64_encode(b""), "");
        assert_eq!(b64_encode(b"hello"), "aGVsbG8=\n");
        let long = b64_encode(&[0u8; 60]);
        assert_eq!(long, format!("{}\n{}\n", "A".repeat(76), "A".repeat(4)));
        assert_eq!(b64_decode("aGVs\nbG8=\n").unwrap(), b"hello");
        assert_eq!(b64_decode("aGVsbG8").unwrap(), b"hello");
        assert!(b64_decode("a").is_err());
    }

    #[test]
    fn quoted_printable_like_python() {
        assert_eq!(qp_encode(b"/tmp/sock"), "/tmp/sock");
        assert_eq!(qp_encode(b"\0abstract=x"), "=00abstract=3Dx");
        assert_eq!(qp_encode(b"a "), "a=20");
        assert_eq!(qp_encode(b"\xff."), "=FF.");
        assert_eq!(qp_encode(b"."), "=2E");
        let long = qp_encode(&[b'a'; 80]);
        assert_eq!(long, format!("{}=\n{}", "a".repeat(75), "a".repeat(5)));
        for s in [&b"\0abstract=x"[..], b"a ", b"x\ny \nz", &[b'a'; 80], &[0u8; 40]] {
            assert_eq!(qp_decode(&qp_encode(s)), s);
        }
        assert_eq!(qp_decode("a=\nb=3d=="), b"ab==");
    }

    #[test]
    fn python_int_parsing() {
        assert_eq!(py_int("0x1f"), Some(31));
        assert_eq!(py_int(" 12 "), Some(12));
        assert_eq!(py_int("-0x10"), Some(-16));
        assert_eq!(py_int("0o17"), Some(15));
        assert_eq!(py_int("1_000"), Some(1000));
        assert_eq!(py_int("0"), Some(0));
        assert_eq!(py_int("00"), Some(0));
        assert_eq!(py_int("012"), None);
        assert_eq!(py_int("zz"), None);
        assert_eq!(py_int(""), None);
        assert_eq!(py_hex(255), "0xff");
        assert_eq!(py_hex(-1), "-0x1");
    }

    #[test]
    fn flags_dev_ip() {
        let m = flags_map("mmap.prot").unwrap();
        assert_eq!(map_flags(0x3, m), "PROT_READ | PROT_WRITE");
        assert_eq!(map_flags(0x0, m), "");
        assert_eq!(map_flags(0x11, m), "PROT_READ | 0x10");
        assert_eq!(unmap_flags("PROT_READ | 0x10", m), Some(0x11));
        assert_eq!(unmap_flags("", m), Some(0));
        assert_eq!(dev_to_string((8 << 20) | 1, false), "8:1");
        assert_eq!(dev_from_string("8:1", false), Some((8 << 20) | 1));
        assert_eq!(dev_to_string(0x0801, true), "8:1");
        assert_eq!(dev_from_string("259:65536", true).map(|v| dev_to_string(v as u64, true)), Some("259:65536".into()));
        let v4 = ip_from_string("127.0.0.1").unwrap();
        assert_eq!(v4, vec![0x0100_007f]);
        assert_eq!(ip_to_string(&v4).unwrap(), "127.0.0.1");
        for a in ["::1", "fe80::1:2", "::ffff:102:304", "1:0:0:2::3", "::"] {
            assert_eq!(ip_to_string(&ip_from_string(a).unwrap()).unwrap(), a);
        }
    }
}
