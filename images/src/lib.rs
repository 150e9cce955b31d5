//! rcr-images: CRIU-compatible image files, a layer of its own that depends on nothing else of
//! rcr (Cargo enforces it: this crate does not depend on rcr-engine), so the decoder, `rcr
//! decode`/`encode` and the fuzz target stand alone.
//!
//! - [`pb`]: the protobuf messages (generated from `images/proto/*.proto`, which match CRIU
//!   4.2's `images/*.proto` field for field, names included, so the bytes and crit's JSON match).
//! - [`Kind`] and [`ImageName`]: every image kind with its magic, crit name, message and layout,
//!   and every image file's name (`ImageName::Core(tid)` is `core-<tid>.img`), from one table.
//! - [`ImgWriter`] / [`ImgReader`]: framing (magics, length-prefixed entries, raw payloads).
//! - [`ImageDir`]: typed reading and writing of the images of a directory by name.
//! - [`pagemap`]: the pagemap codec (which pages a pages file holds, with CRIU's semantics).
//! - [`json`]: crit-compatible JSON (`decode_file`, `decode_dir`, `encode`).
//! - [`rpc`]: CRIU's RPC messages (runtimes' `criu swrk`), kept apart from the image kinds.

pub mod dir;
pub mod error;
pub mod io;
pub mod json;
pub mod kind;
pub mod pagemap;
pub mod rpc;

pub use dir::ImageDir;
pub use error::{ImageError, ImageErrorKind, Result};
pub use io::{ImgReader, ImgWriter, MAX_ENTRY_LEN, MAX_RAW_IN_MEMORY};
pub use json::{decode_bytes, decode_dir, decode_file, encode};
pub use kind::{ImageName, Kind, Layout, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, IMG_VERSION};

/// The image messages, with prost's names (`CoreEntry`, `ThreadInfoX86`, `PagemapEntry`...);
/// each implements [`prost::Name`] (its proto name, as in [`Kind::message_name`]).
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
