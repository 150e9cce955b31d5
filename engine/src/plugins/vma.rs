//! Device memory areas (`dump_vma` at dump, `update_vma` at restore) and thread control of frozen
//! tasks (the `run_thread` service, lent by the dump during `checkpoint_devices`).
//!
//! A claimed area is recorded like CRIU records one: `VMA_EXT_PLUGIN` in its status, no pages saved, and
//! its `shmid` is the id of an `ext_file_entry` in files.img naming the plugin. That id is what both
//! hooks receive, so the plugin keys its own image by it.

use super::{api, Loaded, PluginError, Plugins, ThreadControl};
use crate::image::pb;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

impl Plugins {
    /// Whether any plugin has `dump_vma` (else the core need not offer areas).
    pub fn wants_vmas(&self) -> bool {
        self.plugins.iter().any(|p| p.hooks.dump_vma.is_some())
    }

    /// Dump: offers memory area `v` of `pid` to the plugins in order. The first that claims it gets file
    /// id `id`, recorded in `files` as an `ext_file_entry` naming it; the caller records the area with
    /// that id as its `shmid`. None if no plugin claimed it.
    pub fn dump_vma(&self, pid: i32, v: &crate::proc::Vma, files: &mut crate::kinds::FileTable) -> Result<Option<u32>, PluginError> {
        if !self.wants_vmas() {
            return Ok(None);
        }
        let path = v.path.clone().unwrap_or_default();
        let vm_flags = v.vm_flags.names().join(" ");
        let mut prot = 0;
        for (on, bit) in [(v.read, libc::PROT_READ), (v.write, libc::PROT_WRITE), (v.exec, libc::PROT_EXEC)] {
            if on {
                prot |= bit;
            }
        }
        let raw = api::RcrVma {
            pid,
            prot: prot as u32,
            flags: if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE } as u32,
            reserved: 0,
            start: v.start,
            end: v.end,
            offset: v.pgoff,
            dev: libc::makedev(v.dev_major, v.dev_minor),
            ino: v.inode,
            path: path.as_ptr(),
            path_len: path.len(),
            vm_flags: vm_flags.as_ptr(),
            vm_flags_len: vm_flags.len(),
        };
        let id = files.next_id();
        for p in &self.plugins {
            let Some(f) = p.hooks.dump_vma else { continue };
            // SAFETY: a hook of a loaded plugin, with its host table and an area valid for the call.
            let res = p.call(|h| unsafe { f(h, &raw, id) });
            let what = || format!("pid {pid}: memory area {:#x}-{:#x} {path}", v.start, v.end);
            if p.claimed("dump_vma", res).map_err(|e| PluginError::Vma { what: what(), msg: e.to_string() })? {
                tracing::info!("{} claimed by plugin '{}' as file id {id}", what(), p.info.name);
                self.record_claim(p, id, files);
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Adds the `ext_file_entry` of an object `p` claimed, and notes that the checkpoint needs `p`.
    pub(super) fn record_claim(&self, p: &Loaded, id: u32, files: &mut crate::kinds::FileTable) {
        self.needed.borrow_mut().insert(p.info.name.clone());
        files.files.push(pb::FileEntry {
            r#type: pb::FdTypes::Ext as i32,
            id,
            ext: Some(pb::ExtFileEntry { id, fown: pb::FownEntry::default(), rcr_plugin: Some(p.info.name.clone()) }),
            ..Default::default()
        });
    }

    /// Restore, before forking: asks the plugin that claimed each area `(pid, vma, its ext entry)` for
    /// the fd to map it from and its file offset. Returns them by the area's `shmid`.
    pub fn update_vmas(&self, wanted: &[(i32, &pb::VmaEntry, &pb::ExtFileEntry)]) -> Result<BTreeMap<u64, (OwnedFd, u64)>, PluginError> {
        let mut out = BTreeMap::new();
        for &(pid, v, e) in wanted {
            let what = format!("pid {pid}: memory area {:#x}-{:#x}", v.start, v.end);
            let err = |msg: String| PluginError::Vma { what: what.clone(), msg };
            let name = e.rcr_plugin.as_deref().ok_or_else(|| err(format!("file id {} names no plugin", v.shmid)))?;
            let p = self.by_name(name).ok_or_else(|| err(format!("needs plugin '{name}', which is not loaded")))?;
            let f = p.hooks.update_vma.ok_or_else(|| err(format!("plugin '{name}' ({}) has no update_vma hook", p.info.file.display())))?;
            let raw = api::RcrVma {
                pid,
                prot: v.prot,
                flags: v.flags & (libc::MAP_SHARED | libc::MAP_PRIVATE) as u32,
                reserved: 0,
                start: v.start,
                end: v.end,
                offset: v.pgoff,
                dev: 0,
                ino: 0,
                path: std::ptr::null(),
                path_len: 0,
                vm_flags: std::ptr::null(),
                vm_flags_len: 0,
            };
            let (mut fd, mut offset) = (-1i32, v.pgoff);
            // SAFETY: a hook of a loaded plugin, with its host table, an area valid for the call and
            // writable slots.
            let res = p.call(|h| unsafe { f(h, v.shmid as u32, &raw, &mut fd, &mut offset) });
            if !p.claimed("update_vma", res).map_err(|e| err(e.to_string()))? {
                return Err(err(format!("plugin '{name}' does not know this area (update_vma: not mine)")));
            }
            if fd < 0 {
                return Err(err(format!("plugin '{name}': update_vma returned success but no fd to map")));
            }
            // SAFETY: the plugin handed the fd over to rcr (update_vma's contract).
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: fcntl(F_GETFD) on an int; no memory involved.
            if unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFD) } < 0 {
                std::mem::forget(owned);
                return Err(err(format!("plugin '{name}': update_vma returned fd {fd}, which is not open")));
            }
            if offset % crate::kinds::mem::PAGE_SIZE != 0 {
                return Err(err(format!("plugin '{name}': update_vma returned offset {offset:#x}, which is not page-aligned")));
            }
            tracing::info!("{what}: plugin '{name}' maps it from its fd at offset {offset:#x}");
            out.insert(v.shmid, (owned, offset));
        }
        Ok(out)
    }

    /// Runs `f` (which calls `checkpoint_devices`) with thread control lent to the plugins: their
    /// `run_thread` goes to `ctl`. Outside `f`, `run_thread` fails.
    pub fn with_thread_control<R>(&self, ctl: &dyn ThreadControl, f: impl FnOnce() -> R) -> R {
        struct Reset<'a>(&'a super::ThreadCtl);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        let p: *const (dyn ThreadControl + '_) = ctl;
        // SAFETY: only the lifetime bound is erased; the pointer is cleared (by `Reset`, also on unwind)
        // before `ctl`'s borrow ends, and the services read it only while `f` runs.
        let p: *const (dyn ThreadControl + 'static) = unsafe { std::mem::transmute(p) };
        self.threads.set(Some(p));
        let _reset = Reset(&self.threads);
        f()
    }
}
