//! The host services plugins call (the `struct rcr_host` table rcr gives each plugin), their state,
//! and what the engine lends them for the duration of a hook: thread control of a frozen task (the
//! dump, during `checkpoint_devices`) and a restored task's context (the restore, during
//! `restore_task`). Every service runs under `catch_unwind` and never unwinds into the plugin.

use super::load::valid_name;
use super::{api, PluginError, Plugins};
use crate::{Error, Result};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_void, CString};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;

/// A plugin's request that a service refuses.
fn refused(what: impl Into<String>) -> Error {
    PluginError::Refused(what.into()).into()
}

/// Thread control of frozen tasks, lent to the plugins by the dump while it calls `checkpoint_devices`.
pub trait ThreadControl {
    /// Lets thread `tid` of the frozen process `pid` run for `dur`, then stops it again.
    fn run_thread(&self, pid: i32, tid: i32, dur: std::time::Duration) -> Result<()>;
}

/// A restored task's context, lent to the plugins by the restore while it calls `restore_task`: system
/// calls run in the task, and its memory.
pub trait TaskControl {
    /// The process it acts in.
    fn pid(&self) -> i32;
    /// Runs system call `nr` in the task; its return value (a negative errno on failure).
    fn syscall(&mut self, nr: i64, args: &[u64; 6]) -> Result<i64>;
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;
    fn write(&self, addr: u64, data: &[u8]) -> Result<()>;
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
    pub fn put(&mut self, key: &str, data: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<()> {
        if !valid_name(key) {
            return Err(refused(format!("store key '{key}' is not 1-64 of [A-Za-z0-9._-]")));
        }
        if data.len() > STORE_MAX_BYTES {
            return Err(refused(format!("store entry '{key}' is {} bytes; the store holds at most {STORE_MAX_BYTES} per key", data.len())));
        }
        let fd = fd.map(|f| f.try_clone_to_owned().map_err(|e| Error::Io { ctx: format!("store entry '{key}': cannot duplicate fd {}", f.as_raw_fd()), source: e })).transpose()?;
        self.entries.insert(key.to_string(), (data.to_vec(), fd));
        Ok(())
    }

    /// The bytes under `key` and a new copy of its fd.
    pub fn get(&self, key: &str) -> Result<Option<StoreRef<'_>>> {
        let Some((data, fd)) = self.entries.get(key) else { return Ok(None) };
        let fd = fd.as_ref().map(|f| f.try_clone().map_err(|e| Error::Io { ctx: format!("store entry '{key}': cannot duplicate its fd"), source: e })).transpose()?;
        Ok(Some((data, fd)))
    }
}

/// The thread control lent for the current hook, if any.
type ThreadCtl = Cell<Option<*const (dyn ThreadControl + 'static)>>;
/// The task lent for the current hook, if any.
type TaskCtl = Cell<Option<*mut (dyn TaskControl + 'static)>>;

/// What every plugin of a command shares.
#[derive(Default)]
pub(super) struct Shared {
    /// Plugins the checkpoint needs (dump).
    pub needed: RefCell<BTreeSet<String>>,
    pub store: RefCell<Store>,
    threads: ThreadCtl,
    task: TaskCtl,
}

/// The per-plugin state behind `rcr_host.ctx`.
pub(super) struct Ctx {
    pub plugin: String,
    pub images_dir: PathBuf,
    /// The message set by the hook being run.
    pub error: RefCell<Option<String>>,
    pub shared: Rc<Shared>,
}

/// The table of one plugin; `ctx` must stay where it is for as long as the table is used.
pub(super) fn table(ctx: &Ctx, strings: &[CString; 3]) -> api::RcrHost {
    api::RcrHost {
        abi_version: api::ABI_VERSION,
        size: std::mem::size_of::<api::RcrHost>() as u32,
        ctx: (ctx as *const Ctx).cast_mut().cast::<c_void>(),
        run_id: strings[0].as_ptr(),
        images_dir: strings[1].as_ptr(),
        options_json: strings[2].as_ptr(),
        svc: SERVICES,
    }
}

/// The services, by name; the compiler checks that every declared service has one.
const SERVICES: api::Services = api::Services {
    log: svc_log,
    set_error: svc_set_error,
    write_image: svc_write_image,
    read_image: svc_read_image,
    need_plugin: svc_need_plugin,
    store_put: svc_store_put,
    store_get: svc_store_get,
    run_thread: svc_run_thread,
    image_open: svc_image_open,
    task_syscall: svc_task_syscall,
    task_read: svc_task_read,
    task_write: svc_task_write,
};

/// Runs a service for the plugin whose table has `ctx`: never unwinds; an error becomes `RCR_ERROR`
/// with its message set for the hook to return.
///
/// # Safety
/// `ctx` is the ctx of a loaded plugin's table (what the plugin passes back).
unsafe fn serve(ctx: *mut c_void, f: impl FnOnce(&Ctx) -> Result<i32>) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: guaranteed by the caller; the Ctx is boxed and outlives every hook call.
        let c = unsafe { &*(ctx as *const Ctx) };
        match f(c) {
            Ok(r) => r,
            Err(e) => {
                *c.error.borrow_mut() = Some(e.to_string());
                api::RCR_ERROR
            }
        }
    }))
    .unwrap_or(api::RCR_ERROR)
}

