//! The pagemap codec: `pagemap-<pid>.img` (and `pagemap-shmem-<inode>.img`) says which pages
//! `pages-<pages_id>.img` holds. The one place that reads and writes pagemaps, for dump,
//! restore and `rcr show`.
//!
//! Layout: a `pagemap_head { pages_id }` entry, then `pagemap_entry` ranges in address order.
//! The pages file is the concatenation of the ranges whose pages it holds, in order.
//!
//! Semantics are CRIU's (criu/pagemap.c, `init_compat_pagemap_entry`): an entry with
//! `in_parent` set has its pages in the parent checkpoint (as [`PE_PARENT`]); an entry without
//! `flags` (written by CRIU before flags existed) is [`PE_PRESENT`]; the page count is
//! `nr_pages` (field 5, u64) when present, else `compat_nr_pages` (field 2, u32).

use crate::dir::ImageDir;
use crate::error::{ImageError, ImageErrorKind, Result};
use crate::io::{ImgReader, ImgWriter};
use crate::kind::{ImageName, Kind};
use crate::pb::{PagemapEntry, PagemapHead};

/// The pages are in the parent image directory (incremental dumps).
pub const PE_PARENT: u32 = 1 << 0;
/// The pages are to be fetched lazily (from a page server).
pub const PE_LAZY: u32 = 1 << 1;
/// The pages are in this checkpoint's pages file.
pub const PE_PRESENT: u32 = 1 << 2;

/// Size of a page in images (x86_64).
pub const PAGE_SIZE: u64 = 4096;

/// A pagemap entry for `nr_pages` pages at `vaddr`: the count goes in both `nr_pages` (u64)
/// and `compat_nr_pages` (u32, which CRIU 3.x reads and CRIU requires; saturated if the count
/// does not fit, which only CRIU 3.x would misread).
pub fn entry(vaddr: u64, nr_pages: u64, flags: u32) -> PagemapEntry {
    PagemapEntry {
        vaddr,
        compat_nr_pages: u32::try_from(nr_pages).unwrap_or(u32::MAX),
        in_parent: None,
        flags: Some(flags),
        nr_pages: Some(nr_pages),
    }
}

/// The page count of an entry: `nr_pages` if the writer filled it, else `compat_nr_pages`.
pub fn nr_pages(e: &PagemapEntry) -> u64 {
    e.nr_pages.unwrap_or(u64::from(e.compat_nr_pages))
}

/// The entry's flags as CRIU reads them: `in_parent` adds [`PE_PARENT`]; absent flags (and
/// no `in_parent`) mean [`PE_PRESENT`].
pub fn flags(e: &PagemapEntry) -> u32 {
    match (e.in_parent, e.flags) {
        (Some(true), f) => f.unwrap_or(0) | PE_PARENT,
        (_, Some(f)) => f,
        (_, None) => PE_PRESENT,
    }
}

/// Whether the entry's pages are in this checkpoint's pages file.
pub fn in_pages_file(e: &PagemapEntry) -> bool {
    let f = flags(e);
    f & PE_PRESENT != 0 && f & PE_PARENT == 0
}

/// A run of pages: `len` bytes at `addr`, stored at `file_off` in the pages file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRun {
    pub addr: u64,
    pub len: u64,
    pub file_off: u64,
}

/// A pagemap read back: the pages file it describes and the runs that file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagemap {
    pub pages_id: u32,
    /// Address-ordered, with their offsets in `pages-<pages_id>.img`.
    pub runs: Vec<PageRun>,
}

impl Pagemap {
    /// Reads pagemap image `name` (a [`Kind::Pagemap`] name) of `dir`.
    pub fn read(dir: &ImageDir, name: ImageName) -> Result<Pagemap> {
        Pagemap::read_from(dir.open(name)?)
    }

    /// Reads a pagemap from an open reader. Entries whose pages are in the parent checkpoint or
    /// served lazily are an error (rcr restores neither); entries with neither flag nor
    /// [`PE_PRESENT`] have no pages anywhere and are left out.
    pub fn read_from<R: std::io::Read>(mut r: ImgReader<R>) -> Result<Pagemap> {
        let head: PagemapHead = r
            .read_entry()?
            .ok_or_else(|| ImageError::new(r.path(), r.offset(), ImageErrorKind::NoEntry("pagemap_head")))?;
        let mut runs = Vec::new();
        let mut file_off = 0u64;
        loop {
            let at = r.offset();
            let Some(e) = r.read_entry::<PagemapEntry>()? else { break };
            let nr = nr_pages(&e);
            let f = flags(&e);
            let elsewhere = |place| ImageError::new(r.path(), at, ImageErrorKind::PagesElsewhere { vaddr: e.vaddr, nr_pages: nr, place });
            if f & PE_PARENT != 0 {
                return Err(elsewhere("in the parent checkpoint (an incremental dump)"));
            }
            if f & PE_PRESENT == 0 {
                if f & PE_LAZY != 0 {
                    return Err(elsewhere("lazy (left to a page server)"));
                }
                continue;
            }
            let too_large = |what| {
                ImageError::new(r.path(), at, ImageErrorKind::TooLarge { what, len: nr, limit_what: "the 64-bit address space", limit: u64::MAX })
            };
            let len = nr.checked_mul(PAGE_SIZE).ok_or_else(|| too_large("page count"))?;
            runs.push(PageRun { addr: e.vaddr, len, file_off });
            file_off = file_off.checked_add(len).ok_or_else(|| too_large("page total"))?;
        }
        Ok(Pagemap { pages_id: head.pages_id, runs })
    }

