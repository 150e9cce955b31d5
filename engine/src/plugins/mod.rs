//! The plugin host: loads the plugins of a directory and calls their hooks (the ABI is the
//! `rcr-plugin-api` crate, where hooks and services are declared once; its README describes them for
//! plugin authors).
//!
//! - [`load`]: finding and loading the libraries, by either route (a library that exports
//!   `abi_stable`'s root module is a Rust plugin, one that exports `rcr_plugin_entry` a C plugin; both
//!   give the same [`Hooks`]). A plugin reporting a newer ABI than this rcr knows, a duplicate name, a
//!   library with neither entry symbol, and a failing `init` are errors naming the file.
//! - [`services`]: the host services plugins call, and what the engine lends them for one hook (thread
//!   control of a frozen task, a restored task's context).
//! - `dispatch`, `vma`, `external`, `task`: calling the hooks. Claim hooks ask the plugins in load order
//!   and stop at the first that says "mine"; broadcast hooks call every plugin, collect the errors and
//!   fail if there was any.
//!
//! The host uses no type of the core's kinds: a claim comes back to the caller as a [`Claimed`], which
//! records it in its own tables; fresh ids come from the caller. Libraries stay loaded until rcr exits
//! (their code may be referenced by what they returned).

mod dispatch;
mod external;
pub mod load;
pub mod services;
mod task;
mod vma;

pub use dispatch::Claimed;
pub use external::{ExtMount, OfferedFd};
pub use load::{list, plugin_files, Hooks, Listed};
pub use services::{Store, StoreRef, TaskControl, ThreadControl, RUN_THREAD_MAX_MS, STORE_MAX_BYTES};
pub use task::InTask;

use rcr_plugin_api as api;
use std::cell::RefCell;
use std::ffi::CString;
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
    #[error("pid {pid}: restore_task: {msg}")]
    Task { pid: i32, msg: String },
    /// A host service refused what a plugin asked of it (a bad name, a size over a limit, a service
    /// called outside the hook it belongs to).
    #[error("{0}")]
    Refused(String),
    /// The message a plugin set for its hook's failure (`set_error`).
    #[error("{0}")]
    Said(String),
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

struct Loaded {
    info: PluginInfo,
    hooks: Hooks,
    /// Boxed so that the pointers handed to the plugin stay put.
    ctx: Box<services::Ctx>,
    table: Box<api::RcrHost>,
    /// The C route's library handle (the Rust route's is kept by abi_stable).
    _lib: Option<libloading::Library>,
}

/// The loaded plugins of one rcr command.
pub struct Plugins {
    dir: Option<PathBuf>,
    stage: u32,
    plugins: Vec<Loaded>,
    shared: Rc<services::Shared>,
    /// run id, images directory and options, NUL-terminated for the tables.
    _strings: Box<[CString; 3]>,
    initialized: bool,
    finished: bool,
}

/// A unique id of this rcr run.
fn make_run_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}-{}", t.as_nanos(), std::process::id())
}

impl Plugins {
    /// No plugins (an engine caller that loads none).
    pub fn none() -> Plugins {
        Plugins {
            dir: None,
            stage: 0,
            plugins: Vec::new(),
            shared: Default::default(),
            _strings: Box::new([CString::default(), CString::default(), CString::default()]),
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
        me._strings = Box::new([cstr(&make_run_id()), cstr(&images_dir.to_string_lossy()), cstr(options_json)]);
        for file in plugin_files(dir)? {
            let (info, hooks, lib) = load::probe(&file)?;
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
            let ctx = Box::new(services::Ctx { plugin: info.name.clone(), images_dir: images_dir.to_path_buf(), error: RefCell::new(None), shared: me.shared.clone() });
            let table = Box::new(services::table(&ctx, &me._strings));
            me.plugins.push(Loaded { info, hooks, ctx, table, _lib: lib });
        }
        Ok(me)
    }

    /// The loaded plugins, in order.
    pub fn infos(&self) -> Vec<&PluginInfo> {
        self.plugins.iter().map(|p| &p.info).collect()
    }

    /// Plugins the checkpoint needs: those that claimed an object or were named with `need_plugin`.
    pub fn needed(&self) -> Vec<String> {
        self.shared.needed.borrow().iter().cloned().collect()
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

    fn by_name(&self, name: &str) -> Option<&Loaded> {
        self.plugins.iter().find(|p| p.info.name == name)
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

#[cfg(test)]
pub(crate) mod tests;
