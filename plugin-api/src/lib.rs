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
//!   [`RcrPluginC`] (`struct rcr_plugin`). The header and this module describe the same structs.
//!
//! # Versioning
//!
//! The ABI is versioned ([`ABI_VERSION`]) and append-only: new hooks and new host services are only ever
//! added at the end of their struct, and each struct carries its `size`. An older plugin keeps loading in
//! a newer rcr (the hooks it does not know are absent); a plugin that reports a newer ABI than rcr knows
//! is refused with a message naming both versions.
//!
//! # Where each hook runs
//!
//! Every hook is called from rcr's main thread, one call at a time, in the process named on its field
//! below: "the dumper" is `rcr dump`, "the restore master" is `rcr restore` (which creates the restored
//! tasks; an fd opened there is inherited by the restored task). No hook runs inside a restored task:
//! what must happen in the task (mapping a device, using an fd) is done by rcr with what the hook
//! returned.
//!
//! # ABI versions
//!
//! - 1: init/fini, pause_devices, checkpoint_devices, dump_file, dump_devices_late, restore_init,
//!   restore_file, post_forking, resume_devices_late; services log, set_error, write_image, read_image,
//!   need_plugin.
//! - 2: hooks dump_vma, update_vma, dump_ext_unix_sk, restore_ext_unix_sk, dump_ext_mount,
//!   restore_ext_mount, dump_ext_link, restore_ext_link; services store_put, store_get, run_thread.
//!
//! The hooks take the host table as `*const RcrHostOpaque` (the C header: `const struct rcr_host *`):
//! to `abi_stable`'s layout check it is an opaque pointer, so that appending services to [`RcrHost`]
//! never makes an older Rust plugin's layout differ. Read a service only if `size` covers it.

#![deny(unsafe_op_in_unsafe_fn)]

pub use abi_stable;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RStr;
use abi_stable::StableAbi;
use std::ffi::{c_char, c_void, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

/// The plugin ABI version this crate describes. Plugins report the version they were built against;
/// rcr loads plugins of this version or older.
pub const ABI_VERSION: u32 = 2;

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

/// Services rcr offers to plugins (`struct rcr_host`). Every plugin gets its own table (its images and
/// log lines carry its name). Fields are append-only: read one only if `size` covers it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RcrHost {
    /// The ABI version of this rcr.
    pub abi_version: u32,
    /// `size_of::<RcrHost>()` as this rcr knows it.
    pub size: u32,
    /// Opaque; passed back to every service.
    pub ctx: *mut c_void,
    /// A unique id of this rcr run (NUL-terminated).
    pub run_id: *const c_char,
    /// The images directory (NUL-terminated).
    pub images_dir: *const c_char,
    /// The command's options as a JSON object (NUL-terminated), e.g. `{"command":"dump","pid":42,...}`.
    pub options_json: *const c_char,
    /// Logs `msg` (UTF-8, `len` bytes) through rcr's log at `level` (`RCR_LOG_*`).
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: u32, msg: *const u8, len: usize),
    /// Sets the message of the error (or the retry reason) the current hook is about to return.
    pub set_error: unsafe extern "C" fn(ctx: *mut c_void, msg: *const u8, len: usize),
    /// Writes the plugin's image `name` (letters, digits, `.`, `_`, `-`) in the images directory,
    /// replacing it. The file is the plugin's own; its name is prefixed with the plugin's name.
    pub write_image: unsafe extern "C" fn(ctx: *mut c_void, name: *const u8, name_len: usize, data: *const u8, len: usize) -> i32,
    /// Reads the plugin's image `name`: stores its size in `*len` and copies up to `cap` bytes into
    /// `buf` (call with `cap` 0 to learn the size). `RCR_NOT_MINE` if there is no such image.
    pub read_image:
        unsafe extern "C" fn(ctx: *mut c_void, name: *const u8, name_len: usize, buf: *mut u8, cap: usize, len: *mut usize) -> i32,
    /// Records that this checkpoint cannot be restored without plugin `name` (a plugin that claims a
    /// file is recorded without asking).
    pub need_plugin: unsafe extern "C" fn(ctx: *mut c_void, name: *const u8, len: usize) -> i32,
    // ---- ABI version 2 ----
    /// The fork-shared store: puts `len` bytes and, if `fd` >= 0, a copy of `fd` (rcr dups it; the caller
    /// keeps its own) under `key`, replacing what was there. One store per rcr command, shared by all
    /// plugins and all hooks of every stage (at restore: restore_init, restore_file, update_vma,
    /// post_forking, resume_devices_late, fini), so a hook can leave an fd or small state for a later one.
    /// Keys: 1-64 of `[A-Za-z0-9._-]`; data: at most 64 KiB.
    pub store_put: unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, key_len: usize, data: *const u8, len: usize, fd: i32) -> i32,
    /// Gets what is stored under `key`: its size in `*len`, up to `cap` bytes into `buf`, and in `*fd` a
    /// new copy of its fd that the caller owns (or -1; pass NULL to take no fd). `RCR_NOT_MINE` if the key
    /// is not there.
    pub store_get:
        unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, key_len: usize, buf: *mut u8, cap: usize, len: *mut usize, fd: *mut i32) -> i32,
    /// Thread control of a frozen task: lets thread `tid` of process `pid` (rcr holds it stopped) run for
    /// `timeout_ms` (at most 10000), then stops it again, as it was; the rest of the task stays stopped.
    /// Only during `checkpoint_devices` (the dumper; elsewhere `RCR_ERROR`). A signal that arrives for the
    /// thread meanwhile stays pending for it.
    pub run_thread: unsafe extern "C" fn(ctx: *mut c_void, pid: i32, tid: i32, timeout_ms: u32) -> i32,
}

/// What the hooks receive: the host table ([`RcrHost`]), opaque to `abi_stable`'s layout check (see the
/// crate documentation). Cast it to `*const RcrHost`, or use [`Host::from_raw`].
#[repr(C)]
#[derive(StableAbi)]
pub struct RcrHostOpaque {
    _private: [u8; 0],
}

/// The host table as hooks receive it.
pub type HostPtr = *const RcrHostOpaque;

