//! One context per command: a [`DumpCtx`] or a [`RestoreCtx`] carries the options, the cancellation,
//! the kernel features probed once at the start, the image set and the plugin host. The stages and the
//! modules they call take what they need from it instead of each a list of parameters.

use crate::check::Features;
use crate::checkpoint::Images;
use crate::image::ImageDir;
use crate::kinds::task::OwnPrivileges;
use crate::options::{Cancel, DumpOpts, RestoreOpts};
use crate::plugins::Plugins;
use crate::proc::ProcDir;
use crate::{Error, Result};
use std::path::Path;

/// Everything a dump works with besides the frozen tree.
pub struct DumpCtx<'a> {
    pub opts: &'a DumpOpts,
    /// Set by whoever may stop the dump (the CLI's signal handler): checked between the stages.
    pub cancel: Cancel,
    /// The kernel's features, probed before anything is frozen.
    pub features: Features,
    /// Where the images go.
    pub images: ImageDir,
    pub plugins: Plugins,
    /// What rcr can give back at restore: every task is checked against it before anything is killed.
    pub own: OwnPrivileges,
}

impl<'a> DumpCtx<'a> {
    /// Prepares the images directory, loads and initialises the plugins (a failing plugin stops the
    /// dump before anything is frozen), checks the target exists and reads what this rcr and this kernel
    /// can do.
    pub fn start(opts: &'a DumpOpts) -> Result<DumpCtx<'a>> {
        let (pid, dir) = (opts.pid, opts.images_dir.as_path());
        prepare_dir(dir)?;
        let mut plugins = Plugins::load(opts.plugin_dir.as_deref(), rcr_plugin_api::RCR_STAGE_DUMP, dir, &opts.to_json())?;
        plugins.init()?;
        ProcDir::open(pid).map_err(|e| Error::from(e).at_task(pid, "cannot dump it"))?;
        let features = Features::probe_for_dump()?;
        let own = OwnPrivileges::read()?;
        Ok(DumpCtx { opts, cancel: opts.cancel.clone(), features, images: ImageDir::new(dir), plugins, own })
    }

    pub fn dir(&self) -> &Path {
        self.images.path()
    }

    /// Stops the dump when it was cancelled, leaving the target running.
    pub fn check_cancelled(&self, pid: i32) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Interrupted { what: format!("dump of pid {pid}"), left: "the process was left running" });
        }
        Ok(())
    }
}

fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io { ctx: format!("cannot create images directory {}", dir.display()), source: e })?;
    let probe = dir.join(".rcr-write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::Io { ctx: format!("images directory {} is not writable", dir.display()), source: e })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Everything a restore works with besides the files and tasks it makes.
pub struct RestoreCtx<'a> {
    pub opts: &'a RestoreOpts,
    /// Checked before anything is started.
    pub cancel: Cancel,
    /// The kernel's features, probed before anything else.
    pub features: Features,
    /// Where the images are.
    pub images: ImageDir,
    /// The checkpoint, read and checked.
    pub img: Images,
    pub plugins: Plugins,
    /// What rcr itself has (its credentials: what every task it creates starts with).
    pub own: OwnPrivileges,
}

impl<'a> RestoreCtx<'a> {
    /// Probes the kernel, loads and initialises the plugins, reads the checkpoint; nothing starts if the
    /// checkpoint needs a plugin that is missing.
    pub fn start(opts: &'a RestoreOpts) -> Result<RestoreCtx<'a>> {
        let dir = opts.images_dir.as_path();
        let features = Features::probe_for_restore()?;
        let mut plugins = Plugins::load(opts.plugin_dir.as_deref(), rcr_plugin_api::RCR_STAGE_RESTORE, dir, &opts.to_json())?;
        plugins.init()?;
        let img = Images::load(dir)?;
        plugins.check_needed(&img.plugins)?;
        plugins.restore_init()?;
        let own = OwnPrivileges::read()?;
        Ok(RestoreCtx { opts, cancel: opts.cancel.clone(), features, images: ImageDir::new(dir), img, plugins, own })
    }

    pub fn dir(&self) -> &Path {
        self.images.path()
    }

    /// Fails when the restore was cancelled (before anything is started).
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Interrupted { what: "restore".into(), left: "nothing was started" });
        }
        Ok(())
    }
}

/// A failed restore step, named with its task.
pub fn step<T, E: Into<Error>>(pid: i32, what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| e.into().at_task(pid, format!("restore step '{what}' failed")))
}
