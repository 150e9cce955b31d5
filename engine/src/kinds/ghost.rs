//! Ghost files: regular files that were deleted while a task still had them open or mapped. Their content
//! goes into the checkpoint, as CRIU does: `ghost-file-<id>.img` (a `ghost_file_entry` with the inode's
//! owner, mode and times, then, with `chunks`, one `ghost_chunk_entry` plus its bytes per data extent, so
//! that holes take no room), and `remap-fpath.img` ties each reg file entry (fd or mapping) to its ghost.
//! At restore the file is created again at its path (or beside it, when another file took the path),
//! filled, and unlinked at once; every fd and mapping of it reopens that one inode through
//! /proc/self/fd, so they all share it as they did.
//!
//! A file unlinked from its path but still linked elsewhere (nlink > 0) cannot be found by path; with
//! `--link-remap` (as CRIU) the dump links it as `link_remap.<id>` beside its old path, remap-fpath.img
//! says LINKED, and the restore opens that link and removes it once the tasks run.

use super::extents::{self, Extent, Method};
use crate::image::{pb, ImageDir, ImageName};
use crate::{Context, Error, Result};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How ghost files are dumped (`--ghost-limit`, `--ghost-fiemap`).
#[derive(Debug, Clone, Copy)]
pub struct GhostOpts<'a> {
    /// The images directory.
    pub dir: &'a Path,
    /// Largest amount of data (holes not counted) a ghost file may have.
    pub limit: u64,
    pub method: Method,
}

/// The ghosts of one dump: one image per deleted inode, whatever the number of fds and mappings of it.
#[derive(Default)]
pub struct GhostTable {
    by_inode: HashMap<(u64, u64), u32>,
    next: u32,
    /// remap-fpath.img: which reg file entry is which ghost.
    pub remaps: Vec<pb::RemapFilePathEntry>,
    /// Link-remapped inodes: the reg file id of their link.
    links: HashMap<(u64, u64), u32>,
    /// The links made, removed again unless the dump got to its end.
    made_links: Vec<std::path::PathBuf>,
    keep_links: std::cell::Cell<bool>,
}

impl Drop for GhostTable {
    fn drop(&mut self) {
        if !self.keep_links.get() {
            for p in &self.made_links {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn io(ctx: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Io { ctx, source: e }
}

/// The kernel's 32-bit encoding of a device number (CRIU's `dev` fields): major << 20 | minor.
fn kdev(dev: u64) -> u32 {
    (libc::major(dev) << 20) | (libc::minor(dev) & 0xfffff)
}

impl GhostTable {
    /// Dumps the deleted file `file` (stat `st`, once at `path`) as the ghost of reg file entry
    /// `orig_id`. `what` names it in errors ("pid 5: fd 3").
    pub fn dump(&mut self, file: BorrowedFd<'_>, st: &libc::stat, path: &str, orig_id: u32, opts: GhostOpts<'_>, what: &str) -> Result<()> {
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::not_supported(format!("{what}: {path} was deleted and is not a regular file (mode {:o}); rcr cannot restore it", st.st_mode)));
        }
        let key = (st.st_dev, st.st_ino);
        let id = match self.by_inode.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.next + 1;
                write_ghost(id, file, st, path, opts, what)?;
                self.next = id;
                self.by_inode.insert(key, id);
                id
            }
        };
        self.remaps.push(pb::RemapFilePathEntry { orig_id, remap_id: id, remap_type: Some(pb::RemapType::Ghost as i32) });
        Ok(())
    }

    /// The reg file id of the link already made for the inode `st`, if any.
    pub fn link_of(&self, st: &libc::stat) -> Option<u32> {
        self.links.get(&(st.st_dev, st.st_ino)).copied()
    }

