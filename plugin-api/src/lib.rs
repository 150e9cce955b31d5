//! The stable ABI that rcr plugins compile against.
//!
//! A plugin is a shared library that rcr loads at run time from its plugin directory (`--libdir DIR`,
//! `RCR_LIBS_DIR`). Two routes reach the same hooks, with the same `extern "C"` signatures:
//!
//! - **Rust** plugins implement [`Plugin`] and export it with [`export_plugin!`]. The library exports an
//!   `abi_stable` root module ([`RcrPluginMod`], a prefix type): rcr checks its layout when it loads the
//!   library and refuses a plugin built against an incompatible plugin-api with a message naming both
//!   versions. Every hook is wrapped in `catch_unwind`: a panic never crosses the ABI, it becomes an error.
//! - **C/C++** plugins include `include/rcr_plugin.h` and export `rcr_plugin_entry`, which returns a
//!   [`RcrPluginC`] (`struct rcr_plugin`). The header is generated from this crate ([`cheader`]).
//!
//! # Declared once
//!
//! The hooks are listed once, in [`hooks`], and the host services once, in [`services`]; the plain
//! structs in [`abi`]. The macros of [`declare`] make from those lists the Rust trait and shims, the
//! `abi_stable` module, the C descriptor, the hook set the host dispatches on ([`HookSet`]) and the
//! description the C header is written from; the tests check the checked-in header against it and,
//! compiled by `cc`, its sizes and offsets against this crate's.
//!
//! # Versioning
//!
//! The ABI is versioned ([`ABI_VERSION`]) and append-only: new hooks and new host services are only ever
//! added at the end of their list, and each struct carries its `size`. An older plugin keeps loading in
//! a newer rcr (the hooks it does not know are absent); a plugin that reports a newer ABI than rcr knows
//! is refused with a message naming both versions.
//!
//! - 1: init/fini, pause_devices, checkpoint_devices, dump_file, dump_devices_late, restore_init,
//!   restore_file, post_forking, resume_devices_late; services log, set_error, write_image, read_image,
//!   need_plugin.
//! - 2: hooks dump_vma, update_vma, dump_ext_unix_sk, restore_ext_unix_sk, dump_ext_mount,
//!   restore_ext_mount, dump_ext_link, restore_ext_link; services store_put, store_get, run_thread.
//! - 3: hook restore_task (in the restored task's context, rcr its tracer); services image_open
//!   (streamed images), task_syscall, task_read, task_write; `update_vma` may leave the mapping to the
//!   plugin.
//!
//! # Where each hook runs
//!
//! Every hook is called from rcr's main thread, one call at a time, in the process its doc names: "the
//! dumper" is `rcr dump`, "the restore master" is `rcr restore` (which creates the restored tasks; an fd
//! opened there is inherited by the restored task). What must happen inside a restored task, a hook does
//! with the task services during `restore_task`.
//!
//! The hooks take the host table as `*const RcrHostOpaque` (the C header: `const struct rcr_host *`):
//! to `abi_stable`'s layout check it is an opaque pointer, so that appending services to [`RcrHost`]
//! never makes an older Rust plugin's layout differ. Read a service only if `size` covers it.

#![deny(unsafe_op_in_unsafe_fn)]

pub use abi_stable;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;

#[macro_use]
pub mod declare;
pub mod abi;
pub mod cheader;
pub mod hooks;
pub mod host;
pub mod plugin;
pub mod services;
mod shim_support;

pub use abi::*;
pub use hooks::{fns, shim, HookSet, Plugin, RcrPluginMod, RcrPluginModRef, HOOKS};
pub use host::{File, Host, Link, Mount, StoreEntry, Vma};
pub use plugin::{owned_fd, Claim, Instance, Restored, Stage, VmaMapping};
pub use services::{RcrHost, Services, SERVICES};

/// The plugin ABI version this crate describes. Plugins report the version they were built against;
/// rcr loads plugins of this version or older.
pub const ABI_VERSION: u32 = 3;

/// Hook result: success; for a claim hook, "mine".
pub const RCR_OK: i32 = 0;
/// Claim hooks: not this plugin's object; the next plugin (or the core) is asked.
pub const RCR_NOT_MINE: i32 = 1;
/// `restore_file`: cannot be done yet; the message (set with `set_error`) says what it waits for.
pub const RCR_RETRY: i32 = 2;
/// Failure; the message is the one set with the host's `set_error`.
pub const RCR_ERROR: i32 = -1;

/// Stages, passed to `init` and `fini`.
pub const RCR_STAGE_DUMP: u32 = 1;
/// Reserved for `rcr pre-dump` (memory pre-copy without stopping the task for long). rcr has no
/// pre-dump command yet (`rcr pre-dump` is refused), so no plugin is initialised for this stage today.
pub const RCR_STAGE_PRE_DUMP: u32 = 2;
pub const RCR_STAGE_RESTORE: u32 = 3;

/// Log levels for the host's `log`.
pub const RCR_LOG_ERROR: u32 = 0;
pub const RCR_LOG_WARN: u32 = 1;
pub const RCR_LOG_INFO: u32 = 2;
pub const RCR_LOG_DEBUG: u32 = 3;

/// `image_open` modes (ABI 3).
pub const RCR_IMAGE_READ: u32 = 0;
pub const RCR_IMAGE_WRITE: u32 = 1;

/// The host table as hooks receive it.
pub type HostPtr = *const RcrHostOpaque;

impl RootModule for RcrPluginModRef {
    abi_stable::declare_root_module_statics! {RcrPluginModRef}
    const BASE_NAME: &'static str = "rcr_plugin";
    const NAME: &'static str = "rcr_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}

#[cfg(test)]
mod tests;
