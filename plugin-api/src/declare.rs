//! The macros that turn the ABI's one list of hooks ([`crate::hooks`]), of host services
//! ([`crate::services`]) and of plain structs ([`crate::abi`]) into everything that follows from it:
//! the `#[repr(C)]` structs, the `abi_stable` root module, the hook set the host dispatches on, the
//! [`crate::Plugin`] trait and its `extern "C"` shims, and the description [`crate::cheader`] writes
//! `include/rcr_plugin.h` from (checked against the checked-in header and, compiled by `cc`, against
//! this crate's layout, by the tests).

/// A plain ABI struct (data, no function pointers): `#[repr(C)]`, `StableAbi`, and its layout for the
/// C header.
macro_rules! abi_struct {
    ($(#[doc = $doc:literal])* pub struct $name:ident as $c:literal { $($(#[doc = $fdoc:literal])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(abi_stable::StableAbi, Clone, Copy)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $f: $t,)*
        }

        impl $name {
            /// Its layout, for the C header and the layout check.
            pub fn layout() -> $crate::cheader::CStruct {
                $crate::cheader::CStruct {
                    c: $c,
                    doc: concat!($($doc, "\n"),*),
                    size: ::core::mem::size_of::<Self>(),
                    fields: vec![$($crate::cheader::CField {
                        name: stringify!($f),
                        ty: $crate::cheader::CType::Plain(stringify!($t)),
                        doc: concat!($($fdoc, "\n"),*),
                        offset: ::core::mem::offset_of!(Self, $f),
                    }),*],
                }
            }
        }
    };
}

