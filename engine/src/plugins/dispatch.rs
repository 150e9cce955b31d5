//! Calling the hooks: one plugin's call and its status, the broadcast hooks, and the files plugins
//! claim (`dump_file`, `restore_file`).

use super::{api, Loaded, OfferedFd, PluginError, Plugins};
use crate::image::pb;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An object a plugin claimed at dump: the id it got and the plugin. The caller records it (for a file
/// or an area, [`Claimed::file_entry`] in files.img).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: u32,
    pub plugin: String,
}

impl Claimed {
    /// The `ext_file_entry` that records the claim in files.img.
    pub fn file_entry(&self) -> pb::FileEntry {
        pb::FileEntry {
            r#type: pb::FdTypes::Ext as i32,
            id: self.id,
            ext: Some(pb::ExtFileEntry { id: self.id, fown: pb::FownEntry::default(), rcr_plugin: Some(self.plugin.clone()) }),
            ..Default::default()
        }
    }
}

impl Loaded {
    pub(super) fn err(&self, hook: &'static str, msg: String) -> PluginError {
        PluginError::Hook { name: self.info.name.clone(), file: self.info.file.clone(), hook, msg }
    }

    /// Runs a hook with a fresh error slot; returns its status and message.
    pub(super) fn call(&self, f: impl FnOnce(api::HostPtr) -> i32) -> (i32, Option<String>) {
        *self.ctx.error.borrow_mut() = None;
        let r = f((&*self.table as *const api::RcrHost).cast::<api::RcrHostOpaque>());
        (r, self.ctx.error.borrow_mut().take())
    }

    /// A claim hook's status: Ok(true) mine, Ok(false) not mine, or the error.
    pub(super) fn claimed(&self, hook: &'static str, res: (i32, Option<String>)) -> Result<bool, PluginError> {
        match res.0 {
            api::RCR_OK => Ok(true),
            api::RCR_NOT_MINE => Ok(false),
            _ => self.status(hook, res).map(|()| false),
        }
    }

    /// A broadcast hook's status as a result.
    pub(super) fn status(&self, hook: &'static str, (r, msg): (i32, Option<String>)) -> Result<(), PluginError> {
        match r {
            api::RCR_OK => Ok(()),
            api::RCR_ERROR => Err(self.err(hook, msg.unwrap_or_else(|| "failed (no message)".into()))),
            other => Err(self.err(hook, format!("returned {other}, which this hook does not allow{}", msg.map(|m| format!(" ({m})")).unwrap_or_default()))),
        }
    }

    /// Takes the fd a hook handed over in `raw`: Ok(None) for -1 where the hook may leave it to
    /// `restore_task` (`deferred_ok`, ABI 3), an error for a missing or closed fd.
    pub(super) fn take_fd(&self, hook: &str, raw: i32, deferred_ok: bool) -> Result<Option<OwnedFd>, String> {
        let name = &self.info.name;
        if raw < 0 {
            if deferred_ok && self.info.abi_version >= 3 {
                return Ok(None);
            }
            return Err(format!("plugin '{name}' ({}): {hook} returned success but no fd", self.info.file.display()));
        }
        // SAFETY: the plugin handed the fd over to rcr (the hook's contract).
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // The fd must be open: a plugin bug must not make rcr close someone else's fd later.
        // SAFETY: fcntl(F_GETFD) on an int; no memory involved.
        if unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFD) } < 0 {
            std::mem::forget(owned);
            return Err(format!("plugin '{name}': {hook} returned fd {raw}, which is not open"));
        }
        Ok(Some(owned))
    }
}

pub(super) fn many(mut errs: Vec<PluginError>) -> Result<(), PluginError> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(PluginError::Many(errs)),
    }
}

impl Plugins {
    /// Calls `call` on every plugin that has the hook `pick` picks; every error, collected.
    fn broadcast<F: Copy>(&self, hook: &'static str, pick: impl Fn(&api::HookSet) -> Option<F>, call: impl Fn(F, api::HostPtr) -> i32) -> Result<(), PluginError> {
        let errs: Vec<PluginError> = self.plugins.iter().filter_map(|p| pick(&p.hooks).and_then(|f| p.status(hook, p.call(|h| call(f, h))).err())).collect();
        many(errs)
    }

    /// Calls every plugin's `init`. A failing init is an error naming the plugin and its file.
    pub fn init(&mut self) -> Result<(), PluginError> {
        let stage = self.stage;
        for p in &self.plugins {
            if let Some(f) = p.hooks.init {
                // SAFETY: a hook of a loaded plugin, called with its host table.
                p.status("init", p.call(|h| unsafe { f(h, stage) }))?;
            }
        }
        self.initialized = true;
        Ok(())
    }

    /// Calls every plugin's `fini` once (later calls do nothing), with the stage's outcome.
    pub fn fini(&mut self, ok: bool) -> Result<(), PluginError> {
        if !self.initialized || self.finished {
            return Ok(());
        }
        self.finished = true;
        let stage = self.stage;
        // SAFETY: a hook of a loaded plugin, called with its host table.
        self.broadcast("fini", |h| h.fini, |f, h| unsafe { f(h, stage, ok as i32) })
    }

    pub(super) fn broadcast_pid(&self, hook: &'static str, pick: fn(&api::HookSet) -> Option<api::fns::pause_devices>, pid: i32) -> Result<(), PluginError> {
        // SAFETY: a hook of a loaded plugin, called with its host table.
        self.broadcast(hook, pick, |f, h| unsafe { f(h, pid) })
    }