/// An open file offered to `dump_file` (`struct rcr_file`). Valid only during the call.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RcrFile {
    /// The task that has the file open.
    pub pid: i32,
    /// The fd number in that task.
    pub fd: i32,
    /// A copy of the fd, open in the dumper for the duration of the call (pidfd_getfd).
    pub local_fd: i32,
    /// Open flags (`flags:` of fdinfo, octal there), O_CLOEXEC included.
    pub flags: u32,
    /// `st_mode` of the file.
    pub mode: u32,
    pub reserved: u32,
    /// The file position (`pos:` of fdinfo).
    pub pos: u64,
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    /// The target of `/proc/PID/fd/FD` (e.g. `anon_inode:[eventfd]`, `/dev/foo`), not NUL-terminated.
    pub path: *const u8,
    pub path_len: usize,
    /// The full text of `/proc/PID/fdinfo/FD`, not NUL-terminated.
    pub fdinfo: *const u8,
    pub fdinfo_len: usize,
}

/// A memory area (`struct rcr_vma`), offered to `dump_vma` and passed to `update_vma`. Valid only
/// during the call.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RcrVma {
    /// The task that has it mapped.
    pub pid: i32,
    /// `PROT_*` bits.
    pub prot: u32,
    /// `MAP_SHARED` or `MAP_PRIVATE`.
    pub flags: u32,
    pub reserved: u32,
    pub start: u64,
    pub end: u64,
    /// Offset in the mapped file, in bytes.
    pub offset: u64,
    /// Device (`makedev(major, minor)`) and inode of the mapped file, as /proc/PID/maps shows them
    /// (0 at restore).
    pub dev: u64,
    pub ino: u64,
    /// The mapped file as /proc/PID/maps names it (`/dev/foo`, `anon_inode:bpf-map`); empty at restore.
    pub path: *const u8,
    pub path_len: usize,
    /// The `VmFlags:` of smaps (`rd wr sh mr mw me ms io pf ...`); empty at restore.
    pub vm_flags: *const u8,
    pub vm_flags_len: usize,
}

/// A mount (`struct rcr_mount`) offered to `dump_ext_mount`; strings not NUL-terminated.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RcrMount {
    /// `mount_id` of /proc/PID/mountinfo.
    pub mnt_id: i32,
    pub reserved: u32,
    pub mountpoint: *const u8,
    pub mountpoint_len: usize,
    /// The root of the mount within its filesystem.
    pub root: *const u8,
    pub root_len: usize,
    pub fstype: *const u8,
    pub fstype_len: usize,
    pub source: *const u8,
    pub source_len: usize,
}

/// A network link (`struct rcr_link`) offered to `dump_ext_link`; strings not NUL-terminated.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RcrLink {
    pub ifindex: i32,
    pub reserved: u32,
    /// The interface's name, e.g. `veth0`.
    pub name: *const u8,
    pub name_len: usize,
    /// Its rtnetlink kind (`IFLA_INFO_KIND`: `veth`, `macvlan`, ...), empty if none.
    pub kind: *const u8,
    pub kind_len: usize,
}

/// `init`: the dumper or the restore master, right after every plugin is loaded, before anything else.
pub type InitFn = unsafe extern "C" fn(host: HostPtr, stage: u32) -> i32;
/// `fini`: the dumper or the restore master, at the end of the stage; `ok` is 1 if the stage succeeded.
/// For restore it runs once the restored tree runs (or after the restore failed).
pub type FiniFn = unsafe extern "C" fn(host: HostPtr, stage: u32, ok: i32) -> i32;
/// Per-task device hooks (`pause_devices`, `checkpoint_devices`, `dump_devices_late`, `post_forking`,
/// `resume_devices_late`).
pub type PidFn = unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32;
/// `dump_file`: the dumper, task frozen. Return `RCR_OK` to claim the file (then save its state with
/// `write_image`, keyed by `id`), `RCR_NOT_MINE` to pass.
pub type DumpFileFn = unsafe extern "C" fn(host: HostPtr, file: *const RcrFile, id: u32) -> i32;
/// `restore_init`: the restore master, after the images are read, before any file is opened or task
/// forked.
pub type RestoreInitFn = unsafe extern "C" fn(host: HostPtr) -> i32;
/// `restore_file`: the restore master, before forking. Open the file dumped as `id` and store the fd in
/// `*fd` (ownership passes to rcr; the restored task inherits it and rcr moves it to its number and
/// sets its FD_CLOEXEC). `RCR_RETRY` asks to be called again after the other files.
pub type RestoreFileFn = unsafe extern "C" fn(host: HostPtr, id: u32, fd: *mut i32) -> i32;
/// `dump_vma` (ABI 2): the dumper, task frozen, for every memory area the core cannot handle itself
/// (device memory, a mapping of an anon-inode or of a file under /dev). Return `RCR_OK` to claim it:
/// save what you need with `write_image`, keyed by `id`; the core records the area as the plugin's
/// (`VMA_EXT_PLUGIN`, no pages saved) and `update_vma` gets it back at restore.
pub type DumpVmaFn = unsafe extern "C" fn(host: HostPtr, vma: *const RcrVma, id: u32) -> i32;
/// `update_vma` (ABI 2): the restore master, after every file is restored, before the task is created;
/// once per area the plugin claimed. Store in `*fd` an fd to map the area from (ownership passes to
/// rcr, which maps it in the restored task at the area's address with its protection and flags) and,
/// if it changed, the file offset in `*offset` (preset to the dumped offset).
pub type UpdateVmaFn = unsafe extern "C" fn(host: HostPtr, id: u32, vma: *const RcrVma, fd: *mut i32, offset: *mut u64) -> i32;
/// `dump_ext_unix_sk` (ABI 2): the dumper, task frozen: a unix socket whose peer is outside the dumped
/// tree (`peer_ino` is the peer's inode, 0 if unknown). Claim it (`RCR_OK`) to save it yourself.
pub type DumpExtUnixSkFn = unsafe extern "C" fn(host: HostPtr, file: *const RcrFile, peer_ino: u64, id: u32) -> i32;
/// `restore_ext_unix_sk` (ABI 2): the restore master, before forking: the socket dumped as `id`, opened
/// (connected) in rcr; `*fd` as in `restore_file`.
pub type RestoreExtUnixSkFn = unsafe extern "C" fn(host: HostPtr, id: u32, fd: *mut i32) -> i32;
/// `dump_ext_mount` (ABI 2): the dumper: a mount of the task's mount namespace that rcr cannot
/// describe itself (external to the dump). Claim it to save what it needs.
pub type DumpExtMountFn = unsafe extern "C" fn(host: HostPtr, mnt: *const RcrMount, id: u32) -> i32;
/// `restore_ext_mount` (ABI 2): the restore master, before forking: mount what was dumped as `id` at
/// `mountpoint` (a path in the restore master's mount namespace, not NUL-terminated).
pub type RestoreExtMountFn = unsafe extern "C" fn(host: HostPtr, id: u32, mountpoint: *const u8, len: usize) -> i32;
/// `dump_ext_link` (ABI 2): the dumper: a network link of the task's network namespace that rcr cannot
/// create itself (a veth whose peer is outside, a device). Claim it to save it.
pub type DumpExtLinkFn = unsafe extern "C" fn(host: HostPtr, link: *const RcrLink, id: u32) -> i32;
/// `restore_ext_link` (ABI 2): the restore master, before forking: create the link dumped as `id` with
/// name `name` (not NUL-terminated) in the network namespace rcr is in.
pub type RestoreExtLinkFn = unsafe extern "C" fn(host: HostPtr, id: u32, name: *const u8, len: usize) -> i32;

