//! Options of the engine's entry points. The CLI converts its arguments into these; every flag the CLI
//! accepts reaches one of these fields (or is refused by the CLI with an error).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Cancellation of one command, shared with whoever may cancel it (the CLI's signal handler, a runtime's
/// RPC connection): the dump stops at its next step and leaves the target running. A value per command,
/// not a process-wide flag, so that two dumps in one process (a service) are cancelled apart.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the command to stop (async-signal-safe: one atomic store).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `--ghost-limit` when not given: 1 MiB, as criu.
pub const DEFAULT_GHOST_LIMIT: u64 = 1 << 20;

/// Options for [`crate::dump::dump`].
#[derive(Debug, Clone)]
pub struct DumpOpts {
    /// Root of the tree to dump (`-t/--tree`).
    pub pid: i32,
    /// Where the images go (`-D/--images-dir`).
    pub images_dir: PathBuf,
    /// Leave the tree running after a successful dump (`-R/--leave-running`).
    pub leave_running: bool,
    /// Leave the tree stopped (SIGSTOP) after a successful dump (`-s/--leave-stopped`).
    pub leave_stopped: bool,
    /// The tree is a job of an interactive shell: its terminal is external (`--shell-job`).
    pub shell_job: bool,
    /// How long to wait for the tree to freeze (`--timeout`).
    pub freeze_timeout: Duration,
    /// Load every plugin in this directory (`-L/--libdir`, `RCR_LIBS_DIR`); None: no plugins.
    pub plugin_dir: Option<PathBuf>,
    /// Largest deleted-but-open file saved with the checkpoint, in bytes of data (`--ghost-limit`).
    pub ghost_limit: u64,
    /// Find a deleted file's data extents with FIEMAP instead of SEEK_DATA (`--ghost-fiemap`).
    pub ghost_fiemap: bool,
    /// Save the file locks held (`--file-locks`); without it a held lock fails the dump.
    pub file_locks: bool,
    /// Keep a file unlinked from its path but linked elsewhere through a link made beside it (`--link-remap`).
    pub link_remap: bool,
    /// Unix sockets connected to sockets outside the tree are allowed (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Set to stop the dump at its next step (SIGINT/SIGTERM/SIGHUP to `rcr dump`).
    pub cancel: Cancel,
    /// Told at criu's action points (`--action-script`, RPC notifications).
    pub notify: crate::notify::Notifier,
}

impl DumpOpts {
    /// Defaults for dumping `pid` into `images_dir`.
    pub fn new(pid: i32, images_dir: impl Into<PathBuf>) -> Self {
        DumpOpts {
            pid,
            images_dir: images_dir.into(),
            leave_running: false,
            leave_stopped: false,
            shell_job: false,
            freeze_timeout: Duration::from_secs(10),
            plugin_dir: None,
            ghost_limit: DEFAULT_GHOST_LIMIT,
            ghost_fiemap: false,
            file_locks: false,
            link_remap: false,
            ext_unix_sk: false,
            cancel: Cancel::default(),
            notify: Default::default(),
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
    /// Let the restored tasks go stopped (SIGSTOP) instead of running (`-s/--leave-stopped`).
    pub leave_stopped: bool,
    /// Write the root task's pid here (`--pidfile`).
    pub pidfile: Option<PathBuf>,
    /// Give the restored tree rcr's own terminal (`--shell-job`).
    pub shell_job: bool,
    /// How long each step in the restored task may take (`--timeout`).
    pub step_timeout: Duration,
    /// Load every plugin in this directory (`-L/--libdir`, `RCR_LIBS_DIR`); None: no plugins.
    pub plugin_dir: Option<PathBuf>,
    /// `--file-locks`: accepted as criu does; the locks a checkpoint holds are always taken again.
    pub file_locks: bool,
    /// Unix sockets that were connected outside the tree are reconnected by name (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Told at criu's action points (`--action-script`, `--status-fd`, RPC notifications).
    pub notify: crate::notify::Notifier,
    /// Set to stop the restore before it starts anything.
    pub cancel: Cancel,
}

impl RestoreOpts {
    /// Defaults for restoring from `images_dir`.
    pub fn new(images_dir: impl Into<PathBuf>) -> Self {
        RestoreOpts {
            images_dir: images_dir.into(),
            detached: false,
            leave_stopped: false,
            pidfile: None,
            shell_job: false,
            step_timeout: Duration::from_secs(10),
            plugin_dir: None,
            file_locks: false,
            ext_unix_sk: false,
            notify: Default::default(),
            cancel: Cancel::default(),
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
            "leave_stopped": self.leave_stopped,
            "shell_job": self.shell_job,
            "ext_unix_sk": self.ext_unix_sk,
            "timeout_ms": self.freeze_timeout.as_millis() as u64,
            "ghost_limit": self.ghost_limit,
            "ghost_fiemap": self.ghost_fiemap,
            "file_locks": self.file_locks,
            "link_remap": self.link_remap,
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
            "leave_stopped": self.leave_stopped,
            "shell_job": self.shell_job,
            "ext_unix_sk": self.ext_unix_sk,
            "timeout_ms": self.step_timeout.as_millis() as u64,
            "file_locks": self.file_locks,
        })
        .to_string()
    }
}
