//! An example rcr plugin, written in Rust, that a device vendor can copy.
//!
//! The toy device is a BPF array map named `rcr_toydev` used as a device's register file: its state
//! lives in the kernel and is reached through the `bpf()` syscall, and a map made with
//! `BPF_F_MMAPABLE` can be mapped into memory like device MMIO. rcr's core knows neither bpf maps nor
//! their mappings, so without this plugin a dump of a process using one fails with "... a kind of file
//! rcr cannot checkpoint yet and no plugin claimed it". With it:
//!
//! - `dump_file` (in `rcr dump`, task frozen): claims fds whose target is `anon_inode:bpf-map` and whose
//!   map (`BPF_OBJ_GET_INFO_BY_FD`) is an array named `rcr_toydev`; saves its attributes and every
//!   register (`BPF_MAP_LOOKUP_ELEM`) in the plugin's own image `toydev-<file id>`.
//! - `dump_vma` (in `rcr dump`): claims the process's mapping of its mappable device and notes which
//!   device it maps in image `vma-<id>`.
//! - `restore_file` (in `rcr restore`, before the task is created): creates the map again with the same
//!   attributes and name, writes the registers back (`BPF_MAP_UPDATE_ELEM`), freezes it if it was, and
//!   leaves a copy of its fd in rcr's fork-shared store for `update_vma`.
//! - `update_vma` (in `rcr restore`, after the files): hands rcr the device's fd to map the area from.
//!
//! Two fds of one map opened once (dup) are one file to rcr and are offered once, so they stay one
//! device. The C version (plugins/example-c) has the same name and image format: a checkpoint made with
//! one restores with the other.

use rcr_plugin_api::{export_plugin, Claim, File, Host, Plugin, Restored, Stage, Vma, VmaMapping};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::io::{Read, Write};
use std::sync::Mutex;

/// The plugin's name: recorded in checkpoints that need it.
pub const NAME: &str = "example-toydev";
/// The name the device's maps carry.
pub const DEVICE_NAME: &str = "rcr_toydev";
/// The most register bytes one device may hold (its image stays small).
pub const MAX_BYTES: u32 = 64 << 10;

/// Thin wrappers of the `bpf()` syscall for the few commands the toy device needs.
pub mod bpf {
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    pub const MAP_CREATE: i32 = 0;
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const OBJ_GET_INFO_BY_FD: i32 = 15;
    pub const MAP_FREEZE: i32 = 22;
    pub const MAP_TYPE_ARRAY: u32 = 2;
    pub const F_MMAPABLE: u32 = 1 << 10;

    /// The start of `union bpf_attr` for BPF_MAP_CREATE (the kernel zero-fills the rest).
    #[repr(C)]
    #[derive(Default)]
    pub struct MapCreate {
        pub map_type: u32,
        pub key_size: u32,
        pub value_size: u32,
        pub max_entries: u32,
        pub map_flags: u32,
        pub inner_map_fd: u32,
        pub numa_node: u32,
        pub map_name: [u8; 16],
    }

    /// `union bpf_attr` for the element commands.
    #[repr(C)]
    #[derive(Default)]
    struct Elem {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }

    /// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
    #[repr(C)]
    #[derive(Default)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The start of `struct bpf_map_info` (the kernel fills what fits in `info_len`).
    #[repr(C)]
    #[derive(Default, Debug, Clone, Copy)]
    pub struct MapInfo {
        pub map_type: u32,
        pub id: u32,
        pub key_size: u32,
        pub value_size: u32,
        pub max_entries: u32,
        pub map_flags: u32,
        pub name: [u8; 16],
    }

    impl MapInfo {
        pub fn name(&self) -> &str {
            let n = self.name.iter().position(|&b| b == 0).unwrap_or(16);
            std::str::from_utf8(&self.name[..n]).unwrap_or("")
        }
    }

