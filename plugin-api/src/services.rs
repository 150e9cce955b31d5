//! The host services rcr offers to plugins, declared once, in ABI order (append-only); `[N]` is the ABI
//! version that added each. The table ([`RcrHost`]) is one per plugin: its images and log lines carry
//! its name. A service is read only if the table's `size` covers it ([`Host`] checks).

use std::ffi::{c_char, c_void};

declare_services! {
    /// Logs `msg` (UTF-8, `len` bytes) through rcr's log at `level` (`RCR_LOG_*`).
    [1] log(level: u32, msg: *const u8, len: usize) -> ();
    /// Sets the message of the error (or the retry reason) the current hook is about to return.
    [1] set_error(msg: *const u8, len: usize) -> ();
    /// Writes the plugin's image `name` (letters, digits, `.`, `_`, `-`) in the images directory,
    /// replacing it; the file's name is prefixed with the plugin's. The whole image in one buffer:
    /// for large images use `image_open` (ABI 3).
    [1] write_image(name: *const u8, name_len: usize, data: *const u8, len: usize) -> i32;
    /// Reads the plugin's image `name`: its size in `*len`, up to `cap` bytes into `buf` (call with
    /// `cap` 0 to learn the size). `RCR_NOT_MINE` if there is no such image.
    [1] read_image(name: *const u8, name_len: usize, buf: *mut u8, cap: usize, len: *mut usize) -> i32;
    /// Records that this checkpoint cannot be restored without plugin `name` (a plugin that claims an
    /// object is recorded without asking).
    [1] need_plugin(name: *const u8, len: usize) -> i32;
    /// The fork-shared store: puts `len` bytes and, if `fd` >= 0, a copy of `fd` (rcr dups it; the
    /// caller keeps its own) under `key`, replacing what was there. One store per rcr command, shared by
    /// all plugins and all hooks of the stage. Keys: 1-64 of `[A-Za-z0-9._-]`; data: at most 64 KiB.
    [2] store_put(key: *const u8, key_len: usize, data: *const u8, len: usize, fd: i32) -> i32;
    /// Gets what is stored under `key`: its size in `*len`, up to `cap` bytes into `buf`, and in `*fd` a
    /// new copy of its fd that the caller owns (or -1; pass NULL to take no fd). `RCR_NOT_MINE` if the
    /// key is not there.
    [2] store_get(key: *const u8, key_len: usize, buf: *mut u8, cap: usize, len: *mut usize, fd: *mut i32) -> i32;
    /// Thread control of a frozen task: lets thread `tid` of process `pid` (rcr holds it stopped) run
    /// for `timeout_ms` (at most 10000), then stops it again, as it was; the rest of the task stays
    /// stopped. Only during `checkpoint_devices` (elsewhere `RCR_ERROR`). A signal that arrives for the
    /// thread meanwhile stays pending for it.
    [2] run_thread(pid: i32, tid: i32, timeout_ms: u32) -> i32;
    /// Streams the plugin's image `name`: stores in `*fd` an fd of the image file that the caller owns,
    /// open for reading (`mode` `RCR_IMAGE_READ`; `RCR_NOT_MINE` if there is no such image) or created
    /// empty for writing (`RCR_IMAGE_WRITE`). Read or write it in pieces of your choosing (read/write,
    /// splice, sendfile): rcr holds none of it in its memory. The same file `write_image` writes.
    [3] image_open(name: *const u8, name_len: usize, mode: u32, fd: *mut i32) -> i32;
    /// In `restore_task` only, for its `pid`: runs system call `nr` with the six `args` in the task
    /// (rcr is its tracer; the call runs in the task's own context: its fds, memory, credentials) and
    /// stores its return value in `*ret` (a negative errno on failure; the service still returns
    /// `RCR_OK`). Memory arguments are addresses in the task: see `task_write`.
    [3] task_syscall(pid: i32, nr: i64, args: *const u64, ret: *mut i64) -> i32;
    /// In `restore_task` only: copies `len` bytes of the task's memory at `addr` into `buf`.
    [3] task_read(pid: i32, addr: u64, buf: *mut u8, len: usize) -> i32;
    /// In `restore_task` only: copies `len` bytes from `data` into the task's memory at `addr` (which
    /// must be mapped; map scratch memory with `task_syscall(SYS_mmap, ...)` and unmap it after).
    [3] task_write(pid: i32, addr: u64, data: *const u8, len: usize) -> i32;
}

/// Services rcr offers to plugins (`struct rcr_host`): a fixed head, then the [`Services`]. The hooks
/// receive it as [`crate::HostPtr`], opaque to `abi_stable`'s layout check, so that appending services
/// never makes an older Rust plugin's layout differ.
#[repr(C)]
#[derive(abi_stable::StableAbi, Clone, Copy)]
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
    pub svc: Services,
}

impl RcrHost {
    /// Its layout, for the C header and the layout check (flat there: the services follow the head).
    pub fn layout() -> crate::cheader::CStruct {
        use std::mem::offset_of;
        let head = [
            ("abi_version", "u32", "The ABI version of this rcr.", offset_of!(RcrHost, abi_version)),
            ("size", "u32", "sizeof(struct rcr_host) as this rcr knows it.", offset_of!(RcrHost, size)),
            ("ctx", "*mut c_void", "Pass to every service.", offset_of!(RcrHost, ctx)),
            ("run_id", "*const c_char", "A unique id of this rcr run.", offset_of!(RcrHost, run_id)),
            ("images_dir", "*const c_char", "The images directory.", offset_of!(RcrHost, images_dir)),
            ("options_json", "*const c_char", "The command's options, a JSON object.", offset_of!(RcrHost, options_json)),
        ];
        let doc = "Services of rcr, one table per plugin. Read a service only if `size` covers it.";
        crate::cheader::CStruct::with_head("rcr_host", doc, std::mem::size_of::<RcrHost>(), &head, Services::fields(offset_of!(RcrHost, svc)))
    }
}
