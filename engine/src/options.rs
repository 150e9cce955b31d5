//! Options of the engine's entry points. The CLI converts its arguments into these; every flag the CLI
//! accepts reaches one of these fields (or is refused by the CLI with an error).

use std::path::PathBuf;
use std::time::Duration;

/// Options for [`crate::dump::dump`].
#[derive(Debug, Clone)]
pub struct DumpOpts {
    /// Root of the tree to dump (`-t/--tree`).
    pub pid: i32,
    /// Where the images go (`-D/--images-dir`).
    pub images_dir: PathBuf,
    /// Leave the tree running after a successful dump (`-R/--leave-running`).
    pub leave_running: bool,
    /// The tree is a job of an interactive shell: its terminal is external (`--shell-job`).
    pub shell_job: bool,
    /// How long to wait for the tree to freeze (`--timeout`).
    pub freeze_timeout: Duration,
}

impl DumpOpts {
    /// Defaults for dumping `pid` into `images_dir`.
    pub fn new(pid: i32, images_dir: impl Into<PathBuf>) -> Self {
        DumpOpts {
            pid,
            images_dir: images_dir.into(),
            leave_running: false,
            shell_job: false,
            freeze_timeout: Duration::from_secs(10),
        }
    }
}

/// Options for [`crate::restore::restore`].
#[derive(Debug, Clone)]
pub struct RestoreOpts {
    /// Where the images are (`-D/--images-dir`).
    pub images_dir: PathBuf,
    /// Return once the tree runs instead of waiting for it (`-d/--restore-detached`).
    pub detached: bool,
    /// Write the root task's pid here (`--pidfile`).
    pub pidfile: Option<PathBuf>,
    /// Give the restored tree rcr's own terminal (`--shell-job`).
    pub shell_job: bool,
    /// How long each step in the restored task may take (`--timeout`).
    pub step_timeout: Duration,
}

impl RestoreOpts {
    /// Defaults for restoring from `images_dir`.
    pub fn new(images_dir: impl Into<PathBuf>) -> Self {
        RestoreOpts {
            images_dir: images_dir.into(),
            detached: false,
            pidfile: None,
            shell_job: false,
            step_timeout: Duration::from_secs(10),
        }
    }
}
