//! An example rcr plugin, written in Rust, that a device vendor can copy.
//!
//! The toy "device" is an eventfd used as a counter: its whole state is the counter (and its flags).
//! rcr's core does not know eventfds, so without this plugin a dump of a process that has one open
//! fails with "a kind of file rcr cannot checkpoint yet and no plugin claimed it". With it:
//!
//! - `dump_file` (in `rcr dump`, task frozen): claims fds whose target is `anon_inode:[eventfd]`,
//!   reads the counter from fdinfo (`eventfd-count`, hex) and saves it in the plugin's own image
//!   `eventfd-<file id>`, a few `key=value` lines.
//! - `restore_file` (in `rcr restore`, before the task is created): reads that image and creates an
//!   eventfd with the same counter and flags; the restored task inherits it.
//!
//! The C version (plugins/example-c) does the same with the same name and image format, so a
//! checkpoint made with one restores with the other.

use rcr_plugin_api::{export_plugin, Claim, File, Host, Plugin, Restored, Stage};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The plugin's name: recorded in checkpoints that need it.
pub const NAME: &str = "example-eventfd";

/// The state of one toy device, as saved in its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceState {
    pub count: u64,
    pub nonblock: bool,
    pub semaphore: bool,
}

impl DeviceState {
    /// Reads the state from the text of /proc/PID/fdinfo/FD.
    pub fn from_fdinfo(file: &File<'_>) -> Result<DeviceState, String> {
        let count = file.fdinfo_field("eventfd-count").ok_or("fdinfo has no eventfd-count")?;
        let count = u64::from_str_radix(count, 16).map_err(|e| format!("eventfd-count '{count}': {e}"))?;
        let semaphore = file.fdinfo_field("eventfd-semaphore").is_some_and(|v| v != "0");
        Ok(DeviceState { count, nonblock: file.flags() & libc::O_NONBLOCK as u32 != 0, semaphore })
    }

    pub fn to_text(self) -> String {
        format!("count={}\nnonblock={}\nsemaphore={}\n", self.count, u8::from(self.nonblock), u8::from(self.semaphore))
    }

    pub fn from_text(text: &str) -> Result<DeviceState, String> {
        let mut s = DeviceState { count: 0, nonblock: false, semaphore: false };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').ok_or_else(|| format!("bad line '{line}'"))?;
            let n: u64 = v.trim().parse().map_err(|e| format!("bad value in '{line}': {e}"))?;
            match k.trim() {
                "count" => s.count = n,
                "nonblock" => s.nonblock = n != 0,
                "semaphore" => s.semaphore = n != 0,
                _ => {} // keys of newer versions
            }
        }
        Ok(s)
    }

    /// Creates the device with this state (close-on-exec; rcr sets the fd's real flag).
    pub fn create(self) -> Result<OwnedFd, String> {
        let mut flags = libc::EFD_CLOEXEC;
        if self.nonblock {
            flags |= libc::EFD_NONBLOCK;
        }
        if self.semaphore {
            flags |= libc::EFD_SEMAPHORE;
        }
        // SAFETY: eventfd takes integers and returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, flags) };
        if fd < 0 {
            return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if self.count > 0 {
            let b = self.count.to_ne_bytes();
            // SAFETY: writes 8 bytes from a valid buffer to our own fd.
            let n = unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
            if n != 8 {
                return Err(format!("setting the counter to {}: {}", self.count, std::io::Error::last_os_error()));
            }
        }
        Ok(fd)
    }
}

fn image_name(id: u32) -> String {
    format!("eventfd-{id}")
}

#[derive(Default)]
pub struct EventfdDevice;

impl Plugin for EventfdDevice {
    fn init(&self, host: &Host<'_>, stage: Stage) -> Result<(), String> {
        host.debug(&format!("example-eventfd (Rust) ready for {stage:?}, run {}", host.run_id()));
        Ok(())
    }

    fn dump_file(&self, host: &Host<'_>, file: &File<'_>, id: u32) -> Result<Claim, String> {
        if file.path() != "anon_inode:[eventfd]" {
            return Ok(Claim::NotMine);
        }
        let st = DeviceState::from_fdinfo(file).map_err(|e| format!("pid {} fd {}: {e}", file.pid(), file.fd()))?;
        host.write_image(&image_name(id), st.to_text().as_bytes())?;
        host.info(&format!("pid {} fd {}: saved device state {st:?} as file id {id}", file.pid(), file.fd()));
        Ok(Claim::Mine)
    }

    fn restore_file(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> {
        let Some(bytes) = host.read_image(&image_name(id))? else {
            return Ok(Restored::NotMine);
        };
        let st = DeviceState::from_text(&String::from_utf8_lossy(&bytes)).map_err(|e| format!("image {}: {e}", image_name(id)))?;
        let fd = st.create()?;
        host.info(&format!("file id {id}: device recreated with {st:?}"));
        Ok(Restored::Fd(fd))
    }
}

export_plugin! {
    plugin: EventfdDevice,
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    hooks: [init, dump_file, restore_file],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_image_text() {
        let s = DeviceState { count: 0x00ff_ffff_ffff, nonblock: true, semaphore: false };
        assert_eq!(DeviceState::from_text(&s.to_text()), Ok(s));
        assert!(DeviceState::from_text("count=x\n").is_err());
    }

    #[test]
    fn a_created_device_has_the_state() {
        let s = DeviceState { count: 42, nonblock: true, semaphore: false };
        let fd = s.create().unwrap();
        let mut b = [0u8; 8];
        // SAFETY: reads 8 bytes into a valid buffer from our own fd.
        assert_eq!(unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 8) }, 8);
        assert_eq!(u64::from_ne_bytes(b), 42);
    }
}
