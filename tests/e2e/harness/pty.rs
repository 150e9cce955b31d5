//! A pseudo-terminal for shell-job subjects, with a thread collecting what arrives on the master.
//!
//! Opened by hand (posix_openpt & co.) rather than with openpty(3) so that both ends are
//! O_CLOEXEC from the start: other tests fork concurrently and must not inherit them.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Pty {
    pub master: Arc<OwnedFd>,
    pub slave: OwnedFd,
    pub slave_name: String,
    output: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

fn last_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl Pty {
    pub fn open() -> Pty {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: posix_openpt returns a new fd or -1.
        let m = unsafe { libc::posix_openpt(flags) };
        assert!(m >= 0, "{}", last_err("posix_openpt"));
        // SAFETY: m is a fresh fd we own.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // SAFETY: grantpt/unlockpt take the master fd.
        assert_eq!(unsafe { libc::grantpt(m) }, 0, "{}", last_err("grantpt"));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::unlockpt(m) }, 0, "{}", last_err("unlockpt"));
        let mut buf = [0 as libc::c_char; 128];
        // SAFETY: ptsname_r writes a NUL-terminated name into buf, within its length.
        assert_eq!(unsafe { libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) }, 0, "{}", last_err("ptsname_r"));
        // SAFETY: ptsname_r succeeded, so buf holds a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
        // SAFETY: open with a valid C string.
        let s = unsafe { libc::open(name.as_ptr(), flags) };
        assert!(s >= 0, "{}", last_err("open pty slave"));
        // SAFETY: s is a fresh fd we own.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        let master = Arc::new(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (master, output, stop) = (master.clone(), output.clone(), stop.clone());
            std::thread::spawn(move || read_loop(&master, &output, &stop))
        };
        Pty {
            master,
            slave,
            slave_name: name.to_string_lossy().into_owned(),
            output,
            stop,
            reader: Some(reader),
        }
    }

    /// Everything read from the master so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

/// Reads the master until stopped; poll() with a timeout so that the stop flag is seen.
fn read_loop(master: &OwnedFd, output: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let fd = master.as_raw_fd();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP without data: no slave open right now (between dump and restore).
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // SAFETY: reading into a valid buffer of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            output.lock().unwrap().extend_from_slice(&buf[..n as usize]);
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// Held by the tests that restore a pty pair at its pts index, and by those that open ptys: the
/// kernel gives a new pty the lowest free index, so a pty opened by a parallel test between a dump
/// and its restore would take the index the restore needs (the restore then fails, as it must).
pub fn pts_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
