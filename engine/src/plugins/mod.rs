//! The plugin host: loads the plugins of a directory and calls their hooks (the ABI is the
//! `rcr-plugin-api` crate; its README describes the hooks for plugin authors).
//!
//! Every `*.so` in the plugin directory is loaded, in sorted file-name order, by one of two routes:
//! a library that exports `abi_stable`'s root module is a Rust plugin (its layout and version are
//! checked by `abi_stable`), one that exports `rcr_plugin_entry` is a C plugin. Both give the same
//! hooks ([`Hooks`]). A plugin reporting a newer ABI than this rcr knows, a duplicate name, a library
//! with neither entry symbol, and a failing `init` are errors naming the file.
//!
//! Claim hooks (`dump_file`, `restore_file`, `dump_vma`, `update_vma`, the external unix socket /
//! mount / link hooks) ask the plugins in load order and stop at the first that says "mine"; broadcast
//! hooks call every plugin, collect the errors and fail if there was any. Libraries stay loaded until
//! rcr exits (their code may be referenced by what they returned).
//!
//! Host services beyond images and logs: the fork-shared [`Store`] (bytes and fds by key, one per
//! command, shared by every plugin and hook), and thread control of frozen tasks, lent by the dump for
//! the duration of `checkpoint_devices` through [`Plugins::with_thread_control`].

mod external;
mod vma;

pub use external::{ExtMount, OfferedFd};

use crate::image::pb;
use rcr_plugin_api as api;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_void, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Errors of the plugin host; each names the plugin (by name and file) or the directory.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {file}: cannot load it: {msg}")]
    Load { file: PathBuf, msg: String },
    #[error("plugin {file}: exports no plugin entry (neither rcr_plugin_entry for a C plugin nor abi_stable's root module for a Rust plugin)")]
    NoEntry { file: PathBuf },
    #[error("plugin {file}: {msg}")]
    Invalid { file: PathBuf, msg: String },
    #[error("plugin '{name}' ({file}) was built for plugin ABI version {plugin}, but this rcr supports plugin ABI versions up to {host}; use a plugin built for this rcr")]
    AbiTooNew { name: String, file: PathBuf, plugin: u32, host: u32 },
    #[error("plugin {file}: incompatible with this rcr (plugin-api {host_api}): {msg}")]
    Incompatible { file: PathBuf, host_api: &'static str, msg: String },
    #[error("two plugins are named '{name}': {first} and {second}")]
    Duplicate { name: String, first: PathBuf, second: PathBuf },
    #[error("plugin '{name}' ({file}): {hook} failed: {msg}")]
    Hook { name: String, file: PathBuf, hook: &'static str, msg: String },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<PluginError>),
    #[error("this checkpoint needs plugin '{name}' ({where_})")]
    Missing { name: String, where_: String },
    #[error("file id {id} (fd {fd}): {msg}")]
    File { id: u32, fd: u32, msg: String },
    #[error("{what}: {msg}")]
    Vma { what: String, msg: String },
    #[error("{what}: {msg}")]
    Ext { what: String, msg: String },
    #[error("cannot write plugin image {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The hooks of one plugin, whichever route it came by (the same `extern "C"` signatures).
#[derive(Clone, Copy, Default)]
pub struct Hooks {
    pub init: Option<api::InitFn>,
    pub fini: Option<api::FiniFn>,
    pub pause_devices: Option<api::PidFn>,
    pub checkpoint_devices: Option<api::PidFn>,
    pub dump_file: Option<api::DumpFileFn>,
    pub dump_devices_late: Option<api::PidFn>,
    pub restore_init: Option<api::RestoreInitFn>,
    pub restore_file: Option<api::RestoreFileFn>,
    pub post_forking: Option<api::PidFn>,
    pub resume_devices_late: Option<api::PidFn>,
    pub dump_vma: Option<api::DumpVmaFn>,
    pub update_vma: Option<api::UpdateVmaFn>,
    pub dump_ext_unix_sk: Option<api::DumpExtUnixSkFn>,
    pub restore_ext_unix_sk: Option<api::RestoreExtUnixSkFn>,
    pub dump_ext_mount: Option<api::DumpExtMountFn>,
    pub restore_ext_mount: Option<api::RestoreExtMountFn>,
    pub dump_ext_link: Option<api::DumpExtLinkFn>,
    pub restore_ext_link: Option<api::RestoreExtLinkFn>,
}

impl Hooks {
    /// Names of the hooks present, in ABI order.
    pub fn names(&self) -> Vec<&'static str> {
        let present = [
            self.init.is_some(),
            self.fini.is_some(),
            self.pause_devices.is_some(),
            self.checkpoint_devices.is_some(),
            self.dump_file.is_some(),
            self.dump_devices_late.is_some(),
            self.restore_init.is_some(),
            self.restore_file.is_some(),
            self.post_forking.is_some(),
            self.resume_devices_late.is_some(),
            self.dump_vma.is_some(),
            self.update_vma.is_some(),
            self.dump_ext_unix_sk.is_some(),
            self.restore_ext_unix_sk.is_some(),
            self.dump_ext_mount.is_some(),
            self.restore_ext_mount.is_some(),
            self.dump_ext_link.is_some(),
            self.restore_ext_link.is_some(),
        ];
        api::HOOK_NAMES.iter().zip(present).filter(|(_, p)| *p).map(|(n, _)| *n).collect()
    }
}

/// How a plugin was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Rust,
    C,
}

/// What `rcr plugins` shows of a plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub file: PathBuf,
    pub route: Route,
    pub abi_version: u32,
    pub hooks: Vec<&'static str>,
}

