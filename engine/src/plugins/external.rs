//! Objects that are external to the dump: a unix socket whose peer is outside the dumped tree, a mount
//! rcr cannot describe, a network link it cannot create. The core's modules for these call the claim
//! methods here at dump (the first plugin in order that says "mine" owns the object; the caller records
//! the returned plugin name with the object in its own image) and the restore methods, with that name,
//! before forking.

use super::{api, Loaded, PluginError, Plugins};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// An open file as the plugins are offered it (see [`api::RcrFile`]).
pub struct OfferedFd<'a> {
    pub pid: i32,
    pub fd: i32,
    /// Its /proc/PID/fd link.
    pub path: &'a str,
    /// rcr's copy of it.
    pub local: BorrowedFd<'a>,
    pub st: &'a libc::stat,
    /// open flags (fdinfo `flags:`).
    pub flags: u32,
    pub pos: u64,
    /// Its /proc/PID/fdinfo text.
    pub fdinfo: &'a str,
}

impl OfferedFd<'_> {
    /// The ABI's view (it borrows from `self`).
    pub(super) fn raw(&self) -> api::RcrFile {
        api::RcrFile {
            pid: self.pid,
            fd: self.fd,
            local_fd: self.local.as_raw_fd(),
            flags: self.flags,
            mode: self.st.st_mode,
            reserved: 0,
            pos: self.pos,
            dev: self.st.st_dev,
            ino: self.st.st_ino,
            rdev: self.st.st_rdev,
            path: self.path.as_ptr(),
            path_len: self.path.len(),
            fdinfo: self.fdinfo.as_ptr(),
            fdinfo_len: self.fdinfo.len(),
        }
    }
}

/// A mount as [`Plugins::claim_ext_mount`] offers it.
pub struct ExtMount<'a> {
    pub mnt_id: i32,
    pub mountpoint: &'a str,
    pub root: &'a str,
    pub fstype: &'a str,
    pub source: &'a str,
}

impl Plugins {
    /// Asks the plugins in order with `call` (None: the plugin lacks the hook); the name of the first
    /// that claims the object, which the checkpoint then needs.
    pub(super) fn claim_first(&self, hook: &'static str, what: &str, call: impl Fn(&Loaded) -> Option<(i32, Option<String>)>) -> Result<Option<String>, PluginError> {
        for p in &self.plugins {
            let Some(res) = call(p) else { continue };
            if p.claimed(hook, res).map_err(|e| PluginError::Ext { what: what.to_string(), msg: e.to_string() })? {
                tracing::info!("{what} claimed by plugin '{}'", p.info.name);
                self.record_need(p);
                return Ok(Some(p.info.name.clone()));
            }
        }
        Ok(None)
    }

    /// The plugin `name` and its hook picked by `pick`, or an error saying which is missing.
    fn owner<T>(&self, name: &str, hook: &str, what: &str, pick: impl Fn(&Loaded) -> Option<T>) -> Result<(&Loaded, T), PluginError> {
        let err = |msg: String| PluginError::Ext { what: what.to_string(), msg };
        let p = self.by_name(name).ok_or_else(|| err(format!("needs plugin '{name}', which is not loaded")))?;
        let f = pick(p).ok_or_else(|| err(format!("plugin '{name}' ({}) has no {hook} hook", p.info.file.display())))?;
        Ok((p, f))
    }

    /// The result of a restore claim hook that must say "mine".
    fn must_claim(p: &Loaded, hook: &'static str, what: &str, res: (i32, Option<String>)) -> Result<(), PluginError> {
        let err = |msg: String| PluginError::Ext { what: what.to_string(), msg };
        if p.claimed(hook, res).map_err(|e| err(e.to_string()))? {
            Ok(())
        } else {
            Err(err(format!("plugin '{}' does not know it ({hook}: not mine)", p.info.name)))
        }
    }

    /// Dump, for the core's unix sockets: offers socket `sk` whose peer (inode `peer_ino`, 0 if
    /// unknown) is outside the dump to the plugins (`dump_ext_unix_sk`), as file id `id`. Returns the
    /// name of the plugin that claimed it: record it with the socket and give it back to
    /// [`Plugins::restore_ext_unix_sk`]. None: no plugin claimed it (the caller fails or handles it).
    pub fn claim_ext_unix_sk(&self, sk: &OfferedFd<'_>, peer_ino: u64, id: u32) -> Result<Option<String>, PluginError> {
        if !self.plugins.iter().any(|p| p.hooks.dump_ext_unix_sk.is_some()) {
            return Ok(None);
        }
        let raw = sk.raw();
        let what = format!("pid {}: fd {} ({}), an external unix socket", sk.pid, sk.fd, sk.path);
        // SAFETY: a hook of a loaded plugin, with its host table and a file valid for the call.
        self.claim_first("dump_ext_unix_sk", &what, |p| p.hooks.dump_ext_unix_sk.map(|f| p.call(|h| unsafe { f(h, &raw, peer_ino, id) })))
    }