    /// Bytes of pages the pages file must hold.
    pub fn pages_len(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.file_off + r.len)
    }
}

/// Writes a pagemap image: the head, then one [`PE_PRESENT`] entry per run of pages in the
/// pages file, in the order their pages are written there.
pub struct PagemapWriter {
    w: ImgWriter,
}

impl PagemapWriter {
    /// Creates pagemap image `name` (a [`Kind::Pagemap`] name) in `dir` for the pages file
    /// `pages-<pages_id>.img`.
    pub fn create(dir: &ImageDir, name: ImageName, pages_id: u32) -> Result<PagemapWriter> {
        if name.kind() != Kind::Pagemap {
            return Err(ImageError::new(dir.file(name), 0, ImageErrorKind::Other(format!("{name} is no pagemap image"))));
        }
        let mut w = dir.create(name)?;
        w.write_entry(&PagemapHead { pages_id })?;
        Ok(PagemapWriter { w })
    }

    /// Records `nr_pages` pages at `vaddr`, held next in the pages file.
    pub fn push(&mut self, vaddr: u64, nr_pages: u64) -> Result<()> {
        self.w.write_entry(&entry(vaddr, nr_pages, PE_PRESENT))
    }

    /// Flushes the image; it is complete when this returns Ok.
    pub fn finish(self) -> Result<()> {
        self.w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn old(vaddr: u64, compat_nr_pages: u32, in_parent: Option<bool>, flags: Option<u32>) -> PagemapEntry {
        PagemapEntry { vaddr, compat_nr_pages, in_parent, flags, nr_pages: None }
    }

    #[test]
    fn both_count_fields_written_and_read() {
        let e = entry(0x7000, 3, PE_PRESENT);
        let bytes = e.encode_to_vec();
        // field 2 (varint 3) and field 5 (varint 3) are both on the wire
        assert!(bytes.windows(2).any(|w| w == [0x10, 3]));
        assert!(bytes.windows(2).any(|w| w == [0x28, 3]));
        let d = PagemapEntry::decode(bytes.as_slice()).unwrap();
        assert_eq!(nr_pages(&d), 3);
        assert!(in_pages_file(&d));

        let big = entry(0, 1 << 33, PE_PRESENT);
        assert_eq!(big.compat_nr_pages, u32::MAX);
        assert_eq!(nr_pages(&big), 1 << 33);
    }

    #[test]
    fn flags_as_criu_reads_them() {
        // An old writer fills only field 2 and no flags: present.
        let e = old(0x1000, 7, None, None);
        assert_eq!((nr_pages(&e), flags(&e)), (7, PE_PRESENT));
        assert!(in_pages_file(&e));
        assert_eq!(flags(&old(0, 1, Some(true), None)), PE_PARENT);
        assert!(!in_pages_file(&old(0, 1, Some(true), Some(PE_PRESENT))));
        assert_eq!(flags(&old(0, 1, Some(false), None)), PE_PRESENT);
        assert_eq!(flags(&old(0, 1, None, Some(0))), 0);
        assert!(!in_pages_file(&old(0, 1, None, Some(PE_LAZY))));
    }

    fn image(entries: &[PagemapEntry]) -> Vec<u8> {
        let mut w = ImgWriter::new(Vec::new(), "pagemap-1.img", Kind::Pagemap).unwrap();
        w.write_entry(&PagemapHead { pages_id: 3 }).unwrap();
        for e in entries {
            w.write_entry(e).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn read(bytes: &[u8]) -> Result<Pagemap> {
        Pagemap::read_from(ImgReader::from_bytes(bytes, "pagemap-1.img", Some(Kind::Pagemap))?)
    }

    #[test]
    fn runs_with_file_offsets() {
        let img = image(&[old(0x1000, 2, None, None), old(0x9000, 5, None, Some(0)), entry(0x10000, 1, PE_PRESENT)]);
        let pm = read(&img).unwrap();
        assert_eq!(pm.pages_id, 3);
        assert_eq!(
            pm.runs,
            vec![PageRun { addr: 0x1000, len: 0x2000, file_off: 0 }, PageRun { addr: 0x10000, len: 0x1000, file_off: 0x2000 }]
        );
        assert_eq!(pm.pages_len(), 0x3000);
    }

    #[test]
    fn pages_elsewhere_and_overflow_are_errors_at_the_entry() {
        let first = image(&[]).len() as u64;
        for (e, want) in [
            (old(0x5000, 1, Some(true), None), "parent"),
            (entry(0x5000, 1, PE_LAZY), "lazy"),
            (entry(0x5000, u64::MAX / 2, PE_PRESENT), "page count"),
        ] {
            let err = read(&image(&[entry(0x1000, 1, PE_PRESENT), e])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(want) && msg.contains("pagemap-1.img"), "{msg}");
            assert!(err.offset > first, "{msg}: the offset of the second entry");
        }
        let err = read(&image(&[])[..8]).unwrap_err();
        assert!(matches!(err.kind, ImageErrorKind::NoEntry("pagemap_head")), "{err}");
    }
}