/// The Rust route's root module: name, version and hooks of a plugin. A prefix type: the hooks of ABI
/// version 2 come after `resume_devices_late` (the last field every plugin has) and read as absent from
/// plugins built before them.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = RcrPluginModRef)))]
// The hook types are written out (not the aliases above): the layout derive must see them.
pub struct RcrPluginMod {
    /// The ABI version the plugin was built against ([`ABI_VERSION`] of its plugin-api).
    pub abi_version: u32,
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    /// The dumper or the restore master, first. See [`InitFn`].
    pub init: Option<unsafe extern "C" fn(host: HostPtr, stage: u32) -> i32>,
    /// The dumper or the restore master, last. See [`FiniFn`].
    pub fini: Option<unsafe extern "C" fn(host: HostPtr, stage: u32, ok: i32) -> i32>,
    /// The dumper, before the task is frozen.
    pub pause_devices: Option<unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32>,
    /// The dumper, after the task is frozen, before its files and memory are dumped.
    pub checkpoint_devices: Option<unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32>,
    /// The dumper, for every fd before the core handles it. See [`DumpFileFn`].
    pub dump_file: Option<unsafe extern "C" fn(host: HostPtr, file: *const RcrFile, id: u32) -> i32>,
    /// The dumper, after every task is dumped, before the inventory is written.
    pub dump_devices_late: Option<unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32>,
    /// The restore master, before forking. See [`RestoreInitFn`].
    pub restore_init: Option<unsafe extern "C" fn(host: HostPtr) -> i32>,
    /// The restore master, before forking. See [`RestoreFileFn`].
    pub restore_file: Option<unsafe extern "C" fn(host: HostPtr, id: u32, fd: *mut i32) -> i32>,
    /// The restore master, right after the task is created (stopped, still a copy of rcr).
    pub post_forking: Option<unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32>,
    /// The restore master, after the task's memory and files are restored, before it runs.
    #[sabi(last_prefix_field)]
    pub resume_devices_late: Option<unsafe extern "C" fn(host: HostPtr, pid: i32) -> i32>,
    // ---- ABI version 2: absent (None) in older plugins ----
    /// The dumper. See [`DumpVmaFn`].
    #[sabi(missing_field(default))]
    pub dump_vma: Option<unsafe extern "C" fn(host: HostPtr, vma: *const RcrVma, id: u32) -> i32>,
    /// The restore master, before forking. See [`UpdateVmaFn`].
    #[sabi(missing_field(default))]
    pub update_vma: Option<unsafe extern "C" fn(host: HostPtr, id: u32, vma: *const RcrVma, fd: *mut i32, offset: *mut u64) -> i32>,
    /// The dumper. See [`DumpExtUnixSkFn`].
    #[sabi(missing_field(default))]
    pub dump_ext_unix_sk: Option<unsafe extern "C" fn(host: HostPtr, file: *const RcrFile, peer_ino: u64, id: u32) -> i32>,
    /// The restore master, before forking. See [`RestoreExtUnixSkFn`].
    #[sabi(missing_field(default))]
    pub restore_ext_unix_sk: Option<unsafe extern "C" fn(host: HostPtr, id: u32, fd: *mut i32) -> i32>,
    /// The dumper. See [`DumpExtMountFn`].
    #[sabi(missing_field(default))]
    pub dump_ext_mount: Option<unsafe extern "C" fn(host: HostPtr, mnt: *const RcrMount, id: u32) -> i32>,
    /// The restore master, before forking. See [`RestoreExtMountFn`].
    #[sabi(missing_field(default))]
    pub restore_ext_mount: Option<unsafe extern "C" fn(host: HostPtr, id: u32, mountpoint: *const u8, len: usize) -> i32>,
    /// The dumper. See [`DumpExtLinkFn`].
    #[sabi(missing_field(default))]
    pub dump_ext_link: Option<unsafe extern "C" fn(host: HostPtr, link: *const RcrLink, id: u32) -> i32>,
    /// The restore master, before forking. See [`RestoreExtLinkFn`].
    #[sabi(missing_field(default))]
    pub restore_ext_link: Option<unsafe extern "C" fn(host: HostPtr, id: u32, name: *const u8, len: usize) -> i32>,
}

impl RcrPluginMod {
    /// A module with no hooks.
    pub const fn new(name: &'static str, version: &'static str) -> RcrPluginMod {
        RcrPluginMod {
            abi_version: ABI_VERSION,
            name: RStr::from_str(name),
            version: RStr::from_str(version),
            init: None,
            fini: None,
            pause_devices: None,
            checkpoint_devices: None,
            dump_file: None,
            dump_devices_late: None,
            restore_init: None,
            restore_file: None,
            post_forking: None,
            resume_devices_late: None,
            dump_vma: None,
            update_vma: None,
            dump_ext_unix_sk: None,
            restore_ext_unix_sk: None,
            dump_ext_mount: None,
            restore_ext_mount: None,
            dump_ext_link: None,
            restore_ext_link: None,
        }
    }
}

