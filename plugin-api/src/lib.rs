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
//! tasks; an fd opened there is inherited by the restored task). No hook runs inside a restored task in
//! ABI version 1.

#![deny(unsafe_op_in_unsafe_fn)]

pub use abi_stable;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RStr;
use abi_stable::StableAbi;
use std::ffi::{c_char, c_void, CStr};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// The plugin ABI version this crate describes. Plugins report the version they were built against;
/// rcr loads plugins of this version or older.
pub const ABI_VERSION: u32 = 1;

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
/// Reserved: rcr has no pre-dump yet.
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
}

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

/// `init`: the dumper or the restore master, right after every plugin is loaded, before anything else.
pub type InitFn = unsafe extern "C" fn(host: *const RcrHost, stage: u32) -> i32;
/// `fini`: the dumper or the restore master, at the end of the stage; `ok` is 1 if the stage succeeded.
/// For restore it runs once the restored tree runs (or after the restore failed).
pub type FiniFn = unsafe extern "C" fn(host: *const RcrHost, stage: u32, ok: i32) -> i32;
/// Per-task device hooks (`pause_devices`, `checkpoint_devices`, `dump_devices_late`, `post_forking`,
/// `resume_devices_late`).
pub type PidFn = unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32;
/// `dump_file`: the dumper, task frozen. Return `RCR_OK` to claim the file (then save its state with
/// `write_image`, keyed by `id`), `RCR_NOT_MINE` to pass.
pub type DumpFileFn = unsafe extern "C" fn(host: *const RcrHost, file: *const RcrFile, id: u32) -> i32;
/// `restore_init`: the restore master, after the images are read, before any file is opened or task
/// forked.
pub type RestoreInitFn = unsafe extern "C" fn(host: *const RcrHost) -> i32;
/// `restore_file`: the restore master, before forking. Open the file dumped as `id` and store the fd in
/// `*fd` (ownership passes to rcr; the restored task inherits it and rcr moves it to its number and
/// sets its FD_CLOEXEC). `RCR_RETRY` asks to be called again after the other files.
pub type RestoreFileFn = unsafe extern "C" fn(host: *const RcrHost, id: u32, fd: *mut i32) -> i32;

/// The Rust route's root module: name, version and hooks of a plugin. A prefix type: new hooks are
/// appended after `resume_devices_late` and read as absent from older plugins.
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
    pub init: Option<unsafe extern "C" fn(host: *const RcrHost, stage: u32) -> i32>,
    /// The dumper or the restore master, last. See [`FiniFn`].
    pub fini: Option<unsafe extern "C" fn(host: *const RcrHost, stage: u32, ok: i32) -> i32>,
    /// The dumper, before the task is frozen.
    pub pause_devices: Option<unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32>,
    /// The dumper, after the task is frozen, before its files and memory are dumped.
    pub checkpoint_devices: Option<unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32>,
    /// The dumper, for every fd before the core handles it. See [`DumpFileFn`].
    pub dump_file: Option<unsafe extern "C" fn(host: *const RcrHost, file: *const RcrFile, id: u32) -> i32>,
    /// The dumper, after every task is dumped, before the inventory is written.
    pub dump_devices_late: Option<unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32>,
    /// The restore master, before forking. See [`RestoreInitFn`].
    pub restore_init: Option<unsafe extern "C" fn(host: *const RcrHost) -> i32>,
    /// The restore master, before forking. See [`RestoreFileFn`].
    pub restore_file: Option<unsafe extern "C" fn(host: *const RcrHost, id: u32, fd: *mut i32) -> i32>,
    /// The restore master, right after the task is created (stopped, still a copy of rcr).
    pub post_forking: Option<unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32>,
    /// The restore master, after the task's memory and files are restored, before it runs.
    #[sabi(last_prefix_field)]
    pub resume_devices_late: Option<unsafe extern "C" fn(host: *const RcrHost, pid: i32) -> i32>,
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
}

/// The name of the C route's entry symbol.
pub const C_ENTRY_SYMBOL: &str = "rcr_plugin_entry";
/// Its type.
pub type CEntryFn = unsafe extern "C" fn() -> *const RcrPluginC;

/// The hooks of ABI version 1, in order, with their names (as `rcr plugins` lists them).
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
    pub unsafe fn from_raw(raw: *const RcrHost) -> Option<Host<'a>> {
        // SAFETY: the caller passes rcr's table, valid for the call, or null.
        unsafe { raw.as_ref() }.map(|raw| Host { raw })
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
    fn guard<I: Instance>(hook: &str, host: *const RcrHost, f: impl FnOnce(&I::P, &Host<'_>) -> Result<i32, String>) -> i32 {
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

    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn init<I: Instance>(host: *const RcrHost, stage: u32) -> i32 {
        guard::<I>("init", host, |p, h| unit(p.init(h, Stage::from_raw(stage))))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn fini<I: Instance>(host: *const RcrHost, stage: u32, ok: i32) -> i32 {
        guard::<I>("fini", host, |p, h| unit(p.fini(h, Stage::from_raw(stage), ok != 0)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn pause_devices<I: Instance>(host: *const RcrHost, pid: i32) -> i32 {
        guard::<I>("pause_devices", host, |p, h| unit(p.pause_devices(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn checkpoint_devices<I: Instance>(host: *const RcrHost, pid: i32) -> i32 {
        guard::<I>("checkpoint_devices", host, |p, h| unit(p.checkpoint_devices(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table and a file valid for the call.
    pub unsafe extern "C" fn dump_file<I: Instance>(host: *const RcrHost, file: *const RcrFile, id: u32) -> i32 {
        guard::<I>("dump_file", host, |p, h| {
            // SAFETY: rcr passes a valid file description for the duration of the call.
            let raw = unsafe { file.as_ref() }.ok_or("rcr passed no file")?;
            Ok(match p.dump_file(h, &File { raw }, id)? {
                Claim::Mine => RCR_OK,
                Claim::NotMine => RCR_NOT_MINE,
            })
        })
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn dump_devices_late<I: Instance>(host: *const RcrHost, pid: i32) -> i32 {
        guard::<I>("dump_devices_late", host, |p, h| unit(p.dump_devices_late(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn restore_init<I: Instance>(host: *const RcrHost) -> i32 {
        guard::<I>("restore_init", host, |p, h| unit(p.restore_init(h)))
    }
    /// # Safety
    /// Called by rcr with its host table and a writable `fd`.
    pub unsafe extern "C" fn restore_file<I: Instance>(host: *const RcrHost, id: u32, fd: *mut i32) -> i32 {
        guard::<I>("restore_file", host, |p, h| match p.restore_file(h, id)? {
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
        })
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn post_forking<I: Instance>(host: *const RcrHost, pid: i32) -> i32 {
        guard::<I>("post_forking", host, |p, h| unit(p.post_forking(h, pid)))
    }
    /// # Safety
    /// Called by rcr with its host table.
    pub unsafe extern "C" fn resume_devices_late<I: Instance>(host: *const RcrHost, pid: i32) -> i32 {
        guard::<I>("resume_devices_late", host, |p, h| unit(p.resume_devices_late(h, pid)))
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
        assert_eq!(std::mem::size_of::<RcrHost>(), 80);
        assert_eq!(std::mem::size_of::<RcrPluginC>(), 104);
        assert_eq!(HOOK_NAMES.len(), 10);
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
