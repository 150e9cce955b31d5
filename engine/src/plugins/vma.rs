//! Device memory areas (`dump_vma` at dump, `update_vma` at restore).
//!
//! A claimed area is recorded like CRIU records one: `VMA_EXT_PLUGIN` in its status, no pages saved, and
//! its `shmid` is the id of an `ext_file_entry` in files.img naming the plugin. That id is what both
//! hooks receive, so the plugin keys its own image by it.

use super::{api, Claimed, PluginError, Plugins};
use crate::image::pb;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

impl Plugins {
    /// Whether any plugin has `dump_vma` (else the core need not offer areas).
    pub fn wants_vmas(&self) -> bool {
        self.plugins.iter().any(|p| p.hooks.dump_vma.is_some())
    }

    /// Dump: offers memory area `v` of `pid` to the plugins in order, as the id `new_id` gives. The claim
    /// of the first that says "mine": the caller records it (an `ext_file_entry`, [`Claimed::file_entry`])
    /// and the area with its id as `shmid`. None if no plugin claimed it.
    pub fn dump_vma(&self, pid: i32, v: &crate::proc::Vma, new_id: &mut dyn FnMut() -> u32) -> Result<Option<Claimed>, PluginError> {
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
        let id = new_id();
        for p in &self.plugins {
            let Some(f) = p.hooks.dump_vma else { continue };
            // SAFETY: a hook of a loaded plugin, with its host table and an area valid for the call.
            let res = p.call(|h| unsafe { f(h, &raw, id) });
            let what = || format!("pid {pid}: memory area {:#x}-{:#x} {path}", v.start, v.end);
            if p.claimed("dump_vma", res).map_err(|e| PluginError::Vma { what: what(), msg: e.to_string() })? {
                tracing::info!("{} claimed by plugin '{}' as file id {id}", what(), p.info.name);
                self.record_need(p);
                return Ok(Some(Claimed { id, plugin: p.info.name.clone() }));
            }
        }
        Ok(None)
    }

    /// Restore, before forking: asks the plugin that claimed each area `(pid, vma, its ext entry)` for
    /// the fd to map it from and its file offset. Returns them by the area's `shmid`; no fd: the plugin
    /// maps the area itself, inside the task, in `restore_task` (ABI 3), and the core leaves its place
    /// empty.
    pub fn update_vmas(&self, wanted: &[(i32, &pb::VmaEntry, &pb::ExtFileEntry)]) -> Result<BTreeMap<u64, (Option<OwnedFd>, u64)>, PluginError> {
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
            let owned = p.take_fd("update_vma", fd, true).map_err(err)?;
            if offset % crate::image::pagemap::PAGE_SIZE != 0 {
                return Err(err(format!("plugin '{name}': update_vma returned offset {offset:#x}, which is not page-aligned")));
            }
            match owned {
                Some(_) => tracing::info!("{what}: plugin '{name}' maps it from its fd at offset {offset:#x}"),
                None => tracing::info!("{what}: plugin '{name}' maps it itself, inside the task (restore_task)"),
            }
            out.insert(v.shmid, (owned, offset));
        }
        Ok(out)
    }
}
