//! The safe Rust side of the host services ([`Host`]) and of what hooks are given ([`File`], [`Vma`],
//! [`Mount`], [`Link`]).

use crate::*;
use std::ffi::{c_char, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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

/// Ok for `RCR_OK`, else `what` as the error.
fn ok(r: i32, what: impl FnOnce() -> String) -> Result<(), String> {
    if r == RCR_OK {
        Ok(())
    } else {
        Err(what())
    }
}

impl<'a> Host<'a> {
    /// # Safety
    /// `raw` must be the table rcr passed to the hook being run.
    pub unsafe fn from_raw(raw: HostPtr) -> Option<Host<'a>> {
        // SAFETY: the caller passes rcr's table, valid for the call, or null. Its services are read only
        // where `size` covers them (`has`).
        unsafe { raw.cast::<RcrHost>().as_ref() }.map(|raw| Host { raw })
    }

    /// Whether this rcr's table has the service at `offset` within [`Services`].
    fn has(&self, offset: usize) -> bool {
        self.raw.size as usize >= std::mem::offset_of!(RcrHost, svc) + offset + std::mem::size_of::<usize>()
    }

    /// An error if this rcr's table lacks the service at `offset` (an rcr of an older ABI).
    fn need(&self, offset: usize, what: &str, since: u32) -> Result<(), String> {
        if self.has(offset) {
            Ok(())
        } else {
            Err(format!("this rcr (plugin ABI {}) has no {what} (plugin ABI {since})", self.raw.abi_version))
        }
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
        unsafe { (self.raw.svc.log)(self.raw.ctx, level, msg.as_ptr(), msg.len()) }
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

    pub(crate) fn set_error(&self, msg: &str) {
        // SAFETY: as in `log`.
        unsafe { (self.raw.svc.set_error)(self.raw.ctx, msg.as_ptr(), msg.len()) }
    }

    /// Writes this plugin's image `name` into the images directory, from one buffer (see
    /// [`Host::create_image`] for large ones).
    pub fn write_image(&self, name: &str, data: &[u8]) -> Result<(), String> {
        // SAFETY: as in `log`; both buffers are valid for the call.
        let r = unsafe { (self.raw.svc.write_image)(self.raw.ctx, name.as_ptr(), name.len(), data.as_ptr(), data.len()) };
        ok(r, || format!("rcr could not write image '{name}'"))
    }

    /// Reads this plugin's image `name` into memory; None if the checkpoint has none (see
    /// [`Host::open_image`] for large ones).
    pub fn read_image(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let mut len = 0usize;
        // SAFETY: as in `log`; a zero-capacity call only stores the size.
        let r = unsafe { (self.raw.svc.read_image)(self.raw.ctx, name.as_ptr(), name.len(), std::ptr::null_mut(), 0, &mut len) };
        match r {
            RCR_OK => {}
            RCR_NOT_MINE => return Ok(None),
            _ => return Err(format!("rcr could not read image '{name}'")),
        }
        let mut buf = vec![0u8; len];
        let mut got = 0usize;
        // SAFETY: `buf` has `len` writable bytes.
        let r = unsafe { (self.raw.svc.read_image)(self.raw.ctx, name.as_ptr(), name.len(), buf.as_mut_ptr(), buf.len(), &mut got) };
        if r != RCR_OK || got != len {
            return Err(format!("rcr could not read image '{name}' (it changed while read)"));
        }
        Ok(Some(buf))
    }

    /// The image file `name`, opened by rcr in `mode` (ABI 3); None if reading an image that is not there.
    fn image_open(&self, name: &str, mode: u32) -> Result<Option<std::fs::File>, String> {
        self.need(std::mem::offset_of!(Services, image_open), "streamed images", 3)?;
        let mut fd = -1i32;
        // SAFETY: as in `log`; `fd` is a writable int.
        let r = unsafe { (self.raw.svc.image_open)(self.raw.ctx, name.as_ptr(), name.len(), mode, &mut fd) };
        match r {
            RCR_OK if fd >= 0 => {
                // SAFETY: on success rcr hands over a new fd that the caller owns.
                Ok(Some(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
            }
            RCR_NOT_MINE if mode == RCR_IMAGE_READ => Ok(None),
            _ => Err(format!("rcr could not open image '{name}'")),
        }
    }

    /// Creates this plugin's image `name` (replacing it) for writing in pieces: GiBs of device memory
    /// never need to sit whole in anyone's memory (ABI 3).
    pub fn create_image(&self, name: &str) -> Result<std::fs::File, String> {
        self.image_open(name, RCR_IMAGE_WRITE)?.ok_or_else(|| format!("rcr could not create image '{name}'"))
    }

    /// Opens this plugin's image `name` for reading in pieces; None if the checkpoint has none (ABI 3).
    pub fn open_image(&self, name: &str) -> Result<Option<std::fs::File>, String> {
        self.image_open(name, RCR_IMAGE_READ)
    }

    /// Records that the checkpoint needs plugin `name` to be restored.
    pub fn need_plugin(&self, name: &str) -> Result<(), String> {
        // SAFETY: as in `log`.
        let r = unsafe { (self.raw.svc.need_plugin)(self.raw.ctx, name.as_ptr(), name.len()) };
        ok(r, || format!("rcr refused plugin name '{name}'"))
    }

    /// Puts `data` and, if given, a copy of `fd` under `key` in the fork-shared store (ABI 2).
    pub fn store_put(&self, key: &str, data: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), String> {
        self.need(std::mem::offset_of!(Services, store_put), "store", 2)?;
        let raw_fd = fd.map_or(-1, |f| f.as_raw_fd());
        // SAFETY: as in `log`; both buffers are valid for the call, the fd is only duplicated.
        let r = unsafe { (self.raw.svc.store_put)(self.raw.ctx, key.as_ptr(), key.len(), data.as_ptr(), data.len(), raw_fd) };
        ok(r, || format!("rcr could not store '{key}'"))
    }

    /// Gets what is stored under `key` (ABI 2): the bytes and a copy of the fd, if one was stored.
    pub fn store_get(&self, key: &str) -> Result<Option<StoreEntry>, String> {
        self.need(std::mem::offset_of!(Services, store_get), "store", 2)?;
        let mut len = 0usize;
        // SAFETY: as in `log`; a zero-capacity call without an fd slot only stores the size.
        let r = unsafe { (self.raw.svc.store_get)(self.raw.ctx, key.as_ptr(), key.len(), std::ptr::null_mut(), 0, &mut len, std::ptr::null_mut()) };
        match r {
            RCR_OK => {}
            RCR_NOT_MINE => return Ok(None),
            _ => return Err(format!("rcr could not get '{key}' from the store")),
        }
        let mut buf = vec![0u8; len];
        let (mut got, mut fd) = (0usize, -1i32);
        // SAFETY: `buf` has `len` writable bytes; `fd` is a writable int.
        let r = unsafe { (self.raw.svc.store_get)(self.raw.ctx, key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len(), &mut got, &mut fd) };
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
        self.need(std::mem::offset_of!(Services, run_thread), "thread control", 2)?;
        // SAFETY: as in `log`.
        let r = unsafe { (self.raw.svc.run_thread)(self.raw.ctx, pid, tid, timeout_ms) };
        ok(r, || format!("rcr could not run thread {tid} of pid {pid}"))
    }

    /// Runs system call `nr` with `args` (at most six; the rest are 0) inside the restored task `pid`
    /// and returns what it returned: a negative errno is `Ok(-errno)` (ABI 3; only in `restore_task`).
    pub fn task_syscall(&self, pid: i32, nr: i64, args: &[u64]) -> Result<i64, String> {
        self.need(std::mem::offset_of!(Services, task_syscall), "task services", 3)?;
        if args.len() > 6 {
            return Err(format!("task_syscall: {} arguments, a system call takes at most 6", args.len()));
        }
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let mut ret = 0i64;
        // SAFETY: as in `log`; `a` has six readable words and `ret` is writable.
        let r = unsafe { (self.raw.svc.task_syscall)(self.raw.ctx, pid, nr, a.as_ptr(), &mut ret) };
        ok(r, || format!("rcr could not run system call {nr} in pid {pid}"))?;
        Ok(ret)
    }

    /// Copies the restored task's memory at `addr` into `buf` (ABI 3; only in `restore_task`).
    pub fn task_read(&self, pid: i32, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        self.need(std::mem::offset_of!(Services, task_read), "task services", 3)?;
        // SAFETY: as in `log`; `buf` has its length of writable bytes.
        let r = unsafe { (self.raw.svc.task_read)(self.raw.ctx, pid, addr, buf.as_mut_ptr(), buf.len()) };
        ok(r, || format!("rcr could not read {} bytes at {addr:#x} of pid {pid}", buf.len()))
    }

    /// Copies `data` into the restored task's memory at `addr` (ABI 3; only in `restore_task`).
    pub fn task_write(&self, pid: i32, addr: u64, data: &[u8]) -> Result<(), String> {
        self.need(std::mem::offset_of!(Services, task_write), "task services", 3)?;
        // SAFETY: as in `log`; `data` is readable for its length.
        let r = unsafe { (self.raw.svc.task_write)(self.raw.ctx, pid, addr, data.as_ptr(), data.len()) };
        ok(r, || format!("rcr could not write {} bytes at {addr:#x} of pid {pid}", data.len()))
    }
}

pub(crate) fn bytes_str<'a>(p: *const u8, len: usize) -> &'a str {
    if p.is_null() || len == 0 {
        return "";
    }
    // SAFETY: rcr passes `len` readable bytes that outlive the call.
    let b = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(b).unwrap_or("")
}

/// A file offered to [`Plugin::dump_file`].
pub struct File<'a> {
    pub(crate) raw: &'a RcrFile,
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

/// A memory area offered to [`Plugin::dump_vma`] or passed to [`Plugin::update_vma`].
pub struct Vma<'a> {
    pub(crate) raw: &'a RcrVma,
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
    pub(crate) raw: &'a RcrMount,
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
    pub(crate) raw: &'a RcrLink,
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
