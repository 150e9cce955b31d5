//! What the generated shims ([`crate::shim`]) are made of: running a hook under `catch_unwind` and
//! turning its answer into the ABI's status and out-arguments.

use crate::*;
use std::os::fd::IntoRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Runs `f` with the host; never unwinds.
pub fn guard<I: Instance>(hook: &str, host: HostPtr, f: impl FnOnce(&I::P, &Host<'_>) -> Result<i32, String>) -> i32 {
    // SAFETY: `host` is the table rcr passed to this hook.
    let Some(h) = (unsafe { Host::from_raw(host) }) else {
        return RCR_ERROR;
    };
    match catch_unwind(AssertUnwindSafe(|| f(I::get(), &h))) {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => {
            h.set_error(&msg);
            RCR_ERROR
        }
        Err(p) => {
            let msg = format!("panicked in {hook}: {}", panic_text(&*p));
            // Setting the message must not unwind either.
            let _ = catch_unwind(AssertUnwindSafe(|| h.set_error(&msg)));
            RCR_ERROR
        }
    }
}

pub fn unit(r: Result<(), String>) -> Result<i32, String> {
    r.map(|()| RCR_OK)
}

pub fn claim(c: Claim) -> i32 {
    match c {
        Claim::Mine => RCR_OK,
        Claim::NotMine => RCR_NOT_MINE,
    }
}

/// A `Restored` as a status, the fd stored in `*fd`.
pub fn restored(h: &Host<'_>, r: Restored, fd: *mut i32) -> Result<i32, String> {
    match r {
        Restored::Fd(f) => {
            if fd.is_null() {
                return Err("rcr passed no place for the fd".into());
            }
            // SAFETY: rcr passes a writable i32; the fd's ownership passes to rcr.
            unsafe { *fd = f.into_raw_fd() };
            Ok(RCR_OK)
        }
        Restored::InTask => {
            if fd.is_null() {
                return Err("rcr passed no place for the fd".into());
            }
            // SAFETY: rcr passes a writable i32; -1 says that no fd is handed over.
            unsafe { *fd = -1 };
            Ok(RCR_OK)
        }
        Restored::NotMine => Ok(RCR_NOT_MINE),
        Restored::Retry(why) => {
            h.set_error(&why);
            Ok(RCR_RETRY)
        }
    }
}

pub fn text<'a>(p: *const u8, len: usize) -> &'a str {
    crate::host::bytes_str(p, len)
}