/// Thread control of frozen tasks, lent to the plugins by the dump while it calls `checkpoint_devices`.
pub trait ThreadControl {
    /// Lets thread `tid` of the frozen process `pid` run for `dur`, then stops it again.
    fn run_thread(&self, pid: i32, tid: i32, dur: std::time::Duration) -> Result<(), String>;
}

/// The longest a plugin may let a frozen thread run in one call.
pub const RUN_THREAD_MAX_MS: u32 = 10_000;
/// The most bytes one store entry holds.
pub const STORE_MAX_BYTES: usize = 64 << 10;

/// An entry of the [`Store`]: its bytes and a new copy of its fd, if any.
pub type StoreRef<'a> = (&'a [u8], Option<OwnedFd>);

/// The fork-shared store: small byte blobs and fds by key, one per command, shared by every plugin and
/// every hook (at restore all hooks run in the restore master, so "shared across the restore's stages"
/// is one map in it).
#[derive(Default)]
pub struct Store {
    entries: BTreeMap<String, (Vec<u8>, Option<OwnedFd>)>,
}

impl Store {
    /// Puts `data` and a copy of `fd` under `key`, replacing what was there.
    pub fn put(&mut self, key: &str, data: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), String> {
        if !valid_name(key) {
            return Err(format!("store key '{key}' is not 1-64 of [A-Za-z0-9._-]"));
        }
        if data.len() > STORE_MAX_BYTES {
            return Err(format!("store entry '{key}' is {} bytes; the store holds at most {STORE_MAX_BYTES} per key", data.len()));
        }
        let fd = fd.map(|f| f.try_clone_to_owned().map_err(|e| format!("store entry '{key}': cannot duplicate fd {}: {e}", f.as_raw_fd()))).transpose()?;
        self.entries.insert(key.to_string(), (data.to_vec(), fd));
        Ok(())
    }

    /// The bytes under `key` and a new copy of its fd.
    pub fn get(&self, key: &str) -> Result<Option<StoreRef<'_>>, String> {
        let Some((data, fd)) = self.entries.get(key) else { return Ok(None) };
        let fd = fd.as_ref().map(|f| f.try_clone().map_err(|e| format!("store entry '{key}': cannot duplicate its fd: {e}"))).transpose()?;
        Ok(Some((data, fd)))
    }
}

/// The thread control lent for the current hook, if any.
type ThreadCtl = Cell<Option<*const (dyn ThreadControl + 'static)>>;

/// The per-plugin state behind `rcr_host.ctx`.
struct Ctx {
    plugin: String,
    images_dir: PathBuf,
    /// The message set by the hook being run.
    error: RefCell<Option<String>>,
    needed: Rc<RefCell<BTreeSet<String>>>,
    store: Rc<RefCell<Store>>,
    threads: Rc<ThreadCtl>,
}

struct Loaded {
    info: PluginInfo,
    hooks: Hooks,
    /// Boxed so that the pointers handed to the plugin stay put.
    ctx: Box<Ctx>,
    table: Box<api::RcrHost>,
    /// The C route's library handle (the Rust route's is kept by abi_stable).
    _lib: Option<libloading::Library>,
}

/// The loaded plugins of one rcr command.
pub struct Plugins {
    dir: Option<PathBuf>,
    stage: u32,
    plugins: Vec<Loaded>,
    needed: Rc<RefCell<BTreeSet<String>>>,
    store: Rc<RefCell<Store>>,
    threads: Rc<ThreadCtl>,
    _strings: Vec<CString>,
    initialized: bool,
    finished: bool,
}

/// A unique id of this rcr run.
fn make_run_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}-{}", t.as_nanos(), std::process::id())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && !s.starts_with('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The `*.so` files of `dir`, sorted by name.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let rd = std::fs::read_dir(dir).map_err(|e| PluginError::Dir { dir: dir.to_path_buf(), source: e })?;
    let mut files = Vec::new();
    for e in rd {
        let e = e.map_err(|e| PluginError::Dir { dir: dir.to_path_buf(), source: e })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "so") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads one library: its descriptor and hooks (no hook is called).
