//! rcr-engine: checkpoint/restore of Linux process trees.
//!
//! Layout (each layer depends only on the ones above it in this list):
//! - [`image`]: CRIU-compatible image files: the crate `rcr-images` (framing, protobuf
//!   messages, file names, pagemap, typed reading and writing, JSON), re-exported. It depends
//!   on nothing of the engine (Cargo enforces it), so the decoder stands alone.
//! - [`sys`]: thin syscall wrappers, each `unsafe` block with a SAFETY comment.
//! - [`proc`]: /proc parsers (pure functions over text) and a pid-dir-fd reader.
//! - [`compel`]: ptrace control of a stopped task and remote system calls in it.
//! - [`kinds`]: one module per kernel object kind, dump and restore side by side.
//! - [`graph`]: restore as a graph of objects (nodes that are done or wait for others, one loop).
//! - [`fdtable`]: a task's fd table, dump and restore (the files through the restore graph).
//! - [`dump`] and [`restore`]: only sequence the stages.
//! - [`plugins`]: the plugin host (loads plugins, calls their hooks from dump and restore).
//!
//! `unsafe` lives in the syscall layer ([`sys`], [`compel`]) and the plugin FFI only: the compiler
//! refuses it in [`kinds`], [`dump`] and [`restore`].

pub mod check;
pub mod compel;
#[forbid(unsafe_code)]
pub mod dump;
pub mod error;
#[forbid(unsafe_code)]
pub mod fdtable;
#[forbid(unsafe_code)]
pub mod graph;
#[deny(unsafe_code)]
pub mod kinds;
pub mod options;
pub mod plugins;
pub mod proc;
#[forbid(unsafe_code)]
pub mod restore;
pub mod show;
pub mod sys;

pub use error::{Error, Result};
pub use rcr_images as image;