    /// Links `file` (unlinked from `path`, nlink > 0) as `link_remap.<link_id>` beside `path`, for reg
    /// file `link_id`; returns the link's path.
    pub fn make_link(&mut self, file: BorrowedFd<'_>, st: &libc::stat, path: &str, link_id: u32, what: &str) -> Result<String> {
        let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
        let link = dir.join(format!("link_remap.{link_id}"));
        let c = CString::new(link.to_string_lossy().as_bytes()).map_err(|_| Error::Kernel(format!("{what}: NUL in {}", link.display())))?;
        // linkat(AT_EMPTY_PATH) links the inode of `file`.
        let r = nix::unistd::linkat(Some(file.as_raw_fd()), c"", None, c.as_c_str(), nix::fcntl::AtFlags::AT_EMPTY_PATH);
        if let Err(e) = r {
            return Err(Error::Io { ctx: format!("{what}: linking the unlinked file {path} as {} (--link-remap)", link.display()), source: e.into() });
        }
        tracing::info!("{what}: {path} was unlinked but has other links: linked as {}", link.display());
        self.made_links.push(link.clone());
        self.links.insert((st.st_dev, st.st_ino), link_id);
        Ok(link.to_string_lossy().into_owned())
    }

    /// Reg file `orig_id` is reopened through the link that is reg file `link_id`.
    pub fn add_linked(&mut self, orig_id: u32, link_id: u32) {
        self.remaps.push(pb::RemapFilePathEntry { orig_id, remap_id: link_id, remap_type: Some(pb::RemapType::Linked as i32) });
    }

    /// Writes remap-fpath.img (when there is a ghost or a link).
    pub fn finish(&self, dir: &Path) -> Result<()> {
        self.keep_links.set(true);
        if self.remaps.is_empty() {
            return Ok(());
        }
        Ok(ImageDir::new(dir).write_all(ImageName::RemapFpath, &self.remaps)?)
    }
}

fn write_ghost(id: u32, file: BorrowedFd<'_>, st: &libc::stat, path: &str, opts: GhostOpts<'_>, what: &str) -> Result<()> {
    // A readable open of the same inode (the task's may be write-only); reading it moves no task offset.
    let me = format!("/proc/self/fd/{}", file.as_raw_fd());
    let f = File::open(&me).map_err(io(format!("{what}: reopening the deleted file {path} to save it")))?;
    let size = st.st_size as u64;
    let ext = extents::data_extents(f.as_fd(), size, opts.method, &format!("{what}: deleted file {path}"))?;
    let data = extents::data_len(&ext);
    if data > opts.limit {
        return Err(Error::not_supported(format!(
            "{what}: the deleted file {path} has {data} bytes of data (size {size}), more than --ghost-limit ({} bytes); raise --ghost-limit to dump it",
            opts.limit
        )));
    }
    let mut w = ImageDir::new(opts.dir).create(ImageName::GhostFile(id))?;
    let tv = |s: i64, ns: i64| pb::Timeval { tv_sec: s as u64, tv_usec: (ns / 1000) as u64 };
    w.write_entry(&pb::GhostFileEntry {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode,
        dev: Some(kdev(st.st_dev)),
        ino: Some(st.st_ino),
        rdev: None,
        atim: Some(tv(st.st_atime, st.st_atime_nsec)),
        mtim: Some(tv(st.st_mtime, st.st_mtime_nsec)),
        chunks: Some(true),
        size: Some(size),
        symlnk_target: None,
    })?;
    let mut buf = vec![0u8; 1 << 20];
    for x in &ext {
        w.write_entry(&pb::GhostChunkEntry { len: x.len, off: x.off })?;
        let mut done = 0u64;
        while done < x.len {
            let n = ((x.len - done) as usize).min(buf.len());
            let chunk = &mut buf[..n];
            chunk.fill(0);
            read_full_at(&f, chunk, x.off + done).map_err(io(format!("{what}: reading the deleted file {path} at {}", x.off + done)))?;
            w.write_raw(chunk)?;
            done += n as u64;
        }
    }
    w.finish()?;
    tracing::info!("{what}: deleted file {path} saved as ghost {id}: {} extents, {data} bytes of {size}", ext.len());
    Ok(())
}