fn open_plugin(file: &Path) -> Result<(PluginInfo, Hooks, Option<libloading::Library>), PluginError> {
    // SAFETY: loading a library runs its initialisers; a plugin directory holds trusted code only,
    // as rcr runs with the privileges to checkpoint processes anyway.
    let lib = unsafe { libloading::Library::new(file) }.map_err(|e| PluginError::Load { file: file.to_path_buf(), msg: e.to_string() })?;
    // SAFETY: only the symbol's presence is checked; it is not used through this type.
    let is_rust = unsafe { lib.get::<*const c_void>(abi_stable::library::ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }.is_ok();
    if is_rust {
        let m = abi_stable::library::lib_header_from_path(file)
            .and_then(|h| h.init_root_module::<api::RcrPluginModRef>())
            .map_err(|e| PluginError::Incompatible { file: file.to_path_buf(), host_api: env!("CARGO_PKG_VERSION"), msg: e.to_string() })?;
        let info = PluginInfo {
            name: m.name().as_str().to_string(),
            version: m.version().as_str().to_string(),
            file: file.to_path_buf(),
            route: Route::Rust,
            abi_version: m.abi_version(),
            hooks: Vec::new(),
        };
        let hooks = Hooks {
            init: m.init(),
            fini: m.fini(),
            pause_devices: m.pause_devices(),
            checkpoint_devices: m.checkpoint_devices(),
            dump_file: m.dump_file(),
            dump_devices_late: m.dump_devices_late(),
            restore_init: m.restore_init(),
            restore_file: m.restore_file(),
            post_forking: m.post_forking(),
            resume_devices_late: m.resume_devices_late(),
            // ABI 2: read as None from a plugin built before them.
            dump_vma: m.dump_vma(),
            update_vma: m.update_vma(),
            dump_ext_unix_sk: m.dump_ext_unix_sk(),
            restore_ext_unix_sk: m.restore_ext_unix_sk(),
            dump_ext_mount: m.dump_ext_mount(),
            restore_ext_mount: m.restore_ext_mount(),
            dump_ext_link: m.dump_ext_link(),
            restore_ext_link: m.restore_ext_link(),
        };
        // abi_stable keeps its own handle of the library for the life of the process.
        return Ok((info, hooks, None));
    }
    let entry: api::CEntryFn = {
        let sym = format!("{}\0", api::C_ENTRY_SYMBOL);
        // SAFETY: the C route's entry symbol has this type, per rcr_plugin.h.
        let f = unsafe { lib.get::<api::CEntryFn>(sym.as_bytes()) }.map_err(|_| PluginError::NoEntry { file: file.to_path_buf() })?;
        *f
    };
    let invalid = |msg: String| PluginError::Invalid { file: file.to_path_buf(), msg };
    // SAFETY: calling the plugin's entry point, which takes no arguments and returns a static descriptor.
    let p = unsafe { entry() };
    if p.is_null() {
        return Err(invalid(format!("{} returned NULL", api::C_ENTRY_SYMBOL)));
    }
    // SAFETY: every descriptor starts with abi_version and size (two u32s).
    let (abi, size) = unsafe { ((*p).abi_version, (*p).size) };
    let head = std::mem::offset_of!(api::RcrPluginC, init);
    if (size as usize) < head {
        return Err(invalid(format!("its struct rcr_plugin is {size} bytes, less than the {head} bytes of its header")));
    }
    // An older plugin's struct is shorter (ABI 1: up to resume_devices_late): copy only what it has;
    // the hooks after it stay NULL.
    let mut d = api::RcrPluginC::empty();
    let n = (size as usize).min(std::mem::size_of::<api::RcrPluginC>());
    // SAFETY: the plugin's descriptor has `size` readable bytes; `d` has at least `n` writable bytes, and
    // every field is valid for any bit pattern a C compiler writes (pointers, NULL-able fn pointers).
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut d as *mut api::RcrPluginC).cast::<u8>(), n) };
    let text = |p: *const std::ffi::c_char, what: &str| -> Result<String, PluginError> {
        if p.is_null() {
            return Err(invalid(format!("its {what} is NULL")));
        }
        // SAFETY: the header requires NUL-terminated static strings.
        Ok(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let info = PluginInfo {
        name: text(d.name, "name")?,
        version: text(d.version, "version")?,
        file: file.to_path_buf(),
        route: Route::C,
        abi_version: abi,
        hooks: Vec::new(),
    };
    let hooks = Hooks {
        init: d.init,
        fini: d.fini,
        pause_devices: d.pause_devices,
        checkpoint_devices: d.checkpoint_devices,
        dump_file: d.dump_file,
        dump_devices_late: d.dump_devices_late,
        restore_init: d.restore_init,
        restore_file: d.restore_file,
        post_forking: d.post_forking,
        resume_devices_late: d.resume_devices_late,
        dump_vma: d.dump_vma,
        update_vma: d.update_vma,
        dump_ext_unix_sk: d.dump_ext_unix_sk,
        restore_ext_unix_sk: d.restore_ext_unix_sk,
        dump_ext_mount: d.dump_ext_mount,
        restore_ext_mount: d.restore_ext_mount,
        dump_ext_link: d.dump_ext_link,
        restore_ext_link: d.restore_ext_link,
    };
    Ok((info, hooks, Some(lib)))
}

/// Loads and checks one plugin file.
fn probe(file: &Path) -> Result<(PluginInfo, Hooks, Option<libloading::Library>), PluginError> {
    let (mut info, hooks, lib) = open_plugin(file)?;
    if info.abi_version > api::ABI_VERSION || info.abi_version == 0 {
        return Err(PluginError::AbiTooNew { name: info.name, file: file.to_path_buf(), plugin: info.abi_version, host: api::ABI_VERSION });
    }
    if !valid_name(&info.name) {
        return Err(PluginError::Invalid { file: file.to_path_buf(), msg: format!("its name '{}' is not 1-64 of [A-Za-z0-9._-]", info.name) });
    }
    info.hooks = hooks.names();
    Ok((info, hooks, lib))
}

/// One file of a plugin directory: its plugin, or why it would not load.
pub type Listed = (PathBuf, Result<PluginInfo, PluginError>);

/// What `rcr plugins` lists: each file of `dir` with its plugin or why it would not load.
pub fn list(dir: &Path) -> Result<Vec<Listed>, PluginError> {
    let mut out: Vec<Listed> = Vec::new();
    for file in plugin_files(dir)? {
        let r = probe(&file).map(|(i, _, _)| i).and_then(|i| {
            match out.iter().find_map(|(f, r)| r.as_ref().ok().filter(|o| o.name == i.name).map(|_| f.clone())) {
                Some(first) => Err(PluginError::Duplicate { name: i.name, first, second: file.clone() }),
                None => Ok(i),
            }
        });
        out.push((file, r));
    }
    Ok(out)
}

// ---- host services (called by plugins; never unwind into them) -------------------------------------

/// # Safety
/// `ctx` is the `Ctx` of a loaded plugin; `p` has `len` readable bytes (or is NULL with `len` 0).
unsafe fn text_arg(p: *const u8, len: usize) -> String {
    if p.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p, len) }).into_owned()
}

unsafe extern "C" fn svc_log(ctx: *mut c_void, level: u32, msg: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes back the ctx of its table and a buffer of `len` bytes.
        let (c, m) = unsafe { (&*(ctx as *const Ctx), text_arg(msg, len)) };
        match level {
            api::RCR_LOG_ERROR => tracing::error!("plugin {}: {m}", c.plugin),
            api::RCR_LOG_WARN => tracing::warn!("plugin {}: {m}", c.plugin),
            api::RCR_LOG_INFO => tracing::info!("plugin {}: {m}", c.plugin),
            _ => tracing::debug!("plugin {}: {m}", c.plugin),
        }
    }));
}

