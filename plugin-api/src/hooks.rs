//! The hooks, declared once, in ABI order (append-only). Each entry's doc says which process calls it
//! and when; `[N]` is the ABI version that added it. Everything else about a hook — its `extern "C"`
//! type, its place in the C descriptor and in the Rust root module, its [`Plugin`] method and shim, its
//! line in `include/rcr_plugin.h` — follows from its entry here (see [`crate::declare`]).

use crate::shim_support::{claim, restored, text, unit};
use crate::*;
use std::os::fd::IntoRawFd;

declare_hooks! {
    /// The dumper or the restore master, right after every plugin is loaded, before anything else.
    [1] init(stage: u32)
        => { fn init(&self, host: &Host<'_>, stage: Stage) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.init(h, Stage::from_raw(stage)));
    /// The dumper or the restore master, at the end of the stage; `ok` is 1 if the stage succeeded. For
    /// restore it runs once the restored tree runs (or after the restore failed).
    [1] fini(stage: u32, ok: i32)
        => { fn fini(&self, host: &Host<'_>, stage: Stage, ok: bool) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.fini(h, Stage::from_raw(stage), ok != 0));
    /// The dumper, before the task is frozen.
    [1] pause_devices(pid: i32)
        => { fn pause_devices(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.pause_devices(h, pid));
    /// The dumper, the tree frozen, before this process's files and memory are dumped; `run_thread`
    /// works here.
    [1] checkpoint_devices(pid: i32)
        => { fn checkpoint_devices(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.checkpoint_devices(h, pid));
    /// The dumper, task frozen, for every fd before the core handles it. `RCR_OK` claims the file (save
    /// its state keyed by `id`), `RCR_NOT_MINE` passes.
    [1] dump_file(file: *const RcrFile, id: u32)
        => { fn dump_file(&self, host: &Host<'_>, file: &File<'_>, id: u32) -> Result<Claim, String> { Ok(Claim::NotMine) } }
        |p, h| Ok(claim(p.dump_file(h, &File { raw: deref(file, "file")? }, id)?));
    /// The dumper, after every task is dumped, before the inventory is written.
    [1] dump_devices_late(pid: i32)
        => { fn dump_devices_late(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.dump_devices_late(h, pid));
    /// The restore master, after the images are read, before any file is opened or task forked.
    [1] restore_init()
        => { fn restore_init(&self, host: &Host<'_>) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.restore_init(h));
    /// The restore master, before forking: open the file dumped as `id` and store the fd in `*fd`
    /// (ownership passes to rcr; the restored task inherits it, rcr moves it to its number and sets its
    /// FD_CLOEXEC). `RCR_RETRY` asks to be called again after the other files. ABI 3: `RCR_OK` with
    /// `*fd` left at -1 means the plugin opens the file inside the task, in `restore_task`, at its number.
    [1] restore_file(id: u32, fd: *mut i32)
        => { fn restore_file(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> { Ok(Restored::NotMine) } }
        |p, h| restored(h, p.restore_file(h, id)?, fd);
    /// The restore master, right after the task is created (stopped, still a copy of rcr).
    [1] post_forking(pid: i32)
        => { fn post_forking(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.post_forking(h, pid));
    /// The restore master, after the task's memory, files and state are restored, before it runs.
    [1] resume_devices_late(pid: i32) #[sabi(last_prefix_field)]
        => { fn resume_devices_late(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.resume_devices_late(h, pid));
    /// The dumper, task frozen, for every memory area the core cannot handle itself (device memory, a
    /// mapping of an anon-inode or of a file under /dev). `RCR_OK` claims it: save what you need keyed
    /// by `id`; the core records the area as the plugin's (`VMA_EXT_PLUGIN`, no pages saved).
    [2] dump_vma(vma: *const RcrVma, id: u32) #[sabi(missing_field(default))]
        => { fn dump_vma(&self, host: &Host<'_>, vma: &Vma<'_>, id: u32) -> Result<Claim, String> { Ok(Claim::NotMine) } }
        |p, h| Ok(claim(p.dump_vma(h, &Vma { raw: deref(vma, "area")? }, id)?));
    /// The restore master, after every file is restored, before the task is created; once per area the
    /// plugin claimed. Store in `*fd` an fd to map the area from (ownership passes to rcr, which maps it
    /// at the area's address) and, if it changed, the file offset in `*offset` (preset to the dumped
    /// one). ABI 3: `*fd` left at -1 means the plugin maps the area itself, in `restore_task`.
    [2] update_vma(id: u32, vma: *const RcrVma, fd: *mut i32, offset: *mut u64) #[sabi(missing_field(default))]
        => {
            /// `Ok(None)`: not this plugin's area.
            fn update_vma(&self, host: &Host<'_>, id: u32, vma: &Vma<'_>) -> Result<Option<VmaMapping>, String> { Ok(None) }
        }
        |p, h| mapped(p.update_vma(h, id, &Vma { raw: deref(vma, "area")? })?, fd, offset);
    /// The dumper, task frozen: a unix socket whose peer is outside the dumped tree (`peer_ino`, 0 if
    /// unknown). Claim it to save it yourself.
    [2] dump_ext_unix_sk(file: *const RcrFile, peer_ino: u64, id: u32) #[sabi(missing_field(default))]
        => { fn dump_ext_unix_sk(&self, host: &Host<'_>, file: &File<'_>, peer_ino: u64, id: u32) -> Result<Claim, String> { Ok(Claim::NotMine) } }
        |p, h| Ok(claim(p.dump_ext_unix_sk(h, &File { raw: deref(file, "file")? }, peer_ino, id)?));
    /// The restore master, before forking: the socket dumped as `id`, opened (connected) in rcr; `*fd`
    /// as in `restore_file`.
    [2] restore_ext_unix_sk(id: u32, fd: *mut i32) #[sabi(missing_field(default))]
        => { fn restore_ext_unix_sk(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> { Ok(Restored::NotMine) } }
        |p, h| restored(h, p.restore_ext_unix_sk(h, id)?, fd);
    /// The dumper: a mount of the task's mount namespace that rcr cannot describe itself.
    [2] dump_ext_mount(mnt: *const RcrMount, id: u32) #[sabi(missing_field(default))]
        => { fn dump_ext_mount(&self, host: &Host<'_>, mnt: &Mount<'_>, id: u32) -> Result<Claim, String> { Ok(Claim::NotMine) } }
        |p, h| Ok(claim(p.dump_ext_mount(h, &Mount { raw: deref(mnt, "mount")? }, id)?));
    /// The restore master, before forking: mount what was dumped as `id` at `mountpoint` (a path in the
    /// restore master's mount namespace, `len` bytes, not NUL-terminated).
    [2] restore_ext_mount(id: u32, mountpoint: CText, len: usize) #[sabi(missing_field(default))]
        => {
            /// `Claim::Mine`: mounted at `mountpoint`.
            fn restore_ext_mount(&self, host: &Host<'_>, id: u32, mountpoint: &str) -> Result<Claim, String> { Ok(Claim::NotMine) }
        }
        |p, h| Ok(claim(p.restore_ext_mount(h, id, text(mountpoint, len))?));
    /// The dumper: a network link that rcr cannot create itself (a veth whose peer is outside, a device).
    [2] dump_ext_link(link: *const RcrLink, id: u32) #[sabi(missing_field(default))]
        => { fn dump_ext_link(&self, host: &Host<'_>, link: &Link<'_>, id: u32) -> Result<Claim, String> { Ok(Claim::NotMine) } }
        |p, h| Ok(claim(p.dump_ext_link(h, &Link { raw: deref(link, "link")? }, id)?));
    /// The restore master, before forking: create the link dumped as `id`, named `name` (`len` bytes),
    /// in the network namespace rcr is in.
    [2] restore_ext_link(id: u32, name: CText, len: usize) #[sabi(missing_field(default))]
        => {
            /// `Claim::Mine`: the link exists, named `name`.
            fn restore_ext_link(&self, host: &Host<'_>, id: u32, name: &str) -> Result<Claim, String> { Ok(Claim::NotMine) }
        }
        |p, h| Ok(claim(p.restore_ext_link(h, id, text(name, len))?));
    /// The restore master, once per restored process, while rcr is its tracer: its memory is mapped and
    /// filled and its fds are at their numbers; its threads, credentials, signal state and registers
    /// are not restored yet. The task services (`task_syscall`, `task_read`, `task_write`) act in
    /// process `pid` only during this call: open a device, issue ioctls, map memory in the task's own
    /// context. Leave the task's fds and memory as the image has them, except what you add.
    [3] restore_task(pid: i32) #[sabi(missing_field(default))]
        => { fn restore_task(&self, host: &Host<'_>, pid: i32) -> Result<(), String> { Ok(()) } }
        |p, h| unit(p.restore_task(h, pid));
    /// The dumper, while it freezes the tree: thread `tid` of process `pid` is one the kernel runs for
    /// the task (`comm`, `len` bytes: io_uring's `iou-sqp-*`, `iou-wrk-*`), which ptrace cannot stop.
    /// `RCR_OK` says it may stay as it is (not frozen, not dumped): answer so for the workers of an
    /// object your plugin checkpoints (the io_uring whose fd it claims), and recreate them with it.
    /// Unclaimed, the dump fails naming the thread.
    [3] kernel_thread(pid: i32, tid: i32, comm: CText, len: usize) #[sabi(missing_field(default))]
        => {
            /// `Claim::Mine`: the thread may stay as it is.
            fn kernel_thread(&self, host: &Host<'_>, pid: i32, tid: i32, comm: &str) -> Result<Claim, String> { Ok(Claim::NotMine) }
        }
        |p, h| Ok(claim(p.kernel_thread(h, pid, tid, text(comm, len))?));
}

/// The argument `p`, which rcr passes valid for the call, as a reference.
fn deref<'a, T>(p: *const T, what: &str) -> Result<&'a T, String> {
    // SAFETY: rcr passes a valid object (or NULL) that outlives the call.
    unsafe { p.as_ref() }.ok_or_else(|| format!("rcr passed no {what}"))
}

/// `update_vma`'s answer as a status, the fd and offset stored.
fn mapped(m: Option<VmaMapping>, fd: *mut i32, offset: *mut u64) -> Result<i32, String> {
    let Some(m) = m else { return Ok(RCR_NOT_MINE) };
    if fd.is_null() || offset.is_null() {
        return Err("rcr passed no place for the fd".into());
    }
    // SAFETY: rcr passes writable slots; the fd's ownership passes to rcr.
    unsafe {
        *offset = m.offset;
        *fd = m.fd.map_or(-1, IntoRawFd::into_raw_fd);
    }
    Ok(RCR_OK)
}
