//! Finding and loading plugin libraries, by either route, and checking what they declare (the ABI
//! side of the host). Loading calls no hook.

use super::{api, PluginError, PluginInfo, Route};
use std::ffi::c_void;
use std::path::{Path, PathBuf};

/// The hooks of one plugin, whichever route it came by (the same `extern "C"` signatures); declared
/// once in the plugin API.
pub type Hooks = api::HookSet;

/// Whether `s` is a name plugins may use for themselves, their images and store keys.
pub(super) fn valid_name(s: &str) -> bool {
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

/// A loaded library: what it declares, its hooks, and the C route's handle (the Rust route's is kept by
/// abi_stable for the life of the process).
pub(super) type Opened = (PluginInfo, Hooks, Option<libloading::Library>);

/// The root module of a Rust plugin, its layout checked. abi_stable checks a library's module against
/// the interface the host was built with, and lets the library's be the longer: a newer library in an
/// older host. rcr also loads older plugins (a module with fewer hooks than this rcr knows, which read
/// as absent): where the usual check fails, the library's module is taken as the interface that this
/// rcr's must extend, and that check must pass.
fn rust_module(file: &Path) -> Result<api::RcrPluginModRef, PluginError> {
    use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
    use abi_stable::StableAbi;
    let incompatible = |msg: String| PluginError::Incompatible { file: file.to_path_buf(), host_api: env!("CARGO_PKG_VERSION"), msg };
    let header = abi_stable::library::lib_header_from_path(file).map_err(|e| incompatible(e.to_string()))?;
    let err = match header.init_root_module::<api::RcrPluginModRef>() {
        Ok(m) => return Ok(m),
        Err(e) => e.to_string(),
    };
    let theirs = header.layout().ok_or_else(|| incompatible(format!("its root module carries no layout to check: {err}")))?;
    check_layout_compatibility(theirs, <api::RcrPluginModRef as StableAbi>::LAYOUT).map_err(|_| incompatible(err))?;
    // SAFETY: the layout was checked just above: every field of the library's module is one of this
    // rcr's, with the same type; the fields it lacks are read through abi_stable's prefix accessors,
    // which see that the library's module ends before them.
    unsafe { header.init_root_module_with_unchecked_layout::<api::RcrPluginModRef>() }.map_err(|e| incompatible(e.to_string()))
}

/// Loads one library: its descriptor and hooks (no hook is called).
fn open_plugin(file: &Path) -> Result<Opened, PluginError> {
    // SAFETY: loading a library runs its initialisers; a plugin directory holds trusted code only,
    // as rcr runs with the privileges to checkpoint processes anyway.
    let lib = unsafe { libloading::Library::new(file) }.map_err(|e| PluginError::Load { file: file.to_path_buf(), msg: e.to_string() })?;
    // SAFETY: only the symbol's presence is checked; it is not used through this type.
    let is_rust = unsafe { lib.get::<*const c_void>(abi_stable::library::ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }.is_ok();
    if is_rust {
        let m = rust_module(file)?;
        let info = PluginInfo {
            name: m.name().as_str().to_string(),
            version: m.version().as_str().to_string(),
            file: file.to_path_buf(),
            route: Route::Rust,
            abi_version: m.abi_version(),
            hooks: Vec::new(),
        };
        return Ok((info, Hooks::from_module(m), None));
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
    let head = std::mem::offset_of!(api::RcrPluginC, hooks);
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
    Ok((info, d.hooks, Some(lib)))
}

/// Loads and checks one plugin file.
pub(super) fn probe(file: &Path) -> Result<Opened, PluginError> {
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
pub type Listed = (PathBuf, crate::Result<PluginInfo>);

/// What `rcr plugins` lists: each file of `dir` with its plugin or why it would not load.
pub fn list(dir: &Path) -> crate::Result<Vec<Listed>> {
    let mut out: Vec<Listed> = Vec::new();
    for file in plugin_files(dir)? {
        let r = probe(&file).map(|(i, _, _)| i).and_then(|i| {
            match out.iter().find_map(|(f, r)| r.as_ref().ok().filter(|o| o.name == i.name).map(|_| f.clone())) {
                Some(first) => Err(PluginError::Duplicate { name: i.name, first, second: file.clone() }),
                None => Ok(i),
            }
        });
        out.push((file, r.map_err(crate::Error::from)));
    }
    Ok(out)
}
