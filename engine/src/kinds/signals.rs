//! Signal state: dispositions (sigactions), the blocked mask, pending signals (per-thread and shared
//! queues, with their siginfo), and the alternate signal stack.

use crate::compel::{KernelSigaction, Remote, StackT, Tracee};
use crate::image::pb;
use crate::Result;

/// Highest signal number on Linux x86_64.
pub const SIGMAX: i32 = 64;

/// The signals whose disposition can be read and set (all but SIGKILL and SIGSTOP), in the order CRIU
/// stores them in `task_core.sigactions`.
pub fn sigaction_signals() -> impl Iterator<Item = i32> {
    (1..=SIGMAX).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
}

/// Reads every disposition through remote rt_sigaction calls.
pub fn dump_sigactions(remote: &mut Remote<'_>) -> Result<Vec<pb::SaEntry>> {
    let mut out = Vec::new();
    for sig in sigaction_signals() {
        let sa = remote.rt_sigaction_get(sig)?;
        out.push(pb::SaEntry {
            sigaction: sa.handler,
            flags: sa.flags,
            restorer: sa.restorer,
            mask: sa.mask,
            compat_sigaction: None,
            mask_extended: None,
        });
    }
    Ok(out)
}

/// Installs the dispositions in the restored task (which runs the calls itself).
pub fn restore_sigactions(remote: &mut Remote<'_>, sas: &[pb::SaEntry]) -> Result<()> {
    for (sig, sa) in sigaction_signals().zip(sas) {
        let k = KernelSigaction { handler: sa.sigaction, flags: sa.flags, restorer: sa.restorer, mask: sa.mask };
        remote.rt_sigaction_set(sig, &k)?;
    }
    Ok(())
}

/// Pending signals of one queue, as CRIU's signal_queue_entry (raw 128-byte siginfo each).
pub fn dump_queue(t: &Tracee, shared: bool) -> Result<Option<pb::SignalQueueEntry>> {
    let sigs = t.pending_signals(shared)?;
    if sigs.is_empty() {
        return Ok(None);
    }
    Ok(Some(pb::SignalQueueEntry {
        signals: sigs.into_iter().map(|s| pb::SiginfoEntry { siginfo: s.to_vec() }).collect(),
    }))
}

/// Queues the pending signals again, from inside the task (a task may queue any siginfo to itself).
/// Every signal is blocked while rcr drives the task, so nothing is delivered before it runs.
pub fn restore_queue(remote: &mut Remote<'_>, pid: i32, tid: i32, q: Option<&pb::SignalQueueEntry>, shared: bool) -> Result<()> {
    let Some(q) = q else { return Ok(()) };
    for s in &q.signals {
        if s.siginfo.len() < 128 {
            return Err(crate::Error::corrupt(format!("pid {pid}: a pending signal's siginfo is {} bytes, not 128", s.siginfo.len())));
        }
        let signo = i32::from_le_bytes([s.siginfo[0], s.siginfo[1], s.siginfo[2], s.siginfo[3]]);
        let addr = remote.scratch_put(&s.siginfo[..128])?;
        if shared {
            remote.syscall_ok(libc::SYS_rt_sigqueueinfo, &[pid as u64, signo as u64, addr])?;
        } else {
            remote.syscall_ok(libc::SYS_rt_tgsigqueueinfo, &[pid as u64, tid as u64, signo as u64, addr])?;
        }
    }
    Ok(())
}

/// The alternate signal stack, read in the task.
pub fn dump_sas(remote: &mut Remote<'_>) -> Result<pb::ThreadSasEntry> {
    let st = remote.sigaltstack_get()?;
    Ok(pb::ThreadSasEntry { ss_sp: st.sp, ss_size: st.size, ss_flags: st.flags as u32 })
}

/// Sets the alternate signal stack to what the image says, "none" (SS_DISABLE, or no entry) included:
/// a new process inherits the stack of the task it was forked from (rcr's own, whose memory is gone),
/// and the first SA_ONSTACK signal would then kill it. A new thread (`fresh_thread`: created with
/// CLONE_VM) starts with none, so "none" costs it no call. SS_ONSTACK is a state, not a setting: it is
/// dropped.
pub fn restore_sas(remote: &mut Remote<'_>, sas: Option<&pb::ThreadSasEntry>, fresh_thread: bool) -> Result<()> {
    let st = match sas {
        Some(s) if (s.ss_flags as i32) & libc::SS_DISABLE == 0 => {
            StackT { sp: s.ss_sp, size: s.ss_size, flags: (s.ss_flags as i32) & !libc::SS_ONSTACK }
        }
        _ if fresh_thread => return Ok(()),
        _ => StackT { sp: 0, size: 0, flags: libc::SS_DISABLE },
    };
    remote.sigaltstack_set(&st)?;
    Ok(())
}
