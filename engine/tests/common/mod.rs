//! What the live tests of the engine share.

use nix::unistd::Pid;
use rcr_engine::sys;
use std::time::Duration;

/// How long a test waits for a child to be reaped.
pub const REAP: Duration = Duration::from_secs(10);

/// An idle child killed and reaped by PID on drop.
pub struct Child(pub Pid);

impl Child {
    pub fn spawn() -> Self {
        Child(sys::spawn_idle_child().unwrap())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = sys::kill_and_reap(self.0, REAP);
    }
}
