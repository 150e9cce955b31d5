//! Waiting for ptrace stops: a pure decoder of wait statuses and a polling loop.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::error::{CompelError, Result};
use super::sys;

/// The kind of ptrace-stop a traced task is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Signal-delivery-stop: the task is about to receive this signal.
    Signal(i32),
    /// Group-stop of a seized task (PTRACE_EVENT_STOP with a stop signal).
    Group(i32),
    /// PTRACE_EVENT_STOP with SIGTRAP: after PTRACE_INTERRUPT (or a seize of a running task).
    Interrupt,
    /// Any other PTRACE_EVENT_* stop.
    Event { event: i32, sig: i32 },
    /// Syscall-enter/exit-stop (reported as SIGTRAP|0x80 with PTRACE_O_TRACESYSGOOD).
    Syscall,
}

/// A decoded wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Stopped(Stop),
    Exited(i32),
    Killed { sig: i32, core: bool },
    Continued,
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// Decodes a raw `waitpid` status (the W* macros of `<sys/wait.h>`, plus ptrace events).
pub fn decode_status(status: i32) -> Status {
    if status & 0x7f == 0 {
        return Status::Exited((status >> 8) & 0xff);
    }
    if status == 0xffff {
        return Status::Continued;
    }
    if status & 0xff == 0x7f {
        let sig = (status >> 8) & 0xff;
        let event = (status >> 16) & 0xff;
        let stop = match event {
            0 if sig == libc::SIGTRAP | 0x80 => Stop::Syscall,
            0 => Stop::Signal(sig),
            libc::PTRACE_EVENT_STOP if is_stop_signal(sig) => Stop::Group(sig),
            libc::PTRACE_EVENT_STOP => Stop::Interrupt,
            _ => Stop::Event { event, sig },
        };
        return Status::Stopped(stop);
    }
    Status::Killed {
        sig: status & 0x7f,
        core: status & 0x80 != 0,
    }
}

/// Waits (polling with backoff) until `tid` reports a ptrace-stop, at most `timeout`.
/// An exit or a kill of the task is an error naming `what` we were doing.
pub fn wait_stop(tid: i32, timeout: Duration, what: &'static str) -> Result<Stop> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(50);
    loop {
        match sys::wait_nohang(tid) {
            Ok(Some(raw)) => match decode_status(raw) {
                Status::Stopped(stop) => return Ok(stop),
                Status::Exited(code) => {
                    return Err(CompelError::Exited {
                        tid,
                        how: format!("exited with status {code}"),
                        what,
                    })
                }
                Status::Killed { sig, .. } => {
                    return Err(CompelError::Exited {
                        tid,
                        how: format!("was killed by signal {sig}"),
                        what,
                    })
                }
                Status::Continued => continue,
            },
            Ok(None) => {}
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                return Err(CompelError::Wait {
                    tid,
                    source: Errno::ECHILD,
                })
            }
            Err(e) => return Err(CompelError::Wait { tid, source: e }),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(CompelError::Timeout { tid, what, timeout });
        }
        // A remote syscall is usually over within microseconds: poll by yielding the CPU first (a
        // sleep would cost far more than the call), and back off to sleeping only after that.
        if elapsed < Duration::from_micros(500) {
            std::thread::yield_now();
            continue;
        }
        std::thread::sleep(delay.min(timeout - elapsed));
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_statuses() {
        assert_eq!(decode_status(0), Status::Exited(0));
        assert_eq!(decode_status(3 << 8), Status::Exited(3));
        assert_eq!(
            decode_status(9),
            Status::Killed {
                sig: 9,
                core: false
            }
        );
        assert_eq!(
            decode_status(0x8b),
            Status::Killed {
                sig: 11,
                core: true
            }
        );
        assert_eq!(decode_status(0xffff), Status::Continued);
        // signal-delivery-stop of SIGTRAP and of a real-time signal
        assert_eq!(decode_status(0x057f), Status::Stopped(Stop::Signal(5)));
        assert_eq!(
            decode_status((40 << 8) | 0x7f),
            Status::Stopped(Stop::Signal(40))
        );
        // syscall stop with TRACESYSGOOD
        assert_eq!(decode_status(0x857f), Status::Stopped(Stop::Syscall));
        // PTRACE_EVENT_STOP: interrupt (SIGTRAP) and group stop (SIGSTOP)
        assert_eq!(
            decode_status((128 << 16) | 0x057f),
            Status::Stopped(Stop::Interrupt)
        );
        assert_eq!(
            decode_status((128 << 16) | 0x137f),
            Status::Stopped(Stop::Group(19))
        );
        // PTRACE_EVENT_EXEC
        assert_eq!(
            decode_status((4 << 16) | 0x057f),
            Status::Stopped(Stop::Event { event: 4, sig: 5 })
        );
    }
}