impl RootModule for RcrPluginModRef {
    abi_stable::declare_root_module_statics! {RcrPluginModRef}
    const BASE_NAME: &'static str = "rcr_plugin";
    const NAME: &'static str = "rcr_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}

/// The C route's descriptor (`struct rcr_plugin`), returned by the exported
/// `const struct rcr_plugin *rcr_plugin_entry(void)`. Same hooks, same order as [`RcrPluginMod`];
/// `size` tells rcr how many of them the plugin knows.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RcrPluginC {
    pub abi_version: u32,
    /// `sizeof(struct rcr_plugin)` as the plugin was compiled.
    pub size: u32,
    /// NUL-terminated, static.
    pub name: *const c_char,
    pub version: *const c_char,
    pub init: Option<InitFn>,
    pub fini: Option<FiniFn>,
    pub pause_devices: Option<PidFn>,
    pub checkpoint_devices: Option<PidFn>,
    pub dump_file: Option<DumpFileFn>,
    pub dump_devices_late: Option<PidFn>,
    pub restore_init: Option<RestoreInitFn>,
    pub restore_file: Option<RestoreFileFn>,
    pub post_forking: Option<PidFn>,
    pub resume_devices_late: Option<PidFn>,
    // ABI version 2 (a version-1 plugin's struct ends before these; rcr reads them as NULL).
    pub dump_vma: Option<DumpVmaFn>,
    pub update_vma: Option<UpdateVmaFn>,
    pub dump_ext_unix_sk: Option<DumpExtUnixSkFn>,
    pub restore_ext_unix_sk: Option<RestoreExtUnixSkFn>,
    pub dump_ext_mount: Option<DumpExtMountFn>,
    pub restore_ext_mount: Option<RestoreExtMountFn>,
    pub dump_ext_link: Option<DumpExtLinkFn>,
    pub restore_ext_link: Option<RestoreExtLinkFn>,
}

impl RcrPluginC {
    /// A descriptor with no name and no hooks (what rcr fills from a plugin's shorter struct).
    pub const fn empty() -> RcrPluginC {
        RcrPluginC {
            abi_version: 0,
            size: 0,
            name: std::ptr::null(),
            version: std::ptr::null(),
            init: None,
            fini: None,
            pause_devices: None,
            checkpoint_devices: None,
            dump_file: None,
            dump_devices_late: None,
            restore_init: None,
            restore_file: None,
            post_forking: None,
            resume_devices_late: None,
            dump_vma: None,
            update_vma: None,
            dump_ext_unix_sk: None,
            restore_ext_unix_sk: None,
            dump_ext_mount: None,
            restore_ext_mount: None,
            dump_ext_link: None,
            restore_ext_link: None,
        }
    }
}

/// `sizeof(struct rcr_plugin)` of ABI version 1: a plugin's struct must be at least this long.
pub const PLUGIN_C_SIZE_V1: usize = 104;

/// The name of the C route's entry symbol.
pub const C_ENTRY_SYMBOL: &str = "rcr_plugin_entry";
/// Its type.
pub type CEntryFn = unsafe extern "C" fn() -> *const RcrPluginC;

/// The hooks, in ABI order, with their names (as `rcr plugins` lists them).
pub const HOOK_NAMES: &[&str] = &[
    "init",
    "fini",
    "pause_devices",
    "checkpoint_devices",
    "dump_file",
    "dump_devices_late",
    "restore_init",
    "restore_file",
    "post_forking",
    "resume_devices_late",
    "dump_vma",
    "update_vma",
    "dump_ext_unix_sk",
    "restore_ext_unix_sk",
    "dump_ext_mount",
    "restore_ext_mount",
    "dump_ext_link",
    "restore_ext_link",
];

// ---------------------------------------------------------------------------------------------------
// The safe Rust side: what a Rust plugin implements and uses.

/// The stage a plugin is initialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Dump,
    PreDump,
    Restore,
    /// A stage this plugin-api does not know (from a newer rcr).
    Other(u32),
}

impl Stage {
    pub fn from_raw(v: u32) -> Stage {
        match v {
            RCR_STAGE_DUMP => Stage::Dump,
            RCR_STAGE_PRE_DUMP => Stage::PreDump,
            RCR_STAGE_RESTORE => Stage::Restore,
            o => Stage::Other(o),
        }
    }
}

/// What [`Host::store_get`] returns: the stored bytes and a copy of the stored fd, if any.
pub type StoreEntry = (Vec<u8>, Option<OwnedFd>);

/// A plugin's view of rcr's services.
pub struct Host<'a> {
    raw: &'a RcrHost,
}

fn cstr_or_empty<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "";
    }
    // SAFETY: rcr passes NUL-terminated strings that live as long as the host table.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