/// # Safety
/// `p` has `len` readable bytes (or is NULL with `len` 0).
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(p, len) }
}

/// # Safety
/// As [`bytes`].
unsafe fn text_arg(p: *const u8, len: usize) -> String {
    // SAFETY: guaranteed by the caller.
    String::from_utf8_lossy(unsafe { bytes(p, len) }).into_owned()
}

unsafe extern "C" fn svc_log(ctx: *mut c_void, level: u32, msg: *const u8, len: usize) {
    // SAFETY: the plugin passes back the ctx of its table and a buffer of `len` bytes.
    unsafe {
        serve(ctx, |c| {
            let m = text_arg(msg, len);
            match level {
                api::RCR_LOG_ERROR => tracing::error!("plugin {}: {m}", c.plugin),
                api::RCR_LOG_WARN => tracing::warn!("plugin {}: {m}", c.plugin),
                api::RCR_LOG_INFO => tracing::info!("plugin {}: {m}", c.plugin),
                _ => tracing::debug!("plugin {}: {m}", c.plugin),
            }
            Ok(api::RCR_OK)
        })
    };
}

unsafe extern "C" fn svc_set_error(ctx: *mut c_void, msg: *const u8, len: usize) {
    // SAFETY: as in svc_log.
    unsafe { serve(ctx, |_| Err(PluginError::Said(text_arg(msg, len)).into())) };
}

fn image_path(c: &Ctx, name: &str) -> Result<PathBuf> {
    if valid_name(name) {
        Ok(c.images_dir.join(format!("plugin-{}-{name}.data", c.plugin)))
    } else {
        Err(refused(format!("image name '{name}' is not 1-64 of [A-Za-z0-9._-]")))
    }
}