/// The host services: each entry `VERSION name(args) -> ret;` becomes a field of [`crate::RcrHost`]
/// (after its fixed head), its line in the C header, and its entry in [`crate::SERVICES`].
macro_rules! declare_services {
    ($($(#[doc = $doc:literal])* [$v:literal] $name:ident ( $($arg:ident : $aty:ty),* ) -> $ret:ty;)*) => {
        /// The services' function pointers, in ABI order; every one takes the table's `ctx` first.
        #[repr(C)]
        #[derive(abi_stable::StableAbi, Clone, Copy)]
        pub struct Services {
            $($(#[doc = $doc])* pub $name: unsafe extern "C" fn(ctx: *mut ::std::ffi::c_void $(, $arg: $aty)*) -> $ret,)*
        }

        /// The services with their ABI version and C signature.
        pub const SERVICES: &[$crate::cheader::FnDesc] = &[$($crate::cheader::FnDesc {
            name: stringify!($name),
            version: $v,
            args: &[$((stringify!($arg), stringify!($aty))),*],
            ret: stringify!($ret),
            doc: concat!($($doc, "\n"),*),
        }),*];

        impl Services {
            /// Their layout within [`RcrHost`], at `base` (the size of the table's head).
            pub(crate) fn fields(base: usize) -> Vec<$crate::cheader::CField> {
                vec![$($crate::cheader::CField {
                    name: stringify!($name),
                    ty: $crate::cheader::CType::Service(stringify!($name)),
                    doc: concat!($($doc, "\n"),*),
                    offset: base + ::core::mem::offset_of!(Services, $name),
                }),*]
            }
        }
    };
}

/// The hooks. Each entry:
///
/// ```text
/// /// doc
/// [VERSION] name(raw args after the host table) #[prefix attributes of the root module's field]
///     => { the Plugin trait method, with its default body }
///     |plugin, host| the shim's body: calls the method, gives the raw status;
/// ```
///
/// becomes its `extern "C"` type in [`crate::fns`], a field of [`crate::HookSet`] (what the host
/// dispatches on, and the C route's descriptor), of the `abi_stable` root module [`crate::RcrPluginMod`],
/// a method of [`crate::Plugin`], its shim in [`crate::shim`], and its entry in [`crate::HOOKS`] (the C
/// header).
macro_rules! declare_hooks {
    ($($(#[doc = $doc:literal])* [$v:literal] $name:ident ( $($arg:ident : $aty:ty),* ) $(#[$pfx:meta])* => { $($tr:tt)* } |$p:ident, $h:ident| $body:expr;)*) => {
        /// The `extern "C"` type of each hook (named as the hook); the host table comes first.
        #[allow(non_camel_case_types)]
        pub mod fns {
            use super::*;
            $($(#[doc = $doc])* pub type $name = unsafe extern "C" fn(host: HostPtr $(, $arg: $aty)*) -> i32;)*
        }

        /// The hooks of one plugin, whichever route it came by, in ABI order; `None` where the plugin has
        /// none. Also the hooks of the C route's descriptor ([`RcrPluginC`]), which is why it is `repr(C)`.
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        pub struct HookSet {
            $($(#[doc = $doc])* pub $name: Option<fns::$name>,)*
        }

        impl HookSet {
            /// No hooks.
            pub const NONE: HookSet = HookSet { $($name: None,)* };

            /// The names of the hooks present, in ABI order.
            pub fn names(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if self.$name.is_some() {
                    v.push(stringify!($name));
                })*
                v
            }

            /// Their layout within [`RcrPluginC`], at `base` (the size of its head).
            pub(crate) fn fields(base: usize) -> Vec<$crate::cheader::CField> {
                vec![$($crate::cheader::CField {
                    name: stringify!($name),
                    ty: $crate::cheader::CType::Hook(stringify!($name)),
                    doc: concat!($($doc, "\n"),*),
                    offset: base + ::core::mem::offset_of!(HookSet, $name),
                }),*]
            }

            /// The hooks of a Rust plugin's root module (those it was built without read as `None`).
            pub fn from_module(m: RcrPluginModRef) -> HookSet {
                HookSet { $($name: m.$name(),)* }
            }
        }

        /// The hooks with their ABI version and C signature (the host table first, not listed).
        pub const HOOKS: &[$crate::cheader::FnDesc] = &[$($crate::cheader::FnDesc {
            name: stringify!($name),
            version: $v,
            args: &[$((stringify!($arg), stringify!($aty))),*],
            ret: "i32",
            doc: concat!($($doc, "\n"),*),
        }),*];

        /// The Rust route's root module: name, version and hooks of a plugin. A prefix type: the hooks
        /// after `resume_devices_late` (the last every plugin has) read as absent (`None`) from plugins
        /// built before them.
        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        #[sabi(kind(Prefix(prefix_ref = RcrPluginModRef)))]
        pub struct RcrPluginMod {
            /// The ABI version the plugin was built against ([`ABI_VERSION`] of its plugin-api).
            pub abi_version: u32,
            pub name: abi_stable::std_types::RStr<'static>,
            pub version: abi_stable::std_types::RStr<'static>,
            $($(#[doc = $doc])* $(#[$pfx])* pub $name: Option<unsafe extern "C" fn(host: HostPtr $(, $arg: $aty)*) -> i32>,)*
        }

        impl RcrPluginMod {
            /// A module with no hooks.
            pub const fn new(name: &'static str, version: &'static str) -> RcrPluginMod {
                RcrPluginMod {
                    abi_version: ABI_VERSION,
                    name: abi_stable::std_types::RStr::from_str(name),
                    version: abi_stable::std_types::RStr::from_str(version),
                    $($name: None,)*
                }
            }
        }

        /// A plugin written in Rust. Implement the hooks you need (each has a do-nothing default) and
        /// list them in [`export_plugin!`]; only listed hooks are exported, and `rcr plugins` shows
        /// them. Errors are plain strings; rcr prefixes them with the plugin's name and the hook.
        #[allow(unused_variables)]
        pub trait Plugin: Send + Sync + 'static {
            $($(#[doc = $doc])* $($tr)*)*
        }

        /// The `extern "C"` shims [`export_plugin!`] exports: each runs the hook under `catch_unwind`
        /// and turns an `Err` or a panic into `RCR_ERROR` with a message.
        pub mod shim {
            use super::*;
            use $crate::shim_support::*;
            $(
                /// # Safety
                /// Called by rcr with its host table and arguments valid for the call.
                pub unsafe extern "C" fn $name<I: Instance>(host: HostPtr $(, $arg: $aty)*) -> i32 {
                    guard::<I>(stringify!($name), host, |$p, $h| $body)
                }
            )*
        }
    };
}