impl<'a> Host<'a> {
    /// # Safety
    /// `raw` must be the table rcr passed to the hook being run.
    pub unsafe fn from_raw(raw: HostPtr) -> Option<Host<'a>> {
        // SAFETY: the caller passes rcr's table, valid for the call, or null. A plugin of this ABI
        // version is only loaded by an rcr of this version or newer, whose table is at least this long.
        unsafe { raw.cast::<RcrHost>().as_ref() }.map(|raw| Host { raw })
    }

    /// Whether this rcr's table has the service that starts at byte `offset` (ABI 2 services).
    fn has(&self, offset: usize) -> bool {
        self.raw.size as usize >= offset + std::mem::size_of::<usize>()
    }

    pub fn abi_version(&self) -> u32 {
        self.raw.abi_version
    }
    pub fn run_id(&self) -> &str {
        cstr_or_empty(self.raw.run_id)
    }
    pub fn images_dir(&self) -> &str {
        cstr_or_empty(self.raw.images_dir)
    }
    pub fn options_json(&self) -> &str {
        cstr_or_empty(self.raw.options_json)
    }

    pub fn log(&self, level: u32, msg: &str) {
        // SAFETY: a service of rcr's table, called with its ctx and a valid buffer.
        unsafe { (self.raw.log)(self.raw.ctx, level, msg.as_ptr(), msg.len()) }
    }
    pub fn info(&self, msg: &str) {
        self.log(RCR_LOG_INFO, msg)
    }
    pub fn debug(&self, msg: &str) {
        self.log(RCR_LOG_DEBUG, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.log(RCR_LOG_WARN, msg)
    }

    fn set_error(&self, msg: &str) {
        // SAFETY: as in `log`.
        unsafe { (self.raw.set_error)(self.raw.ctx, msg.as_ptr(), msg.len()) }
    }

    /// Writes this plugin's image `name` into the images directory.
    pub fn write_image(&self, name: &str, data: &[u8]) -> Result<(), String> {
        // SAFETY: as in `log`; both buffers are valid for the call.
        let r = unsafe { (self.raw.write_image)(self.raw.ctx, name.as_ptr(), name.len(), data.as_ptr(), data.len()) };
        if r == RCR_OK {
            Ok(())
        } else {
            Err(format!("rcr could not write image '{name}'"))
        }
    }

    /// Reads this plugin's image `name`; None if the checkpoint has none.
    pub fn read_image(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let mut len = 0usize;
        // SAFETY: as in `log`; a zero-capacity call only stores the size.
        let r = unsafe { (self.raw.read_image)(self.raw.ctx, name.as_ptr(), name.len(), std::ptr::null_mut(), 0, &mut len) };
        match r {
            RCR_OK => {}
            RCR_NOT_MINE => return Ok(None),
            _ => return Err(format!("rcr could not read image '{name}'")),
        }
        let mut buf = vec![0u8; len];
        let mut got = 0usize;
        // SAFETY: `buf` has `len` writable bytes.
        let r = unsafe { (self.raw.read_image)(self.raw.ctx, name.as_ptr(), name.len(), buf.as_mut_ptr(), buf.len(), &mut got) };
        if r != RCR_OK || got != len {
            return Err(format!("rcr could not read image '{name}' (it changed while read)"));
        }
        Ok(Some(buf))
    }

    /// Records that the checkpoint needs plugin `name` to be restored.
    pub fn need_plugin(&self, name: &str) -> Result<(), String> {
        // SAFETY: as in `log`.
        let r = unsafe { (self.raw.need_plugin)(self.raw.ctx, name.as_ptr(), name.len()) };
        if r == RCR_OK {
            Ok(())
        } else {
            Err(format!("rcr refused plugin name '{name}'"))
        }
    }

    /// Puts `data` and, if given, a copy of `fd` under `key` in the fork-shared store (ABI 2).
    pub fn store_put(&self, key: &str, data: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), String> {
        if !self.has(std::mem::offset_of!(RcrHost, store_put)) {
            return Err("this rcr has no store (plugin ABI 1)".into());
        }
        let raw_fd = fd.map_or(-1, |f| f.as_raw_fd());
        // SAFETY: as in `log`; both buffers are valid for the call, the fd is only duplicated.
        let r = unsafe { (self.raw.store_put)(self.raw.ctx, key.as_ptr(), key.len(), data.as_ptr(), data.len(), raw_fd) };
        if r == RCR_OK {
            Ok(())
        } else {
            Err(format!("rcr could not store '{key}'"))
        }
    }

    /// Gets what is stored under `key` (ABI 2): the bytes and a copy of the fd, if one was stored.
    pub fn store_get(&self, key: &str) -> Result<Option<StoreEntry>, String> {
        if !self.has(std::mem::offset_of!(RcrHost, store_get)) {
            return Err("this rcr has no store (plugin ABI 1)".into());
        }
        let mut len = 0usize;
        // SAFETY: as in `log`; a zero-capacity call without an fd slot only stores the size.
        let r = unsafe { (self.raw.store_get)(self.raw.ctx, key.as_ptr(), key.len(), std::ptr::null_mut(), 0, &mut len, std::ptr::null_mut()) };
        match r {
            RCR_OK => {}
            RCR_NOT_MINE => return Ok(None),
            _ => return Err(format!("rcr could not get '{key}' from the store")),
        }
        let mut buf = vec![0u8; len];
        let (mut got, mut fd) = (0usize, -1i32);
        // SAFETY: `buf` has `len` writable bytes; `fd` is a writable int.
        let r = unsafe { (self.raw.store_get)(self.raw.ctx, key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len(), &mut got, &mut fd) };
        // SAFETY: on success rcr hands over a fresh copy of the stored fd (or -1).
        let fd = (r == RCR_OK && fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        if r != RCR_OK || got != len {
            return Err(format!("rcr could not get '{key}' from the store (it changed while read)"));
        }
        Ok(Some((buf, fd)))
    }

    /// Lets thread `tid` of the frozen process `pid` run for `timeout_ms`, then stops it again
    /// (ABI 2; only in `checkpoint_devices`).
    pub fn run_thread(&self, pid: i32, tid: i32, timeout_ms: u32) -> Result<(), String> {
        if !self.has(std::mem::offset_of!(RcrHost, run_thread)) {
            return Err("this rcr has no thread control (plugin ABI 1)".into());
        }
        // SAFETY: as in `log`.
        let r = unsafe { (self.raw.run_thread)(self.raw.ctx, pid, tid, timeout_ms) };
        if r == RCR_OK {
            Ok(())
        } else {
            Err(format!("rcr could not run thread {tid} of pid {pid}"))
        }
    }
}

/// A file offered to [`Plugin::dump_file`].
pub struct File<'a> {
    raw: &'a RcrFile,
}

impl<'a> File<'a> {
    pub fn pid(&self) -> i32 {
        self.raw.pid
    }
    pub fn fd(&self) -> i32 {
        self.raw.fd
    }
    /// The copy of the fd open in the dumper, valid during the call.
    pub fn local_fd(&self) -> i32 {
        self.raw.local_fd
    }
    pub fn flags(&self) -> u32 {
        self.raw.flags
    }
    pub fn pos(&self) -> u64 {
        self.raw.pos
    }
    pub fn mode(&self) -> u32 {
        self.raw.mode
    }
    pub fn rdev(&self) -> u64 {
        self.raw.rdev
    }
    pub fn ino(&self) -> u64 {
        self.raw.ino
    }
    pub fn dev(&self) -> u64 {
        self.raw.dev
    }
    pub fn path(&self) -> &'a str {
        bytes_str(self.raw.path, self.raw.path_len)
    }
    pub fn fdinfo(&self) -> &'a str {
        bytes_str(self.raw.fdinfo, self.raw.fdinfo_len)
    }
    /// The value of `key:` in fdinfo, trimmed.
    pub fn fdinfo_field(&self, key: &str) -> Option<&'a str> {
        self.fdinfo().lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim()))
    }
}