unsafe extern "C" fn svc_set_error(ctx: *mut c_void, msg: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, m) = unsafe { (&*(ctx as *const Ctx), text_arg(msg, len)) };
        *c.error.borrow_mut() = Some(m);
    }));
}

fn image_path(c: &Ctx, name: &str) -> Option<PathBuf> {
    valid_name(name).then(|| c.images_dir.join(format!("plugin-{}-{name}.data", c.plugin)))
}

unsafe extern "C" fn svc_write_image(ctx: *mut c_void, name: *const u8, name_len: usize, data: *const u8, len: usize) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, name) = unsafe { (&*(ctx as *const Ctx), text_arg(name, name_len)) };
        let Some(path) = image_path(c, &name) else {
            *c.error.borrow_mut() = Some(format!("image name '{name}' is not 1-64 of [A-Za-z0-9._-]"));
            return api::RCR_ERROR;
        };
        let bytes: &[u8] = if data.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: the plugin passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        match std::fs::write(&path, bytes) {
            Ok(()) => {
                tracing::debug!("plugin {}: wrote {} ({} bytes)", c.plugin, path.display(), bytes.len());
                api::RCR_OK
            }
            Err(e) => {
                *c.error.borrow_mut() = Some(format!("writing {}: {e}", path.display()));
                api::RCR_ERROR
            }
        }
    }))
    .unwrap_or(api::RCR_ERROR)
}

unsafe extern "C" fn svc_read_image(ctx: *mut c_void, name: *const u8, name_len: usize, buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, name) = unsafe { (&*(ctx as *const Ctx), text_arg(name, name_len)) };
        let Some(path) = image_path(c, &name) else {
            *c.error.borrow_mut() = Some(format!("image name '{name}' is not 1-64 of [A-Za-z0-9._-]"));
            return api::RCR_ERROR;
        };
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return api::RCR_NOT_MINE,
            Err(e) => {
                *c.error.borrow_mut() = Some(format!("reading {}: {e}", path.display()));
                return api::RCR_ERROR;
            }
        };
        // SAFETY: the plugin passes a writable size_t (or null) and `cap` writable bytes at `buf`.
        unsafe { copy_out(&data, buf, cap, len) };
        api::RCR_OK
    }))
    .unwrap_or(api::RCR_ERROR)
}

unsafe extern "C" fn svc_need_plugin(ctx: *mut c_void, name: *const u8, len: usize) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, name) = unsafe { (&*(ctx as *const Ctx), text_arg(name, len)) };
        if !valid_name(&name) {
            *c.error.borrow_mut() = Some(format!("plugin name '{name}' is not 1-64 of [A-Za-z0-9._-]"));
            return api::RCR_ERROR;
        }
        c.needed.borrow_mut().insert(name);
        api::RCR_OK
    }))
    .unwrap_or(api::RCR_ERROR)
}

/// Gives a plugin `data`: its length in `*len` (if not null), and as much as fits in `cap` bytes at `buf`.
///
/// # Safety
/// `len` is null or writable; `buf` is null or has `cap` writable bytes.
unsafe fn copy_out(data: &[u8], buf: *mut u8, cap: usize, len: *mut usize) {
    if !len.is_null() {
        // SAFETY: the caller vouches for `len`.
        unsafe { *len = data.len() };
    }
    let n = cap.min(data.len());
    if n > 0 && !buf.is_null() {
        // SAFETY: the caller vouches for `cap` bytes at `buf`; `data` has at least `n`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf, n) };
    }
}

/// # Safety
/// `ctx` is the `Ctx` of a loaded plugin.
unsafe fn ctx_ref<'a>(ctx: *mut c_void) -> &'a Ctx {
    // SAFETY: guaranteed by the caller (the plugin passes back the ctx of its table).
    unsafe { &*(ctx as *const Ctx) }
}

unsafe extern "C" fn svc_store_put(ctx: *mut c_void, key: *const u8, key_len: usize, data: *const u8, len: usize, fd: i32) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, key) = unsafe { (ctx_ref(ctx), text_arg(key, key_len)) };
        let bytes: &[u8] = if data.is_null() || len == 0 {
            &[]
        } else {
            // SAFETY: the plugin passes `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        // SAFETY: the fd is only duplicated, during the call, while the plugin holds it open.
        let fd = (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) });
        match c.store.borrow_mut().put(&key, bytes, fd) {
            Ok(()) => {
                tracing::debug!("plugin {}: stored '{key}' ({} bytes{})", c.plugin, bytes.len(), if fd.is_some() { " and an fd" } else { "" });
                api::RCR_OK
            }
            Err(e) => {
                *c.error.borrow_mut() = Some(e);
                api::RCR_ERROR
            }
        }
    }))
    .unwrap_or(api::RCR_ERROR)
}

unsafe extern "C" fn svc_store_get(ctx: *mut c_void, key: *const u8, key_len: usize, buf: *mut u8, cap: usize, len: *mut usize, fd: *mut i32) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let (c, key) = unsafe { (ctx_ref(ctx), text_arg(key, key_len)) };
        let store = c.store.borrow();
        let (data, copy) = match store.get(&key) {
            Ok(Some((d, f))) => (d, if fd.is_null() { None } else { f }),
            Ok(None) => return api::RCR_NOT_MINE,
            Err(e) => {
                *c.error.borrow_mut() = Some(e);
                return api::RCR_ERROR;
            }
        };
        // SAFETY: the plugin passes a writable size_t (or null) and `cap` writable bytes at `buf`.
        unsafe { copy_out(data, buf, cap, len) };
        if !fd.is_null() {
            use std::os::fd::IntoRawFd;
            // SAFETY: the plugin passes a writable int; the copy's ownership passes to it.
            unsafe { *fd = copy.map_or(-1, IntoRawFd::into_raw_fd) };
        }
        api::RCR_OK
    }))
    .unwrap_or(api::RCR_ERROR)
}

