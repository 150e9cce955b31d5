//! rcr-engine: checkpoint/restore of Linux process trees.
//!
//! Layout (each layer depends only on the ones above it in this list):
//! - [`image`]: CRIU-compatible image files: the crate `rcr-images` (framing, protobuf
//!   messages, file names, pagemap, typed reading and writing, JSON), re-exported. It depends
//!   on nothing of the engine (Cargo enforces it), so the decoder stands alone.
//! - [`sys`]: thin syscall wrappers, each `unsafe` block with a SAFETY comment.
//! - [`proc`]: /proc parsers (pure functions over text) and a pid-dir-fd reader.
//! - [`compel`]: ptrace control of a stopped task and remote system calls in it.
//! - [`kinds`]: one module per kernel object kind, dump and restore side by side (the task's core and
//!   attributes in [`kinds::task`], credentials in [`kinds::creds`], the address space and trampoline
//!   in [`kinds::mm`], pages in [`kinds::mem`]).
//! - [`tree`]: the process tree, dump and restore side by side (freeze, ids, creating tasks at their
//!   pids, process groups, zombies).
//! - [`checkpoint`]: the images of a checkpoint, read and checked for a restore.
//! - [`ctx`]: one context per command ([`ctx::DumpCtx`], [`ctx::RestoreCtx`]): options, cancellation,
//!   kernel features, image set, plugin host.
//! - [`graph`]: restore as a graph of objects (nodes that are done or wait for others, one loop).
//! - [`fdtable`]: a task's fd table, dump and restore (the files through the restore graph).
//! - [`dump`] and [`restore`]: only sequence the stages.
//! - [`plugins`]: the plugin host (loads plugins, calls their hooks from dump and restore).
//!
//! `unsafe` lives in the syscall layer ([`sys`], [`compel`]) and the plugin FFI only: the compiler
//! refuses it in [`kinds`], [`tree`], [`ctx`], [`checkpoint`], [`dump`] and [`restore`].

pub mod check;
#[forbid(unsafe_code)]
pub mod checkpoint;
pub mod compel;
#[forbid(unsafe_code)]
pub mod ctx;
#[forbid(unsafe_code)]
pub mod dump;
pub mod error;
#[forbid(unsafe_code)]
pub mod fdtable;
#[forbid(unsafe_code)]
pub mod graph;
#[deny(unsafe_code)]
pub mod kinds;
pub mod notify;
pub mod options;
pub mod plugins;
pub mod proc;
#[forbid(unsafe_code)]
pub mod restore;
pub mod show;
pub mod sys;
#[forbid(unsafe_code)]
pub mod tree;

pub use error::{Context, Error, Result};
pub use rcr_images as image;