    fn sys<T>(cmd: i32, attr: &mut T) -> std::io::Result<i64> {
        // SAFETY: `attr` is a valid `union bpf_attr` prefix of `size_of::<T>()` bytes for `cmd`; the
        // kernel reads (and for info, writes through the pointers in) it only during the call.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    pub fn map_create(attr: &mut MapCreate) -> std::io::Result<OwnedFd> {
        let fd = sys(MAP_CREATE, attr)? as RawFd;
        // SAFETY: BPF_MAP_CREATE returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub fn info(fd: RawFd) -> std::io::Result<MapInfo> {
        let mut info = MapInfo::default();
        let mut a = InfoAttr { bpf_fd: fd as u32, info_len: std::mem::size_of::<MapInfo>() as u32, info: &mut info as *mut MapInfo as u64 };
        sys(OBJ_GET_INFO_BY_FD, &mut a)?;
        Ok(info)
    }

    /// Reads element `key` into `value` (exactly the map's value size).
    pub fn lookup(fd: RawFd, key: u32, value: &mut [u8]) -> std::io::Result<()> {
        let mut a = Elem { map_fd: fd as u32, key: &key as *const u32 as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
        sys(MAP_LOOKUP_ELEM, &mut a).map(drop)
    }

    /// Writes element `key` (`value`: exactly the map's value size).
    pub fn update(fd: RawFd, key: u32, value: &[u8]) -> std::io::Result<()> {
        let mut a = Elem { map_fd: fd as u32, key: &key as *const u32 as u64, value: value.as_ptr() as u64, ..Default::default() };
        sys(MAP_UPDATE_ELEM, &mut a).map(drop)
    }

    pub fn freeze(fd: RawFd) -> std::io::Result<()> {
        let mut a = Elem { map_fd: fd as u32, ..Default::default() };
        sys(MAP_FREEZE, &mut a).map(drop)
    }
}

/// The state of one toy device, as saved in its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub frozen: bool,
    /// Every register, in order (`max_entries * value_size` bytes).
    pub regs: Vec<u8>,
}

impl DeviceState {
    /// Reads the device behind `fd`: None if it is not a toy device.
    pub fn read(fd: RawFd, fdinfo_frozen: bool) -> Result<Option<DeviceState>, String> {
        let info = bpf::info(fd).map_err(|e| format!("BPF_OBJ_GET_INFO_BY_FD: {e}"))?;
        if info.map_type != bpf::MAP_TYPE_ARRAY || info.name() != DEVICE_NAME {
            return Ok(None);
        }
        if info.key_size != 4 || info.value_size == 0 || info.value_size.saturating_mul(info.max_entries) > MAX_BYTES {
            return Err(format!("toy device with key size {}, {} registers of {} bytes: not a supported layout", info.key_size, info.max_entries, info.value_size));
        }
        let vs = info.value_size as usize;
        let mut regs = vec![0u8; vs * info.max_entries as usize];
        for (i, r) in regs.chunks_mut(vs).enumerate() {
            bpf::lookup(fd, i as u32, r).map_err(|e| format!("reading register {i}: {e}"))?;
        }
        Ok(Some(DeviceState { value_size: info.value_size, max_entries: info.max_entries, map_flags: info.map_flags, frozen: fdinfo_frozen, regs }))
    }

