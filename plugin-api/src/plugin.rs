//! What a Rust plugin's hooks answer, and how it is exported ([`export_plugin!`]). The [`Plugin`] trait
//! itself follows from the hook list ([`crate::hooks`]).

use crate::*;
use std::os::fd::{FromRawFd, OwnedFd};

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

/// What [`Plugin::update_vma`] returns for an area it claimed: the fd to map it from (rcr takes it) and
/// the file offset. `fd: None` (ABI 3): the plugin maps the area itself, inside the task, in
/// [`Plugin::restore_task`] (a mapping the core cannot place with `MAP_FIXED`, such as io_uring's).
#[derive(Debug)]
pub struct VmaMapping {
    pub fd: Option<OwnedFd>,
    pub offset: u64,
}

/// What a claim hook decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The plugin handles the object; the core records it as the plugin's.
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
    /// The plugin opens the file itself, inside the restored task, in [`Plugin::restore_task`], at its
    /// fd number (ABI 3): rcr installs nothing there. For objects that belong to the process that
    /// opened them.
    InTask,
}

/// The one instance of a plugin type; implemented by [`export_plugin!`].
pub trait Instance: 'static {
    type P: Plugin;
    fn get() -> &'static Self::P;
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
