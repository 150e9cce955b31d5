//! Task state that only ptrace exposes: queued signals, rseq and seccomp configuration.

use nix::errno::Errno;

use super::error::Result;
use super::sys;
use super::tracee::Tracee;

/// `rseq` registration of a task, from PTRACE_GET_RSEQ_CONFIGURATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RseqConfig {
    pub abi_pointer: u64,
    pub abi_size: u32,
    pub flags: u32,
    pub signature: u32,
}

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// One seccomp filter of a task (index 0 is the oldest, installed first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    /// Flags from PTRACE_SECCOMP_GET_METADATA (SECCOMP_FILTER_FLAG_LOG is the only one reported).
    pub flags: u64,
    pub insns: Vec<SockFilter>,
}

impl SeccompFilter {
    /// The program as the kernel's raw `sock_filter` array (8 bytes per instruction).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }
}

fn sock_filter_from_word(w: u64) -> SockFilter {
    let b = w.to_ne_bytes();
    SockFilter {
        code: u16::from_ne_bytes([b[0], b[1]]),
        jt: b[2],
        jf: b[3],
        k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
    }
}

impl Tracee {
    /// Raw `siginfo_t`s queued for the thread (`shared` = false) or its process. The thread's own
    /// list ends with the signals rcr took out of its queue while freezing it (signal-delivery-stops):
    /// they are still to be delivered.
    pub fn pending_signals(&self, shared: bool) -> Result<Vec<[u8; 128]>> {
        let mut out = Vec::new();
        let mut batch = vec![[0u8; sys::SIGINFO_SIZE]; 32];
        loop {
            let n = sys::peek_siginfo(self.tid(), out.len() as u64, shared, &mut batch)
                .map_err(self.err("PEEKSIGINFO"))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&batch[..n.min(batch.len())]);
        }
        if !shared {
            out.extend(self.deferred_siginfos());
        }
        Ok(out)
    }

    /// The task's rseq registration, None when it has none.
    pub fn rseq_config(&self) -> Result<Option<RseqConfig>> {
        let (abi_pointer, abi_size, signature, flags) =
            sys::rseq_config(self.tid()).map_err(self.err("GET_RSEQ_CONFIGURATION"))?;
        Ok((abi_pointer != 0).then_some(RseqConfig {
            abi_pointer,
            abi_size,
            flags,
            signature,
        }))
    }

    /// The task's seccomp filters, oldest first; empty when it has none.
    pub fn seccomp_filters(&self) -> Result<Vec<SeccompFilter>> {
        let mut out = Vec::new();
        for index in 0u64.. {
            let count = match sys::seccomp_get_filter(self.tid(), index, None) {
                Ok(n) => n,
                // EINVAL on the first index: the task is not in SECCOMP_MODE_FILTER.
                Err(Errno::EINVAL) if index == 0 => return Ok(out),
                Err(Errno::ENOENT) => return Ok(out),
                Err(e) => return Err(self.err("SECCOMP_GET_FILTER")(e)),
            };
            let mut words = vec![0u64; count];
            let got = sys::seccomp_get_filter(self.tid(), index, Some(&mut words))
                .map_err(self.err("SECCOMP_GET_FILTER"))?;
            words.truncate(got);
            let flags = sys::seccomp_get_metadata(self.tid(), index)
                .map_err(self.err("SECCOMP_GET_METADATA"))?;
            out.push(SeccompFilter {
                flags,
                insns: words.into_iter().map(sock_filter_from_word).collect(),
            });
        }
        Ok(out)
    }
}