/// Reads `buf.len()` bytes at `off`; what lies past the end of the file (it shrank) stays zero.
fn read_full_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The ghosts of a restore: which reg file entry is which ghost, and the ghosts created so far.
#[derive(Default)]
pub struct Ghosts {
    remaps: HashMap<u32, u32>,
    created: HashMap<u32, OwnedFd>,
    /// Link-remapped files: reg file id -> the reg file id of the link.
    linked: HashMap<u32, u32>,
    /// Links to remove once the tasks run.
    unlink_after: std::collections::BTreeSet<String>,
    /// The paths of the --link-remap links, said in a warning when the restore fails: they are kept
    /// (as by CRIU) so that the restore can be tried again.
    link_paths: Vec<String>,
    finished: bool,
}

impl Drop for Ghosts {
    fn drop(&mut self) {
        if !self.finished && !self.link_paths.is_empty() {
            tracing::warn!(
                "the restore did not finish: the links the dump made with --link-remap ({}) are kept so that it can be \
                 tried again; delete them once this checkpoint is no longer needed",
                self.link_paths.join(", ")
            );
        }
    }
}

impl Ghosts {
    /// Reads remap-fpath.img, if the checkpoint has one.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        for r in ImageDir::new(dir).read_all_if_exists::<pb::RemapFilePathEntry>(ImageName::RemapFpath)? {
            match r.remap_type.and_then(|t| pb::RemapType::try_from(t).ok()) {
                Some(pb::RemapType::Ghost) => {
                    self.remaps.insert(r.orig_id, r.remap_id);
                }
                Some(pb::RemapType::Linked) => {
                    self.linked.insert(r.orig_id, r.remap_id);
                }
                other => {
                    return Err(Error::not_supported(format!(
                        "remap-fpath.img: file {} is remapped as {other:?}; rcr restores only ghost (deleted) and linked files",
                        r.orig_id
                    )))
                }
            }
        }
        if !self.linked.is_empty() {
            let files = ImageDir::new(dir).read_all::<pb::FileEntry>(ImageName::Files)?;
            let links: std::collections::HashSet<u32> = self.linked.values().copied().collect();
            self.link_paths = files.into_iter().filter(|f| links.contains(&f.id)).filter_map(|f| f.reg.map(|r| r.name)).collect();
        }
        Ok(())
    }

    /// Whether reg file `id` is a ghost or link-remapped.
    pub fn is_ghost(&self, id: u32) -> bool {
        self.remaps.contains_key(&id) || self.linked.contains_key(&id)
    }

    /// Opens link-remapped reg file `e` through its link (reg file `link_id` of `files`).
    fn open_linked(&mut self, files: &std::collections::BTreeMap<u32, pb::FileEntry>, e: &pb::RegFileEntry, link_id: u32, exact_size: bool) -> Result<OwnedFd> {
        let link = files
            .get(&link_id)
            .and_then(|f| f.reg.as_ref())
            .ok_or_else(|| Error::corrupt(format!("remap-fpath.img: {} is linked as file {link_id}, which files.img lacks", e.name)))?;
        let fd = super::regfile::open(&pb::RegFileEntry { name: link.name.clone(), ..e.clone() }, exact_size)
            .at(|| format!("{} (unlinked, kept by --link-remap as {})", e.name, link.name))?;
        self.unlink_after.insert(link.name.clone());
        Ok(fd)
    }

    /// Opens reg file `e`, a ghost: the deleted file is created once (the first time one of its fds or
    /// mappings asks), and each open is a new open of that inode with `e`'s flags.
    pub fn open(&mut self, dir: &Path, files: &std::collections::BTreeMap<u32, pb::FileEntry>, e: &pb::RegFileEntry, exact_size: bool) -> Result<OwnedFd> {
        if let Some(&link_id) = self.linked.get(&e.id) {
            return self.open_linked(files, e, link_id, exact_size);
        }
        let Some(&gid) = self.remaps.get(&e.id) else {
            return Err(Error::corrupt(format!("file {} ({}) is not a ghost", e.id, e.name)));
        };
        let base = match self.created.entry(gid) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(create(dir, gid, &e.name)?),
        };
        super::reopen(base.as_fd(), e.flags, e.pos, &|| format!("the restored deleted file {}", e.name))
    }

    /// Lets go of the ghosts (the tasks hold them now) and removes the --link-remap links.
    pub fn finish(&mut self) {
        self.finished = true;
        self.created.clear();
        for l in std::mem::take(&mut self.unlink_after) {
            if let Err(e) = std::fs::remove_file(&l) {
                tracing::warn!("removing the link {l} made by the dump (--link-remap): {e}");
            }
        }
    }
}