    /// Restore, before forking: plugin `plugin` opens the external unix socket dumped as `id`.
    pub fn restore_ext_unix_sk(&self, plugin: &str, id: u32) -> Result<OwnedFd, PluginError> {
        let what = format!("external unix socket (file id {id})");
        let (p, f) = self.owner(plugin, "restore_ext_unix_sk", &what, |p| p.hooks.restore_ext_unix_sk)?;
        let mut fd = -1i32;
        // SAFETY: a hook of a loaded plugin, with its host table and a writable int.
        Self::must_claim(p, "restore_ext_unix_sk", &what, p.call(|h| unsafe { f(h, id, &mut fd) }))?;
        let owned = p.take_fd("restore_ext_unix_sk", fd, false).map_err(|msg| PluginError::Ext { what: what.clone(), msg })?;
        owned.ok_or(PluginError::Ext { what, msg: format!("plugin '{plugin}' returned no fd") })
    }

    /// Dump, for the core's mounts: offers a mount external to the dump to the plugins
    /// (`dump_ext_mount`) as id `id`; the name of the plugin that claimed it (see
    /// [`Plugins::claim_ext_unix_sk`]).
    pub fn claim_ext_mount(&self, m: &ExtMount<'_>, id: u32) -> Result<Option<String>, PluginError> {
        let raw = api::RcrMount {
            mnt_id: m.mnt_id,
            reserved: 0,
            mountpoint: m.mountpoint.as_ptr(),
            mountpoint_len: m.mountpoint.len(),
            root: m.root.as_ptr(),
            root_len: m.root.len(),
            fstype: m.fstype.as_ptr(),
            fstype_len: m.fstype.len(),
            source: m.source.as_ptr(),
            source_len: m.source.len(),
        };
        let what = format!("mount {} at {} ({} from {})", m.mnt_id, m.mountpoint, m.fstype, m.source);
        // SAFETY: a hook of a loaded plugin, with its host table and a mount valid for the call.
        self.claim_first("dump_ext_mount", &what, |p| p.hooks.dump_ext_mount.map(|f| p.call(|h| unsafe { f(h, &raw, id) })))
    }

    /// Restore, before forking: plugin `plugin` mounts what it dumped as `id` at `mountpoint`.
    pub fn restore_ext_mount(&self, plugin: &str, id: u32, mountpoint: &str) -> Result<(), PluginError> {
        let what = format!("external mount {id} at {mountpoint}");
        let (p, f) = self.owner(plugin, "restore_ext_mount", &what, |p| p.hooks.restore_ext_mount)?;
        // SAFETY: a hook of a loaded plugin, with its host table and a buffer valid for the call.
        Self::must_claim(p, "restore_ext_mount", &what, p.call(|h| unsafe { f(h, id, mountpoint.as_ptr(), mountpoint.len()) }))
    }

    /// Dump, for the core's network links: offers link `name` (ifindex, rtnetlink kind) to the plugins
    /// (`dump_ext_link`) as id `id`; the name of the plugin that claimed it.
    pub fn claim_ext_link(&self, ifindex: i32, name: &str, kind: &str, id: u32) -> Result<Option<String>, PluginError> {
        let raw = api::RcrLink { ifindex, reserved: 0, name: name.as_ptr(), name_len: name.len(), kind: kind.as_ptr(), kind_len: kind.len() };
        let what = format!("network link {name} (index {ifindex}, kind '{kind}')");
        // SAFETY: a hook of a loaded plugin, with its host table and a link valid for the call.
        self.claim_first("dump_ext_link", &what, |p| p.hooks.dump_ext_link.map(|f| p.call(|h| unsafe { f(h, &raw, id) })))
    }

    /// Restore, before forking: plugin `plugin` creates the link it dumped as `id`, named `name`.
    pub fn restore_ext_link(&self, plugin: &str, id: u32, name: &str) -> Result<(), PluginError> {
        let what = format!("external network link {name} (id {id})");
        let (p, f) = self.owner(plugin, "restore_ext_link", &what, |p| p.hooks.restore_ext_link)?;
        // SAFETY: a hook of a loaded plugin, with its host table and a buffer valid for the call.
        Self::must_claim(p, "restore_ext_link", &what, p.call(|h| unsafe { f(h, id, name.as_ptr(), name.len()) }))
    }
}
