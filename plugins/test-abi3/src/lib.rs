//! Test fixture for rcr's end-to-end tests (tests/progs/plugin_task.c): an ABI-3 plugin for a "device"
//! that belongs to its process, a memfd named `rcr-abi3-dev`. At dump it claims the fd and streams the
//! memfd's contents into its image in pieces (`create_image`, sendfile), so that rcr never holds
//! them. At restore it leaves the fd to itself (`Restored::InTask`) and, in `restore_task`, recreates
//! the device from inside the restored task: memfd_create, the image copied in by the task itself,
//! dup3 to the fd's number, and a mapping of it, all remote system calls in the task. In
//! `resume_devices_late` it lets the restored task run 50 ms (`run_thread`), before the tree is let go.

use rcr_plugin_api::{export_plugin, Claim, File, Host, Plugin, Restored};
use std::os::fd::AsRawFd;
use std::sync::Mutex;

const NAME: &str = "test-abi3";

/// A device to recreate in `restore_task`: its file id, and what its meta image says.
struct Pending {
    id: u32,
    pid: i32,
    fd: i32,
    size: u64,
}

#[derive(Default)]
pub struct Abi3 {
    pending: Mutex<Vec<Pending>>,
    /// Processes whose device was recreated: each is let run a moment in `resume_devices_late`
    /// (`run_thread` at restore, as CUDA's driver needs), before the tree is let go.
    recreated: Mutex<Vec<i32>>,
}

/// Copies `len` bytes of `src` from offset 0 into `dst` in the kernel (sendfile, which works across
/// filesystems), in pieces, without moving `src`'s file position (the task shares it).
fn stream(src: i32, dst: &std::fs::File, len: u64) -> Result<(), String> {
    let mut off: libc::off_t = 0;
    while (off as u64) < len {
        let piece = (len - off as u64).min(16 << 20) as usize;
        // SAFETY: sendfile between two open fds; `off` is a writable offset; no other memory.
        let n = unsafe { libc::sendfile(dst.as_raw_fd(), src, &mut off, piece) };
        if n <= 0 {
            return Err(format!("copying the device at offset {off}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// A system call in the task; its result, or the errno as an error.
fn sys(h: &Host<'_>, pid: i32, nr: i64, args: &[u64]) -> Result<u64, String> {
    let r = h.task_syscall(pid, nr, args)?;
    if r < 0 {
        return Err(format!("pid {pid}: system call {nr} failed: {}", std::io::Error::from_raw_os_error(-r as i32)));
    }
    Ok(r as u64)
}

impl Abi3 {
    /// Recreates device `d` inside its task.
    fn recreate(&self, h: &Host<'_>, d: &Pending) -> Result<(), String> {
        let pid = d.pid;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let scratch = sys(h, pid, libc::SYS_mmap, &[0, 4096, rw, (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64, u64::MAX, 0])?;
        h.task_write(pid, scratch, b"rcr-abi3-dev\0")?;
        let mfd = sys(h, pid, libc::SYS_memfd_create, &[scratch, libc::MFD_CLOEXEC as u64])?;
        sys(h, pid, libc::SYS_ftruncate, &[mfd, d.size])?;
        // The task reads the image itself: its pages go from file to memfd in the kernel.
        let image = format!("{}/plugin-{NAME}-dev-{}.data\0", h.images_dir(), d.id);
        h.task_write(pid, scratch, image.as_bytes())?;
        let ifd = sys(h, pid, libc::SYS_openat, &[libc::AT_FDCWD as u64, scratch, (libc::O_RDONLY | libc::O_CLOEXEC) as u64, 0])?;
        let mut done = 0;
        while done < d.size {
            let n = sys(h, pid, libc::SYS_sendfile, &[mfd, ifd, 0, (d.size - done).min(64 << 20)])?;
            if n == 0 {
                return Err(format!("pid {pid}: the image of device {} ends at {done} of {} bytes", d.id, d.size));
            }
            done += n;
        }
        sys(h, pid, libc::SYS_close, &[ifd])?;
        if mfd != d.fd as u64 {
            sys(h, pid, libc::SYS_dup3, &[mfd, d.fd as u64, libc::O_CLOEXEC as u64])?;
            sys(h, pid, libc::SYS_close, &[mfd])?;
        }
        // Map it in the task, where the kernel puts it, and check through the mapping.
        let addr = sys(h, pid, libc::SYS_mmap, &[0, d.size, libc::PROT_READ as u64, libc::MAP_SHARED as u64, d.fd as u64, 0])?;
        let mut head = [0u8; 8];
        h.task_read(pid, addr, &mut head)?;
        sys(h, pid, libc::SYS_munmap, &[scratch, 4096])?;
        h.info(&format!("pid {pid}: device {} recreated inside the task at fd {}, mapped at {addr:#x} (first word {:#x})", d.id, d.fd, u64::from_ne_bytes(head)));
        Ok(())
    }
}

impl Plugin for Abi3 {
    fn dump_file(&self, host: &Host<'_>, file: &File<'_>, id: u32) -> Result<Claim, String> {
        if !file.path().starts_with("/memfd:rcr-abi3-dev") {
            return Ok(Claim::NotMine);
        }
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat of the fd rcr lent for the call into a stat buffer.
        if unsafe { libc::fstat(file.local_fd(), st.as_mut_ptr()) } != 0 {
            return Err(format!("fstat of fd {}: {}", file.fd(), std::io::Error::last_os_error()));
        }
        // SAFETY: fstat succeeded and filled it.
        let size = unsafe { st.assume_init() }.st_size as u64;
        let img = host.create_image(&format!("dev-{id}"))?;
        stream(file.local_fd(), &img, size)?;
        host.write_image(&format!("meta-{id}"), format!("{} {} {size}", file.pid(), file.fd()).as_bytes())?;
        host.info(&format!("fd {} of pid {}: {size} bytes streamed", file.fd(), file.pid()));
        Ok(Claim::Mine)
    }

    fn restore_file(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> {
        let Some(meta) = host.read_image(&format!("meta-{id}"))? else { return Ok(Restored::NotMine) };
        let text = String::from_utf8_lossy(&meta);
        let v: Vec<&str> = text.split_whitespace().collect();
        let bad = || format!("meta image of device {id} is '{text}'");
        let [pid, fd, size] = v[..] else { return Err(bad()) };
        let d = Pending { id, pid: pid.parse().map_err(|_| bad())?, fd: fd.parse().map_err(|_| bad())?, size: size.parse().map_err(|_| bad())? };
        self.pending.lock().map_err(|_| "state poisoned")?.push(d);
        Ok(Restored::InTask)
    }

    fn restore_task(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        let mut pending = self.pending.lock().map_err(|_| "state poisoned")?;
        for d in pending.iter().filter(|d| d.pid == pid) {
            self.recreate(host, d)?;
        }
        if pending.iter().any(|d| d.pid == pid) {
            self.recreated.lock().map_err(|_| "state poisoned")?.push(pid);
        }
        pending.retain(|d| d.pid != pid);
        Ok(())
    }

    fn resume_devices_late(&self, host: &Host<'_>, pid: i32) -> Result<(), String> {
        if self.recreated.lock().map_err(|_| "state poisoned")?.contains(&pid) {
            host.run_thread(pid, pid, 50)?;
            host.info(&format!("pid {pid} ran 50 ms for the plugin before the tree was let go"));
        }
        Ok(())
    }
}

export_plugin! {
    plugin: Abi3,
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    hooks: [dump_file, restore_file, restore_task, resume_devices_late],
}