unsafe extern "C" fn svc_write_image(ctx: *mut c_void, name: *const u8, name_len: usize, data: *const u8, len: usize) -> i32 {
    // SAFETY: as in svc_log; the plugin passes `len` readable bytes at `data`.
    unsafe {
        serve(ctx, |c| {
            let path = image_path(c, &text_arg(name, name_len))?;
            let data = bytes(data, len);
            std::fs::write(&path, data).map_err(|e| Error::Io { ctx: format!("writing {}", path.display()), source: e })?;
            tracing::debug!("plugin {}: wrote {} ({} bytes)", c.plugin, path.display(), data.len());
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_read_image(ctx: *mut c_void, name: *const u8, name_len: usize, buf: *mut u8, cap: usize, len: *mut usize) -> i32 {
    // SAFETY: as in svc_log.
    unsafe {
        serve(ctx, |c| {
            let path = image_path(c, &text_arg(name, name_len))?;
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(api::RCR_NOT_MINE),
                Err(e) => return Err(Error::Io { ctx: format!("reading {}", path.display()), source: e }),
            };
            // SAFETY: the plugin passes a writable size_t (or null) and `cap` writable bytes at `buf`.
            copy_out(&data, buf, cap, len);
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_image_open(ctx: *mut c_void, name: *const u8, name_len: usize, mode: u32, fd: *mut i32) -> i32 {
    // SAFETY: as in svc_log.
    unsafe {
        serve(ctx, |c| {
            let path = image_path(c, &text_arg(name, name_len))?;
            if fd.is_null() {
                return Err(refused("image_open: no place for the fd"));
            }
            let file = match mode {
                api::RCR_IMAGE_WRITE => std::fs::File::create(&path).map_err(|e| Error::Io { ctx: format!("creating {}", path.display()), source: e })?,
                api::RCR_IMAGE_READ => match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(api::RCR_NOT_MINE),
                    Err(e) => return Err(Error::Io { ctx: format!("opening {}", path.display()), source: e }),
                },
                other => return Err(refused(format!("image_open: mode {other} is neither RCR_IMAGE_READ nor RCR_IMAGE_WRITE"))),
            };
            tracing::debug!("plugin {}: streams {} ({})", c.plugin, path.display(), if mode == api::RCR_IMAGE_WRITE { "writing" } else { "reading" });
            // SAFETY: the plugin passes a writable int; the fd's ownership passes to it.
            *fd = file.into_raw_fd();
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_need_plugin(ctx: *mut c_void, name: *const u8, len: usize) -> i32 {
    // SAFETY: as in svc_log.
    unsafe {
        serve(ctx, |c| {
            let name = text_arg(name, len);
            if !valid_name(&name) {
                return Err(refused(format!("plugin name '{name}' is not 1-64 of [A-Za-z0-9._-]")));
            }
            c.shared.needed.borrow_mut().insert(name);
            Ok(api::RCR_OK)
        })
    }
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

unsafe extern "C" fn svc_store_put(ctx: *mut c_void, key: *const u8, key_len: usize, data: *const u8, len: usize, fd: i32) -> i32 {
    // SAFETY: as in svc_write_image; the fd is only duplicated, during the call, while the plugin holds
    // it open.
    unsafe {
        serve(ctx, |c| {
            let key = text_arg(key, key_len);
            let data = bytes(data, len);
            let fd = (fd >= 0).then(|| BorrowedFd::borrow_raw(fd));
            c.shared.store.borrow_mut().put(&key, data, fd)?;
            tracing::debug!("plugin {}: stored '{key}' ({} bytes{})", c.plugin, data.len(), if fd.is_some() { " and an fd" } else { "" });
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_store_get(ctx: *mut c_void, key: *const u8, key_len: usize, buf: *mut u8, cap: usize, len: *mut usize, fd: *mut i32) -> i32 {
    // SAFETY: as in svc_read_image; `fd` is null or a writable int, and the copy's ownership passes to
    // the plugin.
    unsafe {
        serve(ctx, |c| {
            let key = text_arg(key, key_len);
            let store = c.shared.store.borrow();
            let Some((data, copy)) = store.get(&key)? else { return Ok(api::RCR_NOT_MINE) };
            copy_out(data, buf, cap, len);
            if !fd.is_null() {
                *fd = copy.map_or(-1, IntoRawFd::into_raw_fd);
            }
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_run_thread(ctx: *mut c_void, pid: i32, tid: i32, timeout_ms: u32) -> i32 {
    // SAFETY: as in svc_log.
    unsafe {
        serve(ctx, |c| {
            let Some(ctl) = c.shared.threads.get() else {
                return Err(refused("thread control is only available during checkpoint_devices (the dumper, tree frozen)"));
            };
            if timeout_ms > RUN_THREAD_MAX_MS {
                return Err(refused(format!("run_thread: {timeout_ms} ms is more than the {RUN_THREAD_MAX_MS} ms allowed")));
            }
            tracing::debug!("plugin {}: lets thread {tid} of pid {pid} run for {timeout_ms} ms", c.plugin);
            // SAFETY: the pointer is set only while `with_thread_control` borrows the controller.
            (*ctl).run_thread(pid, tid, std::time::Duration::from_millis(timeout_ms as u64))?;
            Ok(api::RCR_OK)
        })
    }
}

/// The task lent to `restore_task`, if it is `pid`.
fn lent_task(c: &Ctx, pid: i32) -> Result<*mut (dyn TaskControl + 'static)> {
    let t = c.shared.task.get().ok_or_else(|| refused("the task services are only available during restore_task (the restore master, the task traced)"))?;
    // SAFETY: the pointer is set only while `with_task` borrows the task.
    let lent = unsafe { (*t).pid() };
    if lent != pid {
        return Err(refused(format!("the task services act in pid {lent} during this restore_task, not in pid {pid}")));
    }
    Ok(t)
}

unsafe extern "C" fn svc_task_syscall(ctx: *mut c_void, pid: i32, nr: i64, args: *const u64, ret: *mut i64) -> i32 {
    // SAFETY: as in svc_log; the plugin passes six readable words at `args` and a writable `ret`.
    unsafe {
        serve(ctx, |c| {
            let t = lent_task(c, pid)?;
            if args.is_null() || ret.is_null() {
                return Err(refused("task_syscall: NULL args or ret"));
            }
            let a = *(args as *const [u64; 6]);
            // SAFETY: lent for this call (see lent_task); no other reference to it is live.
            let r = (*t).syscall(nr, &a)?;
            tracing::debug!("plugin {}: pid {pid}: system call {nr}{a:x?} = {r}", c.plugin);
            *ret = r;
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_task_read(ctx: *mut c_void, pid: i32, addr: u64, buf: *mut u8, len: usize) -> i32 {
    // SAFETY: as in svc_log; the plugin passes `len` writable bytes at `buf`.
    unsafe {
        serve(ctx, |c| {
            let t = lent_task(c, pid)?;
            if buf.is_null() && len > 0 {
                return Err(refused("task_read: NULL buffer"));
            }
            let b = if len == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(buf, len) };
            (*t).read(addr, b)?;
            Ok(api::RCR_OK)
        })
    }
}

unsafe extern "C" fn svc_task_write(ctx: *mut c_void, pid: i32, addr: u64, data: *const u8, len: usize) -> i32 {
    // SAFETY: as in svc_write_image.
    unsafe {
        serve(ctx, |c| {
            let t = lent_task(c, pid)?;
            (*t).write(addr, bytes(data, len))?;
            Ok(api::RCR_OK)
        })
    }
}

/// Sets `slot` to `p` while `f` runs; cleared after, also on unwind.
fn lend<P: Copy, R>(slot: &Cell<Option<P>>, p: P, f: impl FnOnce() -> R) -> R {
    struct Reset<'a, P: Copy>(&'a Cell<Option<P>>);
    impl<P: Copy> Drop for Reset<'_, P> {
        fn drop(&mut self) {
            self.0.set(None);
        }
    }
    slot.set(Some(p));
    let _reset = Reset(slot);
    f()
}

impl Plugins {
    /// Runs `f` (which calls `checkpoint_devices`) with thread control lent to the plugins: their
    /// `run_thread` goes to `ctl`. Outside `f`, `run_thread` fails.
    pub fn with_thread_control<R>(&self, ctl: &dyn ThreadControl, f: impl FnOnce() -> R) -> R {
        let p: *const (dyn ThreadControl + '_) = ctl;
        // SAFETY: only the lifetime bound is erased; `lend` clears the pointer (also on unwind) before
        // `ctl`'s borrow ends, and the services read it only while `f` runs.
        let p: *const (dyn ThreadControl + 'static) = unsafe { std::mem::transmute(p) };
        lend(&self.shared.threads, p, f)
    }

    /// Runs `f` (which calls `restore_task`) with `task` lent to the plugins' task services.
    pub(super) fn with_task<R>(&self, task: &mut dyn TaskControl, f: impl FnOnce() -> R) -> R {
        let p: *mut (dyn TaskControl + '_) = task;
        // SAFETY: as in with_thread_control; `task` is not used otherwise while `f` runs.
        let p: *mut (dyn TaskControl + 'static) = unsafe { std::mem::transmute(p) };
        lend(&self.shared.task, p, f)
    }
}
