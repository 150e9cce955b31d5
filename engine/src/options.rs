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
    /// Load every plugin in this directory (`-L/--libdir`, `RCR_LIBS_DIR`); None: no plugins.
    pub plugin_dir: Option<PathBuf>,
    /// Unix sockets connected to sockets outside the tree are allowed (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
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
            plugin_dir: None,
            ext_unix_sk: false,
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
    /// Load every plugin in this directory (`-L/--libdir`, `RCR_LIBS_DIR`); None: no plugins.
    pub plugin_dir: Option<PathBuf>,
    /// Unix sockets that were connected outside the tree are reconnected by name (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
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
            plugin_dir: None,
            ext_unix_sk: false,
        }
    }
}

impl DumpOpts {
    /// What plugins see as the command's options (`rcr_host.options_json`).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "command": "dump",
            "pid": self.pid,
            "images_dir": self.images_dir,
            "leave_running": self.leave_running,
            "shell_job": self.shell_job,
            "ext_unix_sk": self.ext_unix_sk,
            "timeout_ms": self.freeze_timeout.as_millis() as u64,
        })
        .to_string()
    }
}

impl RestoreOpts {
    /// What plugins see as the command's options (`rcr_host.options_json`).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "command": "restore",
            "images_dir": self.images_dir,
            "detached": self.detached,
            "shell_job": self.shell_job,
            "ext_unix_sk": self.ext_unix_sk,
            "timeout_ms": self.step_timeout.as_millis() as u64,
        })
        .to_string()
    }
}
