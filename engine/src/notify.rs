//! The points of a dump or a restore that criu announces to its action scripts (`--action-script`)
//! and to RPC clients (runc's notifications): the caller is told at each, and may stop the command there
//! as a failing criu script does.

use std::sync::Arc;

/// One announced point, with criu's name for it (`CRTOOLS_SCRIPT_ACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Before the tree is frozen; an error stops the dump with nothing touched.
    PreDump,
    /// Every image is written, the tree still frozen; an error leaves the tree running and fails the
    /// dump (a migration's script may say "do not kill it").
    PostDump,
    /// Before anything of the restore is started; an error stops it.
    PreRestore,
    /// The root task exists (criu: its namespaces are made); an error kills the restored tasks.
    SetupNamespaces,
    PostSetupNamespaces,
    /// Every task is restored, none runs yet; an error kills them.
    PostRestore,
    /// Right before the tasks run; an error is logged only (criu's too).
    PreResume,
    /// The tasks run; an error is logged only.
    PostResume,
}

impl Action {
    /// criu's name (`pre-dump`, `post-restore`...).
    pub fn name(self) -> &'static str {
        match self {
            Action::PreDump => "pre-dump",
            Action::PostDump => "post-dump",
            Action::PreRestore => "pre-restore",
            Action::SetupNamespaces => "setup-namespaces",
            Action::PostSetupNamespaces => "post-setup-namespaces",
            Action::PostRestore => "post-restore",
            Action::PreResume => "pre-resume",
            Action::PostResume => "post-resume",
        }
    }
}

/// A listener's failure, kept as the source of the command's error.
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// Told at each [`Action`]: the action and the root task's pid (once it exists). An error stops the
/// command where the action says.
pub trait Notify: Send + Sync {
    fn notify(&self, action: Action, root_pid: Option<i32>) -> Result<(), ListenerError>;
}

/// The command's listeners (none by default).
#[derive(Clone, Default)]
pub struct Notifier(Vec<Arc<dyn Notify>>);

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({} listener(s))", self.0.len())
    }
}

impl Notifier {
    pub fn add(&mut self, n: Arc<dyn Notify>) {
        self.0.push(n);
    }

    /// Tells every listener; the first error is the command's, naming the action.
    pub fn at(&self, action: Action, root_pid: Option<i32>) -> crate::Result<()> {
        for n in &self.0 {
            n.notify(action, root_pid).map_err(|source| crate::Error::Action { action: action.name(), source })?;
        }
        Ok(())
    }

    /// Tells every listener where criu only logs a failure (pre-resume, post-resume).
    pub fn at_logged(&self, action: Action, root_pid: Option<i32>) {
        if let Err(e) = self.at(action, root_pid) {
            tracing::error!("{e}");
        }
    }
}