unsafe extern "C" fn svc_run_thread(ctx: *mut c_void, pid: i32, tid: i32, timeout_ms: u32) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in svc_log.
        let c = unsafe { ctx_ref(ctx) };
        let r = match c.threads.get() {
            None => Err("thread control is only available during checkpoint_devices (the dumper, tree frozen)".to_string()),
            Some(_) if timeout_ms > RUN_THREAD_MAX_MS => Err(format!("run_thread: {timeout_ms} ms is more than the {RUN_THREAD_MAX_MS} ms allowed")),
            Some(ctl) => {
                tracing::debug!("plugin {}: lets thread {tid} of pid {pid} run for {timeout_ms} ms", c.plugin);
                // SAFETY: the pointer is set only while `with_thread_control` borrows the controller.
                unsafe { &*ctl }.run_thread(pid, tid, std::time::Duration::from_millis(timeout_ms as u64))
            }
        };
        match r {
            Ok(()) => api::RCR_OK,
            Err(e) => {
                *c.error.borrow_mut() = Some(e);
                api::RCR_ERROR
            }
        }
    }))
    .unwrap_or(api::RCR_ERROR)
}

// ---- calling hooks ------------------------------------------------------------------------------------

impl Loaded {
    fn err(&self, hook: &'static str, msg: String) -> PluginError {
        PluginError::Hook { name: self.info.name.clone(), file: self.info.file.clone(), hook, msg }
    }

    /// Runs a hook with a fresh error slot; returns its status and message.
    fn call(&self, f: impl FnOnce(api::HostPtr) -> i32) -> (i32, Option<String>) {
        *self.ctx.error.borrow_mut() = None;
        let r = f((&*self.table as *const api::RcrHost).cast::<api::RcrHostOpaque>());
        (r, self.ctx.error.borrow_mut().take())
    }

    /// A claim hook's status: Ok(true) mine, Ok(false) not mine, or the error.
    fn claimed(&self, hook: &'static str, res: (i32, Option<String>)) -> Result<bool, PluginError> {
        match res.0 {
            api::RCR_OK => Ok(true),
            api::RCR_NOT_MINE => Ok(false),
            _ => self.status(hook, res).map(|()| false),
        }
    }

    /// A broadcast hook's status as a result.
    fn status(&self, hook: &'static str, (r, msg): (i32, Option<String>)) -> Result<(), PluginError> {
        match r {
            api::RCR_OK => Ok(()),
            api::RCR_ERROR => Err(self.err(hook, msg.unwrap_or_else(|| "failed (no message)".into()))),
            other => Err(self.err(hook, format!("returned {other}, which this hook does not allow{}", msg.map(|m| format!(" ({m})")).unwrap_or_default()))),
        }
    }
}

impl Plugins {
    /// No plugins (an engine caller that loads none).
    pub fn none() -> Plugins {
        Plugins {
            dir: None,
            stage: 0,
            plugins: Vec::new(),
            needed: Default::default(),
            store: Default::default(),
            threads: Default::default(),
            _strings: Vec::new(),
            initialized: false,
            finished: false,
        }
    }

    /// Loads every plugin of `dir` (sorted by file name) for `stage`; calls no hook. `options_json` is
    /// what the plugins see as the command's options.
    pub fn load(dir: Option<&Path>, stage: u32, images_dir: &Path, options_json: &str) -> Result<Plugins, PluginError> {
        let mut me = Plugins::none();
        me.dir = dir.map(Path::to_path_buf);
        me.stage = stage;
        let Some(dir) = dir else { return Ok(me) };
        let cstr = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
        let run_id = cstr(&make_run_id());
        let images = cstr(&images_dir.to_string_lossy());
        let options = cstr(options_json);
        for file in plugin_files(dir)? {
            let (info, hooks, lib) = probe(&file)?;
            if let Some(first) = me.plugins.iter().find(|p| p.info.name == info.name) {
                return Err(PluginError::Duplicate { name: info.name, first: first.info.file.clone(), second: file });
            }
            tracing::info!(
                "plugin '{}' version {} loaded from {} ({}, ABI {}; hooks: {})",
                info.name,
                info.version,
                file.display(),
                if info.route == Route::Rust { "Rust" } else { "C" },
                info.abi_version,
                info.hooks.join(", ")
            );
            let ctx = Box::new(Ctx {
                plugin: info.name.clone(),
                images_dir: images_dir.to_path_buf(),
                error: RefCell::new(None),
                needed: me.needed.clone(),
                store: me.store.clone(),
                threads: me.threads.clone(),
            });
            let table = Box::new(api::RcrHost {
                abi_version: api::ABI_VERSION,
                size: std::mem::size_of::<api::RcrHost>() as u32,
                ctx: (&*ctx as *const Ctx).cast_mut().cast::<c_void>(),
                run_id: run_id.as_ptr(),
                images_dir: images.as_ptr(),
                options_json: options.as_ptr(),
                log: svc_log,
                set_error: svc_set_error,
                write_image: svc_write_image,
                read_image: svc_read_image,
                need_plugin: svc_need_plugin,
                store_put: svc_store_put,
                store_get: svc_store_get,
                run_thread: svc_run_thread,
            });
            me.plugins.push(Loaded { info, hooks, ctx, table, _lib: lib });
        }
        me._strings = vec![run_id, images, options];
        Ok(me)
    }

