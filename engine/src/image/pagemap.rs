//! pagemap-N.img helpers: the page count lives in two fields (see pagemap.proto).
//!
//! Layout: a `pagemap_head { pages_id }` entry, then `pagemap_entry` ranges in address order.
//! pages-<pages_id>.img holds the concatenation of the ranges flagged [`PE_PRESENT`] (and not
//! [`PE_PARENT`]/in_parent), in order.

use super::pb::PagemapEntry;

/// The pages are in the parent image directory (incremental dumps).
pub const PE_PARENT: u32 = 1 << 0;
/// The pages are to be fetched lazily.
pub const PE_LAZY: u32 = 1 << 1;
/// The pages are in this image's pages-N.img.
pub const PE_PRESENT: u32 = 1 << 2;

/// Size of a page in images (x86_64).
pub const PAGE_SIZE: u64 = 4096;

/// A pagemap entry for `nr_pages` pages at `vaddr`: the count goes in both the old u32
/// `nr_pages` field (which CRIU requires; saturated if it does not fit, so split such a
/// range before writing it for CRIU) and the u64 `nr_pages_u64` field.
pub fn entry(vaddr: u64, nr_pages: u64, flags: u32) -> PagemapEntry {
    PagemapEntry {
        vaddr,
        nr_pages: u32::try_from(nr_pages).unwrap_or(u32::MAX),
        in_parent: None,
        flags: Some(flags),
        nr_pages_u64: Some(nr_pages),
    }
}

/// The page count of an entry, from whichever field the writer filled (u64 one preferred).
pub fn nr_pages(e: &PagemapEntry) -> u64 {
    e.nr_pages_u64.unwrap_or(u64::from(e.nr_pages))
}

/// Whether the entry's pages are stored in this image's pages file.
pub fn is_present(e: &PagemapEntry) -> bool {
    let flags = e.flags.unwrap_or(0);
    flags & PE_PRESENT != 0 && flags & PE_PARENT == 0 && e.in_parent != Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn both_count_fields_written_and_read() {
        let e = entry(0x7000, 3, PE_PRESENT);
        let bytes = e.encode_to_vec();
        // field 2 (varint 3) and field 5 (varint 3) are both on the wire
        assert!(bytes.windows(2).any(|w| w == [0x10, 3]));
        assert!(bytes.windows(2).any(|w| w == [0x28, 3]));
        let d = PagemapEntry::decode(bytes.as_slice()).unwrap();
        assert_eq!(nr_pages(&d), 3);
        assert!(is_present(&d));

        // An old writer (CRIU) only fills field 2.
        let old = PagemapEntry { vaddr: 0x1000, nr_pages: 7, in_parent: None, flags: None, nr_pages_u64: None };
        assert_eq!(nr_pages(&old), 7);
        assert!(!is_present(&old));

        let big = entry(0, 1 << 33, PE_PRESENT);
        assert_eq!(big.nr_pages, u32::MAX);
        assert_eq!(nr_pages(&big), 1 << 33);
    }
}
