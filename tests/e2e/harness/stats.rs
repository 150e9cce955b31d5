//! Reads the frozen time from rcr's `stats-dump` image (CRIU format: image magics, a u32 size,
//! then a protobuf StatsEntry { DumpStatsEntry dump = 1 }). Hand-written instead of pulling a
//! protobuf crate into the tests: four varint fields of one nested message are all we need.

/// Dump timings from stats-dump, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpStats {
    pub freezing_us: u64,
    pub frozen_us: u64,
    pub memdump_us: u64,
    pub memwrite_us: u64,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One protobuf field: (field number, wire type, varint value, length-delimited bytes).
type Field<'a> = (u64, u64, u64, &'a [u8]);

/// The fields of a protobuf message.
fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let (field, wt) = (key >> 3, key & 7);
        match wt {
            0 => out.push((field, wt, varint(b, &mut pos)?, &b[0..0])),
            1 => {
                pos += 8;
                out.push((field, wt, 0, &b[0..0]));
            }
            2 => {
                let len = varint(b, &mut pos)? as usize;
                let sub = b.get(pos..pos.checked_add(len)?)?;
                pos += len;
                out.push((field, wt, 0, sub));
            }
            5 => {
                pos += 4;
                out.push((field, wt, 0, &b[0..0]));
            }
            _ => return None,
        }
    }
    (pos == b.len()).then_some(out)
}

fn parse_entry(pb: &[u8]) -> Option<DumpStats> {
    let (_, _, _, dump) = fields(pb)?.into_iter().find(|f| f.0 == 1 && f.1 == 2)?;
    let mut s = DumpStats::default();
    for (field, wt, v, _) in fields(dump)? {
        match (field, wt) {
            (1, 0) => s.freezing_us = v,
            (2, 0) => s.frozen_us = v,
            (3, 0) => s.memdump_us = v,
            (4, 0) => s.memwrite_us = v,
            _ => {}
        }
    }
    Some(s)
}

/// Parses a stats-dump file: one or two u32 magics, a u32 entry size, the entry.
pub fn parse_stats_dump(b: &[u8]) -> Option<DumpStats> {
    [8usize, 4].iter().find_map(|&hdr| {
        let size = u32::from_le_bytes(b.get(hdr..hdr + 4)?.try_into().ok()?) as usize;
        let pb = b.get(hdr + 4..hdr + 4 + size)?;
        if hdr + 4 + size != b.len() {
            return None;
        }
        parse_entry(pb)
    })
}

pub fn read_stats_dump(images: &std::path::Path) -> Option<DumpStats> {
    parse_stats_dump(&std::fs::read(images.join("stats-dump")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stats_dump_image() {
        // DumpStatsEntry { freezing_time: 150, frozen_time: 300000, memdump_time: 7, memwrite_time: 9,
        // pages_scanned: 1 } inside StatsEntry field 1.
        let inner = [0x08, 0x96, 0x01, 0x10, 0xe0, 0xa7, 0x12, 0x18, 0x07, 0x20, 0x09, 0x28, 0x01];
        let mut entry = vec![0x0a, inner.len() as u8];
        entry.extend_from_slice(&inner);
        let mut file = Vec::new();
        file.extend_from_slice(&0x5510_5940u32.to_le_bytes());
        file.extend_from_slice(&0x5709_3306u32.to_le_bytes());
        file.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        file.extend_from_slice(&entry);
        let s = parse_stats_dump(&file).unwrap();
        assert_eq!(s, DumpStats { freezing_us: 150, frozen_us: 300_000, memdump_us: 7, memwrite_us: 9 });
        // Single magic.
        let single: Vec<u8> = file[4..].to_vec();
        assert_eq!(parse_stats_dump(&single), Some(s));
        assert_eq!(parse_stats_dump(&file[..file.len() - 1]), None);
        assert_eq!(parse_stats_dump(b""), None);
    }
}
