//! The plain structs of the ABI (what hooks are given) and the C route's descriptor. Append-only, like
//! the hooks and the services: a new field goes at the end, where `size` or the ABI version tells a
//! reader whether it is there.

use crate::HookSet;
use std::ffi::c_char;

/// A string the ABI passes as pointer and length, not NUL-terminated (`const char *` in C; the same
/// type as `*const u8` to Rust and to `abi_stable`).
pub type CText = *const u8;

abi_struct! {
    /// An open file offered to `dump_file` (`struct rcr_file`). Valid only during the call.
    pub struct RcrFile as "rcr_file" {
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
        /// The target of `/proc/PID/fd/FD` (e.g. `anon_inode:[eventfd]`, `/dev/foo`).
        pub path: CText,
        pub path_len: usize,
        /// The full text of `/proc/PID/fdinfo/FD`.
        pub fdinfo: CText,
        pub fdinfo_len: usize,
    }
}

abi_struct! {
    /// A memory area (`struct rcr_vma`), offered to `dump_vma` and passed to `update_vma` (ABI 2).
    /// Valid only during the call.
    pub struct RcrVma as "rcr_vma" {
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
        /// Device (`makedev(major, minor)`) of the mapped file, as /proc/PID/maps shows it (0 at restore).
        pub dev: u64,
        /// Inode of the mapped file (0 at restore).
        pub ino: u64,
        /// The mapped file as /proc/PID/maps names it (`/dev/foo`, `anon_inode:bpf-map`); empty at restore.
        pub path: CText,
        pub path_len: usize,
        /// The `VmFlags:` of smaps (`rd wr sh mr mw me ms io pf ...`); empty at restore.
        pub vm_flags: CText,
        pub vm_flags_len: usize,
    }
}

abi_struct! {
    /// A mount (`struct rcr_mount`) offered to `dump_ext_mount` (ABI 2).
    pub struct RcrMount as "rcr_mount" {
        /// `mount_id` of /proc/PID/mountinfo.
        pub mnt_id: i32,
        pub reserved: u32,
        pub mountpoint: CText,
        pub mountpoint_len: usize,
        /// The root of the mount within its filesystem.
        pub root: CText,
        pub root_len: usize,
        pub fstype: CText,
        pub fstype_len: usize,
        pub source: CText,
        pub source_len: usize,
    }
}

abi_struct! {
    /// A network link (`struct rcr_link`) offered to `dump_ext_link` (ABI 2).
    pub struct RcrLink as "rcr_link" {
        pub ifindex: i32,
        pub reserved: u32,
        /// The interface's name, e.g. `veth0`.
        pub name: CText,
        pub name_len: usize,
        /// Its rtnetlink kind (`IFLA_INFO_KIND`: `veth`, `macvlan`, ...), empty if none.
        pub kind: CText,
        pub kind_len: usize,
    }
}

/// What the hooks receive: the host table ([`crate::RcrHost`]), opaque to `abi_stable`'s layout check
/// (see the crate documentation). Cast it to `*const RcrHost`, or use [`crate::Host::from_raw`].
#[repr(C)]
#[derive(abi_stable::StableAbi)]
pub struct RcrHostOpaque {
    _private: [u8; 0],
}

/// The C route's descriptor (`struct rcr_plugin`), returned by the exported
/// `const struct rcr_plugin *rcr_plugin_entry(void)`: a head, then the hooks in ABI order (flat in C).
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
    pub hooks: HookSet,
}

impl RcrPluginC {
    /// A descriptor with no name and no hooks (what rcr fills from a plugin's shorter struct).
    pub const fn empty() -> RcrPluginC {
        RcrPluginC { abi_version: 0, size: 0, name: std::ptr::null(), version: std::ptr::null(), hooks: HookSet::NONE }
    }

    /// `sizeof(struct rcr_plugin)` of ABI version `v`: its head and the hooks up to that version.
    pub fn size_of_version(v: u32) -> usize {
        std::mem::offset_of!(RcrPluginC, hooks) + crate::HOOKS.iter().filter(|h| h.version <= v).count() * std::mem::size_of::<Option<crate::fns::init>>()
    }

    /// Its layout, for the C header and the layout check (flat there: the hooks follow the head).
    pub fn layout() -> crate::cheader::CStruct {
        use std::mem::offset_of;
        let head = [
            ("abi_version", "u32", "RCR_PLUGIN_ABI_VERSION", offset_of!(RcrPluginC, abi_version)),
            ("size", "u32", "sizeof(struct rcr_plugin)", offset_of!(RcrPluginC, size)),
            ("name", "*const c_char", "unique among the loaded plugins", offset_of!(RcrPluginC, name)),
            ("version", "*const c_char", "", offset_of!(RcrPluginC, version)),
        ];
        let doc = "The plugin's descriptor. Leave the hooks you do not implement NULL.";
        crate::cheader::CStruct::with_head("rcr_plugin", doc, std::mem::size_of::<RcrPluginC>(), &head, HookSet::fields(offset_of!(RcrPluginC, hooks)))
    }
}

/// The name of the C route's entry symbol.
pub const C_ENTRY_SYMBOL: &str = "rcr_plugin_entry";
/// Its type.
pub type CEntryFn = unsafe extern "C" fn() -> *const RcrPluginC;
