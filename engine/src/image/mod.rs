//! CRIU-compatible image files.
//!
//! - [`pb`]: the protobuf messages (generated from `engine/proto/*.proto`, which match CRIU's
//!   `images/*.proto` field for field, so the bytes match).
//! - [`Kind`]: every image kind with its magic, crit name, file name and layout.
//! - [`ImgWriter`] / [`ImgReader`]: framing (magics, length-prefixed entries, raw payloads).
//! - [`pagemap`]: pagemap helpers (the page count lives in two fields).
//! - [`json`]: crit-compatible JSON (`decode_file`, `decode_dir`, `encode`).
//!
//! This layer depends on nothing else in the engine.

pub mod error;
pub mod io;
pub mod json;
pub mod kind;
pub mod pagemap;

pub use error::{ImageError, ImageErrorKind, Result};
pub use io::{ImgReader, ImgWriter, MAX_ENTRY_LEN, MAX_RAW_IN_MEMORY};
pub use json::{decode_bytes, decode_dir, decode_file, encode};
pub use kind::{Kind, Layout, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, IMG_VERSION};

/// The image messages, with prost's names (`CoreEntry`, `ThreadInfoX86`, `PagemapEntry`...).
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/_.rs"));

    use std::sync::OnceLock;

    /// The encoded FileDescriptorSet of all image protos (for prost-reflect).
    pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/image_descriptors.bin"));

    /// The descriptor pool built from [`DESCRIPTOR_SET`] (built once).
    pub fn descriptor_pool() -> Result<&'static prost_reflect::DescriptorPool, String> {
        static POOL: OnceLock<Result<prost_reflect::DescriptorPool, String>> = OnceLock::new();
        POOL.get_or_init(|| {
            prost_reflect::DescriptorPool::decode(DESCRIPTOR_SET)
                .map_err(|e| format!("the built-in image descriptors do not load: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
    }
}