    /// The loaded plugins, in order.
    pub fn infos(&self) -> Vec<&PluginInfo> {
        self.plugins.iter().map(|p| &p.info).collect()
    }

    /// Calls every plugin's `init`. A failing init is an error naming the plugin and its file.
    pub fn init(&mut self) -> Result<(), PluginError> {
        let stage = self.stage;
        for p in &self.plugins {
            if let Some(f) = p.hooks.init {
                // SAFETY: a hook of a loaded plugin, called with its host table.
                p.status("init", p.call(|h| unsafe { f(h, stage) }))?;
            }
        }
        self.initialized = true;
        Ok(())
    }

    /// Calls every plugin's `fini` once (later calls do nothing), with the stage's outcome.
    pub fn fini(&mut self, ok: bool) -> Result<(), PluginError> {
        if !self.initialized || self.finished {
            return Ok(());
        }
        self.finished = true;
        let stage = self.stage;
        let errs: Vec<PluginError> = self
            .plugins
            .iter()
            .filter_map(|p| {
                // SAFETY: as in init.
                p.hooks.fini.and_then(|f| p.status("fini", p.call(|h| unsafe { f(h, stage, ok as i32) })).err())
            })
            .collect();
        many(errs)
    }

    fn broadcast_pid(&self, hook: &'static str, pick: fn(&Hooks) -> Option<api::PidFn>, pid: i32) -> Result<(), PluginError> {
        let errs: Vec<PluginError> = self
            .plugins
            .iter()
            .filter_map(|p| {
                // SAFETY: a hook of a loaded plugin, called with its host table.
                pick(&p.hooks).and_then(|f| p.status(hook, p.call(|h| unsafe { f(h, pid) })).err())
            })
            .collect();
        many(errs)
    }

    /// Dump: before the task is frozen.
    pub fn pause_devices(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("pause_devices", |h| h.pause_devices, pid)
    }
    /// Dump: the task is frozen; before its files and memory are dumped.
    pub fn checkpoint_devices(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("checkpoint_devices", |h| h.checkpoint_devices, pid)
    }
    /// Dump: every task is dumped; before the inventory is written.
    pub fn dump_devices_late(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("dump_devices_late", |h| h.dump_devices_late, pid)
    }
    /// Restore: the task was just created (stopped).
    pub fn post_forking(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("post_forking", |h| h.post_forking, pid)
    }
    /// Restore: memory and files are restored; before the task runs.
    pub fn resume_devices_late(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("resume_devices_late", |h| h.resume_devices_late, pid)
    }
    /// Restore: the images are read; before any file is opened or task created.
    pub fn restore_init(&self) -> Result<(), PluginError> {
        let errs: Vec<PluginError> = self
            .plugins
            .iter()
            .filter_map(|p| {
                // SAFETY: as in init.
                p.hooks.restore_init.and_then(|f| p.status("restore_init", p.call(|h| unsafe { f(h) })).err())
            })
            .collect();
        many(errs)
    }

    /// Plugins the checkpoint needs: those that claimed a file or were named with `need_plugin`.
    pub fn needed(&self) -> Vec<String> {
        self.needed.borrow().iter().cloned().collect()
    }

    /// Restore: fails unless every plugin in `needed` is loaded.
    pub fn check_needed(&self, needed: &[String]) -> Result<(), PluginError> {
        for name in needed {
            if !self.plugins.iter().any(|p| &p.info.name == name) {
                let where_ = match &self.dir {
                    Some(d) => format!("not found in {}", d.display()),
                    None => "no plugin directory: give --libdir DIR or set RCR_LIBS_DIR".into(),
                };
                return Err(PluginError::Missing { name: name.clone(), where_ });
            }
        }
        Ok(())
    }

    /// Dump: offers fd `file` to the plugins in order. The first that claims it gets a new file id; its
    /// `ext_file_entry` (naming the plugin) is added to `files`. None if no plugin claimed it.
    pub fn dump_file(&self, file: &OfferedFd<'_>, files: &mut crate::kinds::FileTable) -> Result<Option<u32>, PluginError> {
        if !self.plugins.iter().any(|p| p.hooks.dump_file.is_some()) {
            return Ok(None);
        }
        let (pid, fd, path) = (file.pid, file.fd, file.path);
        let id = files.next_id();
        let raw = file.raw();
        for p in &self.plugins {
            let Some(f) = p.hooks.dump_file else { continue };
            // SAFETY: a hook of a loaded plugin, with its host table and a file valid for the call.
            match p.call(|h| unsafe { f(h, &raw, id) }) {
                (api::RCR_OK, _) => {
                    tracing::info!("pid {pid}: fd {fd} ({path}) claimed by plugin '{}' as file id {id}", p.info.name);
                    self.record_claim(p, id, files);
                    return Ok(Some(id));
                }
                (api::RCR_NOT_MINE, _) => {}
                other => {
                    return Err(PluginError::File { id, fd: fd as u32, msg: p.status("dump_file", other).err().map(|e| e.to_string()).unwrap_or_default() });
                }
            }
        }
        Ok(None)
    }

