//! criu's `--action-script FILE` and `--status-fd FD`, as listeners of the engine's action points.

use rcr_engine::notify::{Action, ListenerError, Notify};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;

/// The scripts of `--action-script`, each run at every action with criu's environment:
/// `CRTOOLS_SCRIPT_ACTION` (the action's name), `CRTOOLS_IMAGE_DIR`, and `CRTOOLS_INIT_PID` once the
/// root task exists. A script that exits non-zero fails the action (criu's rule).
pub struct ActionScripts {
    pub scripts: Vec<PathBuf>,
    pub images_dir: PathBuf,
}

impl Notify for ActionScripts {
    fn notify(&self, action: Action, root_pid: Option<i32>) -> Result<(), ListenerError> {
        for script in &self.scripts {
            tracing::debug!("running action script {} for {}", script.display(), action.name());
            let mut cmd = std::process::Command::new(script);
            cmd.env("CRTOOLS_SCRIPT_ACTION", action.name()).env("CRTOOLS_IMAGE_DIR", &self.images_dir);
            if let Some(pid) = root_pid {
                cmd.env("CRTOOLS_INIT_PID", pid.to_string());
            }
            // A user's script: it runs as long as it needs, as criu's do.
            let status = cmd.status().map_err(|e| format!("cannot run action script {}: {e}", script.display()))?;
            if !status.success() {
                return Err(format!("action script {} {status}", script.display()).into());
            }
        }
        Ok(())
    }
}

/// `--status-fd FD`: a zero byte written to FD, which is then closed, once the restored tree runs.
pub struct StatusFd(Mutex<Option<OwnedFd>>);

impl StatusFd {
    /// Takes FD (an fd rcr inherited for this).
    pub fn new(fd: i32) -> Result<StatusFd, String> {
        // SAFETY: F_GETFD only reads the fd's flags; any int is a valid argument.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!("--status-fd {fd}: rcr has no fd {fd}"));
        }
        // SAFETY: fd is open (checked above), given to rcr for this use only, and owned from here on.
        Ok(StatusFd::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Takes an fd rcr opened (an RPC client's `status_fd`, reopened through /proc).
    pub fn from_fd(fd: OwnedFd) -> StatusFd {
        StatusFd(Mutex::new(Some(fd)))
    }
}

impl Notify for StatusFd {
    fn notify(&self, action: Action, _root: Option<i32>) -> Result<(), ListenerError> {
        if action != Action::PostResume {
            return Ok(());
        }
        Ok(self.ready()?)
    }
}

impl StatusFd {
    /// Writes the byte and closes the fd (once; later calls do nothing).
    pub fn ready(&self) -> Result<(), String> {
        let fd = self.0.lock().map_err(|_| "status fd lock poisoned".to_string())?.take();
        if let Some(fd) = fd {
            use std::io::Write;
            std::fs::File::from(fd).write_all(&[0]).map_err(|e| format!("writing the status fd: {e}"))?;
        }
        Ok(())
    }
}