/// Creates ghost `gid` from its image: at `path` if that is free, else beside it (another file took
/// the name since the dump; it is left alone), filled, then unlinked. Returns a read-only fd of it.
fn create(dir: &Path, gid: u32, path: &str) -> Result<OwnedFd> {
    let images = ImageDir::new(dir);
    let img = images.file(ImageName::GhostFile(gid));
    let mut r = images.open(ImageName::GhostFile(gid))?;
    let g: pb::GhostFileEntry = r.read_entry()?.ok_or_else(|| Error::corrupt(format!("{}: no ghost_file_entry", img.display())))?;
    if g.mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::not_supported(format!("{}: ghost of {path} has mode {:o}; rcr restores only regular ghost files", img.display(), g.mode)));
    }
    let (name, f) = create_near(path, gid)?;
    let mut fill = || -> Result<()> {
        let size = g.size.unwrap_or(0);
        f.set_len(size).map_err(io(format!("sizing the restored deleted file {path} to {size}")))?;
        if g.chunks == Some(true) {
            while let Some(c) = r.read_entry::<pb::GhostChunkEntry>()? {
                let x = Extent { off: c.off, len: c.len };
                let mut done = 0u64;
                while done < x.len {
                    let n = (x.len - done).min(1 << 20);
                    let chunk = r.read_raw(n)?;
                    f.write_all_at(&chunk, x.off + done).map_err(io(format!("writing the restored deleted file {path}")))?;
                    done += n;
                }
            }
        } else {
            let data = r.read_raw_to_end()?;
            f.write_all_at(&data, 0).map_err(io(format!("writing the restored deleted file {path}")))?;
            if g.size.is_none() {
                f.set_len(data.len() as u64).map_err(io(format!("sizing the restored deleted file {path}")))?;
            }
        }
        if let Err(e) = nix::unistd::fchown(f.as_raw_fd(), Some(nix::unistd::Uid::from_raw(g.uid)), Some(nix::unistd::Gid::from_raw(g.gid))) {
            tracing::warn!("restored deleted file {path}: cannot give it to uid {} gid {}: {}", g.uid, g.gid, std::io::Error::from(e));
        }
        let _ = nix::sys::stat::fchmod(f.as_raw_fd(), nix::sys::stat::Mode::from_bits_retain(g.mode & 0o7777));
        // Settle the new blocks (delayed allocation) so the file's st_blocks and extents are final, as
        // the dump's were (FIEMAP syncs; a dumped file had long been written).
        f.sync_data().map_err(io(format!("syncing the restored deleted file {path}")))?;
        if let (Some(a), Some(m)) = (g.atim, g.mtim) {
            let (at, mt) = (TimeSpec::new(a.tv_sec as i64, (a.tv_usec * 1000) as i64), TimeSpec::new(m.tv_sec as i64, (m.tv_usec * 1000) as i64));
            let _ = nix::sys::stat::futimens(f.as_raw_fd(), &at, &mt);
        }
        Ok(())
    };
    let filled = fill();
    // Deleted again whatever happened: a half-restored ghost must not stay in the file system.
    let unlinked = std::fs::remove_file(&name).map_err(io(format!("unlinking the restored deleted file {}", name.display())));
    filled?;
    unlinked?;
    tracing::info!("deleted file {path} restored (created as {}, then unlinked)", name.display());
    // Kept read-only: a writer would keep a deleted executable from being the restored exe link
    // (PR_SET_MM_MAP denies write access to it); the fds and mappings reopen it as they need.
    let ro = File::open(format!("/proc/self/fd/{}", f.as_raw_fd())).map_err(io(format!("reopening the restored deleted file {path}")))?;
    Ok(OwnedFd::from(ro))
}