    /// Restore: opens the plugin files `(file id, fd number, ext entry)` in rcr. Each goes to the plugin
    /// its entry names (or, for an entry naming none, to the plugins in order). A plugin may ask to be
    /// retried: files are retried after the others until a round makes no progress.
    pub fn restore_files(&self, wanted: &[(u32, u32, &pb::ExtFileEntry)]) -> Result<Vec<(u32, OwnedFd)>, PluginError> {
        let mut out = Vec::new();
        let mut pending: Vec<(u32, u32, &pb::ExtFileEntry, String)> = wanted.iter().map(|&(id, fd, e)| (id, fd, e, String::new())).collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut again = Vec::new();
            for (id, fd, e, _) in pending {
                match self.restore_one(id, fd, e)? {
                    Ok(f) => out.push((id, f)),
                    Err(why) => again.push((id, fd, e, why)),
                }
            }
            if again.len() == before {
                let what: Vec<String> = again.iter().map(|(id, fd, e, why)| format!("file id {id} (fd {fd}) of plugin '{}' waits for: {why}", e.rcr_plugin.as_deref().unwrap_or("?"))).collect();
                return Err(PluginError::File { id: again[0].0, fd: again[0].1, msg: format!("no progress restoring plugin files: {}", what.join("; ")) });
            }
            pending = again;
        }
        Ok(out)
    }

    /// Ok(Ok(fd)), Ok(Err(retry reason)), or the error.
    fn restore_one(&self, id: u32, fd: u32, e: &pb::ExtFileEntry) -> Result<Result<OwnedFd, String>, PluginError> {
        let file_err = |msg: String| PluginError::File { id, fd, msg };
        let candidates: Vec<&Loaded> = match &e.rcr_plugin {
            Some(name) => {
                let p = self.plugins.iter().find(|p| &p.info.name == name);
                vec![p.ok_or_else(|| file_err(format!("needs plugin '{name}', which is not loaded")))?]
            }
            None => self.plugins.iter().collect(),
        };
        for p in candidates {
            let Some(f) = p.hooks.restore_file else {
                if e.rcr_plugin.is_some() {
                    return Err(file_err(format!("plugin '{}' ({}) has no restore_file hook", p.info.name, p.info.file.display())));
                }
                continue;
            };
            let mut newfd: i32 = -1;
            // SAFETY: a hook of a loaded plugin, with its host table and a writable int.
            match p.call(|h| unsafe { f(h, id, &mut newfd) }) {
                (api::RCR_OK, _) => {
                    if newfd < 0 {
                        return Err(file_err(format!("plugin '{}' ({}): restore_file returned success but no fd", p.info.name, p.info.file.display())));
                    }
                    // SAFETY: the plugin handed the fd over to rcr (restore_file's contract).
                    let owned = unsafe { OwnedFd::from_raw_fd(newfd) };
                    // The fd must be open: a plugin bug must not make rcr close someone else's fd later.
                    // SAFETY: fcntl(F_GETFD) on an int; no memory involved.
                    if unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFD) } < 0 {
                        std::mem::forget(owned);
                        return Err(file_err(format!("plugin '{}': restore_file returned fd {newfd}, which is not open", p.info.name)));
                    }
                    tracing::info!("file id {id} (fd {fd}) restored by plugin '{}'", p.info.name);
                    return Ok(Ok(owned));
                }
                (api::RCR_NOT_MINE, _) => {
                    if e.rcr_plugin.is_some() {
                        return Err(file_err(format!("plugin '{}' ({}) does not know this file (restore_file: not mine)", p.info.name, p.info.file.display())));
                    }
                }
                (api::RCR_RETRY, why) => return Ok(Err(why.unwrap_or_else(|| "(no reason given)".into()))),
                other => return Err(file_err(p.status("restore_file", other).err().map(|e| e.to_string()).unwrap_or_default())),
            }
        }
        Err(file_err("no plugin restores this file".into()))
    }
}

impl Drop for Plugins {
    /// A stage that ended by an error still tells the plugins (fini with ok = 0).
    fn drop(&mut self) {
        if let Err(e) = self.fini(false) {
            tracing::warn!("{e}");
        }
    }
}

