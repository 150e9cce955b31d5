//! Image framing: magic(s), then entries, each a little-endian u32 length and a protobuf
//! message, some followed by a raw payload.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::error::{ImageError, ImageErrorKind, Result};
use super::kind::{Kind, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC};

/// Largest entry message rcr accepts (CRIU's entries are far smaller; the biggest, mm with
/// all its VMAs, is a few hundred KiB). Guards allocations against corrupt lengths.
pub const MAX_ENTRY_LEN: u64 = 64 << 20;
/// Largest raw payload [`ImgReader::read_raw`] reads into memory at once; use
/// [`ImgReader::copy_raw`] to stream larger ones.
pub const MAX_RAW_IN_MEMORY: u64 = 1 << 30;

/// Writes one image file: the magic(s) on creation, then entries and raw payloads.
pub struct ImgWriter<W: Write = BufWriter<File>> {
    out: W,
    path: PathBuf,
    kind: Kind,
    offset: u64,
}

impl ImgWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the magic(s) of `kind`.
    pub fn create(path: &Path, kind: Kind) -> Result<Self> {
        let file = File::create(path).map_err(|e| ImageError::io(path, 0, "creating the image file", e))?;
        ImgWriter::new(BufWriter::new(file), path, kind)
    }

    /// Flushes the buffered data; the file is complete when this returns Ok.
    pub fn finish(self) -> Result<()> {
        let (path, offset) = (self.path.clone(), self.offset);
        let file = self
            .out
            .into_inner()
            .map_err(|e| ImageError::io(&path, offset, "flushing the image file", e.into_error()))?;
        drop(file);
        Ok(())
    }
}

impl<W: Write> ImgWriter<W> {
    /// Starts an image of `kind` on any writer (e.g. a `Vec<u8>`); `label` names it in errors.
    pub fn new(out: W, label: impl Into<PathBuf>, kind: Kind) -> Result<Self> {
        let mut w = ImgWriter {
            out,
            path: label.into(),
            kind,
            offset: 0,
        };
        if !kind.is_raw() {
            if let Some(head) = kind.head_magic() {
                w.put(&head.to_le_bytes(), "writing the head magic")?;
            }
            w.put(&kind.magic().to_le_bytes(), "writing the image magic")?;
        }
        Ok(w)
    }

    /// The kind being written.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Bytes written so far (including the magic).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes one entry: its encoded length (u32 LE) and the message.
    pub fn write_entry(&mut self, msg: &impl prost::Message) -> Result<()> {
        self.write_entry_bytes(&msg.encode_to_vec())
    }

    /// Writes one already-encoded entry message with its length prefix.
    pub fn write_entry_bytes(&mut self, msg: &[u8]) -> Result<()> {
        if self.kind.is_raw() {
            return Err(ImageError::new(
                &self.path,
                self.offset,
                ImageErrorKind::Other(format!("{} images are raw: they hold no entries", self.kind.crit_name())),
            ));
        }
        let len = u32::try_from(msg.len()).map_err(|_| {
            ImageError::new(
                &self.path,
                self.offset,
                ImageErrorKind::TooLarge {
                    what: "entry",
                    len: msg.len() as u64,
                    limit_what: "the u32 length prefix",
                    limit: u32::MAX.into(),
                },
            )
        })?;
        self.put(&len.to_le_bytes(), "writing an entry length")?;
        self.put(msg, "writing an entry")
    }

    /// Writes raw bytes (a payload after an entry, or page contents of a raw image).
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.put(bytes, "writing a raw payload")
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.out
            .flush()
            .map_err(|e| ImageError::io(&self.path, self.offset, "flushing the image", e))?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8], what: &'static str) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| ImageError::io(&self.path, self.offset, what, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// Reads one image file: checks the magic on opening, then yields entries and payloads.
pub struct ImgReader<R: Read = BufReader<File>> {
    input: R,
    path: PathBuf,
    kind: Kind,
    offset: u64,
    len: u64,
}

impl ImgReader<BufReader<File>> {
    /// Opens `path`, which must be an image of `kind` (checks its magic(s)).
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        let (file, len) = open_file(path)?;
        ImgReader::from_reader(BufReader::new(file), len, path, Some(kind))
    }

    /// Opens `path` and detects its kind from the magic. Raw images (pages-N.img) have no
    /// magic and are refused: open them with [`ImgReader::open`] and [`Kind::Pages`].
    pub fn open_any(path: &Path) -> Result<Self> {
        let (file, len) = open_file(path)?;
        ImgReader::from_reader(BufReader::new(file), len, path, None)
    }
}

fn open_file(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| ImageError::io(path, 0, "opening the image file", e))?;
    let len = file
        .metadata()
        .map_err(|e| ImageError::io(path, 0, "reading the image file's size", e))?
        .len();
    Ok((file, len))
}

impl<'a> ImgReader<&'a [u8]> {
    /// Reads an image held in memory; `label` names it in errors.
    pub fn from_bytes(bytes: &'a [u8], label: impl Into<PathBuf>, kind: Option<Kind>) -> Result<Self> {
        ImgReader::from_reader(bytes, bytes.len() as u64, label, kind)
    }
}