    pub fn to_text(&self) -> String {
        let hex: String = self.regs.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "value_size={}\nmax_entries={}\nmap_flags={}\nfrozen={}\nregs={hex}\n",
            self.value_size,
            self.max_entries,
            self.map_flags,
            u8::from(self.frozen)
        )
    }

    pub fn from_text(text: &str) -> Result<DeviceState, String> {
        let mut s = DeviceState { value_size: 0, max_entries: 0, map_flags: 0, frozen: false, regs: Vec::new() };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').ok_or_else(|| format!("bad line '{line}'"))?;
            let num = || v.trim().parse::<u32>().map_err(|e| format!("bad value in '{line}': {e}"));
            match k.trim() {
                "value_size" => s.value_size = num()?,
                "max_entries" => s.max_entries = num()?,
                "map_flags" => s.map_flags = num()?,
                "frozen" => s.frozen = num()? != 0,
                "regs" => {
                    let v = v.trim();
                    if v.len() % 2 != 0 {
                        return Err("regs: odd number of hex digits".into());
                    }
                    s.regs = (0..v.len()).step_by(2).map(|i| u8::from_str_radix(&v[i..i + 2], 16)).collect::<Result<_, _>>().map_err(|e| format!("regs: {e}"))?;
                }
                _ => {} // keys of newer versions
            }
        }
        if s.value_size == 0 || s.regs.len() != (s.value_size as usize) * (s.max_entries as usize) {
            return Err(format!("{} register bytes for {} registers of {} bytes", s.regs.len(), s.max_entries, s.value_size));
        }
        Ok(s)
    }

    /// Creates the device with this state (close-on-exec; rcr sets the fd's real flag).
    pub fn create(&self) -> Result<OwnedFd, String> {
        let mut attr = bpf::MapCreate {
            map_type: bpf::MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: self.value_size,
            max_entries: self.max_entries,
            map_flags: self.map_flags,
            ..Default::default()
        };
        attr.map_name[..DEVICE_NAME.len()].copy_from_slice(DEVICE_NAME.as_bytes());
        let fd = bpf::map_create(&mut attr).map_err(|e| format!("BPF_MAP_CREATE: {e}"))?;
        for (i, r) in self.regs.chunks(self.value_size as usize).enumerate() {
            bpf::update(fd.as_raw_fd(), i as u32, r).map_err(|e| format!("writing register {i}: {e}"))?;
        }
        if self.frozen {
            bpf::freeze(fd.as_raw_fd()).map_err(|e| format!("BPF_MAP_FREEZE: {e}"))?;
        }
        Ok(fd)
    }
}

fn image_name(id: u32) -> String {
    format!("toydev-{id}")
}

/// The store key under which `restore_file` leaves the device's fd for `update_vma`.
fn store_key(id: u32) -> String {
    format!("toydev-fd-{id}")
}

/// A device dumped in this run: the process, its file id, whether it can be mapped.
struct Dumped {
    pid: i32,
    id: u32,
    mappable: bool,
}

#[derive(Default)]
pub struct ToyDevice {
    dumped: Mutex<Vec<Dumped>>,
}

impl Plugin for ToyDevice {
    fn init(&self, host: &Host<'_>, stage: Stage) -> Result<(), String> {
        host.debug(&format!("{NAME} (Rust) ready for {stage:?}, run {}", host.run_id()));
        Ok(())
    }

    fn dump_file(&self, host: &Host<'_>, file: &File<'_>, id: u32) -> Result<Claim, String> {
        if file.path() != "anon_inode:bpf-map" {
            return Ok(Claim::NotMine);
        }
        let frozen = file.fdinfo_field("frozen").is_some_and(|v| v != "0");
        let ctx = |e: String| format!("pid {} fd {}: {e}", file.pid(), file.fd());
        let Some(st) = DeviceState::read(file.local_fd(), frozen).map_err(ctx)? else {
            return Ok(Claim::NotMine); // another bpf map: not this device
        };
        // Streamed (ABI 3): the image is a file of the plugin's, written in pieces; rcr holds none of it.
        let mut img = host.create_image(&image_name(id))?;
        img.write_all(st.to_text().as_bytes()).map_err(|e| ctx(format!("writing image {}: {e}", image_name(id))))?;
        let mappable = st.map_flags & bpf::F_MMAPABLE != 0;
        self.dumped.lock().map_err(|_| "state lock poisoned")?.push(Dumped { pid: file.pid(), id, mappable });
        host.info(&format!("pid {} fd {}: saved device ({} registers of {} bytes) as file id {id}", file.pid(), file.fd(), st.max_entries, st.value_size));
        Ok(Claim::Mine)
    }