fn bytes_str<'a>(p: *const u8, len: usize) -> &'a str {
    if p.is_null() || len == 0 {
        return "";
    }
    // SAFETY: rcr passes `len` readable bytes that outlive the call.
    let b = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(b).unwrap_or("")
}

/// A memory area offered to [`Plugin::dump_vma`] or passed to [`Plugin::update_vma`].
pub struct Vma<'a> {
    raw: &'a RcrVma,
}

impl<'a> Vma<'a> {
    pub fn pid(&self) -> i32 {
        self.raw.pid
    }
    pub fn start(&self) -> u64 {
        self.raw.start
    }
    pub fn end(&self) -> u64 {
        self.raw.end
    }
    /// Offset in the mapped file, in bytes.
    pub fn offset(&self) -> u64 {
        self.raw.offset
    }
    pub fn prot(&self) -> u32 {
        self.raw.prot
    }
    /// `MAP_SHARED` or `MAP_PRIVATE`.
    pub fn flags(&self) -> u32 {
        self.raw.flags
    }
    pub fn dev(&self) -> u64 {
        self.raw.dev
    }
    pub fn ino(&self) -> u64 {
        self.raw.ino
    }
    /// The mapped file as /proc/PID/maps names it (empty at restore).
    pub fn path(&self) -> &'a str {
        bytes_str(self.raw.path, self.raw.path_len)
    }
    /// smaps' `VmFlags` (empty at restore).
    pub fn vm_flags(&self) -> &'a str {
        bytes_str(self.raw.vm_flags, self.raw.vm_flags_len)
    }
}

/// A mount offered to [`Plugin::dump_ext_mount`].
pub struct Mount<'a> {
    raw: &'a RcrMount,
}

impl<'a> Mount<'a> {
    pub fn mnt_id(&self) -> i32 {
        self.raw.mnt_id
    }
    pub fn mountpoint(&self) -> &'a str {
        bytes_str(self.raw.mountpoint, self.raw.mountpoint_len)
    }
    pub fn root(&self) -> &'a str {
        bytes_str(self.raw.root, self.raw.root_len)
    }
    pub fn fstype(&self) -> &'a str {
        bytes_str(self.raw.fstype, self.raw.fstype_len)
    }
    pub fn source(&self) -> &'a str {
        bytes_str(self.raw.source, self.raw.source_len)
    }
}

/// A network link offered to [`Plugin::dump_ext_link`].
pub struct Link<'a> {
    raw: &'a RcrLink,
}

impl<'a> Link<'a> {
    pub fn ifindex(&self) -> i32 {
        self.raw.ifindex
    }
    pub fn name(&self) -> &'a str {
        bytes_str(self.raw.name, self.raw.name_len)
    }
    pub fn kind(&self) -> &'a str {
        bytes_str(self.raw.kind, self.raw.kind_len)
    }
}

/// What [`Plugin::update_vma`] returns for an area it claimed: the fd to map it from (rcr takes it) and
/// the file offset.
#[derive(Debug)]
pub struct VmaMapping {
    pub fd: OwnedFd,
    pub offset: u64,
}

/// What [`Plugin::dump_file`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The plugin dumped the file; the core records it as the plugin's.
    Mine,
    /// Not the plugin's: the next plugin, then the core, is asked.
    NotMine,
}

/// What [`Plugin::restore_file`] returns.
#[derive(Debug)]
pub enum Restored {
    /// The file, opened in the restore master.
    Fd(OwnedFd),
    /// Not this plugin's file.
    NotMine,
    /// Call again after the other files; the text says what it waits for.
    Retry(String),
}