impl<R: Read> ImgReader<R> {
    /// Reads an image from `input` holding exactly `len` bytes. With `kind` the magic must be
    /// that kind's; without, the kind is detected from the magic.
    pub fn from_reader(input: R, len: u64, label: impl Into<PathBuf>, kind: Option<Kind>) -> Result<Self> {
        let mut r = ImgReader {
            input,
            path: label.into(),
            kind: kind.unwrap_or(Kind::Inventory),
            offset: 0,
            len,
        };
        if kind.is_some_and(Kind::is_raw) {
            return Ok(r);
        }
        let mut magic = r.read_u32("the image magic")?;
        if magic == IMG_COMMON_MAGIC || magic == IMG_SERVICE_MAGIC {
            magic = r.read_u32("the image magic after the head magic")?;
        }
        let at = r.offset - 4;
        match kind {
            Some(k) if k.magic() != magic => Err(ImageError::new(
                &r.path,
                at,
                ImageErrorKind::WrongMagic {
                    expected: k.crit_name(),
                    magic: k.magic(),
                    found: magic,
                },
            )),
            Some(_) => Ok(r),
            None => match Kind::from_magic(magic) {
                Some(k) => {
                    r.kind = k;
                    Ok(r)
                }
                None => Err(ImageError::new(&r.path, at, ImageErrorKind::UnknownMagic(magic))),
            },
        }
    }

    /// The image's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The file (or label) being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes left in the file.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }

    /// Reads the next entry; None at a clean end of file (no byte left).
    pub fn read_entry<M: prost::Message + Default>(&mut self) -> Result<Option<M>> {
        let start = self.offset;
        let Some(buf) = self.read_entry_bytes()? else {
            return Ok(None);
        };
        M::decode(buf.as_slice()).map(Some).map_err(|source| {
            ImageError::new(
                &self.path,
                start,
                ImageErrorKind::Decode {
                    message: std::any::type_name::<M>().rsplit("::").next().unwrap_or("?").to_string(),
                    len: buf.len() as u64,
                    source,
                },
            )
        })
    }

    /// Reads the next entry's message bytes (without decoding them); None at a clean EOF.
    pub fn read_entry_bytes(&mut self) -> Result<Option<Vec<u8>>> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let start = self.offset;
        let len = u64::from(self.read_u32("an entry length")?);
        if len > MAX_ENTRY_LEN {
            return Err(self.too_large(start, "entry", len, "the entry size limit", MAX_ENTRY_LEN));
        }
        if len > self.remaining() {
            let rest = self.remaining();
            return Err(self.too_large(start, "entry", len, "the rest of the file", rest));
        }
        self.read_exact_vec(len, "an entry message").map(Some)
    }

    /// Reads every remaining entry.
    pub fn read_all<M: prost::Message + Default>(&mut self) -> Result<Vec<M>> {
        let mut all = Vec::new();
        while let Some(m) = self.read_entry()? {
            all.push(m);
        }
        Ok(all)
    }

    /// Reads a raw payload of `len` bytes (bounded by the rest of the file and
    /// [`MAX_RAW_IN_MEMORY`]).
    pub fn read_raw(&mut self, len: u64) -> Result<Vec<u8>> {
        let start = self.offset;
        if len > MAX_RAW_IN_MEMORY {
            return Err(self.too_large(start, "raw payload", len, "the in-memory limit", MAX_RAW_IN_MEMORY));
        }
        self.read_exact_vec(len, "a raw payload")
    }

    /// Reads everything up to the end of the file as raw bytes.
    pub fn read_raw_to_end(&mut self) -> Result<Vec<u8>> {
        self.read_raw(self.remaining())
    }

    /// Copies a raw payload of `len` bytes to `out` without holding it in memory.
    pub fn copy_raw(&mut self, len: u64, out: &mut impl Write) -> Result<()> {
        let start = self.offset;
        self.check_available(len, "a raw payload")?;
        let copied = std::io::copy(&mut (&mut self.input).take(len), out)
            .map_err(|e| ImageError::io(&self.path, start, "copying a raw payload", e))?;
        self.offset += copied;
        if copied != len {
            return Err(self.truncated(start, "a raw payload", len, copied));
        }
        Ok(())
    }

    /// Skips a raw payload of `len` bytes.
    pub fn skip_raw(&mut self, len: u64) -> Result<()> {
        self.copy_raw(len, &mut std::io::sink())
    }

    fn read_u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.read_exact_vec(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn check_available(&self, len: u64, what: &'static str) -> Result<()> {
        if len > self.remaining() {
            return Err(self.truncated(self.offset, what, len, self.remaining()));
        }
        Ok(())
    }

    /// Reads exactly `len` bytes; `len` must already be bounded by the caller's caps, and is
    /// checked against the rest of the file before anything is allocated.
    fn read_exact_vec(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>> {
        let start = self.offset;
        self.check_available(len, what)?;
        let mut buf = Vec::new();
        let got = (&mut self.input)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| ImageError::io(&self.path, start, "reading", e))?;
        self.offset += got as u64;
        if got as u64 != len {
            return Err(self.truncated(start, what, len, got as u64));
        }
        Ok(buf)
    }

    fn truncated(&self, at: u64, what: &'static str, needed: u64, available: u64) -> ImageError {
        ImageError::new(&self.path, at, ImageErrorKind::Truncated { what, needed, available })
    }

    fn too_large(&self, at: u64, what: &'static str, len: u64, limit_what: &'static str, limit: u64) -> ImageError {
        ImageError::new(&self.path, at, ImageErrorKind::TooLarge { what, len, limit_what, limit })
    }
}