fn many(mut errs: Vec<PluginError>) -> Result<(), PluginError> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(PluginError::Many(errs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("example-toydev"));
        assert!(valid_name("dev-12.state"));
        assert!(!valid_name(""));
        assert!(!valid_name("../x"));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn missing_plugin_names_the_directory() {
        let p = Plugins::load(Some(Path::new("/nonexistent-rcr-plugins")), api::RCR_STAGE_RESTORE, Path::new("/tmp"), "{}");
        assert!(matches!(p, Err(PluginError::Dir { .. })));
        let mut none = Plugins::none();
        none.dir = Some(PathBuf::from("/opt/x"));
        let e = none.check_needed(&["amdgpu".into()]).unwrap_err().to_string();
        assert_eq!(e, "this checkpoint needs plugin 'amdgpu' (not found in /opt/x)");
    }

    #[test]
    fn files_are_sorted_and_only_libraries() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.so", "a.so", "README", "c.so.txt"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let files: Vec<String> = plugin_files(d.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(files, ["a.so", "b.so"]);
        // Not a library: an error naming the file.
        let e = Plugins::load(Some(d.path()), api::RCR_STAGE_DUMP, d.path(), "{}").err().unwrap().to_string();
        assert!(e.contains("a.so"), "{e}");
    }

    /// Builds the C test fixture (tests/progs/plugin_fixture.c) with `defines` into a plugin directory.
    fn fixture_dir(defines: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
            .arg(root.join("plugin-api/include"))
            .args(defines)
            .arg("-o")
            .arg(d.path().join("fixture.so"))
            .arg(root.join("tests/progs/plugin_fixture.c"))
            .output()
            .expect("run cc");
        assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
        d
    }

    fn loaded(defines: &[&str], stage: u32) -> (tempfile::TempDir, Plugins) {
        let d = fixture_dir(defines);
        let p = Plugins::load(Some(d.path()), stage, d.path(), "{}").unwrap();
        (d, p)
    }

    #[test]
    fn store_keeps_bytes_and_fds_by_key() {
        let mut st = Store::default();
        let (r, w) = nix::unistd::pipe().unwrap();
        st.put("a-1", b"hello", Some(w.as_fd())).unwrap();
        drop(w); // the store holds its own copy
        st.put("b", b"", None).unwrap();
        assert!(st.put("../x", b"", None).is_err());
        assert!(st.put("big", &vec![0u8; STORE_MAX_BYTES + 1], None).is_err());
        let (data, fd) = st.get("a-1").unwrap().unwrap();
        assert_eq!(data, b"hello");
        let fd = fd.unwrap();
        assert_eq!(nix::unistd::write(&fd, b"x").unwrap(), 1);
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap(), 1);
        assert!(st.get("b").unwrap().unwrap().1.is_none());
        assert!(st.get("nope").unwrap().is_none());
    }

    #[test]
    fn external_objects_are_claimed_and_restored_by_their_plugin() {
        let (_d, p) = loaded(&["-DFIXTURE_EXT"], api::RCR_STAGE_DUMP);
        // Unix socket: offered with its peer's inode; claimed only for peer 4242.
        let (a, _b) = nix::sys::socket::socketpair(nix::sys::socket::AddressFamily::Unix, nix::sys::socket::SockType::Stream, None, nix::sys::socket::SockFlag::empty()).unwrap();
        // SAFETY: fstat into a zeroed stat of a valid fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::fstat(a.as_raw_fd(), &mut st) }, 0);
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", a.as_raw_fd())).unwrap();
        let sk = OfferedFd { pid: std::process::id() as i32, fd: a.as_raw_fd(), path: "socket:[1]", local: a.as_fd(), st: &st, flags: 2, pos: 0, fdinfo: &fdinfo };
        assert_eq!(p.claim_ext_unix_sk(&sk, 1, 7).unwrap(), None);
        assert_eq!(p.claim_ext_unix_sk(&sk, 4242, 7).unwrap().as_deref(), Some("fixture"));
        assert_eq!(p.needed(), ["fixture"]);
        let fd = p.restore_ext_unix_sk("fixture", 7).unwrap();
        // The plugin left the socket's peer in the store: the two are connected.
        let store = p.store.borrow();
        let (_, peer) = store.get("usk-peer-7").unwrap().unwrap();
        nix::unistd::write(peer.as_ref().unwrap(), b"k").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap(), 1);
        drop(store);
        let e = p.restore_ext_unix_sk("amdgpu", 7).unwrap_err().to_string();
        assert!(e.contains("needs plugin 'amdgpu', which is not loaded"), "{e}");
        // Mount and link.
        let m = ExtMount { mnt_id: 40, mountpoint: "/mnt/x", root: "/", fstype: "fixturefs", source: "none" };
        assert_eq!(p.claim_ext_mount(&m, 3).unwrap().as_deref(), Some("fixture"));
        assert_eq!(p.claim_ext_mount(&ExtMount { fstype: "ext4", ..m }, 4).unwrap(), None);
        p.restore_ext_mount("fixture", 3, "/restore/mnt/x").unwrap();
        assert_eq!(p.store.borrow().get("mnt-3").unwrap().unwrap().0, b"/restore/mnt/x");
        assert_eq!(p.claim_ext_link(5, "fx0", "veth", 9).unwrap().as_deref(), Some("fixture"));
        assert_eq!(p.claim_ext_link(5, "eth0", "veth", 9).unwrap(), None);
        p.restore_ext_link("fixture", 9, "fx0").unwrap();
        assert_eq!(p.store.borrow().get("link-9").unwrap().unwrap().0, b"fx0");
    }

    #[test]
    fn a_plugin_without_the_hooks_is_not_asked_and_cannot_restore_them() {
        let (_d, p) = loaded(&[], api::RCR_STAGE_RESTORE);
        assert_eq!(p.claim_ext_link(5, "fx0", "veth", 9).unwrap(), None);
        let e = p.restore_ext_mount("fixture", 3, "/m").unwrap_err().to_string();
        assert!(e.contains("has no restore_ext_mount hook"), "{e}");
        assert!(!p.wants_vmas());
    }

    #[test]
    fn an_abi_1_plugin_loads_with_the_newer_hooks_absent() {
        // Its struct ends at resume_devices_late; what lies after it in memory must not be read as hooks.
        let (_d, p) = loaded(&["-DFIXTURE_V1", "-DFIXTURE_CLAIM", "-DFIXTURE_EXT"], api::RCR_STAGE_DUMP);
        let info = p.infos()[0].clone();
        assert_eq!(info.abi_version, 1);
        assert_eq!(info.hooks, ["init", "dump_file"]);
        assert!(!p.wants_vmas());
    }

    struct Recorder(RefCell<Vec<(i32, i32, u128)>>);
    impl ThreadControl for Recorder {
        fn run_thread(&self, pid: i32, tid: i32, dur: std::time::Duration) -> Result<(), String> {
            self.0.borrow_mut().push((pid, tid, dur.as_millis()));
            Ok(())
        }
    }

    #[test]
    fn thread_control_is_lent_only_for_the_call() {
        let (_d, p) = loaded(&[], api::RCR_STAGE_DUMP);
        let l = &p.plugins[0];
        // SAFETY: the services of a loaded plugin's table, called with its ctx.
        let run = |ms: u32| unsafe { (l.table.run_thread)(l.table.ctx, 10, 11, ms) };
        assert_eq!(run(5), api::RCR_ERROR);
        assert!(l.ctx.error.borrow().as_deref().unwrap_or("").contains("only available during checkpoint_devices"));
        let rec = Recorder(RefCell::new(Vec::new()));
        let r = p.with_thread_control(&rec, || (run(5), run(RUN_THREAD_MAX_MS + 1)));
        assert_eq!(r, (api::RCR_OK, api::RCR_ERROR));
        assert_eq!(*rec.0.borrow(), [(10, 11, 5)]);
        assert_eq!(run(5), api::RCR_ERROR, "thread control outlived with_thread_control");
    }
}
