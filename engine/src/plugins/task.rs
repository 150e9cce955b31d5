//! Acting inside a restored task (ABI 3): the `restore_task` hook, called while rcr is the task's
//! tracer, with the task's context lent to the plugins' task services (`task_syscall`, `task_read`,
//! `task_write`). Some kernel objects belong to the process that created them (AMD's KFD answers EBADF
//! to anyone else): a plugin opens, ioctls and maps them through these, in the task itself.

use super::{PluginError, Plugins, TaskControl};
use crate::compel::Remote;

/// A restored task's context over rcr's remote system calls in it.
pub struct InTask<'r, 'a> {
    pid: i32,
    remote: &'r mut Remote<'a>,
}

impl<'r, 'a> InTask<'r, 'a> {
    pub fn new(pid: i32, remote: &'r mut Remote<'a>) -> Self {
        InTask { pid, remote }
    }
}

impl TaskControl for InTask<'_, '_> {
    fn pid(&self) -> i32 {
        self.pid
    }
    fn syscall(&mut self, nr: i64, args: &[u64; 6]) -> crate::Result<i64> {
        Ok(self.remote.syscall(nr, args)?)
    }
    fn read(&self, addr: u64, buf: &mut [u8]) -> crate::Result<()> {
        Ok(self.remote.tracee().read_mem(addr, buf)?)
    }
    fn write(&self, addr: u64, data: &[u8]) -> crate::Result<()> {
        Ok(self.remote.tracee().write_mem(addr, data)?)
    }
}

impl Plugins {
    /// Whether any plugin has `restore_task` (else the restore need not offer tasks).
    pub fn wants_tasks(&self) -> bool {
        self.plugins.iter().any(|p| p.hooks.restore_task.is_some())
    }

    /// Restore, per process, rcr its tracer, its memory and fds in place: every plugin's `restore_task`,
    /// with `task` lent to the task services for the call.
    pub fn restore_task(&self, task: &mut dyn TaskControl) -> Result<(), PluginError> {
        if !self.wants_tasks() {
            return Ok(());
        }
        let pid = task.pid();
        self.with_task(task, || self.broadcast_pid("restore_task", |h| h.restore_task, pid)).map_err(|e| PluginError::Task { pid, msg: e.to_string() })
    }
}

impl Plugins {
    /// Dump, while freezing: asks the plugins in order whether kernel-owned thread `tid` (`comm`) of
    /// `pid` may stay as it is; the name of the first that says so (the checkpoint then needs it).
    pub fn kernel_thread_may_stay(&self, pid: i32, tid: i32, comm: &str) -> Result<Option<String>, PluginError> {
        let what = format!("pid {pid}: thread {tid} ({comm}), run by the kernel");
        // SAFETY: a hook of a loaded plugin, with its host table and a name valid for the call.
        self.claim_first("kernel_thread", &what, |p| p.hooks.kernel_thread.map(|f| p.call(|h| unsafe { f(h, pid, tid, comm.as_ptr(), comm.len()) })))
    }
}