    /// Dump: before the task is frozen.
    pub fn pause_devices(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("pause_devices", |h| h.pause_devices, pid)
    }
    /// Dump: the task is frozen; before its files and memory are dumped.
    pub fn checkpoint_devices(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("checkpoint_devices", |h| h.checkpoint_devices, pid)
    }
    /// Dump: every task is dumped; before the inventory is written.
    pub fn dump_devices_late(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("dump_devices_late", |h| h.dump_devices_late, pid)
    }
    /// Restore: the task was just created (stopped).
    pub fn post_forking(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("post_forking", |h| h.post_forking, pid)
    }
    /// Restore: memory and files are restored; before the task runs.
    pub fn resume_devices_late(&self, pid: i32) -> Result<(), PluginError> {
        self.broadcast_pid("resume_devices_late", |h| h.resume_devices_late, pid)
    }
    /// Restore: the images are read; before any file is opened or task created.
    pub fn restore_init(&self) -> Result<(), PluginError> {
        // SAFETY: a hook of a loaded plugin, called with its host table.
        self.broadcast("restore_init", |h| h.restore_init, |f, h| unsafe { f(h) })
    }

    /// Notes that the checkpoint needs the plugin that claimed an object.
    pub(super) fn record_need(&self, p: &Loaded) {
        self.shared.needed.borrow_mut().insert(p.info.name.clone());
    }

    /// Dump: offers fd `file` to the plugins in order, as the id `new_id` gives (asked only if a plugin
    /// has `dump_file`). The claim of the first that says "mine", for the caller to record (see
    /// [`Claimed::file_entry`]); None if no plugin claimed it.
    pub fn dump_file(&self, file: &OfferedFd<'_>, new_id: &mut dyn FnMut() -> u32) -> Result<Option<Claimed>, PluginError> {
        if !self.plugins.iter().any(|p| p.hooks.dump_file.is_some()) {
            return Ok(None);
        }
        let (pid, fd, path) = (file.pid, file.fd, file.path);
        let id = new_id();
        let raw = file.raw();
        for p in &self.plugins {
            let Some(f) = p.hooks.dump_file else { continue };
            // SAFETY: a hook of a loaded plugin, with its host table and a file valid for the call.
            let res = p.call(|h| unsafe { f(h, &raw, id) });
            if p.claimed("dump_file", res).map_err(|e| PluginError::File { id, fd: fd as u32, msg: e.to_string() })? {
                tracing::info!("pid {pid}: fd {fd} ({path}) claimed by plugin '{}' as file id {id}", p.info.name);
                self.record_need(p);
                return Ok(Some(Claimed { id, plugin: p.info.name.clone() }));
            }
        }
        Ok(None)
    }

    /// Restore: one step of plugin file `id` (fd number `fd`, entry `e`), a node of the restore graph
    /// ([`crate::graph`]): the plugin its entry names (or, for an entry naming none, the plugins in
    /// order) opens it in rcr. `Ok(Ok(Some(fd)))`: opened; `Ok(Ok(None))`: its plugin opens it inside
    /// the task, in `restore_task` (ABI 3), and the core installs nothing at its number;
    /// `Ok(Err(reason))`: the plugin asked to be called again (`RCR_RETRY`) after other objects.
    pub fn restore_file(&self, id: u32, fd: u32, e: &pb::ExtFileEntry) -> Result<Result<Option<OwnedFd>, String>, PluginError> {
        let file_err = |msg: String| PluginError::File { id, fd, msg };
        let candidates: Vec<&Loaded> = match &e.rcr_plugin {
            Some(name) => vec![self.by_name(name).ok_or_else(|| file_err(format!("needs plugin '{name}', which is not loaded")))?],
            None => self.plugins.iter().collect(),
        };
        for p in candidates {
            let Some(f) = p.hooks.restore_file else {
                if e.rcr_plugin.is_some() {
                    return Err(file_err(format!("plugin '{}' ({}) has no restore_file hook", p.info.name, p.info.file.display())));
                }
                continue;
            };
            let mut newfd: i32 = -1;
            // SAFETY: a hook of a loaded plugin, with its host table and a writable int.
            match p.call(|h| unsafe { f(h, id, &mut newfd) }) {
                (api::RCR_OK, _) => {
                    let owned = p.take_fd("restore_file", newfd, true).map_err(file_err)?;
                    match &owned {
                        Some(_) => tracing::info!("file id {id} (fd {fd}) restored by plugin '{}'", p.info.name),
                        None => tracing::info!("file id {id} (fd {fd}): plugin '{}' opens it inside the task (restore_task)", p.info.name),
                    }
                    return Ok(Ok(owned));
                }
                (api::RCR_NOT_MINE, _) => {
                    if e.rcr_plugin.is_some() {
                        return Err(file_err(format!("plugin '{}' ({}) does not know this file (restore_file: not mine)", p.info.name, p.info.file.display())));
                    }
                }
                (api::RCR_RETRY, why) => return Ok(Err(why.unwrap_or_else(|| "(no reason given)".into()))),
                other => return Err(file_err(p.status("restore_file", other).err().map(|e| e.to_string()).unwrap_or_default())),
            }
        }
        Err(file_err("no plugin restores this file".into()))
    }
}