/// A plugin written in Rust. Implement the hooks you need (each has a do-nothing default) and list
/// them in [`export_plugin!`]; only listed hooks are exported, and `rcr plugins` shows them.
/// Errors are plain strings; rcr prefixes them with the plugin's name and the hook.
#[allow(unused_variables)]
pub trait Plugin: Send + Sync + 'static {
    fn init(&self, host: &Host<'_>, stage: Stage) -> Result<(), String> {
        Ok(())
    }
    fn fini(&self, host: &Host<'_>, stage: Stage, ok: bool) -> Result<(), String> {
        Ok(())
    }
    fn pause_devices(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        Ok(())
    }
    fn checkpoint_devices(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        Ok(())
    }
    fn dump_file(&self, host: &Host<'_>, file: &File<'_>, id: u32) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    fn dump_devices_late(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        Ok(())
    }
    fn restore_init(&self, host: &Host<'_>) -> Result<(), String> {
        Ok(())
    }
    fn restore_file(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> {
        Ok(Restored::NotMine)
    }
    fn post_forking(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        Ok(())
    }
    fn resume_devices_late(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        Ok(())
    }
    // ---- ABI version 2 ----
    fn dump_vma(&self, host: &Host<'_>, vma: &Vma<'_>, id: u32) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    /// `Ok(None)`: not this plugin's area.
    fn update_vma(&self, host: &Host<'_>, id: u32, vma: &Vma<'_>) -> Result<Option<VmaMapping>, String> {
        Ok(None)
    }
    fn dump_ext_unix_sk(&self, host: &Host<'_>, file: &File<'_>, peer_ino: u64, id: u32) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    fn restore_ext_unix_sk(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> {
        Ok(Restored::NotMine)
    }
    fn dump_ext_mount(&self, host: &Host<'_>, mnt: &Mount<'_>, id: u32) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    /// `Claim::Mine`: mounted at `mountpoint`.
    fn restore_ext_mount(&self, host: &Host<'_>, id: u32, mountpoint: &str) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    fn dump_ext_link(&self, host: &Host<'_>, link: &Link<'_>, id: u32) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
    /// `Claim::Mine`: the link exists, named `name`.
    fn restore_ext_link(&self, host: &Host<'_>, id: u32, name: &str) -> Result<Claim, String> {
        Ok(Claim::NotMine)
    }
}

/// The one instance of a plugin type; implemented by [`export_plugin!`].
pub trait Instance: 'static {
    type P: Plugin;
    fn get() -> &'static Self::P;
}

/// The `extern "C"` shims [`export_plugin!`] exports: each runs the hook under `catch_unwind` and turns
/// an `Err` or a panic into `RCR_ERROR` with a message.
pub mod shim {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
        if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "(no message)".to_string()
        }
    }

    /// Runs `f` with the host; never unwinds.
    fn guard<I: Instance>(hook: &str, host: HostPtr, f: impl FnOnce(&I::P, &Host<'_>) -> Result<i32, String>) -> i32 {
        // SAFETY: `host` is the table rcr passed to this hook.
        let Some(h) = (unsafe { Host::from_raw(host) }) else {
            return RCR_ERROR;
        };
        match catch_unwind(AssertUnwindSafe(|| f(I::get(), &h))) {
            Ok(Ok(r)) => r,
            Ok(Err(msg)) => {
                h.set_error(&msg);
                RCR_ERROR
            }
            Err(p) => {
                let msg = format!("panicked in {hook}: {}", panic_text(&*p));
                // Setting the message must not unwind either.
                let _ = catch_unwind(AssertUnwindSafe(|| h.set_error(&msg)));
                RCR_ERROR
            }
        }
    }

    fn unit(r: Result<(), String>) -> Result<i32, String> {
        r.map(|()| RCR_OK)
    }

    fn claim(c: Claim) -> i32 {
        match c {
            Claim::Mine => RCR_OK,
            Claim::NotMine => RCR_NOT_MINE,
        }
    }

    /// A `Restored` as a status, the fd stored in `*fd`.
    fn restored(h: &Host<'_>, r: Restored, fd: *mut i32) -> Result<i32, String> {
        match r {
            Restored::Fd(f) => {
                if fd.is_null() {
                    return Err("rcr passed no place for the fd".into());
                }
                // SAFETY: rcr passes a writable i32; the fd's ownership passes to rcr.
                unsafe { *fd = f.into_raw_fd() };
                Ok(RCR_OK)
            }
            Restored::NotMine => Ok(RCR_NOT_MINE),
            Restored::Retry(why) => {
                h.set_error(&why);
                Ok(RCR_RETRY)
            }
        }
    }

    fn text<'a>(p: *const u8, len: usize) -> &'a str {
        bytes_str(p, len)
    }

    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn init<I: Instance>(host: HostPtr, stage: u32) -> i32 {
        guard::<I>("init", host, |p, h| unit(p.init(h, Stage::from_raw(stage))))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn fini<I: Instance>(host: HostPtr, stage: u32, ok: i32) -> i32 {
        guard::<I>("fini", host, |p, h| unit(p.fini(h, Stage::from_raw(stage), ok != 0)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn pause_devices<I: Instance>(host: HostPtr, pid: i32) -> i32 {
        guard::<I>("pause_devices", host, |p, h| unit(p.pause_devices(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn checkpoint_devices<I: Instance>(host: HostPtr, pid: i32) -> i32 {
        guard::<I>("checkpoint_devices", host, |p, h| unit(p.checkpoint_devices(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table and a file valid for the call.
    pub unsafe extern "C" fn dump_file<I: Instance>(host: HostPtr, file: *const RcrFile, id: u32) -> i32 {
        guard::<I>("dump_file", host, |p, h| {
            // SAFETY: rcr passes a valid file description for the duration of the call.
            let raw = unsafe { file.as_ref() }.ok_or("rcr passed no file")?;
            Ok(claim(p.dump_file(h, &File { raw }, id)?))
        })
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn dump_devices_late<I: Instance>(host: HostPtr, pid: i32) -> i32 {
        guard::<I>("dump_devices_late", host, |p, h| unit(p.dump_devices_late(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn restore_init<I: Instance>(host: HostPtr) -> i32 {
        guard::<I>("restore_init", host, |p, h| unit(p.restore_init(h)))
    }
    /// # Safety
    /// Called by rcr with its host table and a writable `fd`.
    pub unsafe extern "C" fn restore_file<I: Instance>(host: HostPtr, id: u32, fd: *mut i32) -> i32 {
        guard::<I>("restore_file", host, |p, h| restored(h, p.restore_file(h, id)?, fd))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn post_forking<I: Instance>(host: HostPtr, pid: i32) -> i32 {
        guard::<I>("post_forking", host, |p, h| unit(p.post_forking(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn resume_devices_late<I: Instance>(host: HostPtr, pid: i32) -> i32 {
        guard::<I>("resume_devices_late", host, |p, h| unit(p.resume_devices_late(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table and an area valid for the call.
    pub unsafe extern "C" fn dump_vma<I: Instance>(host: HostPtr, vma: *const RcrVma, id: u32) -> i32 {
        guard::<I>("dump_vma", host, |p, h| {
            // SAFETY: rcr passes a valid area for the duration of the call.
            let raw = unsafe { vma.as_ref() }.ok_or("rcr passed no area")?;
            Ok(claim(p.dump_vma(h, &Vma { raw }, id)?))
        })
    }
    /// # Safety
    /// Called by rcr with its host table, an area valid for the call and writable `fd` and `offset`.
    pub unsafe extern "C" fn update_vma<I: Instance>(host: HostPtr, id: u32, vma: *const RcrVma, fd: *mut i32, offset: *mut u64) -> i32 {
        guard::<I>("update_vma", host, |p, h| {
            // SAFETY: rcr passes a valid area for the duration of the call.
            let raw = unsafe { vma.as_ref() }.ok_or("rcr passed no area")?;
            match p.update_vma(h, id, &Vma { raw })? {
                None => Ok(RCR_NOT_MINE),
                Some(m) => {
                    if fd.is_null() || offset.is_null() {
                        return Err("rcr passed no place for the fd".into());
                    }
                    // SAFETY: rcr passes writable slots; the fd's ownership passes to rcr.
                    unsafe {
                        *offset = m.offset;
                        *fd = m.fd.into_raw_fd();
                    }
                    Ok(RCR_OK)
                }
            }
        })
    }
    /// # Safety
    /// Called by rcr with its host table and a file valid for the call.
    pub unsafe extern "C" fn dump_ext_unix_sk<I: Instance>(host: HostPtr, file: *const RcrFile, peer_ino: u64, id: u32) -> i32 {
        guard::<I>("dump_ext_unix_sk", host, |p, h| {
            // SAFETY: rcr passes a valid file description for the duration of the call.
            let raw = unsafe { file.as_ref() }.ok_or("rcr passed no file")?;
            Ok(claim(p.dump_ext_unix_sk(h, &File { raw }, peer_ino, id)?))
        })
    }
    /// # Safety
    /// Called by rcr with its host table and a writable `fd`.
    pub unsafe extern "C" fn restore_ext_unix_sk<I: Instance>(host: HostPtr, id: u32, fd: *mut i32) -> i32 {
        guard::<I>("restore_ext_unix_sk", host, |p, h| restored(h, p.restore_ext_unix_sk(h, id)?, fd))
    }
    /// # Safety
    /// Called by rcr with its host table and a mount valid for the call.
    pub unsafe extern "C" fn dump_ext_mount<I: Instance>(host: HostPtr, mnt: *const RcrMount, id: u32) -> i32 {
        guard::<I>("dump_ext_mount", host, |p, h| {
            // SAFETY: rcr passes a valid mount for the duration of the call.
            let raw = unsafe { mnt.as_ref() }.ok_or("rcr passed no mount")?;
            Ok(claim(p.dump_ext_mount(h, &Mount { raw }, id)?))
        })
    }
    /// # Safety
    /// Called by rcr with its host table and `len` readable bytes at `mountpoint`.
    pub unsafe extern "C" fn restore_ext_mount<I: Instance>(host: HostPtr, id: u32, mountpoint: *const u8, len: usize) -> i32 {
        guard::<I>("restore_ext_mount", host, |p, h| Ok(claim(p.restore_ext_mount(h, id, text(mountpoint, len))?)))
    }
    /// # Safety
    /// Called by rcr with its host table and a link valid for the call.
    pub unsafe extern "C" fn dump_ext_link<I: Instance>(host: HostPtr, link: *const RcrLink, id: u32) -> i32 {
        guard::<I>("dump_ext_link", host, |p, h| {
            // SAFETY: rcr passes a valid link for the duration of the call.
            let raw = unsafe { link.as_ref() }.ok_or("rcr passed no link")?;
            Ok(claim(p.dump_ext_link(h, &Link { raw }, id)?))
        })
    }
    /// # Safety
    /// Called by rcr with its host table and `len` readable bytes at `name`.
    pub unsafe extern "C" fn restore_ext_link<I: Instance>(host: HostPtr, id: u32, name: *const u8, len: usize) -> i32 {
        guard::<I>("restore_ext_link", host, |p, h| Ok(claim(p.restore_ext_link(h, id, text(name, len))?)))
    }
}

/// Takes ownership of a raw fd (for plugins that open files through `libc`).
///
/// # Safety
/// `fd` must be an open fd that nothing else owns.
pub unsafe fn owned_fd(fd: i32) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Exports a Rust plugin. The plugin crate is a `cdylib` that depends on `rcr-plugin-api` and on
/// `abi_stable` (the export macro refers to it by that name):
///
/// ```ignore
/// #[derive(Default)]
/// struct MyPlugin;
/// impl rcr_plugin_api::Plugin for MyPlugin { /* hooks */ }
/// rcr_plugin_api::export_plugin! {
///     plugin: MyPlugin,
///     name: "mine",
///     version: env!("CARGO_PKG_VERSION"),
///     hooks: [init, dump_file, restore_file],
/// }
/// ```
///
/// `abi_version` may be given (`abi_version: 1,`) to pin the version the plugin reports; it defaults to
/// [`ABI_VERSION`].
#[macro_export]
macro_rules! export_plugin {
    (plugin: $t:ty, name: $name:expr, version: $ver:expr, $(abi_version: $abi:expr,)? hooks: [$($hook:ident),* $(,)?] $(,)?) => {
        static __RCR_PLUGIN_INSTANCE: ::std::sync::OnceLock<$t> = ::std::sync::OnceLock::new();
        #[doc(hidden)]
        pub struct __RcrPluginInstance;
        impl $crate::Instance for __RcrPluginInstance {
            type P = $t;
            fn get() -> &'static $t {
                __RCR_PLUGIN_INSTANCE.get_or_init(<$t as ::core::default::Default>::default)
            }
        }
        #[::abi_stable::export_root_module]
        pub fn __rcr_plugin_root_module() -> $crate::RcrPluginModRef {
            #[allow(unused_mut)]
            let mut m = $crate::RcrPluginMod::new($name, $ver);
            $( m.abi_version = $abi; )?
            $( m.$hook = Some($crate::shim::$hook::<__RcrPluginInstance>); )*
            $crate::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix(m)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_struct_layouts_match_the_header() {
        // The header (include/rcr_plugin.h) declares these sizes in static asserts too.
        assert_eq!(std::mem::size_of::<RcrFile>(), 88);
        assert_eq!(std::mem::size_of::<RcrHost>(), 104);
        assert_eq!(std::mem::size_of::<RcrPluginC>(), 168);
        assert_eq!(std::mem::offset_of!(RcrPluginC, dump_vma), PLUGIN_C_SIZE_V1);
        assert_eq!(std::mem::offset_of!(RcrHost, store_put), 80);
        assert_eq!(std::mem::size_of::<RcrVma>(), 88);
        assert_eq!(std::mem::size_of::<RcrMount>(), 72);
        assert_eq!(std::mem::size_of::<RcrLink>(), 40);
        assert_eq!(HOOK_NAMES.len(), 18);
    }

    #[test]
    fn fdinfo_fields_are_found_by_key() {
        let text = "pos:\t0\nflags:\t02004002\neventfd-count:               2a\n";
        let raw = RcrFile {
            pid: 1,
            fd: 3,
            local_fd: 9,
            flags: 0,
            mode: 0,
            reserved: 0,
            pos: 0,
            dev: 0,
            ino: 0,
            rdev: 0,
            path: b"x".as_ptr(),
            path_len: 1,
            fdinfo: text.as_ptr(),
            fdinfo_len: text.len(),
        };
        let f = File { raw: &raw };
        assert_eq!(f.fdinfo_field("eventfd-count"), Some("2a"));
        assert_eq!(f.fdinfo_field("flags"), Some("02004002"));
        assert_eq!(f.fdinfo_field("nope"), None);
        assert_eq!(f.path(), "x");
    }
}
