//! The image layer's error: every failure names the file, the byte offset in it and what was
//! expected there.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error reading, writing or converting an image file.
///
/// `path` is the image file (or `<json>` / a caller-given label for in-memory data) and
/// `offset` the byte offset in it where the problem was found (for JSON encoding: the offset
/// in the image being produced).
#[derive(Debug, thiserror::Error)]
#[error("image {}: at byte {offset}: {kind}", path.display())]
pub struct ImageError {
    pub path: PathBuf,
    pub offset: u64,
    #[source]
    pub kind: ImageErrorKind,
}

/// What went wrong, without the location (see [`ImageError`]).
#[derive(Debug, thiserror::Error)]
pub enum ImageErrorKind {
    #[error("I/O error while {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("wrong magic {found:#010x}: expected {expected} ({magic:#010x}); is this the right image file?")]
    WrongMagic {
        expected: &'static str,
        magic: u32,
        found: u32,
    },
    #[error("unknown image magic {0:#010x}: not a CRIU/rcr image, or a raw one (pages-*.img) which has no magic")]
    UnknownMagic(u32),
    #[error("unknown image kind {0:?}")]
    UnknownKind(String),
    #[error("file ends inside {what}: needed {needed} bytes, only {available} left; the image is truncated")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("{what} length {len} is larger than {limit_what} ({limit} bytes); the image is corrupt")]
    TooLarge {
        what: &'static str,
        len: u64,
        limit_what: &'static str,
        limit: u64,
    },
    #[error("entry of {len} bytes is not a valid {message} message: {source}")]
    Decode {
        message: String,
        len: u64,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the image holds no {0} entry; it is empty or truncated")]
    NoEntry(&'static str),
    #[error("{asked} is not the message of {kind} images ({expected})")]
    WrongMessage {
        kind: &'static str,
        expected: &'static str,
        asked: &'static str,
    },
    #[error("{0} images are not a plain list of entries (a head entry, or payloads after entries): use ImgReader/ImgWriter or their codec")]
    NotPlain(&'static str),
    #[error("the {nr_pages} pages at {vaddr:#x} are {place}: rcr restores only pages kept in the checkpoint's own pages file")]
    PagesElsewhere {
        vaddr: u64,
        nr_pages: u64,
        place: &'static str,
    },
    #[error("{message} is missing required field {field}")]
    MissingRequired { message: String, field: String },
    #[error("cannot write raw bytes to a {0} image (it has no raw payload)")]
    NotRaw(&'static str),
    #[error("JSON {at}: {msg}")]
    Json { at: String, msg: String },
    #[error("{0}")]
    Other(String),
}

impl ImageError {
    pub fn new(path: impl Into<PathBuf>, offset: u64, kind: ImageErrorKind) -> Self {
        ImageError {
            path: path.into(),
            offset,
            kind,
        }
    }

    pub(crate) fn io(path: &Path, offset: u64, what: &'static str, source: std::io::Error) -> Self {
        Self::new(path, offset, ImageErrorKind::Io { what, source })
    }

    pub(crate) fn json(path: &Path, offset: u64, at: impl fmt::Display, msg: impl Into<String>) -> Self {
        Self::new(
            path,
            offset,
            ImageErrorKind::Json {
                at: at.to_string(),
                msg: msg.into(),
            },
        )
    }
}

/// Result alias for the image layer.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