    fn dump_vma(&self, host: &Host<'_>, vma: &Vma<'_>, id: u32) -> Result<Claim, String> {
        if vma.path() != "anon_inode:bpf-map" {
            return Ok(Claim::NotMine);
        }
        // A mapping does not say which map it shows (every bpf map shares one anon inode), so the
        // process's one mappable device it is. A real device would encode its buffer in the offset.
        let dumped = self.dumped.lock().map_err(|_| "state lock poisoned")?;
        let mine: Vec<u32> = dumped.iter().filter(|d| d.pid == vma.pid() && d.mappable).map(|d| d.id).collect();
        let dev = match mine[..] {
            [] => return Ok(Claim::NotMine),
            [one] => one,
            _ => return Err(format!("pid {}: area {:#x}: {} mappable toy devices are open; cannot tell which one this maps", vma.pid(), vma.start(), mine.len())),
        };
        host.write_image(&format!("vma-{id}"), format!("device={dev}\n").as_bytes())?;
        host.info(&format!("pid {}: area {:#x}-{:#x} maps device file id {dev}", vma.pid(), vma.start(), vma.end()));
        Ok(Claim::Mine)
    }

    fn restore_file(&self, host: &Host<'_>, id: u32) -> Result<Restored, String> {
        let Some(mut img) = host.open_image(&image_name(id))? else {
            return Ok(Restored::NotMine);
        };
        let mut text = String::new();
        img.read_to_string(&mut text).map_err(|e| format!("reading image {}: {e}", image_name(id)))?;
        let st = DeviceState::from_text(&text).map_err(|e| format!("image {}: {e}", image_name(id)))?;
        let fd = st.create()?;
        // update_vma (a later stage) maps the device from this fd.
        host.store_put(&store_key(id), b"", Some(fd.as_fd()))?;
        host.info(&format!("file id {id}: device recreated ({} registers)", st.max_entries));
        Ok(Restored::Fd(fd))
    }

    fn update_vma(&self, host: &Host<'_>, id: u32, vma: &Vma<'_>) -> Result<Option<VmaMapping>, String> {
        let Some(text) = host.read_image(&format!("vma-{id}"))? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&text);
        let dev: u32 = text.trim().strip_prefix("device=").and_then(|v| v.parse().ok()).ok_or_else(|| format!("image vma-{id}: bad content '{text}'"))?;
        let (_, fd) = host.store_get(&store_key(dev))?.ok_or_else(|| format!("area {:#x}: device file id {dev} was not restored", vma.start()))?;
        let fd = fd.ok_or("the store lost the device's fd")?;
        Ok(Some(VmaMapping { fd: Some(fd), offset: vma.offset() }))
    }
}

export_plugin! {
    plugin: ToyDevice,
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    hooks: [init, dump_file, dump_vma, restore_file, update_vma],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_image_text() {
        let s = DeviceState { value_size: 2, max_entries: 2, map_flags: bpf::F_MMAPABLE, frozen: true, regs: vec![1, 0xff, 0, 7] };
        assert_eq!(DeviceState::from_text(&s.to_text()), Ok(s));
        assert!(DeviceState::from_text("value_size=2\nmax_entries=2\nregs=00\n").is_err());
    }

    #[test]
    fn a_created_device_has_the_state() {
        let s = DeviceState { value_size: 8, max_entries: 3, map_flags: 0, frozen: true, regs: (0..24).collect() };
        let fd = match s.create() {
            Ok(fd) => fd,
            Err(e) if e.contains("EPERM") || e.contains("Operation not permitted") => return, // not root
            Err(e) => panic!("{e}"),
        };
        assert_eq!(DeviceState::read(fd.as_raw_fd(), true).unwrap(), Some(s));
        assert!(bpf::update(fd.as_raw_fd(), 0, &[0; 8]).is_err(), "a frozen device accepted an update");
    }
}