/// Creates a new file at `path`, or at `path.rcr-ghost-<gid>[-N]` when `path` exists.
fn create_near(path: &str, gid: u32) -> Result<(std::path::PathBuf, File)> {
    let mut tries = vec![std::path::PathBuf::from(path)];
    tries.extend((0..16).map(|n| std::path::PathBuf::from(format!("{path}.rcr-ghost-{gid}-{n}"))));
    for p in tries {
        match std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p) {
            Ok(f) => {
                if p.as_os_str() != path {
                    tracing::info!("deleted file {path}: the path is taken by another file; restoring it as {}", p.display());
                }
                return Ok((p, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Io { ctx: format!("creating the deleted file {} again (does its directory still exist?)", p.display()), source: e }),
        }
    }
    Err(Error::changed(format!("cannot find a free name near {path} to restore the deleted file")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fstat(fd: BorrowedFd<'_>) -> libc::stat {
        nix::sys::stat::fstat(fd.as_raw_fd()).unwrap()
    }

    #[test]
    fn a_sparse_ghost_round_trips() {
        let base = std::env::temp_dir().join(format!("rcr-ghost-unit-{}", std::process::id()));
        let images = base.join("images");
        std::fs::create_dir_all(&images).unwrap();
        let path = base.join("file");
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        for i in 0..10u64 {
            f.write_all_at(&[i as u8 + 1; 4096], i * 3 * 4096).unwrap();
        }
        f.set_len(31 * 4096 + 7).unwrap();
        std::fs::remove_file(&path).unwrap();
        let st = fstat(f.as_fd());
        let name = path.to_str().unwrap();
        let mut t = GhostTable::default();
        let small = GhostOpts { dir: &images, limit: 4096, method: Method::SeekData };
        let e = t.dump(f.as_fd(), &st, name, 7, small, "test").unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("40960 bytes") && e.contains("--ghost-limit"), "{e}");
        let opts = GhostOpts { dir: &images, limit: 1 << 20, method: Method::Fiemap };
        t.dump(f.as_fd(), &st, name, 7, opts, "test").unwrap();
        t.dump(f.as_fd(), &st, name, 9, opts, "test").unwrap(); // the same inode again: one ghost
        t.finish(&images).unwrap();
        let dir = ImageDir::new(&images);
        assert!(dir.exists(ImageName::GhostFile(1)) && !dir.exists(ImageName::GhostFile(2)));

        let mut g = Ghosts::default();
        g.load(&images).unwrap();
        assert!(g.is_ghost(7) && g.is_ghost(9) && !g.is_ghost(8));
        let e = pb::RegFileEntry { id: 7, name: name.into(), flags: libc::O_RDONLY as u32, pos: 4096, ..Default::default() };
        let none = Default::default();
        let a = File::from(g.open(&images, &none, &e, false).unwrap());
        let b = File::from(g.open(&images, &none, &pb::RegFileEntry { id: 9, flags: libc::O_RDWR as u32, pos: 0, ..e.clone() }, true).unwrap());
        let (sa, sb) = (fstat(a.as_fd()), fstat(b.as_fd()));
        assert_eq!((sa.st_ino, sa.st_nlink, sa.st_size), (sb.st_ino, 0, st.st_size));
        assert!(!path.exists(), "the restored ghost stays in the file system");
        assert_eq!(nix::unistd::lseek(a.as_raw_fd(), 0, nix::unistd::Whence::SeekCur).unwrap(), 4096);
        let want = extents::data_extents(f.as_fd(), st.st_size as u64, Method::SeekData, "orig").unwrap();
        let got = extents::data_extents(a.as_fd(), st.st_size as u64, Method::SeekData, "copy").unwrap();
        assert_eq!(want, got);
        let mut buf = [0u8; 4096];
        a.read_exact_at(&mut buf, 9 * 3 * 4096).unwrap();
        assert_eq!(buf, [10u8; 4096]);
        g.finish();
        let _ = std::fs::remove_dir_all(&base);
    }
}
